/*
 * fuzz_errors.c — every error body the gateway writes itself is valid UTF-8
 * JSON whatever bytes went into its message and code: the per-dialect
 * writer (proxy/reply.c) for each dialect and status, and the OpenAI shape
 * the HTTP refusals and the store's API use (tg_buf_openai_error). The
 * input is split at its first NUL into message and code.
 */
#include "core/jsonscan.h"
#include "core/util.h"
#include "proxy/reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* reply.c's tg_reply_error sends through the server; never called here. */
void tg_http_reply(tg_http_t *h, int status, const char *content_type, const void *body, size_t len)
{
    abort();
}

static void check(const tg_buf_t *b)
{
    size_t off;
    const char *why;
    if (!tg_json_valid(b->data, b->len, &off, &why))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 2);
    memcpy(in, data, size);
    in[size] = 0;
    in[size + 1] = 0;
    const char *message = in;
    const char *code = in + strlen(in) + 1; /* after the first NUL, or "" */
    static const int statuses[] = {400, 401, 403, 404, 413, 429, 500, 502, 503, 504, 599};
    int status = statuses[size % (sizeof statuses / sizeof statuses[0])];
    static const tg_wire_t wires[] = {TG_WIRE_OPENAI, TG_WIRE_ANTHROPIC, TG_WIRE_GEMINI};
    for (size_t i = 0; i < sizeof wires / sizeof wires[0]; i++) {
        tg_buf_t b = {0};
        tg_reply_error_body(&b, wires[i], status, *code ? code : NULL, message);
        check(&b);
        tg_buf_free(&b);
    }
    tg_buf_t b = {0};
    tg_buf_openai_error(&b, message, "invalid_request_error", code);
    check(&b);
    tg_buf_free(&b);
    free(in);
    return 0;
}
