/*
 * api_budgets.h — /api/v1/budgets (SPEC §11, docs/budgets.md). Worker
 * thread.
 */
#ifndef TG_API_BUDGETS_H
#define TG_API_BUDGETS_H

#include "gateway.h"
#include "server/http.h"

#include <stdbool.h>

/** Answer `path` when it is /api/v1/budgets or under it (true), else
 *  false. cfg: the worker's configuration (the budgets it declares). */
bool tg_api_budgets(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                    bool may_read, bool may_write, const char *path);

#endif
