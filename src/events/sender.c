/*
 * sender.c — the events thread (events.h): it moves the queue's events
 * into the outbox, delivers what is due, settles each round in the outbox,
 * and ticks the alerts.
 *
 * Why one thread with libcurl multi: deliveries must never touch a worker
 * (a slow or dead receiver would hold a request's loop), and a handful of
 * receivers need no pool. The thread works in rounds: it reads up to
 * ROUND rows that are due, starts them all at once on its multi handle
 * (each with CURLOPT_TIMEOUT_MS, no redirects, http and https only),
 * waits for them while it keeps taking new events and ticking the alerts,
 * then writes the round's results in one transaction. A round lasts at
 * most one delivery's timeout; a row is in at most one round at a time.
 *
 * The outbox is the store's (tg_store_outbox_*); rows the store cannot take
 * (it fails, or there is none) are kept in memory (mem_outbox_t, bounded)
 * and delivered from there the same way.
 *
 * Thread: the events thread only (tg_events_new starts it, tg_events_free
 * joins it), but for the atomics /metrics reads.
 */
#include "events/events_internal.h"

#include "config/config_keys.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROUND 32

/* ---- the outbox: the store's, and memory's ---- */

static void row_copy(tg_outbox_row_t *dst, const tg_outbox_row_t *src)
{
    *dst = *src;
    dst->event_id = tg_xstrdup(src->event_id);
    dst->url = tg_xstrdup(src->url);
    dst->type = tg_xstrdup(src->type);
    dst->body = tg_xstrndup(src->body, src->body_len);
}

static void mem_add(tg_events_t *ev, const tg_outbox_row_t *rows, size_t n)
{
    mem_outbox_t *m = &ev->mem;
    for (size_t i = 0; i < n; i++) {
        if (m->n >= MEM_OUTBOX_MAX) {
            tg_events_dropped(ev, rows[i].type, rows[i].event_id, "the outbox in memory is full");
            continue;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->rows = tg_xrealloc(m->rows, m->cap * sizeof *m->rows);
        }
        row_copy(&m->rows[m->n], &rows[i]);
        m->rows[m->n++].seq = --m->next_seq;
    }
}

static void ob_add(tg_events_t *ev, const tg_outbox_row_t *rows, size_t n)
{
    char err[256];
    if (ev->store && tg_store_outbox_add(ev->store, rows, n, err, sizeof err) == 0)
        return;
    if (ev->store)
        tg_warn("events: outbox: %s; %zu event(s) kept in memory", err, n);
    mem_add(ev, rows, n);
}

/* Up to max due rows: the store's, then memory's (copies). */
static size_t ob_due(tg_events_t *ev, int64_t now, tg_outbox_row_t *out, size_t max,
                     int64_t *next_ms)
{
    size_t k = 0;
    *next_ms = -1;
    if (ev->store) {
        tg_outbox_row_t *rows;
        char err[256];
        if (tg_store_outbox_due(ev->store, now, max, &rows, &k, next_ms, err, sizeof err) < 0) {
            tg_warn("events: outbox: %s", err);
            *next_ms = now + 1000;
        } else {
            if (k)
                memcpy(out, rows, k * sizeof *rows);
            free(rows); /* the strings moved to out */
        }
    }
    for (size_t i = 0; i < ev->mem.n; i++) {
        const tg_outbox_row_t *r = &ev->mem.rows[i];
        if (r->next_at_ms <= now && k < max)
            row_copy(&out[k++], r);
        else if (*next_ms < 0 || r->next_at_ms < *next_ms)
            *next_ms = r->next_at_ms;
    }
    return k;
}

static void mem_settle(mem_outbox_t *m, const tg_outbox_row_t *r)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->rows[i].seq != r->seq)
            continue;
        if (r->done) {
            free(m->rows[i].event_id);
            free(m->rows[i].url);
            free(m->rows[i].type);
            free(m->rows[i].body);
            m->rows[i] = m->rows[--m->n];
        } else {
            m->rows[i].attempts = r->attempts;
            m->rows[i].next_at_ms = r->next_at_ms;
        }
        return;
    }
}

static void ob_settle(tg_events_t *ev, const tg_outbox_row_t *rows, size_t n)
{
    tg_outbox_row_t stored[ROUND];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].seq < 0)
            mem_settle(&ev->mem, &rows[i]);
        else
            stored[k++] = rows[i];
    }
    char err[256];
    if (k && tg_store_outbox_settle(ev->store, stored, k, err, sizeof err) < 0)
        /* the rows stay as they were: sent again (at least once) */
        tg_warn("events: outbox: %s", err);
}

/* ---- taking the queue ---- */

/* One outbox row per event and receiver that asked for its type. */
static void take(tg_events_t *ev, ev_item_t *items, size_t n)
{
    tg_outbox_row_t *rows = tg_xcalloc(n * (ev->n_dests ? ev->n_dests : 1), sizeof *rows);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < ev->n_dests; d++) {
            if (!(ev->dests[d].events & (1u << items[i].type)))
                continue;
            rows[k++] = (tg_outbox_row_t){
                .event_id = items[i].id,
                .url = ev->dests[d].url,
                .type = (char *)(uintptr_t)tg_event_type_names[items[i].type],
                .body = items[i].json,
                .body_len = items[i].len,
                .created_at_ms = items[i].created_at_ms,
                .next_at_ms = items[i].created_at_ms,
            };
        }
    }
    if (k)
        ob_add(ev, rows, k);
    free(rows);
    for (size_t i = 0; i < n; i++)
        free(items[i].json);
}

/* Swap the queue out into the outbox; returns whether stop was asked.
 * *took: whether there was anything. */
static bool drain(tg_events_t *ev, ev_item_t *buf, bool *took)
{
    pthread_mutex_lock(&ev->mu);
    size_t n = ev->q_len;
    memcpy(buf, ev->q, n * sizeof *buf);
    ev->q_len = 0;
    bool stop = ev->stop;
    pthread_mutex_unlock(&ev->mu);
    *took = n > 0;
    if (n)
        take(ev, buf, n);
    return stop;
}

/* ---- deliveries ---- */

typedef struct {
    tg_outbox_row_t row;
    const ev_dest_t *dest;
    CURL *easy;
    struct curl_slist *headers;
    char error[CURL_ERROR_SIZE];
    bool finished;
    int result; /* R_* */
} delivery_t;

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n; /* the receiver's answer is not read, only its status */
}

static const ev_dest_t *dest_of(const tg_events_t *ev, const char *url)
{
    for (size_t i = 0; i < ev->n_dests; i++)
        if (!strcmp(ev->dests[i].url, url))
            return &ev->dests[i];
    return NULL;
}

static void start(tg_events_t *ev, delivery_t *d)
{
    tg_buf_t h = {0};
    d->headers = curl_slist_append(NULL, "Content-Type: application/json");
    d->headers = curl_slist_append(d->headers, "User-Agent: tollgate/" TG_VERSION);
    d->headers = curl_slist_append(d->headers, "Expect:");
    tg_buf_printf(&h, "Tollgate-Event-Id: %s", d->row.event_id);
    d->headers = curl_slist_append(d->headers, h.data);
    tg_buf_reset(&h);
    tg_buf_printf(&h, "Tollgate-Event-Type: %s", d->row.type);
    d->headers = curl_slist_append(d->headers, h.data);
    if (d->dest->secret) {
        tg_buf_reset(&h);
        tg_buf_puts(&h, "Tollgate-Signature: ");
        tg_events_sign(d->dest->secret, tg_wall_ms() / 1000, d->row.body, d->row.body_len, &h);
        d->headers = curl_slist_append(d->headers, h.data);
    }
    tg_buf_free(&h);
    CURL *e = d->easy = curl_easy_init();
    if (!e)
        abort();
    curl_easy_setopt(e, CURLOPT_URL, d->row.url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->row.body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->row.body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ev->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(ev->o.timeout_ms < 5000 ? ev->o.timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, d);
    curl_multi_add_handle(ev->multi, e);
}

static void end(tg_events_t *ev, delivery_t *d)
{
    if (d->easy) {
        curl_multi_remove_handle(ev->multi, d->easy);
        curl_easy_cleanup(d->easy);
    }
    curl_slist_free_all(d->headers);
    free(d->row.event_id);
    free(d->row.url);
    free(d->row.type);
    free(d->row.body);
    memset(d, 0, sizeof *d);
}

/* A finished attempt: the row's next state, a log line, a count. */
static void finished(tg_events_t *ev, delivery_t *d, CURLcode rc, int64_t now)
{
    long status = 0;
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    d->finished = true;
    tg_outbox_row_t *r = &d->row;
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        d->result = R_SUCCESS;
        r->done = true;
        tg_debug("events: %s %s delivered to %s (%ld)", r->type, r->event_id, d->dest->shown,
                 status);
        return;
    }
    char why[CURL_ERROR_SIZE + 32];
    if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", d->error[0] ? d->error : curl_easy_strerror(rc));
    else
        snprintf(why, sizeof why, "status %ld", status);
    r->attempts++;
    if (now - r->created_at_ms >= ev->o.max_age_ms) {
        d->result = R_EXPIRED;
        r->done = true;
        tg_error("events: %s %s to %s given up after %d attempts (%s)", r->type, r->event_id,
                 d->dest->shown, r->attempts, why);
        return;
    }
    d->result = R_FAILURE;
    int64_t wait =
        tg_events_backoff_ms(r->attempts, ev->o.retry_min_ms, ev->o.retry_max_ms, tg_random_u64());
    r->next_at_ms = now + wait;
    tg_warn("events: %s %s to %s failed (%s); attempt %d, next in %.1fs", r->type, r->event_id,
            d->dest->shown, why, r->attempts, (double)wait / 1000.0);
}

/* ---- alerts ---- */

static void alert_changed(void *arg, size_t i, const tg_obs_alert_cfg_t *r, bool firing, double v)
{
    tg_events_t *ev = arg;
    atomic_store(&ev->firing[i], firing ? 1 : 0);
    if (firing)
        tg_warn("alert fired: %s (%s is %g)", r->name, tg_alert_metric_names[r->metric], v);
    else
        tg_info("alert resolved: %s", r->name);
    json_t *data = json_object();
    json_object_set_new(data, "rule", json_string(r->name));
    json_object_set_new(data, "metric", json_string(tg_alert_metric_names[r->metric]));
    json_object_set_new(data, "condition", json_string(r->below ? "below" : "above"));
    json_object_set_new(data, "threshold", json_real(r->threshold));
    json_object_set_new(data, "window_s", json_integer(r->window_ms / 1000));
    json_object_set_new(data, "value", isnan(v) ? json_null() : json_real(v));
    tg_events_emit(ev, firing ? "alert.fired" : "alert.resolved", data);
}

/* ---- the loop ---- */

void *tg_events_thread_main(void *arg)
{
    tg_events_t *ev = arg;
    ev_item_t *buf = tg_xcalloc(ev->o.queue_max, sizeof *buf);
    delivery_t round[ROUND];
    memset(round, 0, sizeof round);
    size_t n_round = 0, running = 0;
    int64_t next_due = 0, next_tick = 0;
    char err[256];
    /* what waited over a restart is tried at once: the receiver may have
     * been back for a while */
    if (ev->store && ev->n_dests &&
        tg_store_outbox_rewind(ev->store, tg_wall_ms(), err, sizeof err) < 0)
        tg_warn("events: outbox: %s", err);
    for (;;) {
        bool took;
        bool stop = drain(ev, buf, &took);
        int64_t now = tg_wall_ms(), mono = tg_mono_ms();
        if (stop)
            break;
        if (took)
            next_due = now; /* new rows are due at once */
        if (ev->alerts && mono >= next_tick) {
            tg_metrics_totals_t t = {0};
            if (ev->metrics)
                tg_metrics_totals(ev->metrics, &t);
            tg_alerts_tick(ev->alerts, mono, &t, alert_changed, ev);
            next_tick = mono + ev->o.alert_interval_ms;
            continue; /* take what the tick emitted */
        }
        if (!n_round && ev->n_dests && now >= next_due) {
            tg_outbox_row_t rows[ROUND];
            n_round = ob_due(ev, now, rows, ROUND, &next_due);
            for (size_t i = 0; i < n_round; i++) {
                round[i].row = rows[i];
                round[i].dest = dest_of(ev, rows[i].url);
                if (!round[i].dest) { /* the receiver left the configuration */
                    round[i].finished = true;
                    round[i].result = R_ABANDONED;
                    round[i].row.done = true;
                    tg_warn("events: %s %s dropped: its receiver is no longer configured",
                            rows[i].type, rows[i].event_id);
                    continue;
                }
                start(ev, &round[i]);
                running++;
            }
            if (next_due < 0)
                next_due = INT64_MAX;
        }
        if (n_round) {
            int still = 0;
            curl_multi_perform(ev->multi, &still);
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(ev->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                delivery_t *d = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
                finished(ev, d, msg->data.result, tg_wall_ms());
                running--;
            }
            if (!running) {
                tg_outbox_row_t rows[ROUND];
                for (size_t i = 0; i < n_round; i++) {
                    rows[i] = round[i].row;
                    atomic_fetch_add(&ev->n_results[round[i].result], 1);
                }
                ob_settle(ev, rows, n_round);
                for (size_t i = 0; i < n_round; i++)
                    end(ev, &round[i]);
                n_round = 0;
                next_due = 0; /* more may be due at once */
                continue;
            }
        }
        int64_t wait = 1000;
        if (ev->alerts && next_tick - mono < wait)
            wait = next_tick - mono;
        if (!n_round && ev->n_dests && next_due - now < wait)
            wait = next_due - now;
        if (wait < 0)
            wait = 0;
        curl_multi_poll(ev->multi, NULL, 0, (int)wait, NULL);
    }
    /* stop: deliveries under way are cut and stay due in the outbox */
    for (size_t i = 0; i < n_round; i++)
        end(ev, &round[i]);
    free(buf);
    return NULL;
}
