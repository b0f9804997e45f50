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

static int process_line(tg_sse_parser_t *p, tg_sse_event_fn fn, void *arg)
{
    const char *l = p->line.data ? p->line.data : "";
    size_t n = p->line.len;
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
        /* Take the run up to the next line end in one append. */
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (j > i) {
            if (p->line.len + (j - i) + p->data.len > max)
                return -1;
            tg_buf_append(&p->line, buf + i, j - i);
        }
        if (j == len)
            break;
        p->after_cr = buf[j] == '\r';
        i = j + 1;
        int rc = process_line(p, fn, arg);
        tg_buf_reset(&p->line);
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

void tg_sse_write(tg_buf_t *out, const char *event, const char *data, size_t len)
{
    if (event) {
        tg_buf_puts(out, "event: ");
        tg_buf_puts(out, event);
        tg_buf_puts(out, "\n");
    }
    size_t start = 0;
    for (;;) {
        const char *nl = len > start ? memchr(data + start, '\n', len - start) : NULL;
        size_t end = nl ? (size_t)(nl - data) : len;
        tg_buf_puts(out, "data: ");
        tg_buf_append(out, data + start, end - start);
        tg_buf_puts(out, "\n");
        if (!nl)
            break;
        start = end + 1;
    }
    tg_buf_puts(out, "\n");
}
