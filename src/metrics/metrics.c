/*
 * metrics.c — see metrics.h. Series live in small open lists (a gateway has
 * few providers and models); lookups are linear with a cached hash, which is
 * cheap at these sizes and keeps the code short.
 */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                2.5,   5,    10,    30,    60,  120, 300};
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct {
    unsigned long long buckets[N_BOUNDS]; /* non-cumulative; summed when rendered */
    unsigned long long count;
    double sum;
} histogram_t;

typedef struct {
    char *l1, *l2, *l3; /* label values, as the family defines them */
    unsigned hash;
    double value;
    histogram_t *hist; /* for histogram families */
} series_t;

typedef struct {
    series_t *items;
    size_t n, cap;
} family_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static family_t requests;    /* provider, model, status */
static family_t tokens;      /* provider, model, type */
static family_t cost;        /* provider, model */
static family_t up_errors;   /* provider, kind */
static family_t duration;    /* provider (histogram) */
static family_t ttft;        /* provider (histogram) */
static family_t cache;       /* result */
static family_t paused;      /* reason */
static family_t dropped;     /* reason */
static double rate_limited, budget_blocked;
static tg_metrics_store_t store;
static long (*conns_open)(void *);
static void *conns_arg;

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

/* Caller holds mu. l2 is replaced by "other" once the family is full. */
static series_t *series(family_t *f, const char *l1, const char *l2, const char *l3, bool hist)
{
    unsigned h = hash3(l1, l2, l3);
    for (size_t i = 0; i < f->n; i++) {
        series_t *s = &f->items[i];
        if (s->hash == h && same(s->l1, l1) && same(s->l2, l2) && same(s->l3, l3))
            return s;
    }
    if (f->n >= TG_METRICS_MAX_SERIES && l2 && strcmp(l2, "other") != 0)
        return series(f, l1, "other", l3, hist);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->items = tg_xrealloc(f->items, f->cap * sizeof *f->items);
    }
    series_t *s = &f->items[f->n++];
    memset(s, 0, sizeof *s);
    s->l1 = l1 ? tg_xstrdup(l1) : NULL;
    s->l2 = l2 ? tg_xstrdup(l2) : NULL;
    s->l3 = l3 ? tg_xstrdup(l3) : NULL;
    s->hash = h;
    if (hist)
        s->hist = tg_xcalloc(1, sizeof *s->hist);
    return s;
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

void tg_metrics_request(const char *provider, const char *model, int status, double duration_s,
                        double ttft_s, const tg_usage_t *u, double cost_usd)
{
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    provider = provider ? provider : "none";
    model = model ? model : "none";
    pthread_mutex_lock(&mu);
    series(&requests, provider, model, st, false)->value += 1;
    observe(series(&duration, provider, NULL, NULL, true)->hist, duration_s);
    if (ttft_s >= 0)
        observe(series(&ttft, provider, NULL, NULL, true)->hist, ttft_s);
    if (u) {
        const struct {
            const char *type;
            long v;
        } t[] = {{"prompt", u->prompt_tokens},          {"completion", u->completion_tokens},
                 {"cached", u->cached_tokens},          {"cache_write", u->cache_write_tokens},
                 {"reasoning", u->reasoning_tokens}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (t[i].v > 0)
                series(&tokens, provider, model, t[i].type, false)->value += (double)t[i].v;
    }
    if (cost_usd >= 0)
        series(&cost, provider, model, NULL, false)->value += cost_usd;
    pthread_mutex_unlock(&mu);
}

void tg_metrics_upstream_error(const char *provider, const char *kind)
{
    pthread_mutex_lock(&mu);
    series(&up_errors, provider ? provider : "none", NULL, kind, false)->value += 1;
    pthread_mutex_unlock(&mu);
}

/* One more in a family with one label. */
static void count(family_t *f, const char *label)
{
    pthread_mutex_lock(&mu);
    series(f, label, NULL, NULL, false)->value += 1;
    pthread_mutex_unlock(&mu);
}

void tg_metrics_cache(const char *result) { count(&cache, result); }
void tg_metrics_accept_paused(const char *reason) { count(&paused, reason); }
void tg_metrics_connection_dropped(const char *reason) { count(&dropped, reason); }

void tg_metrics_set_connections(long (*open)(void *arg), void *arg)
{
    pthread_mutex_lock(&mu);
    conns_open = open;
    conns_arg = arg;
    pthread_mutex_unlock(&mu);
}

void tg_metrics_rate_limited(void)
{
    pthread_mutex_lock(&mu);
    rate_limited += 1;
    pthread_mutex_unlock(&mu);
}

void tg_metrics_budget_blocked(void)
{
    pthread_mutex_lock(&mu);
    budget_blocked += 1;
    pthread_mutex_unlock(&mu);
}

void tg_metrics_set_store(const tg_metrics_store_t *s)
{
    pthread_mutex_lock(&mu);
    store = *s;
    pthread_mutex_unlock(&mu);
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

static void render_family(tg_buf_t *out, const char *name, const family_t *f, const char *n1,
                          const char *n2, const char *n3)
{
    for (size_t i = 0; i < f->n; i++) {
        const series_t *s = &f->items[i];
        tg_buf_printf(out, "%s{", name);
        label(out, n1, s->l1, true);
        if (n2)
            label(out, n2, s->l2, false);
        if (n3)
            label(out, n3, s->l3, false);
        tg_buf_printf(out, "} %.10g\n", s->value);
    }
}

static void render_hist(tg_buf_t *out, const char *name, const family_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const series_t *s = &f->items[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b < N_BOUNDS; b++) {
            cum += s->hist->buckets[b];
            tg_buf_printf(out, "%s_bucket{", name);
            label(out, "provider", s->l1, true);
            tg_buf_printf(out, ",le=\"%g\"} %llu\n", bounds[b], cum);
        }
        tg_buf_printf(out, "%s_bucket{", name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, ",le=\"+Inf\"} %llu\n", s->hist->count);
        tg_buf_printf(out, "%s_sum{", name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, "} %.9g\n%s_count{", s->hist->sum, name);
        label(out, "provider", s->l1, true);
        tg_buf_printf(out, "} %llu\n", s->hist->count);
    }
}

void tg_metrics_render(tg_buf_t *out)
{
    pthread_mutex_lock(&mu);
    head(out, "tollgate_requests_total", "counter", "Requests by provider, model and status.");
    render_family(out, "tollgate_requests_total", &requests, "provider", "model", "status");
    head(out, "tollgate_request_duration_seconds", "histogram",
         "Time from the request to the end of the answer.");
    render_hist(out, "tollgate_request_duration_seconds", &duration);
    head(out, "tollgate_time_to_first_token_seconds", "histogram",
         "Time from the request to the first byte of the provider's answer.");
    render_hist(out, "tollgate_time_to_first_token_seconds", &ttft);
    head(out, "tollgate_tokens_total", "counter",
         "Tokens by provider, model and type (prompt, completion, cached, cache_write, "
         "reasoning).");
    render_family(out, "tollgate_tokens_total", &tokens, "provider", "model", "type");
    head(out, "tollgate_cost_usd_total", "counter", "Cost in USD of priced requests.");
    render_family(out, "tollgate_cost_usd_total", &cost, "provider", "model", NULL);
    head(out, "tollgate_cache_total", "counter", "Cache look-ups by result.");
    render_family(out, "tollgate_cache_total", &cache, "result", NULL, NULL);
    head(out, "tollgate_rate_limited_total", "counter", "Requests refused by a rate limit.");
    tg_buf_printf(out, "tollgate_rate_limited_total %.10g\n", rate_limited);
    head(out, "tollgate_budget_blocked_total", "counter", "Requests refused by a budget.");
    tg_buf_printf(out, "tollgate_budget_blocked_total %.10g\n", budget_blocked);
    head(out, "tollgate_upstream_errors_total", "counter",
         "Failed provider calls by provider and kind.");
    render_family(out, "tollgate_upstream_errors_total", &up_errors, "provider", NULL, "kind");
    head(out, "tollgate_connections_open", "gauge", "Client connections open now.");
    tg_buf_printf(out, "tollgate_connections_open %ld\n", conns_open ? conns_open(conns_arg) : 0);
    head(out, "tollgate_accept_paused_total", "counter",
         "Times a worker stopped accepting connections for a while, by reason.");
    render_family(out, "tollgate_accept_paused_total", &paused, "reason", NULL, NULL);
    head(out, "tollgate_connections_dropped_total", "counter",
         "Client connections the server closed to protect itself, by reason.");
    render_family(out, "tollgate_connections_dropped_total", &dropped, "reason", NULL, NULL);
    head(out, "tollgate_log_queue_depth", "gauge", "Request records waiting to be stored.");
    tg_buf_printf(out, "tollgate_log_queue_depth %ld\n", store.queue_depth ? store.queue_depth() : 0);
    head(out, "tollgate_log_records_dropped_total", "counter",
         "Request records that could not be stored or spooled.");
    tg_buf_printf(out, "tollgate_log_records_dropped_total %ld\n", store.dropped ? store.dropped() : 0);
    pthread_mutex_unlock(&mu);
}

static void free_family(family_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].l1);
        free(f->items[i].l2);
        free(f->items[i].l3);
        free(f->items[i].hist);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

void tg_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    free_family(&requests);
    free_family(&tokens);
    free_family(&cost);
    free_family(&up_errors);
    free_family(&duration);
    free_family(&ttft);
    free_family(&cache);
    free_family(&paused);
    free_family(&dropped);
    rate_limited = budget_blocked = 0;
    pthread_mutex_unlock(&mu);
}
