/*
 * server.c — worker threads, SO_REUSEPORT listeners, and the evhttp side of
 * tg_http_t (http.h).
 *
 * Threads: tg_server_start/reload/shutdown/join run on the main thread; all
 * other code here runs on the worker thread that owns the event loop. The
 * main thread talks to a worker only through the worker's control event
 * (event_active is thread-safe once evthread_use_pthreads() ran) and the
 * fields guarded by the worker's mutex (pending_cfg, stop).
 *
 * Invariants:
 * - every tg_http_t is on its worker's `live` list from creation until the
 *   exchange ends (tg_http_reply / tg_http_stream_end), and is freed there;
 * - the connection close callback and the EV_CLOSED watcher point at the
 *   exchange only while it is alive: both are cleared when it ends;
 * - a worker stops only when its live list is empty (or the shutdown deadline
 *   forced every exchange to end).
 */
#include "server/server.h"

#include "core/log.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Above this many bytes queued for a client, the stream's source pauses. */
#define TG_HTTP_HIGH_WATER (256 * 1024)
#define TG_MAX_HEADERS_SIZE (64 * 1024)

typedef struct tg_worker tg_worker_t;

struct tg_http {
    struct evhttp_request *req;
    struct evhttp_connection *evcon; /* NULL once evhttp has freed the connection */
    tg_worker_t *w;
    struct event *close_ev; /* EV_CLOSED watcher on the client socket */
    struct evbuffer *chunk; /* reused for each streamed chunk */
    tg_http_events_t ev;
    void *ev_arg;
    char *path;
    const char *query;
    char method[12];
    char ip[INET6_ADDRSTRLEN];
    bool gone;
    bool want_drain;
    bool streaming;
    bool helicone_known, helicone; /* has_helicone_headers */
    struct tg_http *prev, *next; /* worker's live list */
};

/* Bufferevents held with a reference each (evhttp may free their
 * connections meanwhile). */
typedef struct {
    struct bufferevent **v;
    size_t n, cap;
} bev_list_t;

static void bev_list_push(bev_list_t *l, struct bufferevent *bev)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = tg_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    bufferevent_incref(bev);
    l->v[l->n++] = bev;
}

/* Gives back every reference and the memory. */
static void bev_list_release(bev_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        bufferevent_decref(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

struct tg_worker {
    tg_server_t *srv;
    int index;
    int listen_fd;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *ctl;       /* activated by the main thread */
    struct event *drain_tm;  /* while draining: checks for the end */
    struct event *deadline;  /* while draining: forces the end */
    void *wctx;
    tg_config_t *cfg; /* this worker's current config */
    SSL_CTX *ssl_ctx;
    tg_http_t *live;
    atomic_long n_live;
    bool draining;
    /* While draining: connections whose last reply may still be in their
     * output buffer (see exchange_end). */
    bev_list_t flushing;
    /* Connections on_flush wrote out in this loop turn, and the event that
     * tells evhttp so: on_written. */
    bev_list_t written;
    struct event *written_ev;
    /* Connections with output queued in this loop turn, and the event
     * that writes them out at its end: on_flush. */
    bev_list_t to_write;
    struct event *flush_ev;

    pthread_mutex_t mu; /* guards pending_cfg and stop */
    tg_config_t *pending_cfg;
    bool stop;
};

struct tg_server {
    tg_server_hooks_t hooks;
    tg_worker_t *workers;
    int n_workers;
    int64_t shutdown_timeout_ms;
};

/* ---- tg_http_t accessors ---- */

const char *tg_http_method(const tg_http_t *h) { return h->method; }
const char *tg_http_path(const tg_http_t *h) { return h->path; }
const char *tg_http_query(const tg_http_t *h) { return h->query; }
const char *tg_http_client_ip(const tg_http_t *h) { return h->ip; }

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
struct event_base *tg_http_base(const tg_http_t *h) { return h->w->base; }
bool tg_http_client_gone(const tg_http_t *h) { return h->gone; }

/* A request asks for some twenty Helicone-* headers (retries, cache,
 * limits, fallbacks, ...) and most requests carry none: one pass over the
 * headers, on the first such question, answers all of those at once. */
static bool has_helicone_headers(tg_http_t *h)
{
    if (!h->helicone_known) {
        struct evkeyvalq *hdrs = evhttp_request_get_input_headers(h->req);
        for (struct evkeyval *kv = hdrs->tqh_first; kv && !h->helicone; kv = kv->next.tqe_next)
            h->helicone = !strncasecmp(kv->key, "Helicone-", 9);
        h->helicone_known = true;
    }
    return h->helicone;
}

const char *tg_http_header(tg_http_t *h, const char *name)
{
    if (!strncasecmp(name, "Helicone-", 9) && !has_helicone_headers(h))
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(h->req), name);
}

void tg_http_headers_foreach(const tg_http_t *h,
                             int (*fn)(const char *name, const char *value, void *arg),
                             void *arg)
{
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(h->req);
    for (struct evkeyval *kv = hdrs->tqh_first; kv; kv = kv->next.tqe_next)
        if (fn(kv->key, kv->value, arg))
            return;
}

const char *tg_http_body(tg_http_t *h, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(h->req);
    *len = evbuffer_get_length(in);
    if (!*len)
        return NULL;
    return (const char *)evbuffer_pullup(in, -1);
}

void tg_http_set_events(tg_http_t *h, const tg_http_events_t *ev, void *arg)
{
    h->ev = *ev;
    h->ev_arg = arg;
}

void tg_http_add_header(tg_http_t *h, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(h->req), name, value);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* ---- exchange lifetime ---- */

static void on_client_closed(evutil_socket_t fd, short what, void *arg);
static void on_conn_closed(struct evhttp_connection *evcon, void *arg);
static void worker_maybe_finish(tg_worker_t *w);

/* Drops the flushed ones; true when none is left. A bufferevent that evhttp
 * freed or stopped writing to has nothing more to send. */
static bool all_flushed(tg_worker_t *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->flushing.n; i++) {
        struct bufferevent *bev = w->flushing.v[i];
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 ||
            !(bufferevent_get_enabled(bev) & EV_WRITE))
            bufferevent_decref(bev);
        else
            w->flushing.v[k++] = bev;
    }
    w->flushing.n = k;
    return k == 0;
}


static void exchange_end(tg_http_t *h)
{
    tg_worker_t *w = h->w;
    if (h->close_ev)
        event_free(h->close_ev);
    if (h->evcon) {
        evhttp_connection_set_closecb(h->evcon, NULL, NULL);
        /* The reply is queued, not written: a draining worker must not exit
         * before it leaves, so its bufferevent is held until it has flushed. */
        if (w->draining)
            bev_list_push(&w->flushing, evhttp_connection_get_bufferevent(h->evcon));
    }
    if (h->chunk)
        evbuffer_free(h->chunk);
    if (h->prev)
        h->prev->next = h->next;
    else
        w->live = h->next;
    if (h->next)
        h->next->prev = h->prev;
    atomic_fetch_sub(&w->n_live, 1);
    free(h->path);
    free(h);
    if (w->draining)
        worker_maybe_finish(w);
}

/* The client went away (either detector). Tell the handler once. */
static void client_gone(tg_http_t *h)
{
    if (h->gone)
        return;
    h->gone = true;
    if (h->close_ev)
        event_del(h->close_ev);
    if (h->ev.on_close)
        h->ev.on_close(h->ev_arg);
}

/* EV_CLOSED: evhttp does not read while a request is pending, so only this
 * watcher sees a client that leaves before the reply has started. */
static void on_client_closed(evutil_socket_t fd, short what, void *arg)
{
    tg_http_t *h = arg;
    /* No more keep-alive on this connection once the exchange ends. */
    evhttp_add_header(evhttp_request_get_output_headers(h->req), "Connection", "close");
    client_gone(h);
}

/* evhttp freed the connection (write error mid-stream, timeout): the request
 * object survives, detached, until we end the exchange. */
static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    tg_http_t *h = arg;
    h->evcon = NULL;
    client_gone(h);
}

static void on_output_drained(struct evhttp_connection *evcon, void *arg)
{
    tg_http_t *h = arg;
    if (h->want_drain) {
        h->want_drain = false;
        if (h->ev.on_drain)
            h->ev.on_drain(h->ev_arg);
    }
}

/* Writes what evhttp queued for the client itself, instead of arming the
 * socket for writing and waiting a loop turn for it: that costs an epoll_ctl
 * to add the write interest and another to drop it, per reply and per
 * streamed chunk. evhttp still learns that the output drained the usual
 * way, from its bufferevent's write callback, which on_written runs from
 * the loop (never inside our caller, which may go on using the exchange),
 * in this same loop turn: the write interest is added and dropped within
 * one changelist and never reaches the kernel. What the socket does not
 * take stays queued for the bufferevent, which also meets any write error.
 * Plain sockets only: a TLS bufferevent's output is not the socket's. */
static void write_out(tg_worker_t *w, struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || !evbuffer_get_length(out) || !(bufferevent_get_enabled(bev) & EV_WRITE))
        return;
    if (evbuffer_write(out, fd) <= 0 || evbuffer_get_length(out) > 0)
        return;
    bev_list_push(&w->written, bev);
    if (w->written.n == 1)
        event_active(w->written_ev, EV_TIMEOUT, 0);
}

/* The end of the loop turn in which replies were queued: write each
 * connection's output out (write_out). */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    for (size_t i = 0; i < w->to_write.n; i++) {
        write_out(w, w->to_write.v[i]);
        bufferevent_decref(w->to_write.v[i]);
    }
    w->to_write.n = 0;
    if (w->draining)
        worker_maybe_finish(w);
}

/* Queues the connection for on_flush, which the loop runs after every
 * callback already active in this turn: all the replies and stream chunks
 * that one batch of provider traffic produces leave together, at the end
 * of the turn, rather than one write per callback as each is made. A
 * connection queued twice in a row is queued once; an entry further back
 * may repeat, and write_out passes over an output already written. */
static void write_now(tg_http_t *h)
{
    tg_worker_t *w = h->w;
    if (!h->evcon || w->ssl_ctx)
        return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(h->evcon);
    if (w->to_write.n && w->to_write.v[w->to_write.n - 1] == bev)
        return;
    bev_list_push(&w->to_write, bev);
    if (w->to_write.n == 1)
        event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* Run after on_flush in the same loop turn: a bufferevent whose output is
 * still empty and still wanted written has drained; tell its owner
 * (evhttp). A callback run here may write_now again: flush_ev is then
 * active again and runs later in this same turn. */
static void on_written(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    for (size_t i = 0; i < w->written.n; i++) {
        struct bufferevent *bev = w->written.v[i];
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
            (bufferevent_get_enabled(bev) & EV_WRITE))
            bufferevent_trigger(bev, EV_WRITE, 0);
        bufferevent_decref(bev);
    }
    w->written.n = 0;
}

static void add_standard_headers(tg_http_t *h)
{
    if (h->w->draining)
        tg_http_add_header(h, "Connection", "close");
}

void tg_http_reply(tg_http_t *h, int status, const char *content_type, const void *body,
                   size_t len)
{
    add_standard_headers(h);
    struct evbuffer *buf = evbuffer_new();
    if (content_type)
        tg_http_add_header(h, "Content-Type", content_type);
    if (len)
        evbuffer_add(buf, body, len);
    evhttp_send_reply(h->req, status, reason_phrase(status), buf);
    evbuffer_free(buf);
    write_now(h);
    exchange_end(h);
}

void tg_http_stream_start(tg_http_t *h, int status, const char *content_type)
{
    add_standard_headers(h);
    if (content_type)
        tg_http_add_header(h, "Content-Type", content_type);
    h->streaming = true;
    h->chunk = evbuffer_new();
    evhttp_send_reply_start(h->req, status, reason_phrase(status));
    write_now(h);
}

bool tg_http_stream_write(tg_http_t *h, const void *data, size_t len)
{
    if (h->gone || !h->evcon || !len)
        return false;
    evbuffer_add(h->chunk, data, len);
    evhttp_send_reply_chunk_with_cb(h->req, h->chunk, on_output_drained, h);
    write_now(h);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(h->evcon);
    if (evbuffer_get_length(bufferevent_get_output(bev)) > TG_HTTP_HIGH_WATER) {
        h->want_drain = true;
        return true;
    }
    return false;
}

void tg_http_stream_end(tg_http_t *h)
{
    evhttp_send_reply_end(h->req);
    write_now(h);
    exchange_end(h);
}

/* ---- request entry ---- */

static void on_request(struct evhttp_request *req, void *arg)
{
    tg_worker_t *w = arg;
    tg_http_t *h = tg_xcalloc(1, sizeof *h);
    h->req = req;
    h->w = w;
    h->evcon = evhttp_request_get_connection(req);

    const char *m;
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: m = "GET"; break;
    case EVHTTP_REQ_POST: m = "POST"; break;
    case EVHTTP_REQ_HEAD: m = "HEAD"; break;
    case EVHTTP_REQ_PUT: m = "PUT"; break;
    case EVHTTP_REQ_DELETE: m = "DELETE"; break;
    case EVHTTP_REQ_OPTIONS: m = "OPTIONS"; break;
    case EVHTTP_REQ_PATCH: m = "PATCH"; break;
    default: m = "OTHER"; break;
    }
    strcpy(h->method, m);

    const char *uri = evhttp_request_get_uri(req);
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    /* room for the path, NUL, then the query */
    h->path = tg_xmalloc(strlen(uri) + 2);
    memcpy(h->path, uri, plen);
    h->path[plen] = 0;
    if (q) {
        strcpy(h->path + plen + 1, q + 1);
        h->query = h->path + plen + 1;
    }

    char *peer = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(h->evcon, &peer, &port);
    snprintf(h->ip, sizeof h->ip, "%s", peer ? peer : "");

    h->next = w->live;
    if (w->live)
        w->live->prev = h;
    w->live = h;
    atomic_fetch_add(&w->n_live, 1);

    evhttp_connection_set_closecb(h->evcon, on_conn_closed, h);
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(h->evcon));
    if (fd >= 0) {
        h->close_ev = event_new(w->base, fd, EV_CLOSED, on_client_closed, h);
        event_add(h->close_ev, NULL);
    }
    w->srv->hooks.handle(h, w->wctx);
}

/* ---- TLS ---- */

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    tg_worker_t *w = arg;
    SSL *ssl = SSL_new(w->ssl_ctx);
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *make_ssl_ctx(const tg_config_t *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->ssl_cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->ssl_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        tg_error("server.ssl: cannot use %s / %s: %s", cfg->ssl_cert_file, cfg->ssl_key_file,
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- worker thread ---- */

static void apply_limits(tg_worker_t *w)
{
    struct timeval tv = {.tv_sec = (time_t)(w->cfg->idle_timeout_ms / 1000),
                         .tv_usec = (suseconds_t)(w->cfg->idle_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(w->http, &tv);
    evhttp_set_max_body_size(w->http, w->cfg->max_request_size);
    evhttp_set_max_headers_size(w->http, TG_MAX_HEADERS_SIZE);
}

static void worker_finish_now(tg_worker_t *w)
{
    if (w->drain_tm)
        event_del(w->drain_tm);
    if (w->deadline)
        event_del(w->deadline);
    bev_list_release(&w->flushing);
    event_base_loopbreak(w->base);
}

static void worker_maybe_finish(tg_worker_t *w)
{
    if (!w->live && all_flushed(w))
        worker_finish_now(w);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    worker_maybe_finish(arg);
}

/* shutdown_timeout passed: end what is still running. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    tg_warn("worker %d: shutdown timeout, ending %ld exchange(s) still in flight", w->index,
            (long)atomic_load(&w->n_live));
    /* client_gone makes each handler end its exchange, which unlinks it. */
    tg_http_t *h = w->live;
    while (h) {
        tg_http_t *next = h->next;
        if (!h->gone)
            client_gone(h);
        h = next;
    }
    worker_finish_now(w);
}

static void begin_drain(tg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
    }
    struct timeval tick = {0, 10 * 1000};
    w->drain_tm = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
    event_add(w->drain_tm, &tick);
    int64_t ms = w->srv->shutdown_timeout_ms;
    struct timeval dl = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    w->deadline = evtimer_new(w->base, on_deadline, w);
    evtimer_add(w->deadline, &dl);
    worker_maybe_finish(w);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    tg_config_t *cfg = w->pending_cfg;
    w->pending_cfg = NULL;
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);

    if (cfg) {
        tg_config_t *old = w->cfg;
        w->cfg = cfg;
        apply_limits(w);
        w->srv->hooks.config_changed(w->wctx, cfg);
        tg_config_release(old);
    }
    if (stop)
        begin_drain(w);
}

static void *worker_main(void *arg)
{
    tg_worker_t *w = arg;
    event_base_dispatch(w->base);

    /* Drained: close idle keep-alive connections, then the rest. */
    evhttp_free(w->http);
    w->http = NULL;
    w->srv->hooks.worker_free(w->wctx);
    w->wctx = NULL;
    return NULL;
}

/* SO_REUSEPORT would let a second gateway (same user) share the port
 * silently and take half its connections. A socket without it cannot bind a
 * port that anyone holds, so one probe tells whether the port is free. */
static bool port_in_use(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool busy = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
    close(fd);
    return busy;
}

static int open_listener(const char *host, int port, bool first)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        tg_error("server.host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (first && port_in_use(ai)) {
            tg_error("cannot listen on %s:%d: the address is already in use", host, port);
            break;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        tg_error("cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int worker_setup(tg_server_t *s, tg_worker_t *w, tg_config_t *cfg)
{
    struct event_config *ecfg = event_config_new();
    event_config_require_features(ecfg, EV_FEATURE_EARLY_CLOSE);
    /* Coalesce the read/write/close interest changes evhttp and curl make
     * within one loop iteration into one epoll_ctl each. No fd is dup()ed
     * here, which is the changelist's one caveat. */
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (!w->base) {
        tg_error("no event backend with early-close detection (epoll) is available");
        return -1;
    }
    w->cfg = tg_config_acquire(cfg);
    w->http = evhttp_new(w->base);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, NULL);
    evhttp_set_gencb(w->http, on_request, w);
    apply_limits(w);
    if (cfg->ssl_enabled) {
        w->ssl_ctx = make_ssl_ctx(cfg);
        if (!w->ssl_ctx)
            return -1;
        evhttp_set_bevcb(w->http, make_tls_bev, w);
    }
    w->bound = evhttp_accept_socket_with_handle(w->http, w->listen_fd);
    if (!w->bound) {
        tg_error("worker %d: cannot accept on the listening socket", w->index);
        return -1;
    }
    w->ctl = event_new(w->base, -1, 0, on_control, w);
    w->written_ev = event_new(w->base, -1, 0, on_written, w);
    w->flush_ev = event_new(w->base, -1, 0, on_flush, w);
    pthread_mutex_init(&w->mu, NULL);
    w->wctx = s->hooks.worker_init(w->base, w->index, cfg);
    return w->wctx ? 0 : -1;
}

tg_server_t *tg_server_start(tg_config_t *cfg, const tg_server_hooks_t *hooks)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);

    tg_server_t *s = tg_xcalloc(1, sizeof *s);
    s->hooks = *hooks;
    s->n_workers = cfg->workers > 0 ? cfg->workers : 1;
    s->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    s->workers = tg_xcalloc((size_t)s->n_workers, sizeof *s->workers);

    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->listen_fd = open_listener(cfg->host, cfg->port, i == 0);
        if (w->listen_fd < 0 || worker_setup(s, w, cfg) < 0) {
            /* Nothing has started yet: just exit-path cleanup by the caller. */
            return NULL;
        }
    }

    /* Workers never take the process signals: the main loop handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < s->n_workers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s;
}

void tg_server_reload(tg_server_t *s, tg_config_t *cfg)
{
    s->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        pthread_mutex_lock(&w->mu);
        tg_config_release(w->pending_cfg);
        w->pending_cfg = tg_config_acquire(cfg);
        pthread_mutex_unlock(&w->mu);
        event_active(w->ctl, EV_READ, 0);
    }
}

void tg_server_shutdown(tg_server_t *s)
{
    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_mutex_unlock(&w->mu);
        event_active(w->ctl, EV_READ, 0);
    }
}

void tg_server_join(tg_server_t *s)
{
    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        pthread_join(w->thread, NULL);
        if (w->ctl)
            event_free(w->ctl);
        bev_list_release(&w->written); /* the loop may have ended before on_written */
        bev_list_release(&w->to_write);
        if (w->flush_ev)
            event_free(w->flush_ev);
        if (w->written_ev)
            event_free(w->written_ev);
        if (w->drain_tm)
            event_free(w->drain_tm);
        if (w->deadline)
            event_free(w->deadline);
        event_base_free(w->base);
        if (w->ssl_ctx)
            SSL_CTX_free(w->ssl_ctx);
        tg_config_release(w->cfg);
        tg_config_release(w->pending_cfg);
        pthread_mutex_destroy(&w->mu);
    }
    free(s->workers);
    free(s);
}

long tg_server_inflight(tg_server_t *s)
{
    long n = 0;
    for (int i = 0; i < s->n_workers; i++)
        n += atomic_load(&s->workers[i].n_live);
    return n;
}
