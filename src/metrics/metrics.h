/*
 * metrics.h — the Prometheus series of SPEC §10. Any thread: recording
 * takes one process-wide mutex (a few dozen nanoseconds uncontended, once
 * per request), rendering takes it too.
 *
 * Label sets are capped (TG_METRICS_MAX_SERIES per family): past the cap a
 * new model is counted as model="other", so clients naming arbitrary models
 * cannot grow memory without bound.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "core/usage.h"
#include "core/util.h"

#define TG_METRICS_MAX_SERIES 1000

/** One finished request. ttft_s < 0 when there was no first token (errors);
 *  cost_usd < 0 when unknown (unpriced model). */
void tg_metrics_request(const char *provider, const char *model, int status, double duration_s,
                        double ttft_s, const tg_usage_t *usage, double cost_usd);

/** kind: "connect", "timeout", "broken", "status_5xx", "status_429", ... */
void tg_metrics_upstream_error(const char *provider, const char *kind);

/** result: "hit" or "miss". */
void tg_metrics_cache(const char *result);
void tg_metrics_rate_limited(void);
void tg_metrics_budget_blocked(void);

/** A worker stopped accepting for a while. reason: "limit"
 *  (server.max_connections reached, nothing idle to close) or
 *  "descriptors" (accept failed: out of file descriptors or memory). */
void tg_metrics_accept_paused(const char *reason);
/** The server closed a client connection to protect itself. reason:
 *  "evicted" (idle, closed to make room), "refused" (accepted over the
 *  limit and closed at once), "header_timeout", "body_timeout". */
void tg_metrics_connection_dropped(const char *reason);
/** The open client connections gauge, read at scrape time (NULL: 0). */
void tg_metrics_set_connections(long (*open)(void *arg), void *arg);

/** Gauges read at scrape time from the request-record store. */
typedef struct {
    long (*queue_depth)(void);
    long (*dropped)(void);
} tg_metrics_store_t;
void tg_metrics_set_store(const tg_metrics_store_t *s);

/** Append the Prometheus text exposition (format 0.0.4). */
void tg_metrics_render(tg_buf_t *out);

/** Forget everything (tests). */
void tg_metrics_reset(void);

#endif
