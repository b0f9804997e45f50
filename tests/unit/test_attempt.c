/*
 * test_attempt.c — the attempt policy (proxy/attempt.h) as tables, no
 * sockets: one classification of what went wrong, what the client is told,
 * and retry versus fallback versus giving up.
 */
#include "proxy/attempt.h"
#include "test.h"

#include <jansson.h>
#include <stdint.h>

TEST(attempt_classify_table)
{
    static const struct {
        tg_upstream_result_t res;
        int status;
        bool too_large;
        unsigned want;
    } t[] = {
        {TG_UP_OK, 200, false, TG_FAIL_NONE},
        {TG_UP_OK, 404, false, TG_FAIL_NONE}, /* the provider's own 4xx passes on */
        {TG_UP_OK, 429, false, TG_FAIL_429},
        {TG_UP_OK, 503, false, TG_FAIL_5XX},
        {TG_UP_CONNECT, 0, false, TG_FAIL_CONNECT},
        {TG_UP_TIMEOUT, 0, false, TG_FAIL_TIMEOUT},
        {TG_UP_TIMEOUT, 200, false, TG_FAIL_TIMEOUT},
        {TG_UP_BROKEN, 200, false, TG_FAIL_BROKEN},
        {TG_UP_BROKEN, 200, true, TG_FAIL_BROKEN | TG_FAIL_TOO_LARGE},
        {TG_UP_TOO_LARGE, 200, false, TG_FAIL_BROKEN}, /* the relay's own limit */
        {TG_UP_BROKEN, 502, false, TG_FAIL_BROKEN | TG_FAIL_5XX},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_INT(tg_attempt_classify(t[i].res, t[i].status, t[i].too_large), t[i].want);
}

TEST(attempt_next_table)
{
    const unsigned P = TG_FAIL_NEXT_UPSTREAM;
    static const struct {
        unsigned fail;
        tg_attempt_state_t s;
        tg_next_t want;
    } t[] = {
        /* nothing wrong: nothing to do */
        {TG_FAIL_NONE, {.retries_allowed = 3, .n_fallbacks = 1}, TG_NEXT_NONE},
        /* retries first, then the fallbacks, then the failure */
        {TG_FAIL_5XX, {.retries_allowed = 2, .n_fallbacks = 1}, TG_NEXT_RETRY},
        {TG_FAIL_5XX, {.tries_here = 2, .retries_allowed = 2, .n_fallbacks = 1}, TG_NEXT_FALLBACK},
        {TG_FAIL_5XX,
         {.tries_here = 2, .retries_allowed = 2, .fallback_index = 1, .n_fallbacks = 1},
         TG_NEXT_NONE},
        {TG_FAIL_CONNECT, {.n_fallbacks = 2}, TG_NEXT_FALLBACK},
        {TG_FAIL_TIMEOUT, {.retries_allowed = 1}, TG_NEXT_RETRY},
        {TG_FAIL_BROKEN, {.retries_allowed = 1}, TG_NEXT_RETRY},
        /* a provider asking to wait longer than we retry: the next target */
        {TG_FAIL_429,
         {.retries_allowed = 5, .retry_after_ms = 30000, .retry_max_ms = 10000, .n_fallbacks = 1},
         TG_NEXT_FALLBACK},
        {TG_FAIL_429,
         {.retries_allowed = 5, .retry_after_ms = 30000, .retry_max_ms = 10000},
         TG_NEXT_NONE},
        {TG_FAIL_429,
         {.retries_allowed = 5, .retry_after_ms = 2000, .retry_max_ms = 10000},
         TG_NEXT_RETRY},
        /* too large would be too large again, even if it also broke off */
        {TG_FAIL_TOO_LARGE, {.retries_allowed = 3, .n_fallbacks = 1}, TG_NEXT_NONE},
        {TG_FAIL_BROKEN | TG_FAIL_TOO_LARGE,
         {.retries_allowed = 3, .n_fallbacks = 1},
         TG_NEXT_NONE},
        /* once the client has bytes of the answer, it is too late */
        {TG_FAIL_BROKEN,
         {.retries_allowed = 3, .n_fallbacks = 1, .answer_started = true},
         TG_NEXT_NONE},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        tg_next_t got = tg_attempt_next(t[i].fail, P, &t[i].s);
        if (got != t[i].want)
            tg_test_fail(__FILE__, __LINE__, "row %zu: next %d, expected %d", i, got, t[i].want);
    }
    /* the policy is a mask: without 429 in it, a 429 is the client's */
    tg_attempt_state_t s = {.retries_allowed = 3};
    CHECK_INT(tg_attempt_next(TG_FAIL_429, P & ~TG_FAIL_429, &s), TG_NEXT_NONE);
}

TEST(attempt_describe_failures)
{
    tg_failure_t f;
    tg_attempt_describe(TG_FAIL_TIMEOUT, "p", "idle 5 s", 64u << 20, &f);
    CHECK_INT(f.status, 504);
    CHECK_STR(f.code, "provider_timeout");
    CHECK_STR(f.kind, "timeout");
    CHECK_STR(f.msg, "provider 'p' timed out: idle 5 s");
    tg_attempt_describe(TG_FAIL_CONNECT, "p", "refused", 64u << 20, &f);
    CHECK_INT(f.status, 502);
    CHECK_STR(f.code, "provider_unreachable");
    tg_attempt_describe(TG_FAIL_BROKEN | TG_FAIL_TOO_LARGE, "p", "x", 64u << 20, &f);
    CHECK_STR(f.kind, "too_large");
    CHECK_STR(f.msg, "provider 'p' answered more than 64 MiB");
    tg_attempt_describe(TG_FAIL_BROKEN, "p", "cut", 64u << 20, &f);
    CHECK_STR(f.code, "provider_error");
    CHECK_STR(f.msg, "provider 'p' broke off its answer: cut");
}

TEST(attempt_backoff_and_retry_after)
{
    /* step = min * factor^tries, capped at max; half fixed, half jitter */
    CHECK_INT(tg_attempt_backoff_ms(0, 1000, 10000, 2, 0, 0.0), 500);
    CHECK_INT(tg_attempt_backoff_ms(0, 1000, 10000, 2, 0, 1.0), 1000);
    CHECK_INT(tg_attempt_backoff_ms(2, 1000, 10000, 2, 0, 1.0), 4000);
    CHECK_INT(tg_attempt_backoff_ms(5, 1000, 10000, 2, 0, 1.0), 10000);
    CHECK_INT(tg_attempt_backoff_ms(0, 1000, 10000, 2, 7000, 0.5), 7000); /* Retry-After wins */
    CHECK_INT(tg_attempt_parse_retry_after(NULL), 0);
    CHECK_INT(tg_attempt_parse_retry_after("3"), 3000);
    CHECK_INT(tg_attempt_parse_retry_after("0.5"), 500);
    CHECK(tg_attempt_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") > 10000);
}

/* A translated body's output cap is lowered to the model's limit, in each
 * dialect's field; a smaller cap, an unknown limit or no cap stay. */
TEST(attempt_clamp_output_to_the_model_limit)
{
    json_t *b = json_pack("{s:s, s:i}", "model", "deepseek-chat", "max_tokens", 32000);
    CHECK_INT(tg_attempt_clamp_output(b, 8192), 1);
    CHECK_INT(json_integer_value(json_object_get(b, "max_tokens")), 8192);
    CHECK_INT(tg_attempt_clamp_output(b, 8192), 0); /* at the limit: unchanged */
    CHECK_INT(tg_attempt_clamp_output(b, 0), 0);    /* unknown limit */
    json_decref(b);
    b = json_pack("{s:i, s:i}", "max_completion_tokens", 100000, "max_output_tokens", 90000);
    CHECK_INT(tg_attempt_clamp_output(b, 16384), 2);
    CHECK_INT(json_integer_value(json_object_get(b, "max_completion_tokens")), 16384);
    CHECK_INT(json_integer_value(json_object_get(b, "max_output_tokens")), 16384);
    json_decref(b);
    b = json_pack("{s:{s:i, s:f}}", "generationConfig", "maxOutputTokens", 32000, "temperature",
                  0.5);
    CHECK_INT(tg_attempt_clamp_output(b, 8192), 1);
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(b, "generationConfig"), "maxOutputTokens")),
              8192);
    json_decref(b);
    b = json_pack("{s:i, s:s}", "max_tokens", 500, "max_completion_tokens", "lots");
    CHECK_INT(tg_attempt_clamp_output(b, 8192), 0); /* below, or not a number: left alone */
    CHECK_INT(json_integer_value(json_object_get(b, "max_tokens")), 500);
    json_decref(b);
    CHECK_INT(tg_attempt_clamp_output(NULL, 8192), 0);
}
