/*
 * alerts.h — observability alerts (observability.alerts; docs/observability.md):
 * rules over the gateway's running totals (tg_metrics_totals), each
 * evaluated over its own sliding window. Pure logic: the caller gives the
 * time and the totals; the evaluator says when a rule starts and stops
 * holding. The events thread drives it (events.c), every few seconds.
 *
 * Windows: each tick keeps a snapshot of the totals; a rule's window is
 * the difference between now and the newest snapshot at least `window`
 * old (the oldest, while the gateway is younger than the window). So the
 * request path takes no lock of ours: the totals are the metrics shards'.
 *
 * Threads: one caller at a time (the events thread; tests).
 */
#ifndef TG_ALERTS_H
#define TG_ALERTS_H

#include "config/config.h"
#include "metrics/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_alerts tg_alerts_t;

/** A rule started (firing) or stopped holding; value: the metric over its
 *  window now (NAN when undefined: no requests, no cache look-ups). */
typedef void (*tg_alert_change_fn)(void *arg, size_t index, const tg_obs_alert_cfg_t *rule,
                                   bool firing, double value);

/** An evaluator of n rules (copied), ticked about every interval_ms (which
 *  sizes the snapshot ring: the longest window / interval_ms snapshots). */
tg_alerts_t *tg_alerts_new(const tg_obs_alert_cfg_t *rules, size_t n, int64_t interval_ms);
void tg_alerts_free(tg_alerts_t *a); /* NULL is fine */

/** Keep the totals `t` seen at now_ms (monotonic), evaluate every rule and
 *  call fn once for each that started or stopped holding. */
void tg_alerts_tick(tg_alerts_t *a, int64_t now_ms, const tg_metrics_totals_t *t,
                    tg_alert_change_fn fn, void *arg);

/** Whether rule i holds now (as of the last tick). */
bool tg_alerts_firing(const tg_alerts_t *a, size_t i);

/** The metric of `rule` over a window whose totals changed by d in
 *  window_s seconds; NAN when undefined. */
double tg_alert_value(const tg_obs_alert_cfg_t *rule, const tg_metrics_totals_t *d,
                      double window_s);

#endif
