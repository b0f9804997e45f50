/*
 * attempt.h — the policy of attempts, as pure functions: what went wrong
 * with one attempt (one failure class, a bit each, as nginx's
 * proxy_next_upstream mask), what the client and the record are told about
 * it, and whether the exchange retries the target, falls back to the next
 * one, or gives the failure to the client. attempt.c applies them; the unit
 * tests drive them with tables. Pure; any thread.
 */
#ifndef TG_ATTEMPT_H
#define TG_ATTEMPT_H

#include "proxy/relay.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TG_FAIL_NONE = 0,
    TG_FAIL_CONNECT = 1 << 0,   /* DNS, connect or TLS: nothing was answered */
    TG_FAIL_TIMEOUT = 1 << 1,   /* silent longer than the provider's timeout */
    TG_FAIL_BROKEN = 1 << 2,    /* cut off, malformed, a stream without its end */
    TG_FAIL_TOO_LARGE = 1 << 3, /* a buffered answer over the limit */
    TG_FAIL_429 = 1 << 4,       /* the provider's own 429 */
    TG_FAIL_5XX = 1 << 5,       /* the provider's own 5xx */
} tg_fail_t;

/* What another attempt may cure (SPEC §4, §6: connect errors, timeouts,
 * 429, 5xx, and a broken answer). An answer too large would be too large
 * again. */
#define TG_FAIL_NEXT_UPSTREAM                                                                      \
    (TG_FAIL_CONNECT | TG_FAIL_TIMEOUT | TG_FAIL_BROKEN | TG_FAIL_429 | TG_FAIL_5XX)
/* The failures of the transfer itself (not an answer the provider gave). */
#define TG_FAIL_TRANSFER (TG_FAIL_CONNECT | TG_FAIL_TIMEOUT | TG_FAIL_BROKEN | TG_FAIL_TOO_LARGE)

/** The classes of one attempt: the transfer's result (TG_UP_OK while it
 *  runs), the provider's status (0 before it answered), and whether the
 *  buffered answer went over its limit. */
unsigned tg_attempt_classify(tg_upstream_result_t res, int status, bool too_large);

/** What a failed transfer means to a client that has no answer yet: the
 *  status (502, or 504 for a timeout), the error code, the metric's kind
 *  and the message (client and record). */
typedef struct {
    int status;
    const char *code;
    const char *kind;
    char msg[512];
} tg_failure_t;
void tg_attempt_describe(unsigned fail, const char *provider, const char *err, size_t max_buffered,
                         tg_failure_t *out);

typedef enum { TG_NEXT_NONE, TG_NEXT_RETRY, TG_NEXT_FALLBACK } tg_next_t;

/* Where an exchange stands among its attempts. */
typedef struct {
    int tries_here;      /* retries made on the current target */
    int retries_allowed; /* on the current target */
    size_t fallback_index, n_fallbacks;
    int64_t retry_after_ms; /* the provider's Retry-After, 0 if none */
    int64_t retry_max_ms;   /* a provider asking for longer is left for the next target */
    bool answer_started;    /* the client has bytes of this answer: too late */
} tg_attempt_state_t;

/** Retry here, fall back, or neither, for failures `fail` under `policy` (a
 *  mask of tg_fail_t). */
tg_next_t tg_attempt_next(unsigned fail, unsigned policy, const tg_attempt_state_t *s);

/** Exponential backoff with jitter (r in [0,1]): half the step fixed, half
 *  random, so clients retrying together spread out; a provider's
 *  Retry-After wins when it asks for longer. */
int64_t tg_attempt_backoff_ms(int tries_here, int64_t min_ms, int64_t max_ms, double factor,
                              int64_t retry_after_ms, double r);

/** Retry-After: seconds, or an HTTP date (then treated as very long). */
int64_t tg_attempt_parse_retry_after(const char *v);

struct json_t;
/**
 * A translated request body's output cap lowered to `limit`, the target
 * model's maximum output tokens (the price data's; 0 = unknown: nothing
 * changes). Claude Code asks for max_tokens 32000 whatever the model; a
 * provider whose model stops at 8192 refuses that, so the translated
 * request asks for the most the model gives instead. Reads whichever of the
 * dialects' fields the body has: max_tokens, max_completion_tokens (Chat
 * Completions, Anthropic), max_output_tokens (Responses),
 * generationConfig.maxOutputTokens (Gemini). Returns the number of fields
 * lowered. Pure; any thread.
 */
int tg_attempt_clamp_output(struct json_t *body, int64_t limit);

#endif
