/*
 * pg_read.c — the PostgreSQL store's read side: a pool of reader
 * connections, the reader through which the shared queries (sql_read.c)
 * run on them, and the budgets' spend sums. A query's rows come through a
 * server-side cursor, FETCH_ROWS at a time, in one read-only transaction:
 * a report over millions of records holds one page in memory, not the
 * whole result. Each statement runs under READ_TIMEOUT_MS.
 *
 * Threads: whichever thread runs a query (the API's reader threads); the
 * pool is guarded by pool_mu, a reader is used by one thread at a time.
 */
#include "store/pg_internal.h"

#include "store/sql_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_TIMEOUT_MS 30000
#define FETCH_ROWS      4096

PGconn *tg_pg_reader_get(pg_t *p, char *err, size_t errlen)
{
    PGconn *c = NULL;
    pthread_mutex_lock(&p->pool_mu);
    if (p->n_pool)
        c = p->pool[--p->n_pool];
    pthread_mutex_unlock(&p->pool_mu);
    if (c)
        return c;
    c = tg_pg_connect(p, READ_TIMEOUT_MS, err, errlen);
    /* the queries read their cursors to the end: plan for all rows, not
     * for the first 10% (the default, which picks nested loops that take
     * seconds over a day of records) */
    PGresult *r =
        c ? tg_pg_query(c, p->display, "SELECT set_config('cursor_tuple_fraction', '1', false)", 0,
                        NULL, NULL, err, errlen)
          : NULL;
    if (c && !r) {
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

/* Back to the pool when it is healthy and idle; closed otherwise. */
void tg_pg_reader_put(pg_t *p, PGconn *c)
{
    if (!c)
        return;
    if (tg_pg_conn_lost(c) || PQtransactionStatus(c) != PQTRANS_IDLE) {
        PQfinish(c);
        return;
    }
    pthread_mutex_lock(&p->pool_mu);
    if (p->n_pool < PG_POOL_MAX) {
        p->pool[p->n_pool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->pool_mu);
    PQfinish(c);
}

/* ---- the reader of the shared queries (sql_read.h) ---- */

typedef struct {
    tg_sqlrd_t base;
    PGconn *c;
    bool open;   /* in a transaction with the cursor declared */
    char *sql;   /* "DECLARE ... FOR <query>", kept for a rewind */
    char **vals; /* its parameters as text */
    int n_vals;
    PGresult *page;      /* the rows fetched last */
    int row, n_rows;     /* the current row of page */
    bool end;            /* the last page is in hand */
    unsigned char *blob; /* the current bytea value, unescaped */
} pgrd_t;

static void rd_drop_page(pgrd_t *x)
{
    PQclear(x->page);
    x->page = NULL;
    x->row = x->n_rows = 0;
    PQfreemem(x->blob);
    x->blob = NULL;
}

static void rd_done(tg_sqlrd_t *r)
{
    pgrd_t *x = (pgrd_t *)r;
    rd_drop_page(x);
    if (x->open && !tg_pg_conn_lost(x->c)) {
        char msg[128];
        tg_pg_exec(x->c, "ROLLBACK", msg, sizeof msg); /* read only: nothing to keep */
    }
    x->open = false;
    for (int i = 0; i < x->n_vals; i++)
        free(x->vals[i]);
    free(x->vals);
    free(x->sql);
    x->vals = NULL;
    x->sql = NULL;
    x->n_vals = 0;
}

static int rd_declare(pgrd_t *x, char *err, size_t errlen)
{
    PGresult *r = tg_pg_query(x->c, "query", x->sql, x->n_vals, (const char *const *)x->vals, NULL,
                              err, errlen);
    PQclear(r);
    x->end = false;
    return r ? 0 : -1;
}

static int rd_run(tg_sqlrd_t *r, const tg_sqlb_t *b, char *err, size_t errlen)
{
    pgrd_t *x = (pgrd_t *)r;
    rd_done(r);
    tg_buf_t sql = {0};
    tg_buf_puts(&sql, "DECLARE tg_cursor NO SCROLL CURSOR FOR ");
    tg_buf_append(&sql, b->sql.data, b->sql.len);
    x->sql = sql.data;
    x->n_vals = (int)b->n;
    x->vals = tg_xcalloc(b->n + 1, sizeof *x->vals);
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].is_text) {
            x->vals[i] = tg_xstrdup(b->v[i].s);
        } else {
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)b->v[i].i);
            x->vals[i] = tg_xstrdup(num);
        }
    }
    if (tg_pg_exec(x->c, "BEGIN READ ONLY", err, errlen) != 0)
        return -1;
    x->open = true;
    return rd_declare(x, err, errlen);
}

static int rd_step(tg_sqlrd_t *r, char *err, size_t errlen)
{
    pgrd_t *x = (pgrd_t *)r;
    PQfreemem(x->blob);
    x->blob = NULL;
    if (x->page && ++x->row < x->n_rows)
        return 1;
    if (x->end)
        return 0;
    rd_drop_page(x);
    x->page = tg_pg_query(x->c, "query", "FETCH " TG_STR(FETCH_ROWS) " FROM tg_cursor", 0, NULL,
                          NULL, err, errlen);
    if (!x->page)
        return -1;
    x->n_rows = PQntuples(x->page);
    x->end = x->n_rows < FETCH_ROWS;
    return x->n_rows > 0 ? 1 : 0;
}

static int rd_rewind(tg_sqlrd_t *r, char *err, size_t errlen)
{
    pgrd_t *x = (pgrd_t *)r;
    rd_drop_page(x);
    if (tg_pg_exec(x->c, "CLOSE tg_cursor", err, errlen) != 0)
        return -1;
    return rd_declare(x, err, errlen);
}

static bool rd_is_null(tg_sqlrd_t *r, int i)
{
    pgrd_t *x = (pgrd_t *)r;
    return PQgetisnull(x->page, x->row, i);
}

static int64_t rd_i64(tg_sqlrd_t *r, int i)
{
    pgrd_t *x = (pgrd_t *)r;
    return tg_pg_i64(x->page, x->row, i, 0);
}

static const char *rd_text(tg_sqlrd_t *r, int i, size_t *len)
{
    pgrd_t *x = (pgrd_t *)r;
    *len = 0;
    if (PQgetisnull(x->page, x->row, i))
        return NULL;
    *len = (size_t)PQgetlength(x->page, x->row, i);
    return PQgetvalue(x->page, x->row, i);
}

static const void *rd_blob(tg_sqlrd_t *r, int i, size_t *len)
{
    pgrd_t *x = (pgrd_t *)r;
    *len = 0;
    if (PQgetisnull(x->page, x->row, i))
        return NULL;
    PQfreemem(x->blob);
    x->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(x->page, x->row, i), len);
    if (!x->blob)
        abort(); /* out of memory */
    return x->blob;
}

static const tg_sqlrd_ops_t pg_rd_ops = {
    .dollar = true,
    .lower_names = true,
    .sql_aggregates = true,
    .run = rd_run,
    .step = rd_step,
    .rewind = rd_rewind,
    .done = rd_done,
    .is_null = rd_is_null,
    .i64 = rd_i64,
    .text = rd_text,
    .blob = rd_blob,
};

/* Run one of the shared queries on a pooled reader; once more on a new
 * connection when the pooled one turns out to be dead (the server restarted
 * since it was last used). */
#define WITH_READER(b, call)                                                                       \
    do {                                                                                           \
        pg_t *p_ = (pg_t *)(b);                                                                    \
        for (int try_ = 0;; try_++) {                                                              \
            pgrd_t rd_ = {.base = {&pg_rd_ops}, .c = tg_pg_reader_get(p_, err, errlen)};           \
            if (!rd_.c)                                                                            \
                return -1;                                                                         \
            int rc_ = call;                                                                        \
            bool lost_ = rc_ < 0 && tg_pg_conn_lost(rd_.c);                                        \
            rd_done(&rd_.base);                                                                    \
            tg_pg_reader_put(p_, rd_.c);                                                           \
            if (!lost_ || try_)                                                                    \
                return rc_;                                                                        \
        }                                                                                          \
    } while (0)

int tg_pg_list(tg_store_backend_t *b, const tg_query_t *q, tg_record_list_t *out, char *err,
               size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_list(&rd_.base, q, out, err, errlen));
}

int tg_pg_get(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err, size_t errlen)
{
    *out = NULL;
    WITH_READER(b, tg_sqlrd_get(&rd_.base, id, out, err, errlen));
}

int tg_pg_costs(tg_store_backend_t *b, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_costs(&rd_.base, q, out, err, errlen));
}

int tg_pg_stats(tg_store_backend_t *b, const tg_query_t *q, tg_stats_t *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_stats(&rd_.base, q, out, err, errlen));
}

int tg_pg_series(tg_store_backend_t *b, const tg_query_t *q, tg_series_t *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_series(&rd_.base, q, out, err, errlen));
}

int tg_pg_sessions(tg_store_backend_t *b, const tg_query_t *q, tg_sessions_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_sessions(&rd_.base, q, out, err, errlen));
}

/* ---- simple selects: the spend sums, the settings loaded at start ---- */

int tg_pg_select(pg_t *p, const char *what, const char *sql, int n, const char *const *vals,
                 void (*row)(const PGresult *r, int i, void *arg), void *arg, char *err,
                 size_t errlen)
{
    PGconn *c = tg_pg_reader_get(p, err, errlen);
    if (!c)
        return -1;
    PGresult *r = tg_pg_query(c, what, sql, n, vals, NULL, err, errlen);
    if (!r && tg_pg_conn_lost(c)) { /* a pooled connection the server closed */
        PQfinish(c);
        if (!(c = tg_pg_reader_get(p, err, errlen)))
            return -1;
        r = tg_pg_query(c, what, sql, n, vals, NULL, err, errlen);
    }
    if (r) {
        for (int i = 0; i < PQntuples(r); i++)
            row(r, i, arg);
        PQclear(r);
    }
    tg_pg_reader_put(p, c);
    return r ? 0 : -1;
}

typedef struct {
    tg_store_spend_fn fn;
    void *arg;
} sums_t;

static void sum_row(const PGresult *r, int i, void *arg)
{
    sums_t *a = arg;
    if (!PQgetisnull(r, i, 0))
        a->fn(a->arg, PQgetvalue(r, i, 0), tg_pg_i64(r, i, 1, 0));
}

int tg_pg_spend_sums(tg_store_backend_t *b, const char *scope, int64_t since_ms, int64_t until_ms,
                     tg_store_spend_fn fn, void *arg, char *err, size_t errlen)
{
    const char *sql;
    if (!strcmp(scope, "global"))
        sql = "SELECT '*', sum(cost_nusd) FROM requests WHERE created_at >= $1"
              " AND created_at < $2";
    else if (!strcmp(scope, "key"))
        sql = "SELECT key_name, sum(cost_nusd) FROM requests WHERE created_at >= $1"
              " AND created_at < $2 AND key_name IS NOT NULL GROUP BY key_name";
    else if (!strcmp(scope, "user"))
        sql = "SELECT user_id, sum(cost_nusd) FROM requests WHERE created_at >= $1"
              " AND created_at < $2 AND user_id IS NOT NULL GROUP BY user_id";
    else if (!strncmp(scope, "property:", 9))
        sql = "SELECT p.value, sum(r.cost_nusd) FROM request_properties p"
              " JOIN requests r ON r.seq = p.seq"
              " WHERE p.name = $3 AND p.created_at >= $1 AND p.created_at < $2"
              " GROUP BY p.value";
    else {
        snprintf(err, errlen, "unknown budget scope '%.80s'", scope);
        return -1;
    }
    char since[24], until[24];
    snprintf(since, sizeof since, "%lld", (long long)since_ms);
    snprintf(until, sizeof until, "%lld", (long long)until_ms);
    /* the stored names are in ASCII lower case */
    char *name = !strncmp(scope, "property:", 9) ? tg_xstrdup(scope + 9) : NULL;
    if (name)
        tg_ascii_lower(name);
    const char *const vals[] = {since, until, name};
    sums_t a = {fn, arg};
    int rc = tg_pg_select((pg_t *)b, "requests", sql, name ? 3 : 2, vals, sum_row, &a, err, errlen);
    free(name);
    return rc;
}
