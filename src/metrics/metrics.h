/*
 * metrics.h — the Prometheus series of SPEC §10, as one object per gateway
 * (tg_metrics_t) cut into shards, one per worker.
 *
 * Threads: a shard is written by its worker only (tg_metrics_request and
 * the other counters take the shard's own lock, which nothing but
 * tg_metrics_render also takes, so the hot path never waits on another
 * worker). tg_metrics_render runs on any thread and sums the shards, one
 * at a time. tg_metrics_new, _free, _set_store and _reset run while no
 * worker records (start-up, shutdown, tests).
 *
 * Label sets are capped (TG_METRICS_MAX_SERIES per family, over all shards
 * together): past the cap a new model is counted as model="other", so
 * clients naming arbitrary models cannot grow memory without bound.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "core/usage.h"
#include "core/util.h"

#define TG_METRICS_MAX_SERIES 1000

typedef struct tg_metrics tg_metrics_t;
typedef struct tg_metrics_shard tg_metrics_shard_t;

/** A metrics object with `shards` shards (at least 1): one per worker. */
tg_metrics_t *tg_metrics_new(int shards);
void tg_metrics_free(tg_metrics_t *m); /* NULL is fine */

/** The shard of worker `index` (taken modulo the number of shards). */
tg_metrics_shard_t *tg_metrics_shard(tg_metrics_t *m, int index);

/** One finished request. ttft_s < 0 when there was no first token (errors);
 *  cost_usd < 0 when unknown (unpriced model). */
void tg_metrics_request(tg_metrics_shard_t *sh, const char *provider, const char *model, int status,
                        double duration_s, double ttft_s, const tg_usage_t *usage, double cost_usd);

/** One answered request whose model has no price. True when the gateway
 *  meets this provider and model for the first time (the caller names it
 *  in the log then), so each is logged once and memory stays within the
 *  series cap; past the cap the model counts as "other" and gives false. */
bool tg_metrics_unpriced(tg_metrics_shard_t *sh, const char *provider, const char *model);

/** kind: "connect", "timeout", "broken", "status_5xx", "status_429", ... */
void tg_metrics_upstream_error(tg_metrics_shard_t *sh, const char *provider, const char *kind);

/** result: "hit" or "miss". */
void tg_metrics_cache(tg_metrics_shard_t *sh, const char *result);
void tg_metrics_rate_limited(tg_metrics_shard_t *sh);
/** A request refused by a budget of `scope` (global, key, user,
 *  property:<Name>, counted as "property"). */
void tg_metrics_budget_blocked(tg_metrics_shard_t *sh, const char *scope);
/** A budget event (a warning threshold crossed, a limit reached): any
 *  thread (atomic, not per shard: events come from whoever settles). */
void tg_metrics_budget_event(tg_metrics_t *m, bool exceeded);
/** Budget spend gauges, written at scrape time by `render` (NULL: none),
 *  which must keep within TG_METRICS_MAX_SERIES lines. Set before the
 *  workers start, cleared after they stop. */
void tg_metrics_set_budgets(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg);

/** A worker stopped accepting for a while. reason: "limit"
 *  (server.max_connections reached, nothing idle to close) or
 *  "descriptors" (accept failed: out of file descriptors or memory). */
void tg_metrics_accept_paused(tg_metrics_shard_t *sh, const char *reason);
/** The server closed a client connection to protect itself. reason:
 *  "evicted" (idle, closed to make room), "refused" (accepted over the
 *  limit and closed at once), "header_timeout", "body_timeout". */
void tg_metrics_connection_dropped(tg_metrics_shard_t *sh, const char *reason);
/** The open client connections gauge, read at scrape time (NULL: 0). The
 *  server sets it when it starts and clears it before it frees itself. */
void tg_metrics_set_connections(tg_metrics_t *m, long (*open)(void *arg), void *arg);

/** Gauges read at scrape time from the request-record store. */
typedef struct {
    long (*queue_depth)(void *arg);
    long (*dropped)(void *arg);
    void *arg;
} tg_metrics_store_t;
void tg_metrics_set_store(tg_metrics_t *m, const tg_metrics_store_t *s);

/** What the observability alerts watch (src/events/alerts.h): running
 *  totals since start, every shard summed (each shard's lock in turn, as
 *  a scrape does). errors: requests answered with status >= 400. Any
 *  thread. */
typedef struct {
    double requests, errors;
    double duration_s; /* sum of request durations */
    double cost_usd;   /* sum of known costs */
    double cache_hits, cache_misses;
} tg_metrics_totals_t;
void tg_metrics_totals(tg_metrics_t *m, tg_metrics_totals_t *out);

/** Series another module keeps (the events module's): `render` appends
 *  them at the end of every scrape, on the scraping thread. Set before the
 *  workers start; NULL clears. */
void tg_metrics_set_extra(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg);

/** The shared state's series (tollgate_redis_up, _errors_total:
 *  redis/redis.h), rendered like the extra ones. Set before the workers
 *  start; NULL clears. */
void tg_metrics_set_shared(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg);

/** The OpenTelemetry exporter's series (tollgate_otlp_spans_total), written
 *  at scrape time by `render` after the extra ones (NULL: none). Any thread. */
void tg_metrics_set_otlp(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg);

/** Append the Prometheus text exposition (format 0.0.4): every shard summed. */
void tg_metrics_render(tg_metrics_t *m, tg_buf_t *out);

/** Forget every series (tests). */
void tg_metrics_reset(tg_metrics_t *m);

#endif
