/*
 * config_keys.h — how a module declares its configuration keys.
 *
 * Each section of the YAML file is a const table of tg_conf_key_t, one row
 * per key: its name, its type, where the value goes (an offsetof slot in
 * the struct the table reads into: tg_config_t, tg_provider_cfg_t,
 * tg_rate_pair_t, ...), its bounds and its default as it would be written
 * in the file. The loader in src/config/ walks the YAML mapping against the
 * table: it converts and bounds-checks every value, reports unknown keys
 * with their path and line, applies the defaults to a new object and frees
 * the string slots. This is nginx's ngx_command_t with its offsetof slots
 * and ngx_conf_set_*_slot setters, and h2o's configurators, in small.
 *
 * The few shapes a row cannot describe (maps of providers, rules, lists of
 * keys, alerts, ...) are TG_CONF_CUSTOM rows naming a reader that lives in
 * src/config/ and is declared below; `sub` then gives the table each entry
 * of the map or list is read with.
 *
 * Tables are const data: read by the loading thread (main), never written.
 * Every table ends with a row whose name is NULL (TG_CONF_END).
 */
#ifndef TG_CONFIG_KEYS_H
#define TG_CONFIG_KEYS_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TG_CONF_STRING = 1, /* char *: any scalar */
    TG_CONF_BOOL,       /* bool */
    TG_CONF_INT,        /* int, from min to max */
    TG_CONF_INT64,      /* int64_t, from min to max */
    TG_CONF_NUMBER,     /* double >= min (> min with TG_CONF_EXCLUSIVE) */
    TG_CONF_DURATION,   /* int64_t milliseconds >= min */
    TG_CONF_SIZE,       /* int64_t bytes >= min */
    TG_CONF_ENUM,       /* int: index in `names`; the slot may be an enum type */
    TG_CONF_ENUM_NAME,  /* char *: the canonical spelling from `names` */
    TG_CONF_LOG_LEVEL,  /* char *: debug, info, warn (or warning), error */
    TG_CONF_URL,        /* char *: starting with one of `names`; `expect` says which */
    TG_CONF_STRINGS,    /* char ** at off, size_t count at count_off; empty items skipped */
    TG_CONF_ADDRESSES,  /* as STRINGS, each an IPv4 or IPv6 address or CIDR */
    TG_CONF_SECTION,    /* a mapping read with `sub`, into the struct at off */
    TG_CONF_CUSTOM,     /* read by `read` */
} tg_conf_type_t;

/* Flags. */
#define TG_CONF_EXCLUSIVE 1u /* NUMBER: the value must be greater than min */
/* SECTION: documented as one row (`per_ip` | limit pair), not row by row. */
#define TG_CONF_DOC_WHOLE 2u

typedef struct tg_conf_key tg_conf_key_t;
typedef struct tg_conf_loader tg_conf_loader_t; /* private to src/config/ */
typedef struct tg_conf_entry tg_conf_entry_t;   /* private to src/config/ */

/*
 * Reads one key's value (e) into the struct at `base`. Errors go through the
 * loader with the key's path and line; the key is known, so the walk does
 * not report it.
 */
typedef void (*tg_conf_read_fn)(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                const tg_conf_entry_t *e, void *base);

struct tg_conf_key {
    const char *name;
    tg_conf_type_t type;
    size_t off;       /* slot: offset in the struct the table reads into */
    size_t count_off; /* STRINGS, ADDRESSES: offset of the size_t count */
    int64_t min, max; /* bounds (INT and INT64: both, max 0 = none; others: min) */
    unsigned flags;
    const char *const *names; /* ENUM, ENUM_NAME: values; URL: schemes (NULL-ended) */
    const char *expect;       /* URL: the error's "expected ..." */
    const char *def;          /* default as written in YAML; NULL: zero / none */
    const tg_conf_key_t *sub; /* SECTION: its keys; CUSTOM: each entry's keys */
    tg_conf_read_fn read;     /* CUSTOM */
};

/* Row builders. A key with a slot in struct T: TG_CONF_KEY("port",
 * TG_CONF_INT, tg_config_t, port, .min = 1, .max = 65535, .def = "8585").
 * A nested mapping whose fields live in the same struct: TG_CONF_NEST.
 * A key read by a reader of its own: TG_CONF_READ (keys may be NULL). */
// clang-format off
#define TG_CONF_KEY(n, t, T, field, ...)                                                           \
    {.name = (n), .type = (t), .off = offsetof(T, field), __VA_ARGS__}
#define TG_CONF_NEST(n, keys) {.name = (n), .type = TG_CONF_SECTION, .sub = (keys)}
#define TG_CONF_READ(n, fn, keys) {.name = (n), .type = TG_CONF_CUSTOM, .read = (fn), .sub = (keys)}
#define TG_CONF_END {.name = NULL}
// clang-format on

/* ---- the readers of irregular shapes (src/config/config_shapes.c) ---- */

/* providers: NAME → a provider read with key->sub; type and base_url settled. */
void tg_config_read_providers(tg_conf_loader_t *L, const tg_conf_key_t *key,
                              const tg_conf_entry_t *e, void *base);
/* providers.NAME.type: the dialect, remembering that it was given. */
void tg_config_read_provider_type(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                  const tg_conf_entry_t *e, void *base);
/* providers.NAME.headers: header name → value, checked. */
void tg_config_read_headers(tg_conf_loader_t *L, const tg_conf_key_t *key, const tg_conf_entry_t *e,
                            void *base);
/* observability.otlp.headers: header name → value, checked as above. */
void tg_config_read_otlp_headers(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                 const tg_conf_entry_t *e, void *base);
/* routing.fallback_chain: provider names, lines kept for the cross-check. */
void tg_config_read_fallback_chain(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                   const tg_conf_entry_t *e, void *base);
/* routing.rules: condition → provider, default last. */
void tg_config_read_rules(tg_conf_loader_t *L, const tg_conf_key_t *key, const tg_conf_entry_t *e,
                          void *base);
/* routing.model_aliases: alias → model. */
void tg_config_read_aliases(tg_conf_loader_t *L, const tg_conf_key_t *key, const tg_conf_entry_t *e,
                            void *base);
/* rate_limiting.providers: provider name → pair read with key->sub. */
void tg_config_read_provider_limits(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                    const tg_conf_entry_t *e, void *base);
/* rate_limiting.per_property: property name → pair read with key->sub. */
void tg_config_read_property_limits(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                    const tg_conf_entry_t *e, void *base);
/* cost_tracking.pricing: model → price read with key->sub; input, output required. */
void tg_config_read_pricing(tg_conf_loader_t *L, const tg_conf_key_t *key, const tg_conf_entry_t *e,
                            void *base);
/* cost_tracking.budgets.per_property: property name → budget read with key->sub. */
void tg_config_read_budget_properties(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                      const tg_conf_entry_t *e, void *base);
/* cost_tracking.alerts: a list of alerts read with key->sub; threshold required. */
void tg_config_read_alerts(tg_conf_loader_t *L, const tg_conf_key_t *key, const tg_conf_entry_t *e,
                           void *base);
/* cost_tracking.alerts[i].threshold: 80%, 0.8 or 80. */
void tg_config_read_threshold(tg_conf_loader_t *L, const tg_conf_key_t *key,
                              const tg_conf_entry_t *e, void *base);
/* security.api_keys: a list of keys read with key->sub; names and keys unique. */
void tg_config_read_api_keys(tg_conf_loader_t *L, const tg_conf_key_t *key,
                             const tg_conf_entry_t *e, void *base);
/* security.api_keys[i].permissions: read, write. */
void tg_config_read_permissions(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                const tg_conf_entry_t *e, void *base);

/* webhooks: a list of receivers read with key->sub; url required, unique. */
void tg_config_read_webhooks(tg_conf_loader_t *L, const tg_conf_key_t *key,
                             const tg_conf_entry_t *e, void *base);
/* webhooks[i].events: names from tg_event_type_names, at least one. */
void tg_config_read_event_names(tg_conf_loader_t *L, const tg_conf_key_t *key,
                                const tg_conf_entry_t *e, void *base);
/* observability.alerts: a list of rules read with key->sub into a
 * tg_obs_alert_entry_t; metric and one of above or below required. */
void tg_config_read_obs_alerts(tg_conf_loader_t *L, const tg_conf_key_t *key,
                               const tg_conf_entry_t *e, void *base);

/* What an observability.alerts entry is read into: the rule, and its
 * above or below as written (their unit depends on the metric, which may
 * come after them in the mapping). */
typedef struct {
    tg_obs_alert_cfg_t a;
    char *above, *below;
} tg_obs_alert_entry_t;

/* ---- the tables, each beside the module that uses the settings ---- */

extern const tg_conf_key_t tg_server_conf_keys[];    /* server/server_conf.c: server */
extern const tg_conf_key_t tg_provider_conf_keys[];  /* providers/provider_conf.c: one provider */
extern const tg_conf_key_t tg_router_conf_keys[];    /* router/router_conf.c: routing */
extern const tg_conf_key_t tg_cache_conf_keys[];     /* cache/cache_conf.c: caching */
extern const tg_conf_key_t tg_ratelimit_conf_keys[]; /* ratelimit/ratelimit_conf.c */
extern const tg_conf_key_t tg_rate_pair_conf_keys[]; /* ratelimit/ratelimit_conf.c: a pair */
extern const tg_conf_key_t tg_cost_conf_keys[];      /* cost/cost_conf.c: cost_tracking */
extern const tg_conf_key_t tg_auth_conf_keys[];      /* auth/auth_conf.c: security */
extern const tg_conf_key_t tg_store_conf_keys[];     /* store/store_conf.c: storage */
extern const tg_conf_key_t tg_webhook_conf_keys[];   /* events/events_conf.c: a webhook */
extern const tg_conf_key_t tg_obs_alert_conf_keys[]; /* events/events_conf.c: an alert */
/* events/events_conf.c: the names of tg_event_type_t and tg_alert_metric_t
 * (NULL-ended), as the file and the payloads write them. */
extern const char *const tg_event_type_names[];
extern const char *const tg_alert_metric_names[];
/*
 * What the loader knows of the provider records (providers/registry.c),
 * defined beside them in providers/provider_conf.c so that config includes
 * no provider header: the type names for `type:`, the type a well-known
 * name infers, the default base URL and path prefix, the key variables of
 * a start without a file. A view, filled from a record; const data and
 * pure hooks, any thread.
 */
typedef struct {
    const char *name;                  /* type name or well-known provider name */
    tg_provider_type_t type;           /* the type it is */
    const char *default_base_url;      /* NULL: base_url must be configured */
    const char *path_prefix;           /* added to a bare-origin base_url; never NULL */
    const char *base_url_hint;         /* what a base_url looks like when required; may be NULL */
    const char *key_env, *key_env_alt; /* key variables without a file; may be NULL */
    bool local;                        /* answers locally: no base_url */
} tg_config_provider_kind_t;

typedef struct {
    /* The i-th record's view into *k, i = 0, 1, ... until false; the types'
     * own records first, at their enum value. */
    bool (*at)(size_t i, tg_config_provider_kind_t *k);
    /* The view of the record a well-known name or alias infers
     * (case-insensitive); false when none. */
    bool (*named)(const char *name, tg_config_provider_kind_t *k);
    /* The record of a configured provider, for tg_provider_cfg_t.rec
     * (tg_provider_rec_find). */
    const struct tg_provider_rec *(*find)(const char *name, tg_provider_type_t type,
                                          const char *base_url);
} tg_config_provider_kinds_t;

extern const tg_config_provider_kinds_t tg_provider_conf_kinds; /* providers/provider_conf.c */

/*
 * How the loader reads `cost_tracking.prices_file` (cost/price_file.c),
 * defined in cost/cost_conf.c so that config includes no cost header:
 * `load` returns the list or NULL with a message naming the file in err;
 * `free` frees what `load` returned (NULL is fine). Main thread.
 */
typedef struct {
    struct tg_price_list *(*load)(const char *path, char *err, size_t errlen);
    void (*free)(struct tg_price_list *list);
} tg_config_price_hooks_t;

extern const tg_config_price_hooks_t tg_cost_price_hooks; /* cost/cost_conf.c */

/* Sections no single module owns: config/config_sections.c. */
extern const tg_conf_key_t tg_config_observability_keys[];
extern const tg_conf_key_t tg_config_logging_keys[];
extern const tg_conf_key_t tg_config_redis_keys[];

/* The top level: one SECTION row per section, in the order of the docs. */
extern const tg_conf_key_t tg_config_sections[];

#endif
