/*
 * store_bench.c — fills a request store with synthetic records through the
 * real write path (tg_store_submit -> queue/spool -> writer -> SQLite) and
 * times the query API's common questions on it. Built and run by
 * bench/store.sh; see there for the knobs.
 *
 *   store_bench DB_PATH|postgresql://... N_RECORDS DAYS RUNS
 *
 * An existing database with at least N records is reused (no fill). A
 * PostgreSQL URL benches the PostgreSQL store (its spool in $TMPDIR).
 */
#include "store/query.h"
#include "store/record.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_AGENTS   20
#define N_USERS    1000
#define N_SESSIONS 20000

static const char *models[][2] = {
    {"openai", "gpt-4o"},
    {"openai", "gpt-4o-mini"},
    {"openai", "gpt-4.1"},
    {"anthropic", "claude-sonnet-4-5"},
    {"anthropic", "claude-haiku-4-5"},
    {"gemini", "gemini-2.5-flash"},
    {"deepseek", "deepseek-chat"},
    {"groq", "llama-3.3-70b-versatile"},
};

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool is_pg(const char *db)
{
    return !strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11);
}

/* Run sql on a PostgreSQL database; the first value, or -1. */
static int64_t pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0))
                                                                      : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static int64_t count(const char *db)
{
    if (is_pg(db))
        return pg_exec(db, "SELECT count(*) FROM requests");
    sqlite3 *h;
    int64_t n = 0;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h, "SELECT count(*) FROM requests", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return n;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef int (*query_fn)(tg_store_t *, const char *, tg_buf_t *);

/* What a query should take: the API's 100 ms, the dashboard's views 1 s. */
static double target_ms = 100;

static void timeit(tg_store_t *s, const char *label, query_fn fn, const char *qs, int runs)
{
    double t[64];
    if (runs > 64)
        runs = 64;
    tg_buf_t b = {0};
    int status = 0;
    for (int i = 0; i < runs; i++) {
        tg_buf_reset(&b);
        int64_t t0 = tg_mono_us();
        status = fn(s, qs, &b);
        t[i] = (double)(tg_mono_us() - t0) / 1000.0;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_d);
    char head[121];
    snprintf(head, sizeof head, "%s", b.data ? b.data : "");
    printf("%-34s %4d  min %7.1f ms  median %7.1f ms  max %7.1f ms  %s %s\n", label, status, t[0],
           t[runs / 2], t[runs - 1], t[runs / 2] < target_ms ? "OK  " : "SLOW", head);
    tg_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s DB N_RECORDS DAYS RUNS\n", argv[0]);
        return 2;
    }
    const char *db = argv[1];
    long n = atol(argv[2]);
    int days = atoi(argv[3]), runs = atoi(argv[4]);
    int64_t now = tg_wall_ms();
    int64_t day = 86400000, span = (int64_t)days * day;
    /* the day queried: the last complete UTC day */
    int64_t q_from = (now / day - 1) * day, q_to = q_from + day;

    char url[4096], err[256], spool[4096];
    snprintf(url, sizeof url, "%s%s", is_pg(db) ? "" : "sqlite:", db);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.url = url;
    if (is_pg(db)) {
        const char *tmp = getenv("TMPDIR");
        snprintf(spool, sizeof spool, "%s/tg-store-bench-spool.tgj", tmp ? tmp : "/tmp");
        o.spool_path = spool;
        o.journal_dir = "";
    }
    tg_store_t *s;
    if (tg_store_open(&o, &s, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t have = count(db);
    if (have < n) {
        char *shown = tg_redact_secrets(db);
        printf("filling %s with %ld records over %d days...\n", shown, n - (long)have, days);
        free(shown);
        int64_t t0 = tg_mono_ms();
        char body[256];
        memset(body, 'x', sizeof body);
        for (long i = have; i < n; i++) {
            tg_record_t *r = tg_record_new();
            /* spread evenly over the span, newest last */
            r->created_at_ms = now - span + (int64_t)((double)span * (double)i / (double)n);
            int m = (int)(rnd() % 8);
            tg_record_set_str(&r->provider, models[m][0]);
            tg_record_set_str(&r->model, models[m][1]);
            tg_record_set_str(&r->model_requested, models[m][1]);
            tg_record_set_str(&r->route, "/v1/chat/completions");
            int x = (int)(rnd() % 100);
            r->status = x < 95 ? 200 : x < 98 ? 429 : 500;
            if (r->status != 200)
                tg_record_set_str(&r->error, "upstream error");
            char v[64];
            snprintf(v, sizeof v, "user-%04d", (int)(rnd() % N_USERS));
            tg_record_set_str(&r->user_id, v);
            snprintf(v, sizeof v, "session-%05d", (int)(rnd() % N_SESSIONS));
            tg_record_set_str(&r->session_id, v);
            snprintf(v, sizeof v, "agent-%02d", (int)(rnd() % N_AGENTS));
            tg_record_set_property(r, "Agent-Name", v);
            tg_record_set_property(r, "Env", rnd() % 4 ? "prod" : "dev");
            r->latency_ms = 200 + (int64_t)(rnd() % 3000);
            r->ttft_ms = 50 + (int64_t)(rnd() % 800);
            if (r->status == 200) {
                r->usage.prompt_tokens = 100 + (long)(rnd() % 4000);
                r->usage.completion_tokens = 10 + (long)(rnd() % 1000);
                r->usage.cached_tokens = (long)(rnd() % 2) * r->usage.prompt_tokens / 2;
                r->cost_nusd = (int64_t)(rnd() % 5000000);
                r->cache = rnd() % 5 ? TG_RECORD_CACHE_MISS : TG_RECORD_CACHE_HIT;
            }
            if (rnd() % 10 == 0) {
                tg_record_set_body(r, false, body, sizeof body, -1);
                tg_record_set_body(r, true, body, sizeof body, -1);
            }
            tg_store_submit(s, r);
            /* a steady producer, as a busy gateway: stay under the queue's
             * capacity so the fill measures the writer, not the spool */
            if ((i & 255) == 0) {
                tg_store_counters_t c;
                for (;;) {
                    tg_store_counters(s, &c);
                    if (c.queue_depth < (int64_t)o.queue_capacity - 256)
                        break;
                    struct timespec ts = {0, 1000000};
                    nanosleep(&ts, NULL);
                }
            }
        }
        if (tg_store_flush(s, 3600 * 1000) != 0)
            fprintf(stderr, "flush timed out\n");
        int64_t ms = tg_mono_ms() - t0;
        tg_store_counters_t c;
        tg_store_counters(s, &c);
        printf("write path: %ld records in %.1f s = %.0f records/s (written %lld, spooled %lld, "
               "dropped %lld)\n",
               n - (long)have, (double)ms / 1000.0, (double)(n - have) * 1000.0 / (double)ms,
               (long long)c.written, (long long)c.spooled, (long long)c.dropped);
        /* what a long-running gateway has: planner statistics (PRAGMA optimize
         * runs at every close; PostgreSQL's autovacuum vacuums and analyzes) */
        tg_store_close(s);
        if (is_pg(db))
            pg_exec(db, "VACUUM (ANALYZE) requests, request_properties");
        if (tg_store_open(&o, &s, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    printf("store: %lld records; queried day %s\n", (long long)count(db), "");
    tg_buf_t f = {0};
    tg_record_time_format(q_from, &f);
    char from[40], to[40];
    snprintf(from, sizeof from, "%.10s", f.data);
    tg_buf_reset(&f);
    tg_record_time_format(q_to, &f);
    snprintf(to, sizeof to, "%.10s", f.data);
    char qs[512];
    printf("\n%-34s %4s  (%d runs each; target < 100 ms)\n", "query", "HTTP", runs);
    timeit(s, "list by property", tg_query_requests, "property.Agent-Name=agent-07", runs);
    snprintf(qs, sizeof qs, "property.Agent-Name=agent-07&from=%s&to=%s", from, to);
    timeit(s, "list by property, one day", tg_query_requests, qs, runs);
    timeit(s, "list, page 100", tg_query_requests, "limit=50&offset=5000", runs);
    timeit(s, "list by user", tg_query_requests, "user_id=user-0042", runs);
    timeit(s, "list by model", tg_query_requests, "model=claude-sonnet-4-5", runs);
    timeit(s, "list server errors", tg_query_requests, "status=5xx", runs);
    snprintf(qs, sizeof qs, "model=claude-sonnet-4-5&from=%s&to=%s", from, to);
    timeit(s, "list by model, one day", tg_query_requests, qs, runs);
    snprintf(qs, sizeof qs, "filter=properties.Agent-Name=agent-07&from=%s&to=%s", from, to);
    timeit(s, "costs by property for a day", tg_query_request_costs, qs, runs);
    timeit(s, "costs by property, period=day", tg_query_request_costs,
           "filter=properties.Agent-Name=agent-07&period=day", runs);
    snprintf(qs, sizeof qs, "group_by=property:Agent-Name&from=%s&to=%s", from, to);
    timeit(s, "costs grouped by property, a day", tg_query_costs, qs, runs);
    snprintf(qs, sizeof qs, "group_by=model&from=%s&to=%s", from, to);
    timeit(s, "costs grouped by model, a day", tg_query_costs, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&to=%s", from, to);
    timeit(s, "stats for a day", tg_query_stats, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&to=%s&property.Agent-Name=agent-07", from, to);
    timeit(s, "stats for a day, one agent", tg_query_stats, qs, runs);
    timeit(s, "one record by id", (query_fn)tg_query_request, "no-such-id", runs);
    /* the dashboard's views (target < 1 s): the overview over each range,
     * the costs view, sessions */
    char month[40];
    tg_buf_reset(&f);
    tg_record_time_format(now - 30 * day, &f);
    snprintf(month, sizeof month, "%s", f.data);
    char week[40];
    tg_buf_reset(&f);
    tg_record_time_format(now - 7 * day, &f);
    snprintf(week, sizeof week, "%s", f.data);
    tg_buf_free(&f);
    printf("\n%-34s %4s  (the dashboard's; target < 1 s)\n", "query", "HTTP");
    target_ms = 1000;
    snprintf(qs, sizeof qs, "from=%s&to=%s&bucket=5m", from, to);
    timeit(s, "series, a day by 5 min", tg_query_series, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&bucket=1h&group_by=model", week);
    timeit(s, "series, 7 days by model, 1 h", tg_query_series, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&bucket=1d", month);
    timeit(s, "series, 30 days by day", tg_query_series, qs, runs);
    snprintf(qs, sizeof qs, "from=%s", week);
    timeit(s, "stats, 7 days", tg_query_stats, qs, runs);
    snprintf(qs, sizeof qs, "from=%s", month);
    timeit(s, "stats, 30 days (all)", tg_query_stats, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&group_by=model", month);
    timeit(s, "costs by model, 30 days", tg_query_costs, qs, runs);
    snprintf(qs, sizeof qs, "from=%s&group_by=property:Agent-Name", month);
    timeit(s, "costs by property, 30 days", tg_query_costs, qs, runs);
    timeit(s, "sessions, newest 50", tg_query_sessions, "limit=50", runs);
    timeit(s, "one session", (query_fn)tg_query_session, "session-00042", runs);
    tg_store_close(s);
    return 0;
}
