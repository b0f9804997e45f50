/*
 * libFuzzer target: what the OpenTelemetry export reads from clients and
 * providers (src/otlp/otlp_json.c). Properties checked: a traceparent the
 * parser accepts is 55 characters of the W3C form (or more after a '-' for
 * a later version) whose ids, written back in hex, are the input's, and
 * never all zero, and a version 00 one formats back to itself; the answer id and model look-up
 * writes NUL-terminated strings within its buffers; a span whose strings are the input's encodes to
 * JSON that jansson reads, with the input's trace id. See run.sh.
 */
#include "otlp/otlp.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    /* traceparent */
    tg_otlp_ctx_t ctx = {0};
    if (tg_otlp_traceparent_parse(s, &ctx) == 0) {
        char t[33], p[17];
        hex(ctx.trace_id, 16, t);
        hex(ctx.parent_id, 8, p);
        size_t n = strlen(s);
        if (n < 55 || (n > 55 && s[55] != '-') || memcmp(s + 3, t, 32) || memcmp(s + 36, p, 16) ||
            zero(ctx.trace_id, 16) || zero(ctx.parent_id, 8) || !ctx.has_parent ||
            !memcmp(s, "ff", 2))
            abort();
        char back[56];
        tg_otlp_traceparent_format(&ctx, ctx.parent_id, back);
        if (!memcmp(s, "00", 2) && strcmp(back, s)) /* version 00 is written back as it came */
            abort();
    }
    /* the provider's id and model */
    char id[16], model[16];
    id[0] = model[0] = 0;
    tg_otlp_response_ids((const char *)data, size, id, sizeof id, model, sizeof model);
    if (!memchr(id, 0, sizeof id) || !memchr(model, 0, sizeof model))
        abort();
    /* a span of the input's strings */
    size_t half = size / 2;
    char *a = strndup(s, half), *b = strdup(s + half);
    tg_otlp_prop_t props[] = {{a, b}, {b, a}};
    tg_otlp_span_t span = {
        .ctx = ctx,
        .operation = "chat",
        .request_model = a,
        .response_id = b,
        .error = s,
        .user_id = b,
        .status = size % 600,
        .input_tokens = (long)size,
        .output_tokens = -1,
        .max_tokens = -1,
        .temperature = size ? (double)data[0] / 7.0 : 0,
        .cost_nusd = (int64_t)size * 1000003,
        .latency_ms = -1,
        .ttft_ms = -1,
        .fallback_index = -1,
        .props = props,
        .n_props = 2,
    };
    const tg_otlp_span_t *spans[] = {&span};
    tg_buf_t out = {0};
    tg_otlp_encode(spans, 1, a, b, &out);
    json_t *root = json_loadb(out.data, out.len, 0, NULL);
    if (!root)
        abort();
    json_t *sp = json_array_get(
        json_object_get(
            json_array_get(
                json_object_get(json_array_get(json_object_get(root, "resourceSpans"), 0),
                                "scopeSpans"),
                0),
            "spans"),
        0);
    char t[33];
    hex(ctx.trace_id, 16, t);
    const char *got = json_string_value(json_object_get(sp, "traceId"));
    if (!got || strcmp(got, t))
        abort();
    json_decref(root);
    tg_buf_free(&out);
    free(a);
    free(b);
    free(s);
    return 0;
}
