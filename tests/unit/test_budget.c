/*
 * test_budget.c — the budget table (budget/budget.h): reservation
 * arithmetic, all-or-nothing across budgets, concurrent reservers on
 * threads that never pass a block limit, warn and none budgets, unpriced
 * requests, the calendar (UTC, leap years, time zones across DST, month
 * starts), periods that pass, and the spend read back from a store after
 * a restart across midnight; which raw pass-through calls are LLM calls
 * that get costed.
 */
#include "budget/budget.h"
#include "config/config.h"
#include "gateway.h"
#include "proxy/spend.h"
#include "store/store.h"
#include "store_env.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define USD(x) ((int64_t)((x)*1e9 + 0.5))

static tg_budgets_t *utc_table(void)
{
    char err[256];
    tg_budget_calendar_t *c = tg_budget_calendar_new("UTC", 0, err, sizeof err);
    return tg_budgets_new(c, NULL, NULL);
}

static tg_budget_apply_t budget(const char *scope, const char *value, double daily, int action)
{
    tg_budget_apply_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.scope, sizeof a.scope, "%s", scope);
    snprintf(a.value, sizeof a.value, "%s", value);
    a.cfg = (tg_budget_cfg_t){daily, -1, action, 0.8};
    return a;
}

static int64_t spend_of(tg_budgets_t *b, const char *scope, const char *value, int64_t now,
                        int64_t *reserved)
{
    tg_budget_state_t st;
    if (!tg_budget_get(b, scope, value, TG_BUDGET_DAY, now, &st))
        return -1;
    if (reserved)
        *reserved = st.reserved;
    return st.spend;
}

TEST(budget_reserve_settle_arithmetic)
{
    tg_budgets_t *b = utc_table();
    int64_t now = 1796601600; /* 2026-12-07T00:00:00Z */
    tg_budget_apply_t a = budget("property:Agent-Name", "bot", 1.0, TG_BUDGET_BLOCK);
    tg_budget_hold_t h[5] = {{0}};
    tg_budget_outcome_t o;
    for (int i = 0; i < 3; i++) {
        tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h[i], &o);
        CHECK(!o.refused);
    }
    CHECK(o.has_limit);
    CHECK_INT(o.remaining, USD(0.1));
    CHECK(o.warning); /* 90 % held, past 80 % */
    tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h[3], &o);
    CHECK(o.refused);
    CHECK(!o.unpriced);
    CHECK_STR(o.scope, "property:Agent-Name");
    CHECK_STR(o.value, "bot");
    CHECK_INT(o.limit, USD(1.0));
    CHECK_INT(o.resets_at, now + 86400);
    CHECK(!h[3].reserved);
    /* an answer that cost less gives the difference back */
    tg_budget_settle(b, &h[0], USD(0.1), now);
    int64_t res = -1;
    CHECK_INT(spend_of(b, "property:Agent-Name", "bot", now, &res), USD(0.1));
    CHECK_INT(res, USD(0.6));
    tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h[3], &o);
    CHECK(!o.refused); /* 0.1 + 0.6 + 0.3 = 1.0: at the limit, not past it */
    CHECK_INT(o.remaining, 0);
    tg_budget_reserve(b, &a, 1, 1, false, now, &h[4], &o);
    CHECK(o.refused); /* one nano-dollar more is past it */
    /* a failure costs nothing */
    tg_budget_settle(b, &h[1], -1, now);
    tg_budget_settle(b, &h[2], 0, now);
    tg_budget_settle(b, &h[3], USD(0.3), now);
    CHECK_INT(spend_of(b, "property:Agent-Name", "bot", now, &res), USD(0.4));
    CHECK_INT(res, 0);
    /* each value has its own budget */
    tg_budget_apply_t other = budget("property:Agent-Name", "other", 1.0, TG_BUDGET_BLOCK);
    tg_budget_reserve(b, &other, 1, USD(0.9), false, now, &h[4], &o);
    CHECK(!o.refused);
    tg_budget_settle(b, &h[4], USD(0.9), now);
    tg_budgets_free(b);
}

TEST(budget_all_or_nothing_across_budgets)
{
    tg_budgets_t *b = utc_table();
    int64_t now = 1796601600;
    tg_budget_apply_t two[2] = {budget("global", "*", 10.0, TG_BUDGET_BLOCK),
                                budget("user", "u1", 1.0, TG_BUDGET_BLOCK)};
    tg_budget_hold_t h = {0};
    tg_budget_outcome_t o;
    tg_budget_reserve(b, two, 2, USD(2.0), false, now, &h, &o);
    CHECK(o.refused);
    CHECK_STR(o.scope, "user");
    int64_t res = -5;
    /* the global budget took nothing either */
    CHECK(spend_of(b, "global", "*", now, &res) == 0 && res == 0);
    tg_budget_reserve(b, two, 2, USD(0.5), false, now, &h, &o);
    CHECK(!o.refused);
    CHECK_STR(o.scope, "user"); /* the tightest: 0.5 left of 1 against 9.5 of 10 */
    CHECK_INT(o.remaining, USD(0.5));
    spend_of(b, "global", "*", now, &res);
    CHECK_INT(res, USD(0.5));
    tg_budget_settle(b, &h, USD(0.25), now);
    CHECK_INT(spend_of(b, "global", "*", now, NULL), USD(0.25));
    CHECK_INT(spend_of(b, "user", "u1", now, NULL), USD(0.25));
    tg_budgets_free(b);
}

TEST(budget_warn_none_and_unpriced)
{
    tg_budgets_t *b = utc_table();
    int64_t now = 1796601600;
    tg_budget_apply_t w = budget("user", "w", 1.0, TG_BUDGET_WARN);
    tg_budget_hold_t h = {0};
    tg_budget_outcome_t o;
    for (int i = 0; i < 3; i++) { /* warn never refuses; spend goes past the limit */
        tg_budget_reserve(b, &w, 1, USD(0.6), false, now, &h, &o);
        CHECK(!o.refused);
        tg_budget_settle(b, &h, USD(0.6), now);
    }
    CHECK_INT(spend_of(b, "user", "w", now, NULL), USD(1.8));
    CHECK_INT(o.remaining, 0);
    tg_budget_apply_t n = budget("user", "n", 0.0, TG_BUDGET_NONE);
    tg_budget_reserve(b, &n, 1, USD(5), false, now, &h, &o);
    CHECK(!o.refused);
    tg_budget_settle(b, &h, USD(5), now);
    CHECK_INT(spend_of(b, "user", "n", now, NULL), USD(5)); /* tracked */
    /* an unknown cost cannot be reserved under a block budget */
    tg_budget_apply_t k = budget("key", "k", 1.0, TG_BUDGET_BLOCK);
    tg_budget_reserve(b, &k, 1, -1, false, now, &h, &o);
    CHECK(o.refused && o.unpriced);
    tg_budget_reserve(b, &k, 1, -1, true, now, &h, &o); /* allow_unpriced */
    CHECK(!o.refused);
    tg_budget_settle(b, &h, -1, now);
    /* but under warn it goes through */
    tg_budget_reserve(b, &w, 1, -1, false, now, &h, &o);
    CHECK(!o.refused);
    tg_budget_settle(b, &h, 0, now);
    tg_budgets_free(b);
}

/* ---- concurrency ---- */

typedef struct {
    tg_budgets_t *b;
    int id;
    int64_t granted; /* nano-USD this thread was allowed to spend */
    int refused;
} worker_t;

static void *reserver(void *arg)
{
    worker_t *w = arg;
    int64_t now = 1796601600;
    unsigned seed = (unsigned)w->id * 7919u + 1;
    /* every thread under the same global and agent budgets; half of them
     * under a user budget too (other shards, other lock orders) */
    tg_budget_apply_t a[3] = {budget("global", "*", 5.0, TG_BUDGET_BLOCK),
                              budget("property:Agent-Name", "agent", 2.0, TG_BUDGET_BLOCK),
                              budget("user", w->id % 2 ? "odd" : "even", 1.5, TG_BUDGET_BLOCK)};
    for (int i = 0; i < 4000; i++) {
        int64_t amount = USD(0.001) + (int64_t)(rand_r(&seed) % 5000000);
        tg_budget_hold_t h = {0};
        tg_budget_outcome_t o;
        tg_budget_reserve(w->b, a, 3, amount, false, now, &h, &o);
        if (o.refused) {
            w->refused++;
            continue;
        }
        /* the actual cost: the whole worst case, a part of it, or nothing */
        int64_t actual = i % 3 == 0 ? amount : i % 3 == 1 ? amount / 2 : 0;
        w->granted += actual;
        tg_budget_settle(w->b, &h, actual, now);
    }
    return NULL;
}

TEST(budget_concurrent_reservers_never_pass_the_limit)
{
    tg_budgets_t *b = utc_table();
    enum { N = 8 };
    pthread_t t[N];
    worker_t w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker_t){b, i, 0, 0};
        pthread_create(&t[i], NULL, reserver, &w[i]);
    }
    int64_t total = 0;
    int refused = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        total += w[i].granted;
        refused += w[i].refused;
    }
    int64_t now = 1796601600, res = -1;
    int64_t agent = spend_of(b, "property:Agent-Name", "agent", now, &res);
    CHECK_INT(res, 0); /* every reservation settled */
    CHECK_INT(agent, total);
    CHECK(agent <= USD(2.0));
    CHECK(agent > USD(1.9)); /* filled to within one request's worst case */
    CHECK(spend_of(b, "user", "odd", now, NULL) <= USD(1.5));
    CHECK(spend_of(b, "user", "even", now, NULL) <= USD(1.5));
    CHECK_INT(spend_of(b, "global", "*", now, NULL), total);
    CHECK(refused > 0);
    tg_budgets_free(b);
}

/* ---- calendar ---- */

static void check_period(const tg_budget_calendar_t *c, int period, int64_t t, int64_t start,
                         int64_t end)
{
    int64_t s, e;
    tg_budget_period(c, period, t, &s, &e);
    if (s != start || e != end)
        tg_test_fail(__FILE__, __LINE__, "period of %lld: [%lld, %lld), expected [%lld, %lld)",
                     (long long)t, (long long)s, (long long)e, (long long)start, (long long)end);
}

TEST(budget_calendar_utc)
{
    char err[256];
    tg_budget_calendar_t *c = tg_budget_calendar_new("UTC", 0, err, sizeof err);
    CHECK(c != NULL);
    /* 2026-12-07T13:20:00Z */
    check_period(c, TG_BUDGET_DAY, 1796649600, 1796601600, 1796688000);
    check_period(c, TG_BUDGET_DAY, 1796601600, 1796601600, 1796688000); /* midnight is the start */
    check_period(c, TG_BUDGET_DAY, 1796601599, 1796515200, 1796601600); /* a second before */
    /* December 2026; then February 2028, a leap year: 29 days */
    check_period(c, TG_BUDGET_MONTH, 1796649600, 1796083200, 1798761600);
    check_period(c, TG_BUDGET_MONTH, 1832976000 /* 2028-02-01 */, 1832976000,
                 1832976000 + 29 * 86400);
    tg_budget_calendar_free(c);
    CHECK(tg_budget_calendar_new("Mars/Olympus_Mons", 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "unknown time zone") != NULL);
    CHECK(!tg_budget_tz_valid("../etc/passwd"));
    CHECK(!tg_budget_tz_valid("/etc/localtime"));
}

TEST(budget_calendar_time_zones_and_dst)
{
    if (!tg_budget_tz_valid("America/New_York")) {
        printf("    (no tz database: skipped)\n");
        return;
    }
    char err[256];
    const char *tz_before = getenv("TZ");
    /* New York: 2026-03-08 has 23 hours (clocks go forward at 2:00),
     * 2026-11-01 has 25 */
    tg_budget_calendar_t *ny =
        tg_budget_calendar_new("America/New_York", 1772323200 /* 03-01 */, err, sizeof err);
    CHECK(ny != NULL);
    CHECK(getenv("TZ") == tz_before ||
          (tz_before && getenv("TZ") && !strcmp(getenv("TZ"), tz_before))); /* put back */
    /* 2026-03-08T12:00Z: the day began at 05:00Z (EST), ends at 04:00Z (EDT) */
    check_period(ny, TG_BUDGET_DAY, 1772971200, 1772946000, 1773028800);
    CHECK_INT(1773028800 - 1772946000, 23 * 3600);
    /* 2026-11-01T12:00Z: began 04:00Z (EDT), ends 2026-11-02T05:00Z (EST) */
    check_period(ny, TG_BUDGET_DAY, 1793534400, 1793505600, 1793595600);
    CHECK_INT(1793595600 - 1793505600, 25 * 3600);
    /* a UTC instant late on 2026-03-31 is still March in New York */
    check_period(ny, TG_BUDGET_MONTH, 1775001600 /* 2026-04-01T00:00Z */,
                 1772341200 /* 03-01T05:00Z */, 1775016000 /* 04-01T04:00Z */);
    tg_budget_calendar_free(ny);
    /* Paris: April 2026 begins at 2026-03-31T22:00Z (CEST, +2) */
    tg_budget_calendar_t *paris =
        tg_budget_calendar_new("Europe/Paris", 1772323200, err, sizeof err);
    CHECK(paris != NULL);
    check_period(paris, TG_BUDGET_MONTH, 1775001600, 1774994400, 1777586400);
    /* Tokyo (+9, no DST): a day starts at 15:00Z the day before */
    tg_budget_calendar_t *tokyo = tg_budget_calendar_new("Asia/Tokyo", 1772323200, err, sizeof err);
    CHECK(tokyo != NULL);
    check_period(tokyo, TG_BUDGET_DAY, 1796601600 /* 12-07T00:00Z */, 1796569200, 1796655600);
    tg_budget_calendar_free(paris);
    tg_budget_calendar_free(tokyo);
}

TEST(budget_period_passes)
{
    tg_budgets_t *b = utc_table();
    int64_t late = 1796687990; /* 2026-12-07T23:59:50Z */
    tg_budget_apply_t a = budget("global", "*", 1.0, TG_BUDGET_BLOCK);
    tg_budget_hold_t h = {0}, h2 = {0};
    tg_budget_outcome_t o;
    tg_budget_set_spend(b, "global", "*", TG_BUDGET_DAY, USD(0.9), late);
    tg_budget_reserve(b, &a, 1, USD(0.05), false, late, &h, &o);
    CHECK(!o.refused);
    tg_budget_reserve(b, &a, 1, USD(0.1), false, late, &h2, &o);
    CHECK(o.refused);
    CHECK_INT(o.resets_at, 1796688000);
    int64_t next = late + 20; /* the next day */
    tg_budget_reserve(b, &a, 1, USD(0.1), false, next, &h2, &o);
    CHECK(!o.refused); /* a new day: spend 0, the open reservation carried */
    int64_t res = -1;
    CHECK_INT(spend_of(b, "global", "*", next, &res), 0);
    CHECK_INT(res, USD(0.15));
    tg_budget_settle(b, &h, USD(0.05), next); /* it ended after midnight: counts today */
    tg_budget_settle(b, &h2, USD(0.1), next);
    CHECK_INT(spend_of(b, "global", "*", next, &res), USD(0.15));
    tg_budgets_free(b);
}

/* ---- the spend read back from the store ---- */

/* A store in a new folder (SQLite, or PostgreSQL: store_env.h), and its
 * options (to open it again). */
typedef struct {
    char dir[32];
    tg_test_store_t where;
    tg_store_options_t so;
    tg_store_t *s;
} temp_store_t;

static bool temp_store(temp_store_t *t)
{
    char err[256];
    snprintf(t->dir, sizeof t->dir, "/tmp/tg-budget-XXXXXX");
    t->s = NULL;
    if (!mkdtemp(t->dir))
        return false;
    tg_test_store_options(t->dir, "t.db", &t->where, &t->so);
    CHECK_INT(tg_store_open(&t->so, &t->s, err, sizeof err), 0);
    return t->s != NULL;
}

static void remove_dir(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

static tg_record_t *rec(int64_t created_ms, int64_t cost, const char *agent, const char *key)
{
    static int seq;
    tg_record_t *r = tg_record_new();
    char id[40];
    snprintf(id, sizeof id, "budget-rec-%d", ++seq);
    tg_record_set_str(&r->id, id);
    r->created_at_ms = created_ms;
    tg_record_set_str(&r->provider, "openai");
    tg_record_set_str(&r->model, "gpt-4o");
    tg_record_set_str(&r->route, "/v1/chat/completions");
    r->status = 200;
    r->cost_nusd = cost;
    tg_record_set_str(&r->key_name, key);
    if (agent)
        tg_record_set_property(r, "Agent-Name", agent);
    return r;
}

TEST(budget_spend_read_back_after_a_restart_across_midnight)
{
    temp_store_t t;
    char err[256];
    if (!temp_store(&t))
        return;
    tg_store_t *s = t.s;
    int64_t now = (int64_t)time(NULL);
    int64_t midnight = now - now % 86400; /* today, UTC */
    /* yesterday just before midnight: not today's; today just after: counted */
    tg_store_submit(s, rec((midnight - 5) * 1000, USD(0.7), "a1", "k1"));
    tg_store_submit(s,
                    rec((midnight + 5 <= now ? midnight + 5 : now) * 1000, USD(0.2), "a1", "k1"));
    tg_store_submit(s, rec(now * 1000, USD(0.05), "a2", NULL));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    /* a runtime budget is kept, and read back */
    tg_budget_cfg_t rb = {3, -1, TG_BUDGET_WARN, 0.5};
    CHECK_INT(tg_store_budget_save(s, "property:Team", "red", &rb, err, sizeof err), 0);
    tg_store_close(s);

    /* the restart: a new store and gateway over the same file */
    CHECK_INT(tg_store_open(&t.so, &s, err, sizeof err), 0);
    tg_config_errors_t errs = {0};
    const char *yaml = "cost_tracking:\n"
                       "  budgets:\n"
                       "    daily: 10\n"
                       "    per_property:\n"
                       "      Agent-Name: { daily: 1 }\n";
    tg_config_t *cfg = tg_config_load_string(yaml, strlen(yaml), "t.yaml", &errs);
    CHECK(cfg != NULL);
    tg_gateway_t *gw = tg_gateway_new(cfg, s, err, sizeof err);
    CHECK(gw != NULL);
    if (gw) {
        tg_budget_state_t st;
        CHECK(tg_budget_get(gw->budgets, "property:Agent-Name", "a1", TG_BUDGET_DAY, now, &st));
        CHECK_INT(st.spend, USD(0.2));
        CHECK(tg_budget_get(gw->budgets, "global", "*", TG_BUDGET_DAY, now, &st));
        CHECK_INT(st.spend, USD(0.25));
        /* the month holds both days (unless today is the 1st) */
        if (midnight % 86400 == 0 &&
            tg_budget_get(gw->budgets, "global", "*", TG_BUDGET_MONTH, now, &st) &&
            st.start < midnight)
            CHECK_INT(st.spend, USD(0.95));
        tg_budget_cfg_t got;
        CHECK(tg_budget_rule_get(gw->budgets, "property:Team", "red", &got));
        CHECK(got.daily == 3 && got.monthly < 0 && got.action == TG_BUDGET_WARN);
        tg_gateway_free(gw);
    }
    tg_config_release(cfg);
    tg_config_errors_free(&errs);
    remove_dir(t.dir);
}

static int events[2];
static void count_event(void *arg, const tg_budget_event_t *ev)
{
    events[ev->kind == TG_BUDGET_EV_EXCEEDED]++;
}

TEST(budget_events_once_per_period)
{
    char err[256];
    tg_budgets_t *b =
        tg_budgets_new(tg_budget_calendar_new("UTC", 0, err, sizeof err), count_event, NULL);
    int64_t now = 1796601600;
    tg_budget_apply_t a = budget("user", "u", 1.0, TG_BUDGET_BLOCK);
    a.cfg.warning_threshold = 0.5;
    tg_budget_hold_t h = {0};
    tg_budget_outcome_t o;
    memset(events, 0, sizeof events);
    for (int i = 0; i < 4; i++) { /* 0.3 each: past 50 % at the second, at 100 % never */
        tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h, &o);
        CHECK(!o.refused);
        tg_budget_settle(b, &h, USD(0.2), now);
        tg_budget_check(b, &a, 1, now);
    }
    CHECK_INT(events[0], 1);
    CHECK_INT(events[1], 0);
    tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h, &o);
    CHECK(o.refused); /* 0.8 + 0.3: the limit is reached */
    tg_budget_reserve(b, &a, 1, USD(0.3), false, now, &h, &o);
    CHECK_INT(events[1], 1); /* once */
    /* the next day starts afresh */
    tg_budget_reserve(b, &a, 1, USD(0.6), false, now + 86400, &h, &o);
    tg_budget_settle(b, &h, USD(0.6), now + 86400);
    tg_budget_check(b, &a, 1, now + 86400);
    CHECK_INT(events[0], 2);
    tg_budgets_free(b);
}

TEST(budget_raw_pass_through_routes)
{
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/chat/completions"), TG_ROUTE_CHAT);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/v1/chat/completions/"), TG_ROUTE_CHAT);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/openai/deployments/d/chat/completions"),
              TG_ROUTE_CHAT);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/completions"), TG_ROUTE_COMPLETIONS);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/responses"), TG_ROUTE_RESPONSES);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/embeddings"), TG_ROUTE_EMBEDDINGS);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_ANTHROPIC, "POST", "/v1/messages"), TG_ROUTE_MESSAGES);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_GEMINI, "POST", "/v1beta/models/g-1:generateContent"),
              TG_ROUTE_GEMINI);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_GEMINI, "POST", "/models/g-1:streamGenerateContent"),
              TG_ROUTE_GEMINI);
    /* not LLM calls, or not of the provider's type: free */
    tg_route_kind_t none = TG_ROUTE_PASSTHROUGH;
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "GET", "/chat/completions"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/files"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "GET", "/models"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/responses/r1/cancel"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_OPENAI, "POST", "/v1/messages"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_ANTHROPIC, "POST", "/v1/messages/count_tokens"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_ANTHROPIC, "POST", "/v1/messages/batches"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_GEMINI, "POST", "/v1beta/models/g:countTokens"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_GEMINI, "POST", "/v1beta/models/:generateContent"), none);
    CHECK_INT(tg_spend_raw_route(TG_WIRE_GEMINI, "POST", "/x:generateContent"), none);
    char m[32];
    CHECK(
        tg_spend_gemini_path_model("/v1beta/models/gemini-2.5-flash:generateContent", m, sizeof m));
    CHECK_STR(m, "gemini-2.5-flash");
    CHECK(!tg_spend_gemini_path_model("/v1beta/models/a/b:generateContent", m, sizeof m));
    CHECK(!tg_spend_gemini_path_model("/v1beta/models/a-model-name-longer-than-32-bytes:x", m,
                                      sizeof m));
}

/* ---- a new period's spend read back from the store ---- */

typedef struct {
    tg_gateway_t *gw;
    int64_t now_ms;
    int done;
} reload_arg_t;

static void *reload_thread(void *arg)
{
    reload_arg_t *a = arg;
    a->done = tg_gateway_budget_reload(a->gw, a->now_ms);
    return NULL;
}

static void sum_row(void *arg, const char *value, int64_t nusd)
{
    if (!strcmp(value, "a1"))
        **(int64_t **)arg = nusd;
}

/* Midnight passes (an injected clock: the table's `now` and the reload's):
 * the new day's spend is what the store holds for it — another instance's
 * records included — plus what began since the reload, each request
 * counted once, in the day it began (as its record is dated), and the
 * reservations untouched. */
TEST(budget_new_period_read_back_from_the_store)
{
    temp_store_t t;
    if (!temp_store(&t))
        return;
    char err[256];
    tg_store_t *s = t.s;
    int64_t now = (int64_t)time(NULL), tomorrow = now - now % 86400 + 86400; /* UTC */
    tg_store_submit(s, rec(now * 1000, USD(0.2), "a1", NULL));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_config_errors_t errs = {0};
    const char *yaml = "cost_tracking:\n"
                       "  budgets:\n"
                       "    per_property:\n"
                       "      Agent-Name: { daily: 1 }\n";
    tg_config_t *cfg = tg_config_load_string(yaml, strlen(yaml), "t.yaml", &errs);
    tg_gateway_t *gw = cfg ? tg_gateway_new(cfg, s, err, sizeof err) : NULL;
    CHECK(gw != NULL);
    if (!gw)
        return;
    tg_budgets_t *b = gw->budgets;
    tg_budget_apply_t a = budget("property:Agent-Name", "a1", 1.0, TG_BUDGET_BLOCK);
    tg_budget_outcome_t o;
    int64_t res = -1;
    CHECK_INT(spend_of(b, "property:Agent-Name", "a1", now, NULL), USD(0.2));

    /* a request begun before midnight, open across it */
    tg_budget_hold_t straddle = {.started_ms = (tomorrow - 5) * 1000};
    tg_budget_reserve(b, &a, 1, USD(0.1), false, tomorrow - 5, &straddle, &o);
    CHECK(!o.refused);
    /* another instance records 0.3 just after midnight */
    tg_store_submit(s, rec((tomorrow + 1) * 1000, USD(0.3), "a1", NULL));
    /* the first request of the new day: memory alone knows only its own */
    tg_budget_hold_t h1 = {.started_ms = (tomorrow + 2) * 1000};
    tg_budget_reserve(b, &a, 1, USD(0.05), false, tomorrow + 2, &h1, &o);
    CHECK(!o.refused);
    tg_store_submit(s, rec((tomorrow + 2) * 1000, USD(0.04), "a1", NULL)); /* record, then settle */
    tg_budget_settle(b, &h1, USD(0.04), tomorrow + 3);
    CHECK_INT(spend_of(b, "property:Agent-Name", "a1", tomorrow + 3, NULL), USD(0.04));

    /* the reload divides at tomorrow+10 and waits for what began before */
    reload_arg_t ra = {gw, (tomorrow + 10) * 1000, -1};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, reload_thread, &ra), 0);
    for (int i = 0; i < 2000 && tg_budget_reload_waiting(b, TG_BUDGET_DAY) != 1; i++)
        usleep(1000);
    CHECK_INT(tg_budget_reload_waiting(b, TG_BUDGET_DAY), 1); /* the straddler */
    /* begun after the division: memory counts it, the sum does not */
    tg_budget_hold_t hn = {.started_ms = (tomorrow + 20) * 1000};
    tg_budget_reserve(b, &a, 1, USD(0.05), false, tomorrow + 20, &hn, &o);
    tg_store_submit(s, rec((tomorrow + 20) * 1000, USD(0.02), "a1", NULL));
    tg_budget_settle(b, &hn, USD(0.02), tomorrow + 21);
    /* begun before it, reserving after: the sum counts it, and it is waited for */
    tg_budget_hold_t ho = {.started_ms = (tomorrow + 8) * 1000};
    tg_budget_reserve(b, &a, 1, USD(0.05), false, tomorrow + 22, &ho, &o);
    CHECK_INT(tg_budget_reload_waiting(b, TG_BUDGET_DAY), 2);
    tg_store_submit(s, rec((tomorrow + 8) * 1000, USD(0.03), "a1", NULL));
    tg_budget_settle(b, &ho, USD(0.03), tomorrow + 23);
    /* the straddler ends: dated yesterday in the store, so not today's */
    tg_store_submit(s, rec((tomorrow - 5) * 1000, USD(0.1), "a1", NULL));
    tg_budget_settle(b, &straddle, USD(0.1), tomorrow + 24);
    pthread_join(th, NULL);
    CHECK_INT(ra.done, 1);
    /* 0.3 + 0.04 + 0.03 from the store, 0.02 from memory; nothing held */
    CHECK_INT(spend_of(b, "property:Agent-Name", "a1", tomorrow + 30, &res), USD(0.39));
    CHECK_INT(res, 0);
    /* what a restart would read: the same */
    CHECK_INT(tg_store_flush(s, 20000), 0);
    int64_t restart = -1, *rp = &restart;
    CHECK_INT(tg_store_spend_sums(s, "property:Agent-Name", tomorrow * 1000, INT64_MAX, sum_row,
                                  &rp, err, sizeof err),
              0);
    CHECK_INT(restart, USD(0.39));
    /* the same day again: nothing to read */
    CHECK_INT(tg_gateway_budget_reload(gw, (tomorrow + 40) * 1000), 0);
    tg_gateway_free(gw);
    tg_config_release(cfg);
    tg_config_errors_free(&errs);
    remove_dir(t.dir);
}

/* Request headers for the applies tests: name=value pairs. */
static const char *pairs_header(void *h, const char *name)
{
    const char **kv = h;
    for (; kv[0]; kv += 2)
        if (!strcasecmp(kv[0], name))
            return kv[1];
    return NULL;
}

TEST(budget_planned_applies_are_the_full_lookup)
{
    static const char *const yamls[] = {
        "cost_tracking:\n  budgets: { daily: 5, monthly: 50 }\n",
        "cost_tracking:\n  budgets:\n    per_user: { daily: 1 }\n    per_key: { monthly: 2 }\n",
        "cost_tracking:\n  budgets:\n    daily: 3\n    per_property:\n"
        "      Agent-Name: { daily: 1 }\n      Team: { monthly: 4, action: warn }\n",
        "cost_tracking:\n  budgets: { daily: 10 }\n",
        "cost_tracking:\n  budgets: {}\n",
    };
    const char *heads[] = {"Helicone-User-Id",
                           "ann",
                           "Helicone-Property-Agent-Name",
                           "bot",
                           "Helicone-Property-Team",
                           "red",
                           NULL};
    for (size_t k = 0; k < sizeof yamls / sizeof *yamls; k++) {
        tg_config_errors_t errs = {0};
        tg_config_t *cfg = tg_config_load_string(yamls[k], strlen(yamls[k]), "t.yaml", &errs);
        CHECK(cfg != NULL);
        if (!cfg)
            continue;
        tg_budgets_t *b = utc_table();
        tg_spend_plan_t p;
        tg_spend_plan(cfg, &p);
        CHECK(p.generation == cfg->generation);
        tg_budget_apply_t full[TG_BUDGET_MAX_APPLY], planned[TG_BUDGET_MAX_APPLY];
        for (int withkey = 0; withkey < 2; withkey++) {
            const char *key = withkey ? "ci" : NULL;
            int nf = tg_spend_applies(cfg, b, key, pairs_header, heads, full, TG_BUDGET_MAX_APPLY);
            int np = tg_spend_applies_planned(&p, cfg, b, key, pairs_header, heads, planned,
                                              TG_BUDGET_MAX_APPLY);
            CHECK_INT(np, nf);
            for (int i = 0; i < nf && i < np; i++) {
                CHECK_STR(planned[i].scope, full[i].scope);
                CHECK_STR(planned[i].value, full[i].value);
                CHECK(planned[i].cfg.daily == full[i].cfg.daily &&
                      planned[i].cfg.monthly == full[i].cfg.monthly &&
                      planned[i].cfg.action == full[i].cfg.action);
            }
        }
        tg_budgets_free(b);
        tg_config_release(cfg);
    }
}
