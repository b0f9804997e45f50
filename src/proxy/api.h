/*
 * api.h — /api/v1 (SPEC §8): the query API over the request store and the
 * runtime rate limits. Worker thread.
 */
#ifndef TG_API_H
#define TG_API_H

#include "config/config.h"
#include "ratelimit/ratelimit.h"
#include "router/balance.h"
#include "server/http.h"
#include "store/store.h"

#include <stdbool.h>

/**
 * Answer a request whose path starts with /api/v1/. `store` is NULL when
 * request logging is off (queries then answer 503; rate limits live in
 * `rules` only). may_read / may_write: what the caller's gateway key allows.
 */
void tg_api_handle(tg_http_t *h, tg_store_t *store, tg_rl_registry_t *rules, bool may_read,
                   bool may_write, const char *path);

/** tg_api_handle, and the routes that need the worker's configuration and
 *  the gateway's provider health (/api/v1/providers). */
void tg_api_handle_gw(tg_http_t *h, const tg_config_t *cfg, tg_health_registry_t *health,
                      tg_store_t *store, tg_rl_registry_t *rules, bool may_read, bool may_write,
                      const char *path);

/** GET /api/v1/providers: each configured provider with its health
 *  (ejected, resting, latency estimate) from `health`, and its last hour
 *  from the store (requests, errors, latency). Appends the JSON to out and
 *  returns the status. */
int tg_api_providers(const tg_config_t *cfg, tg_health_registry_t *health, tg_store_t *store,
                     int64_t now_ms, tg_buf_t *out);

#endif
