/*
 * sqlite.c — the SQLite back-end of the request store (see store.h).
 *
 * Owns one write connection (used only by the store's writer thread), a
 * small pool of read-only connections (taken by whichever thread runs a
 * query), and one connection for the runtime rate-limit rules (used by the
 * API's worker threads, one at a time). WAL mode, synchronous=NORMAL for
 * records: a commit survives a process crash at once and an OS crash from
 * the next WAL sync on; readers never block the writer and the writer never
 * blocks readers. Rule changes are single-row transactions with
 * synchronous=FULL (on disk when the API answers) and never checkpoint.
 * Checkpoints (copying the WAL into the database file) run on a thread of
 * their own with its own connection, woken when the writer's commits have
 * grown the WAL past 64 MiB: run on the writer's thread, as SQLite does by
 * default, each one stalled the writer long enough under load for the
 * record queue to overflow into the spool.
 *
 * WAL has one writer at a time. The writer's batches and the rule changes
 * take turns in arrival order (the `turn` ticket) instead of meeting in
 * SQLite's busy handler, which polls: a writer committing batch after batch
 * would starve a rule change there. So a rule change waits for the batch
 * being written at most, and the rules connection needs no other lock.
 *
 * This file opens and closes the back-end and holds the small SQL helpers
 * every part uses; the parts are separate files (see sqlite_internal.h) so
 * that each thread's code reads on its own.
 *
 * Threads: tg_store_sqlite_open and sq_close run on the main thread (the
 * store's start and stop); the helpers on whichever thread calls them.
 */
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

void tg_sqlite_set_err(char *err, size_t errlen, const char *what, sqlite3 *db)
{
    snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

int tg_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

/* An integer PRAGMA's value (`sql` is "PRAGMA name"), or dflt when it
 * cannot be read. */
int tg_sqlite_pragma_int(sqlite3 *db, const char *sql, int dflt)
{
    sqlite3_stmt *st;
    int v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

static void sq_close(tg_store_backend_t *b)
{
    sq_t *q = (sq_t *)b;
    if (q->ckpt_started) {
        pthread_mutex_lock(&q->ckpt_mu);
        q->ckpt_stop = true;
        pthread_cond_signal(&q->ckpt_cv);
        pthread_mutex_unlock(&q->ckpt_mu);
        pthread_join(q->ckpt_thread, NULL);
    }
    if (q->w) {
        char msg[128];
        /* keeps the planner's statistics fresh */
        tg_sqlite_exec(q->w, "PRAGMA optimize", msg, sizeof msg);
    }
    tg_sqlite_writer_disconnect(q);
    for (int i = 0; i < q->n_pool; i++)
        sqlite3_close_v2(q->pool[i]);
    if (q->rules)
        sqlite3_close_v2(q->rules);
    if (q->outbox)
        sqlite3_close_v2(q->outbox);
    pthread_mutex_destroy(&q->pool_mu);
    pthread_mutex_destroy(&q->turn_mu);
    pthread_cond_destroy(&q->turn_cv);
    pthread_mutex_destroy(&q->ckpt_mu);
    pthread_cond_destroy(&q->ckpt_cv);
    free(q->path);
    free(q);
}

static const tg_store_ops_t sqlite_ops = {
    .name = "sqlite",
    .write = tg_sqlite_write,
    .reopen = tg_sqlite_reopen,
    .list = tg_sqlite_list,
    .get = tg_sqlite_get,
    .costs = tg_sqlite_costs,
    .stats = tg_sqlite_stats,
    .series = tg_sqlite_series,
    .sessions = tg_sqlite_sessions,
    .rule_save = tg_sqlite_rule_save,
    .rule_delete = tg_sqlite_rule_delete,
    .rules_load = tg_sqlite_rules_load,
    .outbox_add = tg_sqlite_outbox_add,
    .outbox_due = tg_sqlite_outbox_due,
    .outbox_settle = tg_sqlite_outbox_settle,
    .outbox_rewind = tg_sqlite_outbox_rewind,
    .spend_sums = tg_sqlite_spend_sums,
    .budget_save = tg_sqlite_budget_save,
    .budget_delete = tg_sqlite_budget_delete,
    .budgets_load = tg_sqlite_budgets_load,
    .key_save = tg_sqlite_key_save,
    .key_delete = tg_sqlite_key_delete,
    .keys_load = tg_sqlite_keys_load,
    .close = sq_close,
};

/* SQLite keeps memory statistics (sqlite3_status) behind a global mutex it
 * takes on every allocation; nothing here reads them. Only possible before
 * SQLite initializes, so on the first open (later: SQLITE_MISUSE, no harm). */
static void sqlite_global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

tg_store_backend_t *tg_store_sqlite_open(const char *path, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_config);
    sq_t *q = tg_xcalloc(1, sizeof *q);
    q->base.ops = &sqlite_ops;
    q->path = tg_xstrdup(path);
    pthread_mutex_init(&q->pool_mu, NULL);
    pthread_mutex_init(&q->turn_mu, NULL);
    pthread_cond_init(&q->turn_cv, NULL);
    pthread_mutex_init(&q->ckpt_mu, NULL);
    pthread_cond_init(&q->ckpt_cv, NULL);
    if (tg_sqlite_writer_connect(q, true, err, errlen) != 0) {
        sq_close(&q->base);
        return NULL;
    }
    q->ckpt_started = pthread_create(&q->ckpt_thread, NULL, tg_sqlite_ckpt_main, q) == 0;
    if (q->ckpt_started)
        pthread_setname_np(q->ckpt_thread, "tg-sqlite-ckpt");
    return &q->base;
}
