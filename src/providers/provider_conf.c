/*
 * provider_conf.c — the keys of one entry under `providers:`
 * (docs/configuration.md), declared beside the provider records that use
 * them, and the loader's view of the records (tg_provider_conf_kinds,
 * config/config_keys.h): config reads the records through it and includes
 * no provider header. `type` and `headers` have readers of their own in src/config/
 * (the type is remembered as given; header names are checked); the map of
 * names, the inferred type and the effective base URL are settled there
 * too. Read by the config loader on the main thread; const data.
 */
#include "config/config_keys.h"
#include "providers/provider.h"

#include <stddef.h>

const tg_conf_key_t tg_provider_conf_keys[] = {
    TG_CONF_READ("type", tg_config_read_provider_type, NULL),
    /* As written; the loader turns it into the effective URL afterwards. */
    TG_CONF_KEY("base_url", TG_CONF_STRING, tg_provider_cfg_t, base_url),
    TG_CONF_KEY("api_key", TG_CONF_STRING, tg_provider_cfg_t, api_key),
    TG_CONF_KEY("default_model", TG_CONF_STRING, tg_provider_cfg_t, default_model),
    TG_CONF_KEY("timeout", TG_CONF_DURATION, tg_provider_cfg_t, timeout_ms, .min = 1, .def = "60s"),
    TG_CONF_KEY("retries", TG_CONF_INT, tg_provider_cfg_t, retries, .min = 0, .max = 100,
                .def = "0"),
    TG_CONF_KEY("models", TG_CONF_STRINGS, tg_provider_cfg_t, models,
                .count_off = offsetof(tg_provider_cfg_t, n_models)),
    TG_CONF_KEY("weight", TG_CONF_NUMBER, tg_provider_cfg_t, weight, .min = 0,
                .flags = TG_CONF_EXCLUSIVE, .def = "1"),
    TG_CONF_READ("headers", tg_config_read_headers, NULL),
    TG_CONF_END,
};

/* ---- the records as the loader sees them ---- */

static bool kind_of(const tg_provider_rec_t *r, tg_config_provider_kind_t *k)
{
    if (!r)
        return false;
    *k = (tg_config_provider_kind_t){
        .name = r->name,
        .type = r->type,
        .default_base_url = r->default_base_url,
        .path_prefix = r->path_prefix,
        .base_url_hint = r->base_url_hint,
        .key_env = r->key_env,
        .key_env_alt = r->key_env_alt,
        .local = r->local,
    };
    return true;
}

static bool kind_at(size_t i, tg_config_provider_kind_t *k)
{
    return kind_of(tg_provider_rec_at(i), k);
}

static bool kind_named(const char *name, tg_config_provider_kind_t *k)
{
    return kind_of(tg_provider_rec_named(name), k);
}

const tg_config_provider_kinds_t tg_provider_conf_kinds = {
    .at = kind_at,
    .named = kind_named,
    .find = tg_provider_rec_find,
};
