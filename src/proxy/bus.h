/*
 * bus.h — changes made through /api/v1 on one instance, told to the others
 * sharing its Redis (SPEC §13, docs/fleet.md): a virtual key made or
 * revoked, a runtime rate limit added or removed, a runtime budget set or
 * removed. The instance that made the change publishes one JSON message on
 * the channel "tollgate:bus" ({"origin", "type", "data"}); every instance
 * listens on one subscriber connection (worker 0's loop) and applies what
 * others publish to its gateway object, within the time Redis takes to
 * deliver it. The message carries the item itself (not a reference into a
 * store), so instances with stores of their own apply it too; the
 * receiving instance does not write it to its store (with a shared store
 * the origin already has).
 *
 * Thread: publishing on the worker that answered the API request (its own
 * connection); applying on worker 0's loop, to the gateway's thread-safe
 * members.
 */
#ifndef TG_BUS_H
#define TG_BUS_H

#include "gateway.h"

#include <jansson.h>

#define TG_BUS_CHANNEL "tollgate:bus"

/** Publish a change: type ("key.created", "key.revoked", "rule.added",
 *  "rule.deleted", "budget.put", "budget.deleted") and data (taken). No
 *  Redis (r NULL), or not connected: nothing is sent (logged). */
void tg_bus_publish(tg_redis_t *r, tg_gateway_t *gw, const char *type, json_t *data);

/** The subscriber's message callback (arg: the gateway). */
void tg_bus_on_message(void *gw, const char *msg, size_t len);

/* What each /api/v1 module applies from another instance (defined beside
 * the handlers whose parsers they share). False when data is not usable. */
bool tg_api_keys_apply(tg_gateway_t *gw, const char *type, json_t *data);
bool tg_api_budgets_apply(tg_gateway_t *gw, const char *type, json_t *data);
bool tg_api_rules_apply(tg_gateway_t *gw, const char *type, json_t *data);

#endif
