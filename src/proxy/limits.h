/*
 * limits.h — which rate limits apply to one request (SPEC §6, §7) and their
 * keys: security.rate_limits.per_ip; rate_limiting.per_ip, per_key,
 * per_user, per_property and providers (when rate_limiting.enabled); the
 * Helicone-RateLimit-Policy header; runtime limits (/api/v1/rate-limits).
 * Requests are acquired before the call; tokens and spend are charged after
 * it (ratelimit.h). Worker thread; the limiter itself is shared.
 */
#ifndef TG_LIMITS_H
#define TG_LIMITS_H

#include "config/config.h"
#include "ratelimit/ratelimit.h"

#define TG_LIMITS_MAX 24

typedef const char *(*tg_limits_header_fn)(void *ctx, const char *name);

/* Zeroed, it is an empty set. The arrays (TG_LIMITS_MAX each) are allocated
 * with the first limit that applies, so a request without limits costs
 * nothing here; tg_limits_free releases them. */
typedef struct {
    tg_rl_check_t *checks;
    tg_rl_policy_t *policies; /* what each check is, for headers */
    char **keys;
    size_t n;
    int header_policy; /* index of the Helicone-RateLimit-Policy check, or -1 */
    bool hp_shared;    /* hp holds its state as the shared limiter answered */
    tg_rl_result_t hp;
} tg_limits_t;

/** The limits on the caller (address, gateway key, user, properties, the
 *  policy header, runtime rules). Returns 0, or -1 with a message for a bad
 *  Helicone-RateLimit-Policy (answer 400). */
int tg_limits_for_client(tg_limits_t *L, const tg_config_t *cfg, tg_rl_registry_t *rules,
                         tg_limits_header_fn get, void *ctx, const char *ip, const char *key_name,
                         char *err, size_t errlen);

/** A virtual key's own per-minute pair (scope "vkey:<name>"), added to
 *  the caller's set. */
void tg_limits_add_key(tg_limits_t *L, const char *name, const tg_rate_pair_t *pair);

/** The limits on a provider (rate_limiting.providers.<name>). */
void tg_limits_for_provider(tg_limits_t *L, const tg_config_t *cfg, const char *provider);

/** Acquire every request check, all or nothing. On a denial returns false
 *  and fills hdr with the denied limit's headers (Retry-After included). */
bool tg_limits_acquire(tg_rl_t *rl, tg_limits_t *L, tg_rl_headers_t *hdr);

/** The shared limiter's answer (ratelimit.h, tg_rl_redis_result) to the
 *  acquire script for L's checks: -1 when all passed (the policy header's
 *  state kept for its headers), the index of the denied check with hdr
 *  filled, or -2 when the answer is malformed. */
int tg_limits_shared_result(tg_limits_t *L, const int64_t *v, int nv, tg_rl_headers_t *hdr);

/** The Helicone-RateLimit-* headers of the policy header's limit, now (or
 *  as the shared limiter answered); false when the request carried no
 *  policy. */
bool tg_limits_policy_headers(tg_rl_t *rl, const tg_limits_t *L, tg_rl_headers_t *hdr);

/** After the call: charge tokens to token limits, spend to cents limits
 *  (cost_usd < 0: unknown, not charged). With a Redis connection (redis
 *  non-NULL) the charge is one script, sent without waiting; when Redis
 *  cannot take it, rl is charged instead. */
void tg_limits_settle(tg_rl_t *rl, struct tg_redis *redis, const tg_limits_t *L, long tokens,
                      double cost_usd);

void tg_limits_free(tg_limits_t *L);

#endif
