/*
 * gateway.h — the gateway object: everything one running gateway shares
 * between its threads, in one place (as nginx's cycle or h2o's context).
 * main.c builds it from the configuration, hands it to the server's
 * worker hooks (tg_server_hooks_t.arg), and frees it after the workers
 * have stopped. Each worker keeps a pointer to it in its tg_pworker_t;
 * nothing mutable lives in file-level globals, so two gateways can run in
 * one process (tests/unit/test_gateway.c).
 *
 * Threads: tg_gateway_new and tg_gateway_free on the thread that owns the
 * gateway (main), before the workers start and after they stop. The
 * members are used by every worker at once; each is thread-safe:
 *   cache    sharded locks
 *   rl       sharded locks
 *   rules    its own lock (changed through /api/v1)
 *   store    submissions from workers, one writer thread
 *   metrics  one shard per worker, summed when /metrics is read
 *   health   one lock per provider record
 *   events   a short lock around a bounded queue; its own thread delivers
 *   otlp     a short lock around a bounded queue; its own thread exports
 *   readers  its own lock (proxy/readers.h); a worker forgets its jobs
 *            before its loop goes
 *   budgets  sharded locks (budget/budget.h); runtime budgets their own;
 *            a reloader thread reads each new period's spend from the store
 *   keys     the virtual keys of /api/v1/keys, one read-write lock
 *   redis    redis.url and its counters (atomics); each worker has its
 *            own connection (tg_pworker_t.redis)
 * The configuration is not a member: it changes on SIGHUP and each worker
 * holds its own reference (tg_pworker_t.cfg).
 */
#ifndef TG_GATEWAY_H
#define TG_GATEWAY_H

#include <pthread.h>

#include "auth/keys.h"
#include "budget/budget.h"
#include "cache/cache.h"
#include "config/config.h"
#include "events/events.h"
#include "metrics/metrics.h"
#include "otlp/otlp.h"
#include "ratelimit/ratelimit.h"
#include "redis/redis.h"
#include "router/balance.h"
#include "store/store.h"

typedef struct tg_gateway {
    tg_cache_t *cache;            /* caching.max_size entries, read at start only */
    tg_rl_t *rl;                  /* GCRA limiter state */
    tg_rl_registry_t *rules;      /* runtime rate limits (/api/v1), loaded from the store */
    tg_store_t *store;            /* request records; NULL when request logging is off */
    tg_metrics_t *metrics;        /* server.workers shards */
    tg_health_registry_t *health; /* provider health, kept across reloads */
    /* events, webhooks and observability alerts (receivers and rules read
     * at start); budgets emit theirs with tg_events_emit(gw->events, ...) */
    tg_events_t *events;
    tg_otlp_t *otlp;            /* span export (observability.otlp, read at start); NULL: off */
    struct tg_readers *readers; /* /api/v1's reader threads; NULL without a store */
    tg_budgets_t *budgets;      /* spend and reservations; runtime budgets */
    tg_keyring_t *keys;         /* virtual keys (/api/v1/keys), loaded from the store */
    pthread_mutex_t scopes_mu;  /* loaded_scopes */
    char **loaded_scopes;       /* budget scopes whose spend was read from the store */
    size_t n_loaded_scopes;
    tg_redis_shared_t *redis;      /* redis.url; NULL without one */
    char instance[37];             /* this process's id among the instances (a UUID) */
    struct tg_gateway_seed *seeds; /* with redis: the spend read at start, to seed it */
    size_t n_seeds;
    /* The reloader thread: when a budget period begins it reads the new
     * period's spend back from the store (tg_gateway_budget_reload). */
    pthread_t reloader;
    bool reloader_started;
    pthread_mutex_t reload_mu; /* reload_wanted, reload_stop */
    pthread_cond_t reload_cv;
    bool reload_wanted, reload_stop;
    pthread_mutex_t reload_run_mu;            /* one reload at a time; loaded_start */
    int64_t loaded_start[TG_BUDGET_NPERIODS]; /* the periods whose spend was read */
} tg_gateway_t;

/* One budget period's spend as the store had it at start. */
typedef struct tg_gateway_seed {
    tg_budget_apply_t apply; /* scope, value; the period's limit 0, the other's -1 */
    int64_t nusd;
} tg_gateway_seed_t;

/** Seed Redis with the spend read at start (HSETNX: the first instance's
 *  sums stay; the others' and a restart's do not add to them). Worker 0's
 *  connection calls it each time it becomes ready. */
void tg_gateway_seed_shared(void *gw, tg_redis_t *r);

/** A virtual key's budget as a `key` scope budget (block, 80 % warning);
 *  none when it has no limit. Any thread. */
void tg_gateway_key_budget(tg_gateway_t *gw, const tg_vkey_t *k);

/** Read the spend of `scope` this period from the store, once per scope
 *  (a runtime budget of a scope the configuration has none of). Any
 *  thread; before the scope's first budget applies. */
void tg_gateway_budget_scope_load(tg_gateway_t *gw, const char *scope);

/** Read back from the store the spend of each budget period that began
 *  since the last read (at now_ms, wall clock): requests begun before the
 *  reload are counted by their stored records, those begun since by
 *  memory (budget.h). The reloader thread calls it when the first entry
 *  enters a new period; tests call it with their own clock. Waits for the
 *  store: never on a worker. Returns the periods read. */
int tg_gateway_budget_reload(tg_gateway_t *gw, int64_t now_ms);

/** Build a gateway for cfg. Takes `store` (NULL: request logging off,
 *  runtime limits in memory only) in every case: it is closed by
 *  tg_gateway_free, or here on failure. Returns NULL with err when the
 *  stored runtime rate limits cannot be read. */
tg_gateway_t *tg_gateway_new(const tg_config_t *cfg, tg_store_t *store, char *err, size_t errlen);

/** Free it (NULL is fine): no worker may be running. Closing the store
 *  writes every record still queued. */
void tg_gateway_free(tg_gateway_t *gw);

#endif
