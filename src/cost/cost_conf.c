/*
 * cost_conf.c — the keys of the `cost_tracking:` section
 * (docs/configuration.md), of a pricing entry and of an alert, declared
 * beside the cost module that uses them. The pricing map and the alert
 * list have readers in src/config/ (required keys, the threshold's forms);
 * the prices file is read through tg_cost_price_hooks once the walk is done.
 * Read by the config loader on the main thread; const data.
 */
#include "config/config_keys.h"
#include "cost/cost.h"

#include <stddef.h>

/* USD per 1,000 tokens; the reader starts each at -1 (not given) and
 * requires input and output. */
static const tg_conf_key_t price_keys[] = {
    TG_CONF_KEY("input", TG_CONF_NUMBER, tg_price_cfg_t, input, .min = 0),
    TG_CONF_KEY("output", TG_CONF_NUMBER, tg_price_cfg_t, output, .min = 0),
    TG_CONF_KEY("cached_input", TG_CONF_NUMBER, tg_price_cfg_t, cached_input, .min = 0),
    TG_CONF_KEY("cache_write", TG_CONF_NUMBER, tg_price_cfg_t, cache_write, .min = 0),
    TG_CONF_END,
};

static const char *const actions[] = {"notification", "throttle", NULL};

static const tg_conf_key_t alert_keys[] = {
    TG_CONF_READ("threshold", tg_config_read_threshold, NULL),
    TG_CONF_KEY("action", TG_CONF_ENUM_NAME, tg_alert_cfg_t, action, .names = actions),
    TG_CONF_END,
};

static const char *const budget_actions[] = {"block", "warn", "none", NULL};

/* One per_user / per_key / per_property budget; the loader starts daily
 * and monthly at -1 (none). */
static const tg_conf_key_t budget_entry_keys[] = {
    TG_CONF_KEY("daily", TG_CONF_NUMBER, tg_budget_cfg_t, daily, .min = 0),
    TG_CONF_KEY("monthly", TG_CONF_NUMBER, tg_budget_cfg_t, monthly, .min = 0),
    TG_CONF_KEY("action", TG_CONF_ENUM, tg_budget_cfg_t, action, .names = budget_actions,
                .def = "block"),
    TG_CONF_KEY("warning_threshold", TG_CONF_NUMBER, tg_budget_cfg_t, warning_threshold, .min = 0,
                .def = "0.8"),
    TG_CONF_END,
};

/* USD; the loader starts daily and monthly at -1 (no budget). */
static const tg_conf_key_t budget_keys[] = {
    TG_CONF_KEY("daily", TG_CONF_NUMBER, tg_config_t, budget_daily, .min = 0),
    TG_CONF_KEY("monthly", TG_CONF_NUMBER, tg_config_t, budget_monthly, .min = 0),
    TG_CONF_KEY("action", TG_CONF_ENUM, tg_config_t, budget_action, .names = budget_actions,
                .def = "block"),
    TG_CONF_KEY("warning_threshold", TG_CONF_NUMBER, tg_config_t, budget_warning_threshold,
                .min = 0, .def = "0.8"),
    TG_CONF_READ("per_property", tg_config_read_budget_properties, budget_entry_keys),
    TG_CONF_KEY("per_user", TG_CONF_SECTION, tg_config_t, budget_per_user, .sub = budget_entry_keys,
                .flags = TG_CONF_DOC_WHOLE),
    TG_CONF_KEY("per_key", TG_CONF_SECTION, tg_config_t, budget_per_key, .sub = budget_entry_keys,
                .flags = TG_CONF_DOC_WHOLE),
    TG_CONF_KEY("timezone", TG_CONF_STRING, tg_config_t, budget_timezone, .def = "UTC"),
    TG_CONF_KEY("allow_unpriced", TG_CONF_BOOL, tg_config_t, budget_allow_unpriced, .def = "false"),
    TG_CONF_END,
};

static const char *const http_schemes[] = {"http://", "https://", NULL};

const tg_conf_key_t tg_cost_conf_keys[] = {
    TG_CONF_KEY("enabled", TG_CONF_BOOL, tg_config_t, cost_enabled, .def = "true"),
    TG_CONF_READ("pricing", tg_config_read_pricing, price_keys),
    TG_CONF_NEST("budgets", budget_keys),
    TG_CONF_READ("alerts", tg_config_read_alerts, alert_keys),
    TG_CONF_KEY("webhook_url", TG_CONF_URL, tg_config_t, webhook_url, .names = http_schemes,
                .expect = "an http:// or https:// URL"),
    TG_CONF_KEY("prices_file", TG_CONF_STRING, tg_config_t, prices_file),
    TG_CONF_END,
};

const tg_config_price_hooks_t tg_cost_price_hooks = {
    .load = tg_price_list_load,
    .free = tg_price_list_free,
};
