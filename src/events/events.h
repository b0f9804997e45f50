/*
 * events.h — events and signed webhooks (SPEC §11, docs/webhooks.md), and
 * the observability alerts that raise some of them (alerts.h).
 *
 * An event is {"id","type","created_at","data"}. tg_events_emit takes one
 * from any thread, never waits on I/O (a short mutex around a bounded
 * queue in memory), logs it and counts it. One thread of the gateway's,
 * the events thread, moves what the queue holds into the outbox (the
 * store's webhook_outbox table, or memory when the gateway keeps no
 * store), delivers it to each receiver that asked for its type, signed
 * (Tollgate-Signature), over libcurl multi with a deadline on every
 * attempt and no redirects, and retries a failed delivery with
 * exponential backoff and jitter for 24 hours. A receiver that is slow,
 * failing or gone touches only that thread. Delivery is at least once:
 * a receiver drops duplicates by the event's id.
 *
 * The same thread evaluates observability.alerts every few seconds over
 * the metrics shards' totals and emits alert.fired / alert.resolved.
 *
 * Owned by the gateway object (gateway.h, `events`). Receivers and rules
 * are read from the configuration at start: changing them needs a restart.
 *
 * Threads: tg_events_new and tg_events_free on the gateway's owner (main),
 * before the workers start and after they stop; tg_events_emit,
 * tg_events_request and tg_events_wants_requests on any thread.
 */
#ifndef TG_EVENTS_H
#define TG_EVENTS_H

#include "config/config.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tg_events tg_events_t;

typedef struct {
    int64_t retry_min_ms;      /* first retry after a failed delivery (10 s) */
    int64_t retry_max_ms;      /* backoff ceiling (1 h) */
    int64_t max_age_ms;        /* give up on an event this old (24 h) */
    int64_t timeout_ms;        /* one delivery attempt, whole (10 s) */
    int64_t alert_interval_ms; /* how often the alerts are evaluated (5 s) */
    size_t queue_max;          /* events waiting in memory (4096) */
} tg_events_options_t;

/** The defaults above. */
void tg_events_options_default(tg_events_options_t *o);

/** The defaults, then the test knobs (docs/webhooks.md):
 *  TOLLGATE_WEBHOOK_RETRY_MS="MIN[,MAX]", TOLLGATE_WEBHOOK_TIMEOUT_MS,
 *  TOLLGATE_ALERT_INTERVAL_MS. Main thread. */
void tg_events_options_env(tg_events_options_t *o);

/** The events of cfg's receivers (cost_tracking.webhook_url, webhooks) and
 *  rules (observability.alerts). `store` (may be NULL: the outbox is then
 *  in memory only) and `metrics` (the alerts' totals; its scrape shows
 *  the events' series) must outlive it. Starts the events thread when
 *  there is a receiver or a rule. */
tg_events_t *tg_events_new(const tg_config_t *cfg, const tg_events_options_t *o, tg_store_t *store,
                           tg_metrics_t *metrics);

/** Stop the thread: what waits in memory goes to the outbox, deliveries
 *  under way are cut (their rows stay due: they are sent again at the next
 *  start). NULL is fine. */
void tg_events_free(tg_events_t *ev);

/** Whether a and b differ in what tg_events_new reads (receivers, secrets,
 *  alert rules): a reload then says that the change needs a restart. */
bool tg_events_config_differs(const tg_config_t *a, const tg_config_t *b);

/** Emit an event of `type` (one of tg_event_type_names: "budget.warning",
 *  "budget.exceeded", "alert.fired", "alert.resolved"; an unknown type is
 *  logged and dropped) with `data` (an object; ownership passes, also on
 *  every failure; NULL: {}). Never blocks; any thread. With no receiver
 *  for the type the event is still logged and counted. When the queue in
 *  memory is full the event is dropped and counted
 *  (tollgate_events_dropped_total). */
void tg_events_emit(tg_events_t *ev, const char *type, json_t *data);

/** Whether some receiver asked for request.completed (cheap; any thread). */
bool tg_events_wants_requests(const tg_events_t *ev);

/** request.completed for r: the record without its bodies (r is only
 *  read). Dropped first when the queue runs full: the last places are
 *  kept for the other types. Any thread. */
void tg_events_request(tg_events_t *ev, const tg_record_t *r);

/* ---- the parts, for tests ---- */

/** The Tollgate-Signature value for a body sent at Unix time t:
 *  "t=T,v1=HEX", HEX = HMAC-SHA256(secret, "T.BODY") in lower-case hex. */
void tg_events_sign(const char *secret, int64_t t, const char *body, size_t len, tg_buf_t *out);

/** The wait before the retry that follows `attempts` failed attempts
 *  (>= 1): min_ms * 2^(attempts-1), at most max_ms, then jittered down by
 *  up to half from the random bits `rnd` (so in [d/2, d]). */
int64_t tg_events_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms, uint64_t rnd);

#endif
