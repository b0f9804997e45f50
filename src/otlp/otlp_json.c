/*
 * otlp_json.c — the pure parts of the OTLP export (otlp.h): the OTLP/HTTP
 * JSON encoding of spans, the W3C traceparent parser, the provider's
 * answer id and model, the provider names of the GenAI conventions.
 *
 * The encoding is protobuf's JSON mapping as OTLP specifies it: trace and
 * span ids as lower-case hex (not base64), 64-bit integers (times,
 * intValue) as decimal strings, enums (kind, status code) as numbers,
 * lowerCamelCase field names. Every string goes through the record's
 * UTF-8-safe writer (tg_record_json_str).
 *
 * Thread: any (no state).
 */
#include "otlp/otlp.h"

#include "core/jsonscan.h"
#include "cost/cost.h"
#include "store/record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- traceparent (W3C Trace Context, level 1) ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is not allowed either */
}

/* n bytes from 2n lower-case hex digits; -1 for anything else. */
static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int tg_otlp_traceparent_parse(const char *v, tg_otlp_ctx_t *ctx)
{
    if (!v)
        return -1;
    size_t len = strnlen(v, 512);
    uint8_t version, flags, trace[16], parent[8];
    if (len < 55 || hex_bytes(v, &version, 1) < 0 || version == 0xff || v[2] != '-' ||
        v[35] != '-' || v[52] != '-' || hex_bytes(v + 3, trace, 16) < 0 ||
        hex_bytes(v + 36, parent, 8) < 0 || hex_bytes(v + 53, &flags, 1) < 0)
        return -1;
    /* version 00 is exactly this long; a later one may add fields after '-' */
    if (len != 55 && (version == 0 || v[55] != '-'))
        return -1;
    if (all_zero(trace, 16) || all_zero(parent, 8))
        return -1;
    memcpy(ctx->trace_id, trace, 16);
    memcpy(ctx->parent_id, parent, 8);
    ctx->has_parent = true;
    ctx->flags = flags;
    return 0;
}

/* n bytes as 2n lower-case hex digits at out; returns the end. */
static char *hex_at(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = hex[p[i] >> 4];
        *out++ = hex[p[i] & 15];
    }
    return out;
}

void tg_otlp_traceparent_format(const tg_otlp_ctx_t *ctx, const uint8_t span_id[8], char out[56])
{
    char *p = out;
    *p++ = '0';
    *p++ = '0';
    *p++ = '-';
    p = hex_at(p, ctx->trace_id, 16);
    *p++ = '-';
    p = hex_at(p, span_id, 8);
    *p++ = '-';
    p = hex_at(p, &ctx->flags, 1);
    *p = 0;
}

/* ---- the provider's id and model ---- */

/* The value at sp as a plain string into out, unless out is already set. */
static void take_plain(const char *json, tg_json_span_t sp, char *out, size_t outlen)
{
    if (out[0] || !sp.found)
        return;
    if (tg_json_span_plain_string(json, sp, out, outlen) != 1)
        out[0] = 0;
}

/* One pass over the object for the four names and the two inner objects;
 * `depth` 0 looks into "message" and "response" once. */
static void ids_in(const char *json, size_t len, char *id, size_t id_len, char *model,
                   size_t model_len, int depth)
{
    static const char *const keys[] = {"id",           "responseId", "model",
                                       "modelVersion", "message",    "response"};
    tg_json_span_t v[6];
    if (!tg_json_members(json, len, keys, depth ? 4 : 6, v))
        return;
    take_plain(json, v[0], id, id_len);
    take_plain(json, v[1], id, id_len);
    take_plain(json, v[2], model, model_len);
    take_plain(json, v[3], model, model_len);
    for (int i = 4; !depth && i < 6 && (!id[0] || !model[0]); i++)
        if (v[i].found && json[v[i].start] == '{')
            ids_in(json + v[i].start, v[i].end - v[i].start, id, id_len, model, model_len, 1);
}

bool tg_otlp_response_ids(const char *json, size_t len, char *id, size_t id_len, char *model,
                          size_t model_len)
{
    if (json && len && id_len && model_len)
        ids_in(json, len, id, id_len, model, model_len, 0);
    return id[0] && model[0];
}

const char *tg_otlp_provider_name(const char *rec_name)
{
    static const char *const names[][2] = {
        {"gemini", "gcp.gemini"}, {"azure", "azure.ai.openai"}, {"mistral", "mistral_ai"},
        {"xai", "x_ai"},          {"bedrock", "aws.bedrock"},   {"vertex", "gcp.vertex_ai"},
    };
    if (!rec_name)
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(rec_name, names[i][0]))
            return names[i][1];
    return rec_name;
}

char *tg_otlp_traces_url(const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/')
        n--;
    static const char suffix[] = "/v1/traces";
    size_t s = sizeof suffix - 1;
    bool has = n >= s && !memcmp(endpoint + n - s, suffix, s);
    char *out = tg_xmalloc(n + s + 1);
    memcpy(out, endpoint, n);
    memcpy(out + n, has ? "" : suffix, has ? 1 : s + 1);
    return out;
}

/* ---- the encoding ---- */

static void put_hex(tg_buf_t *out, const uint8_t *p, size_t n)
{
    char s[64];
    tg_buf_append(out, s, (size_t)(hex_at(s, p, n) - s));
}

static void put_str(tg_buf_t *out, const char *s)
{
    tg_record_json_str(out, s, strlen(s));
}

/* The attribute list's writer: a comma before every attribute but the first. */
typedef struct {
    tg_buf_t *out;
    bool any;
} attrs_t;

/* A key: the constant ones as they are (plain ASCII, no quotes), a
 * property's name (the client's) through the escaping writer. */
static void attr_key(attrs_t *a, const char *prefix, const char *key)
{
    tg_buf_puts(a->out, a->any ? ",{\"key\":" : "{\"key\":");
    a->any = true;
    if (prefix) {
        tg_buf_t k = {0};
        tg_buf_puts(&k, prefix);
        tg_buf_puts(&k, key);
        put_str(a->out, k.data);
        tg_buf_free(&k);
    } else {
        tg_buf_append(a->out, "\"", 1);
        tg_buf_puts(a->out, key);
        tg_buf_append(a->out, "\"", 1);
    }
    tg_buf_puts(a->out, ",\"value\":{");
}

/* A non-negative integer in decimal, without printf (the exporter writes
 * a dozen per span). */
static void put_uint(tg_buf_t *out, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    tg_buf_append(out, d + i, sizeof d - i);
}

static void attr_str(attrs_t *a, const char *key, const char *v)
{
    if (!v || !*v)
        return;
    attr_key(a, NULL, key);
    tg_buf_puts(a->out, "\"stringValue\":");
    put_str(a->out, v);
    tg_buf_puts(a->out, "}}");
}

static void attr_int(attrs_t *a, const char *key, long long v)
{
    if (v < 0)
        return;
    attr_key(a, NULL, key);
    tg_buf_puts(a->out, "\"intValue\":\"");
    put_uint(a->out, (unsigned long long)v);
    tg_buf_puts(a->out, "\"}}");
}

static void attr_double(attrs_t *a, const char *key, double v)
{
    if (!isfinite(v))
        return;
    attr_key(a, NULL, key);
    tg_buf_printf(a->out, "\"doubleValue\":%.15g}}", v);
}

static void attr_bool(attrs_t *a, const char *key, bool v)
{
    attr_key(a, NULL, key);
    tg_buf_puts(a->out, v ? "\"boolValue\":true}}" : "\"boolValue\":false}}");
}

static void encode_span(const tg_otlp_span_t *s, tg_buf_t *out)
{
    tg_buf_puts(out, "{\"traceId\":\"");
    put_hex(out, s->ctx.trace_id, 16);
    tg_buf_puts(out, "\",\"spanId\":\"");
    put_hex(out, s->span_id, 8);
    tg_buf_puts(out, "\"");
    if (s->ctx.has_parent) {
        tg_buf_puts(out, ",\"parentSpanId\":\"");
        put_hex(out, s->ctx.parent_id, 8);
        tg_buf_puts(out, "\"");
    }
    /* {gen_ai.operation.name} {gen_ai.request.model} */
    const char *op = s->operation ? s->operation : "chat";
    tg_buf_t name = {0};
    tg_buf_puts(&name, op);
    if (s->request_model && *s->request_model) {
        tg_buf_puts(&name, " ");
        tg_buf_puts(&name, s->request_model);
    }
    tg_buf_puts(out, ",\"name\":");
    put_str(out, name.data);
    tg_buf_free(&name);
    tg_buf_puts(out, ",\"kind\":3,\"startTimeUnixNano\":\"");
    put_uint(out, (unsigned long long)(s->start_ns > 0 ? s->start_ns : 0));
    tg_buf_puts(out, "\",\"endTimeUnixNano\":\"");
    put_uint(out, (unsigned long long)(s->end_ns > 0 ? s->end_ns : 0));
    tg_buf_puts(out, "\",\"attributes\":[");
    attrs_t a = {out, false};
    attr_str(&a, "gen_ai.operation.name", op);
    attr_str(&a, "gen_ai.provider.name", s->provider_name);
    attr_str(&a, "gen_ai.system", s->provider_name); /* the conventions' name before 1.37 */
    attr_str(&a, "gen_ai.request.model", s->request_model);
    attr_str(&a, "gen_ai.response.model", s->response_model);
    attr_str(&a, "gen_ai.response.id", s->response_id);
    attr_int(&a, "gen_ai.request.max_tokens", s->max_tokens);
    attr_double(&a, "gen_ai.request.temperature", s->temperature);
    attr_int(&a, "gen_ai.usage.input_tokens", s->input_tokens);
    attr_int(&a, "gen_ai.usage.output_tokens", s->output_tokens);
    attr_str(&a, "server.address", s->server_address);
    if (s->server_port > 0)
        attr_int(&a, "server.port", s->server_port);
    if (s->status > 0)
        attr_int(&a, "http.response.status_code", s->status);
    if (s->status >= 400) { /* the status, as the HTTP conventions do */
        attr_key(&a, NULL, "error.type");
        tg_buf_puts(out, "\"stringValue\":\"");
        put_uint(out, (unsigned long long)s->status);
        tg_buf_puts(out, "\"}}");
    }
    attr_str(&a, "tollgate.request_id", s->request_id);
    attr_str(&a, "tollgate.provider", s->provider);
    attr_str(&a, "tollgate.model_requested", s->model_requested);
    attr_str(&a, "tollgate.route", s->route);
    attr_bool(&a, "tollgate.stream", s->stream);
    attr_str(&a, "tollgate.cache", s->cache);
    if (s->cost_nusd >= 0) {
        attr_key(&a, NULL, "tollgate.cost_usd");
        char cost[32];
        tg_cost_format(s->cost_nusd, cost);
        tg_buf_printf(out, "\"doubleValue\":%s}}", cost);
    }
    attr_int(&a, "tollgate.latency_ms", s->latency_ms);
    attr_int(&a, "tollgate.ttft_ms", s->ttft_ms);
    attr_int(&a, "tollgate.retries", s->retries);
    attr_int(&a, "tollgate.fallback_index", s->fallback_index);
    attr_str(&a, "tollgate.user_id", s->user_id);
    attr_str(&a, "tollgate.session_id", s->session_id);
    attr_str(&a, "tollgate.key_name", s->key_name);
    for (size_t i = 0; i < s->n_props; i++) {
        attr_key(&a, "tollgate.property.", s->props[i].name);
        tg_buf_puts(out, "\"stringValue\":");
        put_str(out, s->props[i].value ? s->props[i].value : "");
        tg_buf_puts(out, "}}");
    }
    tg_buf_puts(out, "]");
    if (s->status >= 400 || (s->error && *s->error)) {
        tg_buf_puts(out, ",\"status\":{\"code\":2");
        if (s->error && *s->error) {
            tg_buf_puts(out, ",\"message\":");
            put_str(out, s->error);
        }
        tg_buf_puts(out, "}");
    }
    tg_buf_puts(out, "}");
}

void tg_otlp_encode(const tg_otlp_span_t *const *spans, size_t n, const char *service_name,
                    const char *service_version, tg_buf_t *out)
{
    tg_buf_puts(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    attrs_t a = {out, false};
    attr_str(&a, "service.name", service_name && *service_name ? service_name : "tollgate");
    attr_str(&a, "service.version", service_version);
    tg_buf_puts(out, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tollgate\",\"version\":");
    put_str(out, service_version ? service_version : "");
    tg_buf_puts(out, "},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            tg_buf_puts(out, ",");
        encode_span(spans[i], out);
    }
    tg_buf_puts(out, "]}]}]}");
}
