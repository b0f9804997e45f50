/*
 * test_redis.c — the pure parts of the shared state (redis/redis.h,
 * ratelimit_redis.c, limits.c's shared answer): URLs, their redaction, the
 * scripts' arguments, the reading of their answers.
 */
#include "budget/budget.h"
#include "cache/cache.h"
#include "proxy/limits.h"
#include "ratelimit/ratelimit.h"
#include "redis/redis.h"
#include "test.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

TEST(redis_url_forms)
{
    tg_redis_url_t u;
    char err[256];
    CHECK(tg_redis_url_parse("redis://cache:6380/2", &u, err, sizeof err) == 0);
    CHECK_STR(u.host, "cache");
    CHECK(u.port == 6380 && u.db == 2 && !u.unix_socket && !u.pass[0] && !u.user[0]);
    CHECK(tg_redis_url_parse("redis://10.0.0.1", &u, err, sizeof err) == 0);
    CHECK(u.port == 6379 && u.db == 0);
    CHECK(tg_redis_url_parse("redis://default:p%40ss@h:1/0", &u, err, sizeof err) == 0);
    CHECK_STR(u.user, "default");
    CHECK_STR(u.pass, "p@ss");
    CHECK_STR(u.host, "h");
    CHECK(tg_redis_url_parse("redis://:only@h", &u, err, sizeof err) == 0);
    CHECK_STR(u.user, "");
    CHECK_STR(u.pass, "only");
    CHECK(tg_redis_url_parse("redis://secret@h/", &u, err, sizeof err) == 0);
    CHECK_STR(u.pass, "secret");
    CHECK(tg_redis_url_parse("redis://[::1]:7000/3", &u, err, sizeof err) == 0);
    CHECK_STR(u.host, "::1");
    CHECK(u.port == 7000 && u.db == 3);
    CHECK(tg_redis_url_parse("unix:/run/redis.sock", &u, err, sizeof err) == 0);
    CHECK(u.unix_socket);
    CHECK_STR(u.host, "/run/redis.sock");
}

TEST(redis_url_refusals_never_show_the_password)
{
    tg_redis_url_t u;
    char err[256];
    const char *bad[] = {
        "rediss://u:hunter2@h",   "redis://u:hunter2@h:0",    "redis://u:hunter2@h:99999",
        "redis://u:hunter2@h/x",  "redis://u:hunter2@",       "redis://u:hunter2%zz@h",
        "redis://u:hunter2@[::1", "redis://u:hunter2@h:12ab", "http://u:hunter2@h",
        "unix:relative",          "redis://u:hunter2@h?x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        CHECK(tg_redis_url_parse(bad[i], &u, err, sizeof err) == -1);
        CHECK(err[0] != 0);
        CHECK(!strstr(err, "hunter2"));
    }
    CHECK(tg_redis_url_parse("rediss://h", &u, err, sizeof err) == -1);
    CHECK(strstr(err, "TLS") != NULL);
}

TEST(redis_url_redaction)
{
    char out[128];
    tg_redis_url_redact("redis://default:hunter2@h:6379/0", out, sizeof out);
    CHECK_STR(out, "redis://default:***@h:6379/0");
    tg_redis_url_redact("redis://hunter2@h", out, sizeof out);
    CHECK_STR(out, "redis://***@h");
    tg_redis_url_redact("redis://u:a@b@h/1", out, sizeof out); /* an @ in the password */
    CHECK_STR(out, "redis://u:***@h/1");
    tg_redis_url_redact("redis://h:1/0", out, sizeof out);
    CHECK_STR(out, "redis://h:1/0");
    tg_redis_url_redact("unix:/run/r.sock", out, sizeof out);
    CHECK_STR(out, "unix:/run/r.sock");
    tg_redis_url_redact("redis://u:hunter2@h", out, 12); /* cut short, still no password */
    CHECK(!strstr(out, "hunter2"));
}

TEST(redis_limits_script_arguments)
{
    tg_rl_check_t checks[2] = {
        {.key = "req|user:u1", .limit = {10, 60000}, .n = 1},
        {.key = "tok|user:u1", .limit = {5000, 60000}, .n = 0},
    };
    tg_redis_args_t a = {0};
    tg_rl_redis_args(&a, checks, NULL, 2);
    CHECK(a.nkeys == 2 && a.argc == 8);
    CHECK_STR(a.argv[0], "tollgate:rl:req|user:u1");
    CHECK_STR(a.argv[1], "tollgate:rl:tok|user:u1");
    const char *want[] = {"10", "60000", "1", "5000", "60000", "0"};
    for (int i = 0; i < 6; i++) {
        CHECK_STR(a.argv[2 + i], want[i]);
        CHECK(a.lens[2 + i] == strlen(want[i]));
    }
    int64_t units[2] = {1234, -5};
    tg_rl_redis_args(&a, checks, units, 2); /* reused: the charge's */
    CHECK(a.argc == 8);
    CHECK_STR(a.argv[4], "1234");
    CHECK_STR(a.argv[7], "-5");
    tg_redis_args_free(&a);
}

TEST(redis_limits_answer_read)
{
    tg_rl_check_t checks[2] = {
        {.key = "a", .limit = {10, 60000}, .n = 1},
        {.key = "b", .limit = {3, 60000}, .n = 1},
    };
    tg_rl_result_t res[2];
    int64_t ok[] = {-1, 1, 9, 0, 6000, 1, 2, 0, 20000};
    CHECK(tg_rl_redis_result(ok, 9, checks, 2, res) == -1);
    CHECK(res[0].allowed && res[0].limit == 10 && res[0].remaining == 9);
    CHECK(res[1].allowed && res[1].limit == 3 && res[1].reset_ms == 20000);
    int64_t denied[] = {1, 1, 9, 0, 6000, 0, 0, 15000, 60000};
    CHECK(tg_rl_redis_result(denied, 9, checks, 2, res) == 1);
    CHECK(!res[1].allowed && res[1].retry_after_ms == 15000);
    /* malformed: short, an index out of range, a denial that says allowed */
    CHECK(tg_rl_redis_result(ok, 5, checks, 2, res) == -2);
    int64_t far[] = {2, 0, 0, 0, 0};
    CHECK(tg_rl_redis_result(far, 5, checks, 2, res) == -2);
    int64_t liar[] = {0, 1, 0, 0, 0};
    CHECK(tg_rl_redis_result(liar, 5, checks, 2, res) == -2);
    CHECK(tg_rl_redis_result(ok, 0, checks, 2, res) == -2);
}

static const char *policy_header(void *ctx, const char *name)
{
    return !strcmp(name, "Helicone-RateLimit-Policy") ? ctx : NULL;
}

TEST(redis_limits_denial_headers_and_policy_state)
{
    tg_limits_t L = {0};
    tg_config_t cfg = {0};
    char err[128], policy[] = "5;w=60";
    CHECK(tg_limits_for_client(&L, &cfg, NULL, policy_header, policy, "1.2.3.4", NULL, err,
                               sizeof err) == 0);
    CHECK(L.n == 1 && L.header_policy == 0);
    tg_rl_headers_t rh;
    /* all passed: the headers of the answer come from Redis's figures */
    int64_t ok[] = {-1, 1, 3, 0, 24000};
    CHECK(tg_limits_shared_result(&L, ok, 5, &rh) == -1);
    CHECK(tg_limits_policy_headers(NULL, &L, &rh));
    CHECK_STR(rh.limit, "5");
    CHECK_STR(rh.remaining, "3");
    /* a denial: Retry-After in whole seconds, rounded up */
    int64_t no[] = {0, 0, 0, 11500, 60000};
    CHECK(tg_limits_shared_result(&L, no, 5, &rh) == 0);
    CHECK_STR(rh.retry_after, "12");
    CHECK_STR(rh.remaining, "0");
    int64_t junk[] = {0};
    CHECK(tg_limits_shared_result(&L, junk, 1, &rh) == -2);
    tg_limits_free(&L);
}

TEST(redis_reply_integers)
{
    redisReply e[3] = {{.type = REDIS_REPLY_INTEGER, .integer = -1},
                       {.type = REDIS_REPLY_INTEGER, .integer = 7},
                       {.type = REDIS_REPLY_STRING}};
    redisReply *els[3] = {&e[0], &e[1], &e[2]};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = els};
    int64_t v[4];
    CHECK(tg_redis_reply_ints(&arr, v, 4) == 2);
    CHECK(v[0] == -1 && v[1] == 7);
    arr.elements = 3; /* a string among them */
    CHECK(tg_redis_reply_ints(&arr, v, 4) == -1);
    CHECK(tg_redis_reply_ints(&e[0], v, 4) == -1);
    CHECK(tg_redis_reply_ints(NULL, v, 4) == -1);
}

TEST(redis_budget_script_arguments_and_answer)
{
    char err[128];
    tg_budget_calendar_t *cal = tg_budget_calendar_new("UTC", 1765065600, err, sizeof err);
    CHECK(cal != NULL);
    tg_budgets_t *b = tg_budgets_new(cal, NULL, NULL);
    tg_budget_apply_t apply[2] = {
        {.scope = "global", .value = "*", .cfg = {.daily = 1.0, .monthly = -1}},
        {.scope = "property:Team", .value = "red", .cfg = {.daily = -1, .monthly = 2.5}},
    };
    apply[1].cfg.action = TG_BUDGET_WARN;
    tg_budget_redis_slot_t sl[TG_BUDGET_REDIS_SLOTS];
    int64_t now = 1765065600 + 3600; /* 2025-12-07 01:00 UTC */
    int ns = tg_budget_redis_slots(b, apply, 2, now, sl);
    CHECK(ns == 2);
    CHECK(sl[0].period == TG_BUDGET_DAY && sl[0].limit == 1000000000 && sl[0].block);
    CHECK(sl[0].start == 1765065600 && sl[0].end == 1765065600 + 86400);
    CHECK(sl[1].period == TG_BUDGET_MONTH && sl[1].limit == 2500000000 && !sl[1].block);
    tg_redis_args_t a = {0};
    tg_budget_redis_reserve_args(&a, apply, sl, ns, 12345);
    CHECK(a.nkeys == 2 && a.argc == 2 + 1 + 6);
    CHECK_STR(a.argv[0], "tollgate:budget:daily:1765065600:global:*");
    CHECK(!strncmp(a.argv[1], "tollgate:budget:monthly:", 24));
    CHECK(strstr(a.argv[1], ":property:Team:red") != NULL);
    CHECK_STR(a.argv[2], "12345");
    CHECK_STR(a.argv[3], "1000000000");
    CHECK_STR(a.argv[4], "1");
    CHECK_STR(a.argv[5], "1765238400"); /* a day after the day ends */
    CHECK_STR(a.argv[7], "0");
    tg_budget_redis_settle_args(&a, apply, sl, ns, 12345, -1); /* unknown cost: 0 */
    CHECK(a.argc == 2 + 2 + 2);
    CHECK_STR(a.argv[2], "12345");
    CHECK_STR(a.argv[3], "0");
    tg_redis_args_free(&a);

    int64_t spend[2], open[2];
    int64_t ok[] = {-1, 500, 20, 7, 0};
    CHECK(tg_budget_redis_result(ok, 5, 2, spend, open) == -1);
    CHECK(spend[0] == 500 && open[0] == 20 && spend[1] == 7);
    int64_t no[] = {0, 999, 5};
    CHECK(tg_budget_redis_result(no, 3, 2, spend, open) == 0);
    CHECK(spend[0] == 999 && open[0] == 5);
    CHECK(tg_budget_redis_result(no, 5, 2, spend, open) == -2);
    int64_t far[] = {2, 0, 0};
    CHECK(tg_budget_redis_result(far, 3, 2, spend, open) == -2);
    tg_budgets_free(b);
}

TEST(redis_cache_stored_form)
{
    tg_cache_answer_t a = {.status = 200,
                           .content_type = "text/event-stream",
                           .body = "data: {\"x\":1}\n\n",
                           .body_len = 15,
                           .stream = true,
                           .usage = {12, 5, -1, 0, 3}};
    tg_buf_t v = {0};
    tg_cache_redis_encode(&a, &v);
    tg_cache_answer_t b;
    char ct[64];
    CHECK(tg_cache_redis_decode(v.data, v.len, &b, ct, sizeof ct));
    CHECK(b.status == 200 && b.stream && b.body_len == 15 && !memcmp(b.body, a.body, 15));
    CHECK_STR(b.content_type, "text/event-stream");
    CHECK(b.usage.prompt_tokens == 12 && b.usage.completion_tokens == 5 &&
          b.usage.cached_tokens == -1 && b.usage.reasoning_tokens == 3);
    /* cut short, another version, a content type longer than the value or the room */
    for (size_t cut = 0; cut < 40; cut++)
        CHECK(!tg_cache_redis_decode(v.data, cut, &b, ct, sizeof ct));
    CHECK(!tg_cache_redis_decode(v.data, v.len, &b, ct, 8));
    CHECK(!tg_cache_redis_decode("TGC2 200 0 0 0 0 0 0 0\n", 23, &b, ct, sizeof ct));
    CHECK(!tg_cache_redis_decode("TGC1 500 0 0 0 0 0 0 0\n", 23, &b, ct, sizeof ct));
    CHECK(!tg_cache_redis_decode("TGC1 200 0 0 0 0 0 0 99\nab", 26, &b, ct, sizeof ct));
    CHECK(tg_cache_redis_decode("TGC1 204 0 0 0 0 0 0 0\n", 23, &b, ct, sizeof ct));
    CHECK(b.body_len == 0 && b.status == 204);
    tg_buf_free(&v);

    tg_cache_key_t k;
    memset(k.digest, 0xab, sizeof k.digest);
    tg_buf_t key = {0};
    tg_cache_redis_key(&k, 3, true, &key);
    CHECK(key.len == strlen("tollgate:cache:") + 64 + strlen(":3:lock"));
    CHECK(!strncmp(key.data + key.len - 7, ":3:lock", 7));
    tg_buf_free(&key);
}
