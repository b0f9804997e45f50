/*
 * metrics.c — see metrics.h. Each shard keeps its series in small open
 * lists (a gateway has few providers and models); lookups are linear with a
 * cached hash, which is cheap at these sizes and keeps the code short.
 *
 * Why shards: a request's end used to take one process-wide mutex, so every
 * worker met every other on it. Now a worker writes only its own shard;
 * its lock is contended only while a scrape reads that shard.
 *
 * The label-set cap holds over all shards: the first time a shard meets a
 * label set it asks the gateway-wide list of admitted label sets
 * (labels_mu, taken only then), which owns the label strings and numbers
 * each set (gid). Rendering sums the shards' series by gid and prints them
 * in gid order — the order in which the gateway first met them, as when
 * there was one list. Lock order: a shard's mu, then labels_mu; render
 * holds one shard's mu at a time and never labels_mu.
 *
 * Threads: see metrics.h.
 */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                2.5,   5,    10,    30,   60,  120,  300};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct {
    unsigned long long buckets[N_BOUNDS]; /* non-cumulative; summed when rendered */
    unsigned long long count;
    double sum;
} histogram_t;

/* The families; each names its labels in render. */
enum {
    F_REQUESTS,  /* provider, model, status */
    F_TOKENS,    /* provider, model, type */
    F_COST,      /* provider, model */
    F_UP_ERRORS, /* provider, kind */
    F_DURATION,  /* provider (histogram) */
    F_TTFT,      /* provider (histogram) */
    F_CACHE,     /* result */
    F_PAUSED,    /* reason */
    F_DROPPED,   /* reason */
    F_UNPRICED,  /* provider, model */
    N_FAMILIES
};

/* A label set admitted gateway-wide; owns its strings. */
typedef struct {
    char *l1, *l2, *l3;
    unsigned hash;
} labels_t;

typedef struct {
    labels_t *items;
    size_t n, cap;
} admitted_t;

/* One shard's series of one label set: the strings are the admitted set's. */
typedef struct {
    const char *l1, *l2, *l3;
    unsigned hash;
    size_t gid; /* index in the family's admitted list */
    double value;
    histogram_t *hist; /* for histogram families */
} series_t;

typedef struct {
    series_t *items;
    size_t n, cap;
} family_t;

struct tg_metrics_shard {
    pthread_mutex_t mu; /* its worker, and render */
    tg_metrics_t *m;
    family_t fam[N_FAMILIES];
    double rate_limited, budget_blocked[4]; /* by scope kind (blocked_scopes) */
    tg_metrics_totals_t totals;             /* the alerts' running totals */
};

static const char *const blocked_scopes[4] = {"global", "key", "user", "property"};

struct tg_metrics {
    int n_shards;
    tg_metrics_shard_t **shards; /* each its own allocation: no false sharing */
    pthread_mutex_t labels_mu;   /* admitted */
    admitted_t admitted[N_FAMILIES];
    pthread_mutex_t gauges_mu; /* the callbacks below */
    tg_metrics_store_t store;
    long (*conns_open)(void *);
    void *conns_arg;
    void (*extra)(void *arg, tg_buf_t *out);
    void *extra_arg;
    void (*shared)(void *arg, tg_buf_t *out); /* tollgate_redis_* */
    void *shared_arg;
    void (*otlp)(void *arg, tg_buf_t *out);
    void *otlp_arg;
    void (*budgets)(void *, tg_buf_t *);
    void *budgets_arg;
    _Atomic long budget_events[2]; /* warning, exceeded */
};

tg_metrics_t *tg_metrics_new(int shards)
{
    tg_metrics_t *m = tg_xcalloc(1, sizeof *m);
    m->n_shards = shards > 0 ? shards : 1;
    m->shards = tg_xcalloc((size_t)m->n_shards, sizeof *m->shards);
    for (int i = 0; i < m->n_shards; i++) {
        m->shards[i] = tg_xcalloc(1, sizeof *m->shards[i]);
        pthread_mutex_init(&m->shards[i]->mu, NULL);
        m->shards[i]->m = m;
    }
    pthread_mutex_init(&m->labels_mu, NULL);
    pthread_mutex_init(&m->gauges_mu, NULL);
    return m;
}

tg_metrics_shard_t *tg_metrics_shard(tg_metrics_t *m, int index)
{
    return m->shards[(unsigned)index % (unsigned)m->n_shards];
}

static unsigned hash3(const char *a, const char *b, const char *c)
{
    unsigned h = 2166136261u;
    for (const char *s = a; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    h = (h ^ 1) * 16777619u;
    for (const char *s = b; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    h = (h ^ 2) * 16777619u;
    for (const char *s = c; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool same(const char *x, const char *y)
{
    return (!x && !y) || (x && y && !strcmp(x, y));
}

static char *dup_or_null(const char *s)
{
    return s ? tg_xstrdup(s) : NULL;
}

/* Admit a label set new to a shard into the gateway-wide list, filling s's
 * strings and gid. False when the family is full and l2 must become
 * "other". Caller holds the shard's mu; this takes labels_mu. */
static bool admit(tg_metrics_t *m, int fam, const char *l1, const char *l2, const char *l3,
                  unsigned h, series_t *s, bool *added)
{
    admitted_t *a = &m->admitted[fam];
    pthread_mutex_lock(&m->labels_mu);
    size_t i = 0;
    while (i < a->n && !(a->items[i].hash == h && same(a->items[i].l1, l1) &&
                         same(a->items[i].l2, l2) && same(a->items[i].l3, l3)))
        i++;
    if (i == a->n) {
        if (a->n >= TG_METRICS_MAX_SERIES && l2 && strcmp(l2, "other") != 0) {
            pthread_mutex_unlock(&m->labels_mu);
            return false;
        }
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 16;
            a->items = tg_xrealloc(a->items, a->cap * sizeof *a->items);
        }
        a->items[a->n++] = (labels_t){dup_or_null(l1), dup_or_null(l2), dup_or_null(l3), h};
        if (added)
            *added = true;
    }
    s->l1 = a->items[i].l1;
    s->l2 = a->items[i].l2;
    s->l3 = a->items[i].l3;
    s->gid = i;
    pthread_mutex_unlock(&m->labels_mu);
    return true;
}

/* Caller holds sh->mu. l2 is replaced by "other" once the family is full.
 * *added (may be NULL) is set when the label set is new to the gateway. */
static series_t *series_at(tg_metrics_shard_t *sh, int fam, const char *l1, const char *l2,
                           const char *l3, bool hist, bool *added)
{
    family_t *f = &sh->fam[fam];
    unsigned h = hash3(l1, l2, l3);
    for (size_t i = 0; i < f->n; i++) {
        series_t *s = &f->items[i];
        if (s->hash == h && same(s->l1, l1) && same(s->l2, l2) && same(s->l3, l3))
            return s;
    }
    series_t s = {.hash = h};
    if (!admit(sh->m, fam, l1, l2, l3, h, &s, added))
        return series_at(sh, fam, l1, "other", l3, hist, NULL);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = tg_xrealloc(f->items, f->cap * sizeof *f->items);
    }
    if (hist)
        s.hist = tg_xcalloc(1, sizeof *s.hist);
    f->items[f->n] = s;
    return &f->items[f->n++];
}

static series_t *series(tg_metrics_shard_t *sh, int fam, const char *l1, const char *l2,
                        const char *l3, bool hist)
{
    return series_at(sh, fam, l1, l2, l3, hist, NULL);
}

static void observe(histogram_t *hg, double v)
{
    size_t i = 0;
    while (i < N_BOUNDS && v > bounds[i])
        i++;
    if (i < N_BOUNDS)
        hg->buckets[i]++;
    hg->count++;
    hg->sum += v;
}

void tg_metrics_request(tg_metrics_shard_t *sh, const char *provider, const char *model, int status,
                        double duration_s, double ttft_s, const tg_usage_t *u, double cost_usd)
{
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    provider = provider ? provider : "none";
    model = model ? model : "none";
    pthread_mutex_lock(&sh->mu);
    series(sh, F_REQUESTS, provider, model, st, false)->value += 1;
    observe(series(sh, F_DURATION, provider, NULL, NULL, true)->hist, duration_s);
    if (ttft_s >= 0)
        observe(series(sh, F_TTFT, provider, NULL, NULL, true)->hist, ttft_s);
    if (u) {
        const struct {
            const char *type;
            long v;
        } t[] = {{"prompt", u->prompt_tokens},
                 {"completion", u->completion_tokens},
                 {"cached", u->cached_tokens},
                 {"cache_write", u->cache_write_tokens},
                 {"reasoning", u->reasoning_tokens}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (t[i].v > 0)
                series(sh, F_TOKENS, provider, model, t[i].type, false)->value += (double)t[i].v;
    }
    if (cost_usd >= 0)
        series(sh, F_COST, provider, model, NULL, false)->value += cost_usd;
    sh->totals.requests += 1;
    sh->totals.errors += status >= 400;
    sh->totals.duration_s += duration_s;
    sh->totals.cost_usd += cost_usd >= 0 ? cost_usd : 0;
    pthread_mutex_unlock(&sh->mu);
}

bool tg_metrics_unpriced(tg_metrics_shard_t *sh, const char *provider, const char *model)
{
    bool added = false;
    pthread_mutex_lock(&sh->mu);
    series_at(sh, F_UNPRICED, provider ? provider : "none", model ? model : "none", NULL, false,
              &added)
        ->value += 1;
    pthread_mutex_unlock(&sh->mu);
    return added;
}

void tg_metrics_upstream_error(tg_metrics_shard_t *sh, const char *provider, const char *kind)
{
    pthread_mutex_lock(&sh->mu);
    series(sh, F_UP_ERRORS, provider ? provider : "none", NULL, kind, false)->value += 1;
    pthread_mutex_unlock(&sh->mu);
}

/* One more in a family with one label. */
static void count(tg_metrics_shard_t *sh, int fam, const char *label)
{
    pthread_mutex_lock(&sh->mu);
    series(sh, fam, label, NULL, NULL, false)->value += 1;
    pthread_mutex_unlock(&sh->mu);
}

void tg_metrics_cache(tg_metrics_shard_t *sh, const char *result)
{
    pthread_mutex_lock(&sh->mu);
    series(sh, F_CACHE, result, NULL, NULL, false)->value += 1;
    if (!strcmp(result, "hit"))
        sh->totals.cache_hits += 1;
    else if (!strcmp(result, "miss"))
        sh->totals.cache_misses += 1;
    pthread_mutex_unlock(&sh->mu);
}

void tg_metrics_accept_paused(tg_metrics_shard_t *sh, const char *reason)
{
    count(sh, F_PAUSED, reason);
}

void tg_metrics_connection_dropped(tg_metrics_shard_t *sh, const char *reason)
{
    count(sh, F_DROPPED, reason);
}

void tg_metrics_rate_limited(tg_metrics_shard_t *sh)
{
    pthread_mutex_lock(&sh->mu);
    sh->rate_limited += 1;
    pthread_mutex_unlock(&sh->mu);
}

void tg_metrics_budget_blocked(tg_metrics_shard_t *sh, const char *scope)
{
    int k = 3;
    for (int i = 0; i < 3; i++)
        if (scope && !strcmp(scope, blocked_scopes[i]))
            k = i;
    pthread_mutex_lock(&sh->mu);
    sh->budget_blocked[k] += 1;
    pthread_mutex_unlock(&sh->mu);
}

void tg_metrics_budget_event(tg_metrics_t *m, bool exceeded)
{
    atomic_fetch_add(&m->budget_events[exceeded ? 1 : 0], 1);
}

void tg_metrics_set_budgets(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->budgets = render;
    m->budgets_arg = arg;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_set_connections(tg_metrics_t *m, long (*open)(void *arg), void *arg)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->conns_open = open;
    m->conns_arg = arg;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_set_store(tg_metrics_t *m, const tg_metrics_store_t *s)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->store = *s;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_set_extra(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->extra = render;
    m->extra_arg = arg;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_set_shared(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->shared = render;
    m->shared_arg = arg;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_set_otlp(tg_metrics_t *m, void (*render)(void *arg, tg_buf_t *out), void *arg)
{
    pthread_mutex_lock(&m->gauges_mu);
    m->otlp = render;
    m->otlp_arg = arg;
    pthread_mutex_unlock(&m->gauges_mu);
}

void tg_metrics_totals(tg_metrics_t *m, tg_metrics_totals_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < m->n_shards; i++) {
        tg_metrics_shard_t *sh = m->shards[i];
        pthread_mutex_lock(&sh->mu);
        out->requests += sh->totals.requests;
        out->errors += sh->totals.errors;
        out->duration_s += sh->totals.duration_s;
        out->cost_usd += sh->totals.cost_usd;
        out->cache_hits += sh->totals.cache_hits;
        out->cache_misses += sh->totals.cache_misses;
        pthread_mutex_unlock(&sh->mu);
    }
}

/* ---- rendering: the shards summed ---- */

/* One admitted label set's total over the shards. */
typedef struct {
    const char *l1, *l2, *l3;
    bool seen; /* some shard has it (an admitted set may not be in one yet) */
    double value;
    histogram_t hist;
} total_t;

typedef struct {
    total_t *items;
    size_t n; /* highest gid seen + 1 */
} totals_t;

static void add_family(totals_t *t, const family_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const series_t *s = &f->items[i];
        if (s->gid >= t->n) {
            size_t n = s->gid + 1;
            t->items = tg_xrealloc(t->items, n * sizeof *t->items);
            memset(t->items + t->n, 0, (n - t->n) * sizeof *t->items);
            t->n = n;
        }
        total_t *o = &t->items[s->gid];
        o->l1 = s->l1;
        o->l2 = s->l2;
        o->l3 = s->l3;
        o->seen = true;
        o->value += s->value;
        if (s->hist) {
            for (size_t b = 0; b < N_BOUNDS; b++)
                o->hist.buckets[b] += s->hist->buckets[b];
            o->hist.count += s->hist->count;
            o->hist.sum += s->hist->sum;
        }
    }
}

/* Label values escaped per the exposition format: \\, \", \n. */
static void label(tg_buf_t *out, const char *name, const char *v, bool first)
{
    tg_buf_printf(out, "%s%s=\"", first ? "" : ",", name);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            tg_buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            tg_buf_puts(out, "\\n");
        else
            tg_buf_append(out, p, 1);
    }
    tg_buf_puts(out, "\"");
}

static void head(tg_buf_t *out, const char *name, const char *type, const char *help)
{
    tg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_family(tg_buf_t *out, const char *name, const totals_t *f, const char *n1,
                          const char *n2, const char *n3)
{
    for (size_t i = 0; i < f->n; i++) {
        const total_t *s = &f->items[i];
        if (!s->seen)
            continue;
        tg_buf_printf(out, "%s{", name);
        label(out, n1, s->l1, true);
        if (n2)
            label(out, n2, s->l2, false);
        if (n3)
            label(out, n3, s->l3, false);
        tg_buf_printf(out, "} %.10g\n", s->value);
    }
}

static void render_hist(tg_buf_t *out, const char *name, const totals_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const total_t *s = &f->items[i];
        if (!s->seen)
            continue;
        unsigned long long cum = 0;
        for (size_t b = 0; b < N_BOUNDS; b++) {
            cum += s->hist.buckets[b];
            tg_buf_printf(out, "%s_bucket{", name);
            label(out, "provider", s->l1, true);
            tg_buf_printf(out, ",le=\"%g\"} %llu\n", bounds[b], cum);
        }
        tg_buf_printf(out, "%s_bucket{", name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, ",le=\"+Inf\"} %llu\n", s->hist.count);
        tg_buf_printf(out, "%s_sum{", name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, "} %.9g\n%s_count{", s->hist.sum, name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, "} %llu\n", s->hist.count);
    }
}

void tg_metrics_render(tg_metrics_t *m, tg_buf_t *out)
{
    totals_t t[N_FAMILIES] = {{0}};
    double rate_limited = 0, budget_blocked[4] = {0};
    for (int i = 0; i < m->n_shards; i++) {
        tg_metrics_shard_t *sh = m->shards[i];
        pthread_mutex_lock(&sh->mu);
        for (int f = 0; f < N_FAMILIES; f++)
            add_family(&t[f], &sh->fam[f]);
        rate_limited += sh->rate_limited;
        for (int k = 0; k < 4; k++)
            budget_blocked[k] += sh->budget_blocked[k];
        pthread_mutex_unlock(&sh->mu);
    }
    pthread_mutex_lock(&m->gauges_mu);
    tg_metrics_store_t store = m->store;
    long (*conns_open)(void *) = m->conns_open;
    void *conns_arg = m->conns_arg;
    void (*extra)(void *, tg_buf_t *) = m->extra;
    void *extra_arg = m->extra_arg;
    void (*shared)(void *, tg_buf_t *) = m->shared;
    void *shared_arg = m->shared_arg;
    void (*otlp)(void *, tg_buf_t *) = m->otlp;
    void *otlp_arg = m->otlp_arg;
    void (*budgets)(void *, tg_buf_t *) = m->budgets;
    void *budgets_arg = m->budgets_arg;
    pthread_mutex_unlock(&m->gauges_mu);
    head(out, "tollgate_requests_total", "counter", "Requests by provider, model and status.");
    render_family(out, "tollgate_requests_total", &t[F_REQUESTS], "provider", "model", "status");
    head(out, "tollgate_request_duration_seconds", "histogram",
         "Time from the request to the end of the answer.");
    render_hist(out, "tollgate_request_duration_seconds", &t[F_DURATION]);
    head(out, "tollgate_time_to_first_token_seconds", "histogram",
         "Time from the request to the first byte of the provider's answer.");
    render_hist(out, "tollgate_time_to_first_token_seconds", &t[F_TTFT]);
    head(out, "tollgate_tokens_total", "counter",
         "Tokens by provider, model and type (prompt, completion, cached, cache_write, "
         "reasoning).");
    render_family(out, "tollgate_tokens_total", &t[F_TOKENS], "provider", "model", "type");
    head(out, "tollgate_cost_usd_total", "counter", "Cost in USD of priced requests.");
    render_family(out, "tollgate_cost_usd_total", &t[F_COST], "provider", "model", NULL);
    head(out, "tollgate_unpriced_requests_total", "counter",
         "Answered requests whose model has no price (recorded with cost null).");
    render_family(out, "tollgate_unpriced_requests_total", &t[F_UNPRICED], "provider", "model",
                  NULL);
    head(out, "tollgate_cache_total", "counter", "Cache look-ups by result.");
    render_family(out, "tollgate_cache_total", &t[F_CACHE], "result", NULL, NULL);
    head(out, "tollgate_rate_limited_total", "counter", "Requests refused by a rate limit.");
    tg_buf_printf(out, "tollgate_rate_limited_total %.10g\n", rate_limited);
    head(out, "tollgate_budget_blocked_total", "counter",
         "Requests refused by a budget, by scope.");
    for (int k = 0; k < 4; k++)
        tg_buf_printf(out, "tollgate_budget_blocked_total{scope=\"%s\"} %.10g\n", blocked_scopes[k],
                      budget_blocked[k]);
    head(out, "tollgate_budget_events_total", "counter",
         "Budget events: a warning threshold crossed, a limit reached (once per budget and "
         "period).");
    tg_buf_printf(out, "tollgate_budget_events_total{type=\"warning\"} %ld\n",
                  atomic_load(&m->budget_events[0]));
    tg_buf_printf(out, "tollgate_budget_events_total{type=\"exceeded\"} %ld\n",
                  atomic_load(&m->budget_events[1]));
    head(out, "tollgate_budget_spend_usd", "gauge",
         "Spend this period of each budget with a limit (scope, value, period).");
    if (budgets)
        budgets(budgets_arg, out);
    head(out, "tollgate_upstream_errors_total", "counter",
         "Failed provider calls by provider and kind.");
    render_family(out, "tollgate_upstream_errors_total", &t[F_UP_ERRORS], "provider", NULL, "kind");
    head(out, "tollgate_connections_open", "gauge", "Client connections open now.");
    tg_buf_printf(out, "tollgate_connections_open %ld\n", conns_open ? conns_open(conns_arg) : 0);
    head(out, "tollgate_accept_paused_total", "counter",
         "Times a worker stopped accepting connections for a while, by reason.");
    render_family(out, "tollgate_accept_paused_total", &t[F_PAUSED], "reason", NULL, NULL);
    head(out, "tollgate_connections_dropped_total", "counter",
         "Client connections the server closed to protect itself, by reason.");
    render_family(out, "tollgate_connections_dropped_total", &t[F_DROPPED], "reason", NULL, NULL);
    head(out, "tollgate_log_queue_depth", "gauge", "Request records waiting to be stored.");
    tg_buf_printf(out, "tollgate_log_queue_depth %ld\n",
                  store.queue_depth ? store.queue_depth(store.arg) : 0);
    head(out, "tollgate_log_records_dropped_total", "counter",
         "Request records that could not be stored or spooled.");
    tg_buf_printf(out, "tollgate_log_records_dropped_total %ld\n",
                  store.dropped ? store.dropped(store.arg) : 0);
    if (shared)
        shared(shared_arg, out);
    if (extra)
        extra(extra_arg, out);
    if (otlp)
        otlp(otlp_arg, out);
    for (int f = 0; f < N_FAMILIES; f++)
        free(t[f].items);
}

static void free_shard_series(tg_metrics_shard_t *sh)
{
    for (int f = 0; f < N_FAMILIES; f++) {
        for (size_t i = 0; i < sh->fam[f].n; i++)
            free(sh->fam[f].items[i].hist);
        free(sh->fam[f].items);
        memset(&sh->fam[f], 0, sizeof sh->fam[f]);
    }
    sh->rate_limited = 0;
    memset(sh->budget_blocked, 0, sizeof sh->budget_blocked);
    memset(&sh->totals, 0, sizeof sh->totals);
}

static void free_admitted(tg_metrics_t *m)
{
    for (int f = 0; f < N_FAMILIES; f++) {
        admitted_t *a = &m->admitted[f];
        for (size_t i = 0; i < a->n; i++) {
            free(a->items[i].l1);
            free(a->items[i].l2);
            free(a->items[i].l3);
        }
        free(a->items);
        memset(a, 0, sizeof *a);
    }
}

void tg_metrics_reset(tg_metrics_t *m)
{
    for (int i = 0; i < m->n_shards; i++) {
        pthread_mutex_lock(&m->shards[i]->mu);
        free_shard_series(m->shards[i]);
        pthread_mutex_unlock(&m->shards[i]->mu);
    }
    pthread_mutex_lock(&m->labels_mu);
    free_admitted(m);
    pthread_mutex_unlock(&m->labels_mu);
}

void tg_metrics_free(tg_metrics_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_shards; i++) {
        free_shard_series(m->shards[i]);
        pthread_mutex_destroy(&m->shards[i]->mu);
        free(m->shards[i]);
    }
    free(m->shards);
    free_admitted(m);
    pthread_mutex_destroy(&m->labels_mu);
    pthread_mutex_destroy(&m->gauges_mu);
    free(m);
}
