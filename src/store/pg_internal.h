/*
 * pg_internal.h — what the files of the PostgreSQL back-end share, and
 * nothing outside src/store/ includes: the back-end object (pg_t) and the
 * functions one of its files calls in another. The public surface stays
 * tg_store_pg_open (store.h) and the ops table it returns.
 *
 *   pg.c           open, close, the ops table; connections, errors, the
 *                  small libpq helpers
 *   pg_schema.c    the schema and its migrations, under an advisory lock
 *   pg_write.c     the writer's connection and a batch in one transaction
 *                  (COPY into temporary tables, then one INSERT ... SELECT
 *                  ON CONFLICT DO NOTHING) (writer thread)
 *   pg_read.c      the reader pool, the reader of the shared queries
 *                  (sql_read.h) and the spend sums (any thread)
 *   pg_settings.c  rules, budgets, keys and the webhook outbox on the
 *                  settings connection (API workers, the events thread)
 *
 * Invariants: every value reaches SQL as a parameter ($1...) or as COPY
 * data; the SQL text is built only from fixed fragments. Times are ms since
 * the epoch (bigint), cost nano-USD (bigint), as in the SQLite store.
 */
#ifndef TG_PG_INTERNAL_H
#define TG_PG_INTERNAL_H

#include "store/query.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PG_POOL_MAX 8

typedef struct {
    tg_store_backend_t base;
    char *url;       /* as configured: holds the password; never printed */
    char *display;   /* the URL with its password masked, for messages */
    PGconn *w;       /* the writer's connection; writer thread only */
    int64_t written; /* records this process wrote (writer thread) */
    pthread_mutex_t pool_mu;
    PGconn *pool[PG_POOL_MAX]; /* idle readers */
    int n_pool;
    pthread_mutex_t set_mu; /* the settings connection, one call at a time */
    PGconn *set;
} pg_t;

/* pg.c */
/* A new connection with the gateway's defaults (connect_timeout, TCP
 * keepalives, UTF-8, application_name) under the URL's own settings, and
 * `statement_timeout_ms` on each statement. NULL with err (no password in
 * it) when it fails. */
PGconn *tg_pg_connect(pg_t *p, int statement_timeout_ms, char *err, size_t errlen);
/* err = "what: <the server's or libpq's message>", masked. */
void tg_pg_set_err(char *err, size_t errlen, const char *what, const PGconn *c, const PGresult *r);
/* Run a statement without parameters; 0, or -1 with err. */
int tg_pg_exec(PGconn *c, const char *sql, char *err, size_t errlen);
/* Run a statement with text parameters (NULL values are SQL NULL), or
 * binary ones where lens[i] > 0 (bytea); the result (PQclear it), or NULL
 * with err. */
PGresult *tg_pg_query(PGconn *c, const char *what, const char *sql, int n, const char *const *vals,
                      const int *lens, char *err, size_t errlen);
/* Whether a failure was the connection's (retry on a new one) rather than
 * the statement's. */
bool tg_pg_conn_lost(const PGconn *c);
/* The int64 of a text value (NULL or empty: dflt). */
int64_t tg_pg_i64(const PGresult *r, int row, int col, int64_t dflt);

/* pg_schema.c */
int tg_pg_migrate(PGconn *c, char *err, size_t errlen);

/* pg_write.c */
int tg_pg_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                size_t errlen);
int tg_pg_reopen(tg_store_backend_t *b, char *err, size_t errlen);
int tg_pg_writer_connect(pg_t *p, char *err, size_t errlen);

/* pg_read.c */
PGconn *tg_pg_reader_get(pg_t *p, char *err, size_t errlen);
void tg_pg_reader_put(pg_t *p, PGconn *c);
int tg_pg_list(tg_store_backend_t *b, const tg_query_t *q, tg_record_list_t *out, char *err,
               size_t errlen);
int tg_pg_get(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err, size_t errlen);
int tg_pg_costs(tg_store_backend_t *b, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                size_t errlen);
int tg_pg_stats(tg_store_backend_t *b, const tg_query_t *q, tg_stats_t *out, char *err,
                size_t errlen);
int tg_pg_series(tg_store_backend_t *b, const tg_query_t *q, tg_series_t *out, char *err,
                 size_t errlen);
int tg_pg_sessions(tg_store_backend_t *b, const tg_query_t *q, tg_sessions_t *out, char *err,
                   size_t errlen);
int tg_pg_spend_sums(tg_store_backend_t *b, const char *scope, int64_t since_ms, int64_t until_ms,
                     tg_store_spend_fn fn, void *arg, char *err, size_t errlen);
/* Run a SELECT on a reader; row() for each row of the result. 0, or -1
 * with err. */
int tg_pg_select(pg_t *p, const char *what, const char *sql, int n, const char *const *vals,
                 void (*row)(const PGresult *r, int i, void *arg), void *arg, char *err,
                 size_t errlen);

/* pg_settings.c */
int tg_pg_rule_save(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen);
int tg_pg_rule_delete(tg_store_backend_t *b, const char *id, char *err, size_t errlen);
int tg_pg_rules_load(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err,
                     size_t errlen);
int tg_pg_outbox_add(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                     size_t errlen);
int tg_pg_outbox_due(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                     size_t *n, int64_t *next_ms, char *err, size_t errlen);
int tg_pg_outbox_settle(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                        size_t errlen);
int tg_pg_outbox_rewind(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen);
int tg_pg_budget_save(tg_store_backend_t *b, const char *scope, const char *value,
                      const tg_budget_cfg_t *c, char *err, size_t errlen);
int tg_pg_budget_delete(tg_store_backend_t *b, const char *scope, const char *value, char *err,
                        size_t errlen);
int tg_pg_budgets_load(tg_store_backend_t *b, tg_store_budget_fn fn, void *arg, char *err,
                       size_t errlen);
int tg_pg_key_save(tg_store_backend_t *b, const tg_vkey_t *k, char *err, size_t errlen);
int tg_pg_key_delete(tg_store_backend_t *b, const char *name, char *err, size_t errlen);
int tg_pg_keys_load(tg_store_backend_t *b, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                    char *err, size_t errlen);

#endif
