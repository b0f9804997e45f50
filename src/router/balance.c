/*
 * balance.c — see balance.h.
 *
 * Error ratio: decayed counts of good and bad outcomes (half-life 10 s).
 * With about five recent outcomes (weight 4.5) and more than half of it bad, the
 * provider is ejected. Latency: an exponentially weighted moving average of
 * time to first byte (weight 0.2 for the newest sample). The `latency`
 * strategy is "power of two choices": two random candidates, the faster
 * wins, so load spreads without herding on one provider. The `cost`
 * strategy narrows the usable candidates to the cheapest (prices come from
 * the caller, so this file knows nothing of price tables) and picks among
 * equals by weight; an unpriced candidate never beats a priced one.
 */
#include "router/balance.h"

#include "core/util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HALF_LIFE_MS     10000.0
#define MIN_WEIGHT       4.5 /* about five recent outcomes: decay makes five quick ones weigh ~4.98 */
#define MAX_BAD_RATIO    0.5
#define PROBE_TIMEOUT_MS 60000

struct tg_health {
    char *name;
    pthread_mutex_t mu;
    double good, bad;
    int64_t decayed_at_ms;
    int64_t ewma_us;
    int64_t rest_until_ms;
    int64_t ejected_until_ms;
    int64_t probe_since_ms; /* 0 when no probe is out */
};

/* A gateway's provider health records. Records are never freed before the
 * registry, so a pointer from tg_health_for stays valid without the lock. */
struct tg_health_registry {
    pthread_mutex_t mu; /* items, n */
    tg_health_t **items;
    size_t n;
    atomic_ulong rr_counter; /* round_robin's turn */
};

tg_health_registry_t *tg_health_registry_new(void)
{
    tg_health_registry_t *r = tg_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->rr_counter, 0);
    return r;
}

void tg_health_registry_free(tg_health_registry_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        pthread_mutex_destroy(&r->items[i]->mu);
        free(r->items[i]->name);
        free(r->items[i]);
    }
    free(r->items);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

tg_health_t *tg_health_for(tg_health_registry_t *r, const char *provider)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (!strcasecmp(r->items[i]->name, provider)) {
            tg_health_t *found = r->items[i]; /* r->items may move once the lock is gone */
            pthread_mutex_unlock(&r->mu);
            return found;
        }
    tg_health_t *h = tg_xcalloc(1, sizeof *h);
    h->name = tg_xstrdup(provider);
    pthread_mutex_init(&h->mu, NULL);
    r->items = tg_xrealloc(r->items, (r->n + 1) * sizeof *r->items);
    r->items[r->n++] = h;
    pthread_mutex_unlock(&r->mu);
    return h;
}

const char *tg_health_name(const tg_health_t *h)
{
    return h->name;
}

static void decay(tg_health_t *h, int64_t now_ms)
{
    if (h->decayed_at_ms && now_ms > h->decayed_at_ms) {
        double f = pow(0.5, (double)(now_ms - h->decayed_at_ms) / HALF_LIFE_MS);
        h->good *= f;
        h->bad *= f;
    }
    h->decayed_at_ms = now_ms;
}

void tg_health_report(tg_health_t *h, tg_outcome_t o, int64_t latency_us, int64_t retry_after_ms,
                      int64_t ejection_ms, int64_t now_ms)
{
    pthread_mutex_lock(&h->mu);
    decay(h, now_ms);
    bool was_probe = h->probe_since_ms != 0;
    h->probe_since_ms = 0;
    if (latency_us > 0)
        h->ewma_us = h->ewma_us ? (h->ewma_us * 4 + latency_us) / 5 : latency_us;
    switch (o) {
    case TG_OUTCOME_OK:
        h->good += 1;
        if (was_probe) { /* back in service with a clean slate */
            h->good = 1;
            h->bad = 0;
        }
        break;
    case TG_OUTCOME_RATE_LIMITED:
        /* a 429 is the provider asking for rest, not a fault */
        h->rest_until_ms = now_ms + (retry_after_ms > 0 ? retry_after_ms : 1000);
        break;
    case TG_OUTCOME_FAILED:
        h->bad += 1;
        if (was_probe ||
            (h->good + h->bad >= MIN_WEIGHT && h->bad / (h->good + h->bad) > MAX_BAD_RATIO)) {
            h->ejected_until_ms = now_ms + ejection_ms;
            h->good = h->bad = 0;
        }
        break;
    }
    pthread_mutex_unlock(&h->mu);
}

/* Caller holds h->mu. */
static bool usable_locked(const tg_health_t *h, int64_t now_ms)
{
    if (now_ms < h->rest_until_ms || now_ms < h->ejected_until_ms)
        return false;
    /* after an ejection, or while a probe is out: one request at a time */
    return !h->probe_since_ms || now_ms - h->probe_since_ms > PROBE_TIMEOUT_MS;
}

bool tg_health_usable(tg_health_t *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->mu);
    bool ok = usable_locked(h, now_ms);
    pthread_mutex_unlock(&h->mu);
    return ok;
}

void tg_health_claim(tg_health_t *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->mu);
    if (h->ejected_until_ms && usable_locked(h, now_ms)) {
        h->probe_since_ms = now_ms; /* this request is the probe */
        h->ejected_until_ms = 0;
    }
    pthread_mutex_unlock(&h->mu);
}

int64_t tg_health_latency_us(tg_health_t *h)
{
    pthread_mutex_lock(&h->mu);
    int64_t v = h->ewma_us;
    pthread_mutex_unlock(&h->mu);
    return v;
}

bool tg_health_ejected(tg_health_t *h, int64_t now_ms)
{
    pthread_mutex_lock(&h->mu);
    bool e = now_ms < h->ejected_until_ms;
    pthread_mutex_unlock(&h->mu);
    return e;
}

static size_t pick_weighted(const tg_provider_cfg_t *const *c, const size_t *idx, size_t m,
                            uint64_t rnd)
{
    double total = 0;
    for (size_t i = 0; i < m; i++)
        total += c[idx[i]]->weight > 0 ? c[idx[i]]->weight : 1;
    double r = (double)(rnd >> 11) / 9007199254740992.0 * total; /* 53 bits in [0, total) */
    for (size_t i = 0; i < m; i++) {
        double w = c[idx[i]]->weight > 0 ? c[idx[i]]->weight : 1;
        if (r < w)
            return idx[i];
        r -= w;
    }
    return idx[m - 1];
}

/* Keep in idx[0..m) the candidates at the lowest price; returns how many.
 * Nothing priced: they all tie. */
static size_t keep_cheapest(const int64_t *prices, size_t *idx, size_t m)
{
    int64_t best = -1;
    for (size_t i = 0; i < m; i++)
        if (prices[idx[i]] >= 0 && (best < 0 || prices[idx[i]] < best))
            best = prices[idx[i]];
    if (best < 0)
        return m;
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (prices[idx[i]] == best)
            idx[k++] = idx[i];
    return k;
}

static size_t pick(tg_health_registry_t *r, tg_lb_strategy_t strategy,
                   const tg_provider_cfg_t *const *cands, const int64_t *prices, size_t n,
                   uint64_t rnd, int64_t now_ms)
{
    if (n <= 1)
        return 0;
    size_t idx[64], m = 0;
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++)
        if (tg_health_usable(tg_health_for(r, cands[i]->name), now_ms))
            idx[m++] = i;
    if (m == 0) { /* all resting or ejected: better some provider than none */
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        m = n;
    }
    if (m == 1)
        return idx[0];
    switch (strategy) {
    case TG_LB_ROUND_ROBIN: return idx[atomic_fetch_add(&r->rr_counter, 1) % m];
    case TG_LB_LATENCY: {
        size_t i = rnd % m, j = (rnd >> 32) % (m - 1);
        if (j >= i)
            j++; /* two distinct candidates */
        size_t a = idx[i], b = idx[j];
        int64_t la = tg_health_latency_us(tg_health_for(r, cands[a]->name));
        int64_t lb = tg_health_latency_us(tg_health_for(r, cands[b]->name));
        /* unknown latency (0) wins, so every provider gets measured */
        return la <= lb ? a : b;
    }
    case TG_LB_COST:
        if (prices)
            m = keep_cheapest(prices, idx, m);
        return pick_weighted(cands, idx, m, rnd);
    case TG_LB_WEIGHTED:
    default: return pick_weighted(cands, idx, m, rnd);
    }
}

size_t tg_balance_pick(tg_health_registry_t *r, tg_lb_strategy_t strategy,
                       const tg_provider_cfg_t *const *cands, const int64_t *prices, size_t n,
                       uint64_t rnd, int64_t now_ms)
{
    size_t k = pick(r, strategy, cands, prices, n, rnd, now_ms);
    if (n)
        tg_health_claim(tg_health_for(r, cands[k]->name), now_ms);
    return k;
}
