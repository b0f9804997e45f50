/* Rate limits: GCRA on a simulated clock, token and spend charging, the
 * Helicone-RateLimit-Policy parser, runtime rules, threads
 * (src/ratelimit/ratelimit.h). */
#include "test.h"

#include "ratelimit/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>

typedef struct {
    _Atomic int64_t now;
} sim_clock_t;

static int64_t sim_now(void *arg)
{
    return atomic_load(&((sim_clock_t *)arg)->now);
}

static bool take(tg_rl_t *rl, const char *key, int64_t quota, int64_t window_ms)
{
    tg_rl_limit_t lim = {quota, window_ms};
    tg_rl_result_t r;
    tg_rl_acquire(rl, key, &lim, 1, &r);
    return r.allowed;
}

/* ------------------------------------------------------------------ GCRA */

TEST(rl_burst_then_denied_with_retry_after)
{
    sim_clock_t clk = {1000000};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_limit_t lim = {10, 60000}; /* 10 a minute: one per 6 s */
    tg_rl_result_t r;
    for (int i = 0; i < 10; i++) {
        tg_rl_acquire(rl, "req|user:u1", &lim, 1, &r);
        CHECK(r.allowed);
        CHECK_INT(r.limit, 10);
        CHECK_INT(r.remaining, 9 - i);
        CHECK_INT(r.retry_after_ms, 0);
    }
    tg_rl_acquire(rl, "req|user:u1", &lim, 1, &r);
    CHECK(!r.allowed);
    CHECK_INT(r.remaining, 0);
    CHECK_INT(r.retry_after_ms, 6000);
    CHECK_INT(r.reset_ms, 60000);
    tg_rl_free(rl);
}

TEST(rl_steady_rate_allowed)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    /* 60 a minute: after the burst, exactly one a second passes, forever */
    for (int i = 0; i < 60; i++)
        CHECK(take(rl, "k", 60, 60000));
    CHECK(!take(rl, "k", 60, 60000));
    int allowed = 0, denied = 0;
    for (int s = 1; s <= 600; s++) {
        clk.now = s * 1000;
        allowed += take(rl, "k", 60, 60000);
        denied += !take(rl, "k", 60, 60000);
    }
    CHECK_INT(allowed, 600);
    CHECK_INT(denied, 600);
    /* and a client pacing itself at the rate from a cold start is never refused */
    for (int s = 0; s < 1000; s++) {
        clk.now = 10000000 + s * 1000;
        CHECK(take(rl, "paced", 60, 60000));
    }
    tg_rl_free(rl);
}

TEST(rl_no_boundary_burst)
{
    /* A fixed-window counter of 100 per minute lets 100 through at 0:59 and
     * another 100 at 1:01 — 200 in two seconds. GCRA lets the second burst
     * have only what drained in those two seconds. */
    sim_clock_t clk = {59000};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    int first = 0, second = 0;
    for (int i = 0; i < 100; i++)
        first += take(rl, "edge", 100, 60000);
    clk.now = 61000;
    for (int i = 0; i < 100; i++)
        second += take(rl, "edge", 100, 60000);
    CHECK_INT(first, 100);
    CHECK_INT(second, 3); /* 2000 ms x 100/60000 per ms = 3.33 */

    /* The general bound, on random traffic over 20 minutes: in any span
     * [a, b] at most Q + (b - a) x Q / W requests pass. */
    tg_rl_t *rl2 = tg_rl_new(100, sim_now, &clk);
    enum { Q = 20, W = 60000 };
    int64_t *times = tg_xmalloc(20000 * sizeof *times);
    int n = 0;
    unsigned seed = 12345;
    clk.now = 0;
    for (int i = 0; i < 20000 && clk.now < 20 * 60000; i++) {
        seed = seed * 1103515245u + 12345u;
        clk.now += (seed >> 16) % 400; /* bursty: 0..400 ms apart */
        if (take(rl2, "rand", Q, W))
            times[n++] = clk.now;
    }
    int worst_excess = 0;
    for (int i = 0; i < n; i++)
        for (int j = i; j < n && times[j] - times[i] <= 3 * W; j++) {
            int count = j - i + 1;
            /* allowed: Q + floor((b - a) Q / W) */
            int bound = Q + (int)((times[j] - times[i]) * Q / W);
            if (count - bound > worst_excess)
                worst_excess = count - bound;
        }
    CHECK_INT(worst_excess, 0);
    CHECK(n > 20 * Q); /* and the long-run rate is the limit, not less */
    CHECK(n <= 20 * Q + Q);
    free(times);
    tg_rl_free(rl2);
    tg_rl_free(rl);
}

TEST(rl_retry_after_is_exact)
{
    sim_clock_t clk = {777};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_limit_t lim = {7, 60000}; /* one per 8571.43 ms: not a whole number */
    tg_rl_result_t r;
    for (int round = 0; round < 50; round++) {
        for (;;) {
            tg_rl_acquire(rl, "k", &lim, 1, &r);
            if (!r.allowed)
                break;
        }
        int64_t wait = r.retry_after_ms;
        CHECK(wait > 0 && wait <= 8572);
        clk.now += wait - 1;
        tg_rl_acquire(rl, "k", &lim, 1, &r);
        CHECK(!r.allowed);
        CHECK_INT(r.retry_after_ms, 1);
        clk.now += 1;
        tg_rl_acquire(rl, "k", &lim, 1, &r);
        CHECK(r.allowed);
        clk.now += round * 997; /* let some drain before the next round */
    }
    tg_rl_free(rl);
}

TEST(rl_keys_are_independent)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    for (int i = 0; i < 3; i++) {
        CHECK(take(rl, "req|user:alice", 3, 60000));
        CHECK(take(rl, "req|user:bob", 3, 60000));
    }
    CHECK(!take(rl, "req|user:alice", 3, 60000)); /* the 4th of 3-per-minute */
    CHECK(!take(rl, "req|user:bob", 3, 60000));
    CHECK(take(rl, "req|user:carol", 3, 60000));
    CHECK(take(rl, "req|ip:1.2.3.4", 3, 60000));
    tg_rl_free(rl);
}

TEST(rl_tokens_charged_after_the_call)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_limit_t tpm = {1000, 60000};
    tg_rl_result_t r;
    /* before the call: admit while not exhausted, consume nothing */
    tg_rl_acquire(rl, "tok|key:k", &tpm, 0, &r);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 1000);
    CHECK_INT(tg_rl_size(rl), 0);             /* a check alone does not even create a key */
    tg_rl_charge(rl, "tok|key:k", &tpm, 800); /* after the call: real usage */
    tg_rl_acquire(rl, "tok|key:k", &tpm, 0, &r);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 200);
    tg_rl_charge(rl, "tok|key:k", &tpm, 800); /* overdrawn: 1600 of 1000 */
    tg_rl_acquire(rl, "tok|key:k", &tpm, 0, &r);
    CHECK(!r.allowed);
    CHECK_INT(r.remaining, 0);
    /* the debt is waited off: 601 tokens at 1000/min = 36060 ms */
    CHECK_INT(r.retry_after_ms, 36060);
    CHECK_INT(r.reset_ms, 96000);
    clk.now = 36059;
    tg_rl_peek(rl, "tok|key:k", &tpm, &r);
    CHECK(!r.allowed);
    clk.now = 36060;
    tg_rl_peek(rl, "tok|key:k", &tpm, &r);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 1);
    /* a refund (reservation larger than the usage) gives units back */
    tg_rl_charge(rl, "tok|key:k", &tpm, -500);
    tg_rl_peek(rl, "tok|key:k", &tpm, &r);
    CHECK_INT(r.remaining, 501);
    /* reserving with n > 0 works too; more than the quota can never pass */
    tg_rl_acquire(rl, "tok|key:k", &tpm, 501, &r);
    CHECK(r.allowed);
    CHECK_INT(r.remaining, 0);
    tg_rl_acquire(rl, "tok|key:k2", &tpm, 1001, &r);
    CHECK(!r.allowed);
    CHECK_INT(r.retry_after_ms, -1);
    tg_rl_free(rl);
}

TEST(rl_no_limit_and_limit_change)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_limit_t none = {0, 60000};
    tg_rl_result_t r;
    for (int i = 0; i < 1000; i++) {
        tg_rl_acquire(rl, "free", &none, 1, &r);
        CHECK(r.allowed);
    }
    CHECK_INT(tg_rl_size(rl), 0);
    /* a reload changing 10/min into 20/min keeps what was used: 10 used,
     * 10 more pass */
    for (int i = 0; i < 10; i++)
        CHECK(take(rl, "chg", 10, 60000));
    CHECK(!take(rl, "chg", 10, 60000));
    int more = 0;
    for (int i = 0; i < 30; i++)
        more += take(rl, "chg", 20, 60000);
    CHECK_INT(more, 10);
    /* a fresh key, its 10 units then measured against a 2-minute window of 20 */
    for (int i = 0; i < 10; i++)
        CHECK(take(rl, "chg2", 10, 60000));
    tg_rl_limit_t two_min = {20, 120000};
    tg_rl_peek(rl, "chg2", &two_min, &r);
    CHECK_INT(r.remaining, 10);
    tg_rl_free(rl);
}

TEST(rl_acquire_all_is_all_or_nothing)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_check_t checks[] = {
        {"req|provider:openai", {5, 60000}, 1},
        {"req|user:u1", {1, 60000}, 1},
        {"tok|provider:openai", {1000, 60000}, 0},
    };
    tg_rl_result_t res[3];
    CHECK_INT(tg_rl_acquire_all(rl, checks, 3, res), -1);
    CHECK_INT(res[0].remaining, 4);
    CHECK_INT(res[1].remaining, 0);
    CHECK_INT(tg_rl_acquire_all(rl, checks, 3, res), 1);
    CHECK(!res[1].allowed);
    CHECK_INT(res[1].retry_after_ms, 60000);
    CHECK_INT(res[2].limit, 0); /* not evaluated */
    tg_rl_result_t r;
    tg_rl_peek(rl, "req|provider:openai", &checks[0].limit, &r);
    CHECK_INT(r.remaining, 4); /* the denied request's unit was given back */
    tg_rl_free(rl);
}

TEST(rl_memory_is_bounded)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "ip:10.0.%d.%d", i / 256, i % 256);
        CHECK(take(rl, key, 5, 60000));
    }
    CHECK(tg_rl_size(rl) <= 100);
    /* idle keys (fully drained) are dropped as they are met */
    clk.now = 3600000;
    for (int i = 0; i < 50; i++)
        take(rl, "fresh", 1000, 60000);
    CHECK(tg_rl_size(rl) < 100);
    /* the large (sharded) limiter is bounded too */
    tg_rl_t *big = tg_rl_new(2048, sim_now, &clk);
    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof key, "user:%d", i);
        take(big, key, 5, 60000);
    }
    CHECK(tg_rl_size(big) <= 2048);
    tg_rl_free(big);
    tg_rl_free(rl);
}

typedef struct {
    tg_rl_t *rl;
    pthread_barrier_t *start;
    int allowed[4];
} thr_arg_t;

static void *rl_thread(void *p)
{
    thr_arg_t *a = p;
    static const char *keys[] = {"req|k0", "req|k1", "req|k2", "req|k3"};
    pthread_barrier_wait(a->start);
    for (int i = 0; i < 2000; i++) {
        int k = i % 4;
        a->allowed[k] += take(a->rl, keys[k], 300, 60000);
    }
    return NULL;
}

TEST(rl_threads_exact_count)
{
    for (int variant = 0; variant < 2; variant++) {
        sim_clock_t clk = {5000}; /* frozen: exactly the burst may pass */
        tg_rl_t *rl = tg_rl_new(variant ? 10000 : 10, sim_now, &clk);
        enum { T = 8 };
        pthread_t th[T];
        thr_arg_t args[T];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, T);
        for (int i = 0; i < T; i++) {
            args[i] = (thr_arg_t){.rl = rl, .start = &start};
            pthread_create(&th[i], NULL, rl_thread, &args[i]);
        }
        int total[4] = {0};
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            for (int k = 0; k < 4; k++)
                total[k] += args[i].allowed[k];
        }
        for (int k = 0; k < 4; k++)
            CHECK_INT(total[k], 300);
        pthread_barrier_destroy(&start);
        tg_rl_free(rl);
    }
}

/* ---------------------------------------------------------------- policy */

TEST(rl_policy_parse_good)
{
    tg_rl_policy_t p;
    char err[160], buf[128];
    CHECK_INT(tg_rl_policy_parse("100;w=60", &p, err, sizeof err), 0);
    CHECK_INT(p.quota, 100);
    CHECK_INT(p.window_s, 60);
    CHECK_INT(p.unit, TG_RL_UNIT_REQUEST);
    CHECK_INT(p.segment, TG_RL_SEGMENT_GLOBAL);
    tg_rl_policy_format(&p, buf, sizeof buf);
    CHECK_STR(buf, "100;w=60");

    CHECK_INT(tg_rl_policy_parse(" 5 ; w = 3600 ; u = cents ; s = user ", &p, err, sizeof err), 0);
    CHECK_INT(p.quota, 5);
    CHECK_INT(p.window_s, 3600);
    CHECK_INT(p.unit, TG_RL_UNIT_CENTS);
    CHECK_INT(p.segment, TG_RL_SEGMENT_USER);
    tg_rl_policy_format(&p, buf, sizeof buf);
    CHECK_STR(buf, "5;w=3600;u=cents;s=user");

    CHECK_INT(tg_rl_policy_parse("300;s=Organization;w=1800;u=request;", &p, err, sizeof err), 0);
    CHECK_INT(p.segment, TG_RL_SEGMENT_PROPERTY);
    CHECK_STR(p.property, "organization");
    tg_rl_policy_format(&p, buf, sizeof buf);
    CHECK_STR(buf, "300;w=1800;s=organization");

    CHECK_INT(tg_rl_policy_parse("500000;w=86400;s=user", &p, err, sizeof err), 0);
    CHECK_INT(tg_rl_policy_parse("1;w=31536000", &p, err, sizeof err), 0);
    CHECK_INT(tg_rl_policy_parse("1000;w=60;u=token", &p, err, sizeof err), 0);
    CHECK_INT(p.unit, TG_RL_UNIT_TOKEN);
}

TEST(rl_policy_parse_bad)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "quota"},
        {"abc", "quota"},
        {"0;w=60", "quota"},
        {"-5;w=60", "quota"},
        {"1.5;w=60", "quota"},
        {"10", "window"},
        {"10;u=cents", "window"},
        {"10;w=59", "60 to 31536000"},
        {"10;w=31536001", "60 to 31536000"},
        {"10;w=6O", "60 to 31536000"},
        {"10;w=", "60 to 31536000"},
        {"10;w", "name=value"},
        {"10;w=60;w=60", "twice"},
        {"10;w=60;u=dollars", "u="},
        {"10;w=60;s=", "s="},
        {"10;w=60;s=a b", "s="},
        {"10;w=60;x=1", "unknown parameter \"x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_rl_policy_t p;
        char err[160] = "";
        int rc = tg_rl_policy_parse(bad[i].in, &p, err, sizeof err);
        if (rc != -1 || !strstr(err, bad[i].msg))
            tg_test_fail(__FILE__, __LINE__, "\"%s\" gave %d \"%s\", expected an error with \"%s\"",
                         bad[i].in, rc, err, bad[i].msg);
    }
    tg_rl_policy_t p;
    CHECK_INT(tg_rl_policy_parse(NULL, &p, NULL, 0), -1);
}

TEST(rl_policy_keys_headers_and_cents)
{
    sim_clock_t clk = {0};
    tg_rl_t *rl = tg_rl_new(100, sim_now, &clk);
    tg_rl_policy_t p;
    CHECK_INT(tg_rl_policy_parse("3;w=60;s=user", &p, NULL, 0), 0);
    tg_buf_t k1 = {0}, k2 = {0}, k3 = {0};
    CHECK_INT(tg_rl_policy_key(&p, NULL, NULL, &k1), -1); /* no user id: not applied */
    CHECK_INT(tg_rl_policy_key(&p, "team", "u1", &k1), 0);
    CHECK_INT(tg_rl_policy_key(&p, "team", "u2", &k2), 0);
    CHECK_INT(tg_rl_policy_key(&p, "other", "u1", &k3), 0);
    CHECK(strcmp(k1.data, k2.data) && strcmp(k1.data, k3.data));
    tg_rl_limit_t lim = tg_rl_policy_limit(&p);
    CHECK_INT(lim.quota, 3);
    CHECK_INT(lim.window_ms, 60000);
    tg_rl_result_t r;
    tg_rl_headers_t h;
    for (int i = 0; i < 3; i++)
        tg_rl_acquire(rl, k1.data, &lim, 1, &r);
    tg_rl_headers(&p, &r, &h);
    CHECK_STR(h.limit, "3");
    CHECK_STR(h.remaining, "0");
    CHECK_STR(h.policy, "3;w=60;s=user");
    tg_rl_acquire(rl, k1.data, &lim, 1, &r);
    CHECK(!r.allowed);
    tg_rl_headers(&p, &r, &h);
    CHECK_STR(h.retry_after, "20");
    tg_rl_acquire(rl, k2.data, &lim, 1, &r); /* another user passes */
    CHECK(r.allowed);
    clk.now = 19001; /* 999 ms left: Retry-After rounds up to 1 s */
    tg_rl_acquire(rl, k1.data, &lim, 1, &r);
    CHECK(!r.allowed);
    tg_rl_headers(&p, &r, &h);
    CHECK_STR(h.retry_after, "1");

    /* spend: 100 cents a minute, charged after each call with its cost */
    CHECK_INT(tg_rl_policy_parse("100;w=60;u=cents", &p, NULL, 0), 0);
    lim = tg_rl_policy_limit(&p);
    CHECK_INT(lim.quota, 100 * TG_RL_MICROS_PER_CENT);
    tg_buf_t kc = {0};
    CHECK_INT(tg_rl_policy_key(&p, NULL, NULL, &kc), 0); /* global needs no value */
    tg_rl_acquire(rl, kc.data, &lim, 0, &r);
    CHECK(r.allowed);
    tg_rl_charge(rl, kc.data, &lim, tg_rl_usd_units(0.5));       /* 50 cents */
    tg_rl_charge(rl, kc.data, &lim, tg_rl_usd_units(0.0000123)); /* fractions count */
    tg_rl_peek(rl, kc.data, &lim, &r);
    tg_rl_headers(&p, &r, &h);
    CHECK_STR(h.remaining, "49");
    CHECK_STR(h.policy, "100;w=60;u=cents");
    tg_rl_charge(rl, kc.data, &lim, tg_rl_usd_units(0.5));
    tg_rl_acquire(rl, kc.data, &lim, 0, &r);
    CHECK(!r.allowed);
    CHECK_INT(tg_rl_usd_units(-1), 0);
    CHECK_INT(tg_rl_usd_units(0.01), 10000);

    tg_buf_free(&k1);
    tg_buf_free(&k2);
    tg_buf_free(&k3);
    tg_buf_free(&kc);
    tg_rl_free(rl);
}

/* -------------------------------------------------------------- registry */

static const char *props(void *ctx, const char *name)
{
    const char **h = ctx;
    for (; h[0]; h += 2)
        if (!strcasecmp(h[0], name))
            return h[1];
    return NULL;
}

TEST(rl_runtime_rules)
{
    tg_rl_rule_t rule;
    char err[160];
    const char *body =
        "{\"property\":\"Agent-Name\",\"value\":\"a1\",\"limit\":100,\"window\":\"1m\"}";
    CHECK_INT(tg_rl_rule_parse_json(body, strlen(body), &rule, err, sizeof err), 0);
    CHECK_STR(rule.property, "Agent-Name");
    CHECK_STR(rule.value, "a1");
    CHECK_INT(rule.policy.quota, 100);
    CHECK_INT(rule.policy.window_s, 60);
    CHECK_INT(rule.policy.unit, TG_RL_UNIT_REQUEST);
    CHECK_STR(rule.id, "");

    static const char *bad[] = {
        "[]",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":0,\"window\":\"1m\"}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":\"forever\"}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":\"500ms\"}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5}",
        "{\"property\":\"\",\"value\":\"v\",\"limit\":5,\"window\":60}",
        "{\"property\":\"A B\",\"value\":\"v\",\"limit\":5,\"window\":60}",
        "{\"property\":\"A\",\"limit\":5,\"window\":60}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":60,\"extra\":1}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":60,\"unit\":\"usd\"}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":60,\"unit\":1}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":60,\"unit\":\"cent\\u0000s\"}",
        "{\"property\":\"A\",\"value\":\"v\",\"limit\":5,\"window\":9223372036854775807}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (tg_rl_rule_parse_json(bad[i], strlen(bad[i]), &rule, err, sizeof err) != -1 || !err[0])
            tg_test_fail(__FILE__, __LINE__, "accepted %s", bad[i]);
    }

    tg_rl_registry_t *reg = tg_rl_registry_new();
    tg_rl_rule_t a, b;
    CHECK_INT(tg_rl_rule_parse_json(body, strlen(body), &a, NULL, 0), 0);
    const char *body2 = "{\"property\":\"team\",\"value\":\"red\",\"limit\":5,\"window\":3600,"
                        "\"unit\":\"cents\"}";
    CHECK_INT(tg_rl_rule_parse_json(body2, strlen(body2), &b, NULL, 0), 0);
    CHECK_INT(tg_rl_registry_add(reg, &a), 0);
    CHECK_INT(strlen(a.id), 36); /* a fresh UUID */
    strcpy(b.id, "kept-from-the-store");
    CHECK_INT(tg_rl_registry_add(reg, &b), 0);
    CHECK_INT(tg_rl_registry_add(reg, &b), -1); /* id taken */

    tg_rl_rule_t *list;
    size_t n = tg_rl_registry_list(reg, &list);
    CHECK_INT(n, 2);
    CHECK_STR(list[0].id, a.id);
    CHECK_STR(list[1].id, "kept-from-the-store");
    CHECK_INT(list[1].policy.unit, TG_RL_UNIT_CENTS);
    free(list);

    const char *req1[] = {"agent-name", "a1", "Team", "red", NULL};
    const char *req2[] = {"Agent-Name", "a2", NULL};
    tg_rl_rule_t m[4];
    CHECK_INT(tg_rl_registry_match(reg, props, req1, m, 4), 2);
    CHECK_STR(m[0].id, a.id);
    CHECK_INT(tg_rl_registry_match(reg, props, req2, m, 4), 0);
    CHECK_INT(tg_rl_registry_match(reg, props, req1, m, 1), 2); /* count beyond max */

    CHECK(tg_rl_registry_remove(reg, a.id));
    CHECK(!tg_rl_registry_remove(reg, a.id));
    CHECK_INT(tg_rl_registry_match(reg, props, req1, m, 4), 1);
    CHECK_STR(m[0].id, "kept-from-the-store");
    tg_rl_registry_free(reg);
}

/* Units by name: what the store writes and reads back, and the parsers use. */
TEST(rl_unit_names_round_trip)
{
    for (int u = TG_RL_UNIT_REQUEST; u <= TG_RL_UNIT_TOKEN; u++) {
        const char *name = tg_rl_unit_name((tg_rl_unit_t)u);
        tg_rl_unit_t back = TG_RL_UNIT_REQUEST;
        CHECK_INT(tg_rl_unit_parse(name, strlen(name), &back), 0);
        CHECK_INT(back, u);
    }
    CHECK_STR(tg_rl_unit_name(TG_RL_UNIT_CENTS), "cents");
    tg_rl_unit_t u;
    CHECK_INT(tg_rl_unit_parse("Tokens", 6, &u), 0);
    CHECK_INT(u, TG_RL_UNIT_TOKEN);
    CHECK_INT(tg_rl_unit_parse("requestx", 7, &u), 0); /* the length counts, not a NUL */
    CHECK_INT(u, TG_RL_UNIT_REQUEST);
    CHECK_INT(tg_rl_unit_parse("usd", 3, &u), -1);
    CHECK_INT(tg_rl_unit_parse("", 0, &u), -1);
    /* the derived fields of a rule read back from the store */
    tg_rl_rule_t r;
    memset(&r, 0, sizeof r);
    strcpy(r.property, "Agent-Name");
    tg_rl_rule_normalize(&r);
    CHECK_INT(r.policy.segment, TG_RL_SEGMENT_PROPERTY);
    CHECK_STR(r.policy.property, "agent-name");
}
