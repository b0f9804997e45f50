/*
 * router_conf.c — the keys of the `routing:` section (docs/configuration.md),
 * declared beside the router that uses them. Rules, the fallback chain and
 * aliases have readers of their own in src/config/. Read by the config
 * loader on the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

/* In the order of tg_lb_strategy_t. */
static const char *const strategies[] = {"weighted", "round_robin", "latency", "cost", NULL};

_Static_assert(sizeof(tg_lb_strategy_t) == sizeof(int), "TG_CONF_ENUM writes an int");

static const tg_conf_key_t load_balancing_keys[] = {
    TG_CONF_KEY("strategy", TG_CONF_ENUM, tg_config_t, lb_strategy, .names = strategies,
                .def = "weighted"),
    /* Rest for a provider whose recent requests mostly failed. */
    TG_CONF_KEY("ejection_time", TG_CONF_DURATION, tg_config_t, lb_ejection_ms, .min = 1,
                .def = "30s"),
    TG_CONF_END,
};

const tg_conf_key_t tg_router_conf_keys[] = {
    TG_CONF_KEY("default_provider", TG_CONF_STRING, tg_config_t, default_provider),
    TG_CONF_READ("fallback_chain", tg_config_read_fallback_chain, NULL),
    TG_CONF_READ("rules", tg_config_read_rules, NULL),
    TG_CONF_NEST("load_balancing", load_balancing_keys),
    TG_CONF_READ("model_aliases", tg_config_read_aliases, NULL),
    TG_CONF_END,
};
