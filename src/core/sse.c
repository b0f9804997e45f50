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

/* One whole line, l[0..n) without its terminator, which ends at stream
 * offset `end`: from the input itself when the line lies whole in one fed
 * buffer (the usual case), else from p->line, where its pieces were
 * gathered. */
static int process_line(tg_sse_parser_t *p, const char *l, size_t n, uint64_t end,
                        tg_sse_event_fn fn, void *arg)
{
    if (n == 0) {
        p->event_end = end;
        int rc = dispatch(p, fn, arg);
        p->event_at = end;
        return rc;
    }
    if (l[0] == ':')
        return 0;
    /* nearly every line of a stream is data: its colon needs no search */
    const char *colon = n >= 5 && !memcmp(l, "data:", 5) ? l + 4 : memchr(l, ':', n);
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
 * data lines, and this runs over every byte of it. *cr is the first CR at
 * or after an earlier line's start (NULL: none in the rest of buf): most
 * streams have none, and one search then serves every line of the buffer. */
static size_t line_end(const char *buf, size_t i, size_t len, const char **cr)
{
    const char *lf = memchr(buf + i, '\n', len - i);
    size_t end = lf ? (size_t)(lf - buf) : len;
    if (*cr && *cr < buf + i)
        *cr = memchr(buf + i, '\r', len - i);
    return *cr && (size_t)(*cr - buf) < end ? (size_t)(*cr - buf) : end;
}

int tg_sse_feed(tg_sse_parser_t *p, const char *buf, size_t len, tg_sse_event_fn fn, void *arg)
{
    size_t max = p->max_event ? p->max_event : DEFAULT_MAX_EVENT;
    uint64_t base = p->pos;
    size_t i = 0;
    int rc = 0;
    if (p->after_cr && len) { /* the buffer before ended in CR */
        p->after_cr = false;
        if (buf[0] == '\n') {
            i = 1;
            if (p->event_at == base) /* that CR ended a blank line: its LF too */
                p->event_at++;
        }
    }
    const char *cr = memchr(buf + i, '\r', len - i);
    while (i < len) {
        /* an empty line (an event's end) needs no search */
        size_t j = buf[i] == '\n' || buf[i] == '\r' ? i : line_end(buf, i, len, &cr);
        if (j > i && p->line.len + (j - i) + p->data.len > max) {
            rc = -1;
            break;
        }
        if (j == len) { /* the line goes on in the next buffer */
            tg_buf_append(&p->line, buf + i, j - i);
            i = len;
            break;
        }
        size_t next = j + 1; /* past the line's terminator: LF, CR or CRLF */
        if (buf[j] == '\r') {
            if (next == len)
                p->after_cr = true; /* an LF may follow in the next buffer */
            else if (buf[next] == '\n')
                next++;
        }
        if (p->lend && !p->line.len && !p->has_data && next < len && buf[next] == '\n' &&
            j - i >= 5 && !memcmp(buf + i, "data:", 5)) {
            /* a whole event of one data line: its data as it lies (lend) */
            size_t v = i + 5 + (j - i > 5 && buf[i + 5] == ' ');
            p->event_end = base + next + 1;
            rc = p->event.len ? fn(arg, p->event.data, buf + v, j - v)
                              : fn(arg, "message", buf + v, j - v);
            tg_buf_reset(&p->event);
            p->event_at = p->event_end;
            i = next + 1;
            if (rc)
                break;
            continue;
        }
        if (p->line.len) { /* its start came in an earlier buffer */
            tg_buf_append(&p->line, buf + i, j - i);
            rc = process_line(p, p->line.data, p->line.len, base + next, fn, arg);
            tg_buf_reset(&p->line);
        } else {
            rc = process_line(p, buf + i, j - i, base + next, fn, arg);
        }
        i = next;
        if (rc)
            break;
    }
    p->pos = base + i;
    return rc;
}

void tg_sse_free(tg_sse_parser_t *p)
{
    tg_buf_free(&p->line);
    tg_buf_free(&p->data);
    tg_buf_free(&p->event);
}

/* ---- pass-through ---- */

/* The bytes not yet passed on: ps->held, which ends where the fed buffer
 * starts (ps->cur_at), then the fed buffer. */

/* The byte at stream offset `at`, or -1 when it is not fed yet. */
static int byte_at(const tg_sse_pass_t *ps, uint64_t at)
{
    if (at < ps->cur_at)
        return (unsigned char)ps->held.data[ps->held.len - (size_t)(ps->cur_at - at)];
    if (at - ps->cur_at < ps->cur_len)
        return (unsigned char)ps->cur[at - ps->cur_at];
    return -1;
}

/* Pass on the bytes from ps->sent up to stream offset `to`: the held part,
 * then the fed buffer's. */
static void pass_to(tg_sse_pass_t *ps, uint64_t to)
{
    if (ps->lf_at && ps->lf_at == ps->sent) { /* the LF of a cut event's CR? */
        int c = byte_at(ps, ps->sent);
        if (c == '\n' && ps->sent < to) {
            ps->sent++;
            ps->lf_at = 0;
        } else if (c >= 0 && c != '\n') {
            ps->lf_at = 0; /* none came: the CR ended the line alone */
        }
    }
    if (ps->sent < ps->cur_at && ps->sent < to) {
        uint64_t end = to < ps->cur_at ? to : ps->cur_at;
        const char *from = ps->held.data + ps->held.len - (size_t)(ps->cur_at - ps->sent);
        ps->out_rc |= ps->out(ps->out_arg, from, (size_t)(end - ps->sent));
        ps->sent = end;
    }
    if (ps->sent < to) {
        ps->out_rc |=
            ps->out(ps->out_arg, ps->cur + (ps->sent - ps->cur_at), (size_t)(to - ps->sent));
        ps->sent = to;
    }
}

void tg_sse_pass_cut(tg_sse_pass_t *ps, const tg_sse_parser_t *p)
{
    if (!ps->cur || p->event_at < ps->sent) /* not inside tg_sse_pass_feed */
        return;
    pass_to(ps, p->event_at);
    ps->sent = p->event_end;
    ps->lf_at = byte_at(ps, p->event_end - 1) == '\r' ? p->event_end : 0;
}

int tg_sse_pass_feed(tg_sse_pass_t *ps, tg_sse_parser_t *p, const char *buf, size_t len,
                     tg_sse_event_fn fn, tg_sse_out_fn out, void *arg)
{
    size_t max = p->max_event ? p->max_event : DEFAULT_MAX_EVENT;
    ps->cur = buf;
    ps->cur_len = len;
    ps->cur_at = p->pos;
    ps->out = out;
    ps->out_arg = arg;
    ps->out_rc = 0;
    int rc = tg_sse_feed(p, buf, len, fn, arg);
    if (rc == 0)
        pass_to(ps, p->event_at); /* the whole events */
    /* keep the rest: the start of an event */
    uint64_t end = ps->cur_at + len;
    if (rc == 0 && end - ps->sent > max)
        rc = -1; /* an event's own bytes (comments, fields) past the limit */
    if (rc) {
        /* the stream stops here */
        tg_buf_reset(&ps->held);
        ps->sent = end;
    } else if (ps->sent < ps->cur_at) {
        size_t drop = ps->held.len - (size_t)(ps->cur_at - ps->sent);
        memmove(ps->held.data, ps->held.data + drop, ps->held.len - drop);
        ps->held.len -= drop;
        tg_buf_append(&ps->held, buf, len);
    } else {
        tg_buf_reset(&ps->held);
        tg_buf_append(&ps->held, buf + (ps->sent - ps->cur_at), (size_t)(end - ps->sent));
    }
    ps->cur = NULL;
    ps->cur_len = 0;
    ps->cur_at = end;
    return rc ? rc : ps->out_rc;
}

int tg_sse_pass_end(tg_sse_pass_t *ps, tg_sse_out_fn out, void *arg)
{
    ps->out = out;
    ps->out_arg = arg;
    ps->out_rc = 0;
    ps->cur = "";
    ps->cur_len = 0;
    pass_to(ps, ps->cur_at);
    ps->cur = NULL;
    tg_buf_reset(&ps->held);
    return ps->out_rc;
}

void tg_sse_pass_free(tg_sse_pass_t *ps)
{
    tg_buf_free(&ps->held);
}

/* "NAME: VALUE\n" in one reservation: this runs for every line of every
 * event the gateway writes (a translated stream's). */
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
