/*
 * cache_conf.c — the keys of the `caching:` section (docs/configuration.md),
 * declared beside the cache that uses them. Read by the config loader on
 * the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

static const char *const backends[] = {"memory", "redis", NULL};

const tg_conf_key_t tg_cache_conf_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, cache_enabled, .def = "false"),
    TG_CONF_KEY("ttl", TG_CONF_DURATION, tg_config_t, cache_ttl_ms, .min = 1, .def = "1h"),
    /* Entries kept in memory. */
    TG_CONF_KEY("max_size", TG_CONF_INT64, tg_config_t, cache_max_size, .min = 1, .def = "10000"),
    /* redis needs redis.url: checked once the whole file is read. */
    TG_CONF_KEY("backend", TG_CONF_ENUM_NAME, tg_config_t, cache_backend, .names = backends,
                .def = "memory"),
    TG_CONF_END,
};
