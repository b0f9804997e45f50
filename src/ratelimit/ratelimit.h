/*
 * ratelimit.h — rate limits (SPEC §6, §7; docs/traffic.md).
 *
 * A limit is "quota units per window" kept per key with GCRA (the generic
 * cell rate algorithm, a leaky bucket of capacity `quota` draining at
 * quota/window): a burst of up to `quota` passes at once, after which units
 * come back smoothly, one every window/quota. There are no window edges, so
 * the fixed-window trick of a full quota just before an edge and another
 * just after never works. Over any span of t ms at most
 * quota + t * quota / window units pass.
 *
 * Units: requests (charged 1 before the call), tokens and spend (charged
 * after the call with the real usage: admitted while the bucket is not
 * full, so concurrent calls can overdraw it, and the debt is then waited
 * off — over time the rate is exact).
 *
 * Keys are opaque strings chosen by the caller, one per (dimension, entity):
 * "req|provider:openai", "tok|ip:1.2.3.4", "req|key:name", "req|user:u1",
 * "req|prop:agent-name=a1", "rule:<id>", tg_rl_policy_key() for
 * Helicone-RateLimit-Policy.
 *
 * Every function is thread-safe (sharded locks); time comes from the clock
 * given to tg_rl_new, so tests run on a simulated one.
 */
#ifndef TG_RATELIMIT_H
#define TG_RATELIMIT_H

#include "core/util.h"
#include "redis/redis.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_rl tg_rl_t;

/** Milliseconds on a monotonic clock. */
typedef int64_t (*tg_rl_clock_fn)(void *arg);

/** quota units per window_ms. quota <= 0 means no limit. */
typedef struct {
    int64_t quota;
    int64_t window_ms;
} tg_rl_limit_t;

typedef struct {
    bool allowed;
    int64_t limit;          /* the quota */
    int64_t remaining;      /* whole units that would still pass now */
    int64_t retry_after_ms; /* denied: wait this long (-1: never, more than the quota asked);
                               allowed: 0 */
    int64_t reset_ms;       /* until the whole quota is available again */
} tg_rl_result_t;

/** A limiter tracking at most max_keys keys (0 = 100000); least recently
 *  used keys go first, idle (fully drained) ones as soon as seen. clock
 *  NULL = tg_mono_ms. */
tg_rl_t *tg_rl_new(size_t max_keys, tg_rl_clock_fn clock, void *clock_arg);
void tg_rl_free(tg_rl_t *rl);

/**
 * Check and consume: allowed when max(n, 1) units fit, and then n units are
 * consumed (n = 0: admit while the bucket is not full, consume nothing — the
 * check before a call whose tokens or cost are charged after). A denial
 * consumes nothing.
 */
void tg_rl_acquire(tg_rl_t *rl, const char *key, const tg_rl_limit_t *lim, int64_t n,
                   tg_rl_result_t *out);

/** Charge n units unconditionally (after the call: tokens, cost); the bucket
 *  may go over its capacity, which later requests wait off. n < 0 refunds. */
void tg_rl_charge(tg_rl_t *rl, const char *key, const tg_rl_limit_t *lim, int64_t n);

/** The state of a key without changing it (as an acquire of 0 units). */
void tg_rl_peek(tg_rl_t *rl, const char *key, const tg_rl_limit_t *lim, tg_rl_result_t *out);

typedef struct {
    const char *key;
    tg_rl_limit_t limit;
    int64_t n;
} tg_rl_check_t;

/**
 * Acquire every check, all or nothing: returns -1 when all passed (each
 * consumed), else the index of the first denied one, whose result says why
 * (what the earlier ones consumed is given back). results has n_checks
 * slots; those after a denial are left zero.
 */
int tg_rl_acquire_all(tg_rl_t *rl, const tg_rl_check_t *checks, size_t n_checks,
                      tg_rl_result_t *results);

/** Keys tracked now. */
size_t tg_rl_size(tg_rl_t *rl);

/* ------------------------------------------- Helicone-RateLimit-Policy */

typedef enum {
    TG_RL_UNIT_REQUEST = 0,
    TG_RL_UNIT_CENTS, /* spend; counted in micro-dollars inside (see tg_rl_usd_units) */
    TG_RL_UNIT_TOKEN, /* tollgate's own: config tokens_per_minute, or u=token */
} tg_rl_unit_t;

typedef enum {
    TG_RL_SEGMENT_GLOBAL = 0,
    TG_RL_SEGMENT_USER,     /* per Helicone-User-Id */
    TG_RL_SEGMENT_PROPERTY, /* per value of Helicone-Property-<property> */
} tg_rl_segment_t;

#define TG_RL_MICROS_PER_CENT     10000
#define TG_RL_POLICY_MIN_WINDOW_S 60       /* Helicone's bounds for the header */
#define TG_RL_POLICY_MAX_WINDOW_S 31536000 /* one year */

typedef struct {
    int64_t quota;    /* requests, cents or tokens per window */
    int64_t window_s; /* seconds */
    tg_rl_unit_t unit;
    tg_rl_segment_t segment;
    char property[64]; /* SEGMENT_PROPERTY: the property name, lower case */
} tg_rl_policy_t;

/**
 * Parse "Q;w=SECONDS[;u=request|cents|token][;s=user|<property>]".
 * Q is a whole number >= 1, 60 <= w <= 31536000 (Helicone's bounds).
 * Returns 0, or -1 with a message such as "w= must be between 60 and
 * 31536000 seconds".
 */
int tg_rl_policy_parse(const char *s, tg_rl_policy_t *p, char *err, size_t errlen);

/** Canonical text ("100;w=60;u=cents;s=user"), for Helicone-RateLimit-Policy. */
void tg_rl_policy_format(const tg_rl_policy_t *p, char *buf, size_t len);

/** "request", "cents" or "token". */
const char *tg_rl_unit_name(tg_rl_unit_t unit);

/** The unit named by s[0..len): request(s), cents, token(s), any case.
 *  Returns 0, or -1 for another word. */
int tg_rl_unit_parse(const char *s, size_t len, tg_rl_unit_t *out);

/** The limit to acquire against (cents become micro-dollars). */
tg_rl_limit_t tg_rl_policy_limit(const tg_rl_policy_t *p);

/** Units to charge a cents policy for a cost in USD (micro-dollars, rounded). */
int64_t tg_rl_usd_units(double usd);

/**
 * The key of a policy's state: scope (the gateway key's name, or NULL)
 * keeps tenants apart; segment_value is the user id or the property's value
 * (ignored for a global policy). Returns -1 when the segment needs a value
 * and there is none: the policy then does not apply (as in Helicone).
 */
int tg_rl_policy_key(const tg_rl_policy_t *p, const char *scope, const char *segment_value,
                     tg_buf_t *out);

/** Values of the Helicone-RateLimit-Limit, -Remaining, -Policy and (for a
 *  denial) Retry-After headers, in the policy's units. */
typedef struct {
    char limit[24];
    char remaining[24];
    char policy[128];
    char retry_after[24]; /* whole seconds, at least 1 */
} tg_rl_headers_t;

void tg_rl_headers(const tg_rl_policy_t *p, const tg_rl_result_t *r, tg_rl_headers_t *out);

/* ------------------------------------------ runtime limits (/api/v1) */

/** One runtime limit: requests carrying Helicone-Property-<property>: <value>. */
typedef struct {
    char id[40];
    char property[64]; /* as given */
    char value[256];
    tg_rl_policy_t policy; /* quota, window (>= 1 s), unit; segment PROPERTY */
} tg_rl_rule_t;

typedef struct tg_rl_registry tg_rl_registry_t;

/** Fill what a rule's policy derives from its property: segment PROPERTY and
 *  the lower-case name (a rule read back from the store, see store.h). */
void tg_rl_rule_normalize(tg_rl_rule_t *rule);

/** Property value by name (the Helicone-Property-<name> header), or NULL. */
typedef const char *(*tg_rl_property_fn)(void *ctx, const char *name);

tg_rl_registry_t *tg_rl_registry_new(void);
void tg_rl_registry_free(tg_rl_registry_t *reg);

/**
 * Parse a POST /api/v1/rate-limits body: {"property":"Agent-Name",
 * "value":"a1","limit":100,"window":"1m"} (window: seconds or "30s", "5m",
 * "1h", "1d"; optional "unit": "request", "cents" or "token"). Returns 0, or
 * -1 with a message. The id is left empty.
 */
int tg_rl_rule_parse_json(const char *json, size_t len, tg_rl_rule_t *out, char *err,
                          size_t errlen);

/** Add a rule; an empty id gets a fresh UUID (written back). Returns 0, or
 *  -1 when the id is taken or the registry is full (10000 rules). */
int tg_rl_registry_add(tg_rl_registry_t *reg, tg_rl_rule_t *rule);
/** Returns true when a rule with that id was there. */
bool tg_rl_registry_remove(tg_rl_registry_t *reg, const char *id);
/** A copy of every rule in the order added (*out: free() it). */
size_t tg_rl_registry_list(tg_rl_registry_t *reg, tg_rl_rule_t **out);
/** The rules a request matches (its property equals the rule's value), at
 *  most max copied; returns how many match. Their state key: "rule:<id>". */
size_t tg_rl_registry_match(tg_rl_registry_t *reg, tg_rl_property_fn prop, void *ctx,
                            tg_rl_rule_t *out, size_t max);

/* ------------------------------------- shared limits (ratelimit_redis.c) */

/** The GCRA above as Lua scripts for Redis (one round trip per request):
 *  acquire every check of a request, all or nothing; charge units after
 *  the call. Keys "tollgate:rl:<key>"; Redis's clock. */
extern const tg_redis_script_t tg_rl_redis_acquire;
extern const tg_redis_script_t tg_rl_redis_charge;

/** The arguments of either script for n checks (at most 32): their keys,
 *  then quota, window and units per check — units[i], or checks[i].n when
 *  units is NULL. */
void tg_rl_redis_args(tg_redis_args_t *a, const tg_rl_check_t *checks, const int64_t *units,
                      size_t n);

/** Read the acquire script's answer (its integers v[0..nv)) for n checks:
 *  -1 when all passed (res[0..n) filled), the index of the denied check
 *  (res filled up to it), or -2 when the answer is malformed. */
int tg_rl_redis_result(const int64_t *v, int nv, const tg_rl_check_t *checks, size_t n,
                       tg_rl_result_t *res);

#endif
