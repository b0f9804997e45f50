/*
 * gateway.c — builds and frees the gateway object (gateway.h): what was
 * process-wide state in file-level globals (pipeline.c's cache, limiter,
 * runtime rules and store, metrics.c's series, balance.c's health
 * registry) is made here, once per gateway, with the events module
 * (src/events/: webhooks and alerts, a thread of its own).
 *
 * Thread: the gateway's owner (main), before its workers start and after
 * they have stopped.
 */
#include "gateway.h"

#include "core/log.h"
#include "cost/cost.h"
#include "proxy/readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The store's gauges for /metrics, read at scrape time on a worker. */
static long store_depth(void *arg)
{
    tg_store_counters_t c;
    tg_store_counters(arg, &c);
    return (long)c.queue_depth;
}

static long store_dropped(void *arg)
{
    tg_store_counters_t c;
    tg_store_counters(arg, &c);
    return (long)c.dropped;
}

/* The runtime rate limits made through the API before this start. */
static int load_rules(tg_gateway_t *gw, char *err, size_t errlen)
{
    tg_rl_rule_t *rules = NULL;
    size_t n = 0;
    if (tg_store_rules_load(gw->store, &rules, &n, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (tg_rl_registry_add(gw->rules, &rules[i]) < 0)
            tg_warn("rate limits: stored rule %s not loaded (more than the registry holds)",
                    rules[i].id);
    if (n)
        tg_info("rate limits: %zu runtime limit(s) loaded from the store", n);
    free(rules);
    return 0;
}

/* ---- budgets ---- */

/*
 * Every budget event goes through here: a warning threshold crossed or a
 * limit reached, once per budget, value and period (the table flags each).
 * It writes the log line, counts the metric and emits the webhook event
 * (budget.warning, budget.exceeded: SPEC §11, docs/webhooks.md). Any thread,
 * outside the budget table's locks.
 */
static void on_budget_event(void *arg, const tg_budget_event_t *ev)
{
    tg_gateway_t *gw = arg;
    char spend[32], limit[32];
    tg_cost_format(ev->spend_nusd, spend);
    tg_cost_format(ev->limit_nusd, limit);
    bool exceeded = ev->kind == TG_BUDGET_EV_EXCEEDED;
    tg_warn("budget %s: %s %s %s spend %s USD of %s USD%s (resets at %lld)",
            exceeded ? "exceeded" : "warning", ev->scope, ev->value,
            tg_budget_period_name(ev->period), spend, limit,
            exceeded ? "" : ", past the warning threshold", (long long)ev->resets_at);
    tg_metrics_budget_event(gw->metrics, exceeded);
    if (!gw->events)
        return;
    char ts[32];
    time_t r = (time_t)ev->resets_at;
    struct tm tm;
    gmtime_r(&r, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    tg_events_emit(
        gw->events, exceeded ? "budget.exceeded" : "budget.warning",
        json_pack("{s:s,s:s,s:s,s:f,s:f,s:f,s:s}", "scope", ev->scope, "value", ev->value, "period",
                  tg_budget_period_name(ev->period), "spend", tg_cost_usd(ev->spend_nusd), "limit",
                  tg_cost_usd(ev->limit_nusd), "percent",
                  ev->limit_nusd > 0 ? 100.0 * (double)ev->spend_nusd / (double)ev->limit_nusd
                                     : 0.0,
                  "resets_at", ts));
}

/* Label values for /metrics: backslash, quote and newline escaped. */
static void put_label(tg_buf_t *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            tg_buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            tg_buf_puts(out, "\\n");
        else
            tg_buf_append(out, v, 1);
    }
}

/* tollgate_budget_spend_usd: the budgets with a limit, up to the series cap. */
static void render_budgets(void *arg, tg_buf_t *out)
{
    tg_gateway_t *gw = arg;
    tg_budget_state_t *st;
    size_t n, shown = 0;
    tg_budget_list(gw->budgets, (int64_t)time(NULL), &st, &n);
    for (size_t i = 0; i < n && shown < TG_METRICS_MAX_SERIES; i++) {
        if (st[i].limit < 0)
            continue;
        tg_buf_puts(out, "tollgate_budget_spend_usd{scope=\"");
        put_label(out, st[i].scope);
        tg_buf_puts(out, "\",value=\"");
        put_label(out, st[i].value);
        tg_buf_printf(out, "\",period=\"%s\"} %.9f\n", tg_budget_period_name(st[i].period),
                      tg_cost_usd(st[i].spend));
        shown++;
    }
    free(st);
}

typedef struct {
    tg_gateway_t *gw;
    const char *scope;
    int period;
} spend_ctx_t;

static void spend_row(void *arg, const char *value, int64_t nusd)
{
    const spend_ctx_t *a = arg;
    if (strlen(value) >= TG_BUDGET_VALUE_MAX)
        return;
    tg_budget_set_spend(a->gw->budgets, a->scope, value, a->period, nusd, (int64_t)time(NULL));
    if (!a->gw->redis)
        return;
    /* kept to seed Redis (tg_gateway_seed_shared) */
    tg_gateway_t *gw = a->gw;
    gw->seeds = tg_xrealloc(gw->seeds, (gw->n_seeds + 1) * sizeof *gw->seeds);
    tg_gateway_seed_t *sd = &gw->seeds[gw->n_seeds++];
    memset(sd, 0, sizeof *sd);
    snprintf(sd->apply.scope, sizeof sd->apply.scope, "%s", a->scope);
    snprintf(sd->apply.value, sizeof sd->apply.value, "%s", value);
    sd->apply.cfg.daily = a->period == TG_BUDGET_DAY ? 0 : -1; /* the slot of this period */
    sd->apply.cfg.monthly = a->period == TG_BUDGET_MONTH ? 0 : -1;
    sd->nusd = nusd;
}

void tg_gateway_seed_shared(void *arg, tg_redis_t *r)
{
    tg_gateway_t *gw = arg;
    int64_t now = (int64_t)time(NULL);
    tg_redis_args_t ra = {0};
    tg_budget_redis_slot_t sl[64];
    tg_budget_apply_t apply[64];
    int64_t spend[64];
    size_t i = 0;
    pthread_mutex_lock(&gw->scopes_mu); /* a runtime budget's scope may add seeds */
    while (i < gw->n_seeds) {
        int ns = 0;
        for (; i < gw->n_seeds && ns < 64; i++) {
            apply[ns] = gw->seeds[i].apply;
            if (tg_budget_redis_slots(gw->budgets, &apply[ns], 1, now, &sl[ns]) != 1)
                continue;
            sl[ns].apply = ns;
            spend[ns++] = gw->seeds[i].nusd;
        }
        tg_budget_redis_seed_args(&ra, apply, sl, ns, spend);
        if (ns)
            tg_redis_eval(r, &tg_budget_redis_seed, ra.nkeys, ra.argc, ra.argv, ra.lens, NULL,
                          NULL);
    }
    pthread_mutex_unlock(&gw->scopes_mu);
    tg_redis_args_free(&ra);
}

/* The spend of one scope this day and this month, from the store. Records
 * still queued or in the journal at that moment: tg_gateway_new flushes the
 * store first (docs/budgets.md). */
static void load_scope_spend(tg_gateway_t *gw, const char *scope)
{
    if (!gw->store)
        return;
    int64_t now = (int64_t)time(NULL);
    for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
        int64_t start, end;
        tg_budget_period(tg_budgets_calendar(gw->budgets), p, now, &start, &end);
        char err[256];
        spend_ctx_t a = {gw, scope, p};
        if (tg_store_spend_sums(gw->store, scope, start * 1000, INT64_MAX, spend_row, &a, err,
                                sizeof err) < 0)
            tg_warn("budgets: the %s spend of %s could not be read from the store: %s",
                    tg_budget_period_name(p), scope, err);
    }
}

void tg_gateway_budget_scope_load(tg_gateway_t *gw, const char *scope)
{
    pthread_mutex_lock(&gw->scopes_mu);
    for (size_t i = 0; i < gw->n_loaded_scopes; i++)
        if (!strcmp(gw->loaded_scopes[i], scope)) {
            pthread_mutex_unlock(&gw->scopes_mu);
            return;
        }
    gw->loaded_scopes =
        tg_xrealloc(gw->loaded_scopes, (gw->n_loaded_scopes + 1) * sizeof *gw->loaded_scopes);
    gw->loaded_scopes[gw->n_loaded_scopes++] = tg_xstrdup(scope);
    load_scope_spend(gw, scope);
    pthread_mutex_unlock(&gw->scopes_mu);
}

/* ---- a new period's spend, read back from the store ---- */

typedef struct {
    tg_gateway_t *gw;
    const char *scope;
    int period;
    int64_t now;
} reload_ctx_t;

static void reload_row(void *arg, const char *value, int64_t nusd)
{
    const reload_ctx_t *a = arg;
    if (strlen(value) < TG_BUDGET_VALUE_MAX)
        tg_budget_reload_value(a->gw->budgets, a->scope, value, a->period, nusd, a->now);
}

/* One period's reload (budget.h, tg_budget_reload_begin): divide at now,
 * wait for the requests begun before it, flush, sum, set. */
static void reload_period(tg_gateway_t *gw, int p, int64_t start, int64_t now_ms)
{
    int64_t t = tg_budget_reload_begin(gw->budgets, p, now_ms);
    /* the requests begun before t settle (each has a provider deadline);
     * past 15 minutes the sum goes on without the stragglers' records */
    for (int i = 0; i < 9000 && tg_budget_reload_waiting(gw->budgets, p) > 0; i++) {
        pthread_mutex_lock(&gw->reload_mu);
        bool stop = gw->reload_stop;
        pthread_mutex_unlock(&gw->reload_mu);
        if (stop)
            break;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&gw->scopes_mu);
    size_t n = gw->n_loaded_scopes;
    char **scopes = tg_xcalloc(n ? n : 1, sizeof *scopes);
    for (size_t i = 0; i < n; i++)
        scopes[i] = tg_xstrdup(gw->loaded_scopes[i]);
    pthread_mutex_unlock(&gw->scopes_mu);
    const char **read = tg_xcalloc(n ? n : 1, sizeof *read);
    size_t n_read = 0;
    if (tg_store_flush(gw->store, 10000) < 0)
        tg_warn("budgets: the store did not write its records in 10 s: the new %s spend is "
                "counted in memory only",
                tg_budget_period_name(p));
    else
        for (size_t i = 0; i < n; i++) {
            char err[256];
            reload_ctx_t a = {gw, scopes[i], p, now_ms / 1000};
            if (tg_store_spend_sums(gw->store, scopes[i], start * 1000, t, reload_row, &a, err,
                                    sizeof err) == 0)
                read[n_read++] = scopes[i];
            else
                tg_warn("budgets: the %s spend of %s could not be read from the store: %s",
                        tg_budget_period_name(p), scopes[i], err);
        }
    tg_budget_reload_end(gw->budgets, p, read, n_read, now_ms / 1000);
    for (size_t i = 0; i < n; i++)
        free(scopes[i]);
    free(scopes);
    free(read);
}

int tg_gateway_budget_reload(tg_gateway_t *gw, int64_t now_ms)
{
    if (!gw->store)
        return 0;
    int done = 0;
    pthread_mutex_lock(&gw->reload_run_mu);
    for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
        int64_t start, end;
        tg_budget_period(tg_budgets_calendar(gw->budgets), p, now_ms / 1000, &start, &end);
        if (start <= gw->loaded_start[p])
            continue;
        reload_period(gw, p, start, now_ms);
        gw->loaded_start[p] = start;
        done++;
    }
    pthread_mutex_unlock(&gw->reload_run_mu);
    return done;
}

/* The table's on_period hook (under a shard lock: only a signal). */
static void on_period(void *arg, int period)
{
    tg_gateway_t *gw = arg;
    pthread_mutex_lock(&gw->reload_mu);
    gw->reload_wanted = true;
    pthread_cond_signal(&gw->reload_cv);
    pthread_mutex_unlock(&gw->reload_mu);
}

/* The reloader: off the workers, it waits for a period to begin. */
static void *reloader_main(void *arg)
{
    tg_gateway_t *gw = arg;
    pthread_mutex_lock(&gw->reload_mu);
    for (;;) {
        while (!gw->reload_wanted && !gw->reload_stop)
            pthread_cond_wait(&gw->reload_cv, &gw->reload_mu);
        if (gw->reload_stop)
            break;
        gw->reload_wanted = false;
        pthread_mutex_unlock(&gw->reload_mu);
        tg_gateway_budget_reload(gw, tg_wall_ms());
        pthread_mutex_lock(&gw->reload_mu);
    }
    pthread_mutex_unlock(&gw->reload_mu);
    return NULL;
}

static void rule_row(void *arg, const char *scope, const char *value, const tg_budget_cfg_t *c)
{
    tg_budget_rule_t r;
    memset(&r, 0, sizeof r);
    if (!tg_budget_scope_valid(scope) || strlen(value) >= sizeof r.value)
        return;
    snprintf(r.scope, sizeof r.scope, "%s", scope);
    snprintf(r.value, sizeof r.value, "%s", value);
    r.cfg = *c;
    tg_budget_rule_put(arg, &r);
}

void tg_gateway_key_budget(tg_gateway_t *gw, const tg_vkey_t *k)
{
    if (k->budget_daily < 0 && k->budget_monthly < 0)
        return;
    tg_budget_rule_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.scope, sizeof r.scope, "key");
    snprintf(r.value, sizeof r.value, "%s", k->name);
    r.cfg = (tg_budget_cfg_t){k->budget_daily, k->budget_monthly, TG_BUDGET_BLOCK, 0.8};
    tg_gateway_budget_scope_load(gw, "key");
    tg_budget_rule_put(gw->budgets, &r);
}

static void key_row(void *arg, const tg_vkey_t *k)
{
    tg_gateway_t *gw = arg;
    if (tg_keyring_add(gw->keys, k) < 0)
        tg_warn("keys: stored key %s not loaded (a duplicate, or more than %d keys)", k->name,
                TG_KEYS_MAX);
    else
        tg_gateway_key_budget(gw, k);
}

/* The table, the runtime budgets, and the spend of every scope a budget
 * names, read after the store has written what it was handed (the
 * previous run's spool and journal included) so nothing is missed. */
static int load_budgets(tg_gateway_t *gw, const tg_config_t *cfg, char *err, size_t errlen)
{
    tg_budget_calendar_t *cal = tg_budget_calendar_new(
        cfg->budget_timezone ? cfg->budget_timezone : "UTC", (int64_t)time(NULL), err, errlen);
    if (!cal)
        return -1;
    gw->budgets = tg_budgets_new(cal, on_budget_event, gw);
    tg_metrics_set_budgets(gw->metrics, render_budgets, gw);
    if (!gw->store)
        return 0;
    /* the periods read now; the next ones are read by the reloader */
    int64_t now = (int64_t)time(NULL);
    for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
        int64_t end;
        tg_budget_period(cal, p, now, &gw->loaded_start[p], &end);
    }
    tg_budgets_on_period(gw->budgets, on_period, gw, now);
    if (pthread_create(&gw->reloader, NULL, reloader_main, gw) == 0) {
        gw->reloader_started = true;
        pthread_setname_np(gw->reloader, "tg-reloader");
    }
    tg_store_counters_t c;
    for (int i = 0; i < 100; i++) { /* the spool (last run's journal) replayed: 10 s at most */
        tg_store_flush(gw->store, 100);
        tg_store_counters(gw->store, &c);
        if (c.spool_bytes == 0 && c.queue_depth == 0)
            break;
    }
    if (c.spool_bytes || c.queue_depth)
        tg_warn("budgets: records still waiting to be stored are not in the spend read now");
    /* keys first: a budget PUT for a key later overrides the key's own */
    if (tg_store_keys_load(gw->store, key_row, gw, err, errlen) < 0)
        return -1;
    if (tg_store_budgets_load(gw->store, rule_row, gw->budgets, err, errlen) < 0)
        return -1;
    /* only the scopes a budget names: no entries for spend nobody limits */
    if (cfg->budget_daily >= 0 || cfg->budget_monthly >= 0)
        tg_gateway_budget_scope_load(gw, "global");
    if (cfg->budget_per_key.daily >= 0 || cfg->budget_per_key.monthly >= 0)
        tg_gateway_budget_scope_load(gw, "key");
    if (cfg->budget_per_user.daily >= 0 || cfg->budget_per_user.monthly >= 0)
        tg_gateway_budget_scope_load(gw, "user");
    char scope[TG_BUDGET_SCOPE_MAX];
    for (size_t i = 0; i < cfg->n_budget_per_property; i++) {
        snprintf(scope, sizeof scope, "property:%s", cfg->budget_per_property[i].name);
        tg_gateway_budget_scope_load(gw, scope);
    }
    tg_budget_rule_t *rules;
    size_t n;
    tg_budget_rules(gw->budgets, &rules, &n);
    for (size_t i = 0; i < n; i++)
        tg_gateway_budget_scope_load(gw, rules[i].scope);
    free(rules);
    return 0;
}

tg_gateway_t *tg_gateway_new(const tg_config_t *cfg, tg_store_t *store, char *err, size_t errlen)
{
    tg_gateway_t *gw = tg_xcalloc(1, sizeof *gw);
    gw->store = store;
    /* caching.max_size is read here only: changing it needs a restart */
    gw->cache =
        tg_cache_new(cfg->cache_max_size > 0 ? (size_t)cfg->cache_max_size : 10000, 0, NULL, NULL);
    gw->rl = tg_rl_new(0, NULL, NULL);
    gw->rules = tg_rl_registry_new();
    /* one shard per worker: server.workers needs a restart too */
    gw->metrics = tg_metrics_new(cfg->workers);
    gw->health = tg_health_registry_new();
    pthread_mutex_init(&gw->scopes_mu, NULL);
    pthread_mutex_init(&gw->reload_mu, NULL);
    pthread_mutex_init(&gw->reload_run_mu, NULL);
    pthread_cond_init(&gw->reload_cv, NULL);
    gw->keys = tg_keyring_new();
    tg_uuid4(gw->instance);
    if (cfg->redis_url) { /* the workers connect; a bad URL stops the start here */
        gw->redis =
            tg_redis_shared_new(cfg->redis_url, cfg->redis_on_failure, cfg->redis_timeout_ms,
                                cfg->redis_connect_timeout_ms, err, errlen);
        if (!gw->redis) {
            tg_gateway_free(gw);
            return NULL;
        }
        tg_metrics_set_shared(gw->metrics, tg_redis_render_metrics, gw->redis);
    }
    if (store) {
        tg_metrics_store_t gauges = {store_depth, store_dropped, store};
        tg_metrics_set_store(gw->metrics, &gauges);
        if (load_rules(gw, err, errlen) < 0) {
            tg_gateway_free(gw);
            return NULL;
        }
        /* /api/v1's queries off the workers' loops: two threads, as many
         * read connections (a third query waits for one) */
        gw->readers = tg_readers_new(2);
    }
    if (load_budgets(gw, cfg, err, errlen) < 0) {
        tg_gateway_free(gw);
        return NULL;
    }
    tg_events_options_t eo;
    tg_events_options_env(&eo);
    gw->events = tg_events_new(cfg, &eo, store, gw->metrics);
    gw->otlp = tg_otlp_new(cfg, gw->metrics);
    return gw;
}

void tg_gateway_free(tg_gateway_t *gw)
{
    if (!gw)
        return;
    if (gw->reloader_started) { /* it reads the store and the budgets */
        pthread_mutex_lock(&gw->reload_mu);
        gw->reload_stop = true;
        pthread_cond_signal(&gw->reload_cv);
        pthread_mutex_unlock(&gw->reload_mu);
        pthread_join(gw->reloader, NULL);
    }
    /* first: its thread reads the metrics and writes the outbox */
    tg_events_free(gw->events);
    tg_otlp_free(gw->otlp);       /* the spans still queued are sent once more */
    tg_readers_free(gw->readers); /* before the store its queries read */
    tg_cache_free(gw->cache);
    tg_rl_free(gw->rl);
    tg_rl_registry_free(gw->rules);
    tg_metrics_free(gw->metrics);
    tg_redis_shared_free(gw->redis);
    tg_budgets_free(gw->budgets);
    tg_keyring_free(gw->keys);
    for (size_t i = 0; i < gw->n_loaded_scopes; i++)
        free(gw->loaded_scopes[i]);
    free(gw->loaded_scopes);
    free(gw->seeds);
    pthread_mutex_destroy(&gw->scopes_mu);
    pthread_mutex_destroy(&gw->reload_mu);
    pthread_mutex_destroy(&gw->reload_run_mu);
    pthread_cond_destroy(&gw->reload_cv);
    tg_health_registry_free(gw->health);
    if (gw->store)
        tg_store_close(gw->store); /* writes every record still queued */
    free(gw);
}
