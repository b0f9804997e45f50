/*
 * api_budgets.c — /api/v1/budgets (SPEC §11): every budget with a limit or
 * spend this period, one budget, and the runtime budgets (PUT, DELETE),
 * which are saved in the store before they take effect and take
 * precedence over the configuration's for the same scope and value.
 * `read` sees, `write` changes. Errors in OpenAI's shape, naming the field.
 *
 * Thread: the worker that took the request.
 */
#include "proxy/api_budgets.h"

#include "proxy/bus.h"

#include "core/log.h"
#include "cost/cost.h"
#include "proxy/reply.h"
#include "proxy/spend.h"
#include "store/record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void api_error(tg_http_t *h, int status, const char *code, const char *message)
{
    tg_reply_error(h, TG_WIRE_OPENAI, status, code, message);
}

static void put_usd(tg_buf_t *out, int64_t nusd)
{
    char v[32];
    tg_cost_format(nusd < 0 ? 0 : nusd, v);
    tg_buf_puts(out, v);
}

static void put_time(tg_buf_t *out, int64_t t)
{
    char ts[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    tg_buf_printf(out, "\"%s\"", ts);
}

/* One period of a budget: spend, open reservations, limit, percent, state. */
static void period_json(tg_buf_t *out, tg_budgets_t *b, const tg_budget_cfg_t *c, const char *scope,
                        const char *value, int period, int64_t now)
{
    double usd = period == TG_BUDGET_DAY ? c->daily : c->monthly;
    int64_t limit = tg_budget_nusd(usd);
    tg_budget_state_t st;
    if (!tg_budget_get(b, scope, value, period, now, &st)) {
        memset(&st, 0, sizeof st);
        tg_budget_period(tg_budgets_calendar(b), period, now, &st.start, &st.resets_at);
    }
    tg_buf_printf(out, "\"%s\":{\"spend\":", tg_budget_period_name(period));
    put_usd(out, st.spend);
    tg_buf_puts(out, ",\"reserved\":");
    put_usd(out, st.reserved);
    tg_buf_puts(out, ",\"limit\":");
    if (limit >= 0)
        put_usd(out, limit);
    else
        tg_buf_puts(out, "null");
    double pct = limit > 0 ? 100.0 * (double)st.spend / (double)limit : limit == 0 ? 100 : 0;
    const char *state = limit < 0                             ? "ok"
                        : st.spend >= limit                   ? "exceeded"
                        : pct >= 100.0 * c->warning_threshold ? "warning"
                                                              : "ok";
    if (limit >= 0)
        tg_buf_printf(out, ",\"percent\":%.2f", pct);
    else
        tg_buf_puts(out, ",\"percent\":null");
    tg_buf_printf(out, ",\"state\":\"%s\",\"starts_at\":", state);
    put_time(out, st.start);
    tg_buf_puts(out, ",\"resets_at\":");
    put_time(out, st.resets_at);
    tg_buf_puts(out, "}");
}

static void budget_json(tg_buf_t *out, const tg_config_t *cfg, tg_budgets_t *b, const char *scope,
                        const char *value, int64_t now)
{
    tg_budget_cfg_t c;
    bool runtime = tg_budget_rule_get(b, scope, value, &c);
    if (!runtime)
        tg_spend_budget_cfg(cfg, b, scope, value, &c);
    tg_buf_puts(out, "{\"scope\":");
    tg_record_json_str(out, scope, strlen(scope));
    tg_buf_puts(out, ",\"value\":");
    tg_record_json_str(out, value, strlen(value));
    tg_buf_printf(out, ",\"source\":\"%s\",\"action\":\"%s\",\"warning_threshold\":%g,",
                  runtime ? "runtime" : "config", tg_budget_action_name(c.action),
                  c.warning_threshold);
    period_json(out, b, &c, scope, value, TG_BUDGET_DAY, now);
    tg_buf_puts(out, ",");
    period_json(out, b, &c, scope, value, TG_BUDGET_MONTH, now);
    tg_buf_puts(out, "}");
}

/* (scope, value) pairs already written by the list. */
typedef struct {
    char (*keys)[TG_BUDGET_SCOPE_MAX + TG_BUDGET_VALUE_MAX];
    size_t n, cap;
} seen_t;

static bool seen_add(seen_t *s, const char *scope, const char *value)
{
    char k[TG_BUDGET_SCOPE_MAX + TG_BUDGET_VALUE_MAX];
    snprintf(k, sizeof k, "%s\n%s", scope, value);
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i], k))
            return false;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->keys = tg_xrealloc(s->keys, s->cap * sizeof *s->keys);
    }
    memcpy(s->keys[s->n++], k, sizeof k);
    return true;
}

static void list_budgets(tg_http_t *h, const tg_config_t *cfg, tg_budgets_t *b)
{
    int64_t now = (int64_t)time(NULL);
    tg_buf_t out = {0};
    seen_t seen = {0};
    size_t n = 0;
    tg_buf_puts(&out, "{\"data\":[");
    tg_budget_cfg_t c;
    /* the global budget and every runtime one, spent or not */
    if (tg_spend_budget_cfg(cfg, b, "global", "*", &c) && seen_add(&seen, "global", "*")) {
        budget_json(&out, cfg, b, "global", "*", now);
        n++;
    }
    tg_budget_rule_t *rules;
    size_t nr;
    tg_budget_rules(b, &rules, &nr);
    for (size_t i = 0; i < nr; i++)
        if (seen_add(&seen, rules[i].scope, rules[i].value)) {
            tg_buf_puts(&out, n++ ? "," : "");
            budget_json(&out, cfg, b, rules[i].scope, rules[i].value, now);
        }
    free(rules);
    /* then every value that spent this period under a budget with a limit */
    tg_budget_state_t *st;
    size_t ns;
    tg_budget_list(b, now, &st, &ns);
    for (size_t i = 0; i < ns; i++) {
        if (st[i].spend <= 0 && st[i].reserved <= 0)
            continue;
        if (!tg_spend_budget_cfg(cfg, b, st[i].scope, st[i].value, &c))
            continue;
        if (seen_add(&seen, st[i].scope, st[i].value)) {
            tg_buf_puts(&out, n++ ? "," : "");
            budget_json(&out, cfg, b, st[i].scope, st[i].value, now);
        }
    }
    free(st);
    free(seen.keys);
    tg_buf_printf(&out, "],\"total\":%zu}", n);
    tg_http_reply(h, 200, "application/json", out.data, out.len);
    tg_buf_free(&out);
}

/* %XX-decode src into dst (cap); false when malformed, too long or NUL. */
static bool path_decode(const char *src, char *dst, size_t cap)
{
    size_t o = 0;
    for (const char *p = src; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi, lo;
            if (sscanf(p + 1, "%1x%1x", (unsigned *)&hi, (unsigned *)&lo) != 2)
                return false;
            c = hi * 16 + lo;
            p += 2;
        }
        if (!c || o + 1 >= cap)
            return false;
        dst[o++] = (char)c;
    }
    dst[o] = 0;
    return o > 0;
}

/* A USD amount field: absent (-1), null (-1) or a number >= 0. */
static bool usd_field(json_t *doc, const char *name, double *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(doc, name);
    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e9) {
        snprintf(err, errlen, "%s: expected a number of USD >= 0 (or null for none)", name);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

/* The body of a PUT: {daily, monthly, action, warning_threshold}. */
static bool parse_budget(const char *body, size_t len, tg_budget_cfg_t *c, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = body ? json_loadb(body, len, 0, &je) : NULL;
    bool ok = false;
    if (!json_is_object(doc)) {
        snprintf(err, errlen,
                 "the body must be a JSON object {daily, monthly, action, "
                 "warning_threshold}");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "daily") && strcmp(k, "monthly") && strcmp(k, "action") &&
            strcmp(k, "warning_threshold")) {
            snprintf(err, errlen,
                     "%.60s: unknown field (daily, monthly, action, "
                     "warning_threshold)",
                     k);
            goto out;
        }
    }
    *c = (tg_budget_cfg_t){-1, -1, TG_BUDGET_BLOCK, 0.8};
    if (!usd_field(doc, "daily", &c->daily, err, errlen) ||
        !usd_field(doc, "monthly", &c->monthly, err, errlen))
        goto out;
    if (c->daily < 0 && c->monthly < 0) {
        snprintf(err, errlen, "daily: a budget needs daily or monthly (USD)");
        goto out;
    }
    v = json_object_get(doc, "action");
    if (v &&
        (!json_is_string(v) || (c->action = tg_budget_action_parse(json_string_value(v))) < 0)) {
        snprintf(err, errlen, "action: expected block, warn or none");
        goto out;
    }
    v = json_object_get(doc, "warning_threshold");
    if (v) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
            snprintf(err, errlen, "warning_threshold: expected a number from 0 to 1 (0.8 = 80 %%)");
            goto out;
        }
        c->warning_threshold = json_number_value(v);
    }
    ok = true;
out:
    json_decref(doc);
    return ok;
}

/* GET, PUT, DELETE /api/v1/budgets/{scope}/{value}. */
static void one_budget(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                       bool may_write, const char *rest)
{
    char scope[TG_BUDGET_SCOPE_MAX], value[TG_BUDGET_VALUE_MAX], raw[TG_BUDGET_SCOPE_MAX * 3];
    const char *slash = strchr(rest, '/');
    const char *m = tg_http_method(h);
    size_t sl = slash ? (size_t)(slash - rest) : 0;
    if (!slash || sl >= sizeof raw || strchr(slash + 1, '/')) {
        api_error(h, 404, "not_found", "budgets are at /api/v1/budgets/{scope}/{value}");
        return;
    }
    memcpy(raw, rest, sl);
    raw[sl] = 0;
    if (!path_decode(raw, scope, sizeof scope) || !tg_budget_scope_valid(scope)) {
        api_error(h, 400, "invalid_scope", "scope: expected global, key, user or property:<Name>");
        return;
    }
    if (!path_decode(slash + 1, value, sizeof value)) {
        api_error(h, 400, "invalid_value",
                  "value: expected a non-empty value of at most 127 bytes (percent-encoded)");
        return;
    }
    if (!strcmp(scope, "global"))
        snprintf(value, sizeof value, "*"); /* one global budget, whatever the path says */
    tg_budgets_t *b = gw->budgets;
    char err[256];
    tg_buf_t out = {0};
    if (!strcmp(m, "GET")) {
        tg_budget_cfg_t c;
        tg_budget_state_t st;
        if (!tg_spend_budget_cfg(cfg, b, scope, value, &c) &&
            !tg_budget_get(b, scope, value, TG_BUDGET_DAY, (int64_t)time(NULL), &st)) {
            api_error(h, 404, "not_found", "no budget for that scope and value");
            return;
        }
        budget_json(&out, cfg, b, scope, value, (int64_t)time(NULL));
        tg_http_reply(h, 200, "application/json", out.data, out.len);
        tg_buf_free(&out);
        return;
    }
    if (strcmp(m, "PUT") && strcmp(m, "DELETE")) {
        tg_http_add_header(h, "Allow", "GET, PUT, DELETE");
        api_error(h, 405, "method_not_allowed",
                  "GET, PUT or DELETE /api/v1/budgets/{scope}/{value}");
        return;
    }
    if (!may_write) {
        api_error(h, 403, "permission_denied", "changing budgets needs a key with write");
        return;
    }
    if (!strcmp(m, "DELETE")) {
        int rc = gw->store ? tg_store_budget_delete(gw->store, scope, value, err, sizeof err) : 0;
        if (rc < 0) {
            tg_error("budgets: %s %s not deleted: %s", scope, value, err);
            api_error(h, 503, "store_unavailable",
                      "the store cannot delete the budget now; it is still in force");
            return;
        }
        if (!tg_budget_rule_delete(b, scope, value)) {
            api_error(h, 404, "not_found",
                      "no runtime budget for that scope and value (budgets of the "
                      "configuration file change with the file)");
            return;
        }
        tg_bus_publish(bus, gw, "budget.deleted",
                       json_pack("{s:s, s:s}", "scope", scope, "value", value));
        tg_http_reply(h, 204, NULL, NULL, 0);
        return;
    }
    size_t len;
    const char *body = tg_http_body(h, &len);
    tg_budget_rule_t r;
    memset(&r, 0, sizeof r);
    if (!parse_budget(body, len, &r.cfg, err, sizeof err)) {
        api_error(h, 400, "invalid_budget", err);
        return;
    }
    snprintf(r.scope, sizeof r.scope, "%s", scope);
    snprintf(r.value, sizeof r.value, "%s", value);
    /* the store first: a budget is in force only once it outlives a restart */
    if (gw->store && tg_store_budget_save(gw->store, scope, value, &r.cfg, err, sizeof err) < 0) {
        tg_error("budgets: %s %s not saved: %s", scope, value, err);
        api_error(h, 503, "store_unavailable",
                  "the store cannot save the budget now; it was not set");
        return;
    }
    tg_gateway_budget_scope_load(gw, scope); /* its spend so far, before it applies */
    tg_budget_rule_put(b, &r);
    tg_bus_publish(bus, gw, "budget.put",
                   json_pack("{s:s, s:s, s:o}", "scope", scope, "value", value, "budget",
                             json_loadb(body, len, 0, NULL)));
    budget_json(&out, cfg, b, scope, value, (int64_t)time(NULL));
    tg_http_reply(h, 200, "application/json", out.data, out.len);
    tg_buf_free(&out);
}

bool tg_api_budgets(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, const tg_config_t *cfg,
                    bool may_read, bool may_write, const char *path)
{
    if (strcmp(path, "/api/v1/budgets") != 0 && strncmp(path, "/api/v1/budgets/", 16) != 0)
        return false;
    if (!may_read) {
        api_error(h, 403, "permission_denied", "this key may not read budgets");
        return true;
    }
    if (!strcmp(path, "/api/v1/budgets")) {
        if (strcmp(tg_http_method(h), "GET") != 0) {
            tg_http_add_header(h, "Allow", "GET");
            api_error(h, 405, "method_not_allowed",
                      "GET /api/v1/budgets; PUT and DELETE /api/v1/budgets/{scope}/{value}");
            return true;
        }
        list_budgets(h, cfg, gw->budgets);
        return true;
    }
    one_budget(h, gw, bus, cfg, may_write, path + 16);
    return true;
}

bool tg_api_budgets_apply(tg_gateway_t *gw, const char *type, json_t *data)
{
    const char *scope = json_string_value(json_object_get(data, "scope"));
    const char *value = json_string_value(json_object_get(data, "value"));
    if (!scope || !value || !tg_budget_scope_valid(scope) || !*value ||
        strlen(value) >= TG_BUDGET_VALUE_MAX)
        return false;
    if (!strcmp(type, "budget.deleted")) {
        tg_budget_rule_delete(gw->budgets, scope, value); /* false: unknown here */
        return true;
    }
    if (strcmp(type, "budget.put"))
        return false;
    char *body = json_dumps(json_object_get(data, "budget"), JSON_COMPACT | JSON_ENCODE_ANY);
    tg_budget_rule_t r;
    memset(&r, 0, sizeof r);
    char err[256];
    bool ok = body && parse_budget(body, strlen(body), &r.cfg, err, sizeof err);
    free(body);
    if (!ok)
        return false;
    snprintf(r.scope, sizeof r.scope, "%s", scope);
    snprintf(r.value, sizeof r.value, "%s", value);
    tg_gateway_budget_scope_load(gw, scope);
    tg_budget_rule_put(gw->budgets, &r);
    return true;
}
