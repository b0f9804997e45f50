/*
 * libFuzzer target: src/server/request.c, the reader of client requests, on
 * any bytes. The first byte picks how the rest is cut into reads (1 to 256
 * bytes each), as a socket may deliver it. Properties checked: a feed never
 * reports more bytes than it was given; every request taken has a method, a
 * target and headers that lie inside its own memory (ASan sees the rest);
 * a body is never longer than the limit; after a failure nothing more is
 * read. See run.sh.
 */
#include "server/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    size_t step = (size_t)data[0] + 1;
    char *s = malloc(size - 1 ? size - 1 : 1);
    memcpy(s, data + 1, size - 1);
    size_t len = size - 1, off = 0;
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, MAX_BODY);
    while (off < len) {
        size_t want = step < len - off ? step : len - off;
        size_t n = tg_reqparse_feed(&rp, s + off, want);
        if (n > want)
            abort();
        off += n;
        if (rp.fail_status) {
            if (!rp.fail_msg || tg_reqparse_feed(&rp, s + off, len - off) != 0)
                abort();
            break;
        }
        rp.expect_continue = false;
        if (rp.done) {
            tg_request_t r;
            tg_reqparse_take(&rp, &r);
            if (!r.method[0] || !r.target || r.body_len > MAX_BODY ||
                (r.body && strlen(r.body) > r.body_len))
                abort();
            for (size_t i = 0; i < r.n_headers; i++)
                if (strlen(r.names[i]) + strlen(r.values[i]) > TG_MAX_HEADERS_SIZE)
                    abort();
            tg_request_free(&r);
        } else if (n < want) {
            abort(); /* the reader stops short only at an end or a failure */
        }
    }
    tg_reqparse_free(&rp);
    free(s);
    return 0;
}
