/*
 * router.h — which provider serves a request, and under which model name
 * (SPEC §4). Pure functions over an immutable config; any thread.
 */
#ifndef TG_ROUTER_H
#define TG_ROUTER_H

#include "config/config.h"
#include "router/balance.h"

/** Looks up a request header (case-insensitive); NULL when absent. */
typedef const char *(*tg_header_fn)(void *ctx, const char *name);

typedef struct {
    const tg_provider_cfg_t *provider; /* points into the config */
    char *model;                       /* model to send upstream (malloc'd) */
    const char *how; /* "prefix", "suffix", "rule", "alias", "models", "family", "default" */
} tg_route_t;

/**
 * Resolve `model` (may be NULL or empty: the default provider's default_model
 * is used then). Returns 0 and fills *out; -1 when nothing serves the model,
 * or -2 when no model was named and there is no default to use; either way
 * err holds a client-facing message that names the configured providers.
 * health: the gateway's provider health, which load balancing reads.
 */
int tg_router_resolve(const tg_config_t *cfg, tg_health_registry_t *health, const char *model,
                      tg_header_fn get_header, void *hctx, tg_route_t *out, char *err,
                      size_t errlen);

/** Entries a Helicone AI-gateway model list may have. */
#define TG_ROUTER_MAX_LIST 10

/**
 * A model string that may be a comma-separated list (Helicone's AI gateway:
 * `gpt-4o-mini/openai,claude-sonnet-4-5/anthropic`), the request's own
 * fallback chain: each entry resolved as tg_router_resolve does, into
 * out[0..*n) (out holds `max`; the caller clears them). A string without
 * ',' is a list of one. Returns 0; tg_router_resolve's -1/-2 for a single
 * model; for a list -3 (400: an empty or over-long entry, more than `max`
 * entries) or -1 (404: an entry nothing serves, or whose '/' names no
 * configured provider at either end). err says which entry.
 */
int tg_router_resolve_list(const tg_config_t *cfg, tg_health_registry_t *health, const char *model,
                           tg_header_fn get_header, void *hctx, tg_route_t *out, size_t max,
                           size_t *n, char *err, size_t errlen);

void tg_route_clear(tg_route_t *r);

/** The client-facing message for a model (or provider name) nothing serves:
 *  it names the configured providers. */
void tg_router_explain(const tg_config_t *cfg, const char *model, char *err, size_t errlen);

/** The well-known provider name for a model family ("openai" for gpt-*, ...), or NULL. */
const char *tg_router_family(const char *model);

#endif
