/*
 * config_sections.c — the top level of the file (one row per section, each
 * naming the table of the module that owns it), and the tables of the
 * sections no single module owns: `observability` (read by the proxy, the
 * metrics and main), `logging` (src/core/log.c sits below config and
 * includes nothing of it) and `redis` (shared by cache, limits and
 * budgets). Read by the loader on the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

static const tg_conf_key_t request_logging_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, request_logging_enabled, .def = "true"),
    TG_CONF_KEY("log_level", TG_CONF_LOG_LEVEL, tg_config_t, request_logging_level, .def = "info"),
    TG_CONF_KEY("bodies", TG_CONF_BOOL, tg_config_t, log_bodies, .def = "true"),
    TG_CONF_KEY("max_body_bytes", TG_CONF_SIZE, tg_config_t, max_body_bytes, .min = 0,
                .def = "1MB"),
    TG_CONF_END,
};

static const tg_conf_key_t metrics_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, metrics_enabled, .def = "true"),
    TG_CONF_END,
};

static const tg_conf_key_t dashboard_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, dashboard_enabled, .def = "false"),
    TG_CONF_KEY("port", TG_CONF_INT, tg_config_t, dashboard_port, .min = 1, .max = 65535,
                .def = "8586"),
    /* Default: server.host (set once the whole file is read). */
    TG_CONF_KEY("host", TG_CONF_STRING, tg_config_t, dashboard_host),
    TG_CONF_END,
};

static const char *const http_schemes[] = {"http://", "https://", NULL};

static const tg_conf_key_t otlp_keys[] = {
    /* The collector's OTLP/HTTP base URL; /v1/traces is appended. */
    TG_CONF_KEY("endpoint", TG_CONF_URL, tg_config_t, otlp_endpoint, .names = http_schemes,
                .expect = "http://... or https://..."),
    TG_CONF_KEY("service_name", TG_CONF_STRING, tg_config_t, otlp_service_name, .def = "tollgate"),
    TG_CONF_READ("headers", tg_config_read_otlp_headers, NULL),
    TG_CONF_KEY("timeout", TG_CONF_DURATION, tg_config_t, otlp_timeout_ms, .min = 1, .def = "10s"),
    TG_CONF_END,
};

const tg_conf_key_t tg_config_observability_keys[] = {
    TG_CONF_NEST("request_logging", request_logging_keys),
    TG_CONF_NEST("metrics", metrics_keys),
    TG_CONF_NEST("dashboard", dashboard_keys),
    TG_CONF_NEST("otlp", otlp_keys),
    TG_CONF_READ("alerts", tg_config_read_obs_alerts, tg_obs_alert_conf_keys),
    TG_CONF_END,
};

static const char *const formats[] = {"text", "json", NULL};

const tg_conf_key_t tg_config_logging_keys[] = {
    TG_CONF_KEY("level", TG_CONF_LOG_LEVEL, tg_config_t, log_level, .def = "info"),
    TG_CONF_KEY("format", TG_CONF_ENUM_NAME, tg_config_t, log_format, .names = formats,
                .def = "text"),
    /* stdout, stderr or a file path. */
    TG_CONF_KEY("output", TG_CONF_STRING, tg_config_t, log_output, .def = "stdout"),
    TG_CONF_END,
};

static const char *const redis_schemes[] = {"redis://", "rediss://", "unix:", NULL};
static const char *const redis_failure_modes[] = {"open", "closed", NULL};

const tg_conf_key_t tg_config_redis_keys[] = {
    TG_CONF_KEY("url", TG_CONF_URL, tg_config_t, redis_url, .names = redis_schemes,
                .expect = "redis://..., rediss://... or unix:PATH"),
    TG_CONF_KEY("on_failure", TG_CONF_ENUM, tg_config_t, redis_on_failure,
                .names = redis_failure_modes, .def = "open"),
    TG_CONF_KEY("timeout", TG_CONF_DURATION, tg_config_t, redis_timeout_ms, .min = 1,
                .def = "250ms"),
    TG_CONF_KEY("connect_timeout", TG_CONF_DURATION, tg_config_t, redis_connect_timeout_ms,
                .min = 1, .def = "1s"),
    TG_CONF_END,
};

const tg_conf_key_t tg_config_sections[] = {
    TG_CONF_NEST("server", tg_server_conf_keys),
    TG_CONF_READ("providers", tg_config_read_providers, tg_provider_conf_keys),
    TG_CONF_NEST("routing", tg_router_conf_keys),
    TG_CONF_NEST("caching", tg_cache_conf_keys),
    TG_CONF_NEST("rate_limiting", tg_ratelimit_conf_keys),
    TG_CONF_NEST("observability", tg_config_observability_keys),
    TG_CONF_NEST("cost_tracking", tg_cost_conf_keys),
    TG_CONF_READ("webhooks", tg_config_read_webhooks, tg_webhook_conf_keys),
    TG_CONF_NEST("security", tg_auth_conf_keys),
    TG_CONF_NEST("logging", tg_config_logging_keys),
    TG_CONF_NEST("storage", tg_store_conf_keys),
    TG_CONF_NEST("redis", tg_config_redis_keys),
    TG_CONF_END,
};
