/*
 * sqlite_rules.c — the runtime rate-limit rules of /api/v1/rate-limits in
 * SQLite: save, delete, load. Separate because the rules have their own
 * connection (synchronous=FULL, no checkpoints) and their own callers;
 * they take the writer's turn for their single-row transactions.
 *
 * Threads: the API's worker threads, one change at a time (the turn).
 */
#include "store/sqlite_internal.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>

/* ---- runtime rate-limit rules ---- */

/* The rules connection, opened on first use. With the turn. */
sqlite3 *tg_sqlite_rules_db(sq_t *q, char *err, size_t errlen)
{
    if (q->rules)
        return q->rules;
    if (sqlite3_open_v2(q->path, &q->rules, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, q->path, q->rules);
        sqlite3_close_v2(q->rules);
        q->rules = NULL;
        return NULL;
    }
    /* only another process can hold the lock now: wait a little, not forever */
    sqlite3_busy_timeout(q->rules, 2000);
    char msg[128];
    tg_sqlite_exec(q->rules, "PRAGMA synchronous=FULL", msg, sizeof msg);
    tg_sqlite_exec(q->rules, "PRAGMA wal_autocheckpoint=0", msg, sizeof msg);
    return q->rules;
}

void tg_sqlite_rules_db_drop(sq_t *q)
{
    if (q->rules) {
        sqlite3_close_v2(q->rules);
        q->rules = NULL;
    }
}

/* Run one statement on the settings connection: 0 and *changes, or -1
 * with err. A failed connection is dropped, so the next call starts afresh
 * (as the writer does after a spell of a read-only or locked database). */
int tg_sqlite_settings_exec(sq_t *q, const char *table, const char *sql, tg_sqlite_bind_fn bind,
                            const void *arg, int *changes, char *err, size_t errlen)
{
    tg_sqlite_turn_take(q);
    int ret = -1;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = tg_sqlite_rules_db(q, err, errlen);
    if (!db)
        goto out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, table, db);
        goto out;
    }
    bind(st, arg);
    if (sqlite3_step(st) != SQLITE_DONE) {
        tg_sqlite_set_err(err, errlen, table, db);
        goto out;
    }
    *changes = sqlite3_changes(db);
    ret = 0;
out:
    sqlite3_finalize(st);
    if (ret != 0)
        tg_sqlite_rules_db_drop(q);
    tg_sqlite_turn_give(q);
    return ret;
}

static void bind_rule(sqlite3_stmt *st, const void *arg)
{
    const tg_rl_rule_t *r = arg;
    tg_sqlite_bind_str(st, 1, r->id);
    tg_sqlite_bind_str(st, 2, r->property);
    tg_sqlite_bind_str(st, 3, r->value);
    sqlite3_bind_int64(st, 4, r->policy.quota);
    sqlite3_bind_int64(st, 5, r->policy.window_s);
    tg_sqlite_bind_str(st, 6, tg_rl_unit_name(r->policy.unit));
    sqlite3_bind_int64(st, 7, tg_wall_ms());
}

static void bind_id(sqlite3_stmt *st, const void *arg)
{
    tg_sqlite_bind_str(st, 1, arg);
}

static int rules_exec(sq_t *q, const char *sql, const tg_rl_rule_t *r, const char *id, int *changes,
                      char *err, size_t errlen)
{
    return tg_sqlite_settings_exec(q, "rate_limit_rules", sql, r ? bind_rule : bind_id,
                                   r ? (const void *)r : (const void *)id, changes, err, errlen);
}

int tg_sqlite_rule_save(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen)
{
    int changes = 0;
    return rules_exec((sq_t *)b,
                      "INSERT INTO rate_limit_rules(id, property, value, quota, window_s, unit,"
                      " created_at) VALUES (?,?,?,?,?,?,?)",
                      rule, NULL, &changes, err, errlen);
}

int tg_sqlite_rule_delete(tg_store_backend_t *b, const char *id, char *err, size_t errlen)
{
    int changes = 0;
    if (rules_exec((sq_t *)b, "DELETE FROM rate_limit_rules WHERE id = ?", NULL, id, &changes, err,
                   errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

/* Column i as text into dst[cap]: false when NULL, empty or too long. */
static bool col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!v || !n || n >= cap || memchr(v, 0, n))
        return false;
    memcpy(dst, v, n + 1);
    return true;
}

typedef struct {
    tg_rl_rule_t *list;
    size_t n, cap;
} rules_t;

static void rule_row(sqlite3_stmt *st, void *arg)
{
    rules_t *out = arg;
    tg_rl_rule_t r;
    memset(&r, 0, sizeof r);
    const char *unit = (const char *)sqlite3_column_text(st, 5);
    r.policy.quota = sqlite3_column_int64(st, 3);
    r.policy.window_s = sqlite3_column_int64(st, 4);
    if (!col_copy(st, 0, r.id, sizeof r.id) || !col_copy(st, 1, r.property, sizeof r.property) ||
        !col_copy(st, 2, r.value, sizeof r.value) || r.policy.quota < 1 || r.policy.window_s < 1 ||
        !unit || tg_rl_unit_parse(unit, (size_t)sqlite3_column_bytes(st, 5), &r.policy.unit) < 0) {
        /* only a hand-edited row can look like this */
        tg_warn("store: rate_limit_rules row %.40s is not a valid rule; skipped",
                sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
        return;
    }
    tg_rl_rule_normalize(&r);
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->list = tg_xrealloc(out->list, out->cap * sizeof *out->list);
    }
    out->list[out->n++] = r;
}

int tg_sqlite_rules_load(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err,
                         size_t errlen)
{
    rules_t r = {NULL, 0, 0};
    int rc = tg_sqlite_select((sq_t *)b, "rate_limit_rules",
                              "SELECT id, property, value, quota, window_s, unit"
                              " FROM rate_limit_rules ORDER BY rowid",
                              NULL, NULL, rule_row, &r, err, errlen);
    if (rc < 0) {
        free(r.list);
        r.list = NULL;
        r.n = 0;
    }
    *out = r.list;
    *n = r.n;
    return rc;
}
