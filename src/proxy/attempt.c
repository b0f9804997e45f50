/*
 * attempt.c — calls to providers. One attempt is one call to one target:
 * its URL, headers (credentials per SPEC §5) and body are built, the relay
 * runs it, and its answer goes to the filters (filters.c). When it fails,
 * one classification (tg_attempt_classify) checked against one policy mask
 * (TG_FAIL_NEXT_UPSTREAM, as nginx's proxy_next_upstream) decides: retry
 * the target after a backoff, fall back to the next target (SPEC §4
 * fallback_chain, §6 Helicone-Fallbacks and -Retry-*), or tell the client.
 *
 * Callbacks, in order: on_up_response, on_up_data..., on_up_done (relay.h);
 * on_client_close / on_client_drain whenever the client leaves or drains.
 * An attempt's answer that will be retried past is discarded, never sent.
 *
 * Thread: the worker thread of the exchange (relay and timer callbacks).
 */
#include "proxy/attempt.h"

#include "core/log.h"
#include "core/urlpath.h"
#include "cost/cost.h"
#include "gateway.h"
#include "metrics/metrics.h"
#include "providers/provider.h"
#include "proxy/exchange.h"
#include "proxy/spend.h"
#include "router/balance.h"

#include <event2/event.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the policy (attempt.h), pure ---- */

unsigned tg_attempt_classify(tg_upstream_result_t res, int status, bool too_large)
{
    unsigned f = TG_FAIL_NONE;
    if (res == TG_UP_CONNECT)
        f |= TG_FAIL_CONNECT;
    else if (res == TG_UP_TIMEOUT)
        f |= TG_FAIL_TIMEOUT;
    else if (res != TG_UP_OK) /* cut, malformed, or over the relay's own limit */
        f |= TG_FAIL_BROKEN;
    if (too_large)
        f |= TG_FAIL_TOO_LARGE;
    if (status == 429)
        f |= TG_FAIL_429;
    else if (status >= 500)
        f |= TG_FAIL_5XX;
    return f;
}

void tg_attempt_describe(unsigned fail, const char *provider, const char *err, size_t max_buffered,
                         tg_failure_t *out)
{
    out->status = 502;
    out->code = "provider_error";
    out->kind = "broken";
    if (fail & TG_FAIL_TOO_LARGE) {
        out->kind = "too_large";
        snprintf(out->msg, sizeof out->msg, "provider '%s' answered more than %zu MiB", provider,
                 max_buffered >> 20);
    } else if (fail & TG_FAIL_TIMEOUT) {
        out->status = 504;
        out->code = "provider_timeout";
        out->kind = "timeout";
        snprintf(out->msg, sizeof out->msg, "provider '%s' timed out: %s", provider, err);
    } else if (fail & TG_FAIL_CONNECT) {
        out->code = "provider_unreachable";
        out->kind = "connect";
        snprintf(out->msg, sizeof out->msg, "provider '%s' is unreachable: %s", provider, err);
    } else {
        snprintf(out->msg, sizeof out->msg, "provider '%s' broke off its answer: %s", provider,
                 err);
    }
}

unsigned tg_attempt_on_codes(unsigned fail, bool has_codes, bool in_codes)
{
    if (!has_codes)
        return fail;
    return in_codes ? fail | TG_FAIL_CODES : fail & ~(unsigned)(TG_FAIL_429 | TG_FAIL_5XX);
}

tg_next_t tg_attempt_next(unsigned fail, unsigned policy, const tg_attempt_state_t *s)
{
    if (!(fail & policy) || (fail & ~policy & TG_FAIL_TRANSFER) || s->answer_started)
        return TG_NEXT_NONE;
    if ((fail & policy) == TG_FAIL_CODES) /* a status only onCodes names: no retry */
        return s->fallback_index < s->n_fallbacks ? TG_NEXT_FALLBACK : TG_NEXT_NONE;
    if (s->tries_here < s->retries_allowed && !(s->retry_after_ms > s->retry_max_ms))
        return TG_NEXT_RETRY;
    if (s->fallback_index < s->n_fallbacks)
        return TG_NEXT_FALLBACK;
    return TG_NEXT_NONE;
}

int64_t tg_attempt_backoff_ms(int tries_here, int64_t min_ms, int64_t max_ms, double factor,
                              int64_t retry_after_ms, double r)
{
    double step = (double)min_ms * pow(factor, tries_here);
    if (step > (double)max_ms)
        step = (double)max_ms;
    int64_t ms = (int64_t)(step / 2 + step / 2 * r);
    return retry_after_ms > ms ? retry_after_ms : ms;
}

int64_t tg_attempt_parse_retry_after(const char *v)
{
    if (!v)
        return 0;
    char *end;
    double sec = strtod(v, &end);
    if (end != v && sec >= 0)
        return (int64_t)(sec * 1000);
    return INT64_MAX / 2;
}

/* ---- the attempt's memory ---- */

void tg_attempt_clear(tg_attempt_t *a)
{
    free(a->url);
    free(a->suffix_buf);
    for (size_t i = 0; i < a->n_hdrs; i++)
        free(a->hdrs[i]);
    free(a->hdrs);
    free(a->body);
    tg_sse_free(&a->f.sse_in);
    tg_buf_free(&a->f.sse_out);
    tg_sse_pass_free(&a->f.sse_pass);
    tg_translate_stream_free(a->f.ts);
    tg_buf_free(&a->f.stream_copy);
    tg_buf_free(&a->resp);
    free(a->resp_ctype);
    memset(a, 0, sizeof *a);
}

/* ---- moving on: retries and fallbacks ---- */

static void start_attempt(tg_exchange_t *x);

static tg_attempt_state_t state_of(const tg_exchange_t *x)
{
    return (tg_attempt_state_t){
        .tries_here = x->tries_here,
        .retries_allowed = x->retry_on ? x->retry_num : x->target.provider->retries,
        .fallback_index = (size_t)x->fallback_index,
        .n_fallbacks = x->n_fallbacks,
        .retry_after_ms = x->att.retry_after_ms,
        .retry_max_ms = x->retry_max_ms,
        .answer_started = x->streaming,
    };
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    start_attempt(arg);
}

/* Retry here (after a backoff) or go to the next target; the failed
 * attempt is forgotten, its error too (it is no failure of the exchange). */
static void move_on(tg_exchange_t *x, tg_next_t next)
{
    int64_t delay = 0;
    if (next == TG_NEXT_RETRY) {
        char id[37];
        tg_uuid4(id); /* a cheap source of per-thread randomness */
        delay =
            tg_attempt_backoff_ms(x->tries_here, x->retry_min_ms, x->retry_max_ms, x->retry_factor,
                                  x->att.retry_after_ms, (double)(unsigned char)id[0] / 255.0);
        x->tries_here++;
        x->retries++;
    } else {
        tg_route_clear(&x->target);
        tg_target_opts_clear(&x->target_opts);
        x->target = x->fallbacks[x->fallback_index];
        x->target_opts = x->fallback_opts[x->fallback_index];
        memset(&x->fallbacks[x->fallback_index], 0, sizeof x->fallbacks[0]);
        memset(&x->fallback_opts[x->fallback_index], 0, sizeof x->fallback_opts[0]);
        x->fallback_index++;
        x->tries_here = 0;
    }
    tg_attempt_clear(&x->att);
    tg_exchange_set_error(x, NULL);
    x->status = 0;
    if (!x->retry_timer)
        x->retry_timer = evtimer_new(x->pw->base, on_retry_timer, x);
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000),
                         .tv_usec = (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(x->retry_timer, &tv);
}

/* What this attempt says about the provider's health (balance.h). */
static void report_health(tg_exchange_t *x, unsigned fail)
{
    if (!x->target.provider)
        return;
    tg_outcome_t o = (fail & TG_FAIL_429) ? TG_OUTCOME_RATE_LIMITED
                     : fail               ? TG_OUTCOME_FAILED
                                          : TG_OUTCOME_OK;
    tg_health_report(tg_pworker_health(x->pw, x->target.provider->name), o, x->att.ttfb_us,
                     x->att.retry_after_ms, x->cfg->lb_ejection_ms, tg_mono_ms());
}

/* ---- relay callbacks ---- */

static void on_up_response(void *arg, int status, const tg_headers_t *hd)
{
    tg_exchange_t *x = arg;
    tg_attempt_t *a = &x->att;
    x->status = status;
    a->ttfb_us = tg_mono_us() - a->t0_us;
    if (status == 429)
        a->retry_after_ms = tg_attempt_parse_retry_after(tg_headers_get(hd, "retry-after"));
    unsigned fail = tg_attempt_on_codes(tg_attempt_classify(TG_UP_OK, status, false),
                                        x->target_opts.n_codes > 0,
                                        tg_target_opts_match(&x->target_opts, status));
    if (fail)
        tg_metrics_upstream_error(x->pw->metrics, x->target.provider->name,
                                  status == 429 ? "status_429" : "status_5xx");
    tg_attempt_state_t s = state_of(x);
    a->next = tg_attempt_next(fail, TG_FAIL_NEXT_UPSTREAM, &s);
    if (a->next != TG_NEXT_NONE) {
        /* Not for the client: we will retry or fall back once it ends. */
        a->discard = true;
        return;
    }
    x->ttfb_us = tg_mono_us() - x->t0_us;
    for (size_t i = 0; i < hd->n; i++) {
        size_t n = strlen(hd->names[i]);
        if (!tg_hop_by_hop(hd->names[i], n) && !tg_has_prefix_ci(hd->names[i], "helicone-"))
            tg_http_add_header(x->h, hd->names[i], hd->values[i]);
    }
    tg_http_add_header(x->h, "Helicone-Provider", x->target.provider->name);
    if (x->cache_result)
        tg_http_add_header(x->h, "Helicone-Cache", "MISS");
    tg_exchange_policy_headers(x);
    const char *ct = tg_headers_get(hd, "content-type");
    a->resp_ctype = ct ? tg_xstrdup(ct) : NULL;
    if (x->fallback_index) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", x->fallback_index);
        tg_http_add_header(x->h, "Helicone-Fallback-Index", idx);
    }
    tg_filters_start(x, ct);
}

static int on_up_data(void *arg, const char *data, size_t len)
{
    tg_exchange_t *x = arg;
    return x->att.discard ? 0 : tg_filters_body(x, data, len);
}

/* The answer passed, whole: the filters' last bytes, then the reply. */
static void answer_done(tg_exchange_t *x)
{
    if (x->status >= 400 && !x->error) /* the provider's own error, passed on */
        tg_exchange_note_provider_error(x, x->att.resp.data, x->att.resp.len, NULL);
    if (!tg_filters_end(x)) {
        tg_exchange_error(x, 502, "provider_error", "the provider's answer could not be read");
        return;
    }
    if (x->error && x->status / 100 == 2) { /* a stream that carried the provider's error */
        if (x->flight)
            tg_cache_abandon(x->pw->gw->cache, x->flight);
        x->flight = NULL;
        x->cache_store_after = false;
    }
    tg_exchange_settle(x); /* before the reply: the answer buffers still hold the body */
    if (x->streaming)
        tg_http_stream_end(x->h);
    else
        tg_http_reply(x->h, x->status, NULL, x->att.resp.data, x->att.resp.len);
    tg_exchange_finish(x);
}

static void on_up_done(void *arg, tg_upstream_result_t res, const char *err)
{
    tg_exchange_t *x = arg;
    tg_attempt_t *a = &x->att;
    a->up = NULL;
    if (res == TG_UP_OK && !a->too_large && !tg_filters_stream_complete(x)) {
        res = TG_UP_BROKEN;
        err = "the stream ended without its terminator";
    }
    unsigned fail = tg_attempt_classify(res, x->status, a->too_large);
    report_health(x, fail);
    if (a->discard) { /* decided when the failed answer began */
        move_on(x, a->next);
        return;
    }
    if (!(fail & TG_FAIL_TRANSFER)) {
        answer_done(x);
        return;
    }
    tg_failure_t f;
    tg_attempt_describe(fail, x->target.provider->name, err, TG_MAX_BUFFERED_RESPONSE, &f);
    tg_warn("%s id=%s: %s", x->route_path, x->id, f.msg);
    tg_metrics_upstream_error(x->pw->metrics, x->target.provider->name, f.kind);
    tg_attempt_state_t s = state_of(x);
    tg_next_t next = tg_attempt_next(fail, TG_FAIL_NEXT_UPSTREAM, &s);
    if (next != TG_NEXT_NONE) {
        move_on(x, next);
        return;
    }
    tg_exchange_fail(x, f.status, f.code, f.msg);
}

static void on_client_close(void *arg)
{
    tg_exchange_t *x = arg;
    if (x->att.up) {
        tg_upstream_cancel(x->att.up);
        x->att.up = NULL;
    }
    if (x->retry_timer)
        event_del(x->retry_timer);
    if (tg_http_shutdown_cut(x->h)) { /* the gateway ends it; the client is still there */
        tg_exchange_fail(x, 503, "gateway_shutting_down",
                         "the gateway is shutting down: server.shutdown_timeout passed");
        return;
    }
    x->status = 499; /* nothing more reaches the client: 499 means it left */
    tg_exchange_set_error(x, tg_xstrdup(x->streaming ? "the client closed the connection mid-stream"
                                                     : "the client closed the connection"));
    if (x->streaming)
        tg_http_stream_end(x->h);
    else
        tg_http_reply(x->h, 499, NULL, NULL, 0);
    tg_exchange_finish(x);
}

static void on_client_drain(void *arg)
{
    tg_exchange_t *x = arg;
    if (x->att.up)
        tg_upstream_resume(x->att.up);
}

static const tg_http_events_t client_events = {on_client_close, on_client_drain};

void tg_attempt_watch_client(tg_exchange_t *x)
{
    tg_http_set_events(x->h, &client_events, x);
}

/* ---- the upstream request ---- */

static void push_header(tg_attempt_t *a, const char *name, const char *value)
{
    if (a->n_hdrs == a->cap_hdrs) {
        a->cap_hdrs = a->cap_hdrs ? a->cap_hdrs * 2 : 16;
        a->hdrs = tg_xrealloc(a->hdrs, a->cap_hdrs * sizeof(char *));
    }
    size_t nl = strlen(name), vl = strlen(value);
    char *line = tg_xmalloc(nl + vl + 3);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
    a->hdrs[a->n_hdrs++] = line;
}

typedef struct {
    tg_exchange_t *x;
    bool drop_credentials;
} fwd_ctx_t;

/* Which client headers reach the provider. */
static int forward_header(const char *name, const char *value, void *arg)
{
    fwd_ctx_t *c = arg;
    static const tg_name_t dropped[] = {TG_NAME("host"), TG_NAME("expect"),
                                        TG_NAME("accept-encoding"), TG_NAME("proxy-authorization"),
                                        TG_NAME("cookie")};
    size_t n = strlen(name);
    if (tg_hop_by_hop(name, n) || tg_has_prefix_ci(name, "helicone-") ||
        tg_name_in(name, n, dropped, sizeof dropped / sizeof dropped[0]))
        return 0;
    if (c->drop_credentials && tg_is_credential_header(name))
        return 0;
    if (tg_provider_header_foreign(tg_provider_rec_of(c->x->target.provider), name))
        return 0;
    if (c->x->caller.consumed_header && !strcasecmp(name, c->x->caller.consumed_header))
        return 0;
    if (c->x->pw->gw->otlp && !strcasecmp(name, "traceparent"))
        return 0; /* replaced: the gateway's span is the provider's parent (span.c) */
    const char *k;
    json_t *v;
    json_object_foreach(c->x->target_opts.headers, k, v)
    {
        if (!strcasecmp(k, name))
            return 0; /* the target's own value (Helicone-Fallbacks "headers") replaces it */
    }
    push_header(&c->x->att, name, value);
    return 0;
}

/* The request body with its top-level "model" (at model_span) set to
 * `model` (when not NULL) and `"stream_options":{"include_usage":true}`
 * added (when asked; the body has no stream_options then). Everything else
 * stays as sent. */
static char *edit_body(const char *body, size_t len, tg_json_span_t model_span, const char *model,
                       bool add_usage, size_t *out_len)
{
    tg_buf_t out = {0}, ins = {0};
    size_t a = model_span.start, b = model_span.end;
    bool has_model = model && model_span.found;
    if (model && !has_model) {
        tg_buf_puts(&ins, "\"model\":\"");
        tg_buf_json_escape(&ins, model, strlen(model));
        tg_buf_puts(&ins, "\",");
    }
    if (add_usage)
        tg_buf_puts(&ins, "\"stream_options\":{\"include_usage\":true},");
    size_t open = tg_json_object_start(body, len);
    size_t rest = open;
    while (rest < len &&
           (body[rest] == ' ' || body[rest] == '\n' || body[rest] == '\t' || body[rest] == '\r'))
        rest++;
    if (ins.len && rest < len && body[rest] == '}')
        ins.len--; /* empty object: no comma after what we insert */

    tg_buf_append(&out, body, open);
    if (ins.len)
        tg_buf_append(&out, ins.data, ins.len);
    if (has_model) {
        tg_buf_append(&out, body + open, a - open);
        tg_buf_puts(&out, "\"");
        tg_buf_json_escape(&out, model, strlen(model));
        tg_buf_puts(&out, "\"");
        tg_buf_append(&out, body + b, len - b);
    } else {
        tg_buf_append(&out, body + open, len - open);
    }
    tg_buf_free(&ins);
    *out_len = out.len;
    return out.data;
}

/* The body this attempt's provider gets (LLM routes). The client's bytes go
 * through unchanged unless something must change, and are then edited in
 * place; only a client's own stream_options object that needs a new member,
 * or a model key spelled with escapes, makes us re-encode the document. */
static void build_llm_body(tg_exchange_t *x)
{
    tg_attempt_t *at = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    if (x->route == TG_ROUTE_GEMINI) { /* the model is in the URL; the body passes as is */
        at->body_ptr = x->in_body;
        at->body_len = x->in_len;
        return;
    }
    /* SPEC §7: usage for every stream. Ask for the usage chunk; hide it from
     * a client that did not ask for it (filters.c, hide usage). */
    bool add_usage = x->in_stream &&
                     (x->route == TG_ROUTE_CHAT || x->route == TG_ROUTE_COMPLETIONS) &&
                     tg_provider_accepts_stream_options(p) && !x->in_client_usage;
    at->f.hide_usage = add_usage;
    const char *model = x->model_requested;
    bool new_model = !model || strcmp(model, x->target.model) != 0;
    bool odd_key = model && new_model && !x->in_keys[TG_IN_MODEL].found;
    if ((add_usage && x->in_has_stream_options) || odd_key) {
        json_t *root = json_deep_copy(tg_exchange_in_root(x));
        if (add_usage)
            json_object_set_new(json_object_get(root, "stream_options"), "include_usage",
                                json_true());
        json_object_set_new(root, "model", json_string(x->target.model));
        at->body = json_dumps(root, JSON_COMPACT);
        at->body_len = strlen(at->body);
        json_decref(root);
    } else if (new_model || add_usage) {
        at->body = edit_body(x->in_body, x->in_len, x->in_keys[TG_IN_MODEL],
                             new_model ? x->target.model : NULL, add_usage, &at->body_len);
    }
    at->body_ptr = at->body ? at->body : x->in_body;
    if (!at->body)
        at->body_len = x->in_len;
}

static int clamp_field(json_t *obj, const char *name, int64_t limit)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v) || json_integer_value(v) <= limit)
        return 0;
    json_object_set_new(obj, name, json_integer(limit));
    return 1;
}

int tg_attempt_clamp_output(json_t *body, int64_t limit)
{
    if (limit <= 0 || !json_is_object(body))
        return 0;
    int n = clamp_field(body, "max_tokens", limit) +
            clamp_field(body, "max_completion_tokens", limit) +
            clamp_field(body, "max_output_tokens", limit);
    json_t *gc = json_object_get(body, "generationConfig");
    if (json_is_object(gc))
        n += clamp_field(gc, "maxOutputTokens", limit);
    return n;
}

/* URL and body for another dialect: the translated request. False when
 * the exchange was answered (400). */
static bool build_translated(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    char err[512];
    tg_translate_ropts_t ro = {.stream_usage = tg_provider_accepts_stream_options(p)};
    tg_translate_req_t rq;
    memset(&rq, 0, sizeof rq);
    if (tg_translate_request(a->tr, tg_exchange_in_root(x), x->target.model, &ro, &rq, err,
                             sizeof err) < 0) {
        tg_translate_req_free(&rq);
        tg_exchange_error(x, 400, "untranslatable_request", err);
        return false;
    }
    /* outside the translators: the model's own output limit, from the prices */
    int64_t limit = tg_cost_max_output(x->cfg, p->name, x->target.model);
    if (tg_attempt_clamp_output(rq.body, limit))
        tg_debug("max output tokens lowered to %lld, the limit of %s", (long long)limit,
                 x->target.model);
    a->body = json_dumps(rq.body, TG_TRANSLATE_DUMP_FLAGS);
    a->body_ptr = a->body;
    a->body_len = strlen(a->body);
    a->tr_include_usage = rq.include_usage;
    a->tr_prompt_estimate = rq.prompt_estimate;
    a->url = tg_provider_url_for(p, &(tg_provider_url_req_t){.model = x->target.model,
                                                             .suffix = rq.path,
                                                             .query = rq.query,
                                                             .client_query = tg_http_query(x->h)});
    tg_translate_req_free(&rq);
    return true;
}

/* URL and body for the provider's own dialect (and raw pass-through). */
static void build_native(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    if (x->route == TG_ROUTE_PASSTHROUGH) {
        a->body_ptr = x->in_body;
        a->body_len = x->in_len;
    } else {
        build_llm_body(x);
    }
    const char *suffix = x->suffix;
    if (x->route == TG_ROUTE_GEMINI) /* this attempt's model goes in the path */
        suffix = a->suffix_buf = tg_gemini_model_path(x->target.model, x->gemini_action);
    /* The record builds the address (Azure's deployments) and scrubs a
     * credential the client put in the query when a key is configured. */
    const char *q = tg_http_query(x->h);
    a->url =
        tg_provider_url_for(p, &(tg_provider_url_req_t){.model = x->target.model,
                                                        .suffix = suffix,
                                                        .query = q,
                                                        .client_query = q,
                                                        .raw = x->route == TG_ROUTE_PASSTHROUGH});
}

/* SPEC §5: a configured key replaces whatever credential the client sent;
 * without one, the client's own credential goes through unchanged — in the
 * provider's header when the request is translated (an OpenAI SDK's Bearer
 * key becomes x-api-key for Anthropic, x-goog-api-key for Gemini). Which
 * headers those are, and the type's default headers, are in its record. */
static void build_headers(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    const tg_provider_rec_t *r = tg_provider_rec_of(p);
    const char *key =
        p->api_key ? p->api_key
        : a->tr    ? tg_provider_client_key(tg_exchange_header, x->h, x->caller.consumed_header)
                   : NULL;
    fwd_ctx_t c = {.x = x, .drop_credentials = key != NULL};
    tg_http_headers_foreach(x->h, forward_header, &c);
    char tp[56];
    if (tg_exchange_span_traceparent(x, tp))
        push_header(a, "traceparent", tp);
    const char *hn;
    json_t *hv;
    json_object_foreach(x->target_opts.headers, hn, hv) /* credentials were left out */
    {
        push_header(a, hn, json_string_value(hv));
    }
    if (key && r->auth_header) {
        char *v = tg_provider_auth_value(r, key);
        push_header(a, r->auth_header, v);
        free(v);
    }
    for (size_t i = 0; i < p->n_headers; i++)
        push_header(a, p->headers[i].name, p->headers[i].value);
    for (const tg_provider_header_t *d = r->default_headers; d && d->name; d++)
        if (!tg_http_header(x->h, d->name))
            push_header(a, d->name, d->value);
}

/* Whether the client asked for base64 vectors (embeddings). */
static bool wants_base64(tg_exchange_t *x)
{
    json_t *f = json_object_get(tg_exchange_in_root(x), "encoding_format");
    return json_is_string(f) && !strcmp(json_string_value(f), "base64");
}

/* The translation this attempt needs (a->tr; NULL: none). Chat-shaped
 * routes translate by dialect; OpenAI's embeddings and completions are
 * other shapes: embeddings have their own translation (Gemini), completions
 * none, and elsewhere the route is a 400 naming it. False when answered. */
static bool choose_translator(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    a->tr = NULL;
    if (x->route == TG_ROUTE_PASSTHROUGH)
        return true;
    bool other_shape = x->route == TG_ROUTE_EMBEDDINGS || x->route == TG_ROUTE_COMPLETIONS;
    if (!other_shape || tg_wire_of(p->type) == TG_WIRE_OPENAI) {
        a->tr = tg_translate_for(x->wire, p->type);
        return true;
    }
    if (x->route == TG_ROUTE_EMBEDDINGS &&
        (a->tr = tg_translate_embeddings_for(p->type, wants_base64(x))))
        return true;
    char msg[400];
    snprintf(msg, sizeof msg, "%s goes to OpenAI-type providers%s; provider '%s' is of type %s",
             x->route_path, x->route == TG_ROUTE_EMBEDDINGS ? " and Gemini-type ones" : "", p->name,
             tg_provider_type_name(p->type));
    tg_exchange_error(x, 400, "unsupported_route", msg);
    return false;
}

/* One attempt at the current target: URL, body, headers, then the call. */
static void start_attempt(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    const tg_provider_cfg_t *p = x->target.provider;
    if (!tg_spend_retarget(x)) /* a fallback reserves for the target that serves */
        return;
    if (!choose_translator(x))
        return;
    if (a->tr) {
        if (!build_translated(x))
            return;
    } else {
        build_native(x);
    }
    if (!a->url) { /* the URL builders refuse a path that leaves base_url */
        char msg[400];
        snprintf(msg, sizeof msg,
                 "the path, model or query of this request would not stay under the base path "
                 "of provider '%s'",
                 p->name);
        tg_exchange_error(x, 400, "invalid_path", msg);
        return;
    }
    build_headers(x);
    tg_upstream_req_t req = {
        .method = tg_http_method(x->h),
        .url = a->url,
        .headers = (const char *const *)a->hdrs,
        .n_headers = a->n_hdrs,
        .body = a->body_ptr,
        .body_len = a->body_len,
        .connect_timeout_ms = p->timeout_ms < 10000 ? p->timeout_ms : 10000,
        .idle_timeout_ms = p->timeout_ms,
    };
    static const tg_upstream_cbs_t cbs = {on_up_response, on_up_data, on_up_done};
    a->t0_us = tg_mono_us();
    a->ttfb_us = 0;
    a->up = tg_upstream_start(x->pw->relay, &req, &cbs, x);
}

/* Retry settings from the Helicone-Retry-* headers (SPEC §6). */
static void read_retry_headers(tg_exchange_t *x)
{
    const char *v = tg_http_header(x->h, "Helicone-Retry-Enabled");
    x->retry_on = v && !strcasecmp(v, "true");
    x->retry_num = 5;
    x->retry_factor = 2;
    x->retry_min_ms = 1000;
    x->retry_max_ms = 10000;
    if (!x->retry_on)
        return;
    if ((v = tg_http_header(x->h, "Helicone-Retry-Num")) && atoi(v) >= 0)
        x->retry_num = atoi(v) > 20 ? 20 : atoi(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Factor")) && atof(v) >= 1)
        x->retry_factor = atof(v) > 10 ? 10 : atof(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Min-Timeout")) && atoll(v) >= 0)
        x->retry_min_ms = atoll(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Max-Timeout")) && atoll(v) > 0)
        x->retry_max_ms = atoll(v);
    if (x->retry_min_ms > x->retry_max_ms)
        x->retry_min_ms = x->retry_max_ms;
}

void tg_attempt_begin(tg_exchange_t *x)
{
    tg_attempt_watch_client(x);
    read_retry_headers(x);
    start_attempt(x);
}

/* ---- the targets ---- */

bool tg_attempt_reachable(const tg_exchange_t *x, const tg_provider_cfg_t *p)
{
    if (tg_provider_rec_of(p)->local)
        return false; /* answered locally, never as a fallback */
    return tg_translate_native(x->wire, p->type) || tg_translate_for(x->wire, p->type) != NULL;
}

/* Helicone-Fallbacks (router/fallbacks.h). tollgate's form adds targets
 * after the current one (those that cannot serve the route are skipped);
 * Helicone's own form is the whole chain and replaces the target (and a
 * model list's entries), each target with its onCodes and headers. */
static bool fallbacks_from_header(tg_exchange_t *x, const char *hv)
{
    char err[1024];
    tg_fallback_t fb[TG_FALLBACKS_MAX];
    size_t n;
    bool replaces;
    int rc = tg_fallbacks_parse(x->cfg, x->pw->gw->health, hv, &x->target, tg_exchange_header, x->h,
                                fb, TG_FALLBACKS_MAX, &n, &replaces, err, sizeof err);
    if (rc < 0) {
        tg_exchange_error(x, rc == -1 ? 404 : 400,
                          rc == -1 ? "model_not_found" : "invalid_fallbacks", err);
        return false;
    }
    size_t i = 0;
    if (replaces) {
        for (size_t k = 0; k < n; k++)
            if (!tg_attempt_reachable(x, fb[k].route.provider)) {
                snprintf(err, sizeof err,
                         "Helicone-Fallbacks entry %zu: provider '%s' (type %s) cannot serve %s "
                         "requests",
                         k + 1, fb[k].route.provider->name,
                         tg_provider_type_name(fb[k].route.provider->type), x->route_path);
                for (size_t j = 0; j < n; j++)
                    tg_fallback_clear(&fb[j]);
                tg_exchange_error(x, 400, "unsupported_provider", err);
                return false;
            }
        for (size_t k = 0; k < x->n_fallbacks; k++) {
            tg_route_clear(&x->fallbacks[k]);
            tg_target_opts_clear(&x->fallback_opts[k]);
        }
        x->n_fallbacks = 0;
        tg_route_clear(&x->target);
        x->target = fb[0].route;
        x->target_opts = fb[0].opts;
        i = 1;
    }
    for (; i < n; i++) {
        if (x->n_fallbacks == TG_MAX_FALLBACKS || !tg_attempt_reachable(x, fb[i].route.provider)) {
            tg_fallback_clear(&fb[i]);
            continue;
        }
        x->fallback_opts[x->n_fallbacks] = fb[i].opts;
        x->fallbacks[x->n_fallbacks++] = fb[i].route;
    }
    return true;
}

bool tg_attempt_plan_fallbacks(tg_exchange_t *x)
{
    if (x->fallbacks_planned)
        return true;
    x->fallbacks_planned = true;
    const char *hv = tg_http_header(x->h, "Helicone-Fallbacks");
    if (hv) /* after a model list's entries, if any */
        return fallbacks_from_header(x, hv);
    if (x->model_list) /* the request named its own chain */
        return true;
    /* routing.fallback_chain: those after the chosen provider, or all of it,
     * each with its default model */
    const tg_config_t *cfg = x->cfg;
    size_t from = 0;
    for (size_t i = 0; i < cfg->n_fallback_chain; i++)
        if (!strcasecmp(cfg->fallback_chain[i], x->target.provider->name))
            from = i + 1;
    for (size_t i = from; i < cfg->n_fallback_chain && x->n_fallbacks < TG_MAX_FALLBACKS; i++) {
        const tg_provider_cfg_t *p =
            tg_config_provider(cfg, cfg->fallback_chain[i], strlen(cfg->fallback_chain[i]));
        if (!p || p == x->target.provider || !tg_attempt_reachable(x, p))
            continue;
        const char *m = p->default_model ? p->default_model : x->target.model;
        x->fallbacks[x->n_fallbacks++] =
            (tg_route_t){.provider = p, .model = tg_xstrdup(m), .how = "fallback"};
    }
    return true;
}
