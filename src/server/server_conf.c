/*
 * server_conf.c — the keys of the `server:` section (docs/configuration.md),
 * declared beside the server that uses them: listener, workers, TLS,
 * connection limits and deadlines. Read by the config loader on the main
 * thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

static const tg_conf_key_t ssl_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, ssl_enabled, .def = "false"),
    TG_CONF_KEY("cert_file", TG_CONF_STRING, tg_config_t, ssl_cert_file),
    TG_CONF_KEY("key_file", TG_CONF_STRING, tg_config_t, ssl_key_file),
    TG_CONF_END,
};

const tg_conf_key_t tg_server_conf_keys[] = {
    TG_CONF_KEY("host", TG_CONF_STRING, tg_config_t, host, .def = "0.0.0.0"),
    TG_CONF_KEY("port", TG_CONF_INT, tg_config_t, port, .min = 1, .max = 65535, .def = "8585"),
    /* Default: the number of online CPUs (set by the loader). */
    TG_CONF_KEY("workers", TG_CONF_INT, tg_config_t, workers, .min = 1, .max = 1024),
    /* The ssl mapping's fields live in tg_config_t itself (offset 0). */
    TG_CONF_NEST("ssl", ssl_keys),
    TG_CONF_KEY("shutdown_timeout", TG_CONF_DURATION, tg_config_t, shutdown_timeout_ms, .min = 0,
                .def = "30s"),
    TG_CONF_KEY("idle_timeout", TG_CONF_DURATION, tg_config_t, idle_timeout_ms, .min = 1,
                .def = "60s"),
    TG_CONF_KEY("header_timeout", TG_CONF_DURATION, tg_config_t, header_timeout_ms, .min = 1,
                .def = "10s"),
    TG_CONF_KEY("body_timeout", TG_CONF_DURATION, tg_config_t, body_timeout_ms, .min = 1,
                .def = "30s"),
    /* Bytes per second that extend body_timeout; 0: no allowance. */
    TG_CONF_KEY("body_min_rate", TG_CONF_SIZE, tg_config_t, body_min_rate, .min = 0, .def = "64KB"),
    /* 0 (not set): derived from the descriptor limit at start-up. */
    TG_CONF_KEY("max_connections", TG_CONF_INT64, tg_config_t, max_connections, .min = 1,
                .max = INT32_MAX),
    TG_CONF_END,
};
