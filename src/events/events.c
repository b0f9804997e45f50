/*
 * events.c — see events.h: the object, the emitters and their queue, the
 * signature, the backoff schedule and the series for /metrics. The events
 * thread is sender.c.
 *
 * Why a mutex around the queue: an emitter holds it for a pointer copy;
 * events are few (a budget crosses a threshold, an alert changes) except
 * request.completed, one per request and only when a receiver asked for
 * it. When the queue is full the event is dropped and counted rather than
 * written to the outbox by the emitter, which would put the disk on the
 * request path. request.completed may fill the queue only up to RESERVE
 * places from its end, so that a flood of requests never crowds out an
 * alert or a budget event.
 *
 * Threads: see events.h.
 */
#include "events/events_internal.h"

#include "config/config_keys.h"
#include "core/log.h"
#include "core/urlpath.h"
#include "store/record.h"

#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESERVE 64

void tg_events_options_default(tg_events_options_t *o)
{
    o->retry_min_ms = 10000;
    o->retry_max_ms = 3600000;
    o->max_age_ms = 24 * 3600000LL;
    o->timeout_ms = 10000;
    o->alert_interval_ms = 5000;
    o->queue_max = 4096;
}

static bool env_ms(const char *name, int64_t *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return false;
    long long n = strtoll(v, &end, 10);
    if (n < 1 || (*end && *end != ','))
        return false;
    *out = n;
    return true;
}

void tg_events_options_env(tg_events_options_t *o)
{
    tg_events_options_default(o);
    if (env_ms("TOLLGATE_WEBHOOK_RETRY_MS", &o->retry_min_ms)) {
        const char *comma = strchr(getenv("TOLLGATE_WEBHOOK_RETRY_MS"), ',');
        long long max = comma ? strtoll(comma + 1, NULL, 10) : 0;
        o->retry_max_ms = max >= o->retry_min_ms ? max : o->retry_min_ms * 64;
        tg_warn("events: TOLLGATE_WEBHOOK_RETRY_MS: retries after %lld ms, at most %lld ms apart "
                "(a test setting)",
                (long long)o->retry_min_ms, (long long)o->retry_max_ms);
    }
    env_ms("TOLLGATE_WEBHOOK_TIMEOUT_MS", &o->timeout_ms);
    env_ms("TOLLGATE_ALERT_INTERVAL_MS", &o->alert_interval_ms);
}

/* ---- the signature and the schedule ---- */

void tg_events_sign(const char *secret, int64_t t, const char *body, size_t len, tg_buf_t *out)
{
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%lld", (long long)t);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)(uintptr_t) "SHA256", 0),
        OSSL_PARAM_construct_end()};
    size_t outl = 0;
    if (!c || !EVP_MAC_init(c, (const unsigned char *)secret, strlen(secret), params) ||
        !EVP_MAC_update(c, (const unsigned char *)ts, (size_t)tn) ||
        !EVP_MAC_update(c, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(c, (const unsigned char *)body, len) ||
        !EVP_MAC_final(c, mac, &outl, sizeof mac))
        abort(); /* OpenSSL without HMAC-SHA256: a broken install */
    mac_len = (unsigned)outl;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    tg_buf_printf(out, "t=%s,v1=", ts);
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mac_len; i++) {
        char h[2] = {hex[mac[i] >> 4], hex[mac[i] & 15]};
        tg_buf_append(out, h, 2);
    }
}

int64_t tg_events_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms, uint64_t rnd)
{
    int64_t d = min_ms > 0 ? min_ms : 1;
    for (int i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return d - (half > 0 ? (int64_t)(rnd % (uint64_t)(half + 1)) : 0);
}

/* ---- emitting ---- */

static int type_of(const char *type)
{
    for (int i = 0; tg_event_type_names[i]; i++)
        if (!strcmp(tg_event_type_names[i], type))
            return i;
    return -1;
}

void tg_events_dropped(tg_events_t *ev, const char *type, const char *id, const char *why)
{
    /* one line for the first drop and every 1000th: a stalled store under
     * load must not flood the log too */
    long long n = atomic_fetch_add(&ev->n_dropped, 1) + 1;
    if (n == 1 || n % 1000 == 0)
        tg_warn("events: %s %s dropped: %s (%lld dropped so far)", type, id, why, n);
}

/* Queue a made event; wakes the thread when the queue was empty (one
 * wake-up per burst, not per event). Frees json when dropped. */
static void enqueue(tg_events_t *ev, ev_item_t *it)
{
    size_t room = ev->o.queue_max - (it->type == TG_EVENT_REQUEST_COMPLETED ? RESERVE : 0);
    pthread_mutex_lock(&ev->mu);
    bool ok = ev->started && !ev->stop && ev->q_len < room;
    bool wake = ok && ev->q_len == 0;
    if (ok)
        ev->q[ev->q_len++] = *it;
    pthread_mutex_unlock(&ev->mu);
    if (!ok) {
        free(it->json);
        if (!ev->started)
            return;
        tg_events_dropped(ev, tg_event_type_names[it->type], it->id, "the queue is full");
        return;
    }
    if (wake)
        curl_multi_wakeup(ev->multi);
}

/* The event around `data` (JSON text): id, type, created_at. */
static void make(tg_events_t *ev, tg_event_type_t type, const char *data, size_t len)
{
    ev_item_t it = {.type = type, .created_at_ms = tg_wall_ms()};
    tg_uuid7(it.id, it.created_at_ms);
    atomic_fetch_add(&ev->n_events[type], 1);
    if (type == TG_EVENT_REQUEST_COMPLETED)
        tg_debug("event %s id=%s", tg_event_type_names[type], it.id);
    else
        tg_info("event %s id=%s data=%.*s", tg_event_type_names[type], it.id,
                (int)(len > 400 ? 400 : len), data);
    if (!(ev->wanted & (1u << type)))
        return; /* no receiver asked for it */
    tg_buf_t b = {0};
    tg_buf_printf(&b, "{\"id\":\"%s\",\"type\":\"%s\",\"created_at\":\"", it.id,
                  tg_event_type_names[type]);
    tg_record_time_format(it.created_at_ms, &b);
    tg_buf_puts(&b, "\",\"data\":");
    tg_buf_append(&b, data, len);
    tg_buf_puts(&b, "}");
    it.json = b.data;
    it.len = b.len;
    enqueue(ev, &it);
}

void tg_events_emit(tg_events_t *ev, const char *type, json_t *data)
{
    int t = type ? type_of(type) : -1;
    if (!ev || t < 0 || t == TG_EVENT_REQUEST_COMPLETED || (data && !json_is_object(data))) {
        tg_error("events: emit of \"%s\" refused: unknown type, or data not an object",
                 type ? type : "(null)");
        json_decref(data);
        return;
    }
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(data);
    make(ev, (tg_event_type_t)t, text ? text : "{}", text ? strlen(text) : 2);
    free(text);
}

bool tg_events_wants_requests(const tg_events_t *ev)
{
    return ev && (ev->wanted & (1u << TG_EVENT_REQUEST_COMPLETED));
}

void tg_events_request(tg_events_t *ev, const tg_record_t *r)
{
    if (!tg_events_wants_requests(ev))
        return;
    tg_buf_t b = {0};
    tg_record_to_json(r, 0, &b);
    make(ev, TG_EVENT_REQUEST_COMPLETED, b.data, b.len);
    tg_buf_free(&b);
}

/* ---- /metrics ---- */

static void render(void *arg, tg_buf_t *out)
{
    tg_events_t *ev = arg;
    static const char *const results[N_RESULTS] = {"success", "failure", "expired", "abandoned"};
    tg_buf_puts(out, "# HELP tollgate_events_total Events emitted, by type.\n"
                     "# TYPE tollgate_events_total counter\n");
    for (int i = 0; i < TG_EVENT_TYPES; i++)
        tg_buf_printf(out, "tollgate_events_total{type=\"%s\"} %lld\n", tg_event_type_names[i],
                      (long long)atomic_load(&ev->n_events[i]));
    tg_buf_puts(out, "# HELP tollgate_events_dropped_total Events dropped: the queue in memory "
                     "was full.\n# TYPE tollgate_events_dropped_total counter\n");
    tg_buf_printf(out, "tollgate_events_dropped_total %lld\n",
                  (long long)atomic_load(&ev->n_dropped));
    tg_buf_puts(out, "# HELP tollgate_webhook_deliveries_total Webhook delivery attempts, by "
                     "result.\n# TYPE tollgate_webhook_deliveries_total counter\n");
    for (int i = 0; i < N_RESULTS; i++)
        tg_buf_printf(out, "tollgate_webhook_deliveries_total{result=\"%s\"} %lld\n", results[i],
                      (long long)atomic_load(&ev->n_results[i]));
    if (!ev->n_rules)
        return;
    tg_buf_puts(out, "# HELP tollgate_alert_firing Whether an observability alert holds now.\n"
                     "# TYPE tollgate_alert_firing gauge\n");
    for (size_t i = 0; i < ev->n_rules; i++) {
        tg_buf_puts(out, "tollgate_alert_firing{rule=\"");
        for (const char *p = ev->rule_names[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                tg_buf_append(out, "\\", 1);
            if (*p == '\n')
                tg_buf_puts(out, "\\n");
            else
                tg_buf_append(out, p, 1);
        }
        tg_buf_printf(out, "\"} %d\n", atomic_load(&ev->firing[i]));
    }
}

/* ---- the object ---- */

static void add_dest(tg_events_t *ev, const char *url, const char *secret, unsigned events)
{
    for (size_t i = 0; i < ev->n_dests; i++) {
        if (!strcmp(ev->dests[i].url, url)) { /* the webhooks entry's secret wins */
            ev->dests[i].events |= events;
            free(ev->dests[i].secret);
            ev->dests[i].secret = secret ? tg_xstrdup(secret) : NULL;
            return;
        }
    }
    ev->dests = tg_xrealloc(ev->dests, (ev->n_dests + 1) * sizeof *ev->dests);
    ev_dest_t *d = &ev->dests[ev->n_dests++];
    d->url = tg_xstrdup(url);
    d->secret = secret && *secret ? tg_xstrdup(secret) : NULL;
    d->shown = tg_url_shown(url);
    d->events = events;
    if (!d->secret)
        tg_warn("events: deliveries to %s are not signed (no secret)", d->shown);
}

tg_events_t *tg_events_new(const tg_config_t *cfg, const tg_events_options_t *o, tg_store_t *store,
                           tg_metrics_t *metrics)
{
    tg_events_t *ev = tg_xcalloc(1, sizeof *ev);
    ev->o = *o;
    ev->store = store;
    ev->metrics = metrics;
    pthread_mutex_init(&ev->mu, NULL);
    if (cfg->webhook_url)
        add_dest(ev, cfg->webhook_url, cfg->webhook_secret, TG_EVENT_MASK_DEFAULT);
    for (size_t i = 0; i < cfg->n_webhooks; i++)
        add_dest(ev, cfg->webhooks[i].url, cfg->webhooks[i].secret, cfg->webhooks[i].events);
    for (size_t i = 0; i < ev->n_dests; i++)
        ev->wanted |= ev->dests[i].events;
    ev->n_rules = cfg->n_obs_alerts;
    ev->firing = tg_xcalloc(ev->n_rules ? ev->n_rules : 1, sizeof *ev->firing);
    ev->rule_names = tg_xcalloc(ev->n_rules ? ev->n_rules : 1, sizeof *ev->rule_names);
    for (size_t i = 0; i < ev->n_rules; i++)
        ev->rule_names[i] = tg_xstrdup(cfg->obs_alerts[i].name);
    if (metrics)
        tg_metrics_set_extra(metrics, render, ev);
    if (!ev->n_dests && !ev->n_rules)
        return ev; /* nothing to deliver or watch: events are logged and counted */
    if (ev->n_rules && !cfg->metrics_enabled)
        tg_warn("events: observability.alerts read the metrics, which are off "
                "(observability.metrics.enabled: false): the alerts see no traffic");
    if (ev->n_rules)
        ev->alerts = tg_alerts_new(cfg->obs_alerts, cfg->n_obs_alerts, o->alert_interval_ms);
    if (!store && ev->n_dests)
        tg_warn("events: no store (request logging is off): undelivered webhook events are kept "
                "in memory only and lost at a restart");
    ev->q = tg_xcalloc(o->queue_max, sizeof *ev->q);
    ev->multi = curl_multi_init();
    if (!ev->multi)
        abort();
    ev->started = true;
    if (pthread_create(&ev->thread, NULL, tg_events_thread_main, ev) != 0)
        abort();
    pthread_setname_np(ev->thread, "tg-events");
    tg_info("events: %zu webhook receiver(s), %zu alert rule(s)", ev->n_dests, ev->n_rules);
    return ev;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

bool tg_events_config_differs(const tg_config_t *a, const tg_config_t *b)
{
    if (!same_str(a->webhook_url, b->webhook_url) ||
        !same_str(a->webhook_secret, b->webhook_secret) || a->n_webhooks != b->n_webhooks ||
        a->n_obs_alerts != b->n_obs_alerts)
        return true;
    for (size_t i = 0; i < a->n_webhooks; i++) {
        const tg_webhook_cfg_t *x = &a->webhooks[i], *y = &b->webhooks[i];
        if (!same_str(x->url, y->url) || !same_str(x->secret, y->secret) || x->events != y->events)
            return true;
    }
    for (size_t i = 0; i < a->n_obs_alerts; i++) {
        const tg_obs_alert_cfg_t *x = &a->obs_alerts[i], *y = &b->obs_alerts[i];
        if (!same_str(x->name, y->name) || x->metric != y->metric || x->below != y->below ||
            x->threshold != y->threshold || x->window_ms != y->window_ms)
            return true;
    }
    return false;
}

void tg_events_free(tg_events_t *ev)
{
    if (!ev)
        return;
    if (ev->started) {
        pthread_mutex_lock(&ev->mu);
        ev->stop = true;
        pthread_mutex_unlock(&ev->mu);
        curl_multi_wakeup(ev->multi);
        pthread_join(ev->thread, NULL);
        curl_multi_cleanup(ev->multi);
    }
    if (ev->metrics)
        tg_metrics_set_extra(ev->metrics, NULL, NULL);
    for (size_t i = 0; i < ev->q_len; i++)
        free(ev->q[i].json);
    free(ev->q);
    for (size_t i = 0; i < ev->n_dests; i++) {
        free(ev->dests[i].url);
        free(ev->dests[i].secret);
        free(ev->dests[i].shown);
    }
    free(ev->dests);
    for (size_t i = 0; i < ev->n_rules; i++)
        free(ev->rule_names[i]);
    free(ev->rule_names);
    free(ev->firing);
    tg_alerts_free(ev->alerts);
    tg_outbox_rows_free(ev->mem.rows, ev->mem.n);
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}
