/*
 * pipeline.c — where a request goes. The route table (tg_pipeline_handle)
 * answers /health, /metrics, /v1/models and /api/v1 (api.c) itself, after
 * admit() (allowed_ips, the gateway key); an LLM route, a Gemini route or a
 * raw pass-through becomes an exchange (exchange.h) that runs its list of
 * stages (stages.c). Also here: the worker hooks the server calls, which
 * give each worker its pointer to the gateway object (gateway.h) and its
 * shard of the gateway's metrics.
 *
 * Thread: a worker thread.
 */
#include "proxy/pipeline.h"

#include "core/log.h"
#include "dashboard/dashboard.h"
#include "gateway.h"
#include "metrics/metrics.h"
#include "providers/provider.h"
#include "proxy/api.h"
#include "proxy/api_budgets.h"
#include "proxy/api_keys.h"
#include "proxy/bus.h"
#include "proxy/exchange.h"
#include "proxy/manual_log.h"
#include "proxy/readers.h"
#include "proxy/reply.h"
#include "proxy/spend.h"

#include <ctype.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Provider health records a worker remembers (tg_pworker_health); a
 * gateway with more providers asks the registry for the others. */
#define TG_PWORKER_HEALTH_MAX 16

typedef struct {
    const char *path;
    tg_route_kind_t route;
    const char *suffix; /* appended to the provider's base_url (native calls) */
    tg_wire_t wire;     /* the client's dialect */
} llm_route_t;

static const llm_route_t llm_routes[] = {
    {"/v1/chat/completions", TG_ROUTE_CHAT, "/chat/completions", TG_WIRE_OPENAI},
    {"/v1/completions", TG_ROUTE_COMPLETIONS, "/completions", TG_WIRE_OPENAI},
    {"/v1/embeddings", TG_ROUTE_EMBEDDINGS, "/embeddings", TG_WIRE_OPENAI},
    {"/v1/responses", TG_ROUTE_RESPONSES, "/responses", TG_WIRE_RESPONSES},
    {"/v1/messages", TG_ROUTE_MESSAGES, "/messages", TG_WIRE_ANTHROPIC},
    {"/v1/messages/count_tokens", TG_ROUTE_COUNT_TOKENS, "/messages/count_tokens",
     TG_WIRE_ANTHROPIC},
};

/* The LLM route of a path. An Anthropic base URL that ends in /v1
 * (ANTHROPIC_BASE_URL=http://gateway/v1, what the Vercel AI SDK wants) makes
 * Claude Code and the Anthropic SDKs ask for /v1/v1/messages: the same
 * route, recorded as /v1/messages. */
static const llm_route_t *llm_route_of(const char *path)
{
    bool doubled = !strncmp(path, "/v1/v1/messages", 15);
    if (doubled)
        path += 3;
    for (size_t i = 0; i < sizeof llm_routes / sizeof llm_routes[0]; i++)
        if (!strcmp(path, llm_routes[i].path) &&
            (!doubled || llm_routes[i].wire == TG_WIRE_ANTHROPIC))
            return &llm_routes[i];
    return NULL;
}

/* An error before an exchange exists, in the dialect its path implies. */
static void reply_error(tg_http_t *h, int status, const char *code, const char *message)
{
    tg_reply_error(h, tg_reply_wire_of_path(tg_http_path(h)), status, code, message);
}

/* ---- LLM routes ---- */

/* A caller admit() refused: the exchange ends with the refusal, which its
 * record keeps (route, client address, error; never the key presented). */
static bool refused(tg_exchange_t *x)
{
    if (!x->caller.refused_status)
        return false;
    tg_exchange_error(x, x->caller.refused_status, x->caller.refused_code, x->caller.refused_msg);
    return true;
}

static void handle_llm(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller,
                       const llm_route_t *r)
{
    tg_exchange_t *x = tg_exchange_new(pw, h, caller, r->route, r->path);
    x->wire = r->wire;
    if (refused(x))
        return;
    x->suffix = r->suffix;
    x->stages = tg_stages_llm();
    tg_exchange_resume(x);
}

/* Gemini's native API: rest = "{model}:{action}" after /v1beta/models/.
 * The model may carry a provider/ prefix like any other (SPEC §4). */
static void handle_gemini(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller,
                          const char *rest)
{
    static const char *const actions[] = {"generateContent", "streamGenerateContent"};
    static const char *const paths[] = {"/v1beta/models/{model}:generateContent",
                                        "/v1beta/models/{model}:streamGenerateContent"};
    char *name = tg_http_decode(rest, strlen(rest));
    char *colon = name ? strrchr(name, ':') : NULL;
    int k = -1;
    for (int i = 0; colon && i < 2; i++)
        if (!strcmp(colon + 1, actions[i]))
            k = i;
    if (k < 0) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "no route for %s /v1beta/models/%.200s: this gateway serves :generateContent "
                 "and :streamGenerateContent",
                 tg_http_method(h), rest);
        reply_error(h, 404, "unknown_route", msg);
        free(name);
        return;
    }
    *colon = 0;
    tg_exchange_t *x = tg_exchange_new(pw, h, caller, TG_ROUTE_GEMINI, paths[k]);
    x->wire = TG_WIRE_GEMINI;
    if (refused(x)) {
        free(name);
        return;
    }
    x->gemini_action = actions[k];
    x->in_stream = k == 1;
    bool plain = *name != 0;
    for (const char *c = name; *c; c++)
        plain = plain && (isalnum((unsigned char)*c) || strchr("._-/@", *c));
    if (!plain) {
        free(name);
        tg_exchange_error(x, 400, "invalid_model",
                          "the model in the path must be a name of letters, digits and . _ - / @");
        return;
    }
    x->model_requested = name;
    x->stages = tg_stages_llm();
    tg_exchange_resume(x);
}

/* ---- raw pass-through ---- */

/* rest = "{provider}/{path}" */
static void handle_passthrough(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller,
                               const char *route_path, const char *rest)
{
    tg_exchange_t *x = tg_exchange_new(pw, h, caller, TG_ROUTE_PASSTHROUGH, route_path);
    if (refused(x))
        return;
    const char *slash = strchr(rest, '/');
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const tg_provider_cfg_t *p = tg_config_provider(x->cfg, rest, nlen);
    if (!p || tg_provider_rec_of(p)->local) {
        char err[1024], name[128];
        snprintf(name, sizeof name, "%.*s/", (int)(nlen < 100 ? nlen : 100), rest);
        tg_router_explain(x->cfg, name, err, sizeof err);
        tg_exchange_error(x, 404, "provider_not_found", err);
        return;
    }
    x->target.provider = p;
    x->target.how = "passthrough";
    /* a raw call's model is never read: a key limited to some models may not
     * make one (it would reach any model) */
    if (x->caller.vkey && x->caller.vkey->n_models) {
        tg_exchange_error(x, 403, "model_not_allowed",
                          "this gateway key is limited to some models, and a raw pass-through "
                          "call's model is not checked: use the /v1 routes");
        return;
    }
    x->suffix = slash ? slash : "";
    x->stages = tg_stages_passthrough();
    tg_exchange_resume(x);
}

/* ---- manual logging (manual_log.h) ---- */

/* Helicone's logging paths and the dialect each implies. These exact paths
 * win over a provider's pass-through of the same name (a provider named
 * `oai` or `custom` is still reached at /passthrough/oai/v1/log). */
static const struct {
    const char *path, *dialect;
} log_routes[] = {
    {"/oai/v1/log", "openai"},
    {"/anthropic/v1/log", "anthropic"},
    {"/googleapis/v1/log", "gemini"},
    {"/custom/v1/log", "openai"},
};

static bool handle_log(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller, const char *path)
{
    for (size_t i = 0; i < sizeof log_routes / sizeof log_routes[0]; i++) {
        if (strcmp(path, log_routes[i].path))
            continue;
        tg_exchange_t *x = tg_exchange_new(pw, h, caller, TG_ROUTE_LOG, log_routes[i].path);
        x->log_dialect = log_routes[i].dialect;
        if (refused(x))
            return true;
        x->stages = tg_stages_manual_log();
        tg_exchange_resume(x);
        return true;
    }
    return false;
}

/* ---- small routes ---- */

static json_t *model_object(const char *id, const char *owner)
{
    return json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0, "owned_by",
                     owner);
}

/* The models the configured providers name, as GET /v1/models lists them:
 * `<provider>/<model>` for each default_model and each models entry that is
 * not a glob, and the mock's mock/echo. */
static json_t *model_list(const tg_config_t *cfg)
{
    json_t *data = json_array();
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const tg_provider_cfg_t *p = &cfg->providers[i];
        char id[512];
        if (tg_provider_rec_of(p)->local) {
            json_array_append_new(data, model_object("mock/echo", "tollgate"));
            continue;
        }
        if (p->default_model) {
            snprintf(id, sizeof id, "%s/%s", p->name, p->default_model);
            json_array_append_new(data, model_object(id, p->name));
        }
        for (size_t k = 0; k < p->n_models; k++) {
            if (strpbrk(p->models[k], "*?["))
                continue; /* a glob names no single model */
            if (p->default_model && !strcmp(p->models[k], p->default_model))
                continue;
            snprintf(id, sizeof id, "%s/%s", p->name, p->models[k]);
            json_array_append_new(data, model_object(id, p->name));
        }
    }
    return data;
}

static void reply_json(tg_http_t *h, int status, json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT);
    tg_http_reply(h, status, "application/json", s, strlen(s));
    free(s);
    json_decref(root);
}

static void handle_models(tg_pworker_t *pw, tg_http_t *h)
{
    reply_json(h, 200, json_pack("{s:s,s:o}", "object", "list", "data", model_list(pw->cfg)));
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* GET /v1/models/{id}: one model object. `enc` is the rest of the path,
 * percent-decoded here (SDKs encode the id as one segment: openai%2Fgpt-4o).
 * An id /v1/models lists, or a model name the router resolves (a bare
 * `gpt-4o` with an OpenAI provider configured); else 404 in OpenAI's shape. */
static void handle_model(tg_pworker_t *pw, tg_http_t *h, const char *enc)
{
    char id[512];
    size_t n = 0;
    for (const char *c = enc; *c; c++) {
        int hi, lo;
        char ch = *c;
        if (ch == '%' && (hi = hex_digit(c[1])) >= 0 && (lo = hex_digit(c[2])) >= 0) {
            ch = (char)(hi * 16 + lo);
            c += 2;
        }
        if (n + 1 >= sizeof id || ch == 0 || (unsigned char)ch < 0x20) {
            reply_error(h, 400, "invalid_model", "the model id is too long or not printable");
            return;
        }
        id[n++] = ch;
    }
    id[n] = 0;
    json_t *list = model_list(pw->cfg), *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        if (!strcmp(json_string_value(json_object_get(m, "id")), id)) {
            found = json_incref(m);
            break;
        }
    }
    json_decref(list);
    if (!found && n) {
        tg_route_t r = {0};
        char err[256];
        if (tg_router_resolve(pw->cfg, pw->gw->health, id, tg_exchange_header, h, &r, err,
                              sizeof err) == 0)
            found = model_object(id, r.provider->name);
        tg_route_clear(&r);
    }
    if (!found) {
        char msg[700];
        snprintf(msg, sizeof msg, "The model '%s' does not exist: no configured provider serves it",
                 id);
        reply_error(h, 404, "model_not_found", msg);
        return;
    }
    reply_json(h, 200, found);
}

/* ---- access (SPEC §5) ---- */

/* The gateway key a request presents: Helicone-Auth first (then the
 * client's Authorization stays its provider credential), else a provider
 * SDK's key header (Authorization: Bearer, x-api-key, x-goog-api-key: the
 * provider records say which), which is then consumed. */
static const char *presented_key(tg_http_t *h, const char **header)
{
    const char *v;
    if ((v = tg_http_header(h, "Helicone-Auth"))) {
        *header = NULL; /* Helicone-* headers are never forwarded anyway */
        return tg_has_prefix_ci(v, "Bearer ") ? v + 7 : v;
    }
    return tg_provider_gateway_key(tg_exchange_header, h, header);
}

/* A refusal outside an exchange: answered only. */
static void refusal_reply(tg_http_t *h, const tg_caller_t *caller)
{
    reply_error(h, caller->refused_status, caller->refused_code, caller->refused_msg);
}

static bool refuse(tg_caller_t *caller, int status, const char *code, const char *msg)
{
    caller->refused_status = status;
    caller->refused_code = code;
    caller->refused_msg = msg;
    return false;
}

/* Address allow-list and gateway key. Returns false, with the refusal in
 * *caller, when the caller may not go on; whoever routes the request
 * answers it (an LLM route through its exchange, so that it is recorded). */
static bool admit(tg_pworker_t *pw, tg_http_t *h, tg_caller_t *caller)
{
    if (!tg_access_ip_allowed(pw->access, tg_http_client_ip(h)))
        return refuse(caller, 403, "address_not_allowed", "this address may not use the gateway");
    if (!pw->cfg->require_auth) {
        caller->may_read = caller->may_write = true;
        return true;
    }
    const char *header = NULL;
    const char *key = presented_key(h, &header);
    while (key && *key == ' ')
        key++;
    const tg_api_key_cfg_t *k = key ? tg_access_find_key(pw->access, key, strlen(key)) : NULL;
    /* then the virtual keys (/api/v1/keys): SHA-256 compared in constant time too */
    const tg_vkey_t *v = key && !k ? tg_keyring_find(pw->gw->keys, key, strlen(key)) : NULL;
    if (!k && !v)
        return refuse(caller, 401, key ? "invalid_api_key" : "missing_api_key",
                      key ? "the gateway key is not valid"
                          : "this gateway needs a key: send Helicone-Auth: Bearer <key> (or "
                            "Authorization: Bearer <key>)");
    if (v && v->expires_at > 0 && (int64_t)time(NULL) >= v->expires_at)
        return refuse(caller, 401, "key_expired", "this gateway key has expired");
    caller->consumed_header = header;
    caller->key_name = k ? k->name : v->name;
    caller->may_read = k ? k->perm_read : v->perm_read;
    caller->may_write = k ? k->perm_write : v->perm_write;
    caller->vkey = v;
    return true;
}

/* /api/v1 and /metrics show every stored prompt and change limits: without
 * gateway keys, the address decides (security.admin_allowed_ips, loopback by
 * default); with keys, their permissions do. Ends the exchange and returns
 * false when the caller may not go on. */
static bool admin_reachable(tg_pworker_t *pw, tg_http_t *h)
{
    if (pw->cfg->require_auth || tg_access_admin_ip_allowed(pw->access, tg_http_client_ip(h)))
        return true;
    reply_error(h, 403, "address_not_allowed",
                "/api/v1 and /metrics answer only the addresses in "
                "security.admin_allowed_ips (default: this machine) while "
                "security.require_auth is off");
    return false;
}

/* ---- the route table ---- */

/* The routes after access and the admin routes: false when `path` is none
 * of them. Handlers read the path only while they run (a route alias lives
 * on the caller's stack). */
static bool route(tg_pworker_t *pw, tg_http_t *h, tg_caller_t *caller, const char *path)
{
    const char *method = tg_http_method(h);
    if (!strcmp(path, "/v1/models")) {
        if (caller->refused_status)
            refusal_reply(h, caller); /* a listing, not an LLM call: not recorded */
        else if (strcmp(method, "GET"))
            reply_error(h, 405, "method_not_allowed", "/v1/models takes GET");
        else
            handle_models(pw, h);
        return true;
    }
    if (!strncmp(path, "/v1/models/", 11)) {
        if (caller->refused_status)
            refusal_reply(h, caller);
        else if (strcmp(method, "GET"))
            reply_error(h, 405, "method_not_allowed", "/v1/models/{id} takes GET");
        else
            handle_model(pw, h, path + 11);
        return true;
    }
    const llm_route_t *r = llm_route_of(path);
    if (r) {
        handle_llm(pw, h, caller, r);
        return true;
    }
    if (!strncmp(path, "/v1beta/models/", 15)) {
        handle_gemini(pw, h, caller, path + 15);
        return true;
    }
    if (handle_log(pw, h, caller, path))
        return true;
    if (!strncmp(path, "/passthrough/", 13)) {
        handle_passthrough(pw, h, caller, "/passthrough", path + 13);
        return true;
    }
    /* /{provider}/{path}, for a configured provider name */
    const char *seg = path + 1, *slash = strchr(seg, '/');
    if (path[0] == '/' && slash && slash > seg &&
        tg_config_provider(pw->cfg, seg, (size_t)(slash - seg))) {
        handle_passthrough(pw, h, caller, "/{provider}", seg);
        return true;
    }
    return false;
}

/* The canonical route of a path without /v1 (SPEC §3): "/v1" + path into
 * buf, or NULL when the path is /v1's own or too long. */
static const char *v1_alias(const char *path, char *buf, size_t size)
{
    if (path[0] != '/' || !strncmp(path, "/v1/", 4) ||
        (size_t)snprintf(buf, size, "/v1%s", path) >= size)
        return NULL;
    return buf;
}

void tg_pipeline_handle(tg_http_t *h, void *wctx)
{
    tg_pworker_t *pw = wctx;
    const char *path = tg_http_path(h);
    const char *method = tg_http_method(h);

    if (!strcmp(path, "/health")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            reply_error(h, 405, "method_not_allowed", "/health takes GET or HEAD");
        else
            tg_http_reply(h, 200, "application/json", "{\"status\":\"ok\"}", 15);
        return;
    }
    if (tg_http_dashboard(h) && strncmp(path, "/api/v1/", 8)) {
        tg_dashboard_serve(h); /* its port: the page, /api/v1 and /health only */
        return;
    }
    tg_caller_t caller = {0};
    if (!admit(pw, h, &caller) && (!strcmp(path, "/metrics") || !strncmp(path, "/api/v1/", 8))) {
        refusal_reply(h, &caller); /* not LLM traffic: answered, not recorded */
        return;
    }
    if (!strcmp(path, "/metrics")) {
        if (!admin_reachable(pw, h))
            return;
        if (!pw->cfg->metrics_enabled)
            reply_error(h, 404, "unknown_route", "metrics are disabled (observability.metrics)");
        else if (!caller.may_read)
            reply_error(h, 403, "permission_denied", "this key may not read metrics");
        else {
            tg_buf_t out = {0};
            tg_metrics_render(pw->gw->metrics, &out);
            tg_http_reply(h, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
            tg_buf_free(&out);
        }
        return;
    }
    if (!strncmp(path, "/api/v1/", 8)) {
        if (!admin_reachable(pw, h))
            return;
        if (!tg_api_budgets(h, pw->gw, pw->redis, pw->cfg, caller.may_read, caller.may_write,
                            path) &&
            !tg_api_keys(h, pw->gw, pw->redis, pw->cfg, caller.may_write, path))
            tg_api_handle(h, pw->gw, pw->redis, pw->cfg, caller.may_read, caller.may_write, path);
        return;
    }
    if (route(pw, h, &caller, path))
        return;
    /* Base URLs users copy from other gateways (SPEC §3): the OpenAI SDK at
     * http://host:8585 sends /chat/completions, Helicone's AI gateway takes
     * that. A path that is not the gateway's own and whose first segment
     * names no configured provider (that is its pass-through, above) means
     * what /v1 + path means, whatever /v1 routes exist; the record shows the
     * canonical /v1 route. */
    char buf[2048];
    const char *alias = v1_alias(path, buf, sizeof buf);
    if (alias && route(pw, h, &caller, alias))
        return;
    if (caller.refused_status) { /* no 404 before the key is checked */
        refusal_reply(h, &caller);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no route for %s %.200s", method, path);
    reply_error(h, 404, "unknown_route", msg);
}

/* ---- worker hooks ---- */

static void on_journal_ev(evutil_socket_t fd, short what, void *arg)
{
    tg_journal_write(((tg_pworker_t *)arg)->journal);
}

void *tg_pipeline_worker_init(struct event_base *base, int index, tg_config_t *cfg, void *arg)
{
    tg_gateway_t *gw = arg;
    tg_pworker_t *pw = tg_xcalloc(1, sizeof *pw);
    pw->base = base;
    pw->index = index;
    pw->cfg = tg_config_acquire(cfg);
    pw->access = tg_access_new(cfg);
    pw->relay = tg_relay_new(base);
    pw->gw = gw;
    pw->metrics = tg_metrics_shard(gw->metrics, index);
    pw->journal = tg_journal_open(gw->store, index);
    pw->redis = tg_redis_new(gw->redis, base); /* NULL without redis.url */
    pw->settle_retries = tg_spend_retries_new(base, pw->redis);
    if (pw->redis && index == 0) { /* one connection seeds the budgets' spend */
        tg_redis_set_on_ready(pw->redis, tg_gateway_seed_shared, gw);
        /* and one listens to the other instances' changes (proxy/bus.h) */
        pw->bus = tg_redis_subscribe(gw->redis, base, TG_BUS_CHANNEL, tg_bus_on_message, gw);
    }
    if (pw->journal)
        pw->journal_ev = event_new(base, -1, 0, on_journal_ev, pw);
    if (!pw->relay) {
        tg_pipeline_worker_free(pw);
        return NULL;
    }
    return pw;
}

tg_config_t *tg_pworker_cfg_hold(tg_pworker_t *pw)
{
    pw->cfg_users++;
    return pw->cfg;
}

void tg_pworker_cfg_drop(tg_pworker_t *pw, tg_config_t *cfg)
{
    if (cfg == pw->cfg) {
        pw->cfg_users--;
        return;
    }
    for (tg_cfg_lease_t **l = &pw->old_cfgs; *l; l = &(*l)->next) {
        if ((*l)->cfg != cfg)
            continue;
        tg_cfg_lease_t *gone = *l;
        if (--gone->users == 0) {
            *l = gone->next;
            tg_config_release(gone->cfg);
            free(gone);
        }
        return;
    }
    abort(); /* a config this worker never handed out */
}

/* The worker's current config is replaced: its reference goes with the
 * exchanges still using it, or now if none does. */
static void retire_cfg(tg_pworker_t *pw)
{
    if (pw->cfg_users > 0) {
        tg_cfg_lease_t *l = tg_xcalloc(1, sizeof *l);
        *l = (tg_cfg_lease_t){pw->cfg, pw->cfg_users, pw->old_cfgs};
        pw->old_cfgs = l;
    } else {
        tg_config_release(pw->cfg);
    }
    pw->cfg = NULL;
    pw->cfg_users = 0;
}

/* The registry only grows and never frees a record before the gateway
 * goes, and tg_health_for gives the first record of a name, so a record
 * found once stays the answer for that name: the worker keeps its own list
 * and asks the registry only for names it has not met. */
tg_health_t *tg_pworker_health(tg_pworker_t *pw, const char *provider)
{
    for (size_t i = 0; i < pw->n_health; i++)
        if (!strcasecmp(tg_health_name(pw->health[i]), provider))
            return pw->health[i];
    tg_health_t *h = tg_health_for(pw->gw->health, provider);
    if (pw->n_health < TG_PWORKER_HEALTH_MAX) {
        if (!pw->health)
            pw->health = tg_xcalloc(TG_PWORKER_HEALTH_MAX, sizeof *pw->health);
        pw->health[pw->n_health++] = h;
    }
    return h;
}

void tg_pipeline_worker_free(void *wctx)
{
    tg_pworker_t *pw = wctx;
    if (!pw)
        return;
    tg_readers_forget(pw->gw->readers, pw->base); /* answers this loop will not take */
    tg_journal_close(pw->journal);                /* no exchange is left to submit a record */
    if (pw->journal_ev)
        event_free(pw->journal_ev);
    tg_redis_free(pw->redis);                  /* no exchange is left waiting for a reply */
    tg_spend_retries_free(pw->settle_retries); /* after: failed settles join it */
    free(pw->spend_plan);
    tg_redis_free(pw->bus);
    tg_relay_free(pw->relay);
    tg_access_free(pw->access);
    /* every exchange has ended: nothing holds a config through the worker */
    while (pw->old_cfgs) {
        tg_cfg_lease_t *l = pw->old_cfgs;
        pw->old_cfgs = l->next;
        tg_config_release(l->cfg);
        free(l);
    }
    tg_config_release(pw->cfg);
    free(pw->health);
    free(pw);
}

void tg_pipeline_before_write(void *wctx)
{
    tg_journal_write(((tg_pworker_t *)wctx)->journal);
}

void tg_pipeline_config_changed(void *wctx, tg_config_t *cfg)
{
    tg_pworker_t *pw = wctx;
    if (cfg != pw->cfg) {
        tg_config_t *next = tg_config_acquire(cfg);
        retire_cfg(pw);
        pw->cfg = next;
        /* a config that comes back takes its exchanges with it */
        for (tg_cfg_lease_t **l = &pw->old_cfgs; *l; l = &(*l)->next) {
            if ((*l)->cfg != next)
                continue;
            tg_cfg_lease_t *back = *l;
            *l = back->next;
            pw->cfg_users = back->users;
            tg_config_release(back->cfg); /* the worker holds it once, as pw->cfg */
            free(back);
            break;
        }
    }
    tg_access_free(pw->access);
    pw->access = tg_access_new(cfg);
}
