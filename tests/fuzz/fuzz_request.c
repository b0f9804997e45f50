/*
 * libFuzzer target: src/server/request.c, the reader of client requests, on
 * any bytes. The first byte picks how the rest is cut into reads (1 to 256
 * bytes each), as a socket may deliver it. Properties checked:
 * - a feed never reports more bytes than it was given, and stops short only
 *   at the end of a request or at a failure; after a failure nothing more
 *   is read;
 * - every request taken has a method, a target and headers that lie inside
 *   its own memory (ASan sees the rest), a body within the limit, and is
 *   what strict RFC 9112 allows: version 1.0 or 1.1, one Host at most and
 *   exactly one in 1.1, header names that are tokens, values without
 *   control characters (but HTAB) and without blanks at either end;
 * - the cut does not matter: the requests taken, their order, which asked
 *   for "100 Continue", and the failure are the same as when the bytes come
 *   in one read.
 * See run.sh.
 */
#include "core/util.h"
#include "server/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY 4096

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        return false;
    for (; *v; v++)
        if (((unsigned char)*v < ' ' && *v != '\t') || *v == 0x7f)
            return false;
    return true;
}

/* Checks one request taken and writes it to the transcript. */
static void take_one(tg_reqparse_t *rp, tg_buf_t *out)
{
    tg_request_t r;
    tg_reqparse_take(rp, &r);
    if (!r.method[0] || !r.target || r.body_len > MAX_BODY ||
        (r.body && strlen(r.body) > r.body_len) || r.major != 1 || r.minor > 1)
        abort();
    size_t hosts = 0;
    for (size_t i = 0; i < r.n_headers; i++) {
        if (strlen(r.names[i]) + strlen(r.values[i]) > TG_MAX_HEADERS_SIZE ||
            !is_token(r.names[i]) || !value_ok(r.values[i]))
            abort();
        hosts += !strcasecmp(r.names[i], "Host");
    }
    if (hosts > 1 || (r.minor == 1 && hosts != 1))
        abort();
    tg_buf_printf(out, "%s %s %d.%d %d", r.method, r.target, r.major, r.minor, r.keep_alive);
    for (size_t i = 0; i < r.n_headers; i++)
        tg_buf_printf(out, " [%s=%s]", r.names[i], r.values[i]);
    tg_buf_printf(out, " body(%zu)=", r.body_len);
    if (r.body_len)
        tg_buf_append(out, r.body, r.body_len);
    tg_buf_puts(out, ";");
    tg_request_free(&r);
}

/* Reads s in reads of `step` bytes, writing what came out to *out. */
static void read_all(const char *s, size_t len, size_t step, tg_buf_t *out)
{
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, MAX_BODY);
    size_t off = 0;
    bool continued = false;
    while (off < len) {
        size_t want = step < len - off ? step : len - off;
        size_t n = tg_reqparse_feed(&rp, s + off, want);
        if (n > want)
            abort();
        off += n;
        if (rp.fail_status) {
            if (!rp.fail_msg || tg_reqparse_feed(&rp, s + off, len - off) != 0)
                abort();
            tg_buf_printf(out, "fail %d %s;", rp.fail_status, rp.fail_msg);
            break;
        }
        /* noted with the request it belongs to: a failure that comes in
         * the same read as the head's end is answered without it */
        if (rp.expect_continue) {
            continued = true;
            rp.expect_continue = false;
        }
        if (rp.done) {
            if (continued)
                tg_buf_puts(out, "continue ");
            continued = false;
            take_one(&rp, out);
        } else if (n < want)
            abort(); /* the reader stops short only at an end or a failure */
    }
    tg_reqparse_free(&rp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    size_t step = (size_t)data[0] + 1;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);
    memcpy(s, data + 1, len);
    tg_buf_t cut = {0}, whole = {0};
    read_all(s, len, step, &cut);
    read_all(s, len, len ? len : 1, &whole);
    if (cut.len != whole.len || (cut.len && memcmp(cut.data, whole.data, cut.len)))
        abort(); /* the cut changed what was read */
    tg_buf_free(&cut);
    tg_buf_free(&whole);
    free(s);
    return 0;
}
