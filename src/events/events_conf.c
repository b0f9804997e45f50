/*
 * events_conf.c — the keys of a `webhooks` entry and of an
 * `observability.alerts` rule (docs/configuration.md), and the names of
 * the event types and alert metrics, declared beside the events module
 * that uses them. The lists themselves have readers in src/config/
 * (required keys, the units of above/below, unknown event names).
 * Read by the config loader on the main thread; const data.
 */
#include "config/config_keys.h"

#include <stddef.h>

const char *const tg_event_type_names[] = {
    [TG_EVENT_BUDGET_WARNING] = "budget.warning",
    [TG_EVENT_BUDGET_EXCEEDED] = "budget.exceeded",
    [TG_EVENT_ALERT_FIRED] = "alert.fired",
    [TG_EVENT_ALERT_RESOLVED] = "alert.resolved",
    [TG_EVENT_REQUEST_COMPLETED] = "request.completed",
    NULL,
};

const char *const tg_alert_metric_names[] = {
    [TG_ALERT_ERROR_RATE] = "error_rate",
    [TG_ALERT_REQUEST_RATE] = "request_rate",
    [TG_ALERT_CACHE_HIT_RATE] = "cache_hit_rate",
    [TG_ALERT_LATENCY_AVG] = "latency_avg",
    [TG_ALERT_COST] = "cost",
    NULL,
};

static const char *const http_schemes[] = {"http://", "https://", NULL};

const tg_conf_key_t tg_webhook_conf_keys[] = {
    TG_CONF_KEY("url", TG_CONF_URL, tg_webhook_cfg_t, url, .names = http_schemes,
                .expect = "an http:// or https:// URL"),
    TG_CONF_READ("events", tg_config_read_event_names, NULL),
    /* never logged; kept only in memory (the outbox stores the URL) */
    TG_CONF_KEY("secret", TG_CONF_STRING, tg_webhook_cfg_t, secret),
    TG_CONF_END,
};

const tg_conf_key_t tg_obs_alert_conf_keys[] = {
    TG_CONF_KEY("metric", TG_CONF_ENUM, tg_obs_alert_entry_t, a.metric,
                .names = tg_alert_metric_names),
    /* as written: 5%, 100, 5s, 500ms, 5.00 (the reader converts per metric) */
    TG_CONF_KEY("above", TG_CONF_STRING, tg_obs_alert_entry_t, above),
    TG_CONF_KEY("below", TG_CONF_STRING, tg_obs_alert_entry_t, below),
    TG_CONF_KEY("window", TG_CONF_DURATION, tg_obs_alert_entry_t, a.window_ms, .min = 1000),
    TG_CONF_KEY("name", TG_CONF_STRING, tg_obs_alert_entry_t, a.name),
    TG_CONF_END,
};
