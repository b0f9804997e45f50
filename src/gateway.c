/*
 * gateway.c — builds and frees the gateway object (gateway.h): what was
 * process-wide state in file-level globals (pipeline.c's cache, limiter,
 * runtime rules and store, metrics.c's series, balance.c's health
 * registry) is made here, once per gateway.
 *
 * Thread: the gateway's owner (main), before its workers start and after
 * they have stopped.
 */
#include "gateway.h"

#include "core/log.h"
#include "proxy/readers.h"

#include <stdlib.h>

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
    return gw;
}

void tg_gateway_free(tg_gateway_t *gw)
{
    if (!gw)
        return;
    tg_readers_free(gw->readers); /* before the store its queries read */
    tg_cache_free(gw->cache);
    tg_rl_free(gw->rl);
    tg_rl_registry_free(gw->rules);
    tg_metrics_free(gw->metrics);
    tg_health_registry_free(gw->health);
    if (gw->store)
        tg_store_close(gw->store); /* writes every record still queued */
    free(gw);
}
