/*
 * fuzz_translate.h — the body shared by the translator fuzz targets. The
 * first input byte picks what the rest is fed to: the request translator
 * (a client request), the response translator and both error writers (a
 * provider answer), or the stream translator (a provider event stream,
 * parsed by the SSE parser). Whatever goes in, what comes out must be
 * well-formed: request bodies serialise, answers are JSON documents, and
 * every client event's data is a JSON object or [DONE]; anything else
 * aborts, and ASan/UBSan/LeakSanitizer catch the rest. A target defines
 * FUZZ_CLIENT and FUZZ_PROVIDER and includes this file; FUZZ_TRANSLATOR(b)
 * (b: the first input byte) may pick another translator than the
 * dialects' one.
 */
#include "core/sse.h"
#include "providers/translate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_TRANSLATOR
#define FUZZ_TRANSLATOR(b) tg_translate_for(FUZZ_CLIENT, FUZZ_PROVIDER)
#endif

static void must(int ok)
{
    if (!ok)
        abort();
}

static int check_event(void *arg, const char *event, const char *data, size_t len)
{
    (void)arg;
    (void)event;
    if (len == 6 && !memcmp(data, "[DONE]", 6))
        return 0;
    json_t *j = json_loadb(data, len, 0, NULL);
    must(json_is_object(j));
    json_decref(j);
    return 0;
}

static void check_sse(const tg_buf_t *out)
{
    tg_sse_parser_t p = {0};
    if (out->len) {
        must(out->len >= 2 && out->data[out->len - 1] == '\n' && out->data[out->len - 2] == '\n');
        must(tg_sse_feed(&p, out->data, out->len, check_event, NULL) == 0);
    }
    tg_sse_free(&p);
}

static void check_json_doc(const tg_buf_t *out)
{
    json_t *j = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
    must(json_is_object(j));
    json_decref(j);
}

static void fuzz_request(const tg_translator_t *t, const uint8_t *d, size_t n)
{
    json_t *req = json_loadb((const char *)d, n, 0, NULL);
    if (!req)
        return;
    tg_translate_req_t rq;
    char err[256];
    tg_translate_ropts_t ro = {n & 1};
    if (tg_translate_request(t, req, "fuzz-model", &ro, &rq, err, sizeof err) == 0) {
        char *s = json_dumps(rq.body, TG_TRANSLATE_DUMP_FLAGS);
        must(s != NULL && rq.path != NULL && rq.path[0] == '/');
        free(s);
        tg_translate_req_free(&rq);
    } else {
        must(strlen(err) > 0);
    }
    if (FUZZ_CLIENT == TG_WIRE_ANTHROPIC) {
        tg_buf_t out = {0};
        must(tg_translate_count_tokens(req, &out) >= 0);
        check_json_doc(&out);
        tg_buf_free(&out);
    }
    json_decref(req);
}

static void fuzz_response(const tg_translator_t *t, const uint8_t *d, size_t n)
{
    tg_translate_opts_t o = {.id = "fuzz", .created = 1, .model = "m"};
    tg_buf_t out = {0};
    tg_usage_t u = TG_USAGE_UNKNOWN;
    if (tg_translate_response(t, (const char *)d, n, &o, &out, &u) == 0)
        check_json_doc(&out);
    else
        must(out.len == 0);
    tg_buf_reset(&out);
    tg_translate_error(FUZZ_CLIENT, 400 + (int)(n % 200), (const char *)d, n, &out);
    check_json_doc(&out);
    tg_buf_free(&out);
}

typedef struct {
    tg_translate_stream_t *s;
    tg_buf_t *out;
} fuzz_stream_t;

static int feed_event(void *arg, const char *event, const char *data, size_t len)
{
    fuzz_stream_t *f = arg;
    tg_translate_stream_feed(f->s, event, data, len, f->out);
    return 0;
}

static void fuzz_stream(const tg_translator_t *t, const uint8_t *d, size_t n, int flags)
{
    tg_translate_opts_t o = {.id = "fuzz", .created = 1, .model = "m", .include_usage = flags & 1};
    tg_buf_t out = {0};
    fuzz_stream_t f = {tg_translate_stream_new(t, &o), &out};
    tg_sse_parser_t p = {.max_event = 1 << 16};
    size_t step = (flags >> 1) % 7 + 1;
    for (size_t i = 0; i < n; i += step)
        if (tg_sse_feed(&p, (const char *)d + i, n - i < step ? n - i : step, feed_event, &f) < 0)
            break;
    if (flags & 0x10)
        tg_translate_stream_finish(f.s, &out);
    tg_usage_t u;
    tg_translate_stream_usage(f.s, &u);
    tg_translate_stream_free(f.s);
    tg_sse_free(&p);
    check_sse(&out);
    tg_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const tg_translator_t *t = FUZZ_TRANSLATOR(data[0]);
    must(t != NULL);
    switch (data[0] % 3) {
    case 0: fuzz_request(t, data + 1, size - 1); break;
    case 1: fuzz_response(t, data + 1, size - 1); break;
    default: fuzz_stream(t, data + 1, size - 1, data[0] / 3); break;
    }
    return 0;
}
