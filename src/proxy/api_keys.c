/*
 * api_keys.c — /api/v1/keys: POST makes a virtual key and answers it once
 * ("tg-" + 32 random bytes in base62); only its SHA-256 is kept, in the
 * store and in the gateway's keyring. GET lists the keys without secrets,
 * with their spend this day and month. DELETE /api/v1/keys/{name} revokes
 * one at once on every worker. Keys of the configuration file are listed
 * but cannot be made or deleted here (409). Every method needs `write`.
 *
 * Thread: the worker that took the request.
 */
#include "proxy/api_keys.h"

#include "proxy/bus.h"

#include "core/log.h"
#include "cost/cost.h"
#include "proxy/reply.h"
#include "store/record.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void api_error(tg_http_t *h, int status, const char *code, const char *message)
{
    tg_reply_error(h, TG_WIRE_OPENAI, status, code, message);
}

static bool config_key(const tg_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        if (!strcmp(cfg->api_keys[i].name, name))
            return true;
    return false;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= TG_KEY_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* An optional number >= 0 of a sub-object; -1 when absent or null. */
static bool num_field(json_t *obj, const char *parent, const char *name, double max, double *out,
                      char *err, size_t errlen)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > max) {
        snprintf(err, errlen, "%s.%s: expected a number >= 0", parent, name);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

/* expires_at: RFC 3339 UTC ("2027-01-01T00:00:00Z") or UNIX seconds. */
static bool parse_expiry(json_t *v, int64_t *out)
{
    *out = 0;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return false;
    if (*end == '.')
        while (*++end >= '0' && *end <= '9')
            ;
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

/* The body of a POST into *k (strings borrowed from doc). */
static bool parse_key(json_t *doc, tg_vkey_t *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    static const char *const known[] = {"name",       "permissions", "models",  "budget",
                                        "rate_limit", "expires_at",  "metadata"};
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok = ok || !strcmp(key, known[i]);
        if (!ok) {
            snprintf(err, errlen,
                     "%.60s: unknown field (name, permissions, models, budget, "
                     "rate_limit, expires_at, metadata)",
                     key);
            return false;
        }
    }
    v = json_object_get(doc, "name");
    if (!json_is_string(v) || !name_ok(json_string_value(v))) {
        snprintf(err, errlen, "name: required, 1 to 63 letters, digits, '-', '_' or '.'");
        return false;
    }
    snprintf(k->name, sizeof k->name, "%s", json_string_value(v));
    v = json_object_get(doc, "permissions");
    size_t i;
    json_t *e;
    if (v && !json_is_array(v)) {
        snprintf(err, errlen, "permissions: expected a list of read and write");
        return false;
    }
    json_array_foreach(v, i, e)
    {
        const char *p = json_is_string(e) ? json_string_value(e) : "";
        if (!strcmp(p, "read"))
            k->perm_read = true;
        else if (!strcmp(p, "write"))
            k->perm_write = true;
        else {
            snprintf(err, errlen, "permissions[%zu]: expected read or write", i);
            return false;
        }
    }
    v = json_object_get(doc, "models");
    if (v && (!json_is_array(v) || json_array_size(v) > TG_KEY_MAX_MODELS)) {
        snprintf(err, errlen, "models: expected a list of at most %d model globs",
                 TG_KEY_MAX_MODELS);
        return false;
    }
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || !json_string_length(e) || json_string_length(e) > 200 ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            snprintf(err, errlen, "models[%zu]: expected a model name or glob (gpt-4o*)", i);
            return false;
        }
        k->models[k->n_models++] = (char *)(uintptr_t)json_string_value(e);
    }
    json_t *b = json_object_get(doc, "budget");
    if (b && !json_is_object(b) && !json_is_null(b)) {
        snprintf(err, errlen, "budget: expected {daily, monthly} in USD");
        return false;
    }
    if (!num_field(b, "budget", "daily", 1e9, &k->budget_daily, err, errlen) ||
        !num_field(b, "budget", "monthly", 1e9, &k->budget_monthly, err, errlen))
        return false;
    json_t *r = json_object_get(doc, "rate_limit");
    if (r && !json_is_object(r) && !json_is_null(r)) {
        snprintf(err, errlen, "rate_limit: expected {requests_per_minute, tokens_per_minute}");
        return false;
    }
    double rpm, tpm;
    if (!num_field(r, "rate_limit", "requests_per_minute", 1e9, &rpm, err, errlen) ||
        !num_field(r, "rate_limit", "tokens_per_minute", 1e12, &tpm, err, errlen))
        return false;
    k->rate.requests_per_minute = rpm > 0 ? (int64_t)rpm : 0;
    k->rate.tokens_per_minute = tpm > 0 ? (int64_t)tpm : 0;
    if (!parse_expiry(json_object_get(doc, "expires_at"), &k->expires_at)) {
        snprintf(err, errlen,
                 "expires_at: expected an RFC 3339 UTC time "
                 "(2027-01-01T00:00:00Z) or UNIX seconds");
        return false;
    }
    v = json_object_get(doc, "metadata");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            snprintf(err, errlen, "metadata: expected an object");
            return false;
        }
        k->metadata = json_dumps(v, JSON_COMPACT);
        if (k->metadata && strlen(k->metadata) > 4096) {
            free(k->metadata);
            k->metadata = NULL;
            snprintf(err, errlen, "metadata: at most 4096 bytes");
            return false;
        }
    }
    return true;
}

static void put_period_spend(tg_buf_t *out, tg_gateway_t *gw, const char *name, int period,
                             int64_t now)
{
    tg_budget_state_t st;
    char v[32];
    tg_cost_format(tg_budget_get(gw->budgets, "key", name, period, now, &st) ? st.spend : 0, v);
    tg_buf_printf(out, "\"%s\":%s", tg_budget_period_name(period), v);
}

static void key_json(tg_buf_t *out, tg_gateway_t *gw, const tg_vkey_t *k, const char *secret)
{
    int64_t now = (int64_t)time(NULL);
    tg_buf_puts(out, "{\"name\":");
    tg_record_json_str(out, k->name, strlen(k->name));
    if (secret)
        tg_buf_printf(out, ",\"key\":\"%s\"", secret);
    tg_buf_printf(out, ",\"source\":\"api\",\"permissions\":[%s%s%s],\"models\":[",
                  k->perm_read ? "\"read\"" : "", k->perm_read && k->perm_write ? "," : "",
                  k->perm_write ? "\"write\"" : "");
    for (size_t i = 0; i < k->n_models; i++) {
        tg_buf_puts(out, i ? "," : "");
        tg_record_json_str(out, k->models[i], strlen(k->models[i]));
    }
    tg_buf_puts(out, "],\"budget\":{\"daily\":");
    if (k->budget_daily >= 0)
        tg_buf_printf(out, "%.9g", k->budget_daily);
    else
        tg_buf_puts(out, "null");
    tg_buf_puts(out, ",\"monthly\":");
    if (k->budget_monthly >= 0)
        tg_buf_printf(out, "%.9g", k->budget_monthly);
    else
        tg_buf_puts(out, "null");
    tg_buf_printf(out, "},\"rate_limit\":{\"requests_per_minute\":%lld,\"tokens_per_minute\":%lld}",
                  (long long)k->rate.requests_per_minute, (long long)k->rate.tokens_per_minute);
    tg_buf_puts(out, ",\"expires_at\":");
    if (k->expires_at > 0)
        tg_buf_printf(out, "%lld", (long long)k->expires_at);
    else
        tg_buf_puts(out, "null");
    tg_buf_printf(out, ",\"metadata\":%s,\"created_at\":%lld,\"spend\":{",
                  k->metadata ? k->metadata : "null", (long long)k->created_at);
    put_period_spend(out, gw, k->name, TG_BUDGET_DAY, now);
    tg_buf_puts(out, ",");
    put_period_spend(out, gw, k->name, TG_BUDGET_MONTH, now);
    tg_buf_puts(out, "}}");
}

static void create_key(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg)
{
    size_t len;
    const char *body = tg_http_body(h, &len);
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    char err[300];
    tg_vkey_t k;
    memset(&k, 0, sizeof k);
    if (!json_is_object(doc)) {
        api_error(h, 400, "invalid_key",
                  "the body must be a JSON object {name, permissions, "
                  "models, budget, rate_limit, expires_at, metadata}");
        json_decref(doc);
        return;
    }
    if (!parse_key(doc, &k, err, sizeof err)) {
        api_error(h, 400, "invalid_key", err);
        goto out;
    }
    if (config_key(cfg, k.name)) {
        api_error(h, 409, "key_exists",
                  "a key of that name is in the configuration file; choose another name");
        goto out;
    }
    char secret[48];
    tg_key_generate(secret);
    tg_key_hash(secret, strlen(secret), k.hash);
    k.created_at = (int64_t)time(NULL);
    /* the ring first (it refuses a duplicate name), then the store; a key
     * the store cannot keep is taken back and never answered */
    if (tg_keyring_add(gw->keys, &k) < 0) {
        api_error(h, 409, "key_exists", "a key of that name exists (or there are too many keys)");
        goto out;
    }
    if (gw->store && tg_store_key_save(gw->store, &k, err, sizeof err) < 0) {
        tg_keyring_revoke(gw->keys, k.name);
        tg_error("keys: key %s not saved: %s", k.name, err);
        api_error(h, 503, "store_unavailable",
                  "the store cannot save the key now; it was not made");
        goto out;
    }
    tg_gateway_key_budget(gw, &k);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", k.hash[i]);
    tg_bus_publish(bus, gw, "key.created",
                   json_pack("{s:O, s:s, s:I}", "key", doc, "hash", hex, "created_at",
                             (json_int_t)k.created_at));
    tg_buf_t outb = {0};
    key_json(&outb, gw, &k, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    tg_http_add_header(h, "Cache-Control", "no-store");
    tg_http_reply(h, 201, "application/json", outb.data, outb.len);
    tg_buf_free(&outb);
out:
    free(k.metadata);
    json_decref(doc);
}

static void list_keys(tg_http_t *h, tg_gateway_t *gw, const tg_config_t *cfg)
{
    tg_buf_t out = {0};
    tg_buf_puts(&out, "{\"data\":[");
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_api_keys; i++, n++) {
        const tg_api_key_cfg_t *c = &cfg->api_keys[i];
        tg_buf_puts(&out, n ? "," : "");
        tg_buf_puts(&out, "{\"name\":");
        tg_record_json_str(&out, c->name, strlen(c->name));
        tg_buf_printf(&out, ",\"source\":\"config\",\"permissions\":[%s%s%s],\"spend\":{",
                      c->perm_read ? "\"read\"" : "", c->perm_read && c->perm_write ? "," : "",
                      c->perm_write ? "\"write\"" : "");
        put_period_spend(&out, gw, c->name, TG_BUDGET_DAY, (int64_t)time(NULL));
        tg_buf_puts(&out, ",");
        put_period_spend(&out, gw, c->name, TG_BUDGET_MONTH, (int64_t)time(NULL));
        tg_buf_puts(&out, "}}");
    }
    tg_vkey_t *keys;
    size_t nk = tg_keyring_list(gw->keys, &keys);
    for (size_t i = 0; i < nk; i++, n++) {
        tg_buf_puts(&out, n ? "," : "");
        key_json(&out, gw, &keys[i], NULL);
    }
    free(keys);
    tg_buf_printf(&out, "],\"total\":%zu}", n);
    tg_http_reply(h, 200, "application/json", out.data, out.len);
    tg_buf_free(&out);
}

static void delete_key(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                       const char *name)
{
    char err[256];
    if (config_key(cfg, name)) {
        api_error(h, 409, "key_in_config",
                  "this key is in the configuration file: remove it there (and reload)");
        return;
    }
    /* the ring first: refused from the next request on, whatever the store says */
    if (!tg_keyring_revoke(gw->keys, name)) {
        api_error(h, 404, "not_found", "no key of that name");
        return;
    }
    tg_budget_rule_delete(gw->budgets, "key", name);
    tg_bus_publish(bus, gw, "key.revoked", json_pack("{s:s}", "name", name));
    if (gw->store && tg_store_key_delete(gw->store, name, err, sizeof err) < 0) {
        tg_error("keys: key %s revoked but not deleted from the store: %s", name, err);
        api_error(h, 503, "store_unavailable",
                  "the key is revoked until the next start, but the store could not delete it: "
                  "delete it again");
        return;
    }
    tg_http_reply(h, 204, NULL, NULL, 0);
}

bool tg_api_keys(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                 bool may_write, const char *path)
{
    if (strcmp(path, "/api/v1/keys") != 0 && strncmp(path, "/api/v1/keys/", 13) != 0)
        return false;
    if (!may_write) {
        api_error(h, 403, "permission_denied", "/api/v1/keys needs a key with write");
        return true;
    }
    const char *m = tg_http_method(h);
    if (!strcmp(path, "/api/v1/keys") && !strcmp(m, "POST"))
        create_key(h, gw, bus, cfg);
    else if (!strcmp(path, "/api/v1/keys") && !strcmp(m, "GET"))
        list_keys(h, gw, cfg);
    else if (path[12] == '/' && path[13] && !strchr(path + 13, '/') && !strcmp(m, "DELETE"))
        delete_key(h, gw, bus, cfg, path + 13);
    else
        api_error(h, 405, "method_not_allowed",
                  "POST or GET /api/v1/keys, DELETE /api/v1/keys/{name}");
    return true;
}

bool tg_api_keys_apply(tg_gateway_t *gw, const char *type, json_t *data)
{
    if (!strcmp(type, "key.revoked")) {
        const char *name = json_string_value(json_object_get(data, "name"));
        if (!name)
            return false;
        tg_keyring_revoke(gw->keys, name); /* false: unknown here, or revoked already */
        tg_budget_rule_delete(gw->budgets, "key", name);
        return true;
    }
    if (strcmp(type, "key.created"))
        return false;
    const char *hex = json_string_value(json_object_get(data, "hash"));
    json_t *doc = json_object_get(data, "key");
    char err[300];
    tg_vkey_t k;
    if (!hex || strlen(hex) != 64 || !json_is_object(doc) || !parse_key(doc, &k, err, sizeof err))
        return false;
    bool ok = true;
    for (int i = 0; i < 32 && ok; i++) {
        int hi = tg_hexval(hex[2 * i]), lo = tg_hexval(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        k.hash[i] = (unsigned char)(hi * 16 + lo);
    }
    k.created_at = (int64_t)json_integer_value(json_object_get(data, "created_at"));
    if (ok && tg_keyring_add(gw->keys, &k) == 0)
        tg_gateway_key_budget(gw, &k);
    free(k.metadata);
    return ok;
}
