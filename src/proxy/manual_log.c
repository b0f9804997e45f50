/*
 * manual_log.c — Helicone's manual-logging routes (manual_log.h): a call
 * made elsewhere becomes a record. The document is checked whole before
 * anything is recorded; a document of another shape is a 400 that says
 * which member is wrong.
 *
 * Thread: tg_manual_log_read is pure (any thread); the stages run on the
 * exchange's worker thread.
 */
#include "proxy/manual_log.h"

#include "core/sse.h"
#include "cost/cost.h"
#include "providers/provider.h"
#include "proxy/exchange.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- reading the document (pure) ---- */

static const tg_dialect_t *dialect_named(const char *name)
{
    if (!strcasecmp(name, "anthropic"))
        return &tg_dialect_anthropic;
    if (!strcasecmp(name, "gemini") || !strcasecmp(name, "google"))
        return &tg_dialect_gemini;
    return &tg_dialect_openai;
}

static bool optional(json_t *v)
{
    return !v || json_is_null(v);
}

/* {"seconds": N, "milliseconds": M} → Unix ms; false when of another shape. */
static bool read_time(json_t *t, int64_t *ms)
{
    json_t *s = json_object_get(t, "seconds"), *m = json_object_get(t, "milliseconds");
    if (!json_is_object(t) || !json_is_integer(s) || (m && !json_is_integer(m)))
        return false;
    json_int_t sec = json_integer_value(s), msec = m ? json_integer_value(m) : 0;
    if (sec < 0 || sec > 100000000000LL || msec < 0 || msec > 999)
        return false;
    *ms = (int64_t)sec * 1000 + (int64_t)msec;
    return true;
}

typedef struct {
    const tg_dialect_t *d;
    tg_usage_t *usage;
} usage_ctx_t;

static int event_usage(void *arg, const char *event, const char *data, size_t len)
{
    usage_ctx_t *c = arg;
    c->d->event_usage(data, len, c->usage);
    return 0;
}

/* Usage of a streamed answer kept as text: its events, else (Gemini's
 * JSON array, or a plain body sent as text) the whole text. */
static void text_usage(const tg_dialect_t *d, const char *text, size_t len, tg_usage_t *usage)
{
    if (len >= 5 && (!strncmp(text, "data:", 5) || !strncmp(text, "event:", 6) ||
                     memmem(text, len, "\ndata:", 6))) {
        usage_ctx_t ctx = {d, usage};
        tg_sse_parser_t p = {.max_event = 0};
        tg_sse_feed(&p, text, len, event_usage, &ctx);
        tg_sse_feed(&p, "\n\n", 2, event_usage, &ctx); /* a last event without its blank line */
        tg_sse_free(&p);
        return;
    }
    d->answer_usage(text, len, usage);
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

int tg_manual_log_read(json_t *root, const char *dialect, tg_manual_log_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->usage = (tg_usage_t)TG_USAGE_UNKNOWN;
    out->ttft_ms = -1;
    if (!json_is_object(root))
        BAD("the log must be a JSON object with providerRequest, providerResponse and timing");
    json_t *rq = json_object_get(root, "providerRequest");
    json_t *rs = json_object_get(root, "providerResponse");
    json_t *tm = json_object_get(root, "timing");
    json_t *pv = json_object_get(root, "provider");
    if (!json_is_object(rq))
        BAD("providerRequest must be an object");
    if (!json_is_object(rs))
        BAD("providerResponse must be an object");
    if (!json_is_object(tm))
        BAD("timing must be an object");
    if (!optional(pv) && !json_is_string(pv))
        BAD("provider must be a string");

    json_t *url = json_object_get(rq, "url"), *body = json_object_get(rq, "json"),
           *meta = json_object_get(rq, "meta");
    if (!optional(url) && !json_is_string(url))
        BAD("providerRequest.url must be a string");
    if (!json_is_object(body))
        BAD("providerRequest.json must be an object: the request as sent to the provider");
    if (!optional(meta)) {
        if (!json_is_object(meta))
            BAD("providerRequest.meta must be an object of strings");
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v)
        {
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                BAD("providerRequest.meta.%.100s must be a string", k);
        }
        out->meta = meta;
    }
    out->request = body;

    json_t *st = json_object_get(rs, "status"), *rj = json_object_get(rs, "json"),
           *tb = json_object_get(rs, "textBody"), *hd = json_object_get(rs, "headers");
    if (!optional(st) &&
        (!json_is_integer(st) || json_integer_value(st) < 100 || json_integer_value(st) > 599))
        BAD("providerResponse.status must be an HTTP status (100 to 599)");
    out->status = optional(st) ? 200 : (int)json_integer_value(st);
    if (!optional(hd) && !json_is_object(hd))
        BAD("providerResponse.headers must be an object");
    if (!optional(rj) && !json_is_object(rj) && !json_is_array(rj))
        BAD("providerResponse.json must be an object");
    if (!optional(tb) && !json_is_string(tb))
        BAD("providerResponse.textBody must be a string");
    if (optional(tb) && optional(rj))
        BAD("providerResponse needs json or textBody: the answer");
    if (!optional(tb)) {
        out->text = json_string_value(tb);
        out->text_len = json_string_length(tb);
    }
    if (!optional(rj) && (json_is_array(rj) || json_object_size(rj)))
        out->response = rj;

    int64_t end;
    json_t *ttft = json_object_get(tm, "timeToFirstToken");
    if (!read_time(json_object_get(tm, "startTime"), &out->start_ms))
        BAD("timing.startTime must be {\"seconds\": N, \"milliseconds\": 0..999}");
    if (!read_time(json_object_get(tm, "endTime"), &end))
        BAD("timing.endTime must be {\"seconds\": N, \"milliseconds\": 0..999}");
    if (end < out->start_ms)
        BAD("timing.endTime is before timing.startTime");
    if (!optional(ttft) &&
        (!json_is_number(ttft) || json_number_value(ttft) < 0 || json_number_value(ttft) > 1e12))
        BAD("timing.timeToFirstToken must be a number of milliseconds");
    out->latency_ms = end - out->start_ms;
    if (!optional(ttft))
        out->ttft_ms = (int64_t)json_number_value(ttft);

    json_t *m = json_object_get(body, "model");
    out->model_requested = json_is_string(m) ? json_string_value(m) : NULL;
    json_t *served = out->response ? json_object_get(out->response, "model") : NULL;
    out->model = json_is_string(served) ? json_string_value(served) : out->model_requested;
    out->provider = json_is_string(pv) ? json_string_value(pv) : NULL;

    const tg_dialect_t *d = dialect_named(out->provider ? out->provider : dialect);
    if (out->response) {
        char *doc = json_dumps(out->response, JSON_COMPACT);
        d->answer_usage(doc, strlen(doc), &out->usage);
        free(doc);
    } else if (out->text) {
        text_usage(d, out->text, out->text_len, &out->usage);
    }
    return 0;
}

/* ---- the stages ---- */

/* The provider a record names: the document's own (lower case), else the
 * route's. */
static char *provider_name(const tg_manual_log_t *l, const char *dialect)
{
    if (!l->provider || !*l->provider)
        return tg_xstrdup(dialect);
    if (!strcasecmp(l->provider, "google"))
        return tg_xstrdup("gemini");
    char *p = tg_xstrndup(l->provider, strnlen(l->provider, 64));
    for (char *c = p; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    return p;
}

static void record_json(tg_exchange_t *x, bool response, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    if (response)
        tg_buf_puts(&x->log_body, s);
    else if (tg_exchange_logs_bodies(x) && !x->omit_request)
        tg_record_set_body(x->rec, false, s, strlen(s), x->cfg->max_body_bytes);
    free(s);
}

static int request_header(const char *name, const char *value, void *arg)
{
    tg_exchange_record_header(arg, name, value);
    return 0;
}

static tg_stage_result_t manual_log(void *arg)
{
    tg_exchange_t *x = arg;
    if (!tg_exchange_post_only(x))
        return TG_STAGE_ANSWERED;
    x->in_body = tg_http_body(x->h, &x->in_len);
    char err[300];
    size_t off;
    const char *why;
    if (!x->in_body || !tg_json_valid(x->in_body, x->in_len, &off, &why)) {
        snprintf(err, sizeof err, "the log is not valid JSON%s%s", x->in_body ? ": " : "",
                 x->in_body ? why : "");
        tg_exchange_error(x, 400, "invalid_log", err);
        return TG_STAGE_ANSWERED;
    }
    tg_manual_log_t l;
    json_t *root = tg_exchange_in_root(x);
    if (tg_manual_log_read(root, x->log_dialect, &l, err, sizeof err) < 0) {
        tg_exchange_error(x, 400, "invalid_log", err);
        return TG_STAGE_ANSWERED;
    }
    /* meta first, then the logging request's own headers, which win */
    const char *k;
    json_t *v;
    json_object_foreach(l.meta, k, v)
    {
        tg_exchange_record_header(x, k, json_string_value(v));
    }
    tg_http_headers_foreach(x->h, request_header, x);

    x->log_provider = provider_name(&l, x->log_dialect);
    x->log_latency_ms = l.latency_ms;
    if (x->rec)
        x->rec->created_at_ms = l.start_ms;
    x->status = l.status;
    x->usage = l.usage;
    x->ttfb_us = l.ttft_ms >= 0 ? l.ttft_ms * 1000 : 0;
    x->model_requested = l.model_requested ? tg_xstrdup(l.model_requested) : NULL;
    x->target.model = l.model ? tg_xstrdup(l.model) : NULL;
    if (x->cfg->cost_enabled && l.status / 100 == 2 && l.model) {
        const char *mo = tg_http_header(x->h, "Helicone-Model-Override");
        x->cost_nusd =
            tg_cost_for_provider(x->cfg, x->log_provider, mo && *mo ? mo : l.model, &x->usage);
    }
    record_json(x, false, l.request);
    if (l.response)
        record_json(x, true, l.response);
    else
        tg_buf_append(&x->log_body, l.text, l.text_len);
    if (l.status >= 400)
        tg_exchange_note_provider_error(x, x->log_body.data, x->log_body.len, NULL);
    if (!x->cfg->log_bodies || x->omit_response)
        tg_buf_reset(&x->log_body);

    char reply[128];
    int n = snprintf(reply, sizeof reply, "{\"id\":\"%s\"}", x->id);
    tg_http_reply(x->h, 200, "application/json", reply, (size_t)n);
    tg_exchange_finish(x);
    return TG_STAGE_ANSWERED;
}

static const tg_stage_t manual_log_stages[] = {{"manual_log", manual_log}, {NULL, NULL}};

const tg_stage_t *tg_stages_manual_log(void)
{
    return manual_log_stages;
}
