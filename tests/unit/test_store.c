/* The request record, the queue and the store's write path (SPEC §8). */
#include "test.h"

#include "store/journal.h"
#include "store/query.h"
#include "store/queue.h"
#include "store/record.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmpdir(char out[64])
{
    snprintf(out, 64, "/tmp/tg-store-XXXXXX");
    if (!mkdtemp(out))
        abort();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static tg_record_t *mkrec(int i)
{
    tg_record_t *r = tg_record_new();
    char b[64];
    r->created_at_ms = 1762300800000 + i; /* 2025-11-05T00:00:00Z + i ms */
    tg_record_set_str(&r->provider, i % 2 ? "openai" : "anthropic");
    tg_record_set_str(&r->model, i % 2 ? "gpt-4o" : "claude-3-5-sonnet-20241022");
    tg_record_set_str(&r->route, "/v1/chat/completions");
    r->status = 200;
    r->latency_ms = 100 + i % 50;
    r->usage.prompt_tokens = 10;
    r->usage.completion_tokens = 5;
    r->cost_nusd = 1000;
    snprintf(b, sizeof b, "agent-%d", i % 3);
    tg_record_set_property(r, "Agent-Name", b);
    return r;
}

/* Whether SQLite's plan for `sql` names `index`. */
static bool plan_uses(const char *db, const char *sql, const char *index)
{
    sqlite3 *h;
    bool found = false;
    char eqp[512];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, eqp, -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW)
                found = found || strstr((const char *)sqlite3_column_text(st, 3), index);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(h);
    return found;
}

static int64_t count_rows(const char *db, const char *sql)
{
    sqlite3 *h;
    int64_t n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(h);
    return n;
}

static tg_store_t *open_sqlite(const char *dir, tg_store_options_t *o)
{
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/t.db", dir);
    tg_store_options_t d;
    if (!o) {
        tg_store_options_default(&d);
        o = &d;
    }
    o->url = url;
    tg_store_t *s = NULL;
    char err[256];
    if (tg_store_open(o, &s, err, sizeof err) != 0)
        printf("    open: %s\n", err);
    o->url = NULL;
    return s;
}

/* A new store in a new directory; db is its file. */
static tg_store_t *fresh_sqlite(char dir[64], char db[128])
{
    tmpdir(dir);
    snprintf(db, 128, "%s/t.db", dir);
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    return s;
}

/* Wait (up to 20 s: disks stall under load) until every record submitted
 * so far sits in the spool because the database fails. */
static bool wait_spooled(tg_store_t *s)
{
    int64_t end = tg_mono_ms() + 20000;
    tg_store_counters_t c;
    do {
        tg_store_counters(s, &c);
        if (c.failing && c.spool_bytes > 0 && c.queue_depth == 0)
            return true;
        sleep_ms(10);
    } while (tg_mono_ms() < end);
    return false;
}

/* A back-end that keeps ids in memory and fails on demand. */
typedef struct {
    tg_store_backend_t base;
    pthread_mutex_t mu;
    atomic_int fail;
    int delay_ms;
    int writes, max_batch;
    char **ids;
    size_t n_ids;
} fake_t;

static int fake_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                      size_t errlen)
{
    fake_t *f = (fake_t *)b;
    if (f->delay_ms)
        sleep_ms(f->delay_ms);
    if (atomic_load(&f->fail)) {
        snprintf(err, errlen, "injected failure");
        return TG_STORE_ERETRY;
    }
    pthread_mutex_lock(&f->mu);
    f->writes++;
    if ((int)n > f->max_batch)
        f->max_batch = (int)n;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < f->n_ids && !dup; j++)
            dup = !strcmp(f->ids[j], recs[i]->id);
        if (dup)
            continue; /* as the real store: replays are idempotent */
        f->ids = realloc(f->ids, (f->n_ids + 1) * sizeof *f->ids);
        f->ids[f->n_ids++] = strdup(recs[i]->id);
    }
    pthread_mutex_unlock(&f->mu);
    return TG_STORE_OK;
}

static int fake_reopen(tg_store_backend_t *b, char *err, size_t errlen)
{
    return atomic_load(&((fake_t *)b)->fail) ? (snprintf(err, errlen, "down"), -1) : 0;
}

static void fake_close(tg_store_backend_t *b)
{
    (void)b; /* the test owns the fake */
}

static const tg_store_ops_t fake_ops = {
    .name = "fake", .write = fake_write, .reopen = fake_reopen, .close = fake_close};

static void fake_init(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->base.ops = &fake_ops;
    pthread_mutex_init(&f->mu, NULL);
}

static void fake_free(fake_t *f)
{
    for (size_t i = 0; i < f->n_ids; i++)
        free(f->ids[i]);
    free(f->ids);
    pthread_mutex_destroy(&f->mu);
}

static tg_store_t *open_fake(fake_t *f, const char *spool, tg_store_options_t *o)
{
    tg_store_options_t d;
    if (!o) {
        tg_store_options_default(&d);
        o = &d;
    }
    o->spool_path = spool;
    tg_store_t *s = NULL;
    char err[256];
    if (tg_store_open_backend(o, &f->base, &s, err, sizeof err) != 0)
        printf("    open: %s\n", err);
    o->spool_path = NULL;
    return s;
}

/* A fake store in a fresh temp dir (its spool inside), with options o. */
static tg_store_t *open_fake_in(char dir[64], fake_t *f, tg_store_options_t *o)
{
    char spool[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    fake_init(f);
    return open_fake(f, spool, o);
}

/* A fresh temp dir, the spool's path in it and its replay file's. */
static void spool_dir(char dir[64], char spool[128], char replay[160])
{
    tmpdir(dir);
    snprintf(spool, 128, "%s/spool", dir);
    snprintf(replay, 160, "%s.replay", spool);
}

/* A fake store whose database fails until the test sets f->fail to 0,
 * retried every 20 to 50 ms; o holds the test's other options. */
static tg_store_t *open_failing(fake_t *f, const char *spool, tg_store_options_t *o)
{
    fake_init(f);
    atomic_store(&f->fail, 1);
    o->retry_min_ms = 20;
    o->retry_max_ms = 50;
    return open_fake(f, spool, o);
}

/* The end of a fake store's test: everything submitted (n records) is
 * written once the store is flushed, nothing dropped or left in the spool;
 * then the store, the fake and the temp dir go. */
static void finish_fake(tg_store_t *s, fake_t *f, const char *dir, int n)
{
    tg_store_counters_t c;
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters(s, &c);
    CHECK_INT(c.dropped, 0);
    CHECK_INT(c.written, n);
    CHECK_INT(c.spool_bytes, 0);
    CHECK_INT(f->n_ids, n);
    tg_store_close(s);
    fake_free(f);
    rm_rf(dir);
}

/* ---- records ---- */

TEST(record_json_api_form)
{
    tg_record_t *r = tg_record_new();
    tg_record_set_str(&r->id, "7f1c8a8e-0000-4000-8000-000000000001");
    r->created_at_ms = 1762336800123; /* 2025-11-05T10:00:00.123Z */
    tg_record_set_str(&r->provider, "openai");
    tg_record_set_str(&r->model, "gpt-4o-2024-08-06");
    tg_record_set_str(&r->model_requested, "gpt-4o");
    tg_record_set_str(&r->route, "/v1/chat/completions");
    r->status = 200;
    r->latency_ms = 812;
    r->ttft_ms = 240;
    r->usage = (tg_usage_t){1200, 300, 1024, 0, -1};
    r->cost_nusd = 3000000;
    r->cache = TG_RECORD_CACHE_MISS;
    tg_record_set_str(&r->user_id, "u-1");
    tg_record_set_str(&r->session_id, "s-1");
    tg_record_set_str(&r->session_name, "Trip \"planner\"");
    tg_record_set_str(&r->session_path, "/plan/step1");
    tg_record_set_property(r, "Agent-Name", "a1");
    tg_record_set_property(r, "Env", "prod");
    tg_record_set_str(&r->key_name, "openclaw-dev");
    tg_record_set_str(&r->client_ip, "127.0.0.1");
    r->retries = 1;
    r->fallback_index = 0;
    tg_record_set_body(r, false, "{\"model\":\"gpt-4o\"}", 18, -1);
    tg_record_set_body(r, true, "data: [DONE]\n\n", 14, -1);
    tg_buf_t b = {0};
    tg_record_to_json(r, 0, &b);
    CHECK_STR(b.data, "{\"id\":\"7f1c8a8e-0000-4000-8000-000000000001\","
                      "\"created_at\":\"2025-11-05T10:00:00.123Z\",\"provider\":\"openai\","
                      "\"model\":\"gpt-4o-2024-08-06\",\"model_requested\":\"gpt-4o\","
                      "\"route\":\"/v1/chat/completions\",\"status\":200,\"latency_ms\":812,"
                      "\"ttft_ms\":240,\"prompt_tokens\":1200,\"completion_tokens\":300,"
                      "\"cached_tokens\":1024,\"cache_write_tokens\":0,\"reasoning_tokens\":null,"
                      "\"cost\":0.003,\"cache\":\"miss\",\"cache_saved\":null,\"user_id\":\"u-1\","
                      "\"session_id\":\"s-1\","
                      "\"session_name\":\"Trip \\\"planner\\\"\",\"session_path\":\"/plan/step1\","
                      "\"properties\":{\"Agent-Name\":\"a1\",\"Env\":\"prod\"},"
                      "\"key_name\":\"openclaw-dev\",\"client_ip\":\"127.0.0.1\",\"retries\":1,"
                      "\"fallback_index\":0,\"error\":null}");
    /* a single record: JSON bodies embedded, others as strings */
    tg_buf_reset(&b);
    tg_record_to_json(r, TG_RECORD_JSON_BODIES, &b);
    CHECK(strstr(b.data, ",\"request_body\":{\"model\":\"gpt-4o\"},"
                         "\"response_body\":\"data: [DONE]\\n\\n\"}") != NULL);
    tg_buf_free(&b);
    tg_record_free(r);
}

TEST(record_defaults_are_unknown_not_zero)
{
    tg_record_t *r = tg_record_new();
    CHECK(r->id && strlen(r->id) == 36 && r->id[14] == '7' && r->id[8] == '-');
    tg_record_t *r2 = tg_record_new(); /* time-ordered ids */
    r2->created_at_ms = r->created_at_ms;
    CHECK(strncmp(r->id, r2->id, 8) == 0);
    tg_record_free(r2);
    CHECK(r->created_at_ms > 1700000000000);
    tg_buf_t b = {0};
    tg_record_to_json(r, TG_RECORD_JSON_BODIES, &b);
    CHECK(strstr(b.data, "\"latency_ms\":null,\"ttft_ms\":null,\"prompt_tokens\":null,"
                         "\"completion_tokens\":null,\"cached_tokens\":null,"
                         "\"cache_write_tokens\":null,\"reasoning_tokens\":null,"
                         "\"cost\":null,\"cache\":\"none\"") != NULL);
    CHECK(strstr(b.data, "\"properties\":{}") != NULL);
    CHECK(strstr(b.data, "\"request_body\":null,\"response_body\":null}") != NULL);
    tg_buf_free(&b);
    tg_record_free(r);
    tg_record_free(NULL);
}

TEST(record_spool_round_trip)
{
    tg_record_t *r = mkrec(7);
    tg_record_set_str(&r->error, "upstream timeout\nafter 60s");
    r->fallback_index = -1;
    r->cache = TG_RECORD_CACHE_HIT;
    r->cache_saved_nusd = 4321;
    r->usage.reasoning_tokens = 3;
    static const char body[] = "{\"a\":\"\\u0000 nul\"}\0raw nul";
    tg_record_set_body(r, false, body, sizeof body - 1, -1);
    tg_record_set_body(r, true, "plain text", 10, -1);
    tg_buf_t line = {0}, a = {0}, b = {0};
    tg_record_to_json(r, TG_RECORD_JSON_SPOOL, &line);
    CHECK(strchr(line.data, '\n') == NULL); /* one line per record */
    tg_record_t *back = tg_record_from_spool(line.data, line.len);
    CHECK(back != NULL);
    if (back) {
        tg_record_to_json(r, TG_RECORD_JSON_SPOOL, &a);
        tg_record_to_json(back, TG_RECORD_JSON_SPOOL, &b);
        CHECK_STR(b.data, a.data);
        CHECK_INT(back->request_body_len, sizeof body - 1);
        CHECK(memcmp(back->request_body, body, sizeof body - 1) == 0);
        CHECK_INT(back->created_at_ms, r->created_at_ms);
        CHECK_INT(back->cost_nusd, 1000);
        CHECK_INT(back->cache_saved_nusd, 4321);
    }
    CHECK(tg_record_from_spool("{\"id\":\"x\"", 9) == NULL);
    CHECK(tg_record_from_spool("[]", 2) == NULL);
    tg_record_free(back);
    tg_record_free(r);
    tg_buf_free(&line);
    tg_buf_free(&a);
    tg_buf_free(&b);
}

TEST(record_strings_are_valid_utf8)
{
    tg_buf_t b = {0};
    static const char bad[] = "caf\xc3\xa9 \xff\xfe ok \xe2\x82 \x01";
    tg_record_json_str(&b, bad, sizeof bad - 1);
    CHECK_STR(b.data, "\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd ok \xef\xbf\xbd\xef\xbf\xbd"
                      " \\u0001\"");
    tg_buf_free(&b);
    /* a body that is JSON but not UTF-8 is not embedded raw */
    tg_record_t *r = tg_record_new();
    tg_record_set_body(r, true, "\"\xff\"", 3, -1);
    tg_record_to_json(r, TG_RECORD_JSON_BODIES, &b);
    CHECK(strstr(b.data, "\"response_body\":\"\\\"\xef\xbf\xbd\\\"\"") != NULL);
    tg_buf_free(&b);
    tg_record_free(r);
}

/* A response body within the limit is handed over, not copied, and the
 * buffer's spare room counts in the record's size; one over it is cut. */
TEST(record_take_body)
{
    tg_record_t *r = tg_record_new();
    size_t bare = tg_record_size(r);
    tg_buf_t b = {0};
    tg_buf_append(&b, "data: a\n\n", 9);
    const char *held = b.data;
    size_t cap = b.cap;
    tg_record_take_body(r, &b, 9);
    CHECK(r->response_body == held);
    CHECK_INT(r->response_body_len, 9);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    CHECK_INT(tg_record_size(r), bare + cap - 1);
    tg_buf_append(&b, "a\xc3\xa9z", 4);
    tg_record_take_body(r, &b, 2); /* over the limit: cut on a character boundary, copied */
    CHECK_STR(r->response_body, "a");
    CHECK_INT(tg_record_size(r), bare + 1);
    CHECK(b.data != NULL && b.len == 4);
    tg_buf_free(&b);
    tg_record_take_body(r, &b, -1); /* nothing held: no body */
    CHECK(r->response_body == NULL);
    tg_record_free(r);
}

TEST(record_body_limit_and_properties)
{
    tg_record_t *r = tg_record_new();
    tg_record_set_body(r, false, "abcdef", 6, 4);
    CHECK_INT(r->request_body_len, 4);
    CHECK_STR(r->request_body, "abcd");
    /* never cut inside a UTF-8 character: "aé" cut at 2 keeps "a" */
    tg_record_set_body(r, false, "a\xc3\xa9z", 4, 2);
    CHECK_INT(r->request_body_len, 1);
    tg_record_set_body(r, false, "\xe2\x82\xac\xe2\x82\xac", 6, 5);
    CHECK_INT(r->request_body_len, 3);
    tg_record_set_body(r, false, "xyz", 3, 0);
    CHECK(r->request_body != NULL && r->request_body_len == 0);
    tg_record_set_body(r, false, NULL, 0, 10);
    CHECK(r->request_body == NULL);
    /* property names are case-insensitive; a later value replaces */
    tg_record_set_property(r, "Agent-Name", "a1");
    tg_record_set_property(r, "agent-name", "a2");
    tg_record_set_property(r, "Env", NULL);
    tg_record_set_property(r, "", "ignored");
    CHECK_INT(r->n_props, 2);
    CHECK_STR(r->props[0].name, "Agent-Name");
    CHECK_STR(r->props[0].value, "a2");
    CHECK_STR(r->props[1].value, "");
    tg_record_free(r);
}

TEST(record_time_format_and_parse)
{
    tg_buf_t b = {0};
    tg_record_time_format(0, &b);
    CHECK_STR(b.data, "1970-01-01T00:00:00.000Z");
    tg_buf_reset(&b);
    tg_record_time_format(951782400000 - 1, &b); /* leap year edge */
    CHECK_STR(b.data, "2000-02-28T23:59:59.999Z");
    tg_buf_free(&b);
    int64_t ms = 0;
    CHECK_INT(tg_record_time_parse("2025-11-05T10:00:00Z", &ms), 0);
    CHECK_INT(ms, 1762336800000);
    CHECK_INT(tg_record_time_parse("2025-11-05T12:00:00.5+02:00", &ms), 0);
    CHECK_INT(ms, 1762336800500);
    CHECK_INT(tg_record_time_parse("2025-11-05T12:00:00 02:00", &ms), 0); /* '+' decoded */
    CHECK_INT(ms, 1762336800000);
    CHECK_INT(tg_record_time_parse("2025-11-05t05:30:00-04:30", &ms), 0);
    CHECK_INT(ms, 1762336800000);
    CHECK_INT(tg_record_time_parse("2025-11-05", &ms), 0);
    CHECK_INT(ms, 1762300800000);
    CHECK_INT(tg_record_time_parse("2024-02-29T00:00:00Z", &ms), 0);
    CHECK_INT(tg_record_time_parse("1762336800", &ms), 0);
    CHECK_INT(ms, 1762336800000);
    CHECK_INT(tg_record_time_parse("1762336800.25", &ms), 0);
    CHECK_INT(ms, 1762336800250);
    const char *bad[] = {"",
                         "yesterday",
                         "2025-13-01",
                         "2025-02-29",
                         "2025-11-05T25:00:00Z",
                         "2025-11-05T10:00:00+2",
                         "1762336800x",
                         "2025-11-05T10:00Zjunk",
                         "12.",
                         "-5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tg_record_time_parse(bad[i], &ms) == 0)
            tg_test_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
    int64_t y;
    unsigned m, d;
    tg_record_civil_from_days(tg_record_days_from_civil(2026, 11, 30), &y, &m, &d);
    CHECK(y == 2026 && m == 11 && d == 30);
}

/* ---- the queue ---- */

#define QP_THREADS 8
#define QP_EACH    20000

typedef struct {
    tg_queue_t *q;
    int base;
} qp_arg_t;

static void *qp_producer(void *arg)
{
    qp_arg_t *a = arg;
    for (int i = 0; i < QP_EACH; i++) {
        intptr_t v = a->base + i + 1;
        while (!tg_queue_push(a->q, (void *)v))
            sched_yield(); /* full: the test waits; the store would spool */
    }
    return NULL;
}

TEST(queue_mpsc_every_item_once)
{
    tg_queue_t q;
    tg_queue_init(&q, 1000);
    CHECK_INT(tg_queue_capacity(&q), 1024);
    CHECK(tg_queue_pop(&q) == NULL);
    static unsigned char seen[QP_THREADS * QP_EACH + 1];
    memset(seen, 0, sizeof seen);
    pthread_t t[QP_THREADS];
    qp_arg_t args[QP_THREADS];
    for (int i = 0; i < QP_THREADS; i++) {
        args[i] = (qp_arg_t){&q, i * QP_EACH};
        pthread_create(&t[i], NULL, qp_producer, &args[i]);
    }
    int got = 0, dups = 0;
    while (got < QP_THREADS * QP_EACH) {
        void *p = tg_queue_pop(&q);
        if (!p) {
            sched_yield();
            continue;
        }
        intptr_t v = (intptr_t)p;
        if (seen[v]++)
            dups++;
        got++;
    }
    for (int i = 0; i < QP_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(dups, 0);
    CHECK(tg_queue_pop(&q) == NULL);
    CHECK_INT(tg_queue_depth(&q), 0);
    /* full means full */
    for (int i = 0; i < 1024; i++)
        CHECK(tg_queue_push(&q, (void *)1));
    CHECK(!tg_queue_push(&q, (void *)1));
    tg_queue_destroy(&q);
}

/* ---- the store ---- */

TEST(store_sqlite_round_trip_wal)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    for (int i = 0; i < 10; i++) {
        tg_record_t *r = mkrec(i);
        if (i == 3) {
            tg_record_set_str(&r->id, "fixed-id");
            tg_record_set_body(r, false, "{\"q\":1}", 7, -1);
            tg_record_set_body(r, true, "{\"a\":2}", 7, -1);
        }
        tg_store_submit(s, r);
    }
    CHECK_INT(tg_store_flush(s, 20000), 0);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 10);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties"), 10);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), 1);
    CHECK_INT(count_rows(db, "PRAGMA user_version"), 7);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode='wal'"),
              1);
    CHECK_INT(count_rows(db, "PRAGMA page_size"), 8192); /* a new store's pages */
    /* one record, with bodies, through the back-end */
    tg_store_backend_t *be = tg_store_backend(s);
    tg_record_t *r = NULL;
    char err[256];
    CHECK_INT(be->ops->get(be, "fixed-id", &r, err, sizeof err), 0);
    if (r) {
        CHECK_STR(r->request_body, "{\"q\":1}");
        CHECK_STR(r->response_body, "{\"a\":2}");
        CHECK_INT(r->n_props, 1);
        CHECK_STR(r->props[0].value, "agent-0");
        CHECK_INT(r->created_at_ms, 1762300800003);
        CHECK_INT(r->usage.cached_tokens, -1);
        CHECK_INT(r->cost_nusd, 1000);
    }
    tg_record_free(r);
    CHECK_INT(be->ops->get(be, "no-such-id", &r, err, sizeof err), 1);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.written, 10);
    CHECK_INT(c.dropped, 0);
    CHECK_INT(c.queue_depth, 0);
    tg_store_close(s);
    /* records survive a restart; a replayed record is not stored twice */
    s = open_sqlite(dir, NULL);
    tg_record_t *again = mkrec(3);
    tg_record_set_str(&again->id, "fixed-id");
    tg_store_submit(s, again);
    tg_store_submit(s, mkrec(100));
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 11);
    rm_rf(dir);
}

/* A database made with another page size (4 KiB: SQLite's default, and what
 * stores made before 16 KiB pages have; 16 KiB: stores made before 8 KiB
 * pages) keeps it: the page size is chosen once, when the file is new. */
TEST(store_keeps_the_page_size_of_an_existing_database)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    sqlite3 *h;
    CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
    CHECK_INT(sqlite3_exec(h,
                           "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
                           " CREATE TABLE other(x);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(h);
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    for (int i = 0; i < 300; i++)
        tg_store_submit(s, mkrec(i));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "PRAGMA page_size"), 4096);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 300);
    CHECK_INT(
        count_rows(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check='ok'"),
        1);
    rm_rf(dir);
}

/* Body byte k of record i: letters in no pattern LZ4 finds, so that every
 * body is stored raw, at its own size. */
static char raw_letter(size_t k, int i)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull ^ (uint64_t)i * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    x *= 0x94D049BB133111EBull;
    return (char)('a' + (x >> 40) % 26);
}

static void fill_raw(char *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        p[k] = raw_letter(k, 0);
}

/* Records with bodies of every size class (inline in a page, as big as a
 * page, spilling into overflow pages, several pages long), in a new store
 * (8 KiB pages) and in one made with the 16 KiB pages of earlier versions:
 * each body reads back byte for byte, the file passes an integrity check.
 * The bodies are incompressible, so they are stored at these sizes. */
TEST(store_bodies_of_any_size_read_back_in_either_page_size)
{
    static const size_t sizes[] = {1, 100, 4000, 6000, 8100, 8200, 10200, 16300, 20000, 70000};
    enum { N_SIZES = sizeof sizes / sizeof sizes[0] };
    static const int pages[] = {0, 16384}; /* 0: a new store's */
    char *body = malloc(70001);
    for (int p = 0; p < 2 && body; p++) {
        char dir[64], db[128];
        tmpdir(dir);
        snprintf(db, sizeof db, "%s/t.db", dir);
        if (pages[p]) {
            sqlite3 *h;
            char sql[96];
            snprintf(sql, sizeof sql, "PRAGMA page_size=%d; PRAGMA journal_mode=WAL;", pages[p]);
            CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
            CHECK_INT(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
            sqlite3_close(h);
        }
        tg_store_t *s = open_sqlite(dir, NULL);
        CHECK(s != NULL);
        if (!s)
            break;
        for (int i = 0; i < 3 * N_SIZES; i++) {
            tg_record_t *r = mkrec(i);
            char id[32];
            snprintf(id, sizeof id, "body-%d", i);
            tg_record_set_str(&r->id, id);
            size_t n = sizes[i % N_SIZES];
            for (size_t k = 0; k < n; k++)
                body[k] = raw_letter(k, i);
            tg_record_set_body(r, false, "{\"q\":1}", 7, -1);
            tg_record_set_body(r, true, body, n, -1);
            tg_store_submit(s, r);
        }
        CHECK_INT(tg_store_flush(s, 20000), 0);
        tg_store_backend_t *be = tg_store_backend(s);
        for (int i = 0; i < 3 * N_SIZES; i++) {
            char id[32], err[256];
            snprintf(id, sizeof id, "body-%d", i);
            tg_record_t *r = NULL;
            CHECK_INT(be->ops->get(be, id, &r, err, sizeof err), 0);
            size_t n = sizes[i % N_SIZES];
            for (size_t k = 0; k < n; k++)
                body[k] = raw_letter(k, i);
            CHECK(r && r->response_body && r->response_body_len == n &&
                  !memcmp(r->response_body, body, n));
            CHECK(r && r->request_body && !strcmp(r->request_body, "{\"q\":1}"));
            tg_record_free(r);
        }
        tg_store_close(s);
        CHECK_INT(count_rows(db, "PRAGMA page_size"), pages[p] ? pages[p] : 8192);
        CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), 3 * N_SIZES);
        CHECK_INT(count_rows(db, "SELECT sum(length(response_body)) FROM request_bodies"),
                  3 * (1 + 100 + 4000 + 6000 + 8100 + 8200 + 10200 + 16300 + 20000 + 70000));
        CHECK_INT(count_rows(
                      db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check='ok'"),
                  1);
        rm_rf(dir);
    }
    free(body);
}

/* A streamed answer's body and a long request are stored as LZ4 frames,
 * several times smaller, and read back byte for byte; a short body stays
 * as it was (readable in the table as before). */
TEST(store_keeps_long_bodies_as_frames)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    tg_buf_t stream = {0}, req = {0};
    for (int i = 0; i < 50; i++)
        tg_buf_printf(&stream,
                      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\","
                      "\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n",
                      i);
    tg_buf_puts(&req, "{\"messages\":[");
    for (int i = 0; i < 40; i++)
        tg_buf_printf(&req, "%s{\"role\":\"user\",\"content\":\"question %d\"}", i ? "," : "", i);
    tg_buf_puts(&req, "]}");
    tg_record_t *r = mkrec(1);
    tg_record_set_str(&r->id, "long");
    tg_record_set_body(r, false, req.data, req.len, -1);
    tg_record_set_body(r, true, stream.data, stream.len, -1);
    tg_store_submit(s, r);
    r = mkrec(2);
    tg_record_set_str(&r->id, "short");
    tg_record_set_body(r, false, "{\"q\":1}", 7, -1);
    tg_record_set_body(r, true, "data: [DONE]\n\n", 14, -1);
    tg_store_submit(s, r);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_backend_t *be = tg_store_backend(s);
    char err[256];
    r = NULL;
    CHECK_INT(be->ops->get(be, "long", &r, err, sizeof err), 0);
    CHECK(r && r->response_body_len == stream.len &&
          !memcmp(r->response_body, stream.data, stream.len));
    CHECK(r && r->request_body_len == req.len && !memcmp(r->request_body, req.data, req.len));
    tg_record_free(r);
    tg_store_close(s);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM request_bodies WHERE substr(response_body, 1, 4) = "
             "x'04224d18' AND length(response_body) < %zu AND substr(request_body, 1, 4) = "
             "x'04224d18' AND length(request_body) < %zu",
             stream.len / 4, req.len / 2);
    CHECK_INT(count_rows(db, sql), 1);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies WHERE request_body = "
                             "CAST('{\"q\":1}' AS BLOB)"),
              1);
    tg_buf_free(&stream);
    tg_buf_free(&req);
    rm_rf(dir);
}

/* A record for store_rows_get_their_own_properties_and_bodies: its id,
 * time, Agent-Name and bodies all derive from `tag` and i. */
static tg_record_t *tagged_rec(const char *tag, int i, bool bodies)
{
    tg_record_t *r = mkrec(i);
    char b[64];
    snprintf(b, sizeof b, "%s-%d", tag, i);
    tg_record_set_str(&r->id, b);
    tg_record_set_property(r, "Agent-Name", b); /* replaces mkrec's */
    if (bodies) {
        tg_record_set_body(r, false, b, strlen(b), -1);
        tg_record_set_body(r, true, b, strlen(b), -1);
    }
    return r;
}

/* Rows go in sixteen to an INSERT, numbered by the writer: every record's
 * properties and bodies land on its own row, and a replayed record (same id
 * and time) in the middle of a batch adds nothing, not even to a
 * neighbour. */
TEST(store_rows_get_their_own_properties_and_bodies)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    for (int i = 0; i < 100; i++)
        tg_store_submit(s, tagged_rec("old", i, i % 2 == 0));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    int replays = 0, bodies = 50;
    for (int j = 0; j < 300; j++) {
        if (j % 7 == 3) { /* "old-i" again, with other properties and bodies */
            tg_record_t *r = tagged_rec("old", j / 7, true);
            tg_record_set_property(r, "Agent-Name", "replay");
            tg_record_set_body(r, false, "replay", 6, -1);
            tg_record_set_body(r, true, "replay", 6, -1);
            tg_store_submit(s, r);
            replays++;
        } else {
            tg_store_submit(s, tagged_rec("new", 1000 + j, j % 5 != 0));
            bodies += j % 5 != 0;
        }
    }
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 100 + 300 - replays);
    CHECK_INT(count_rows(db, "SELECT count(DISTINCT seq) FROM requests"), 100 + 300 - replays);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties"), 100 + 300 - replays);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties WHERE value = 'replay'"
                             " OR seq NOT IN (SELECT seq FROM requests)"),
              0);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies WHERE request_body = 'replay'"
                             " OR seq NOT IN (SELECT seq FROM requests)"),
              0);
    /* each row's property and bodies are its own id */
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests r JOIN request_properties p"
                             " ON p.seq = r.seq WHERE p.value = r.id"),
              100 + 300 - replays);
    CHECK_INT(count_rows(db,
                         "SELECT count(*) FROM requests r JOIN request_bodies b ON b.seq = r.seq"
                         " WHERE CAST(b.request_body AS TEXT) = r.id"
                         " AND CAST(b.response_body AS TEXT) = r.id"),
              bodies);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), bodies);
    rm_rf(dir);
}

/* A record twice in one batch (the same id and time: a spooled copy and
 * the queued one), even in one multi-row INSERT, makes one row, with the
 * first copy's properties and bodies; the records around it keep theirs. */
TEST(store_a_record_twice_in_one_batch_is_stored_once)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    for (int i = 0; i < 40; i++) {
        tg_store_submit(s, tagged_rec("dup", i, true));
        if (i % 3 == 0) { /* again at once, other properties and bodies */
            tg_record_t *r = tagged_rec("dup", i, true);
            tg_record_set_property(r, "Agent-Name", "second");
            tg_record_set_body(r, false, "second", 6, -1);
            tg_record_set_body(r, true, "second", 6, -1);
            tg_store_submit(s, r);
        }
    }
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 40);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests r JOIN request_properties p"
                             " ON p.seq = r.seq WHERE p.value = r.id"),
              40);
    CHECK_INT(count_rows(db,
                         "SELECT count(*) FROM requests r JOIN request_bodies b ON b.seq = r.seq"
                         " WHERE CAST(b.request_body AS TEXT) = r.id"
                         " AND CAST(b.response_body AS TEXT) = r.id"),
              40);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), 40);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties"), 40);
    rm_rf(dir);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* The WAL is copied into the database file once it passes 64 MiB (by the
 * checkpointer thread, while the writer goes on) and does not grow without
 * bound: ~100 MB of records, 16 KiB of bodies each, written while the store
 * stays open. */
TEST(store_checkpoints_while_open)
{
    char dir[64], db[128], wal[160];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    snprintf(wal, sizeof wal, "%s-wal", db);
    static char body[8192];
    fill_raw(body, sizeof body); /* stored at this size, not compressed */
    for (int i = 0; i < 6000; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, false, body, sizeof body, -1);
        tg_record_set_body(r, true, body, sizeof body, -1);
        tg_store_submit(s, r);
        if (i % 100 == 99) /* under the queue's 4 MiB: this test is not about the spool */
            CHECK_INT(tg_store_flush(s, 60000), 0);
    }
    CHECK_INT(tg_store_flush(s, 60000), 0);
    int64_t t0 = tg_mono_ms();
    while (file_size(db) < (32 << 20) && tg_mono_ms() - t0 < 20000)
        sleep_ms(50);
    CHECK(file_size(db) >= (32 << 20));
    CHECK(file_size(wal) <= (int64_t)4 * (64 << 20) + (8 << 20));
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.written, 6000);
    CHECK_INT(c.spooled, 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), 6000);
    rm_rf(dir);
}

TEST(store_batches_transactions)
{
    char dir[64], spool[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    fake_t f;
    fake_init(&f);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_max = 100;
    o.batch_ms = 50;
    tg_store_t *s = open_fake(&f, spool, &o);
    for (int i = 0; i < 1000; i++)
        tg_store_submit(s, mkrec(i));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    CHECK_INT(f.n_ids, 1000);
    CHECK(f.max_batch <= 100);
    CHECK(f.writes >= 10 && f.writes <= 40);
    /* a trickle waits at most batch_ms, in one transaction */
    int before = f.writes;
    int64_t t0 = tg_mono_ms();
    tg_store_submit(s, mkrec(5000));
    tg_store_submit(s, mkrec(5001));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    CHECK(tg_mono_ms() - t0 < 1000);
    CHECK_INT(f.writes - before, 1);
    tg_store_close(s);
    CHECK_INT(f.n_ids, 1002);
    fake_free(&f);
    rm_rf(dir);
}

#define MT_THREADS 8
#define MT_EACH    125

static void *mt_submit(void *arg)
{
    tg_store_t *s = arg;
    for (int i = 0; i < MT_EACH; i++)
        tg_store_submit(s, mkrec(i));
    return NULL;
}

TEST(store_eight_threads_exactly_once)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_capacity = 64; /* small: some records take the spool path too */
    tg_store_t *s = open_sqlite(dir, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    pthread_t t[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++)
        pthread_create(&t[i], NULL, mt_submit, s);
    for (int i = 0; i < MT_THREADS; i++)
        pthread_join(t[i], NULL);
    tg_store_counters_t c;
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), MT_THREADS * MT_EACH);
    CHECK_INT(count_rows(db, "SELECT count(DISTINCT id) FROM requests"), MT_THREADS * MT_EACH);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties"), MT_THREADS * MT_EACH);
    (void)c;
    rm_rf(dir);
}

TEST(store_close_writes_everything)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    char body[2048];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 3000; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, false, body, sizeof body, -1);
        tg_store_submit(s, r);
    }
    tg_store_close(s); /* no flush first */
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 3000);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies"), 3000);
    char spool[160];
    snprintf(spool, sizeof spool, "%s/t.db-spool.tgj", dir);
    CHECK(access(spool, F_OK) != 0);
    tg_store_close(NULL);
    tg_store_submit(NULL, mkrec(1)); /* logging off: freed, not leaked */
    rm_rf(dir);
}

TEST(store_queue_full_goes_to_spool_not_dropped)
{
    char dir[64], spool[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    fake_t f;
    fake_init(&f);
    f.delay_ms = 20; /* a slow database */
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_capacity = 4;
    o.batch_max = 4;
    tg_store_t *s = open_fake(&f, spool, &o);
    int64_t t0 = tg_mono_ms();
    for (int i = 0; i < 500; i++)
        tg_store_submit(s, mkrec(i));
    int64_t took = tg_mono_ms() - t0;
    if (took >= 2000)
        printf("    500 submits took %lld ms\n", (long long)took);
    CHECK(took < 2000); /* waiting for the database would take >= 125 x 20 ms */
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK(c.spooled > 400);
    finish_fake(s, &f, dir, 500);
}

/* The queue is bounded in bytes too: records with big bodies that would fit
 * its record count take the spool once the bytes are reached, and are all
 * written in the end. */
TEST(store_queue_byte_bound_spools_big_records)
{
    char dir[64];
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_max_bytes = 64 << 10; /* eight 8 KiB bodies, while 4096 records would fit */
    tg_store_t *s = open_fake_in(dir, &f, &o);
    f.delay_ms = 50; /* a slow database: the queue only fills */
    static char body[8192];
    fill_raw(body, sizeof body); /* stored at this size, not compressed */
    for (int i = 0; i < 64; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, false, body, sizeof body, -1);
        tg_store_submit(s, r);
    }
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    /* at most ~8 per batch the writer took meanwhile were queued */
    CHECK(c.spooled >= 32);
    CHECK(c.queue_depth <= 32);
    finish_fake(s, &f, dir, 64);
}

/* Big records wake the writer once half the queue's bytes are taken, not
 * only a full batch of records: they are written long before batch_ms, and
 * none spills into the spool while the writer sleeps. */
TEST(store_queue_half_full_in_bytes_wakes_the_writer)
{
    char dir[64];
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_max_bytes = 1 << 20;
    o.batch_ms = 60000; /* a trickle would wait a minute */
    tg_store_t *s = open_fake_in(dir, &f, &o);
    static char body[65536];
    fill_raw(body, sizeof body); /* stored at this size, not compressed */
    /* 15 records: however many the writer took as it started (k < 8), the
     * 15 - k >= 8 still queued pass 512 KiB; 15 fit in the 1 MiB bound */
    for (int i = 0; i < 15; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, true, body, sizeof body, -1);
        tg_store_submit(s, r);
    }
    tg_store_counters_t c;
    int64_t t0 = tg_mono_ms();
    do {
        sleep_ms(10);
        tg_store_counters(s, &c);
    } while (c.written < 8 && tg_mono_ms() - t0 < 10000);
    CHECK(c.written >= 8);
    CHECK_INT(c.spooled, 0);
    finish_fake(s, &f, dir, 15);
}

/* Several worker threads hand records over at once: each is written once,
 * and each thread's records reach the database in the order it made them
 * (while the queue has room; a record that has to take the spool is
 * written after the queue's). */
#define HO_THREADS 6
#define HO_EACH    500

static tg_store_t *ho_store; /* the store the threads below submit to */

static void *ho_submit(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < HO_EACH; i++) {
        tg_record_t *r = mkrec(i);
        char id[32];
        snprintf(id, sizeof id, "t%d-%05d", t, i);
        tg_record_set_str(&r->id, id);
        tg_store_submit(ho_store, r);
        if (i % 64 == 0)
            sched_yield(); /* interleave the threads */
    }
    return NULL;
}

TEST(store_handoff_many_producers_once_and_in_order)
{
    char dir[64];
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_max = 64; /* many batches, each with several threads' records */
    o.batch_ms = 5;
    tg_store_t *s = ho_store = open_fake_in(dir, &f, &o);
    pthread_t t[HO_THREADS];
    for (int i = 0; i < HO_THREADS; i++)
        pthread_create(&t[i], NULL, ho_submit, (void *)(intptr_t)i);
    for (int i = 0; i < HO_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.spooled, 0); /* the queue had room: the order below is the queue's */
    CHECK_INT(c.written, HO_THREADS * HO_EACH);
    CHECK_INT(f.n_ids, HO_THREADS * HO_EACH); /* the fake counts an id once */
    CHECK(f.writes > 10);
    int next[HO_THREADS] = {0}, bad = 0;
    for (size_t k = 0; k < f.n_ids; k++) {
        int th = -1, i = -1;
        if (sscanf(f.ids[k], "t%d-%d", &th, &i) != 2 || th < 0 || th >= HO_THREADS ||
            i != next[th]++)
            bad++;
    }
    CHECK_INT(bad, 0);
    for (int i = 0; i < HO_THREADS; i++)
        CHECK_INT(next[i], HO_EACH);
    tg_store_close(s);
    fake_free(&f);
    rm_rf(dir);
}

TEST(store_failing_database_spools_then_replays)
{
    char dir[64], spool[128], replay[160];
    spool_dir(dir, spool, replay);
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_ms = 10;
    tg_store_t *s = open_failing(&f, spool, &o);
    for (int i = 0; i < 200; i++)
        tg_store_submit(s, mkrec(i));
    CHECK(wait_spooled(s));
    CHECK_INT(tg_store_flush(s, 100), -1); /* cannot be written yet */
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK(c.failing);
    CHECK(c.spool_bytes > 0);
    CHECK_INT(c.written, 0);
    CHECK_INT(c.dropped, 0);
    CHECK_INT(c.queue_depth, 0); /* on disk, not in memory */
    CHECK(c.write_errors >= 1);
    atomic_store(&f.fail, 0); /* the database is back */
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters(s, &c);
    CHECK(!c.failing);
    CHECK_INT(c.written, 200);
    CHECK_INT(c.dropped, 0);
    CHECK_INT(c.spool_bytes, 0);
    CHECK_INT(f.n_ids, 200);
    tg_store_close(s);
    CHECK(access(spool, F_OK) != 0);
    fake_free(&f);
    rm_rf(dir);
}

TEST(store_close_while_failing_keeps_the_spool)
{
    char dir[64], spool[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    fake_t f;
    fake_init(&f);
    atomic_store(&f.fail, 1);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.close_timeout_ms = 200;
    o.retry_min_ms = 20;
    tg_store_t *s = open_fake(&f, spool, &o);
    for (int i = 0; i < 10; i++)
        tg_store_submit(s, mkrec(i));
    tg_store_close(s);
    CHECK_INT(f.n_ids, 0);
    char replay[160];
    snprintf(replay, sizeof replay, "%s.replay", spool);
    CHECK(access(spool, F_OK) == 0 || access(replay, F_OK) == 0);
    /* next start: replayed, nothing lost, nothing twice */
    atomic_store(&f.fail, 0);
    s = open_fake(&f, spool, NULL);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    CHECK_INT(f.n_ids, 10);
    tg_store_close(s);
    fake_free(&f);
    rm_rf(dir);
}

/* An older version's JSON-lines spool left by a crash (the frames' torn
 * tail: store_spool_torn_last_frame_cut_at_start). */
TEST(store_replays_legacy_spool_left_by_a_crash)
{
    char dir[64], db[128], spool[160];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    snprintf(spool, sizeof spool, "%s/t.db-spool.jsonl", dir);
    /* one record already stored, then a crash left a spool holding it again,
     * two more, and half a line */
    tg_store_t *s = open_sqlite(dir, NULL);
    tg_store_submit(s, mkrec(1));
    tg_store_close(s);
    tg_buf_t b = {0};
    for (int i = 1; i <= 3; i++) {
        tg_record_t *r = mkrec(i);
        if (i == 1) { /* the same record as the stored one */
            s = NULL;
        }
        tg_record_to_json(r, TG_RECORD_JSON_SPOOL, &b);
        tg_buf_append(&b, "\n", 1);
        tg_record_free(r);
    }
    tg_buf_puts(&b, "{\"id\":\"half-writ");
    /* mkrec gives a fresh id each time: make record 1's line carry the stored id */
    char stored[64] = "";
    {
        sqlite3 *h;
        sqlite3_open(db, &h);
        sqlite3_stmt *st;
        sqlite3_prepare_v2(h, "SELECT id FROM requests", -1, &st, NULL);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(stored, sizeof stored, "%s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    char *first_id = strstr(b.data, "\"id\":\"") + 6;
    memcpy(first_id, stored, 36);
    FILE *fp = fopen(spool, "w");
    fwrite(b.data, 1, b.len, fp);
    fclose(fp);
    tg_buf_free(&b);
    s = open_sqlite(dir, NULL);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 3);
    CHECK_INT(count_rows(db, "SELECT count(DISTINCT id) FROM requests"), 3);
    CHECK(access(spool, F_OK) != 0);
    rm_rf(dir);
}

TEST(store_locked_database_spools_then_replays)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.retry_min_ms = 20;
    o.retry_max_ms = 100;
    tg_store_t *s = open_sqlite(dir, &o);
    CHECK(s != NULL);
    if (!s)
        return;
    /* another process holds the write lock (SQLITE_BUSY) */
    sqlite3 *h;
    sqlite3_open(db, &h);
    CHECK_INT(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 100; i++)
        tg_store_submit(s, mkrec(i));
    CHECK(wait_spooled(s));
    CHECK_INT(tg_store_flush(s, 100), -1);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK(c.failing);
    CHECK(c.spool_bytes > 0);
    CHECK_INT(c.dropped, 0);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters(s, &c);
    CHECK_INT(c.written, 100);
    CHECK_INT(c.dropped, 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 100);
    rm_rf(dir);
}

/* The read-only scenario, as an ordinary user: root ignores file modes, so
 * under root it runs in a child that drops to nobody. Returns failures. */
static int readonly_scenario(const char *dir)
{
    int fails = 0;
#define RO_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("    %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c);                              \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)
    char db[128];
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_t *s = open_sqlite(dir, NULL);
    RO_CHECK(s != NULL);
    if (!s)
        return fails;
    tg_store_submit(s, mkrec(0));
    tg_store_close(s);
    RO_CHECK(chmod(db, 0444) == 0);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.retry_min_ms = 20;
    o.retry_max_ms = 100;
    s = open_sqlite(dir, &o); /* opens: records wait in the spool */
    RO_CHECK(s != NULL);
    if (!s)
        return fails;
    for (int i = 1; i <= 50; i++)
        tg_store_submit(s, mkrec(i));
    RO_CHECK(wait_spooled(s));
    RO_CHECK(tg_store_flush(s, 100) == -1);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    RO_CHECK(c.failing && c.spool_bytes > 0 && c.dropped == 0);
    RO_CHECK(chmod(db, 0644) == 0); /* writable again */
    RO_CHECK(tg_store_flush(s, 20000) == 0);
    tg_store_counters(s, &c);
    RO_CHECK(c.written == 50 && c.dropped == 0 && c.spool_bytes == 0);
    tg_store_close(s);
    RO_CHECK(count_rows(db, "SELECT count(*) FROM requests") == 51);
    return fails;
}

TEST(store_readonly_database_spools_then_replays)
{
    char dir[64];
    tmpdir(dir);
    if (geteuid() != 0) {
        CHECK_INT(readonly_scenario(dir), 0);
    } else {
        const uid_t nobody = 65534;
        CHECK_INT(chown(dir, nobody, nobody), 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (setgid(nobody) != 0 || setuid(nobody) != 0)
                _exit(99);
            int fails = readonly_scenario(dir);
            fflush(stdout);
            _exit(fails > 98 ? 98 : fails);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st));
        CHECK_INT(WEXITSTATUS(st), 0);
    }
    rm_rf(dir);
}

TEST(store_open_errors)
{
    tg_store_options_t o;
    tg_store_options_default(&o);
    tg_store_t *s = NULL;
    char err[256];
    o.url = "mysql://x";
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), -1);
    CHECK(strstr(err, "sqlite:PATH") != NULL);
    o.url = "sqlite:";
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), -1);
    o.url = "sqlite:/nonexistent-dir/x/t.db";
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent-dir/x/t.db") != NULL);
    CHECK(s == NULL);
    /* a database from a newer tollgate is refused, not damaged */
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    sqlite3 *h;
    sqlite3_open(db, &h);
    sqlite3_exec(h, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(h);
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", db);
    o.url = url;
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), -1);
    CHECK(strstr(err, "newer") != NULL);
    rm_rf(dir);
}

/* ---- runtime rate-limit rules ---- */

/* A new store in a new directory; db is its file. NULL (a failed check) if
 * it does not open. */
static tg_rl_rule_t mkrule(const char *id, const char *prop, const char *value, int64_t quota,
                           int64_t window_s, tg_rl_unit_t unit)
{
    tg_rl_rule_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.property, sizeof r.property, "%s", prop);
    snprintf(r.value, sizeof r.value, "%s", value);
    r.policy.quota = quota;
    r.policy.window_s = window_s;
    r.policy.unit = unit;
    tg_rl_rule_normalize(&r);
    return r;
}

/* The rules stored, compared byte for byte with `want` (as they were given). */
static void check_rules(tg_store_t *s, const tg_rl_rule_t *want, size_t n_want)
{
    tg_rl_rule_t *got = NULL;
    size_t n = 0;
    char err[256] = "";
    CHECK_INT(tg_store_rules_load(s, &got, &n, err, sizeof err), 0);
    CHECK_INT(n, n_want);
    for (size_t i = 0; i < n && i < n_want; i++) {
        CHECK_STR(got[i].id, want[i].id);
        if (memcmp(&got[i], &want[i], sizeof got[i]) != 0)
            tg_test_fail(__FILE__, __LINE__, "rule %s not rebuilt exactly", want[i].id);
    }
    free(got);
}

TEST(store_rules_save_delete_load_survive_reopen)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    char err[256] = "";
    check_rules(s, NULL, 0); /* none yet */
    tg_rl_rule_t r[4] = {
        mkrule("9f0c-first", "Agent-Name", "a1", 100, 60, TG_RL_UNIT_REQUEST),
        mkrule("0a1b-second", "team", "red \"quoted\" ünïcode", 5, 3600, TG_RL_UNIT_CENTS),
        mkrule("zz-third", "Tier", "free", 1000000, 86400, TG_RL_UNIT_TOKEN),
        mkrule("ff-fourth", "x.y_z", "v", 1, 1, TG_RL_UNIT_REQUEST),
    };
    for (int i = 0; i < 4; i++)
        CHECK_INT(tg_store_rule_save(s, &r[i], err, sizeof err), 0);
    CHECK_INT(tg_store_rule_save(s, &r[1], err, sizeof err), -1); /* the id is taken */
    CHECK(err[0] != 0);
    check_rules(s, r, 4); /* in the order saved, not by id */
    CHECK_INT(tg_store_rule_delete(s, "zz-third", err, sizeof err), 0);
    CHECK_INT(tg_store_rule_delete(s, "zz-third", err, sizeof err), 1);
    CHECK_INT(tg_store_rule_delete(s, "never-there", err, sizeof err), 1);
    r[2] = r[3];
    check_rules(s, r, 3);
    /* committed at once, not with the records' next batch */
    CHECK_INT(count_rows(db, "SELECT count(*) FROM rate_limit_rules"), 3);
    tg_store_close(s);

    s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    check_rules(s, r, 3);
    tg_rl_rule_t later = mkrule("later", "Agent-Name", "a2", 7, 30, TG_RL_UNIT_REQUEST);
    CHECK_INT(tg_store_rule_save(s, &later, err, sizeof err), 0);
    r[3] = later;
    check_rules(s, r, 4);
    tg_store_close(s);
    rm_rf(dir);
}

TEST(store_rules_schema_upgrade_from_version_1)
{
    /* a version-1 database with a record in it: version 2 added the rules
     * table, version 3 made the user and session indexes partial, version 4
     * added the webhook outbox, version 5 the budgets and keys tables,
     * version 6 made the status index partial and version 7 added
     * cache_saved_nusd (and to the time index), so a current database
     * without those is exactly version 1 */
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    tg_store_submit(s, mkrec(1));
    tg_store_close(s);
    sqlite3 *h;
    CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
    CHECK_INT(sqlite3_exec(h,
                           "DROP TABLE rate_limit_rules;"
                           "DROP TABLE webhook_outbox;"
                           "DROP TABLE budgets;"
                           "DROP TABLE api_keys;"
                           "DROP INDEX requests_user;"
                           "CREATE INDEX requests_user ON requests(user_id, created_at);"
                           "DROP INDEX requests_session;"
                           "CREATE INDEX requests_session ON requests(session_id, created_at);"
                           "DROP INDEX requests_status;"
                           "CREATE INDEX requests_status ON requests(status, created_at);"
                           "DROP INDEX requests_time;"
                           "ALTER TABLE requests DROP COLUMN cache_saved_nusd;"
                           "CREATE INDEX requests_time ON requests(created_at, seq, model,"
                           " provider, user_id, status, has_error, cache, prompt_tokens,"
                           " completion_tokens, cached_tokens, cache_write_tokens,"
                           " reasoning_tokens, cost_nusd, latency_ms, ttft_ms);"
                           "PRAGMA user_version=1",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(h);
    CHECK_INT(count_rows(db, "PRAGMA user_version"), 1);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name='rate_limit_rules'"),
              0);

    s = open_sqlite(dir, NULL); /* upgrades */
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(count_rows(db, "PRAGMA user_version"), 7);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM pragma_table_info('requests')"
                             " WHERE name = 'cache_saved_nusd'"),
              1);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name IN"
                             " ('budgets', 'api_keys')"),
              2);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 1); /* kept */
    CHECK_INT(count_rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_status'"
                             " AND sql LIKE '%WHERE status >= 400'"),
              1);
    /* an error filter, as sqlite_read.c words it, searches the partial
     * index; a filter that takes lower statuses reads requests_time */
    CHECK(plan_uses(db,
                    "SELECT count(*) FROM requests r WHERE 1 AND r.status >= 400"
                    " AND (0 OR r.status BETWEEN 500 AND 599)",
                    "requests_status (status>?)"));
    CHECK(!plan_uses(db,
                     "SELECT count(*) FROM requests r WHERE (0 OR r.status BETWEEN 200 AND 299)",
                     "requests_status"));
    CHECK_INT(count_rows(db,
                         "SELECT count(*) FROM sqlite_master WHERE name IN"
                         " ('requests_user', 'requests_session') AND sql LIKE '%WHERE%NOT NULL'"),
              2);
    /* a filter on the column still finds the partial index */
    CHECK(plan_uses(db, "SELECT seq FROM requests WHERE user_id = ?1 ORDER BY created_at DESC",
                    "requests_user"));
    CHECK(plan_uses(db, "SELECT count(*) FROM requests WHERE session_id IN ('a', 'b')",
                    "requests_session"));
    check_rules(s, NULL, 0);
    char err[256] = "";
    tg_rl_rule_t r = mkrule("after-upgrade", "Agent-Name", "a1", 3, 60, TG_RL_UNIT_REQUEST);
    CHECK_INT(tg_store_rule_save(s, &r, err, sizeof err), 0);
    tg_store_submit(s, mkrec(2));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 2);
    s = open_sqlite(dir, NULL); /* already current: nothing to do */
    check_rules(s, &r, 1);
    tg_store_close(s);
    rm_rf(dir);
}

typedef struct {
    tg_store_t *s;
    atomic_bool stop;
    int submitted;
} busy_writer_t;

static void *submit_records(void *arg)
{
    busy_writer_t *w = arg;
    while (!atomic_load(&w->stop)) {
        for (int i = 0; i < 50; i++)
            tg_store_submit(w->s, mkrec(w->submitted++));
        sleep_ms(2);
    }
    return NULL;
}

/* Rule changes from an API thread while the writer thread commits batch
 * after batch of records: they take turns, so neither waits the other out
 * into a failure (left to SQLite's polling busy handler, a busy writer
 * starved the rule changes, and they it). */
TEST(store_rules_beside_a_busy_writer)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    busy_writer_t w = {.s = s};
    pthread_t t;
    pthread_create(&t, NULL, submit_records, &w);
    char err[256] = "";
    int failures = 0;
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof id, "rule-%d", i);
        tg_rl_rule_t r = mkrule(id, "Agent-Name", id, 10, 60, TG_RL_UNIT_REQUEST);
        int64_t t0 = tg_mono_ms();
        if (tg_store_rule_save(s, &r, err, sizeof err) != 0) {
            printf("    save %s: %s (%lld ms)\n", id, err, (long long)(tg_mono_ms() - t0));
            failures++;
        }
        if (i % 2 && tg_store_rule_delete(s, id, err, sizeof err) != 0) {
            printf("    delete %s: %s\n", id, err);
            failures++;
        }
        sleep_ms(2); /* spread over many of the writer's batches */
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    CHECK_INT(failures, 0);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.written, w.submitted);
    CHECK_INT(c.dropped, 0);
    CHECK_INT(c.write_errors, 0); /* no batch had to wait for a rule into the spool */
    tg_rl_rule_t *got = NULL;
    size_t n = 0;
    CHECK_INT(tg_store_rules_load(s, &got, &n, err, sizeof err), 0);
    CHECK_INT(n, 50);
    if (n == 50) {
        CHECK_STR(got[0].id, "rule-0");
        CHECK_STR(got[49].id, "rule-98");
    }
    free(got);
    tg_store_close(s);
    rm_rf(dir);
}

/* Another process holds the write lock: the save fails after a bounded wait
 * (the API then answers 503) and works again once the lock is gone. */
TEST(store_rules_locked_database_fails_then_recovers)
{
    char dir[64], db[128];
    tg_store_t *s = fresh_sqlite(dir, db);
    if (!s)
        return;
    char err[256] = "";
    tg_rl_rule_t a = mkrule("a", "Agent-Name", "a1", 3, 60, TG_RL_UNIT_REQUEST);
    tg_rl_rule_t b = mkrule("b", "Agent-Name", "a2", 3, 60, TG_RL_UNIT_REQUEST);
    CHECK_INT(tg_store_rule_save(s, &a, err, sizeof err), 0);
    sqlite3 *h;
    sqlite3_open(db, &h);
    CHECK_INT(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    int64_t t0 = tg_mono_ms();
    CHECK_INT(tg_store_rule_save(s, &b, err, sizeof err), -1);
    CHECK(strstr(err, "locked") != NULL);
    CHECK_INT(tg_store_rule_delete(s, "a", err, sizeof err), -1);
    CHECK(tg_mono_ms() - t0 < 10000);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK_INT(tg_store_rule_save(s, &b, err, sizeof err), 0);
    tg_rl_rule_t want[2] = {a, b};
    check_rules(s, want, 2);
    tg_store_close(s);
    rm_rf(dir);
}

TEST(store_rules_need_a_store_that_keeps_them)
{
    char err[256] = "";
    tg_rl_rule_t r = mkrule("a", "Agent-Name", "a1", 3, 60, TG_RL_UNIT_REQUEST), *got = NULL;
    size_t n = 7;
    CHECK_INT(tg_store_rule_save(NULL, &r, err, sizeof err), -1);
    CHECK(strstr(err, "logging is off") != NULL);
    CHECK_INT(tg_store_rules_load(NULL, &got, &n, err, sizeof err), -1);
    CHECK_INT(n, 0);
    /* a back-end without the rule operations (the fake) */
    char dir[64], spool[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    fake_t f;
    fake_init(&f);
    tg_store_t *s = open_fake(&f, spool, NULL);
    CHECK(s != NULL);
    CHECK_INT(tg_store_rule_save(s, &r, err, sizeof err), -1);
    CHECK(strstr(err, "fake") != NULL);
    CHECK_INT(tg_store_rule_delete(s, "a", err, sizeof err), -1);
    CHECK_INT(tg_store_rules_load(s, &got, &n, err, sizeof err), -1);
    free(got);
    tg_store_close(s);
    fake_free(&f);
    rm_rf(dir);
}

/* ---- the crash journal (store/journal.h) ---- */

TEST(journal_crc32c_known_answer)
{
    CHECK_INT(tg_crc32c(0, "123456789", 9), 0xe3069283u);
    /* chained in pieces, unaligned: the same */
    CHECK_INT(tg_crc32c(tg_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
    CHECK_INT(tg_crc32c(0, "", 0), 0);
}

/* Three frames, then the start of a fourth. */
static void three_and_a_half(tg_buf_t *b, size_t *whole, size_t *fourth)
{
    for (int i = 0; i < 3; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, true, "{\"ok\":true}", 11, -1);
        tg_journal_encode(r, b);
        tg_record_free(r);
    }
    *whole = b->len;
    tg_record_t *r = mkrec(3);
    tg_journal_encode(r, b);
    tg_record_free(r);
    *fourth = b->len - *whole;
}

TEST(journal_binary_form_keeps_every_field)
{
    tg_record_t *r = mkrec(7);
    tg_record_set_str(&r->id, "req-1");
    tg_record_set_str(&r->model_requested, "fast");
    tg_record_set_str(&r->user_id, "u1");
    tg_record_set_str(&r->session_id, "s1");
    tg_record_set_str(&r->session_name, "");
    tg_record_set_str(&r->session_path, "/a/b");
    tg_record_set_str(&r->key_name, "k");
    tg_record_set_str(&r->client_ip, "::1");
    tg_record_set_str(&r->error, "boom");
    tg_record_set_property(r, "Env", "prod");
    r->ttft_ms = 12;
    r->usage = (tg_usage_t){1, 2, 3, 4, 5};
    r->cost_nusd = 123456789012;
    r->cache = TG_RECORD_CACHE_HIT;
    r->cache_saved_nusd = 98765;
    r->retries = 2;
    r->fallback_index = 1;
    static const char body[] = "a\0b\xff\n\"c"; /* NUL, a byte that is not UTF-8 */
    tg_record_set_body(r, false, body, sizeof body - 1, -1);
    tg_buf_t a = {0}, b = {0};
    tg_record_pack(r, &a);
    tg_record_t *back = tg_record_unpack(a.data, a.len);
    CHECK(back != NULL);
    if (back) {
        tg_record_pack(back, &b);
        CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len)); /* nothing lost */
        CHECK_STR(back->session_name, "");
        CHECK(back->provider != NULL && back->response_body == NULL);
        CHECK_INT(back->request_body_len, sizeof body - 1);
        CHECK(!memcmp(back->request_body, body, sizeof body - 1));
        CHECK_INT(back->usage.reasoning_tokens, 5);
        CHECK_INT(back->cost_nusd, 123456789012);
        CHECK_INT(back->cache_saved_nusd, 98765);
        CHECK_INT(back->n_props, 2);
    }
    tg_record_free(back);
    /* not exactly one record: refused */
    for (size_t cut = 0; cut < a.len; cut++)
        CHECK(tg_record_unpack(a.data, cut) == NULL);
    tg_buf_append(&a, "x", 1);
    CHECK(tg_record_unpack(a.data, a.len) == NULL);
    tg_buf_free(&a);
    tg_buf_free(&b);
    tg_record_free(r);
}

TEST(journal_frames_round_trip)
{
    tg_buf_t b = {0};
    size_t whole, fourth;
    three_and_a_half(&b, &whole, &fourth);
    size_t at = 0;
    int n = 0;
    while (at < b.len) {
        tg_record_t *r;
        size_t used;
        CHECK_INT(tg_journal_decode(b.data + at, b.len - at, &used, &r), TG_JOURNAL_OK);
        if (!r)
            break;
        CHECK_INT(r->created_at_ms, 1762300800000 + n);
        CHECK_INT(r->status, 200);
        CHECK_STR(r->route, "/v1/chat/completions");
        if (n < 3)
            CHECK(r->response_body && !memcmp(r->response_body, "{\"ok\":true}", 11));
        tg_record_free(r);
        at += used;
        n++;
    }
    CHECK_INT(n, 4);
    CHECK_INT(at, b.len);
    tg_buf_free(&b);
}

TEST(journal_torn_or_damaged_tail_is_never_a_record)
{
    tg_buf_t b = {0};
    size_t whole, fourth;
    three_and_a_half(&b, &whole, &fourth);
    const char *last = b.data + whole;
    /* every cut of the last frame: torn, never a record */
    for (size_t cut = 0; cut < fourth; cut++) {
        tg_record_t *r = NULL;
        size_t used = 0;
        int rc = tg_journal_decode(last, cut, &used, &r);
        CHECK(rc == TG_JOURNAL_TORN && r == NULL);
    }
    /* a flipped bit anywhere in it: not a frame */
    char *copy = malloc(fourth);
    for (size_t i = 0; i < fourth; i++) {
        memcpy(copy, last, fourth);
        copy[i] ^= 0x10;
        tg_record_t *r = NULL;
        size_t used = 0;
        int rc = tg_journal_decode(copy, fourth, &used, &r);
        CHECK(rc != TG_JOURNAL_OK && r == NULL);
    }
    free(copy);
    tg_buf_free(&b);
}

/* Journal files (*.tgj) in the store's journal directory, and their bytes. */
static int journal_files(const char *dir, int64_t *bytes)
{
    char jd[160];
    snprintf(jd, sizeof jd, "%s/t.db-journal.d", dir);
    DIR *d = opendir(jd);
    int n = 0;
    *bytes = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".tgj"))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", jd, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0) {
            *bytes += st.st_size;
            CHECK_INT(st.st_mode & 0777, 0600);
        }
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* A second start of the SQLite store in dir finds nothing more to replay:
 * db still holds `rows` records. */
static void second_start_adds_nothing(const char *dir, const char *db, int rows)
{
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), rows);
}

/* A child that stores 10 records, journals 5 more the writer has not
 * committed (batch_ms is a minute), and is killed with SIGKILL. */
static void killed_child(const char *dir)
{
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_ms = 60000;
    tg_store_t *s = open_sqlite(dir, &o);
    if (!s)
        _exit(2);
    tg_journal_t *j = tg_journal_open(s, 0);
    if (!j)
        _exit(3);
    for (int i = 0; i < 10; i++)
        tg_journal_submit(s, j, mkrec(i));
    tg_journal_write(j);
    if (tg_store_flush(s, 20000) != 0)
        _exit(4);
    for (int i = 10; i < 15; i++)
        tg_journal_submit(s, j, mkrec(i));
    tg_journal_write(j); /* the end of the loop turn: then the answers go out */
    kill(getpid(), SIGKILL);
    _exit(5);
}

TEST(journal_kill9_loses_nothing_and_replays_exactly_once)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        killed_child(dir);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 10);
    int64_t bytes;
    CHECK_INT(journal_files(dir, &bytes), 1); /* all 15, the first 10 stored already */
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK(s != NULL);
    CHECK_INT(journal_files(dir, &bytes), 0); /* moved to the spool at start */
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 15);
    CHECK_INT(count_rows(db, "SELECT count(DISTINCT id) FROM requests"), 15);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_properties"), 15);
    second_start_adds_nothing(dir, db, 15);
    rm_rf(dir);
}

TEST(journal_left_by_a_crash_with_a_torn_tail)
{
    char dir[64], db[128], jd[128], seg[192];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    snprintf(jd, sizeof jd, "%s/t.db-journal.d", dir);
    snprintf(seg, sizeof seg, "%s/old-w0-0.tgj", jd);
    CHECK_INT(mkdir(jd, 0700), 0);
    tg_buf_t b = {0};
    size_t whole, fourth;
    three_and_a_half(&b, &whole, &fourth);
    FILE *fp = fopen(seg, "w");
    fwrite(b.data, 1, whole + fourth / 2, fp);
    fclose(fp);
    tg_buf_free(&b);
    tg_store_t *s = open_sqlite(dir, NULL);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.dropped, 0);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 3);
    CHECK(access(seg, F_OK) != 0);
    CHECK(access(jd, F_OK) != 0); /* a clean stop leaves no journal */
    rm_rf(dir);
}

TEST(journal_trimmed_once_committed)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_buf_t frame = {0};
    tg_record_t *r0 = mkrec(0);
    tg_journal_encode(r0, &frame); /* every mkrec record packs to this size */
    tg_record_free(r0);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.journal_segment_bytes = 8 * (int64_t)frame.len; /* sealed every 2 writes of 5 */
    o.batch_ms = 60000;                               /* committed only when flushed */
    tg_buf_free(&frame);
    tg_store_t *s = open_sqlite(dir, &o);
    tg_journal_t *j = tg_journal_open(s, 0);
    CHECK(j != NULL);
    int64_t bytes;
    for (int i = 0; i < 60; i++) {
        tg_journal_submit(s, j, mkrec(i));
        if (i % 5 == 4)
            tg_journal_write(j);
    }
    CHECK(journal_files(dir, &bytes) > 1); /* sealed segments wait for the writer */
    CHECK_INT(tg_store_flush(s, 20000), 0);
    /* each sealed segment went with its last record. On a loaded machine
     * the writer may settle a turn's records before the next submit, which
     * then starts the open segment over in place: the seals shift, and the
     * last segment can still be open, holding at most one turn. */
    int left = journal_files(dir, &bytes);
    CHECK(left <= 1);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.journal_bytes, bytes);
    CHECK(bytes <= o.journal_segment_bytes);
    /* an open segment whose records are all committed... */
    tg_journal_submit(s, j, mkrec(60));
    tg_journal_write(j);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    CHECK_INT(journal_files(dir, &bytes), 1);
    CHECK(bytes > o.journal_segment_bytes / 16);
    /* ...is started over by the next turn */
    tg_record_t *r = mkrec(61);
    tg_buf_t one = {0};
    tg_journal_encode(r, &one);
    tg_journal_submit(s, j, r);
    tg_journal_write(j);
    CHECK_INT(journal_files(dir, &bytes), 1);
    CHECK_INT(bytes, one.len);
    tg_store_counters(s, &c);
    CHECK_INT(c.journal_bytes, one.len);
    tg_buf_free(&one);
    tg_journal_close(j);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 62);
    CHECK_INT(journal_files(dir, &bytes), 0);
    rm_rf(dir);
}

TEST(journal_at_its_bound_skips_but_stores)
{
    char dir[64], db[128];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.journal_max_bytes = 2000;
    o.batch_ms = 60000; /* nothing committed meanwhile: the journal only grows */
    tg_store_t *s = open_sqlite(dir, &o);
    tg_journal_t *j = tg_journal_open(s, 0);
    for (int i = 0; i < 20; i++) {
        tg_journal_submit(s, j, mkrec(i));
        tg_journal_write(j);
    }
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK(c.journal_skipped > 0 && c.journal_skipped < 20);
    CHECK(c.journal_bytes <= 2000 + 1000); /* the bound, give or take a record */
    tg_journal_close(j);
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 20);
    rm_rf(dir);
}

TEST(journal_off_without_a_store_or_directory)
{
    CHECK(tg_journal_open(NULL, 0) == NULL);
    tg_record_t *r = mkrec(0);
    CHECK(!tg_journal_submit(NULL, NULL, r)); /* freed, as tg_store_submit(NULL) */
    tg_journal_write(NULL);
    tg_journal_close(NULL);
    char dir[64];
    tmpdir(dir);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.journal_dir = "";
    tg_store_t *s = open_sqlite(dir, &o);
    CHECK(tg_journal_open(s, 0) == NULL);
    tg_store_close(s);
    int64_t bytes;
    CHECK_INT(journal_files(dir, &bytes), 0);
    rm_rf(dir);
}

/* ---- the spool: the journal's frames (writer.c) ---- */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    CHECK_INT(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static int64_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Appends the file's bytes to out (nothing when there is no file). */
static void slurp(const char *path, tg_buf_t *out)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0)
        tg_buf_append(out, tmp, n);
    fclose(fp);
}

/* mkrec(i) with the id "<prefix><i>". */
static tg_record_t *mkrec_id(int i, const char *prefix)
{
    tg_record_t *r = mkrec(i);
    char id[32];
    snprintf(id, sizeof id, "%s%d", prefix, i);
    tg_record_set_str(&r->id, id);
    return r;
}

/* A spool file of n records' frames, their ids "<prefix><i>". */
static void spool_of(const char *path, int n, const char *prefix)
{
    tg_buf_t b = {0};
    for (int i = 0; i < n; i++) {
        tg_record_t *r = mkrec_id(i, prefix);
        tg_journal_encode(r, &b);
        tg_record_free(r);
    }
    write_file(path, b.data, b.len);
    tg_buf_free(&b);
}

/* The records in b, which must be whole frames and nothing else: how many,
 * -1 when anything else is there. *with_body counts those whose response
 * body is `body`. */
static int frames_in(const tg_buf_t *b, const char *body, int *with_body)
{
    size_t at = 0;
    int n = 0;
    *with_body = 0;
    while (at < b->len) {
        tg_record_t *r;
        size_t used;
        if (tg_journal_decode(b->data + at, b->len - at, &used, &r) != TG_JOURNAL_OK)
            return -1;
        *with_body +=
            r->response_body_len == strlen(body) && !memcmp(r->response_body, body, strlen(body));
        tg_record_free(r);
        at += used;
        n++;
    }
    return n;
}

/* Records that do not fit the queue (from producers) and batches the
 * database refuses (from the writer) are spooled as frames, not JSON, and
 * every one of them is written once the database is back. */
TEST(store_spool_holds_frames_and_replays_them)
{
    char dir[64], spool[128], replay[160];
    spool_dir(dir, spool, replay);
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_capacity = 4;
    o.batch_max = 4;
    o.batch_ms = 10;
    tg_store_t *s = open_failing(&f, spool, &o);
    static const char body[] = "data: {\"choices\":[{\"delta\":{\"content\":\"a\\\"b\\n\"}}]}\n\n";
    for (int i = 0; i < 100; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, true, body, sizeof body - 1, -1);
        tg_store_submit(s, r);
    }
    CHECK(wait_spooled(s));
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.spooled, 100);
    /* the writer may have moved the spool aside for a replay that failed */
    tg_buf_t live = {0}, moved = {0};
    slurp(spool, &live);
    slurp(replay, &moved);
    CHECK(live.len || moved.len);
    CHECK(!memcmp(live.len ? live.data : moved.data, "TGJ1", 4));
    int body_live = 0, body_moved = 0;
    int n_live = frames_in(&live, body, &body_live), n_moved = frames_in(&moved, body, &body_moved);
    CHECK(n_live >= 0 && n_moved >= 0);
    CHECK_INT(n_live + n_moved, 100);
    CHECK_INT(body_live + body_moved, 100); /* bodies byte for byte */
    CHECK_INT(live.len + moved.len, c.spool_bytes);
    tg_buf_free(&live);
    tg_buf_free(&moved);
    atomic_store(&f.fail, 0);
    finish_fake(s, &f, dir, 100);
}

/* A worker's record that does not fit the queue is spooled with the frame
 * its journal made: written once, nothing dropped. */
TEST(store_worker_overflow_spools_its_journal_frame)
{
    char dir[64], spool[128], jd[128];
    tmpdir(dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    snprintf(jd, sizeof jd, "%s/journal.d", dir);
    fake_t f;
    fake_init(&f);
    f.delay_ms = 20; /* a slow database: the queue of 2 overflows */
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.queue_capacity = 2;
    o.batch_max = 2;
    o.journal_dir = jd;
    tg_store_t *s = open_fake(&f, spool, &o);
    tg_journal_t *j = tg_journal_open(s, 0);
    CHECK(j != NULL);
    for (int i = 0; i < 60; i++) {
        tg_record_t *r = mkrec(i);
        tg_record_set_body(r, false, "{\"stream\":true}", 15, -1);
        tg_journal_submit(s, j, r);
        if (i % 10 == 9)
            tg_journal_write(j);
    }
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK(c.spooled >= 40);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_journal_close(j);
    finish_fake(s, &f, dir, 60);
}

/* A crash inside an append leaves a torn last frame: it is cut off at
 * start, before anything is appended behind it, so what comes after is
 * read and nothing is counted as lost. */
TEST(store_spool_torn_last_frame_cut_at_start)
{
    char dir[64], spool[128], replay[160];
    spool_dir(dir, spool, replay);
    tg_buf_t b = {0};
    size_t whole, fourth;
    three_and_a_half(&b, &whole, &fourth);
    write_file(spool, b.data, whole + fourth / 2);
    tg_buf_free(&b);
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_ms = 10;
    tg_store_t *s = open_failing(&f, spool, &o);
    CHECK_INT(size_of(spool) + size_of(replay), whole); /* the half frame is gone */
    for (int i = 10; i < 12; i++)                       /* appended while the database fails */
        tg_store_submit(s, mkrec(i));
    CHECK(wait_spooled(s));
    atomic_store(&f.fail, 0);
    finish_fake(s, &f, dir, 5);
}

/* Damage in the middle of a spool file (bytes that are no frame, a frame
 * whose CRC fails) costs the records it hit, counted as dropped, not the
 * frames after it. */
TEST(store_spool_damage_mid_file_is_skipped_and_counted)
{
    char dir[64], spool[128], replay[160];
    spool_dir(dir, spool, replay);
    tg_buf_t b = {0};
    for (int i = 0; i < 6; i++) {
        tg_record_t *r = mkrec_id(i, "rec-");
        size_t at = b.len;
        tg_journal_encode(r, &b);
        tg_record_free(r);
        if (i == 1) /* after record 1: a header whose length runs past the end */
            tg_buf_append(&b, "TGJ1\xa0\x86\x01\x00garbage-garbage", 23);
        if (i == 3) /* record 3: a bit flipped in its payload */
            b.data[at + TG_JOURNAL_HEADER + 5] ^= 0x04;
        if (i == 4) /* after record 4: bytes that are no frame at all */
            tg_buf_append(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0zzz", 23);
    }
    write_file(spool, b.data, b.len);
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    tg_store_t *s = open_failing(&f, spool, &o); /* the file stays as it is until looked at */
    CHECK_INT(size_of(spool) + size_of(replay), b.len); /* damage is not cut */
    tg_buf_free(&b);
    atomic_store(&f.fail, 0);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.dropped, 3); /* three damaged stretches */
    CHECK_INT(c.written, 5);
    CHECK_INT(c.spool_bytes, 0);
    CHECK_INT(f.n_ids, 5);
    for (size_t i = 0; i < f.n_ids; i++)
        CHECK(strcmp(f.ids[i], "rec-3") != 0);
    tg_store_close(s);
    fake_free(&f);
    CHECK(access(spool, F_OK) != 0 && access(replay, F_OK) != 0);
    rm_rf(dir);
}

/* Appends r's JSON line (an older version's spool form) to b; frees r. */
static void legacy_line(tg_record_t *r, tg_buf_t *b)
{
    tg_record_to_json(r, TG_RECORD_JSON_SPOOL, b);
    tg_buf_append(b, "\n", 1);
    tg_record_free(r);
}

/* A spool of JSON lines left by an older version (and the one it was
 * replaying) is read once at start and removed: its records are stored
 * once (one was stored already), a half-written last line is dropped. */
TEST(store_legacy_json_spool_replayed_once_and_removed)
{
    char dir[64], db[128], legacy[160], legacy_replay[176], spool[160];
    tmpdir(dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    snprintf(legacy, sizeof legacy, "%s/t.db-spool.jsonl", dir);
    snprintf(legacy_replay, sizeof legacy_replay, "%s.replay", legacy);
    snprintf(spool, sizeof spool, "%s/t.db-spool.tgj", dir);
    tg_store_t *s = open_sqlite(dir, NULL);
    tg_store_submit(s, mkrec_id(1, "stored-"));
    tg_store_close(s);
    tg_buf_t b = {0};
    for (int i = 1; i <= 3; i++) {
        tg_record_t *r = mkrec_id(i, i == 1 ? "stored-" : "legacy-");
        tg_record_set_body(r, true, "{\"a\":\"\\u00e9\"}", 14, -1);
        legacy_line(r, &b);
    }
    tg_buf_puts(&b, "{\"id\":\"half-writ");
    write_file(legacy, b.data, b.len);
    tg_buf_reset(&b);
    legacy_line(mkrec_id(4, "legacy-replay-"), &b);
    write_file(legacy_replay, b.data, b.len);
    tg_buf_free(&b);
    s = open_sqlite(dir, NULL);
    CHECK(access(legacy, F_OK) != 0); /* moved into the spool at start */
    CHECK(access(legacy_replay, F_OK) != 0);
    CHECK_INT(tg_store_flush(s, 20000), 0);
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    CHECK_INT(c.dropped, 1); /* the half line */
    tg_store_close(s);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests"), 4);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM requests WHERE id IN ('stored-1', 'legacy-2', "
                             "'legacy-3', 'legacy-replay-4')"),
              4);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM request_bodies WHERE response_body = "
                             "CAST('{\"a\":\"\\u00e9\"}' AS BLOB)"),
              2);
    CHECK(access(spool, F_OK) != 0);
    second_start_adds_nothing(dir, db, 4);
    rm_rf(dir);
}

/* Journal segments left by a crash reach the spool as their frames, byte
 * for byte (no JSON on the way), without the torn tail. */
TEST(journal_recovery_hands_frames_to_the_spool)
{
    char dir[64], spool[128], replay[160], jd[128], seg[192];
    spool_dir(dir, spool, replay);
    snprintf(jd, sizeof jd, "%s/journal.d", dir);
    snprintf(seg, sizeof seg, "%s/old-w0-0.tgj", jd);
    CHECK_INT(mkdir(jd, 0700), 0);
    tg_buf_t b = {0}, got = {0};
    size_t whole, fourth;
    three_and_a_half(&b, &whole, &fourth);
    write_file(seg, b.data, whole + fourth - 1);
    fake_t f;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.journal_dir = jd;
    tg_store_t *s = open_failing(&f, spool, &o); /* the spool stays as the recovery left it */
    CHECK(access(seg, F_OK) != 0);
    /* The frames are in the spool or, once the writer has moved it aside
     * for a replay (which fails here), in the replay file. The writer may
     * rename it between two reads: read until one file holds them and the
     * other is gone. */
    for (int i = 0; i < 500; i++) {
        tg_buf_t in_spool = {0};
        tg_buf_reset(&got);
        slurp(spool, &in_spool);
        slurp(replay, &got);
        bool one = (in_spool.len == 0) != (got.len == 0);
        if (in_spool.len)
            tg_buf_append(&got, in_spool.data, in_spool.len);
        tg_buf_free(&in_spool);
        if (one)
            break;
        usleep(10 * 1000);
    }
    CHECK_INT(got.len, whole);
    CHECK(got.len == whole && !memcmp(got.data, b.data, whole));
    tg_buf_free(&got);
    tg_buf_free(&b);
    atomic_store(&f.fail, 0);
    finish_fake(s, &f, dir, 3);
}

/* A long replay takes turns with the queue: records submitted while it
 * runs are written before it ends, instead of waiting behind it (and
 * spilling into the spool meanwhile). */
TEST(store_replay_takes_turns_with_the_queue)
{
    fake_t f;
    fake_init(&f);
    f.delay_ms = 5;
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.batch_max = 20; /* a replay of 20 batches, 100 ms or more */
    o.batch_ms = 5;
    char dir[64], spool[128], replay[160];
    spool_dir(dir, spool, replay);
    spool_of(spool, 400, "old-"); /* left by the last run */
    tg_store_t *s = open_fake(&f, spool, &o);
    int64_t end = tg_mono_ms() + 10000;
    while (tg_mono_ms() < end) { /* the replay has begun */
        pthread_mutex_lock(&f.mu);
        size_t n = f.n_ids;
        pthread_mutex_unlock(&f.mu);
        if (n)
            break;
        sleep_ms(1);
    }
    for (int i = 0; i < 5; i++)
        tg_store_submit(s, mkrec_id(i, "new-"));
    CHECK_INT(tg_store_flush(s, 20000), 0);
    size_t first_new = f.n_ids, last_old = 0;
    for (size_t i = 0; i < f.n_ids; i++) {
        if (!strncmp(f.ids[i], "new-", 4) && i < first_new)
            first_new = i;
        if (!strncmp(f.ids[i], "old-", 4))
            last_old = i;
    }
    CHECK(first_new < last_old);
    CHECK(f.max_batch <= 20);
    finish_fake(s, &f, dir, 405);
}
