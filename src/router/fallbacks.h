/*
 * fallbacks.h — the Helicone-Fallbacks header (SPEC §6), parsed into
 * targets. Two forms:
 *
 *   tollgate's:  ["provider/model", {"provider": "p", "model": "m"}, ...]
 *                targets tried after the one the request resolved to;
 *   Helicone's:  [{"target-url": "https://api.openai.com",
 *                  "headers": {"X-Name": "v"},
 *                  "onCodes": [{"from": 400, "to": 599}]}, ...]
 *                the whole chain: the first entry is the first target.
 *
 * A target-url never sends a request anywhere but to a configured
 * provider: it selects the provider whose base_url has the same origin
 * (scheme, host, port); where several do, the one whose base path the
 * target-url's path starts with (the longest), else the first in the file.
 * Pure functions of the config and the header text; any thread.
 */
#ifndef TG_FALLBACKS_H
#define TG_FALLBACKS_H

#include "router/router.h"

#include <jansson.h>

#define TG_FALLBACKS_MAX        10 /* entries in one header */
#define TG_FALLBACK_MAX_CODES   8  /* onCodes ranges in one entry */
#define TG_FALLBACK_MAX_HEADERS 16 /* headers in one entry */

typedef struct {
    int from, to; /* inclusive HTTP statuses */
} tg_code_range_t;

/* What a Helicone entry adds to its target's attempts. */
typedef struct {
    tg_code_range_t codes[TG_FALLBACK_MAX_CODES];
    size_t n_codes;  /* 0: the usual failures go on (connect, timeout, 429, 5xx) */
    json_t *headers; /* {"Name": "value"} added upstream (owned), or NULL */
} tg_target_opts_t;

typedef struct {
    tg_route_t route;
    tg_target_opts_t opts;
} tg_fallback_t;

/**
 * Parses header `hv`. `current` is the route the request resolved to (its
 * model is what a target-url entry sends; NULL when there is none). Fills
 * out[0..*n) (the caller clears each with tg_fallback_clear) and sets
 * *replaces to true for Helicone's form (out[0] is then the first target).
 * Returns 0; -3 (400) for a header that is not a non-empty JSON list of at
 * most TG_FALLBACKS_MAX entries of one form with the right types, a
 * target-url that matches no configured provider, a header name that is
 * not a token or a value with control bytes; -1 (404) for a string or
 * provider entry nothing serves. err says which entry. Credential headers
 * (Authorization, x-api-key, ...) and hop-by-hop headers are left out of
 * `headers`: a client never replaces the configured key.
 */
int tg_fallbacks_parse(const tg_config_t *cfg, tg_health_registry_t *health, const char *hv,
                       const tg_route_t *current, tg_header_fn get_header, void *hctx,
                       tg_fallback_t *out, size_t max, size_t *n, bool *replaces, char *err,
                       size_t errlen);

/** Whether hv is in Helicone's own form (its first entry a target-url
 *  object), whatever the rest holds. */
bool tg_fallbacks_helicone_form(const char *hv);

/** Whether `status` is in one of opts' ranges. */
bool tg_target_opts_match(const tg_target_opts_t *opts, int status);

void tg_target_opts_clear(tg_target_opts_t *o);
void tg_fallback_clear(tg_fallback_t *f);

#endif
