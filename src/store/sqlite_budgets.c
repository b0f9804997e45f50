/*
 * sqlite_budgets.c — what the budgets keep in SQLite: the spend sums read
 * back at start (from requests and request_properties), and the runtime
 * budgets of /api/v1/budgets (table budgets, schema version 4), saved on
 * the settings connection like the runtime rate limits (sqlite_rules.c).
 *
 * Threads: the sums and the load on main (gateway start) or a worker (a
 * new runtime scope); save and delete on the API's workers, with the turn.
 */
#include "store/sqlite_internal.h"

#include "budget/budget.h"

#include <stdio.h>
#include <string.h>

/* Column i as text, NULL when NULL. */
static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int tg_sqlite_select(sq_t *q, const char *table, const char *sql, tg_sqlite_bind_fn bind,
                     const void *barg, void (*row)(sqlite3_stmt *st, void *arg), void *rarg,
                     char *err, size_t errlen)
{
    sqlite3 *db = tg_sqlite_reader_get(q, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1, rc;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, table, db);
        goto out;
    }
    if (bind)
        bind(st, barg);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        row(st, rarg);
    if (rc != SQLITE_DONE) {
        tg_sqlite_set_err(err, errlen, table, db);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    tg_sqlite_reader_put(q, db);
    return ret;
}

typedef struct {
    const char *scope;
    int64_t since_ms, until_ms;
    tg_store_spend_fn fn;
    void *arg;
} sums_t;

static void bind_sums(sqlite3_stmt *st, const void *arg)
{
    const sums_t *a = arg;
    sqlite3_bind_int64(st, 1, a->since_ms);
    sqlite3_bind_int64(st, 3, a->until_ms);
    if (!strncmp(a->scope, "property:", 9))
        tg_sqlite_bind_str(st, 2, a->scope + 9);
}

static void sum_row(sqlite3_stmt *st, void *arg)
{
    sums_t *a = arg;
    if (col_text(st, 0))
        a->fn(a->arg, col_text(st, 0), sqlite3_column_int64(st, 1));
}

int tg_sqlite_spend_sums(tg_store_backend_t *b, const char *scope, int64_t since_ms,
                         int64_t until_ms, tg_store_spend_fn fn, void *arg, char *err,
                         size_t errlen)
{
    const char *sql;
    if (!strcmp(scope, "global"))
        sql = "SELECT '*', SUM(cost_nusd) FROM requests WHERE created_at >= ?1"
              " AND created_at < ?3";
    else if (!strcmp(scope, "key"))
        sql = "SELECT key_name, SUM(cost_nusd) FROM requests WHERE created_at >= ?1"
              " AND created_at < ?3 AND key_name IS NOT NULL GROUP BY key_name";
    else if (!strcmp(scope, "user"))
        sql = "SELECT user_id, SUM(cost_nusd) FROM requests WHERE created_at >= ?1"
              " AND created_at < ?3 AND user_id IS NOT NULL GROUP BY user_id";
    else if (!strncmp(scope, "property:", 9))
        sql = "SELECT p.value, SUM(r.cost_nusd) FROM request_properties p"
              " JOIN requests r ON r.seq = p.seq"
              " WHERE p.name = ?2 AND p.created_at >= ?1 AND p.created_at < ?3"
              " GROUP BY p.value";
    else {
        snprintf(err, errlen, "unknown budget scope '%.80s'", scope);
        return -1;
    }
    sums_t a = {scope, since_ms, until_ms, fn, arg};
    return tg_sqlite_select((sq_t *)b, "requests", sql, bind_sums, &a, sum_row, &a, err, errlen);
}

typedef struct {
    const char *scope, *value;
    const tg_budget_cfg_t *c;
} budget_args_t;

static void bind_budget(sqlite3_stmt *st, const void *arg)
{
    const budget_args_t *a = arg;
    tg_sqlite_bind_str(st, 1, a->scope);
    tg_sqlite_bind_str(st, 2, a->value);
    if (!a->c)
        return;
    if (a->c->daily >= 0)
        sqlite3_bind_double(st, 3, a->c->daily);
    if (a->c->monthly >= 0)
        sqlite3_bind_double(st, 4, a->c->monthly);
    tg_sqlite_bind_str(st, 5, tg_budget_action_name(a->c->action));
    sqlite3_bind_double(st, 6, a->c->warning_threshold);
    sqlite3_bind_int64(st, 7, tg_wall_ms());
}

int tg_sqlite_budget_save(tg_store_backend_t *b, const char *scope, const char *value,
                          const tg_budget_cfg_t *c, char *err, size_t errlen)
{
    int changes = 0;
    budget_args_t a = {scope, value, c};
    return tg_sqlite_settings_exec((sq_t *)b, "budgets",
                                   "INSERT OR REPLACE INTO budgets(scope, value, daily, monthly,"
                                   " action, warning_threshold, updated_at) VALUES (?,?,?,?,?,?,?)",
                                   bind_budget, &a, &changes, err, errlen);
}

int tg_sqlite_budget_delete(tg_store_backend_t *b, const char *scope, const char *value, char *err,
                            size_t errlen)
{
    int changes = 0;
    budget_args_t a = {scope, value, NULL};
    if (tg_sqlite_settings_exec((sq_t *)b, "budgets",
                                "DELETE FROM budgets WHERE scope = ? AND value = ?", bind_budget,
                                &a, &changes, err, errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

typedef struct {
    tg_store_budget_fn fn;
    void *arg;
} load_t;

static void budget_row(sqlite3_stmt *st, void *arg)
{
    load_t *a = arg;
    tg_budget_cfg_t c = {
        sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 2),
        sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 3),
        tg_budget_action_parse(col_text(st, 4)),
        sqlite3_column_double(st, 5),
    };
    if (!col_text(st, 0) || !col_text(st, 1) || c.action < 0)
        return; /* only a hand-edited row */
    a->fn(a->arg, col_text(st, 0), col_text(st, 1), &c);
}

int tg_sqlite_budgets_load(tg_store_backend_t *b, tg_store_budget_fn fn, void *arg, char *err,
                           size_t errlen)
{
    load_t a = {fn, arg};
    return tg_sqlite_select((sq_t *)b, "budgets",
                            "SELECT scope, value, daily, monthly, action, warning_threshold"
                            " FROM budgets ORDER BY rowid",
                            NULL, NULL, budget_row, &a, err, errlen);
}
