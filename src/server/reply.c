/*
 * reply.c — tg_http_t (http.h) as the handler sees it: the request's
 * method, path, headers and body, and the reply writer: status line, Date,
 * head, Content-Length or chunked framing, streams and their back-pressure,
 * and the end of an exchange. Separate from conn.c because it formats
 * bytes and never touches a socket: what it writes goes to the
 * connection's output buffer, which conn.c writes at the end of the turn.
 *
 * Threads: all of it runs on the worker thread that owns the exchange.
 */
#include "server/server_internal.h"

#include <event2/http.h> /* evhttp_uridecode only */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Above this many bytes queued for a client, the stream's source pauses. */
#define TG_HTTP_HIGH_WATER (256 * 1024)

/* ---- tg_http_t accessors ---- */

TG_REPLACEABLE const char *tg_http_method(const tg_http_t *h)
{
    return h->req.method;
}
TG_REPLACEABLE const char *tg_http_path(const tg_http_t *h)
{
    return h->path;
}
TG_REPLACEABLE const char *tg_http_query(const tg_http_t *h)
{
    return h->query;
}
TG_REPLACEABLE const char *tg_http_client_ip(const tg_http_t *h)
{
    return h->ip;
}

char *tg_http_decode(const char *s, size_t len)
{
    char *raw = tg_xmalloc(len + 1);
    memcpy(raw, s, len);
    raw[len] = 0;
    size_t n = 0;
    char *out = evhttp_uridecode(raw, 0, &n);
    free(raw);
    if (out && strlen(out) != n) {
        free(out);
        out = NULL;
    }
    return out;
}
TG_REPLACEABLE struct event_base *tg_http_base(const tg_http_t *h)
{
    return h->w->base;
}
TG_REPLACEABLE bool tg_http_client_gone(const tg_http_t *h)
{
    return h->gone;
}

TG_REPLACEABLE bool tg_http_dashboard(const tg_http_t *h)
{
    return h->dashboard;
}

TG_REPLACEABLE bool tg_http_shutdown_cut(const tg_http_t *h)
{
    return h->shutdown_cut;
}

/* A request asks for some twenty Helicone-* headers (retries, cache,
 * limits, fallbacks, ...) and most requests carry none: one pass over the
 * headers, on the first such question, answers all of those at once. */
static bool helicone_name(const char *name)
{
    static const char p[] = "helicone"; /* letters: c | 0x20 matches either case, nothing else */
    for (size_t i = 0; i < sizeof p - 1; i++)
        if ((name[i] | 0x20) != p[i])
            return false; /* a NUL stops it here too */
    return name[sizeof p - 1] == '-';
}

static bool has_helicone_headers(tg_http_t *h)
{
    if (!h->helicone_known) {
        for (size_t i = 0; i < h->req.n_headers && !h->helicone; i++)
            h->helicone = helicone_name(h->req.names[i]);
        h->helicone_known = true;
    }
    return h->helicone;
}

/* Names are compared by their first byte before the whole: most of a
 * request's few headers differ from the one asked for right there. */
TG_REPLACEABLE const char *tg_http_header(tg_http_t *h, const char *name)
{
    unsigned char c0 = tg_lower_byte((unsigned char)name[0]);
    if (c0 == 'h' && !has_helicone_headers(h) && helicone_name(name))
        return NULL;
    for (size_t i = 0; i < h->req.n_headers; i++)
        if (tg_lower_byte((unsigned char)h->req.names[i][0]) == c0 &&
            !strcasecmp(h->req.names[i], name))
            return h->req.values[i];
    return NULL;
}

TG_REPLACEABLE void
tg_http_headers_foreach(const tg_http_t *h,
                        int (*fn)(const char *name, const char *value, void *arg), void *arg)
{
    for (size_t i = 0; i < h->req.n_headers; i++)
        if (fn(h->req.names[i], h->req.values[i], arg))
            return;
}

TG_REPLACEABLE const char *tg_http_body(tg_http_t *h, size_t *len)
{
    *len = h->req.body_len;
    return h->req.body;
}

TG_REPLACEABLE void tg_http_set_events(tg_http_t *h, const tg_http_events_t *ev, void *arg)
{
    h->ev = *ev;
    h->ev_arg = arg;
}

/* The server writes the framing headers itself. */
static bool framing_header(const char *name)
{
    switch (tg_lower_byte((unsigned char)name[0])) {
    case 'c': return !strcasecmp(name, "Content-Length") || !strcasecmp(name, "Connection");
    case 't': return !strcasecmp(name, "Transfer-Encoding");
    case 'd': return !strcasecmp(name, "Date");
    default: return false;
    }
}

TG_REPLACEABLE void tg_http_add_header(tg_http_t *h, const char *name, const char *value)
{
    /* A name is a token; neither may break the header block (a provider's
     * header passed on must not be able to add lines of its own). */
    size_t nl = strlen(name), vl = strcspn(value, "\r\n");
    if (!nl || strcspn(name, ":\r\n \t") != nl || value[vl] || framing_header(name))
        return;
    char *p = tg_buf_extend(&h->out_headers, nl + vl + 4); /* one reservation for the line */
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
}

TG_REPLACEABLE void tg_http_add_own_header(tg_http_t *h, const char *name, const char *value)
{
    char line[256]; /* one append: names and values the gateway makes are short */
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl + 4 > sizeof line) {
        tg_http_add_header(h, name, value);
        return;
    }
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl);
    memcpy(line + nl + 2 + vl, "\r\n", 2);
    tg_buf_append(&h->out_headers, line, nl + vl + 4);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Overloaded";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The "Date: ...\r\n" line, made once a second. */
static const char *date_line(tg_worker_t *w)
{
    time_t now = time(NULL);
    if (now != w->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date_line, sizeof w->date_line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        w->date_sec = now;
    }
    return w->date_line;
}

/* 1xx, 204 and 304 answers have no body (and no Content-Length). */
static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Appends "HTTP/1.x status reason" and the Date line. Formatted by hand: a
 * printf call costs more than the rest of the head. */
void tg_server_put_status_line(tg_worker_t *w, tg_buf_t *head, bool http10, int status)
{
    tg_buf_puts(head, http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    tg_buf_put_i64(head, status);
    tg_buf_append(head, " ", 1);
    tg_buf_puts(head, reason_phrase(status));
    tg_buf_append(head, "\r\n", 2);
    tg_buf_puts(head, date_line(w));
}

/* ---- exchange lifetime ---- */

static void exchange_end(tg_http_t *h)
{
    tg_worker_t *w = h->w;
    tg_conn_t *c = h->c;
    if (c) {
        c->h = NULL;
        if (!h->req.keep_alive || w->draining || h->gone) {
            c->closing = true;
        } else {
            tg_server_conn_read(c, true, true); /* also if on_input stopped it */
            tg_server_conn_phase(c, CONN_WAITING);
        }
        tg_server_queue_conn(c);
    }
    if (h->prev)
        h->prev->next = h->next;
    else
        w->live = h->next;
    if (h->next)
        h->next->prev = h->prev;
    atomic_fetch_sub(&w->n_live, 1);
    tg_request_free(&h->req);
    tg_buf_free(&h->out_headers);
    free(h);
    if (w->draining)
        tg_server_worker_maybe_finish(w);
}

/* Appends the status line and headers to `head`. length < 0: a stream. */
static void write_head(tg_http_t *h, tg_buf_t *head, int status, const char *content_type,
                       long long length)
{
    tg_worker_t *w = h->w;
    bool keep = h->req.keep_alive && !w->draining && !h->gone;
    bool old = h->req.major == 1 && h->req.minor == 0; /* HTTP/1.0 */
    if (length < 0) {
        /* HTTP/1.0 has no chunks: the stream ends with the connection. */
        h->chunked = !old;
        keep = keep && !old;
    }
    h->req.keep_alive = keep;
    tg_server_put_status_line(w, head, old, status);
    if (content_type) {
        tg_buf_append(head, "Content-Type: ", 14);
        tg_buf_puts(head, content_type);
        tg_buf_append(head, "\r\n", 2);
    }
    if (h->out_headers.len)
        tg_buf_append(head, h->out_headers.data, h->out_headers.len);
    if (length >= 0 && status_has_body(status)) {
        tg_buf_append(head, "Content-Length: ", 16);
        tg_buf_put_i64(head, length);
        tg_buf_append(head, "\r\n", 2);
    } else if (length < 0 && h->chunked) {
        tg_buf_puts(head, "Transfer-Encoding: chunked\r\n");
    }
    if (!keep)
        tg_buf_puts(head, "Connection: close\r\n");
    else if (old)
        tg_buf_puts(head, "Connection: keep-alive\r\n");
    tg_buf_append(head, "\r\n", 2);
}

TG_REPLACEABLE void tg_http_reply(tg_http_t *h, int status, const char *content_type,
                                  const void *body, size_t len)
{
    if (h->c) {
        tg_buf_t out = {0};
        write_head(h, &out, status, content_type, (long long)len);
        if (len && status_has_body(status) && strcmp(h->req.method, "HEAD"))
            tg_buf_append(&out, body, len);
        evbuffer_add(conn_out(h->c), out.data, out.len);
        tg_buf_free(&out);
    }
    exchange_end(h);
}

TG_REPLACEABLE void tg_http_stream_start(tg_http_t *h, int status, const char *content_type)
{
    if (!h->c)
        return;
    tg_buf_t out = {0};
    write_head(h, &out, status, content_type, -1);
    evbuffer_add(conn_out(h->c), out.data, out.len);
    tg_buf_free(&out);
    tg_server_queue_conn(h->c);
}

TG_REPLACEABLE bool tg_http_stream_write(tg_http_t *h, const void *data, size_t len)
{
    if (h->gone || !h->c || !len)
        return false;
    struct evbuffer *out = conn_out(h->c);
    if (h->chunked) {
        char size[18];
        size_t n = tg_put_hex(size, len);
        memcpy(size + n, "\r\n", 2);
        evbuffer_add(out, size, n + 2);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    tg_server_queue_conn(h->c);
    if (evbuffer_get_length(out) > TG_HTTP_HIGH_WATER) {
        h->want_drain = true;
        return true;
    }
    return false;
}

TG_REPLACEABLE void tg_http_stream_end(tg_http_t *h)
{
    if (h->c && h->chunked)
        evbuffer_add(conn_out(h->c), "0\r\n\r\n", 5);
    exchange_end(h);
}

TG_REPLACEABLE void tg_http_stream_abort(tg_http_t *h)
{
    h->req.keep_alive = false; /* what is queued is written, then the close */
    exchange_end(h);
}
