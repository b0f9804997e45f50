/*
 * pg.c — the PostgreSQL back-end of the request store (see store.h), for
 * fleets: several gateways write to and read from one database.
 *
 * Connections: one for the writer thread (each batch one transaction,
 * pg_write.c); a small pool of readers taken by whichever thread runs a
 * query (the API's reader threads), each statement under a
 * statement_timeout so that a slow query never holds a reader for long;
 * one settings connection (rate-limit rules, budgets, keys, the webhook
 * outbox), one call at a time, each call one transaction that is durable
 * when the call returns. Every connection is made with a connect timeout
 * and TCP keepalives (a database that vanishes without a word fails the
 * call within seconds, it does not hang it) and is dropped after a
 * failure, so that the next call reconnects.
 *
 * The URL holds the password: it is kept for libpq only; every message
 * shows `display`, the URL masked by tg_redact_secrets.
 *
 * This file opens and closes the back-end and holds the small libpq
 * helpers every part uses; the parts are separate files (pg_internal.h).
 *
 * Threads: tg_store_pg_open and pg_close on the main thread; the helpers
 * on whichever thread calls them.
 */
#include "store/pg_internal.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_pg_set_err(char *err, size_t errlen, const char *what, const PGconn *c, const PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = c ? PQerrorMessage(c) : "out of memory";
    char *safe = tg_redact_secrets(m);
    size_t n = strlen(safe);
    while (n && (safe[n - 1] == '\n' || safe[n - 1] == ' '))
        safe[--n] = '\0';
    for (char *q = safe; *q; q++) /* libpq's messages may span lines */
        if (*q == '\n' || *q == '\t')
            *q = ' ';
    snprintf(err, errlen, "%s: %s", what, *safe ? safe : "failed");
    free(safe);
}

/* The server's notices ("relation ... already exists, skipping" at each
 * migration check) are for the debug log, not the gateway's output. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    char *safe = tg_redact_secrets(msg);
    size_t n = strlen(safe);
    while (n && safe[n - 1] == '\n')
        safe[--n] = '\0';
    tg_debug("store: postgresql: %s", safe);
    free(safe);
}

PGconn *tg_pg_connect(pg_t *p, int statement_timeout_ms, char *err, size_t errlen)
{
    /* the gateway's defaults first: settings in the URL come later and win */
    static const char *const keys[] = {
        "connect_timeout",  "keepalives",
        "keepalives_idle",  "keepalives_interval",
        "keepalives_count", "tcp_user_timeout",
        "application_name", "client_encoding",
        "dbname",           NULL,
    };
    const char *vals[] = {"5", "1", "5", "2", "3", "10000", "tollgate", "UTF8", p->url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        tg_pg_set_err(err, errlen, p->display, c, NULL);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    char ms[24];
    snprintf(ms, sizeof ms, "%d", statement_timeout_ms);
    const char *const v[] = {ms};
    PGresult *r = tg_pg_query(c, p->display, "SELECT set_config('statement_timeout', $1, false)", 1,
                              v, NULL, err, errlen);
    if (!r) {
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

int tg_pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ret = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (ret)
        tg_pg_set_err(err, errlen, "postgresql", c, r);
    PQclear(r);
    return ret;
}

PGresult *tg_pg_query(PGconn *c, const char *what, const char *sql, int n, const char *const *vals,
                      const int *lens, char *err, size_t errlen)
{
    int fmts[16] = {0};
    if (lens)
        for (int i = 0; i < n && i < 16; i++)
            fmts[i] = lens[i] > 0;
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, lens ? fmts : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    tg_pg_set_err(err, errlen, what, c, r);
    PQclear(r);
    return NULL;
}

bool tg_pg_conn_lost(const PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK;
}

int64_t tg_pg_i64(const PGresult *r, int row, int col, int64_t dflt)
{
    if (PQgetisnull(r, row, col))
        return dflt;
    const char *v = PQgetvalue(r, row, col);
    return *v ? strtoll(v, NULL, 10) : dflt;
}

static void pg_close(tg_store_backend_t *b)
{
    pg_t *p = (pg_t *)b;
    PQfinish(p->w);
    for (int i = 0; i < p->n_pool; i++)
        PQfinish(p->pool[i]);
    PQfinish(p->set);
    pthread_mutex_destroy(&p->pool_mu);
    pthread_mutex_destroy(&p->set_mu);
    free(p->url);
    free(p->display);
    free(p);
}

static const tg_store_ops_t pg_ops = {
    .name = "postgresql",
    .write = tg_pg_write,
    .reopen = tg_pg_reopen,
    .list = tg_pg_list,
    .get = tg_pg_get,
    .costs = tg_pg_costs,
    .stats = tg_pg_stats,
    .series = tg_pg_series,
    .sessions = tg_pg_sessions,
    .rule_save = tg_pg_rule_save,
    .rule_delete = tg_pg_rule_delete,
    .rules_load = tg_pg_rules_load,
    .outbox_add = tg_pg_outbox_add,
    .outbox_due = tg_pg_outbox_due,
    .outbox_settle = tg_pg_outbox_settle,
    .outbox_rewind = tg_pg_outbox_rewind,
    .spend_sums = tg_pg_spend_sums,
    .budget_save = tg_pg_budget_save,
    .budget_delete = tg_pg_budget_delete,
    .budgets_load = tg_pg_budgets_load,
    .key_save = tg_pg_key_save,
    .key_delete = tg_pg_key_delete,
    .keys_load = tg_pg_keys_load,
    .close = pg_close,
};

tg_store_backend_t *tg_store_pg_open(const char *url, char *err, size_t errlen)
{
    pg_t *p = tg_xcalloc(1, sizeof *p);
    p->base.ops = &pg_ops;
    p->url = tg_xstrdup(url);
    p->display = tg_redact_secrets(url);
    pthread_mutex_init(&p->pool_mu, NULL);
    pthread_mutex_init(&p->set_mu, NULL);
    if (tg_pg_writer_connect(p, err, errlen) != 0) {
        pg_close(&p->base);
        return NULL;
    }
    return &p->base;
}
