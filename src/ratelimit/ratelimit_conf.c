/*
 * ratelimit_conf.c — the keys of the `rate_limiting:` section
 * (docs/configuration.md) and of a limit pair (also used by
 * security.rate_limits), declared beside the limiter that enforces them.
 * Maps of provider and property names have readers in src/config/. Read by
 * the config loader on the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

/* {requests_per_minute, tokens_per_minute}: 0 or absent, no limit. */
const tg_conf_key_t tg_rate_pair_conf_keys[] = {
    TG_CONF_KEY("requests_per_minute", TG_CONF_INT64, tg_rate_pair_t, requests_per_minute,
                .min = 0),
    TG_CONF_KEY("tokens_per_minute", TG_CONF_INT64, tg_rate_pair_t, tokens_per_minute, .min = 0),
    TG_CONF_END,
};

const tg_conf_key_t tg_ratelimit_conf_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, rl_enabled, .def = "false"),
    TG_CONF_READ("providers", tg_config_read_provider_limits, tg_rate_pair_conf_keys),
    TG_CONF_KEY("per_key", TG_CONF_SECTION, tg_config_t, rl_per_key, .flags = TG_CONF_DOC_WHOLE,
                .sub = tg_rate_pair_conf_keys),
    TG_CONF_KEY("per_ip", TG_CONF_SECTION, tg_config_t, rl_per_ip, .flags = TG_CONF_DOC_WHOLE,
                .sub = tg_rate_pair_conf_keys),
    TG_CONF_KEY("per_user", TG_CONF_SECTION, tg_config_t, rl_per_user, .flags = TG_CONF_DOC_WHOLE,
                .sub = tg_rate_pair_conf_keys),
    TG_CONF_READ("per_property", tg_config_read_property_limits, tg_rate_pair_conf_keys),
    TG_CONF_END,
};
