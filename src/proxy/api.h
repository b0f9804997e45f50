/*
 * api.h — /api/v1 (SPEC §8): the query API over the request store, the
 * providers' health and the runtime rate limits. Worker thread (the
 * queries themselves on the reader threads, readers.h).
 */
#ifndef TG_API_H
#define TG_API_H

#include "config/config.h"
#include "ratelimit/ratelimit.h"
#include "router/balance.h"
#include "server/http.h"
#include "store/store.h"

#include <stdbool.h>

struct tg_gateway;

/**
 * Answer a request whose path starts with /api/v1/: the record queries
 * (run on the gateway's reader threads, readers.h, when it has them; the
 * exchange ends when the answer is back), the providers' health, and the
 * runtime rate limits. The gateway's store is NULL when request logging
 * is off (queries then answer 503; rate limits live in memory only).
 * may_read / may_write: what the caller's gateway key allows. cfg: the
 * worker's configuration (a reference is taken for the query). bus: the
 * worker's Redis connection (NULL without one), to tell the other
 * instances of a runtime rate limit added or removed (proxy/bus.h).
 */
void tg_api_handle(tg_http_t *h, struct tg_gateway *gw, struct tg_redis *bus, tg_config_t *cfg,
                   bool may_read, bool may_write, const char *path);

/** GET /api/v1/providers: each configured provider with its health
 *  (ejected, resting, latency estimate) from `health`, and its last hour
 *  from the store (requests, errors, latency). Appends the JSON to out and
 *  returns the status. */
int tg_api_providers(const tg_config_t *cfg, tg_health_registry_t *health, tg_store_t *store,
                     int64_t now_ms, tg_buf_t *out);

#endif
