/*
 * sqlite_keys.c — the virtual keys of /api/v1/keys in SQLite (table
 * api_keys, schema version 4): saved and deleted on the settings
 * connection like the runtime rate limits, loaded at start. The key itself
 * is never stored, only its SHA-256.
 *
 * Threads: save and delete on the API's workers (with the turn); load on
 * main.
 */
#include "store/sqlite_internal.h"

#include "core/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void bind_key(sqlite3_stmt *st, const void *arg)
{
    const tg_vkey_t *k = arg;
    tg_sqlite_bind_str(st, 1, k->name);
    sqlite3_bind_blob(st, 2, k->hash, sizeof k->hash, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, k->perm_read);
    sqlite3_bind_int(st, 4, k->perm_write);
    json_t *models = json_array();
    for (size_t i = 0; i < k->n_models; i++)
        json_array_append_new(models, json_string(k->models[i]));
    char *m = json_dumps(models, JSON_COMPACT);
    sqlite3_bind_text(st, 5, m ? m : "[]", -1, SQLITE_TRANSIENT);
    free(m);
    json_decref(models);
    if (k->budget_daily >= 0)
        sqlite3_bind_double(st, 6, k->budget_daily);
    if (k->budget_monthly >= 0)
        sqlite3_bind_double(st, 7, k->budget_monthly);
    sqlite3_bind_int64(st, 8, k->rate.requests_per_minute);
    sqlite3_bind_int64(st, 9, k->rate.tokens_per_minute);
    if (k->expires_at > 0)
        sqlite3_bind_int64(st, 10, k->expires_at);
    tg_sqlite_bind_str(st, 11, k->metadata);
    sqlite3_bind_int64(st, 12, k->created_at);
}

static void bind_name(sqlite3_stmt *st, const void *arg)
{
    tg_sqlite_bind_str(st, 1, arg);
}

int tg_sqlite_key_save(tg_store_backend_t *b, const tg_vkey_t *k, char *err, size_t errlen)
{
    int changes = 0;
    return tg_sqlite_settings_exec((sq_t *)b, "api_keys",
                                   "INSERT INTO api_keys(name, key_sha256, perm_read, perm_write,"
                                   " models, budget_daily, budget_monthly, requests_per_minute,"
                                   " tokens_per_minute, expires_at, metadata, created_at)"
                                   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                   bind_key, k, &changes, err, errlen);
}

int tg_sqlite_key_delete(tg_store_backend_t *b, const char *name, char *err, size_t errlen)
{
    int changes = 0;
    if (tg_sqlite_settings_exec((sq_t *)b, "api_keys", "DELETE FROM api_keys WHERE name = ?",
                                bind_name, name, &changes, err, errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

typedef struct {
    void (*fn)(void *arg, const tg_vkey_t *k);
    void *arg;
} load_t;

static void key_row(sqlite3_stmt *st, void *arg)
{
    load_t *a = arg;
    tg_vkey_t k;
    memset(&k, 0, sizeof k);
    const char *name = (const char *)sqlite3_column_text(st, 0);
    if (!name || strlen(name) >= sizeof k.name || sqlite3_column_bytes(st, 1) != 32) {
        tg_warn("store: api_keys row %.40s is not a valid key; skipped", name ? name : "?");
        return;
    }
    memcpy(k.name, name, strlen(name) + 1);
    memcpy(k.hash, sqlite3_column_blob(st, 1), 32);
    k.perm_read = sqlite3_column_int(st, 2) != 0;
    k.perm_write = sqlite3_column_int(st, 3) != 0;
    json_t *models = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        if (json_is_string(m) && k.n_models < TG_KEY_MAX_MODELS)
            k.models[k.n_models++] = (char *)(uintptr_t)json_string_value(m);
    }
    k.budget_daily = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 5);
    k.budget_monthly =
        sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 6);
    k.rate.requests_per_minute = sqlite3_column_int64(st, 7);
    k.rate.tokens_per_minute = sqlite3_column_int64(st, 8);
    k.expires_at = sqlite3_column_int64(st, 9);
    k.metadata = (char *)(uintptr_t)sqlite3_column_text(st, 10);
    k.created_at = sqlite3_column_int64(st, 11);
    a->fn(a->arg, &k); /* copies what it keeps */
    json_decref(models);
}

int tg_sqlite_keys_load(tg_store_backend_t *b, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                        char *err, size_t errlen)
{
    load_t a = {fn, arg};
    return tg_sqlite_select((sq_t *)b, "api_keys",
                            "SELECT name, key_sha256, perm_read, perm_write, models,"
                            " budget_daily, budget_monthly, requests_per_minute,"
                            " tokens_per_minute, expires_at, metadata, created_at"
                            " FROM api_keys ORDER BY rowid",
                            NULL, NULL, key_row, &a, err, errlen);
}
