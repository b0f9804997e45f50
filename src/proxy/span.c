/*
 * span.c — an exchange as an OpenTelemetry span (otlp/otlp.h,
 * docs/observability.md): the client's traceparent read as the exchange
 * begins, the provider's answer id and model as its answer comes, and at
 * the end a view over the finished record's fields (and the few things
 * only the exchange knows: the operation, the provider's host, the
 * request's max_tokens and temperature, read with its body, which is gone
 * by the end) handed to the exporter's queue,
 * which copies it. Nothing here runs when no endpoint is configured.
 *
 * The request's content (prompt, answer) and its credentials are never in
 * the view: only the record's metadata.
 *
 * Thread: the worker thread of the exchange.
 */
#include "proxy/exchange.h"

#include "gateway.h"
#include "providers/provider.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tg_exchange_span_begin(tg_exchange_t *x)
{
    x->span_max_tokens = -1;
    x->span_temperature = NAN;
    if (!x->pw->gw->otlp)
        return;
    /* a traceparent that is not W3C's is ignored: the span starts a trace */
    tg_otlp_traceparent_parse(tg_http_header(x->h, "traceparent"), &x->trace);
    tg_otlp_new_span(&x->trace, x->span_id);
}

bool tg_exchange_span_traceparent(const tg_exchange_t *x, char out[56])
{
    if (!x->pw->gw->otlp)
        return false;
    tg_otlp_traceparent_format(&x->trace, x->span_id, out);
    return true;
}

void tg_exchange_span_ids(tg_exchange_t *x, const char *json, size_t len)
{
    if (!x->pw->gw->otlp || x->span_ids_read || !json)
        return;
    x->span_ids_read = true;
    tg_otlp_response_ids(json, len, x->resp_id, sizeof x->resp_id, x->resp_model,
                         sizeof x->resp_model);
}

/* gen_ai.operation.name of a route; NULL: no span (a manual log records a
 * call the gateway did not make). */
static const char *operation_of(tg_route_kind_t route)
{
    switch (route) {
    case TG_ROUTE_CHAT:
    case TG_ROUTE_RESPONSES:
    case TG_ROUTE_MESSAGES: return "chat";
    case TG_ROUTE_COMPLETIONS: return "text_completion";
    case TG_ROUTE_EMBEDDINGS: return "embeddings";
    case TG_ROUTE_GEMINI: return "generate_content";
    case TG_ROUTE_COUNT_TOKENS: return "count_tokens";
    case TG_ROUTE_PASSTHROUGH: return "passthrough";
    case TG_ROUTE_LOG: return NULL;
    }
    return NULL;
}

/* server.address and server.port from a provider's base URL. */
static void server_of(const char *url, char *host, size_t hostlen, int *port)
{
    host[0] = 0;
    *port = 0;
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return;
    bool https = p - url == 5 && !strncasecmp(url, "https", 5);
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *hs = p, *he, *rest;
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close)
            return;
        hs = p + 1;
        he = rest = close;
        rest++;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        he = rest = colon ? colon : end;
    }
    size_t n = (size_t)(he - hs);
    if (n >= hostlen)
        return;
    memcpy(host, hs, n);
    host[n] = 0;
    *port = rest < end && *rest == ':' ? atoi(rest + 1) : https ? 443 : 80;
}

/* A number's text as a double; NaN when it is not one. */
static double span_number(const char *doc, tg_json_span_t sp)
{
    char num[32];
    size_t n = sp.found ? sp.end - sp.start : 0;
    if (n == 0 || n >= sizeof num)
        return NAN;
    memcpy(num, doc + sp.start, n);
    num[n] = 0;
    char *end;
    double v = strtod(num, &end);
    return end == num + n && isfinite(v) ? v : NAN;
}

void tg_exchange_span_request(tg_exchange_t *x)
{
    if (!x->pw->gw->otlp || !x->in_body || !x->in_len)
        return;
    /* the max-token spellings in the token cap's order, then temperature;
     * Gemini's are in its generationConfig */
    static const char *const keys[] = {"max_tokens", "max_completion_tokens", "max_output_tokens",
                                       "maxOutputTokens", "temperature"};
    const char *doc = x->in_body;
    size_t len = x->in_len, a, b;
    if (x->route == TG_ROUTE_GEMINI && tg_json_member(doc, len, "generationConfig", &a, &b) &&
        doc[a] == '{') {
        doc += a;
        len = b - a;
    }
    tg_json_span_t v[5];
    if (!tg_json_members(doc, len, keys, 5, v))
        return;
    for (int k = 0; k < 4 && x->span_max_tokens < 0; k++)
        x->span_max_tokens = tg_json_span_long(doc, v[k]);
    x->span_temperature = span_number(doc, v[4]);
}

void tg_exchange_span_submit(tg_exchange_t *x, const tg_record_t *r)
{
    tg_otlp_t *o = x->pw->gw->otlp;
    const char *op = operation_of(x->route);
    if (!o || !op)
        return;
    const tg_provider_cfg_t *p = x->target.provider;
    char host[256];
    int port;
    server_of(p ? p->base_url : NULL, host, sizeof host, &port);
    tg_otlp_prop_t props[64];
    size_t np = r->n_props < 64 ? r->n_props : 64;
    for (size_t i = 0; i < np; i++)
        props[i] = (tg_otlp_prop_t){r->props[i].name, r->props[i].value};
    int64_t start_ns = r->created_at_ms * 1000000LL;
    tg_otlp_span_t s = {
        .ctx = x->trace,
        .span_id = {x->span_id[0], x->span_id[1], x->span_id[2], x->span_id[3], x->span_id[4],
                    x->span_id[5], x->span_id[6], x->span_id[7]},
        .start_ns = start_ns,
        .end_ns = start_ns + (tg_mono_us() - x->t0_us) * 1000LL,
        .operation = op,
        .provider_name = p ? tg_otlp_provider_name(tg_provider_rec_of(p)->name) : NULL,
        .request_model = r->model ? r->model : r->model_requested,
        .response_model = x->resp_model[0] ? x->resp_model : NULL,
        .response_id = x->resp_id[0] ? x->resp_id : NULL,
        .server_address = host[0] ? host : NULL,
        .server_port = port,
        .status = r->status,
        .error = r->error,
        .input_tokens = r->usage.prompt_tokens,
        .output_tokens = r->usage.completion_tokens,
        .max_tokens = x->span_max_tokens,
        .temperature = x->span_temperature,
        .stream = x->in_stream,
        .provider = r->provider,
        .model_requested = r->model_requested,
        .route = r->route,
        .request_id = r->id,
        .user_id = r->user_id,
        .session_id = r->session_id,
        .key_name = r->key_name,
        .cache = r->cache == TG_RECORD_CACHE_NONE ? NULL : tg_record_cache_name(r->cache),
        .cost_nusd = r->cost_nusd,
        .latency_ms = r->latency_ms,
        .ttft_ms = r->ttft_ms,
        .retries = r->retries,
        .fallback_index = r->fallback_index,
        .props = props,
        .n_props = np,
    };
    tg_otlp_submit(o, &s);
}
