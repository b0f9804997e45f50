/*
 * auth_conf.c — the keys of the `security:` section (docs/configuration.md)
 * and of a gateway key, declared beside the access checks that use them.
 * The key list has a reader in src/config/ (unique names and keys,
 * entries without a key skipped). Read by the config loader on the main
 * thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

static const tg_conf_key_t api_key_keys[] = {
    TG_CONF_KEY("name", TG_CONF_STRING, tg_api_key_cfg_t, name),
    TG_CONF_KEY("key", TG_CONF_STRING, tg_api_key_cfg_t, key),
    TG_CONF_READ("permissions", tg_config_read_permissions, NULL),
    TG_CONF_END,
};

static const tg_conf_key_t rate_limits_keys[] = {
    TG_CONF_KEY("per_ip", TG_CONF_SECTION, tg_config_t, sec_per_ip, .flags = TG_CONF_DOC_WHOLE,
                .sub = tg_rate_pair_conf_keys),
    TG_CONF_END,
};

const tg_conf_key_t tg_auth_conf_keys[] = {
    TG_CONF_KEY("require_auth", TG_CONF_BOOL, tg_config_t, require_auth, .def = "false"),
    TG_CONF_READ("api_keys", tg_config_read_api_keys, api_key_keys),
    /* Empty: everyone allowed. */
    TG_CONF_KEY("allowed_ips", TG_CONF_ADDRESSES, tg_config_t, allowed_ips,
                .count_off = offsetof(tg_config_t, n_allowed_ips)),
    /* Empty: this machine only (the loader adds the loopback addresses). */
    TG_CONF_KEY("admin_allowed_ips", TG_CONF_ADDRESSES, tg_config_t, admin_allowed_ips,
                .count_off = offsetof(tg_config_t, n_admin_allowed_ips)),
    TG_CONF_KEY("max_request_size", TG_CONF_SIZE, tg_config_t, max_request_size, .min = 1,
                .def = "10MB"),
    /* 0: no cap. */
    TG_CONF_KEY("max_tokens_per_request", TG_CONF_INT64, tg_config_t, max_tokens_per_request,
                .min = 0, .def = "0"),
    TG_CONF_NEST("rate_limits", rate_limits_keys),
    TG_CONF_END,
};
