/*
 * sse.c — see sse.h. Follows the WHATWG event-stream rules: lines end in
 * LF, CRLF or CR; "field: value" with one optional space after the colon;
 * lines starting with ':' are comments; a blank line dispatches the event,
 * and an event with no data line is dropped. The `id` and `retry` fields
 * carry nothing a gateway needs and are ignored. Pure; a parser belongs to
 * one stream, on the thread that feeds it.
 */
#include "core/sse.h"

#include <string.h>

#define DEFAULT_MAX_EVENT (8u * 1024 * 1024)

static int dispatch(tg_sse_parser_t *p, tg_sse_event_fn fn, void *arg)
{
    int rc = 0;
    if (p->has_data)
        rc = fn(arg, p->event.len ? p->event.data : "message", p->data.data ? p->data.data : "",
                p->data.len);
    tg_buf_reset(&p->data);
    tg_buf_reset(&p->event);
    p->has_data = false;
    return rc;
}

size_t tg_sse_whole(const char *p, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (p[i - 1] != '\n' && p[i - 1] != '\r')
            continue;
        size_t j = i - 1; /* where the line this terminator ends stops */
        if (p[j] == '\n' && j > 0 && p[j - 1] == '\r')
            j--;
        if (j > 0 && (p[j - 1] == '\n' || p[j - 1] == '\r'))
            return i;
    }
    return 0;
}

/* One whole line, l[0..n) without its terminator: from the input itself
 * when the line lies whole in one fed buffer (the usual case), else from
 * p->line, where its pieces were gathered. */
static int process_line(tg_sse_parser_t *p, const char *l, size_t n, tg_sse_event_fn fn, void *arg)
{
    if (n == 0)
        return dispatch(p, fn, arg);
    if (l[0] == ':')
        return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (colon && v < l + n && *v == ' ')
        v++;
    size_t vlen = (size_t)(l + n - v);
    if (flen == 4 && !memcmp(l, "data", 4)) {
        if (p->has_data)
            tg_buf_append(&p->data, "\n", 1);
        tg_buf_append(&p->data, v, vlen);
        p->has_data = true;
    } else if (flen == 5 && !memcmp(l, "event", 5)) {
        tg_buf_reset(&p->event);
        tg_buf_append(&p->event, v, vlen);
    }
    return 0;
}

/* Where the line starting at buf[i] ends: the first CR or LF in buf[i..len),
 * or len. memchr rather than a loop over bytes: a stream is mostly long
 * data lines, and this runs over every byte of it. */
static size_t line_end(const char *buf, size_t i, size_t len)
{
    const char *lf = memchr(buf + i, '\n', len - i);
    size_t end = lf ? (size_t)(lf - buf) : len;
    const char *cr = memchr(buf + i, '\r', end - i);
    return cr ? (size_t)(cr - buf) : end;
}

int tg_sse_feed(tg_sse_parser_t *p, const char *buf, size_t len, tg_sse_event_fn fn, void *arg)
{
    size_t max = p->max_event ? p->max_event : DEFAULT_MAX_EVENT;
    size_t i = 0;
    while (i < len) {
        if (p->after_cr) {
            p->after_cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = line_end(buf, i, len);
        if (j > i && p->line.len + (j - i) + p->data.len > max)
            return -1;
        if (j == len) { /* the line goes on in the next buffer */
            tg_buf_append(&p->line, buf + i, j - i);
            break;
        }
        p->after_cr = buf[j] == '\r';
        int rc;
        if (p->line.len) { /* its start came in an earlier buffer */
            tg_buf_append(&p->line, buf + i, j - i);
            rc = process_line(p, p->line.data, p->line.len, fn, arg);
            tg_buf_reset(&p->line);
        } else {
            rc = process_line(p, buf + i, j - i, fn, arg);
        }
        i = j + 1;
        if (rc)
            return rc;
    }
    return 0;
}

void tg_sse_free(tg_sse_parser_t *p)
{
    tg_buf_free(&p->line);
    tg_buf_free(&p->data);
    tg_buf_free(&p->event);
}

/* "NAME: VALUE\n" in one reservation: this runs for every line of every
 * event the gateway re-frames. */
static void put_field(tg_buf_t *out, const char *name, size_t nlen, const char *v, size_t vlen)
{
    char *p = tg_buf_extend(out, nlen + 2 + vlen + 1);
    memcpy(p, name, nlen);
    memcpy(p + nlen, ": ", 2);
    if (vlen)
        memcpy(p + nlen + 2, v, vlen);
    p[nlen + 2 + vlen] = '\n';
}

void tg_sse_write(tg_buf_t *out, const char *event, const char *data, size_t len)
{
    if (event)
        put_field(out, "event", 5, event, strlen(event));
    size_t start = 0;
    for (;;) {
        const char *nl = len > start ? memchr(data + start, '\n', len - start) : NULL;
        size_t end = nl ? (size_t)(nl - data) : len;
        put_field(out, "data", 4, data + start, end - start);
        if (!nl)
            break;
        start = end + 1;
    }
    tg_buf_append(out, "\n", 1);
}
