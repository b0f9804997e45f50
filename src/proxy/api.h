/*
 * api.h — /api/v1 (SPEC §8): the query API over the request store and the
 * runtime rate limits. Worker thread.
 */
#ifndef TG_API_H
#define TG_API_H

#include "ratelimit/ratelimit.h"
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

#endif
