/*
 * store_conf.c — the keys of the `storage:` section (docs/configuration.md),
 * declared beside the store that uses them. Read by the config loader on
 * the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

static const char *const schemes[] = {"sqlite:", "postgresql://", "postgres://", NULL};

const tg_conf_key_t tg_store_conf_keys[] = {
    TG_CONF_KEY("url", TG_CONF_URL, tg_config_t, storage_url, .names = schemes,
                .expect = "sqlite:PATH, postgresql://... or postgres://...",
                .def = "sqlite:tollgate.db"),
    TG_CONF_END,
};
