/*
 * http.h — one client HTTP exchange, as the rest of tollgate sees it.
 *
 * Nothing outside src/server knows how connections are served (libevent,
 * http-parser); the pipeline talks to the client only through these
 * functions. All of them run on the worker
 * thread that owns the exchange.
 *
 * Lifetime: the server creates a tg_http_t for each request and hands it to
 * the request handler. Every exchange ends with exactly one call to
 * tg_http_reply() or, after tg_http_stream_start(), tg_http_stream_end() —
 * also after the client has gone (on_close) — and the pointer is invalid
 * after that call.
 *
 * Two implementations: src/server/reply.c (the sockets) and, in the unit
 * tests, tests/unit/loopback.c (an in-memory client that records what it
 * got), which replaces the first at link time (TG_REPLACEABLE, core/util.h).
 * A handler may rely on nothing but what this header says.
 */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tg_http tg_http_t;
struct event_base;

typedef struct {
    /** The client went away before the exchange ended. The handler must stop
     *  its work (cancel the upstream call) and still end the exchange. */
    void (*on_close)(void *arg);
    /** The client's output buffer drained after tg_http_stream_write said it
     *  was full: writing may go on. */
    void (*on_drain)(void *arg);
} tg_http_events_t;

/** The method, upper case ("GET", "POST", ...). */
const char *tg_http_method(const tg_http_t *h);
/** The path without the query string, as sent (not percent-decoded). */
const char *tg_http_path(const tg_http_t *h);
/** The query string without '?', or NULL. */
const char *tg_http_query(const tg_http_t *h);
/** Percent-decode len bytes of a path segment (malloc'd, '+' kept as is),
 *  or NULL when they decode to a NUL byte. */
char *tg_http_decode(const char *s, size_t len);
/** First request header of that name (case-insensitive), or NULL. */
const char *tg_http_header(tg_http_t *h, const char *name);
/** Calls fn for each request header in order; stops when fn returns non-zero. */
void tg_http_headers_foreach(const tg_http_t *h,
                             int (*fn)(const char *name, const char *value, void *arg), void *arg);
/** The whole request body (contiguous), or NULL with *len 0. */
const char *tg_http_body(tg_http_t *h, size_t *len);
/** The client's address as text. */
const char *tg_http_client_ip(const tg_http_t *h);
/** The worker's event loop, for timers and the upstream relay. */
struct event_base *tg_http_base(const tg_http_t *h);
/** True when the request came in on the dashboard's listener
 *  (observability.dashboard), which serves the page and /api/v1 only. */
bool tg_http_dashboard(const tg_http_t *h);
/** True once the client is known to have gone. */
bool tg_http_client_gone(const tg_http_t *h);
/** True while on_close runs because server.shutdown_timeout passed, not
 *  because the client left: the client is still there and may be written
 *  to (a last error event, then tg_http_stream_end). */
bool tg_http_shutdown_cut(const tg_http_t *h);

void tg_http_set_events(tg_http_t *h, const tg_http_events_t *ev, void *arg);

/** Add a response header (before the reply or stream starts). */
void tg_http_add_header(tg_http_t *h, const char *name, const char *value);
/** The same for a header the gateway makes itself on the request path: a
 *  constant token for name, a value it formatted (no CR or LF), so
 *  unchecked. */
void tg_http_add_own_header(tg_http_t *h, const char *name, const char *value);

/** Send a complete response and end the exchange. */
void tg_http_reply(tg_http_t *h, int status, const char *content_type, const void *body,
                   size_t len);

/** Start a chunked response with the headers added so far. */
void tg_http_stream_start(tg_http_t *h, int status, const char *content_type);
/** Queue data. Returns true when the client's output buffer is above its
 *  high-water mark: the caller should pause its source until on_drain. */
bool tg_http_stream_write(tg_http_t *h, const void *data, size_t len);
/** End the chunked response and the exchange. */
void tg_http_stream_end(tg_http_t *h);
/** End the exchange without ending the response: what was queued is
 *  written, then the connection closes without the last chunk, so the
 *  client sees the body cut (an HTTP/1.0 client cannot tell). */
void tg_http_stream_abort(tg_http_t *h);

#endif
