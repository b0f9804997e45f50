/*
 * sqlite_read.c — the SQLite store's read side: a pool of read-only
 * connections, and the reader through which the shared queries of the API
 * and the dashboard (sql_read.c) run on them. Separate from the writer's
 * code because it runs on other threads, on other connections.
 *
 * Threads: whichever thread runs a query (API worker threads); the pool
 * is guarded by pool_mu.
 */
#include "store/sqlite_internal.h"

#include "store/sql_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

sqlite3 *tg_sqlite_reader_get(sq_t *q, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&q->pool_mu);
    if (q->n_pool)
        db = q->pool[--q->n_pool];
    pthread_mutex_unlock(&q->pool_mu);
    if (db)
        return db;
    if (sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, q->path, db);
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 2000);
    char msg[128];
    tg_sqlite_exec(db, "PRAGMA mmap_size=268435456", msg, sizeof msg);
    tg_sqlite_exec(db, "PRAGMA cache_size=-16000", msg, sizeof msg);
    return db;
}

void tg_sqlite_reader_put(sq_t *q, sqlite3 *db)
{
    pthread_mutex_lock(&q->pool_mu);
    if (q->n_pool < POOL_MAX) {
        q->pool[q->n_pool++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&q->pool_mu);
    if (db)
        sqlite3_close_v2(db);
}

/* ---- the reader of the shared queries (sql_read.h) ---- */

typedef struct {
    tg_sqlrd_t base;
    sqlite3 *db;
    sqlite3_stmt *st;
} sqrd_t;

static int rd_run(tg_sqlrd_t *r, const tg_sqlb_t *b, char *err, size_t errlen)
{
    sqrd_t *x = (sqrd_t *)r;
    sqlite3_finalize(x->st);
    x->st = NULL;
    if (sqlite3_prepare_v2(x->db, b->sql.data, (int)b->sql.len, &x->st, NULL) != SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, "query", x->db);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].is_text)
            sqlite3_bind_text(x->st, (int)i + 1, b->v[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(x->st, (int)i + 1, b->v[i].i);
    }
    return 0;
}

static int rd_step(tg_sqlrd_t *r, char *err, size_t errlen)
{
    sqrd_t *x = (sqrd_t *)r;
    int rc = sqlite3_step(x->st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    tg_sqlite_set_err(err, errlen, "query", x->db);
    return -1;
}

static int rd_rewind(tg_sqlrd_t *r, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sqlite3_reset(((sqrd_t *)r)->st);
    return 0;
}

static void rd_done(tg_sqlrd_t *r)
{
    sqrd_t *x = (sqrd_t *)r;
    sqlite3_finalize(x->st);
    x->st = NULL;
}

static bool rd_is_null(tg_sqlrd_t *r, int i)
{
    return sqlite3_column_type(((sqrd_t *)r)->st, i) == SQLITE_NULL;
}

static int64_t rd_i64(tg_sqlrd_t *r, int i)
{
    return sqlite3_column_int64(((sqrd_t *)r)->st, i);
}

static const char *rd_text(tg_sqlrd_t *r, int i, size_t *len)
{
    sqlite3_stmt *st = ((sqrd_t *)r)->st;
    const char *t = (const char *)sqlite3_column_text(st, i);
    *len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    return t;
}

static const void *rd_blob(tg_sqlrd_t *r, int i, size_t *len)
{
    sqlite3_stmt *st = ((sqrd_t *)r)->st;
    *len = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const void *p = sqlite3_column_blob(st, i);
    *len = (size_t)sqlite3_column_bytes(st, i);
    return p ? p : "";
}

static const tg_sqlrd_ops_t sqlite_rd_ops = {
    .dollar = false,
    .lower_names = false,
    .run = rd_run,
    .step = rd_step,
    .rewind = rd_rewind,
    .done = rd_done,
    .is_null = rd_is_null,
    .i64 = rd_i64,
    .text = rd_text,
    .blob = rd_blob,
};

/* Run one of the shared queries on a pooled reader. */
#define WITH_READER(b, call)                                                                       \
    do {                                                                                           \
        sq_t *s_ = (sq_t *)(b);                                                                    \
        sqrd_t rd_ = {{&sqlite_rd_ops}, tg_sqlite_reader_get(s_, err, errlen), NULL};              \
        if (!rd_.db)                                                                               \
            return -1;                                                                             \
        int rc_ = call;                                                                            \
        rd_done(&rd_.base);                                                                        \
        tg_sqlite_reader_put(s_, rd_.db);                                                          \
        return rc_;                                                                                \
    } while (0)

int tg_sqlite_list(tg_store_backend_t *b, const tg_query_t *q, tg_record_list_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_list(&rd_.base, q, out, err, errlen));
}

int tg_sqlite_get(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    WITH_READER(b, tg_sqlrd_get(&rd_.base, id, out, err, errlen));
}

int tg_sqlite_costs(tg_store_backend_t *b, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_costs(&rd_.base, q, out, err, errlen));
}

int tg_sqlite_stats(tg_store_backend_t *b, const tg_query_t *q, tg_stats_t *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_stats(&rd_.base, q, out, err, errlen));
}

int tg_sqlite_series(tg_store_backend_t *b, const tg_query_t *q, tg_series_t *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_series(&rd_.base, q, out, err, errlen));
}

int tg_sqlite_sessions(tg_store_backend_t *b, const tg_query_t *q, tg_sessions_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    WITH_READER(b, tg_sqlrd_sessions(&rd_.base, q, out, err, errlen));
}
