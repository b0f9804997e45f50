/*
 * bus.c — see bus.h. One message a change, published and applied.
 *
 * Thread: tg_bus_publish on the worker answering the API request;
 * tg_bus_on_message on worker 0's loop.
 */
#include "proxy/bus.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>

void tg_bus_publish(tg_redis_t *r, tg_gateway_t *gw, const char *type, json_t *data)
{
    if (!r) {
        json_decref(data);
        return;
    }
    json_t *msg = json_pack("{s:s, s:s, s:o}", "origin", gw->instance, "type", type, "data", data);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (!text || !tg_redis_publish(r, TG_BUS_CHANNEL, text, strlen(text)))
        tg_warn("fleet: %s not told to the other instances: Redis is not connected", type);
    free(text);
    json_decref(msg);
}

void tg_bus_on_message(void *arg, const char *msg, size_t len)
{
    tg_gateway_t *gw = arg;
    json_t *doc = json_loadb(msg, len, 0, NULL);
    const char *origin = json_string_value(json_object_get(doc, "origin"));
    const char *type = json_string_value(json_object_get(doc, "type"));
    json_t *data = json_object_get(doc, "data");
    if (!origin || !type || !json_is_object(data)) {
        tg_warn("fleet: a message on %s that is not ours was ignored", TG_BUS_CHANNEL);
    } else if (strcmp(origin, gw->instance) != 0) { /* our own changes are made already */
        bool ok = !strncmp(type, "key.", 4)      ? tg_api_keys_apply(gw, type, data)
                  : !strncmp(type, "budget.", 7) ? tg_api_budgets_apply(gw, type, data)
                  : !strncmp(type, "rule.", 5)   ? tg_api_rules_apply(gw, type, data)
                                                 : false;
        if (ok)
            tg_info("fleet: %s from instance %.36s applied", type, origin);
        else
            tg_warn("fleet: %s from instance %.36s could not be applied", type, origin);
    }
    json_decref(doc);
}
