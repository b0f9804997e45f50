/*
 * api.c — the management and query API under /api/v1 (SPEC §8): request
 * records, costs and stats (answered by store/query.c), and the runtime rate
 * limits, kept in the store when there is one. Answers and errors are JSON in
 * OpenAI's error shape. Runs on the worker thread that took the request.
 */
#include "proxy/api.h"

#include "proxy/bus.h"

#include "gateway.h"
#include "proxy/readers.h"

#include "core/log.h"
#include "core/util.h"
#include "providers/provider.h"
#include "providers/translate.h"
#include "proxy/reply.h"
#include "store/query.h"
#include "store/record.h"

#include <stdlib.h>
#include <string.h>

/* The API speaks OpenAI's error shape (reply.h). */
static void reply_error(tg_http_t *h, int status, const char *code, const char *message)
{
    tg_reply_error(h, TG_WIRE_OPENAI, status, code, message);
}

static void reply_buf(tg_http_t *h, int status, tg_buf_t *b)
{
    tg_http_reply(h, status, "application/json", b->data ? b->data : "", b->len);
    tg_buf_free(b);
}

/* A runtime rate limit as the API shows it. */
static void rule_json(tg_buf_t *out, const tg_rl_rule_t *r)
{
    char pol[128];
    tg_rl_policy_format(&r->policy, pol, sizeof pol);
    tg_buf_printf(out, "{\"id\":\"%s\",\"property\":", r->id);
    tg_record_json_str(out, r->property, strlen(r->property));
    tg_buf_puts(out, ",\"value\":");
    tg_record_json_str(out, r->value, strlen(r->value));
    tg_buf_printf(out, ",\"limit\":%lld,\"window_seconds\":%lld,\"unit\":\"%s\",\"policy\":\"%s\"}",
                  (long long)r->policy.quota, (long long)r->policy.window_s,
                  tg_rl_unit_name(r->policy.unit), pol);
}

/* POST, GET /api/v1/rate-limits and DELETE /api/v1/rate-limits/{id}; kept in
 * the store when there is one (request logging on), else in memory only. */
static void handle_rate_limits_api(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, bool may_write,
                                   const char *id)
{
    tg_store_t *store = gw->store;
    tg_rl_registry_t *rules = gw->rules;
    const char *m = tg_http_method(h);
    tg_buf_t out = {0};
    char err[256];
    if (strcmp(m, "GET") != 0 && !may_write) {
        reply_error(h, 403, "permission_denied", "changing rate limits needs a key with write");
        return;
    }
    if (!strcmp(m, "POST") && !id) {
        size_t len;
        const char *body = tg_http_body(h, &len);
        tg_rl_rule_t rule;
        if (!body || tg_rl_rule_parse_json(body, len, &rule, err, sizeof err) < 0) {
            reply_error(h, 400, "invalid_rate_limit", body ? err : "a JSON body is expected");
            return;
        }
        /* The store first: a rule is enforced only once it will outlive a
         * restart, so memory and store never disagree (no store: memory only). */
        tg_uuid4(rule.id);
        if (store && tg_store_rule_save(store, &rule, err, sizeof err) < 0) {
            tg_error("rate limits: rule not saved: %s", err);
            reply_error(h, 503, "store_unavailable",
                        "the store cannot save the rate limit now; it was not added");
            return;
        }
        if (tg_rl_registry_add(rules, &rule) < 0) {
            if (store && tg_store_rule_delete(store, rule.id, err, sizeof err) < 0)
                tg_error("rate limits: rule %s saved but not added: %s", rule.id, err);
            reply_error(h, 409, "rate_limit_not_added", "there are too many rate limits");
            return;
        }
        tg_bus_publish(
            bus, gw, "rule.added",
            json_pack("{s:s, s:o}", "id", rule.id, "rule", json_loadb(body, len, 0, NULL)));
        rule_json(&out, &rule);
        reply_buf(h, 201, &out);
    } else if (!strcmp(m, "GET") && !id) {
        tg_rl_rule_t *list = NULL;
        size_t n = tg_rl_registry_list(rules, &list);
        tg_buf_puts(&out, "{\"data\":[");
        for (size_t i = 0; i < n; i++) {
            tg_buf_puts(&out, i ? "," : "");
            rule_json(&out, &list[i]);
        }
        tg_buf_printf(&out, "],\"total\":%zu}", n);
        free(list);
        reply_buf(h, 200, &out);
    } else if (!strcmp(m, "DELETE") && id) {
        /* the store first, as for POST: a rule it still holds stays enforced */
        int rc = store ? tg_store_rule_delete(store, id, err, sizeof err) : 0;
        if (rc < 0) {
            tg_error("rate limits: rule %.40s not deleted: %s", id, err);
            reply_error(h, 503, "store_unavailable",
                        "the store cannot delete the rate limit now; it is still in force");
            return;
        }
        if (!tg_rl_registry_remove(rules, id)) {
            reply_error(h, 404, "not_found", "no runtime rate limit with that id");
            return;
        }
        tg_bus_publish(bus, gw, "rule.deleted", json_pack("{s:s}", "id", id));
        tg_http_reply(h, 204, NULL, NULL, 0);
    } else {
        reply_error(h, 405, "method_not_allowed",
                    "POST or GET /api/v1/rate-limits, DELETE .../{id}");
    }
}

int tg_api_providers(const tg_config_t *cfg, tg_health_registry_t *health, tg_store_t *store,
                     int64_t now_ms, tg_buf_t *out)
{
    tg_store_backend_t *b = store ? tg_store_backend(store) : NULL;
    tg_buf_puts(out, "{\"data\":[");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const tg_provider_cfg_t *p = &cfg->providers[i];
        tg_health_t *hl = tg_health_for(health, p->name);
        tg_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        tg_record_json_str(out, p->name, strlen(p->name));
        const char *type = tg_provider_type_name(p->type);
        tg_buf_puts(out, ",\"type\":");
        tg_record_json_str(out, type, strlen(type));
        bool ejected = tg_health_ejected(hl, now_ms);
        tg_buf_printf(out, ",\"ejected\":%s,\"usable\":%s,\"latency_estimate_ms\":",
                      ejected ? "true" : "false", tg_health_usable(hl, now_ms) ? "true" : "false");
        int64_t us = tg_health_latency_us(hl);
        if (us > 0)
            tg_buf_printf(out, "%lld", (long long)(us / 1000));
        else
            tg_buf_puts(out, "null");
        /* its last hour, from the records */
        tg_query_t q;
        memset(&q, 0, sizeof q);
        q.kind = TG_QUERY_STATS;
        q.has_from = q.has_to = true;
        q.from_ms = now_ms - 3600000;
        q.to_ms = now_ms + 1;
        char *name = p->name;
        q.providers.v = &name;
        q.providers.n = 1;
        tg_stats_t st;
        char err[256];
        if (b && b->ops->stats(b, &q, &st, err, sizeof err) == 0) {
            tg_buf_printf(out, ",\"last_hour\":{\"requests\":%lld,\"errors\":%lld,\"error_rate\":",
                          (long long)st.requests, (long long)st.errors);
            if (st.requests)
                tg_buf_printf(out, "%.6g", (double)st.errors / (double)st.requests);
            else
                tg_buf_puts(out, "null");
            for (int k = 0; k < 3; k++) {
                static const char *const names[] = {"latency_p50", "latency_p95", "latency_p99"};
                if (st.latency_ms[k] >= 0)
                    tg_buf_printf(out, ",\"%s\":%lld", names[k], (long long)st.latency_ms[k]);
                else
                    tg_buf_printf(out, ",\"%s\":null", names[k]);
            }
            tg_buf_append(out, "}", 1);
        } else {
            tg_buf_puts(out, ",\"last_hour\":null");
        }
        tg_buf_append(out, "}", 1);
    }
    tg_buf_printf(out, "],\"total\":%zu}", cfg->n_providers);
    return 200;
}

/* A query of the API, run on a reader thread (readers.h) when the gateway
 * has them, else here. Owns copies of what it reads. */
typedef struct {
    tg_http_t *h;
    tg_store_t *store;
    tg_config_t *cfg; /* a reference (providers) */
    tg_health_registry_t *health;
    char *path, *qs;
} query_job_t;

/* The GET routes answered from the store (and /providers). */
static bool is_query_route(const char *path)
{
    static const char *const exact[] = {
        "/api/v1/requests",     "/api/v1/requests/costs", "/api/v1/costs",    "/api/v1/stats",
        "/api/v1/stats/series", "/api/v1/sessions",       "/api/v1/providers"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(path, exact[i]))
            return true;
    for (size_t i = 0; i < 2; i++) {
        const char *prefix = i ? "/api/v1/sessions/" : "/api/v1/requests/";
        size_t n = strlen(prefix);
        if (!strncmp(path, prefix, n) && path[n] && !strchr(path + n, '/'))
            return true;
    }
    return false;
}

static int run_query(void *arg, tg_buf_t *out)
{
    query_job_t *j = arg;
    const char *path = j->path, *qs = j->qs;
    if (!strcmp(path, "/api/v1/providers"))
        return tg_api_providers(j->cfg, j->health, j->store, tg_wall_ms(), out);
    if (!strcmp(path, "/api/v1/requests"))
        return tg_query_requests(j->store, qs, out);
    if (!strcmp(path, "/api/v1/requests/costs"))
        return tg_query_request_costs(j->store, qs, out);
    if (!strncmp(path, "/api/v1/requests/", 17))
        return tg_query_request(j->store, path + 17, out);
    if (!strcmp(path, "/api/v1/costs"))
        return tg_query_costs(j->store, qs, out);
    if (!strcmp(path, "/api/v1/stats"))
        return tg_query_stats(j->store, qs, out);
    if (!strcmp(path, "/api/v1/stats/series"))
        return tg_query_series(j->store, qs, out);
    if (!strcmp(path, "/api/v1/sessions"))
        return tg_query_sessions(j->store, qs, out);
    /* /api/v1/sessions/{id}: the id is one path segment, percent-encoded */
    char *id = tg_http_decode(path + 17, strlen(path + 17));
    int status = 400;
    if (id)
        status = tg_query_session(j->store, id, out);
    else
        tg_buf_openai_error(out, "the session id decodes to a NUL byte", "invalid_request_error",
                            "invalid_parameter");
    free(id);
    return status;
}

static void query_done(void *arg, int status, tg_buf_t *out)
{
    query_job_t *j = arg;
    reply_buf(j->h, status, out); /* ends the exchange, even with the client gone */
}

static void query_free(void *arg)
{
    query_job_t *j = arg;
    tg_config_release(j->cfg);
    free(j->path);
    free(j->qs);
    free(j);
}

void tg_api_handle(tg_http_t *h, tg_gateway_t *gw, tg_redis_t *bus, tg_config_t *cfg, bool may_read,
                   bool may_write, const char *path)
{
    if (!may_read) {
        reply_error(h, 403, "permission_denied", "this key may not read logs and costs");
        return;
    }
    if (!strcmp(path, "/api/v1/rate-limits") || !strncmp(path, "/api/v1/rate-limits/", 20)) {
        handle_rate_limits_api(h, gw, bus, may_write,
                               path[19] == '/' && path[20] ? path + 20 : NULL);
        return;
    }
    if (!is_query_route(path)) {
        reply_error(h, 404, "unknown_route", "no such /api/v1 route");
        return;
    }
    if (strcmp(tg_http_method(h), "GET") != 0) {
        reply_error(h, 405, "method_not_allowed", "this route takes GET");
        return;
    }
    if (!gw->store && strcmp(path, "/api/v1/providers")) {
        reply_error(h, 503, "logging_disabled",
                    "request logging is off (observability.request_logging.enabled)");
        return;
    }
    query_job_t *j = tg_xcalloc(1, sizeof *j);
    j->h = h;
    j->store = gw->store;
    j->cfg = tg_config_acquire(cfg);
    j->health = gw->health;
    j->path = tg_xstrdup(path);
    j->qs = tg_http_query(h) ? tg_xstrdup(tg_http_query(h)) : NULL;
    if (gw->readers) {
        tg_readers_submit(gw->readers, tg_http_base(h), run_query, query_done, query_free, j);
        return;
    }
    tg_buf_t out = {0};
    int status = run_query(j, &out);
    query_done(j, status, &out);
    query_free(j);
}

bool tg_api_rules_apply(tg_gateway_t *gw, const char *type, json_t *data)
{
    const char *id = json_string_value(json_object_get(data, "id"));
    if (!id || strlen(id) >= sizeof((tg_rl_rule_t *)0)->id)
        return false;
    if (!strcmp(type, "rule.deleted")) {
        tg_rl_registry_remove(gw->rules, id); /* false: unknown here */
        return true;
    }
    if (strcmp(type, "rule.added"))
        return false;
    char *body = json_dumps(json_object_get(data, "rule"), JSON_COMPACT | JSON_ENCODE_ANY);
    tg_rl_rule_t rule;
    char err[256];
    bool ok = body && tg_rl_rule_parse_json(body, strlen(body), &rule, err, sizeof err) == 0;
    free(body);
    if (!ok)
        return false;
    snprintf(rule.id, sizeof rule.id, "%s", id);
    tg_rl_registry_add(gw->rules, &rule); /* -1: known here already, or full */
    return true;
}
