/* Load balancing and provider health (routing.load_balancing). */
#include "test.h"

#include "core/util.h"
#include "router/balance.h"

#include <pthread.h>

/* The registry the tests share (a gateway owns one); renewed per test. */
static tg_health_registry_t *hr;

static void reset_health(void)
{
    tg_health_registry_free(hr);
    hr = tg_health_registry_new();
}

static tg_provider_cfg_t prov(char *name, double weight)
{
    tg_provider_cfg_t p = {0};
    p.name = name;
    p.weight = weight;
    return p;
}

/* 40,000 picks at time 1000; hits[i] counts candidate i. Returns the
 * first candidate's share. */
static double pick_many(tg_lb_strategy_t s, const tg_provider_cfg_t *const *c,
                        const int64_t *prices, size_t n, int hits[])
{
    for (size_t i = 0; i < n; i++)
        hits[i] = 0;
    for (int i = 0; i < 40000; i++)
        hits[tg_balance_pick(hr, s, c, prices, n, tg_random_u64(), 1000)]++;
    return hits[0] / 40000.0;
}

TEST(balance_weighted_split_3_to_1)
{
    reset_health();
    tg_provider_cfg_t a = prov("wa", 3), b = prov("wb", 1);
    const tg_provider_cfg_t *c[] = {&a, &b};
    int hits[2];
    double share = pick_many(TG_LB_WEIGHTED, c, NULL, 2, hits);
    if (share < 0.73 || share > 0.77)
        tg_test_fail(__FILE__, __LINE__, "weighted 3:1 gave %.3f to the first", share);
    reset_health();
}

TEST(balance_round_robin_cycles)
{
    reset_health();
    tg_provider_cfg_t a = prov("ra", 1), b = prov("rb", 1), d = prov("rc", 1);
    const tg_provider_cfg_t *c[] = {&a, &b, &d};
    int hits[3] = {0};
    for (int i = 0; i < 300; i++)
        hits[tg_balance_pick(hr, TG_LB_ROUND_ROBIN, c, NULL, 3, 0, 1000)]++;
    CHECK_INT(hits[0], 100);
    CHECK_INT(hits[1], 100);
    CHECK_INT(hits[2], 100);
    reset_health();
}

TEST(balance_latency_p2c_prefers_faster)
{
    reset_health();
    tg_provider_cfg_t a = prov("la", 1), b = prov("lb", 1);
    const tg_provider_cfg_t *c[] = {&a, &b};
    tg_health_report(tg_health_for(hr, "la"), TG_OUTCOME_OK, 200000, 0, 30000, 1000);
    tg_health_report(tg_health_for(hr, "lb"), TG_OUTCOME_OK, 20000, 0, 30000, 1000);
    int fast = 0;
    for (int i = 0; i < 1000; i++)
        fast += tg_balance_pick(hr, TG_LB_LATENCY, c, NULL, 2, tg_random_u64(), 1000) == 1;
    CHECK_INT(fast, 1000); /* with two candidates both are compared every time */
    /* an unmeasured provider is tried first */
    tg_provider_cfg_t n = prov("lnew", 1);
    const tg_provider_cfg_t *c3[] = {&b, &n};
    CHECK_INT(tg_balance_pick(hr, TG_LB_LATENCY, c3, NULL, 2, tg_random_u64(), 1000), 1);
    reset_health();
}

TEST(balance_rate_limited_rests_then_returns)
{
    reset_health();
    tg_provider_cfg_t a = prov("qa", 1), b = prov("qb", 1);
    const tg_provider_cfg_t *c[] = {&a, &b};
    tg_health_report(tg_health_for(hr, "qa"), TG_OUTCOME_RATE_LIMITED, 0, 5000, 30000, 10000);
    for (int i = 0; i < 100; i++)
        CHECK_INT(tg_balance_pick(hr, TG_LB_WEIGHTED, c, NULL, 2, tg_random_u64(), 12000), 1);
    CHECK(tg_health_usable(tg_health_for(hr, "qa"), 15001));
    reset_health();
}

TEST(balance_ejection_and_probe)
{
    reset_health();
    tg_health_t *h = tg_health_for(hr, "ej");
    int64_t t = 100000;
    for (int i = 0; i < 4; i++)
        tg_health_report(h, TG_OUTCOME_FAILED, 0, 0, 30000, t);
    CHECK(!tg_health_ejected(h, t)); /* not enough weight yet */
    tg_health_report(h, TG_OUTCOME_FAILED, 0, 0, 30000, t);
    CHECK(tg_health_ejected(h, t));
    CHECK(!tg_health_usable(h, t + 29999));
    /* after the ejection: exactly one probe goes through */
    CHECK(tg_health_usable(h, t + 30000));
    CHECK(tg_health_usable(h, t + 30000)); /* checking claims nothing */
    tg_health_claim(h, t + 30000);
    CHECK(!tg_health_usable(h, t + 30001));
    /* the probe fails: ejected again */
    tg_health_report(h, TG_OUTCOME_FAILED, 0, 0, 30000, t + 30100);
    CHECK(tg_health_ejected(h, t + 30100));
    CHECK(tg_health_usable(h, t + 60100)); /* next probe */
    tg_health_claim(h, t + 60100);
    tg_health_report(h, TG_OUTCOME_OK, 1000, 0, 30000, t + 60200);
    CHECK(tg_health_usable(h, t + 60201));
    CHECK(tg_health_usable(h, t + 60202)); /* back in service: no longer one at a time */
    /* a mostly healthy provider with a few errors stays in */
    tg_health_t *g = tg_health_for(hr, "ok");
    for (int i = 0; i < 20; i++)
        tg_health_report(g, i % 4 ? TG_OUTCOME_OK : TG_OUTCOME_FAILED, 0, 0, 30000, t + i);
    CHECK(!tg_health_ejected(g, t + 21));
    reset_health();
}

TEST(balance_all_unusable_still_picks)
{
    reset_health();
    tg_provider_cfg_t a = prov("xa", 1), b = prov("xb", 1);
    const tg_provider_cfg_t *c[] = {&a, &b};
    tg_health_report(tg_health_for(hr, "xa"), TG_OUTCOME_RATE_LIMITED, 0, 60000, 30000, 0);
    tg_health_report(tg_health_for(hr, "xb"), TG_OUTCOME_RATE_LIMITED, 0, 60000, 30000, 0);
    size_t k = tg_balance_pick(hr, TG_LB_WEIGHTED, c, NULL, 2, tg_random_u64(), 10);
    CHECK(k < 2);
    reset_health();
}

/* cost: prices are the caller's (tg_cost_rank_price), -1 for unpriced */

TEST(balance_cost_picks_cheapest)
{
    reset_health();
    /* the cheapest has the smallest weight: weight plays no part across prices */
    tg_provider_cfg_t a = prov("ca", 10), b = prov("cb", 1), d = prov("cc", 10);
    const tg_provider_cfg_t *c[] = {&a, &b, &d};
    const int64_t prices[] = {3000, 1000, 2000};
    for (int i = 0; i < 1000; i++)
        CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 1000), 1);
    reset_health();
}

TEST(balance_cost_tie_broken_by_weight)
{
    reset_health();
    tg_provider_cfg_t a = prov("ta", 3), b = prov("tb", 1), d = prov("tc", 100);
    const tg_provider_cfg_t *c[] = {&a, &b, &d};
    const int64_t prices[] = {500, 500, 501};
    int hits[3];
    double share = pick_many(TG_LB_COST, c, prices, 3, hits);
    CHECK_INT(hits[2], 0);
    if (share < 0.73 || share > 0.77)
        tg_test_fail(__FILE__, __LINE__, "tie at 3:1 gave %.3f to the first", share);
    reset_health();
}

TEST(balance_cost_unpriced_last)
{
    reset_health();
    tg_provider_cfg_t a = prov("ua", 100), b = prov("ub", 1), d = prov("uc", 100);
    const tg_provider_cfg_t *c[] = {&a, &b, &d};
    /* unpriced is not free: the dearest priced one still beats it */
    const int64_t prices[] = {-1, INT64_MAX, -1};
    for (int i = 0; i < 1000; i++)
        CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 1000), 1);
    /* a free model (price 0) is priced, and cheapest */
    const int64_t free_one[] = {-1, 7, 0};
    for (int i = 0; i < 100; i++)
        CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, free_one, 3, tg_random_u64(), 1000), 2);
    /* nothing priced: all tie, picked by weight */
    const int64_t none[] = {-1, -1, -1};
    int hits[3];
    pick_many(TG_LB_COST, c, none, 3, hits);
    CHECK(hits[0] > 0 && hits[1] > 0 && hits[2] > 0);
    /* the only priced one resting: the unpriced serve */
    tg_health_report(tg_health_for(hr, "ub"), TG_OUTCOME_RATE_LIMITED, 0, 5000, 30000, 1000);
    for (int i = 0; i < 100; i++)
        CHECK(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 2000) != 1);
    reset_health();
}

TEST(balance_cost_resting_cheapest_next_cheapest)
{
    reset_health();
    tg_provider_cfg_t a = prov("ra1", 1), b = prov("rb1", 1), d = prov("rc1", 1);
    const tg_provider_cfg_t *c[] = {&a, &b, &d};
    const int64_t prices[] = {100, 200, 300};
    CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 10000), 0);
    /* the cheapest answers 429 with Retry-After: 5 s */
    tg_health_report(tg_health_for(hr, "ra1"), TG_OUTCOME_RATE_LIMITED, 0, 5000, 30000, 10000);
    for (int i = 0; i < 100; i++)
        CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 12000), 1);
    /* the next cheapest ejected as well: the third */
    for (int i = 0; i < 5; i++)
        tg_health_report(tg_health_for(hr, "rb1"), TG_OUTCOME_FAILED, 0, 0, 30000, 12000);
    CHECK(tg_health_ejected(tg_health_for(hr, "rb1"), 12000));
    CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 12001), 2);
    /* the rest is over: the cheapest serves again */
    CHECK_INT(tg_balance_pick(hr, TG_LB_COST, c, prices, 3, tg_random_u64(), 15000), 0);
    reset_health();
}

/* Two workers asking for health records at once while new ones are added:
 * every answer is the record of the name asked for, and (under the thread
 * sanitizer) no lookup reads the list after it has been grown elsewhere. */
static void *lookup_many(void *arg)
{
    const char *prefix = arg;
    char name[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 200; i++) {
            snprintf(name, sizeof name, "%s%d", i % 2 ? prefix : "shared", i);
            tg_health_t *h = tg_health_for(hr, name);
            if (h != tg_health_for(hr, name))
                return (void *)1;
        }
    return NULL;
}

TEST(balance_health_lookup_while_growing)
{
    reset_health();
    pthread_t t1, t2;
    pthread_create(&t1, NULL, lookup_many, "left");
    pthread_create(&t2, NULL, lookup_many, "right");
    void *r1, *r2;
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    CHECK(r1 == NULL && r2 == NULL);
    CHECK(tg_health_for(hr, "shared0") == tg_health_for(hr, "SHARED0"));
}
