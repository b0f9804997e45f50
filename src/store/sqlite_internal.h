/*
 * sqlite_internal.h — what the files of the SQLite back-end share, and
 * nothing outside src/store/ includes: the back-end object (sq_t) and the
 * functions one of its files calls in another. The public surface stays
 * tg_store_sqlite_open (store.h) and the ops table it returns.
 *
 *   sqlite.c         open, close, the ops table; the small SQL helpers
 *   sqlite_schema.c  the schema and its migrations
 *   sqlite_write.c   the write connection, batch inserts, the write turn,
 *                    the checkpointer (writer thread, checkpointer thread)
 *   sqlite_read.c    the read pool and the queries (any thread)
 *   sqlite_rules.c   the runtime rate-limit rules (API worker threads), and
 *                    the side connections they, the budgets and the outbox use
 *   sqlite_outbox.c  the webhook outbox (the events thread)
 *   sqlite_budgets.c spend sums and runtime budgets (main, API workers)
 *   sqlite_keys.c    the virtual keys of /api/v1/keys (main, API workers)
 *
 * Invariants: every value reaches SQL through a bound parameter; the SQL
 * text is built only from fixed fragments. A later schema version is added
 * as one more step in `migrations`.
 */
#ifndef TG_SQLITE_INTERNAL_H
#define TG_SQLITE_INTERNAL_H

#include "store/query.h"
#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define POOL_MAX 8

typedef struct {
    tg_store_backend_t base;
    char *path;
    sqlite3 *w;
    /* ins_req_n and ins_body_n insert INS_ROWS rows in one statement,
     * ins_req_w and ins_body_w INS_WIDE;
     * max_seq and has_seq serve write_batch's seq numbering */
    sqlite3_stmt *ins_req, *ins_req_n, *ins_req_w, *ins_prop, *ins_body, *ins_body_n, *ins_body_w;
    sqlite3_stmt *max_seq, *has_seq;
    pthread_mutex_t pool_mu;
    sqlite3 *pool[POOL_MAX];
    int n_pool;
    pthread_mutex_t turn_mu; /* the write turn: a FIFO ticket lock */
    pthread_cond_t turn_cv;
    uint64_t turn_next, turn_now;
    sqlite3 *rules;  /* rate-limit rule changes; with the turn; opened on first use */
    sqlite3 *outbox; /* the webhook outbox; with the turn; opened on first use */
    /* The checkpointer: a thread with a connection of its own that copies
     * the WAL into the database file once the writer's commits have grown
     * it past WAL_BYTES (on_wal_commit, sqlite_write.c), so that the writer
     * never stalls on a checkpoint (see the top of sqlite.c). */
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_want, ckpt_stop;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    int wal_frames; /* WAL_BYTES in frames of this database's page size */
} sq_t;

/* Functions shared between the sqlite*.c files (each defined in the file
 * named; everything else there is static to its file). */

/* sqlite.c: SQL helpers */
void tg_sqlite_set_err(char *err, size_t errlen, const char *what, sqlite3 *db);
int tg_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
int tg_sqlite_pragma_int(sqlite3 *db, const char *sql, int dflt);

/* sqlite_schema.c */
int tg_sqlite_migrate(sqlite3 *db, const char *path, char *err, size_t errlen);

/* sqlite_write.c: the writer's connection, its turn, the checkpointer */
int tg_sqlite_writer_connect(sq_t *q, bool first, char *err, size_t errlen);
void tg_sqlite_writer_disconnect(sq_t *q);
void *tg_sqlite_ckpt_main(void *arg);
void tg_sqlite_bind_str(sqlite3_stmt *st, int i, const char *s);
void tg_sqlite_turn_take(sq_t *q);
void tg_sqlite_turn_give(sq_t *q);
int tg_sqlite_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                    size_t errlen);
int tg_sqlite_reopen(tg_store_backend_t *b, char *err, size_t errlen);

/* sqlite_read.c: the read pool and the queries */
sqlite3 *tg_sqlite_reader_get(sq_t *q, char *err, size_t errlen);
void tg_sqlite_reader_put(sq_t *q, sqlite3 *db);
int tg_sqlite_list(tg_store_backend_t *b, const tg_query_t *q, tg_record_list_t *out, char *err,
                   size_t errlen);
int tg_sqlite_get(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err,
                  size_t errlen);
int tg_sqlite_costs(tg_store_backend_t *b, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                    size_t errlen);
int tg_sqlite_stats(tg_store_backend_t *b, const tg_query_t *q, tg_stats_t *out, char *err,
                    size_t errlen);
int tg_sqlite_series(tg_store_backend_t *b, const tg_query_t *q, tg_series_t *out, char *err,
                     size_t errlen);
int tg_sqlite_sessions(tg_store_backend_t *b, const tg_query_t *q, tg_sessions_t *out, char *err,
                       size_t errlen);

/* sqlite_rules.c: the runtime rate-limit rules; a side connection (*slot:
 * q->rules, q->outbox), opened on first use, synchronous=FULL, no
 * checkpoints; the caller holds the turn */
sqlite3 *tg_sqlite_side_db(sq_t *q, sqlite3 **slot, char *err, size_t errlen);
void tg_sqlite_side_drop(sqlite3 **slot);
int tg_sqlite_rule_save(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen);
int tg_sqlite_rule_delete(tg_store_backend_t *b, const char *id, char *err, size_t errlen);
int tg_sqlite_rules_load(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err,
                         size_t errlen);

/* sqlite_outbox.c: the webhook outbox */
int tg_sqlite_outbox_add(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                         size_t errlen);
int tg_sqlite_outbox_due(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                         size_t *n, int64_t *next_ms, char *err, size_t errlen);
int tg_sqlite_outbox_settle(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                            size_t errlen);
int tg_sqlite_outbox_rewind(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen);
/* Binds a statement's parameters from arg. */
typedef void (*tg_sqlite_bind_fn)(sqlite3_stmt *st, const void *arg);
/* One statement on the settings connection, with the turn: 0 and *changes,
 * or -1 with err (naming table). sqlite_rules.c. */
int tg_sqlite_settings_exec(sq_t *q, const char *table, const char *sql, tg_sqlite_bind_fn bind,
                            const void *arg, int *changes, char *err, size_t errlen);

/* sqlite_budgets.c */
/* Run a SELECT on a reader: bind (may be NULL), then row() for each row.
 * 0, or -1 with err (naming table). */
int tg_sqlite_select(sq_t *q, const char *table, const char *sql, tg_sqlite_bind_fn bind,
                     const void *barg, void (*row)(sqlite3_stmt *st, void *arg), void *rarg,
                     char *err, size_t errlen);
int tg_sqlite_spend_sums(tg_store_backend_t *b, const char *scope, int64_t since_ms,
                         int64_t until_ms, tg_store_spend_fn fn, void *arg, char *err,
                         size_t errlen);
int tg_sqlite_budget_save(tg_store_backend_t *b, const char *scope, const char *value,
                          const tg_budget_cfg_t *c, char *err, size_t errlen);
int tg_sqlite_budget_delete(tg_store_backend_t *b, const char *scope, const char *value, char *err,
                            size_t errlen);
int tg_sqlite_budgets_load(tg_store_backend_t *b, tg_store_budget_fn fn, void *arg, char *err,
                           size_t errlen);

/* sqlite_keys.c */
int tg_sqlite_key_save(tg_store_backend_t *b, const tg_vkey_t *k, char *err, size_t errlen);
int tg_sqlite_key_delete(tg_store_backend_t *b, const char *name, char *err, size_t errlen);
int tg_sqlite_keys_load(tg_store_backend_t *b, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                        char *err, size_t errlen);

#endif
