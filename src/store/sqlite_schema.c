/*
 * sqlite_schema.c — the SQLite store's schema and the steps that bring an
 * older database to it. Separate so that the schema reads in one place and
 * a new version is one more entry here, whatever else changes.
 *
 * Threads: the writer thread (tg_sqlite_writer_connect runs the migration
 * on each connect), and the main thread on the first open.
 *
 * Schema (version 7, PRAGMA user_version):
 *   requests            one row per record, no bodies; UNIQUE(id, created_at)
 *                       makes replays idempotent; one index per filter
 *                       column (col, created_at) — partial for user_id and
 *                       session_id (version 3: no entries for NULL) and for
 *                       status (version 6: errors only, status >= 400) — and
 *                       requests_time, which
 *                       covers every column the time-range reports read
 *   request_properties  (seq, name, value, created_at), names NOCASE,
 *                       indexed on (name, value, created_at) for filters
 *   request_bodies      bodies by seq, read only for a single record
 *                       (version 5: and cache_saved_nusd, a hit's saving)
 *   rate_limit_rules    (version 2) the runtime limits of /api/v1/rate-limits:
 *                       id, property, value, quota, window_s, unit
 *                       ("request", "cents", "token"), created_at; read
 *                       back in rowid (insertion) order
 *   webhook_outbox      (version 4) events not yet delivered, one row per
 *                       event and receiver URL (UNIQUE: a replay adds
 *                       none): body, attempts, next_at (indexed: what is
 *                       due); the secret is not stored (docs/webhooks.md)
 *   budgets             (version 5) the runtime budgets of /api/v1/budgets:
 *                       (scope, value) primary key, daily and monthly USD
 *                       (NULL: none), action, warning_threshold, updated_at
 *   api_keys            (version 5) the virtual keys of /api/v1/keys: name,
 *                       key_sha256 (the key is never stored), permissions,
 *                       models (JSON array of globs), budget, rate limit,
 *                       expires_at (UNIX s, NULL: never), metadata (JSON)
 * Times are ms since the epoch (UTC); cost is nano-USD (INTEGER, exact);
 * unknown numbers are NULL.
 */
#include "store/sqlite_internal.h"

#include <stdio.h>

#define SCHEMA_VERSION 7

static const char *migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE requests ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " provider TEXT, model TEXT, model_requested TEXT, route TEXT,"
    " status INTEGER NOT NULL,"
    " latency_ms INTEGER, ttft_ms INTEGER,"
    " prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,"
    " cache_write_tokens INTEGER, reasoning_tokens INTEGER,"
    " cost_nusd INTEGER,"
    " cache INTEGER NOT NULL DEFAULT 0,"
    " user_id TEXT, session_id TEXT, session_name TEXT, session_path TEXT,"
    " properties TEXT NOT NULL DEFAULT '{}',"
    " key_name TEXT, client_ip TEXT,"
    " retries INTEGER NOT NULL DEFAULT 0, fallback_index INTEGER,"
    " error TEXT,"
    " has_error INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX requests_id ON requests(id, created_at);"
    /* time-range reports (stats, costs) read only this index */
    "CREATE INDEX requests_time ON requests(created_at, seq, model, provider, user_id, status,"
    " has_error, cache, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_nusd, latency_ms, ttft_ms);"
    "CREATE INDEX requests_model ON requests(model, created_at);"
    "CREATE INDEX requests_provider ON requests(provider, created_at);"
    "CREATE INDEX requests_status ON requests(status, created_at);"
    "CREATE INDEX requests_user ON requests(user_id, created_at);"
    "CREATE INDEX requests_session ON requests(session_id, created_at);"
    "CREATE TABLE request_properties ("
    " seq INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " value TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (seq, name)) WITHOUT ROWID;"
    "CREATE INDEX request_properties_value ON request_properties(name, value, created_at);"
    "CREATE TABLE request_bodies ("
    " seq INTEGER PRIMARY KEY,"
    " request_body BLOB,"
    " response_body BLOB);",
    /* 1 -> 2 */
    "CREATE TABLE rate_limit_rules ("
    " id TEXT PRIMARY KEY,"
    " property TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " quota INTEGER NOT NULL,"
    " window_s INTEGER NOT NULL,"
    " unit TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);",
    /* 2 -> 3: records without a user or a session (most, for many teams)
     * take no entry in those indexes: two B-tree inserts fewer per record
     * for the writer; a filter on the column (=, IN) implies NOT NULL, so
     * the planner still uses them */
    "DROP INDEX requests_user;"
    "CREATE INDEX requests_user ON requests(user_id, created_at) WHERE user_id IS NOT NULL;"
    "DROP INDEX requests_session;"
    "CREATE INDEX requests_session ON requests(session_id, created_at)"
    " WHERE session_id IS NOT NULL;",
    /* 3 -> 4: the webhook outbox (src/events/) */
    "CREATE TABLE webhook_outbox ("
    " seq INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL,"
    " url TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL,"
    " UNIQUE (event_id, url));"
    "CREATE INDEX webhook_outbox_due ON webhook_outbox(next_at);",
    /* 4 -> 5: runtime budgets (spend itself is summed from requests) and
     * the virtual keys of /api/v1/keys (the key itself only as SHA-256) */
    "CREATE TABLE budgets ("
    " scope TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " daily REAL, monthly REAL,"
    " action TEXT NOT NULL,"
    " warning_threshold REAL NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (scope, value));"
    "CREATE TABLE api_keys ("
    " name TEXT PRIMARY KEY,"
    " key_sha256 BLOB NOT NULL,"
    " perm_read INTEGER NOT NULL, perm_write INTEGER NOT NULL,"
    " models TEXT NOT NULL,"
    " budget_daily REAL, budget_monthly REAL,"
    " requests_per_minute INTEGER NOT NULL, tokens_per_minute INTEGER NOT NULL,"
    " expires_at INTEGER,"
    " metadata TEXT,"
    " created_at INTEGER NOT NULL);",
    /* 5 -> 6: the status index keeps only errors (status >= 400), a few
     * percent of records: one B-tree insert fewer per answered request for
     * the writer. Its only reader, a status filter, asks for errors almost
     * always; the query adds "status >= 400" then (sqlite_read.c), which lets
     * the planner search this index; a filter that includes lower statuses
     * matches most records and is served by requests_time in time order */
    "DROP INDEX requests_status;"
    "CREATE INDEX requests_status ON requests(status, created_at) WHERE status >= 400;",
    /* 6 -> 7: what a cache hit saved (the provider's price of its usage),
     * for the dashboard's stats and costs; the time index covers it too,
     * so the time-range reports still read that index alone */
    "ALTER TABLE requests ADD COLUMN cache_saved_nusd INTEGER;"
    "DROP INDEX requests_time;"
    "CREATE INDEX requests_time ON requests(created_at, seq, model, provider, user_id, status,"
    " has_error, cache, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_nusd, latency_ms, ttft_ms, cache_saved_nusd);",
};

/* Bring the schema to SCHEMA_VERSION. */
int tg_sqlite_migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int v = tg_sqlite_pragma_int(db, "PRAGMA user_version", -1);
    if (v < 0) {
        tg_sqlite_set_err(err, errlen, path, db);
        return -1;
    }
    if (v > SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %d is newer than this tollgate understands (%d)",
                 path, v, SCHEMA_VERSION);
        return -1;
    }
    if (v == SCHEMA_VERSION)
        return 0;
    if (sqlite3_db_readonly(db, "main") == 1) {
        snprintf(err, errlen, "%s: read-only, cannot create the schema", path);
        return -1;
    }
    char msg[256];
    if (tg_sqlite_exec(db, "BEGIN IMMEDIATE", msg, sizeof msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if (tg_sqlite_exec(db, migrations[v], msg, sizeof msg) != SQLITE_OK) {
            snprintf(err, errlen, "%s: schema step %d: %s", path, v + 1, msg);
            tg_sqlite_exec(db, "ROLLBACK", msg, sizeof msg);
            return -1;
        }
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (tg_sqlite_exec(db, sql, msg, sizeof msg) != SQLITE_OK ||
        tg_sqlite_exec(db, "COMMIT", msg, sizeof msg)) {
        snprintf(err, errlen, "%s: %s", path, msg);
        tg_sqlite_exec(db, "ROLLBACK", msg, sizeof msg);
        return -1;
    }
    return 0;
}
