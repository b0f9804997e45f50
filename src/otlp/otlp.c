/*
 * otlp.c — see otlp.h: the span queue, the exporter thread and its series
 * for /metrics. The encoding is otlp_json.c.
 *
 * Why a mutex and a condition variable: a worker holds the mutex for a
 * pointer copy, and wakes the exporter only when a batch is full; the
 * exporter otherwise wakes once a second and sends what came. A queued
 * span is one allocation (the struct, its properties and its strings
 * together), made by the worker from the record's fields: one malloc on
 * the request path, the JSON written on the exporter's thread.
 *
 * Why libcurl easy on its own thread: the exporter has one collector and
 * one batch at a time; a blocking POST with connect and total timeouts is
 * the whole transfer logic, and the handle keeps its connection alive
 * between batches. Waits between retries are on the condition variable,
 * and a transfer under way is cut by its progress callback, so a stop
 * never waits for a backoff or a slow collector: what is left gets one
 * short last try.
 *
 * Threads: workers submit; the exporter thread sends; /metrics reads the
 * atomic counts; tg_otlp_new and tg_otlp_free on main.
 */
#include "otlp/otlp.h"

#include "core/log.h"
#include "core/urlpath.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ATTEMPTS   4    /* tries of one batch before it is dropped */
#define BACKOFF_MS 250  /* the first wait between tries; doubled each time */
#define MAX_STRING 4096 /* longest string attribute kept (cut on a UTF-8 boundary) */
#define MAX_PROPS  64   /* properties per span */

struct tg_otlp {
    char *url;   /* {endpoint}/v1/traces */
    char *shown; /* the URL for logs: no user info, no query */
    char *service_name;
    struct curl_slist *headers;
    long timeout_ms;
    tg_metrics_t *metrics;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    tg_otlp_span_t **q; /* TG_OTLP_QUEUE */
    size_t q_len;
    bool stop;
    atomic_bool stopping; /* stop, for the transfer's progress callback */
    pthread_t thread;

    atomic_llong exported, dropped;
    atomic_llong failed_batches; /* for the log's "now and then" */
};

/* ---- the queued copy ---- */

/* How many bytes of s to keep: at most MAX_STRING, not cutting a UTF-8
 * sequence. */
static size_t kept_len(const char *s)
{
    size_t n = strnlen(s, MAX_STRING + 1);
    if (n <= MAX_STRING)
        return n;
    n = MAX_STRING;
    while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The span's string fields, for the copy. */
#define SPAN_STRINGS(X)                                                                            \
    X(operation)                                                                                   \
    X(provider_name)                                                                               \
    X(request_model)                                                                               \
    X(response_model)                                                                              \
    X(response_id)                                                                                 \
    X(server_address)                                                                              \
    X(error)                                                                                       \
    X(provider)                                                                                    \
    X(model_requested)                                                                             \
    X(route)                                                                                       \
    X(request_id)                                                                                  \
    X(user_id)                                                                                     \
    X(session_id)                                                                                  \
    X(key_name)                                                                                    \
    X(cache)

static const char *copy_str(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = kept_len(s);
    char *d = *p;
    memcpy(d, s, n);
    d[n] = 0;
    *p += n + 1;
    return d;
}

/* One allocation: the struct, then the properties, then the strings. */
static tg_otlp_span_t *span_copy(const tg_otlp_span_t *v)
{
    size_t np = v->n_props < MAX_PROPS ? v->n_props : MAX_PROPS;
    size_t bytes = sizeof *v + np * sizeof *v->props;
#define SIZE(f) bytes += v->f ? kept_len(v->f) + 1 : 0;
    SPAN_STRINGS(SIZE)
#undef SIZE
    for (size_t i = 0; i < np; i++)
        bytes += kept_len(v->props[i].name) + 1 +
                 (v->props[i].value ? kept_len(v->props[i].value) + 1 : 0);
    tg_otlp_span_t *s = tg_xmalloc(bytes);
    *s = *v;
    tg_otlp_prop_t *props = (tg_otlp_prop_t *)(s + 1);
    char *p = (char *)(props + np);
#define COPY(f) s->f = copy_str(&p, v->f);
    SPAN_STRINGS(COPY)
#undef COPY
    for (size_t i = 0; i < np; i++) {
        props[i].name = copy_str(&p, v->props[i].name);
        props[i].value = copy_str(&p, v->props[i].value);
    }
    s->props = props;
    s->n_props = np;
    return s;
}

static void random_bytes(uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = tg_random_u64();
            memcpy(out + i, &r, n - i < 8 ? n - i : 8);
        }
    } while (!memcmp(out, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", n)); /* never all zero */
}

void tg_otlp_new_span(tg_otlp_ctx_t *ctx, uint8_t span_id[8])
{
    static const uint8_t zero[16];
    random_bytes(span_id, 8);
    if (!memcmp(ctx->trace_id, zero, 16)) {
        random_bytes(ctx->trace_id, 16);
        ctx->has_parent = false;
        ctx->flags = 1;
    }
}

static void dropped(tg_otlp_t *o, long long n, const char *why)
{
    long long before = atomic_fetch_add(&o->dropped, n);
    /* one line for the first drop and every 1000th or so */
    if (before == 0 || before / 1000 != (before + n) / 1000)
        tg_warn("otlp: %lld span(s) dropped: %s (%lld dropped so far)", n, why, before + n);
}

void tg_otlp_submit(tg_otlp_t *o, const tg_otlp_span_t *view)
{
    if (!o)
        return;
    tg_otlp_span_t *s = span_copy(view);
    static const uint8_t zero[16];
    if (!memcmp(s->span_id, zero, 8) || !memcmp(s->ctx.trace_id, zero, 16)) {
        uint8_t id[8];
        tg_otlp_new_span(&s->ctx, id);
        if (!memcmp(s->span_id, zero, 8))
            memcpy(s->span_id, id, 8);
    }
    pthread_mutex_lock(&o->mu);
    bool ok = !o->stop && o->q_len < TG_OTLP_QUEUE;
    if (ok)
        o->q[o->q_len++] = s;
    bool wake = ok && o->q_len == TG_OTLP_BATCH;
    pthread_mutex_unlock(&o->mu);
    if (!ok) {
        free(s);
        dropped(o, 1, "the queue is full");
        return;
    }
    if (wake)
        pthread_cond_signal(&o->cv);
}

/* ---- the exporter ---- */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n; /* the collector's answer is not read, only its status */
}

/* A transfer that is not the last try stops when the gateway does. */
static int progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    tg_otlp_t *o = arg;
    return atomic_load(&o->stopping) ? 1 : 0;
}

/* One POST. Returns 0 (exported), 1 (failed, may be retried), -1 (failed
 * for good: the collector refused the batch). */
static int post(tg_otlp_t *o, CURL *e, const tg_buf_t *body, long timeout_ms, bool last, char *why,
                size_t whylen)
{
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, last ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return 0;
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", err[0] ? err : curl_easy_strerror(rc));
        return 1;
    }
    snprintf(why, whylen, "status %ld", status);
    /* OTLP/HTTP: 429, 502, 503 and 504 are worth another try; the rest not */
    return status == 429 || status == 502 || status == 503 || status == 504 ? 1 : -1;
}

/* Wait ms on the condition variable unless stop is asked; returns stop. */
static bool wait_ms(tg_otlp_t *o, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->mu);
    while (!o->stop && pthread_cond_timedwait(&o->cv, &o->mu, &ts) != ETIMEDOUT) {
    }
    bool stop = o->stop;
    pthread_mutex_unlock(&o->mu);
    return stop;
}

/* Send one batch: retried with backoff, then dropped and counted. A stop
 * cuts the retries: `last` tries once, within 2 s. */
static void send_batch(tg_otlp_t *o, CURL *e, tg_otlp_span_t **spans, size_t n, bool last)
{
    tg_buf_t body = {0};
    tg_otlp_encode((const tg_otlp_span_t *const *)spans, n, o->service_name, TG_VERSION, &body);
    char why[CURL_ERROR_SIZE + 32] = "";
    int r = 1;
    int64_t backoff = BACKOFF_MS;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
        long t = last && o->timeout_ms > 2000 ? 2000 : o->timeout_ms;
        r = post(o, e, &body, t, last, why, sizeof why);
        if (r <= 0 || last || attempt == ATTEMPTS)
            break;
        tg_debug("otlp: batch of %zu span(s) to %s failed (%s); try %d", n, o->shown, why, attempt);
        if (wait_ms(o, backoff))
            last = true; /* stopping: one more try, short */
        backoff *= 2;
    }
    if (r == 0) {
        atomic_fetch_add(&o->exported, (long long)n);
    } else {
        char what[CURL_ERROR_SIZE + 96];
        snprintf(what, sizeof what, "the collector at %s failed (%s)", o->shown, why);
        dropped(o, (long long)n, what);
    }
    tg_buf_free(&body);
    for (size_t i = 0; i < n; i++)
        free(spans[i]);
}

static CURL *make_handle(tg_otlp_t *o)
{
    CURL *e = curl_easy_init();
    if (!e)
        abort();
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, o);
    return e;
}

static void *exporter_main(void *arg)
{
    tg_otlp_t *o = arg;
    CURL *e = make_handle(o);
    tg_otlp_span_t **batch = tg_xcalloc(TG_OTLP_QUEUE, sizeof *batch);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_mutex_lock(&o->mu);
        while (!o->stop && o->q_len < TG_OTLP_BATCH &&
               pthread_cond_timedwait(&o->cv, &o->mu, &ts) != ETIMEDOUT) {
        }
        size_t n = o->q_len;
        memcpy(batch, o->q, n * sizeof *batch);
        o->q_len = 0;
        bool stop = o->stop;
        pthread_mutex_unlock(&o->mu);
        for (size_t i = 0; i < n; i += TG_OTLP_BATCH)
            send_batch(o, e, batch + i, n - i < TG_OTLP_BATCH ? n - i : TG_OTLP_BATCH, stop);
        if (stop)
            break;
    }
    free(batch);
    curl_easy_cleanup(e);
    return NULL;
}

/* ---- /metrics ---- */

static void render(void *arg, tg_buf_t *out)
{
    tg_otlp_t *o = arg;
    tg_buf_puts(out, "# HELP tollgate_otlp_spans_total Spans sent to the OpenTelemetry "
                     "collector, by result.\n# TYPE tollgate_otlp_spans_total counter\n");
    tg_buf_printf(out, "tollgate_otlp_spans_total{result=\"exported\"} %lld\n",
                  (long long)atomic_load(&o->exported));
    tg_buf_printf(out, "tollgate_otlp_spans_total{result=\"dropped\"} %lld\n",
                  (long long)atomic_load(&o->dropped));
}

void tg_otlp_counts(const tg_otlp_t *o, long long *exported, long long *dropped_n)
{
    *exported = o ? atomic_load(&o->exported) : 0;
    *dropped_n = o ? atomic_load(&o->dropped) : 0;
}

/* ---- the object ---- */

tg_otlp_t *tg_otlp_new(const tg_config_t *cfg, tg_metrics_t *metrics)
{
    if (!cfg->otlp_endpoint)
        return NULL;
    tg_otlp_t *o = tg_xcalloc(1, sizeof *o);
    o->url = tg_otlp_traces_url(cfg->otlp_endpoint);
    o->shown = tg_url_shown(o->url);
    o->service_name = tg_xstrdup(cfg->otlp_service_name ? cfg->otlp_service_name : "tollgate");
    o->timeout_ms = cfg->otlp_timeout_ms > 0 ? (long)cfg->otlp_timeout_ms : 10000;
    o->metrics = metrics;
    o->headers = curl_slist_append(NULL, "Content-Type: application/json");
    o->headers = curl_slist_append(o->headers, "User-Agent: tollgate/" TG_VERSION);
    o->headers = curl_slist_append(o->headers, "Expect:");
    for (size_t i = 0; i < cfg->n_otlp_headers; i++) {
        tg_buf_t h = {0};
        tg_buf_printf(&h, "%s: %s", cfg->otlp_headers[i].name, cfg->otlp_headers[i].value);
        o->headers = curl_slist_append(o->headers, h.data);
        tg_buf_free(&h);
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    o->q = tg_xcalloc(TG_OTLP_QUEUE, sizeof *o->q);
    if (pthread_create(&o->thread, NULL, exporter_main, o) != 0)
        abort();
    pthread_setname_np(o->thread, "tg-otlp");
    if (metrics)
        tg_metrics_set_otlp(metrics, render, o);
    tg_info("otlp: spans go to %s as service \"%s\"", o->shown, o->service_name);
    return o;
}

void tg_otlp_free(tg_otlp_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_mutex_unlock(&o->mu);
    atomic_store(&o->stopping, true);
    pthread_cond_broadcast(&o->cv);
    pthread_join(o->thread, NULL);
    if (o->metrics)
        tg_metrics_set_otlp(o->metrics, NULL, NULL);
    for (size_t i = 0; i < o->q_len; i++)
        free(o->q[i]);
    free(o->q);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    curl_slist_free_all(o->headers);
    free(o->url);
    free(o->shown);
    free(o->service_name);
    free(o);
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

bool tg_otlp_config_differs(const tg_config_t *a, const tg_config_t *b)
{
    if (!same_str(a->otlp_endpoint, b->otlp_endpoint) ||
        !same_str(a->otlp_service_name, b->otlp_service_name) ||
        a->otlp_timeout_ms != b->otlp_timeout_ms || a->n_otlp_headers != b->n_otlp_headers)
        return true;
    for (size_t i = 0; i < a->n_otlp_headers; i++)
        if (!same_str(a->otlp_headers[i].name, b->otlp_headers[i].name) ||
            !same_str(a->otlp_headers[i].value, b->otlp_headers[i].value))
            return true;
    return false;
}
