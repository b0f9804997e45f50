/*
 * api_keys.h — /api/v1/keys (SPEC §11, docs/budgets.md): virtual gateway
 * keys. Worker thread.
 */
#ifndef TG_API_KEYS_H
#define TG_API_KEYS_H

#include "gateway.h"
#include "server/http.h"

#include <stdbool.h>

/** Answer `path` when it is /api/v1/keys or under it (true), else false.
 *  Every method needs `write`. */
bool tg_api_keys(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                 bool may_write, const char *path);

#endif
