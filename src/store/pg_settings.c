/*
 * pg_settings.c — what the PostgreSQL store keeps besides records: the
 * runtime rate limits, budgets and virtual keys of the API, and the
 * webhook outbox. Each change is one transaction on the settings
 * connection, committed (durable) before the call returns; the loads at
 * start read through a reader. A connection that failed is dropped, so
 * the next call reconnects.
 *
 * Threads: the API's workers (rules, budgets, keys), the events thread
 * (the outbox), main (the loads); one call at a time on the settings
 * connection (set_mu).
 */
#include "store/pg_internal.h"

#include "budget/budget.h"
#include "core/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETTINGS_TIMEOUT_MS 10000

/* The settings connection, locked, in a transaction: NULL with err (and
 * unlocked) when it cannot be had. */
static PGconn *settings_begin(pg_t *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->set_mu);
    /* twice: a connection the server closed since the last call is
     * replaced by a new one */
    for (int i = 0; i < 2; i++) {
        if (!p->set)
            p->set = tg_pg_connect(p, SETTINGS_TIMEOUT_MS, err, errlen);
        if (p->set && tg_pg_exec(p->set, "BEGIN", err, errlen) == 0)
            return p->set;
        bool lost = p->set && tg_pg_conn_lost(p->set);
        PQfinish(p->set);
        p->set = NULL;
        if (!lost)
            break;
    }
    pthread_mutex_unlock(&p->set_mu);
    return NULL;
}

/* Commit (ok) or roll back, unlock. 0, or -1 with err. */
static int settings_end(pg_t *p, bool ok, char *err, size_t errlen)
{
    char msg[128];
    if (ok && tg_pg_exec(p->set, "COMMIT", err, errlen) != 0)
        ok = false;
    if (!ok) {
        if (!tg_pg_conn_lost(p->set) && PQtransactionStatus(p->set) != PQTRANS_IDLE)
            tg_pg_exec(p->set, "ROLLBACK", msg, sizeof msg);
        if (tg_pg_conn_lost(p->set)) {
            PQfinish(p->set);
            p->set = NULL;
        }
    }
    pthread_mutex_unlock(&p->set_mu);
    return ok ? 0 : -1;
}

/* One statement, in a transaction of its own: 0 and the rows it changed
 * (*changes may be NULL), or -1 with err. */
static int settings_exec(pg_t *p, const char *what, const char *sql, int n, const char *const *vals,
                         const int *lens, int *changes, char *err, size_t errlen)
{
    PGconn *c = settings_begin(p, err, errlen);
    if (!c)
        return -1;
    PGresult *r = tg_pg_query(c, what, sql, n, vals, lens, err, errlen);
    if (r && changes)
        *changes = atoi(PQcmdTuples(r));
    PQclear(r);
    return settings_end(p, r != NULL, err, errlen);
}

static void put_i64(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%lld", (long long)v);
}

/* A number of USD, NULL when < 0 (none). */
static const char *put_usd(char *buf, size_t len, double v)
{
    if (v < 0)
        return NULL;
    snprintf(buf, len, "%.17g", v);
    return buf;
}

static double get_usd(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? -1 : strtod(PQgetvalue(r, row, col), NULL);
}

/* ---- runtime rate-limit rules ---- */

int tg_pg_rule_save(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen)
{
    char quota[24], window[24], now[24];
    put_i64(quota, sizeof quota, rule->policy.quota);
    put_i64(window, sizeof window, rule->policy.window_s);
    put_i64(now, sizeof now, tg_wall_ms());
    const char *const v[] = {rule->id, rule->property, rule->value,
                             quota,    window,         tg_rl_unit_name(rule->policy.unit),
                             now};
    return settings_exec((pg_t *)b, "rate_limit_rules",
                         "INSERT INTO rate_limit_rules(id, property, value, quota, window_s, unit,"
                         " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                         7, v, NULL, NULL, err, errlen);
}

int tg_pg_rule_delete(tg_store_backend_t *b, const char *id, char *err, size_t errlen)
{
    int changes = 0;
    const char *const v[] = {id};
    if (settings_exec((pg_t *)b, "rate_limit_rules", "DELETE FROM rate_limit_rules WHERE id = $1",
                      1, v, NULL, &changes, err, errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

/* Column col as text into dst[cap]: false when NULL, empty or too long. */
static bool col_copy(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    size_t n = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || !n || n >= cap)
        return false;
    memcpy(dst, PQgetvalue(r, row, col), n + 1);
    return true;
}

typedef struct {
    tg_rl_rule_t *list;
    size_t n, cap;
} rules_t;

static void rule_row(const PGresult *res, int i, void *arg)
{
    rules_t *out = arg;
    tg_rl_rule_t r;
    memset(&r, 0, sizeof r);
    const char *unit = PQgetvalue(res, i, 5);
    r.policy.quota = tg_pg_i64(res, i, 3, 0);
    r.policy.window_s = tg_pg_i64(res, i, 4, 0);
    if (!col_copy(res, i, 0, r.id, sizeof r.id) ||
        !col_copy(res, i, 1, r.property, sizeof r.property) ||
        !col_copy(res, i, 2, r.value, sizeof r.value) || r.policy.quota < 1 ||
        r.policy.window_s < 1 ||
        tg_rl_unit_parse(unit, (size_t)PQgetlength(res, i, 5), &r.policy.unit) < 0) {
        tg_warn("store: rate_limit_rules row %.40s is not a valid rule; skipped",
                PQgetvalue(res, i, 0));
        return;
    }
    tg_rl_rule_normalize(&r);
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->list = tg_xrealloc(out->list, out->cap * sizeof *out->list);
    }
    out->list[out->n++] = r;
}

int tg_pg_rules_load(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err, size_t errlen)
{
    rules_t r = {NULL, 0, 0};
    int rc = tg_pg_select((pg_t *)b, "rate_limit_rules",
                          "SELECT id, property, value, quota, window_s, unit"
                          " FROM rate_limit_rules ORDER BY pos",
                          0, NULL, rule_row, &r, err, errlen);
    if (rc < 0) {
        free(r.list);
        r.list = NULL;
        r.n = 0;
    }
    *out = r.list;
    *n = r.n;
    return rc;
}

/* ---- budgets ---- */

int tg_pg_budget_save(tg_store_backend_t *b, const char *scope, const char *value,
                      const tg_budget_cfg_t *c, char *err, size_t errlen)
{
    char daily[32], monthly[32], warn[32], now[24];
    snprintf(warn, sizeof warn, "%.17g", c->warning_threshold);
    put_i64(now, sizeof now, tg_wall_ms());
    const char *const v[] = {scope,
                             value,
                             put_usd(daily, sizeof daily, c->daily),
                             put_usd(monthly, sizeof monthly, c->monthly),
                             tg_budget_action_name(c->action),
                             warn,
                             now};
    /* a save moves the budget to the end of the order, as SQLite's
     * INSERT OR REPLACE does */
    return settings_exec((pg_t *)b, "budgets",
                         "INSERT INTO budgets(scope, value, daily, monthly, action,"
                         " warning_threshold, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                         " ON CONFLICT (scope, value) DO UPDATE SET pos = DEFAULT,"
                         " daily = EXCLUDED.daily, monthly = EXCLUDED.monthly,"
                         " action = EXCLUDED.action,"
                         " warning_threshold = EXCLUDED.warning_threshold,"
                         " updated_at = EXCLUDED.updated_at",
                         7, v, NULL, NULL, err, errlen);
}

int tg_pg_budget_delete(tg_store_backend_t *b, const char *scope, const char *value, char *err,
                        size_t errlen)
{
    int changes = 0;
    const char *const v[] = {scope, value};
    if (settings_exec((pg_t *)b, "budgets", "DELETE FROM budgets WHERE scope = $1 AND value = $2",
                      2, v, NULL, &changes, err, errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

typedef struct {
    tg_store_budget_fn fn;
    void *arg;
} budgets_t;

static void budget_row(const PGresult *r, int i, void *arg)
{
    budgets_t *a = arg;
    tg_budget_cfg_t c = {
        get_usd(r, i, 2),
        get_usd(r, i, 3),
        tg_budget_action_parse(PQgetvalue(r, i, 4)),
        strtod(PQgetvalue(r, i, 5), NULL),
    };
    if (c.action < 0)
        return; /* only a hand-edited row */
    a->fn(a->arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &c);
}

int tg_pg_budgets_load(tg_store_backend_t *b, tg_store_budget_fn fn, void *arg, char *err,
                       size_t errlen)
{
    budgets_t a = {fn, arg};
    return tg_pg_select((pg_t *)b, "budgets",
                        "SELECT scope, value, daily, monthly, action, warning_threshold"
                        " FROM budgets ORDER BY pos",
                        0, NULL, budget_row, &a, err, errlen);
}

/* ---- virtual keys ---- */

int tg_pg_key_save(tg_store_backend_t *b, const tg_vkey_t *k, char *err, size_t errlen)
{
    json_t *models = json_array();
    for (size_t i = 0; i < k->n_models; i++)
        json_array_append_new(models, json_string(k->models[i]));
    char *m = json_dumps(models, JSON_COMPACT);
    json_decref(models);
    char rd[2] = {k->perm_read ? '1' : '0', 0}, wr[2] = {k->perm_write ? '1' : '0', 0};
    char daily[32], monthly[32], rpm[24], tpm[24], exp[24], created[24];
    put_i64(rpm, sizeof rpm, k->rate.requests_per_minute);
    put_i64(tpm, sizeof tpm, k->rate.tokens_per_minute);
    put_i64(exp, sizeof exp, k->expires_at);
    put_i64(created, sizeof created, k->created_at);
    const char *const v[] = {k->name,
                             (const char *)k->hash,
                             rd,
                             wr,
                             m ? m : "[]",
                             put_usd(daily, sizeof daily, k->budget_daily),
                             put_usd(monthly, sizeof monthly, k->budget_monthly),
                             rpm,
                             tpm,
                             k->expires_at > 0 ? exp : NULL,
                             k->metadata,
                             created};
    const int lens[12] = {0, (int)sizeof k->hash}; /* the hash as bytes (bytea) */
    int rc = settings_exec((pg_t *)b, "api_keys",
                           "INSERT INTO api_keys(name, key_sha256, perm_read, perm_write,"
                           " models, budget_daily, budget_monthly, requests_per_minute,"
                           " tokens_per_minute, expires_at, metadata, created_at)"
                           " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                           12, v, lens, NULL, err, errlen);
    free(m);
    return rc;
}

int tg_pg_key_delete(tg_store_backend_t *b, const char *name, char *err, size_t errlen)
{
    int changes = 0;
    const char *const v[] = {name};
    if (settings_exec((pg_t *)b, "api_keys", "DELETE FROM api_keys WHERE name = $1", 1, v, NULL,
                      &changes, err, errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

typedef struct {
    void (*fn)(void *arg, const tg_vkey_t *k);
    void *arg;
} keys_t;

static void key_row(const PGresult *r, int i, void *arg)
{
    keys_t *a = arg;
    tg_vkey_t k;
    memset(&k, 0, sizeof k);
    const char *name = PQgetvalue(r, i, 0);
    size_t hlen = 0;
    unsigned char *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 1), &hlen);
    if (!*name || strlen(name) >= sizeof k.name || !hash || hlen != sizeof k.hash) {
        tg_warn("store: api_keys row %.40s is not a valid key; skipped", *name ? name : "?");
        PQfreemem(hash);
        return;
    }
    memcpy(k.name, name, strlen(name) + 1);
    memcpy(k.hash, hash, sizeof k.hash);
    PQfreemem(hash);
    k.perm_read = tg_pg_i64(r, i, 2, 0) != 0;
    k.perm_write = tg_pg_i64(r, i, 3, 0) != 0;
    json_t *models = json_loads(PQgetvalue(r, i, 4), 0, NULL);
    size_t j;
    json_t *m;
    json_array_foreach(models, j, m)
    {
        if (json_is_string(m) && k.n_models < TG_KEY_MAX_MODELS)
            k.models[k.n_models++] = (char *)(uintptr_t)json_string_value(m);
    }
    k.budget_daily = get_usd(r, i, 5);
    k.budget_monthly = get_usd(r, i, 6);
    k.rate.requests_per_minute = tg_pg_i64(r, i, 7, 0);
    k.rate.tokens_per_minute = tg_pg_i64(r, i, 8, 0);
    k.expires_at = tg_pg_i64(r, i, 9, 0);
    k.metadata = PQgetisnull(r, i, 10) ? NULL : PQgetvalue(r, i, 10);
    k.created_at = tg_pg_i64(r, i, 11, 0);
    a->fn(a->arg, &k); /* copies what it keeps */
    json_decref(models);
}

int tg_pg_keys_load(tg_store_backend_t *b, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                    char *err, size_t errlen)
{
    keys_t a = {fn, arg};
    return tg_pg_select((pg_t *)b, "api_keys",
                        "SELECT name, key_sha256, perm_read, perm_write, models,"
                        " budget_daily, budget_monthly, requests_per_minute,"
                        " tokens_per_minute, expires_at, metadata, created_at"
                        " FROM api_keys ORDER BY pos",
                        0, NULL, key_row, &a, err, errlen);
}

/* ---- the webhook outbox ---- */

int tg_pg_outbox_add(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                     size_t errlen)
{
    pg_t *p = (pg_t *)b;
    PGconn *c = settings_begin(p, err, errlen);
    if (!c)
        return -1;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const tg_outbox_row_t *r = &rows[i];
        char created[24], attempts[24], next[24];
        put_i64(created, sizeof created, r->created_at_ms);
        put_i64(attempts, sizeof attempts, r->attempts);
        put_i64(next, sizeof next, r->next_at_ms);
        const char *const v[] = {r->event_id, r->url,   r->type, r->body ? r->body : "",
                                 created,     attempts, next};
        const int lens[7] = {0, 0, 0, (int)r->body_len}; /* the body as bytes */
        PGresult *res = tg_pg_query(c, "webhook_outbox",
                                    "INSERT INTO webhook_outbox(event_id, url, type, body,"
                                    " created_at, attempts, next_at)"
                                    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                                    " ON CONFLICT (event_id, url) DO NOTHING",
                                    7, v, lens, err, errlen);
        ok = res != NULL;
        PQclear(res);
    }
    return settings_end(p, ok, err, errlen);
}

int tg_pg_outbox_settle(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                        size_t errlen)
{
    pg_t *p = (pg_t *)b;
    PGconn *c = settings_begin(p, err, errlen);
    if (!c)
        return -1;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char seq[24], attempts[24], next[24];
        put_i64(seq, sizeof seq, rows[i].seq);
        put_i64(attempts, sizeof attempts, rows[i].attempts);
        put_i64(next, sizeof next, rows[i].next_at_ms);
        const char *const del[] = {seq}, *const upd[] = {attempts, next, seq};
        PGresult *res =
            rows[i].done
                ? tg_pg_query(c, "webhook_outbox", "DELETE FROM webhook_outbox WHERE seq = $1", 1,
                              del, NULL, err, errlen)
                : tg_pg_query(c, "webhook_outbox",
                              "UPDATE webhook_outbox SET attempts = $1, next_at = $2"
                              " WHERE seq = $3",
                              3, upd, NULL, err, errlen);
        ok = res != NULL;
        PQclear(res);
    }
    return settings_end(p, ok, err, errlen);
}

int tg_pg_outbox_rewind(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen)
{
    char now[24];
    put_i64(now, sizeof now, now_ms);
    const char *const v[] = {now};
    return settings_exec((pg_t *)b, "webhook_outbox",
                         "UPDATE webhook_outbox SET next_at = $1 WHERE next_at > $1", 1, v, NULL,
                         NULL, err, errlen);
}

/* A bytea value as a NUL-ended copy (the body is JSON text). */
static char *bytes_dup(const PGresult *r, int row, int col, size_t *len)
{
    size_t n = 0;
    unsigned char *v = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
    char *p = tg_xmalloc(n + 1);
    if (v && n)
        memcpy(p, v, n);
    p[v ? n : 0] = '\0';
    *len = v ? n : 0;
    PQfreemem(v);
    return p;
}

int tg_pg_outbox_due(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                     size_t *n, int64_t *next_ms, char *err, size_t errlen)
{
    pg_t *p = (pg_t *)b;
    *out = NULL;
    *n = 0;
    *next_ms = -1;
    PGconn *c = settings_begin(p, err, errlen);
    if (!c)
        return -1;
    char now[24], lim[24];
    put_i64(now, sizeof now, now_ms);
    put_i64(lim, sizeof lim, (int64_t)max);
    const char *const v[] = {now, lim};
    PGresult *r = tg_pg_query(c, "webhook_outbox",
                              "SELECT seq, event_id, url, type, body, created_at, attempts,"
                              " next_at FROM webhook_outbox WHERE next_at <= $1"
                              " ORDER BY next_at, seq LIMIT $2",
                              2, v, NULL, err, errlen);
    PGresult *nx = r ? tg_pg_query(c, "webhook_outbox", "SELECT min(next_at) FROM webhook_outbox",
                                   0, NULL, NULL, err, errlen)
                     : NULL;
    if (r && nx) {
        size_t rows = (size_t)PQntuples(r);
        *out = rows ? tg_xcalloc(rows, sizeof **out) : NULL;
        for (size_t i = 0; i < rows && i < max; i++) {
            tg_outbox_row_t *o = &(*out)[(*n)++];
            o->seq = tg_pg_i64(r, (int)i, 0, 0);
            o->event_id = tg_xstrdup(PQgetvalue(r, (int)i, 1));
            o->url = tg_xstrdup(PQgetvalue(r, (int)i, 2));
            o->type = tg_xstrdup(PQgetvalue(r, (int)i, 3));
            o->body = bytes_dup(r, (int)i, 4, &o->body_len);
            o->created_at_ms = tg_pg_i64(r, (int)i, 5, 0);
            o->attempts = (int)tg_pg_i64(r, (int)i, 6, 0);
            o->next_at_ms = tg_pg_i64(r, (int)i, 7, 0);
        }
        *next_ms = tg_pg_i64(nx, 0, 0, -1);
    }
    bool ok = r && nx;
    PQclear(r);
    PQclear(nx);
    return settings_end(p, ok, err, errlen);
}
