/*
 * test_events.c — the events module (src/events/): the signature against a
 * known HMAC-SHA256 vector, the backoff schedule, the outbox kept across a
 * restart of the store (write, close, open, replay, settle), the emitter's
 * rows in the outbox when the receiver is down, and the alert rules (fire
 * once, resolve once, sliding windows).
 */
#include "store_env.h"
#include "test.h"

#include "config/config.h"
#include "events/alerts.h"
#include "events/events.h"
#include "store/store.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

TEST(events_signature_known_vector)
{
    /* HMAC-SHA256("whsec_test", "1700000000.{\"id\":\"evt_1\"}"), computed
     * independently (Python's hmac module) */
    tg_buf_t b = {0};
    const char *body = "{\"id\":\"evt_1\"}";
    tg_events_sign("whsec_test", 1700000000, body, strlen(body), &b);
    CHECK_STR(b.data, "t=1700000000,v1="
                      "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925");
    tg_buf_reset(&b);
    tg_events_sign("key", 1, "", 0, &b); /* empty body: "1." */
    CHECK_STR(b.data, "t=1,v1=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f");
    /* another secret or another body: another signature */
    tg_buf_reset(&b);
    tg_events_sign("whsec_tesT", 1700000000, body, strlen(body), &b);
    CHECK(!strstr(b.data, "c89214b5"));
    tg_buf_free(&b);
}

TEST(events_backoff_schedule)
{
    /* without jitter (rnd 0): doubling from min, capped at max */
    const int64_t want[] = {10000,  20000,   40000,   80000,   160000, 320000,
                            640000, 1280000, 2560000, 3600000, 3600000};
    for (int a = 1; a <= 11; a++)
        CHECK_INT(tg_events_backoff_ms(a, 10000, 3600000, 0), want[a - 1]);
    CHECK_INT(tg_events_backoff_ms(1000, 10000, 3600000, 0), 3600000); /* no overflow */
    /* jitter takes off up to half, never more, never adds */
    int64_t lo = INT64_MAX, hi = 0;
    for (uint64_t r = 0; r < 5000; r++) {
        int64_t d = tg_events_backoff_ms(3, 1000, 60000, r * 2654435761u);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        CHECK(d >= 2000 && d <= 4000);
    }
    CHECK(lo < 2200 && hi > 3800); /* it does spread */
    /* the schedule's attempts over 24 h: 10 s, 20 s, ... then hourly */
    int64_t t = 0;
    int n = 0;
    while (t < 24 * 3600000LL) {
        t += tg_events_backoff_ms(++n, 10000, 3600000, 0);
    }
    CHECK(n > 20 && n < 40);
}

static void tmpdir(char out[64])
{
    snprintf(out, 64, "/tmp/tg-events-XXXXXX");
    if (!mkdtemp(out))
        abort();
}

static tg_store_t *open_store(const char *dir)
{
    tg_test_store_t where;
    tg_store_options_t o;
    tg_test_store_options(dir, "t.db", &where, &o);
    tg_store_t *s = NULL;
    char err[256];
    if (tg_store_open(&o, &s, err, sizeof err) != 0)
        printf("    open: %s\n", err);
    return s;
}

/* A store in a new directory (dir), or NULL after a failed check. */
static tg_store_t *fresh_store(char dir[64])
{
    tmpdir(dir);
    tg_store_t *s = open_store(dir);
    CHECK(s != NULL);
    return s;
}

static void rm_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("    could not remove %s\n", dir);
}

static tg_outbox_row_t outbox_row(const char *id, const char *url, const char *type,
                                  const char *body, int64_t created, int64_t next)
{
    return (tg_outbox_row_t){.event_id = (char *)(uintptr_t)id,
                             .url = (char *)(uintptr_t)url,
                             .type = (char *)(uintptr_t)type,
                             .body = (char *)(uintptr_t)body,
                             .body_len = strlen(body),
                             .created_at_ms = created,
                             .next_at_ms = next};
}

TEST(events_outbox_survives_a_restart)
{
    char dir[64], err[256];
    tg_store_t *s = fresh_store(dir);
    if (!s)
        return;
    /* event id, receiver, type, created_at, next_at; bodies {"n":1}, {"n":2} */
    tg_outbox_row_t rows[3] = {
        outbox_row("e1", "http://a/", "alert.fired", "{\"n\":1}", 1000, 1000),
        outbox_row("e2", "http://a/", "alert.resolved", "{\"n\":2}", 2000, 5000),
        outbox_row("e1", "http://b/", "alert.fired", "{\"n\":1}", 1000, 1500),
    };
    CHECK_INT(tg_store_outbox_add(s, rows, 3, err, sizeof err), 0);
    CHECK_INT(tg_store_outbox_add(s, rows, 1, err, sizeof err), 0); /* a replay adds nothing */
    tg_store_close(s);

    s = open_store(dir); /* the restart */
    CHECK(s != NULL);
    if (!s)
        return;
    tg_outbox_row_t *due;
    size_t n;
    int64_t next;
    CHECK_INT(tg_store_outbox_due(s, 1999, 10, &due, &n, &next, err, sizeof err), 0);
    CHECK_INT(n, 2); /* e1 to a and to b, earliest first */
    CHECK_INT(next, 1000);
    if (n == 2) {
        CHECK_STR(due[0].event_id, "e1");
        CHECK_STR(due[0].url, "http://a/");
        CHECK_STR(due[0].body, "{\"n\":1}");
        CHECK_INT(due[0].body_len, 7);
        CHECK_STR(due[1].url, "http://b/");
        CHECK_INT(due[1].created_at_ms, 1000);
        /* a delivered, b failed once: retry at 9000 */
        due[0].done = true;
        due[1].attempts = 1;
        due[1].next_at_ms = 9000;
        CHECK_INT(tg_store_outbox_settle(s, due, 2, err, sizeof err), 0);
    }
    tg_outbox_rows_free(due, n);
    CHECK_INT(tg_store_outbox_due(s, 4999, 10, &due, &n, &next, err, sizeof err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(next, 5000);
    tg_outbox_rows_free(due, n);
    tg_store_close(s);

    s = open_store(dir);
    CHECK(s != NULL);
    if (!s)
        return;
    /* a start makes what waits due at once */
    CHECK_INT(tg_store_outbox_rewind(s, 3000, err, sizeof err), 0);
    CHECK_INT(tg_store_outbox_due(s, 3000, 10, &due, &n, &next, err, sizeof err), 0);
    CHECK_INT(n, 2);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(due[i].event_id, "e1") || strcmp(due[i].url, "http://a/")); /* gone */
        if (!strcmp(due[i].url, "http://b/"))
            CHECK_INT(due[i].attempts, 1);
        due[i].done = true;
    }
    CHECK_INT(tg_store_outbox_settle(s, due, n, err, sizeof err), 0);
    tg_outbox_rows_free(due, n);
    CHECK_INT(tg_store_outbox_due(s, INT64_MAX, 10, &due, &n, &next, err, sizeof err), 0);
    CHECK_INT(n, 0);
    CHECK_INT(next, -1);
    tg_outbox_rows_free(due, n);
    tg_store_close(s);
    rm_dir(dir);
}

static tg_config_t *cfg_of(const char *yaml)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "t", &errs);
    CHECK(c != NULL);
    tg_config_errors_free(&errs);
    return c;
}

/* The emitter, a receiver that refuses connections: the event waits in
 * the store's outbox, whole, after the events object is gone. */
TEST(events_emitted_event_waits_in_the_outbox)
{
    char dir[64], err[256];
    tg_store_t *s = fresh_store(dir);
    if (!s)
        return;
    tg_config_t *cfg = cfg_of("cost_tracking:\n"
                              "  webhook_url: http://127.0.0.1:1/refused\n"
                              "  webhook_secret: x\n");
    if (!cfg) {
        tg_store_close(s);
        return;
    }
    tg_metrics_t *m = tg_metrics_new(1);
    tg_events_options_t o;
    tg_events_options_default(&o);
    o.retry_min_ms = o.retry_max_ms = 3600000; /* one attempt in this test */
    tg_events_t *ev = tg_events_new(cfg, &o, s, m);
    CHECK(!tg_events_wants_requests(ev));
    json_t *data = json_pack("{s:s, s:f}", "scope", "global", "percent", 80.0);
    tg_events_emit(ev, "budget.warning", data);
    tg_events_emit(ev, "no.such.event", json_object()); /* refused, freed */
    /* wait for the failed attempt (counted on /metrics) */
    tg_buf_t out = {0};
    for (int i = 0; i < 400; i++) {
        tg_buf_reset(&out);
        tg_metrics_render(m, &out);
        if (strstr(out.data, "tollgate_webhook_deliveries_total{result=\"failure\"} 1"))
            break;
        usleep(10000);
    }
    CHECK(strstr(out.data, "tollgate_webhook_deliveries_total{result=\"failure\"} 1") != NULL);
    CHECK(strstr(out.data, "tollgate_events_total{type=\"budget.warning\"} 1") != NULL);
    CHECK(strstr(out.data, "tollgate_events_dropped_total 0") != NULL);
    tg_events_free(ev);
    tg_buf_reset(&out);
    tg_metrics_render(m, &out); /* the series leave with the object */
    CHECK(!strstr(out.data, "tollgate_events_total"));
    tg_buf_free(&out);

    tg_outbox_row_t *due;
    size_t n;
    int64_t next;
    CHECK_INT(tg_store_outbox_due(s, INT64_MAX, 10, &due, &n, &next, err, sizeof err), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(due[0].type, "budget.warning");
        CHECK_STR(due[0].url, "http://127.0.0.1:1/refused");
        CHECK_INT(due[0].attempts, 1);
        CHECK(due[0].next_at_ms > tg_wall_ms() + 1000000); /* its retry, an hour on */
        json_error_t je;
        json_t *e = json_loadb(due[0].body, due[0].body_len, 0, &je);
        CHECK(e != NULL);
        CHECK_STR(json_string_value(json_object_get(e, "id")), due[0].event_id);
        CHECK_STR(json_string_value(json_object_get(e, "type")), "budget.warning");
        CHECK(json_is_string(json_object_get(e, "created_at")));
        json_t *d = json_object_get(e, "data");
        CHECK_STR(json_string_value(json_object_get(d, "scope")), "global");
        CHECK(!strstr(due[0].body, "\"x\"")); /* the secret is not in it */
        json_decref(e);
    }
    tg_outbox_rows_free(due, n);
    tg_metrics_free(m);
    tg_config_release(cfg);
    tg_store_close(s);
    rm_dir(dir);
}

/* A back-end whose outbox stalls until the test lets it go (a store that
 * hangs), and counts the rows it is given. */
typedef struct {
    tg_store_backend_t base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open, entered;
    size_t rows;
} stall_t;

static int stall_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                       size_t errlen)
{
    return TG_STORE_OK;
}

static int stall_reopen(tg_store_backend_t *b, char *err, size_t errlen)
{
    return 0;
}

static void stall_close(tg_store_backend_t *b) {}

static int stall_add(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                     size_t errlen)
{
    stall_t *st = (stall_t *)b;
    pthread_mutex_lock(&st->mu);
    st->entered = true;
    pthread_cond_broadcast(&st->cv);
    while (!st->open)
        pthread_cond_wait(&st->cv, &st->mu);
    st->rows += n;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static int stall_due(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                     size_t *n, int64_t *next_ms, char *err, size_t errlen)
{
    return 0; /* nothing due: this test delivers nothing */
}

static int stall_rewind(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen)
{
    return 0;
}

static const tg_store_ops_t stall_ops = {.name = "stall",
                                         .write = stall_write,
                                         .reopen = stall_reopen,
                                         .outbox_add = stall_add,
                                         .outbox_due = stall_due,
                                         .outbox_rewind = stall_rewind,
                                         .close = stall_close};

static long long dropped_of(tg_metrics_t *m)
{
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    const char *p = strstr(out.data, "\ntollgate_events_dropped_total ");
    long long n = p ? atoll(p + strlen("\ntollgate_events_dropped_total ")) : -1;
    tg_buf_free(&out);
    return n;
}

/* While the events thread is stuck (the store stalls), the queue fills:
 * request.completed stops 64 places short of its end, the other events
 * use those places, then every event is dropped and counted; the request
 * path never waits. When the store comes back, what was queued reaches it. */
TEST(events_full_queue_drops_and_counts_keeping_room_for_alerts)
{
    char dir[64];
    tmpdir(dir);
    char spool[96];
    snprintf(spool, sizeof spool, "%s/spool", dir);
    stall_t st = {.base.ops = &stall_ops};
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    tg_store_options_t so;
    tg_store_options_default(&so);
    so.spool_path = spool;
    so.journal_dir = "";
    tg_store_t *s = NULL;
    char err[256];
    CHECK_INT(tg_store_open_backend(&so, &st.base, &s, err, sizeof err), 0);
    tg_config_t *cfg = cfg_of("webhooks:\n"
                              "  - url: http://127.0.0.1:1/x\n"
                              "    events: [request.completed, budget.exceeded]\n");
    if (!s || !cfg) {
        tg_store_close(s);
        tg_config_release(cfg);
        return;
    }
    tg_metrics_t *m = tg_metrics_new(1);
    tg_events_options_t o;
    tg_events_options_default(&o);
    o.queue_max = 100;
    tg_events_t *ev = tg_events_new(cfg, &o, s, m);
    CHECK(tg_events_wants_requests(ev));
    tg_record_t *r = tg_record_new();
    tg_record_set_str(&r->route, "/v1/chat/completions");
    r->status = 200;
    /* the first event takes the thread into the stalled store */
    tg_events_request(ev, r);
    pthread_mutex_lock(&st.mu);
    while (!st.entered)
        pthread_cond_wait(&st.cv, &st.mu);
    pthread_mutex_unlock(&st.mu);
    int64_t t0 = tg_mono_ms();
    for (int i = 0; i < 50; i++) /* 36 fit (100 - 64) */
        tg_events_request(ev, r);
    CHECK_INT(dropped_of(m), 14);
    for (int i = 0; i < 70; i++) /* 64 fit */
        tg_events_emit(ev, "budget.exceeded", json_pack("{s:i}", "n", i));
    CHECK_INT(dropped_of(m), 20);
    tg_events_request(ev, r);
    CHECK_INT(dropped_of(m), 21);
    CHECK(tg_mono_ms() - t0 < 1000); /* nothing waited on the store */
    /* the store comes back: the 1 + 36 + 64 queued events reach it */
    pthread_mutex_lock(&st.mu);
    st.open = true;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    size_t rows = 0;
    for (int i = 0; i < 500 && rows < 101; i++) {
        usleep(10000);
        pthread_mutex_lock(&st.mu);
        rows = st.rows;
        pthread_mutex_unlock(&st.mu);
    }
    CHECK_INT(rows, 101);
    tg_events_free(ev);
    tg_record_free(r);
    tg_metrics_free(m);
    tg_config_release(cfg);
    tg_store_close(s);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    rm_dir(dir);
}

/* ---- alerts ---- */

typedef struct {
    int fired, resolved;
    double last;
} changes_t;

static void on_change(void *arg, size_t i, const tg_obs_alert_cfg_t *r, bool firing, double v)
{
    changes_t *c = arg;
    if (firing)
        c->fired++;
    else
        c->resolved++;
    c->last = v;
}

TEST(alerts_fire_once_and_resolve_once)
{
    tg_obs_alert_cfg_t rule = {
        .name = "errors", .metric = TG_ALERT_ERROR_RATE, .threshold = 0.05, .window_ms = 10000};
    tg_alerts_t *a = tg_alerts_new(&rule, 1, 1000);
    changes_t c = {0};
    tg_metrics_totals_t t = {0};
    int64_t now = 0;
    tg_alerts_tick(a, now, &t, on_change, &c); /* start: nothing yet */
    /* 100 requests a second, 1% errors: holds not */
    for (int i = 0; i < 20; i++) {
        now += 1000;
        t.requests += 100;
        t.errors += 1;
        tg_alerts_tick(a, now, &t, on_change, &c);
    }
    CHECK_INT(c.fired, 0);
    /* 20% errors for 5 s: fires at the first tick over 5%, once */
    for (int i = 0; i < 5; i++) {
        now += 1000;
        t.requests += 100;
        t.errors += 20;
        tg_alerts_tick(a, now, &t, on_change, &c);
        if (i == 3)
            CHECK_INT(c.fired, 1);
    }
    CHECK_INT(c.fired, 1);
    CHECK(tg_alerts_firing(a, 0));
    /* clean again: the bad seconds leave the 10 s window, then it resolves */
    int resolved_after = 0;
    for (int i = 1; i <= 15 && !c.resolved; i++) {
        now += 1000;
        t.requests += 100;
        tg_alerts_tick(a, now, &t, on_change, &c);
        resolved_after = i;
    }
    CHECK_INT(c.resolved, 1);
    CHECK(resolved_after >= 5 && resolved_after <= 10); /* the window, not at once */
    CHECK(!tg_alerts_firing(a, 0));
    for (int i = 0; i < 30; i++) {
        now += 1000;
        t.requests += 100;
        tg_alerts_tick(a, now, &t, on_change, &c);
    }
    CHECK_INT(c.fired, 1);
    CHECK_INT(c.resolved, 1);
    tg_alerts_free(a);
}

TEST(alerts_metrics_and_windows)
{
    tg_metrics_totals_t d = {.requests = 10,
                             .errors = 2,
                             .duration_s = 30,
                             .cost_usd = 1.5,
                             .cache_hits = 1,
                             .cache_misses = 3};
    tg_obs_alert_cfg_t r = {.name = "x"};
    r.metric = TG_ALERT_ERROR_RATE;
    CHECK(fabs(tg_alert_value(&r, &d, 60) - 0.2) < 1e-9);
    r.metric = TG_ALERT_REQUEST_RATE;
    CHECK(fabs(tg_alert_value(&r, &d, 60) - 10.0 / 60) < 1e-9);
    r.metric = TG_ALERT_CACHE_HIT_RATE;
    CHECK(fabs(tg_alert_value(&r, &d, 60) - 0.25) < 1e-9);
    r.metric = TG_ALERT_LATENCY_AVG;
    CHECK(fabs(tg_alert_value(&r, &d, 60) - 3.0) < 1e-9);
    r.metric = TG_ALERT_COST;
    CHECK(fabs(tg_alert_value(&r, &d, 60) - 1.5) < 1e-9);
    /* undefined without traffic: a rule then does not hold */
    tg_metrics_totals_t none = {0};
    r.metric = TG_ALERT_ERROR_RATE;
    CHECK(isnan(tg_alert_value(&r, &none, 60)));
    r.metric = TG_ALERT_CACHE_HIT_RATE;
    CHECK(isnan(tg_alert_value(&r, &none, 60)));

    /* two rules, two windows, one below: a cache hit rate under 50% over
     * 3 s, and cost above 1 USD over 5 s */
    tg_obs_alert_cfg_t rules[2] = {
        {.name = "cold",
         .metric = TG_ALERT_CACHE_HIT_RATE,
         .below = true,
         .threshold = 0.5,
         .window_ms = 3000},
        {.name = "spend", .metric = TG_ALERT_COST, .threshold = 1.0, .window_ms = 5000},
    };
    tg_alerts_t *a = tg_alerts_new(rules, 2, 1000);
    tg_metrics_totals_t t = {0};
    tg_alerts_tick(a, 0, &t, NULL, NULL);
    /* 0.3 USD a second: over 5 s that is 1.5 > 1 once 4 s have passed */
    for (int s = 1; s <= 3; s++) {
        t.cost_usd += 0.3;
        t.cache_hits += 9;
        t.cache_misses += 1;
        tg_alerts_tick(a, s * 1000, &t, NULL, NULL);
    }
    CHECK(!tg_alerts_firing(a, 0)); /* 90% hits */
    CHECK(!tg_alerts_firing(a, 1)); /* 0.9 USD */
    t.cost_usd += 0.3;
    t.cache_misses += 30; /* a cold second */
    tg_alerts_tick(a, 4000, &t, NULL, NULL);
    CHECK(tg_alerts_firing(a, 0)); /* 18 hits of 50 over the last 3 s */
    CHECK(tg_alerts_firing(a, 1)); /* 1.2 USD */
    /* nothing more: spend leaves its 5 s window; the cache rule has no
     * look-ups in its window and stops holding */
    for (int s = 5; s <= 12; s++)
        tg_alerts_tick(a, s * 1000, &t, NULL, NULL);
    CHECK(!tg_alerts_firing(a, 0));
    CHECK(!tg_alerts_firing(a, 1));
    tg_alerts_free(a);
}

TEST(events_reload_says_what_needs_a_restart)
{
    const char *base = "webhooks:\n  - { url: http://a/x, events: [alert.fired], secret: s }\n"
                       "observability:\n  alerts:\n    - { metric: cost, above: 5 }\n";
    const char *other[] = {
        "webhooks:\n  - { url: http://a/y, events: [alert.fired], secret: s }\n"
        "observability:\n  alerts:\n    - { metric: cost, above: 5 }\n",
        "webhooks:\n  - { url: http://a/x, events: [alert.fired], secret: t }\n"
        "observability:\n  alerts:\n    - { metric: cost, above: 5 }\n",
        "webhooks:\n  - { url: http://a/x, events: [alert.resolved], secret: s }\n"
        "observability:\n  alerts:\n    - { metric: cost, above: 5 }\n",
        "webhooks:\n  - { url: http://a/x, events: [alert.fired], secret: s }\n"
        "observability:\n  alerts:\n    - { metric: cost, above: 6 }\n",
        "webhooks:\n  - { url: http://a/x, events: [alert.fired], secret: s }\n"
        "cost_tracking:\n  webhook_url: http://b/\n"
        "observability:\n  alerts:\n    - { metric: cost, above: 5 }\n",
    };
    tg_config_t *a = cfg_of(base), *same = cfg_of(base);
    if (!a || !same)
        return;
    CHECK(!tg_events_config_differs(a, same));
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        tg_config_t *b = cfg_of(other[i]);
        if (b)
            CHECK(tg_events_config_differs(a, b));
        tg_config_release(b);
    }
    tg_config_release(a);
    tg_config_release(same);
}
