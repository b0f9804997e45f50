/*
 * config.h — the configuration object.
 *
 * A tg_config_t is built once from YAML (or from defaults plus the
 * environment) and never modified afterwards: workers read it without locks.
 * A reload builds a new object and swaps the pointer; the old one is freed
 * when its last reference is released (tg_config_release).
 *
 * Units: durations are stored in milliseconds, sizes in bytes, prices in USD
 * per 1,000 tokens (as written in the YAML).
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TG_PROVIDER_OPENAI = 0, /* OpenAI and every OpenAI-compatible endpoint */
    TG_PROVIDER_ANTHROPIC,
    TG_PROVIDER_GEMINI,
    TG_PROVIDER_AZURE,
    TG_PROVIDER_MOCK, /* built in, answers locally */
} tg_provider_type_t;
/* What each type means is its record in src/providers/registry.c. */
#define TG_PROVIDER_TYPES (TG_PROVIDER_MOCK + 1)

typedef struct {
    char *name;
    char *value;
} tg_kv_t;

typedef struct {
    char *name;              /* the key under providers: (lower case as written) */
    tg_provider_type_t type; /* explicit `type:` or inferred from the name */
    char *base_url;          /* effective URL prefix, no trailing '/', path prefix applied */
    char *api_key;           /* NULL when absent or empty after ${VAR} expansion */
    char *default_model;     /* may be NULL */
    int64_t timeout_ms;      /* idle timeout per attempt (default 60000) */
    int retries;             /* default 0 */
    char **models;           /* names or globs it serves */
    size_t n_models;
    double weight;    /* default 1 */
    tg_kv_t *headers; /* extra upstream headers */
    size_t n_headers;
    bool explicit_base_url; /* base_url was configured (vs well-known default) */
    int line;               /* YAML line of the provider's key, 0 if built in */
    /* Its provider record (providers/provider.h; opaque here), settled at
     * load by tg_provider_conf_kinds.find (config_keys.h); NULL in a
     * hand-made config (tg_provider_rec_of finds it then). */
    const struct tg_provider_rec *rec;
} tg_provider_cfg_t;

typedef struct {
    int64_t requests_per_minute; /* 0 = no limit */
    int64_t tokens_per_minute;   /* 0 = no limit */
} tg_rate_pair_t;

typedef struct {
    char *name; /* provider name, property name, ... depending on the list */
    tg_rate_pair_t limit;
} tg_named_rate_t;

typedef enum {
    TG_COND_TASK = 0, /* bare string: Helicone-Property-Task equals value */
    TG_COND_MODEL,    /* {model: GLOB} */
    TG_COND_HEADER,   /* {header: NAME, equals: V} */
    TG_COND_PROPERTY, /* {property: NAME, equals: V} */
    TG_COND_DEFAULT,  /* `- default:` entry */
} tg_rule_kind_t;

typedef struct {
    tg_rule_kind_t kind;
    char *key;   /* header or property name (NULL for TASK, MODEL, DEFAULT) */
    char *value; /* task name, model glob, or the `equals` value */
    char *provider;
    int line;
} tg_rule_t;

typedef enum {
    TG_LB_WEIGHTED = 0,
    TG_LB_ROUND_ROBIN,
    TG_LB_LATENCY,
    TG_LB_COST,
} tg_lb_strategy_t;

typedef struct {
    char *model;         /* pricing key: exact model or prefix of a dated version */
    double input;        /* USD per 1,000 input tokens */
    double output;       /* USD per 1,000 output tokens */
    double cached_input; /* < 0 when not given */
    double cache_write;  /* < 0 when not given */
} tg_price_cfg_t;

typedef struct {
    double threshold; /* fraction: 80% -> 0.8 */
    char *action;     /* "notification" or "throttle" */
} tg_alert_cfg_t;

/* The events a webhook may ask for (docs/webhooks.md); names in
 * tg_event_type_names (config_keys.h). */
typedef enum {
    TG_EVENT_BUDGET_WARNING = 0,
    TG_EVENT_BUDGET_EXCEEDED,
    TG_EVENT_ALERT_FIRED,
    TG_EVENT_ALERT_RESOLVED,
    TG_EVENT_REQUEST_COMPLETED,
} tg_event_type_t;
#define TG_EVENT_TYPES (TG_EVENT_REQUEST_COMPLETED + 1)
/* Every type but request.completed: what cost_tracking.webhook_url gets,
 * and a `webhooks` entry without `events`. */
#define TG_EVENT_MASK_DEFAULT ((1u << TG_EVENT_TYPES) - 1u - (1u << TG_EVENT_REQUEST_COMPLETED))

/* One entry of the top-level `webhooks` list. */
typedef struct {
    char *url;       /* http:// or https:// */
    char *secret;    /* signs each delivery; NULL: unsigned */
    unsigned events; /* bit (1u << tg_event_type_t) per event asked for */
    int line;
} tg_webhook_cfg_t;

/* What an observability alert watches (observability.alerts). */
typedef enum {
    TG_ALERT_ERROR_RATE = 0, /* errors / requests, a fraction */
    TG_ALERT_REQUEST_RATE,   /* requests per second */
    TG_ALERT_CACHE_HIT_RATE, /* hits / (hits + misses), a fraction */
    TG_ALERT_LATENCY_AVG,    /* mean request duration, seconds */
    TG_ALERT_COST,           /* USD spent in the window */
} tg_alert_metric_t;

/* One entry of observability.alerts: the rule holds while the metric over
 * the last `window_ms` is above (or below) `threshold`. */
typedef struct {
    char *name; /* `name`, or made from the rule ("error_rate above 5% over 5m") */
    tg_alert_metric_t metric;
    bool below;       /* false: above */
    double threshold; /* in the metric's unit (fractions, per second, seconds, USD) */
    int64_t window_ms;
} tg_obs_alert_cfg_t;
/* What a budget does at its limit (SPEC §11). */
typedef enum { TG_BUDGET_BLOCK = 0, TG_BUDGET_WARN, TG_BUDGET_NONE } tg_budget_action_t;

/* One budget's settings: cost_tracking.budgets (global), per_user,
 * per_key, each per_property entry, and the runtime budgets of the API. */
typedef struct {
    double daily;             /* USD, < 0 when not set */
    double monthly;           /* USD, < 0 when not set */
    int action;               /* tg_budget_action_t, default block */
    double warning_threshold; /* fraction, default 0.8 */
} tg_budget_cfg_t;

typedef struct {
    char *name; /* property name */
    tg_budget_cfg_t b;
} tg_named_budget_t;

typedef struct {
    char *name;
    char *key; /* as configured (hashed by the auth module at load) */
    bool perm_read;
    bool perm_write;
} tg_api_key_cfg_t;

typedef struct tg_config {
    /* server */
    char *host;  /* default "0.0.0.0"; "127.0.0.1" with no configuration file */
    int port;    /* default 8585 */
    int workers; /* default: number of cores */
    bool ssl_enabled;
    char *ssl_cert_file;
    char *ssl_key_file;
    int64_t shutdown_timeout_ms; /* default 30000 */
    int64_t
        idle_timeout_ms; /* server.idle_timeout: idle keep-alive / slow client (default 60000) */
    int64_t header_timeout_ms; /* server.header_timeout: a whole request head (default 10000) */
    int64_t body_timeout_ms;   /* server.body_timeout: a body's base allowance (default 30000) */
    int64_t body_min_rate;     /* server.body_min_rate: bytes/s that extend it (default 64 KiB) */
    int64_t max_connections;   /* server.max_connections, whole process; 0: from the fd limit */

    /* providers, in file order; the built-in "mock" is always last */
    tg_provider_cfg_t *providers;
    size_t n_providers;

    /* routing */
    char *default_provider; /* may be NULL */
    char **fallback_chain;
    size_t n_fallback_chain;
    tg_rule_t *rules;
    size_t n_rules;
    tg_lb_strategy_t lb_strategy;
    int64_t lb_ejection_ms; /* routing.load_balancing.ejection_time: rest for a failing provider
                               (30s) */
    tg_kv_t *model_aliases; /* name = alias, value = target model */
    size_t n_model_aliases;

    /* caching */
    bool cache_enabled;
    int64_t cache_ttl_ms;   /* default 3600 s */
    int64_t cache_max_size; /* entries, default 10000 */
    char *cache_backend;    /* "memory" (default) or "redis" */

    /* rate_limiting */
    bool rl_enabled;
    tg_named_rate_t *rl_providers;
    size_t n_rl_providers;
    tg_rate_pair_t rl_per_key;
    tg_rate_pair_t rl_per_ip;
    tg_rate_pair_t rl_per_user;
    tg_named_rate_t *rl_per_property; /* name = property name */
    size_t n_rl_per_property;

    /* observability */
    bool request_logging_enabled; /* default true */
    char *request_logging_level;  /* default "info" */
    bool log_bodies;              /* default true */
    int64_t max_body_bytes;       /* default 1 MiB */
    bool metrics_enabled;         /* default true */
    bool dashboard_enabled;       /* default false */
    int dashboard_port;           /* default 8586 */
    char *dashboard_host;         /* default: server host */
    char *otlp_endpoint;          /* may be NULL: no export */
    char *otlp_service_name;      /* default "tollgate" */
    tg_kv_t *otlp_headers;        /* sent with every export (collector auth) */
    size_t n_otlp_headers;
    int64_t otlp_timeout_ms;        /* one export attempt, whole (default 10 s) */
    tg_obs_alert_cfg_t *obs_alerts; /* observability.alerts */
    size_t n_obs_alerts;

    /* cost_tracking */
    bool cost_enabled; /* default true */
    tg_price_cfg_t *pricing;
    size_t n_pricing;
    double budget_daily;   /* USD, < 0 when not set */
    double budget_monthly; /* USD, < 0 when not set */
    int budget_action;     /* the global budgets' tg_budget_action_t (alerts may change it) */
    double budget_warning_threshold; /* fraction, default 0.8 */
    tg_budget_cfg_t budget_per_user; /* daily/monthly < 0: none */
    tg_budget_cfg_t budget_per_key;
    tg_named_budget_t *budget_per_property;
    size_t n_budget_per_property;
    char *budget_timezone;      /* IANA name, default "UTC" (read at start) */
    bool budget_allow_unpriced; /* let unpriced models through block budgets */
    tg_alert_cfg_t *alerts;
    size_t n_alerts;
    char *webhook_url;
    char *prices_file; /* cost_tracking.prices_file: LiteLLM-format price list, may be NULL */
    /* ... as loaded by the cost module when the configuration was read
     * (tg_config_price_hooks); owned by this object, NULL without a file */
    struct tg_price_list *price_list;
    char *webhook_secret; /* signs deliveries to webhook_url; NULL: unsigned */

    /* webhooks (top level): more receivers, each with its events */
    tg_webhook_cfg_t *webhooks;
    size_t n_webhooks;

    /* security */
    bool require_auth;
    tg_api_key_cfg_t *api_keys;
    size_t n_api_keys;
    char **allowed_ips; /* addresses and CIDRs as written; empty = all allowed */
    size_t n_allowed_ips;
    /* security.admin_allowed_ips: who may reach /api/v1 and /metrics while
     * require_auth is off; never empty (default: loopback) */
    char **admin_allowed_ips;
    size_t n_admin_allowed_ips;
    int64_t max_request_size;       /* bytes, default 10 MiB */
    int64_t max_tokens_per_request; /* 0 = no limit */
    tg_rate_pair_t sec_per_ip;      /* security.rate_limits.per_ip */

    /* logging */
    char *log_level;  /* debug, info, warn, error (default info) */
    char *log_format; /* "json" or "text" (default text) */
    char *log_output; /* "stdout", "stderr" or a path (default stdout) */

    /* storage / redis */
    char *storage_url;                /* default "sqlite:tollgate.db" */
    char *redis_url;                  /* may be NULL */
    int redis_on_failure;             /* 0 open (default), 1 closed: while Redis is down */
    int64_t redis_timeout_ms;         /* a command's deadline (default 250 ms) */
    int64_t redis_connect_timeout_ms; /* connecting and the handshake (default 1 s) */

    /* bookkeeping */
    char *source;        /* file path, or NULL for built-in defaults */
    int refs;            /* atomic reference count; see tg_config_acquire */
    uint64_t generation; /* unique per loaded config (from 1): a key for caches
                            of values derived from it */
} tg_config_t;

/** One problem found while loading: message plus YAML path and line. */
typedef struct {
    char *path;    /* e.g. "providers.openai.timeout" ("" for the document) */
    int line;      /* 1-based, 0 when unknown */
    char *message; /* e.g. "unknown key", "expected a duration" */
} tg_config_error_t;

typedef struct {
    tg_config_error_t *items;
    size_t n;
} tg_config_errors_t;

/**
 * Load a YAML file. Returns a config with one reference, or NULL with every
 * problem appended to *errs (which the caller frees with
 * tg_config_errors_free). Never exits the process.
 */
tg_config_t *tg_config_load_file(const char *path, tg_config_errors_t *errs);

/** Same as tg_config_load_file from a string (for tests). `name` labels errors. */
tg_config_t *tg_config_load_string(const char *yaml, size_t len, const char *name,
                                   tg_config_errors_t *errs);

/**
 * Defaults with no file: providers detected from the environment
 * (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_GEMINI_API_KEY,
 * DEEPSEEK_API_KEY, GROQ_API_KEY, MISTRAL_API_KEY, XAI_API_KEY,
 * OPENROUTER_API_KEY, MODELSCOPE_API_KEY) plus the built-in mock provider.
 */
tg_config_t *tg_config_defaults(void);

/** Take another reference (thread-safe). */
tg_config_t *tg_config_acquire(tg_config_t *cfg);

/** Drop a reference; frees the object at zero (thread-safe). NULL is fine. */
void tg_config_release(tg_config_t *cfg);

/** Find a provider by name (exact, case-insensitive), or NULL. */
const tg_provider_cfg_t *tg_config_provider(const tg_config_t *cfg, const char *name,
                                            size_t name_len);

void tg_config_errors_free(tg_config_errors_t *errs);

/** Parse "10MB", "64KB", "512", "1GB" into bytes. Returns 0 or -1. */
int tg_config_parse_size(const char *s, int64_t *out);

/** Parse "30", "500ms", "30s", "5m", "1h", "1d" into milliseconds (bare number = seconds). */
int tg_config_parse_duration(const char *s, int64_t *out_ms);

/** Provider-type name for messages and /v1/models ("openai", ...). */
const char *tg_provider_type_name(tg_provider_type_t t);

#endif
