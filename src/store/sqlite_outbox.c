/*
 * sqlite_outbox.c — the webhook outbox in SQLite (store.h,
 * tg_store_outbox_*): add the events the events thread takes, read what is
 * due, settle what a round of deliveries did, make all due at a start. Its own side connection
 * (synchronous=FULL: an event the thread has taken survives a power cut),
 * with the writer's turn, like the rules.
 *
 * Thread: the events thread (one caller at a time; tests call it from
 * theirs).
 */
#include "store/sqlite_internal.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* What a call does with its two statements (st2 may be NULL): true, or
 * false with the failure in the connection's error. */
typedef bool (*body_fn)(sqlite3_stmt *st, sqlite3_stmt *st2, void *ctx);

/* Run `body` on the outbox connection with the turn, its statements
 * prepared, inside BEGIN IMMEDIATE ... COMMIT when `txn`. 0, or -1 with
 * err (rolled back, the connection dropped). */
static int with_outbox(sq_t *q, const char *sql, const char *sql2, bool txn, body_fn body,
                       void *ctx, char *err, size_t errlen)
{
    tg_sqlite_turn_take(q);
    int ret = -1;
    sqlite3_stmt *st = NULL, *st2 = NULL;
    char msg[160];
    sqlite3 *db = tg_sqlite_side_db(q, &q->outbox, err, errlen);
    if (!db)
        goto out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        (sql2 && sqlite3_prepare_v2(db, sql2, -1, &st2, NULL) != SQLITE_OK) ||
        (txn && tg_sqlite_exec(db, "BEGIN IMMEDIATE", msg, sizeof msg) != SQLITE_OK)) {
        tg_sqlite_set_err(err, errlen, "webhook_outbox", db);
        goto out;
    }
    if (!body(st, st2, ctx) ||
        (txn && tg_sqlite_exec(db, "COMMIT", msg, sizeof msg) != SQLITE_OK)) {
        tg_sqlite_set_err(err, errlen, "webhook_outbox", db);
        if (txn)
            tg_sqlite_exec(db, "ROLLBACK", msg, sizeof msg);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(st2);
    if (ret != 0 && q->outbox)
        tg_sqlite_side_drop(&q->outbox);
    tg_sqlite_turn_give(q);
    return ret;
}

/* One row at a time, in one transaction. */
typedef bool (*row_fn)(sqlite3_stmt *st, sqlite3_stmt *st2, const tg_outbox_row_t *r);

typedef struct {
    const tg_outbox_row_t *rows;
    size_t n;
    row_fn step;
} each_t;

static bool each_row(sqlite3_stmt *st, sqlite3_stmt *st2, void *ctx)
{
    each_t *e = ctx;
    for (size_t i = 0; i < e->n; i++)
        if (!e->step(st, st2, &e->rows[i]))
            return false;
    return true;
}

static int in_transaction(sq_t *q, const char *sql, const char *sql2, const tg_outbox_row_t *rows,
                          size_t n, row_fn step, char *err, size_t errlen)
{
    return with_outbox(q, sql, sql2, true, each_row, &(each_t){rows, n, step}, err, errlen);
}

static bool run(sqlite3_stmt *st)
{
    bool ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ok;
}

static bool add_row(sqlite3_stmt *st, sqlite3_stmt *unused, const tg_outbox_row_t *r)
{
    tg_sqlite_bind_str(st, 1, r->event_id);
    tg_sqlite_bind_str(st, 2, r->url);
    tg_sqlite_bind_str(st, 3, r->type);
    sqlite3_bind_blob(st, 4, r->body, (int)r->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->created_at_ms);
    sqlite3_bind_int(st, 6, r->attempts);
    sqlite3_bind_int64(st, 7, r->next_at_ms);
    return run(st);
}

int tg_sqlite_outbox_add(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                         size_t errlen)
{
    return in_transaction((sq_t *)b,
                          "INSERT OR IGNORE INTO webhook_outbox(event_id, url, type, body,"
                          " created_at, attempts, next_at) VALUES (?,?,?,?,?,?,?)",
                          NULL, rows, n, add_row, err, errlen);
}

static bool settle_row(sqlite3_stmt *del, sqlite3_stmt *upd, const tg_outbox_row_t *r)
{
    if (r->done) {
        sqlite3_bind_int64(del, 1, r->seq);
        return run(del);
    }
    sqlite3_bind_int(upd, 1, r->attempts);
    sqlite3_bind_int64(upd, 2, r->next_at_ms);
    sqlite3_bind_int64(upd, 3, r->seq);
    return run(upd);
}

int tg_sqlite_outbox_settle(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                            size_t errlen)
{
    return in_transaction((sq_t *)b, "DELETE FROM webhook_outbox WHERE seq = ?",
                          "UPDATE webhook_outbox SET attempts = ?, next_at = ? WHERE seq = ?", rows,
                          n, settle_row, err, errlen);
}

static bool rewind_row(sqlite3_stmt *st, sqlite3_stmt *unused, const tg_outbox_row_t *r)
{
    sqlite3_bind_int64(st, 1, r->next_at_ms);
    sqlite3_bind_int64(st, 2, r->next_at_ms);
    return run(st);
}

int tg_sqlite_outbox_rewind(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen)
{
    tg_outbox_row_t now = {.next_at_ms = now_ms};
    return in_transaction((sq_t *)b, "UPDATE webhook_outbox SET next_at = ? WHERE next_at > ?",
                          NULL, &now, 1, rewind_row, err, errlen);
}

static char *col_dup(sqlite3_stmt *st, int i, size_t *len)
{
    const void *v = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = tg_xmalloc(n + 1);
    if (n)
        memcpy(p, v, n);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

typedef struct {
    int64_t now_ms;
    size_t max;
    tg_outbox_row_t *rows;
    size_t n;
    int64_t next_ms;
} due_t;

static bool read_due(sqlite3_stmt *st, sqlite3_stmt *nx, void *ctx)
{
    due_t *d = ctx;
    sqlite3_bind_int64(st, 1, d->now_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)d->max);
    d->rows = d->max ? tg_xcalloc(d->max, sizeof *d->rows) : NULL;
    int rc = SQLITE_DONE;
    while (d->n < d->max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tg_outbox_row_t *r = &d->rows[d->n++];
        r->seq = sqlite3_column_int64(st, 0);
        r->event_id = col_dup(st, 1, NULL);
        r->url = col_dup(st, 2, NULL);
        r->type = col_dup(st, 3, NULL);
        r->body = col_dup(st, 4, &r->body_len);
        r->created_at_ms = sqlite3_column_int64(st, 5);
        r->attempts = sqlite3_column_int(st, 6);
        r->next_at_ms = sqlite3_column_int64(st, 7);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return false;
    rc = sqlite3_step(nx);
    if (rc == SQLITE_ROW && sqlite3_column_type(nx, 0) != SQLITE_NULL)
        d->next_ms = sqlite3_column_int64(nx, 0);
    return rc == SQLITE_ROW;
}

int tg_sqlite_outbox_due(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                         size_t *n, int64_t *next_ms, char *err, size_t errlen)
{
    due_t d = {.now_ms = now_ms, .max = max, .next_ms = -1};
    int rc =
        with_outbox((sq_t *)b,
                    "SELECT seq, event_id, url, type, body, created_at, attempts, next_at"
                    " FROM webhook_outbox WHERE next_at <= ? ORDER BY next_at, seq LIMIT ?",
                    "SELECT MIN(next_at) FROM webhook_outbox", false, read_due, &d, err, errlen);
    if (rc < 0) {
        tg_outbox_rows_free(d.rows, d.n);
        return -1;
    }
    *out = d.rows;
    *n = d.n;
    *next_ms = d.next_ms;
    return 0;
}
