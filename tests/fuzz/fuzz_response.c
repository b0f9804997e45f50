/*
 * libFuzzer target: the upstream answer reader (src/proxy/h1parse.c).
 * Input: one byte that picks a read size (1..64) and whether on_body
 * pauses, then the provider's bytes. Properties checked: the reader gives
 * the same head, body, completion, keep-alive and leftover whether fed in
 * one read or in small ones (pausing and resuming as asked); a head never
 * holds more than 200 headers or 64 KiB; an answer that completes has had
 * its head; end of input never completes what was an error. See run.sh.
 */
#include "proxy/h1parse.h"

#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_buf_t log; /* "status|name=value;...|" then the body */
    int heads;
    bool pause;
} out_t;

static void on_head(void *arg, int status, const tg_headers_t *h)
{
    out_t *o = arg;
    if (h->n > TG_H1_MAX_HEADERS)
        abort();
    size_t bytes = 0;
    tg_buf_printf(&o->log, "%d|", status);
    for (size_t i = 0; i < h->n; i++) {
        bytes += strlen(h->names[i]) + strlen(h->values[i]);
        tg_buf_printf(&o->log, "%s=%s;", h->names[i], h->values[i]);
    }
    if (bytes > TG_H1_MAX_HEADER_BYTES)
        abort();
    tg_buf_puts(&o->log, "|");
    o->heads++;
}

static int on_body(void *arg, const char *data, size_t len)
{
    out_t *o = arg;
    tg_buf_append(&o->log, data, len);
    return o->pause ? 1 : 0;
}

static const tg_h1resp_cbs_t cbs = {on_head, on_body};

typedef struct {
    bool complete, keep_alive, error;
    size_t used;
} result_t;

static result_t run(const uint8_t *data, size_t size, size_t step, bool pause, out_t *o)
{
    tg_h1resp_t r;
    o->pause = pause;
    tg_h1resp_init(&r, false, &cbs, o);
    size_t off = 0;
    while (off < size) {
        size_t k = size - off < step ? size - off : step;
        size_t used = tg_h1resp_feed(&r, (const char *)data + off, k);
        off += used;
        if (r.paused) {
            tg_h1resp_unpause(&r);
            continue;
        }
        if (used < k)
            break;
    }
    bool was_error = r.error != NULL;
    if (!r.complete && !r.error && off == size)
        tg_h1resp_eof(&r);
    if (was_error && r.complete)
        abort();
    if (r.complete && !o->heads)
        abort();
    result_t res = {r.complete, r.keep_alive, r.error != NULL, off};
    tg_h1resp_free(&r);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] & 63) + 1;
    bool pause = data[0] & 64;
    data++;
    size--;
    out_t whole = {0}, parts = {0};
    result_t a = run(data, size, size ? size : 1, false, &whole);
    result_t b = run(data, size, step, pause, &parts);
    /* A malformed answer may be noticed at a different byte in pieces, so
     * only answers read without error must agree byte for byte. */
    if (!a.error && !b.error) {
        if (a.complete != b.complete || a.keep_alive != b.keep_alive || a.used != b.used)
            abort();
        const char *x = whole.log.data ? whole.log.data : "";
        const char *y = parts.log.data ? parts.log.data : "";
        if (whole.log.len != parts.log.len || memcmp(x, y, whole.log.len) != 0)
            abort();
    }
    tg_buf_free(&whole.log);
    tg_buf_free(&parts.log);
    return 0;
}
