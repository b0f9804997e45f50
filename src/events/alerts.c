/*
 * alerts.c — see alerts.h. A ring of snapshots of the running totals, one
 * per tick; a rule reads the difference between now and the snapshot that
 * starts its window. A rule fires when it starts holding and resolves when
 * it stops, each once: the state is a flag per rule, changed only here.
 *
 * Thread: the events thread (one caller at a time).
 */
#include "events/alerts.h"

#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t t_ms;
    tg_metrics_totals_t tot;
} snap_t;

struct tg_alerts {
    tg_obs_alert_cfg_t *rules; /* copies; names owned */
    bool *firing;
    size_t n;
    snap_t *ring;
    size_t cap, head, len; /* head: the oldest */
};

/* A few hours of a 5-second tick at least; a day of one at most. */
#define RING_MIN 16
#define RING_MAX 100000

tg_alerts_t *tg_alerts_new(const tg_obs_alert_cfg_t *rules, size_t n, int64_t interval_ms)
{
    tg_alerts_t *a = tg_xcalloc(1, sizeof *a);
    a->n = n;
    a->rules = tg_xcalloc(n ? n : 1, sizeof *a->rules);
    a->firing = tg_xcalloc(n ? n : 1, sizeof *a->firing);
    int64_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        a->rules[i] = rules[i];
        a->rules[i].name = tg_xstrdup(rules[i].name);
        if (rules[i].window_ms > longest)
            longest = rules[i].window_ms;
    }
    int64_t cap = longest / (interval_ms > 0 ? interval_ms : 1) + 2;
    a->cap = cap < RING_MIN ? RING_MIN : cap > RING_MAX ? RING_MAX : (size_t)cap;
    a->ring = tg_xcalloc(a->cap, sizeof *a->ring);
    return a;
}

void tg_alerts_free(tg_alerts_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->rules[i].name);
    free(a->rules);
    free(a->firing);
    free(a->ring);
    free(a);
}

bool tg_alerts_firing(const tg_alerts_t *a, size_t i)
{
    return i < a->n && a->firing[i];
}

double tg_alert_value(const tg_obs_alert_cfg_t *rule, const tg_metrics_totals_t *d, double window_s)
{
    double lookups = d->cache_hits + d->cache_misses;
    switch (rule->metric) {
    case TG_ALERT_ERROR_RATE: return d->requests > 0 ? d->errors / d->requests : NAN;
    case TG_ALERT_REQUEST_RATE: return window_s > 0 ? d->requests / window_s : NAN;
    case TG_ALERT_CACHE_HIT_RATE: return lookups > 0 ? d->cache_hits / lookups : NAN;
    case TG_ALERT_LATENCY_AVG: return d->requests > 0 ? d->duration_s / d->requests : NAN;
    case TG_ALERT_COST: return d->cost_usd;
    }
    return NAN;
}

static const snap_t *at(const tg_alerts_t *a, size_t i)
{
    return &a->ring[(a->head + i) % a->cap];
}

/* The snapshot that starts a window of window_ms ending at now_ms: the
 * newest at least that old, or the oldest kept. */
static const snap_t *window_start(const tg_alerts_t *a, int64_t now_ms, int64_t window_ms)
{
    const snap_t *s = at(a, 0);
    for (size_t i = 1; i < a->len; i++) {
        if (at(a, i)->t_ms > now_ms - window_ms)
            break;
        s = at(a, i);
    }
    return s;
}

void tg_alerts_tick(tg_alerts_t *a, int64_t now_ms, const tg_metrics_totals_t *t,
                    tg_alert_change_fn fn, void *arg)
{
    if (a->len == a->cap) {
        a->head = (a->head + 1) % a->cap;
        a->len--;
    }
    a->ring[(a->head + a->len) % a->cap] = (snap_t){now_ms, *t};
    a->len++;
    for (size_t i = 0; i < a->n; i++) {
        const tg_obs_alert_cfg_t *r = &a->rules[i];
        const snap_t *s = window_start(a, now_ms, r->window_ms);
        tg_metrics_totals_t d = {
            .requests = t->requests - s->tot.requests,
            .errors = t->errors - s->tot.errors,
            .duration_s = t->duration_s - s->tot.duration_s,
            .cost_usd = t->cost_usd - s->tot.cost_usd,
            .cache_hits = t->cache_hits - s->tot.cache_hits,
            .cache_misses = t->cache_misses - s->tot.cache_misses,
        };
        double v = tg_alert_value(r, &d, (double)r->window_ms / 1000.0);
        bool holds = !isnan(v) && (r->below ? v < r->threshold : v > r->threshold);
        if (holds != a->firing[i]) {
            a->firing[i] = holds;
            if (fn)
                fn(arg, i, r, holds, v);
        }
    }
}
