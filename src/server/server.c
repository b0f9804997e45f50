/*
 * server.c — worker threads, SO_REUSEPORT listeners, client connections, and
 * tg_http_t (http.h): HTTP/1.1 on libevent, requests read by request.c
 * (http-parser). A plain connection is a socket with two events and two
 * evbuffers of our own; a TLS one is an OpenSSL bufferevent.
 *
 * Threads: tg_server_start/reload/shutdown/join run on the main thread; all
 * other code here runs on the worker thread that owns the event loop. The
 * main thread talks to a worker only through the worker's control event
 * (event_active is thread-safe once evthread_use_pthreads() ran) and the
 * fields guarded by the worker's mutex (pending_cfg, stop).
 *
 * A connection reads one request, hands it to the handler as an exchange
 * (tg_http_t), and reads the next only once that exchange has ended; bytes
 * a client pipelines meanwhile wait in its input buffer. Reading stays on
 * while an exchange runs, so a client that leaves is seen at once (end of
 * file) and the socket's epoll interest never changes between requests.
 *
 * Output goes to the connection's output buffer and is written at the end
 * of the loop turn (on_flush): every reply and stream chunk one batch of
 * provider traffic produces leaves in one writev per connection. Only what
 * the socket does not take at once arms the write event (and its timeout)
 * until it has drained. TLS bufferevents write for themselves.
 *
 * Connections are bounded: each worker takes an equal share of
 * server.max_connections. At its share, or out of descriptors, it closes
 * its longest-waiting idle connection for the newcomer, or else stops
 * accepting for a while (pause_accepting): never an accept loop that spins.
 * A request being read has deadlines that its bytes do not move
 * (conn_phase): server.header_timeout for the head, server.body_timeout plus
 * server.body_min_rate for the body.
 *
 * Invariants:
 * - a connection is on its worker's `wait` list exactly while it is open
 *   and in CONN_WAITING; its deadline timer is armed only in
 *   CONN_HEAD, CONN_BODY and, before its first request, CONN_WAITING;
 * - every tg_http_t is on its worker's `live` list from creation until the
 *   exchange ends (tg_http_reply / tg_http_stream_end), and is freed there;
 * - a connection has at most one exchange; `c->h` and `h->c` point at each
 *   other while both live; a connection that closes first detaches (h->c =
 *   NULL) and the exchange ends on its own;
 * - a closed connection is freed at the end of its loop turn, never inside
 *   one of its own callbacks;
 * - a worker stops only when it has no exchange and no connection left (or
 *   the shutdown deadline forced every exchange to end).
 */
#include "server/server.h"

#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "server/request.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h> /* evhttp_uridecode only */
#include <event2/listener.h>
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Above this many bytes queued for a client, the stream's source pauses. */
#define TG_HTTP_HIGH_WATER (256 * 1024)
/* Pipelined bytes a connection buffers while an exchange runs before it
 * stops reading (and so stops noticing a client that leaves early). */
#define TG_PIPELINE_MAX (TG_MAX_HEADERS_SIZE + 64 * 1024)

/* While a worker pauses accepting at its share of server.max_connections,
 * how often it looks whether one of its connections went idle (one that
 * closes resumes it at once) or a reload raised the limit. */
#define TG_LIMIT_RECHECK_MS 100
/* Out of descriptors with nothing idle to close: accept again after this,
 * doubling up to TG_BACKOFF_MAX_MS while accept keeps failing. */
#define TG_BACKOFF_MIN_MS 100
#define TG_BACKOFF_MAX_MS 1000
/* At most one log line per worker about connection pressure this often:
 * under attack a pause or an eviction can happen many times a second. */
#define TG_PRESSURE_LOG_MS 10000

typedef struct tg_worker tg_worker_t;
typedef struct tg_conn tg_conn_t;

/* Where a connection is in its current request; it decides the deadline
 * that applies (see conn_phase). */
typedef enum {
    CONN_WAITING, /* no byte of a request yet: idle keep-alive, or new */
    CONN_HEAD,    /* reading a request head: server.header_timeout */
    CONN_BODY,    /* reading its body: server.body_timeout + body_min_rate */
    CONN_ANSWER,  /* request read: its exchange runs, or the server's own answer */
} conn_phase_t;

struct tg_http {
    tg_conn_t *c; /* NULL once the connection is gone */
    tg_worker_t *w;
    tg_request_t req;
    tg_buf_t out_headers; /* "Name: value\r\n" lines for the reply */
    tg_http_events_t ev;
    void *ev_arg;
    const char *path; /* path and query: inside req.head */
    const char *query;
    char ip[INET6_ADDRSTRLEN];
    bool gone;
    bool shutdown_cut; /* ended by the shutdown deadline, the client still there */
    bool want_drain;
    bool chunked;
    bool helicone_known, helicone; /* has_helicone_headers */
    struct tg_http *prev, *next;   /* worker's live list */
};

struct tg_conn {
    tg_worker_t *w;
    bool open;                 /* until conn_close */
    struct bufferevent *bev;   /* TLS: the connection's I/O */
    evutil_socket_t fd;        /* plain socket; -1 with TLS */
    struct event *rev, *wev;   /* plain: reading (always on), writing (while output waits) */
    bool reading, writing;     /* plain: rev added, wev added */
    struct evbuffer *in, *out; /* plain: our own; TLS: the bufferevent's */
    tg_reqparse_t rp;
    tg_http_t *h;  /* the exchange in flight */
    bool closing;  /* close once the output is written */
    bool queued;   /* on w->to_write for on_flush */
    char ip[INET6_ADDRSTRLEN];
    struct tg_conn *prev, *next; /* worker's connection list */
    /* deadlines: the timer is set for the phase's whole span, never
     * restarted by a byte (the idle timeout on reads is, see conn_read) */
    conn_phase_t phase;
    bool served;            /* a request was read: a later head's time runs from its first byte */
    int64_t head_start_ms;  /* monotonic: the head's time began (the first one's: acceptance) */
    int64_t body_start_ms;  /* monotonic: the head was read */
    struct event *deadline; /* armed in CONN_HEAD and CONN_BODY, and for a new connection */
    /* worker's list of connections in CONN_WAITING, longest waiting first:
     * the ones closed to make room under descriptor pressure */
    struct tg_conn *wait_prev, *wait_next;
    bool waiting;
};

/* Connections with output, a close or a pipelined request to see to at the
 * end of the loop turn. */
typedef struct {
    tg_conn_t **v;
    size_t n, cap;
} conn_list_t;

struct tg_worker {
    tg_server_t *srv;
    int index;
    int listen_fd;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *ctl;      /* activated by the main thread */
    struct event *drain_tm; /* while draining: checks for the end */
    struct event *deadline; /* while draining: forces the end */
    void *wctx;
    tg_config_t *cfg; /* this worker's current config */
    SSL_CTX *ssl_ctx;
    struct timeval idle_tv;
    size_t max_body;
    tg_http_t *live;
    atomic_long n_live;
    tg_conn_t *conns;
    bool draining;
    bool cut; /* the shutdown deadline passed: last bytes are being written */
    conn_list_t to_write;
    struct event *flush_ev; /* runs on_flush at the end of the loop turn */
    time_t date_sec;        /* the second date_line was made for */
    char date_line[64];     /* "Date: ...\r\n" */
    atomic_long n_conns;              /* open client connections (read by the metrics) */
    tg_conn_t *wait_head, *wait_tail; /* connections in CONN_WAITING, oldest first */
    /* accepting: paused at the connection limit or out of descriptors */
    enum { ACCEPTING, PAUSED_LIMIT, PAUSED_DESCRIPTORS } accept_state;
    struct event *resume_tm; /* while paused: look again / accept again */
    struct event *shed_ev;   /* another worker ran out of descriptors: close an idle connection */
    atomic_bool shed_asked;  /* shed_ev is active and not yet run */
    int64_t backoff_ms;      /* the last descriptor pause; 0 once an accept succeeds */
    int64_t pressure_log_ms; /* when the last pressure line was logged */
    long pressure_quiet;     /* pressure events since, not logged */

    pthread_mutex_t mu; /* guards pending_cfg and stop */
    tg_config_t *pending_cfg;
    bool stop;
};

struct tg_server {
    tg_server_hooks_t hooks;
    tg_worker_t *workers;
    int n_workers;
    int64_t shutdown_timeout_ms;
    /* server.max_connections, or what the descriptor limit leaves: for the
     * whole process, each worker taking an equal share (conn_share) */
    atomic_long max_conns;
};

/* A worker's shard of the gateway's metrics (metrics.h). */
#define SHARD(w) tg_metrics_shard((w)->srv->hooks.metrics, (w)->index)

/* ---- tg_http_t accessors ---- */

const char *tg_http_method(const tg_http_t *h) { return h->req.method; }
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

bool tg_http_shutdown_cut(const tg_http_t *h) { return h->shutdown_cut; }

/* A request asks for some twenty Helicone-* headers (retries, cache,
 * limits, fallbacks, ...) and most requests carry none: one pass over the
 * headers, on the first such question, answers all of those at once. */
static bool has_helicone_headers(tg_http_t *h)
{
    if (!h->helicone_known) {
        for (size_t i = 0; i < h->req.n_headers && !h->helicone; i++)
            h->helicone = !strncasecmp(h->req.names[i], "Helicone-", 9);
        h->helicone_known = true;
    }
    return h->helicone;
}

const char *tg_http_header(tg_http_t *h, const char *name)
{
    if (!strncasecmp(name, "Helicone-", 9) && !has_helicone_headers(h))
        return NULL;
    for (size_t i = 0; i < h->req.n_headers; i++)
        if (!strcasecmp(h->req.names[i], name))
            return h->req.values[i];
    return NULL;
}

void tg_http_headers_foreach(const tg_http_t *h,
                             int (*fn)(const char *name, const char *value, void *arg),
                             void *arg)
{
    for (size_t i = 0; i < h->req.n_headers; i++)
        if (fn(h->req.names[i], h->req.values[i], arg))
            return;
}

const char *tg_http_body(tg_http_t *h, size_t *len)
{
    *len = h->req.body_len;
    return h->req.body;
}

void tg_http_set_events(tg_http_t *h, const tg_http_events_t *ev, void *arg)
{
    h->ev = *ev;
    h->ev_arg = arg;
}

/* The server writes the framing headers itself. */
static bool framing_header(const char *name)
{
    return !strcasecmp(name, "Content-Length") || !strcasecmp(name, "Transfer-Encoding") ||
           !strcasecmp(name, "Connection") || !strcasecmp(name, "Date");
}

void tg_http_add_header(tg_http_t *h, const char *name, const char *value)
{
    /* A name is a token; neither may break the header block (a provider's
     * header passed on must not be able to add lines of its own). */
    size_t nl = strlen(name);
    if (!nl || strcspn(name, ":\r\n \t") != nl || value[strcspn(value, "\r\n")] ||
        framing_header(name))
        return;
    tg_buf_append(&h->out_headers, name, nl);
    tg_buf_append(&h->out_headers, ": ", 2);
    tg_buf_puts(&h->out_headers, value);
    tg_buf_append(&h->out_headers, "\r\n", 2);
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

/* ---- connections ---- */

static void worker_maybe_finish(tg_worker_t *w);
static void parse_input(tg_conn_t *c);

/* Sees to c at the end of this loop turn (on_flush). */
static void queue_conn(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    if (c->queued)
        return;
    c->queued = true;
    if (w->to_write.n == w->to_write.cap) {
        w->to_write.cap = w->to_write.cap ? w->to_write.cap * 2 : 16;
        w->to_write.v = tg_xrealloc(w->to_write.v, w->to_write.cap * sizeof *w->to_write.v);
    }
    w->to_write.v[w->to_write.n++] = c;
    if (w->to_write.n == 1)
        event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* The client went away (end of file, error, timeout). Tell the handler once. */
static void client_gone(tg_http_t *h)
{
    if (h->gone)
        return;
    h->gone = true;
    if (h->ev.on_close)
        h->ev.on_close(h->ev_arg);
}

/* ---- connection limits ---- */

long tg_server_default_max_connections(long nofile, int workers)
{
    /* A fixed reserve for what is not a client: standard streams, each
     * worker's listening socket, event loop and curl's wake-up pair, the
     * store's files, the log, the dashboard, Redis (~27 with two workers).
     * Of the rest, half for clients and half for the provider connection
     * each of them may need at the same time. */
    long reserve = 32 + 8L * (workers > 0 ? workers : 1);
    long n = (nofile - reserve) / 2;
    return n > 0 ? n : 1;
}

/* This worker's part of server.max_connections. An equal share, as
 * nginx's worker_connections: a worker decides alone, from its own
 * connections, without waiting on another thread; SO_REUSEPORT spreads
 * clients evenly enough over the workers. At least one. */
static long conn_share(const tg_worker_t *w)
{
    long share = atomic_load(&w->srv->max_conns) / w->srv->n_workers;
    return share > 0 ? share : 1;
}

/* One warning line per episode of pressure (a pause, an eviction), at most
 * one per TG_PRESSURE_LOG_MS per worker, saying how many were not logged. */
static void pressure_note(tg_worker_t *w, const char *what)
{
    int64_t now = tg_mono_ms();
    if (w->pressure_log_ms && now - w->pressure_log_ms < TG_PRESSURE_LOG_MS) {
        w->pressure_quiet++;
        return;
    }
    tg_warn("worker %d: %s (its connections: %ld, its share of server.max_connections: %ld; "
            "%ld more such event(s) since the last line)",
            w->index, what, atomic_load(&w->n_conns), conn_share(w), w->pressure_quiet);
    w->pressure_log_ms = now;
    w->pressure_quiet = 0;
}

static void waiting_add(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    if (c->waiting)
        return;
    c->waiting = true;
    c->wait_next = NULL;
    c->wait_prev = w->wait_tail;
    if (w->wait_tail)
        w->wait_tail->wait_next = c;
    else
        w->wait_head = c;
    w->wait_tail = c;
}

static void waiting_remove(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    if (!c->waiting)
        return;
    c->waiting = false;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        w->wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        w->wait_tail = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
}

static void conn_close(tg_conn_t *c);

/* Closes the connection that has waited longest for a request (an idle
 * keep-alive one, or a new one that has sent nothing), to make room for a
 * new client. False when there is none. */
static bool evict_oldest(tg_worker_t *w)
{
    tg_conn_t *c = w->wait_head;
    if (!c)
        return false;
    tg_metrics_connection_dropped(SHARD(w), "evicted");
    pressure_note(w, "too few descriptors or connections left: closing idle connections, "
                     "longest idle first");
    conn_close(c);
    return true;
}

/* Stops accepting for a while: the listening socket stays readable while
 * clients wait in its backlog, and accepting on would only spin. */
static void pause_accepting(tg_worker_t *w, bool out_of_descriptors)
{
    if (!w->listener || w->accept_state != ACCEPTING)
        return;
    evconnlistener_disable(w->listener);
    int64_t ms = TG_LIMIT_RECHECK_MS;
    if (out_of_descriptors) {
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : TG_BACKOFF_MIN_MS;
        if (w->backoff_ms > TG_BACKOFF_MAX_MS)
            w->backoff_ms = TG_BACKOFF_MAX_MS;
        ms = w->backoff_ms;
        w->accept_state = PAUSED_DESCRIPTORS;
        tg_metrics_accept_paused(SHARD(w), "descriptors");
        pressure_note(w, "out of file descriptors with no idle connection to close: not "
                         "accepting for a moment");
    } else {
        w->accept_state = PAUSED_LIMIT;
        tg_metrics_accept_paused(SHARD(w), "limit");
        pressure_note(w, "server.max_connections reached with no idle connection to close: not "
                         "accepting until one closes");
    }
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(w->resume_tm, &tv);
}

static void resume_accepting(tg_worker_t *w)
{
    if (w->accept_state == ACCEPTING)
        return;
    w->accept_state = ACCEPTING;
    evtimer_del(w->resume_tm);
    if (w->listener)
        evconnlistener_enable(w->listener);
}

/* A paused worker's timer: out of descriptors, try again; at the limit,
 * go on once there is room or an idle connection to close for it. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    if (w->accept_state == PAUSED_LIMIT && atomic_load(&w->n_conns) >= conn_share(w) &&
        !w->wait_head) {
        struct timeval tv = {0, TG_LIMIT_RECHECK_MS * 1000};
        evtimer_add(w->resume_tm, &tv);
        return;
    }
    resume_accepting(w);
}

/* Another worker is out of descriptors and has no idle connection of its
 * own to close: descriptors are the process's, so one of ours frees one. */
static void on_shed(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    atomic_store(&w->shed_asked, false);
    evict_oldest(w);
}

/* accept() failed with something other than "try again" (libevent would
 * log each one itself, and retry at once: a flood). */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    tg_worker_t *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        if (evict_oldest(w))
            return; /* the descriptor it freed takes the next client */
        /* Nothing of ours to close: each other worker closes one (once per
         * request outstanding), and we try again after the pause. */
        tg_server_t *s = w->srv;
        for (int i = 0; i < s->n_workers; i++) {
            tg_worker_t *o = &s->workers[i];
            if (o != w && o->shed_ev && !atomic_exchange(&o->shed_asked, true))
                event_active(o->shed_ev, EV_READ, 0);
        }
        pause_accepting(w, true);
        return;
    }
    pressure_note(w, strerror(err));
    pause_accepting(w, true);
}

/* ---- deadlines ---- */

int64_t tg_server_body_deadline_ms(int64_t start_ms, int64_t timeout_ms, int64_t min_rate,
                                   uint64_t received)
{
    int64_t extra = min_rate > 0 ? (int64_t)(received * 1000 / (uint64_t)min_rate) : 0;
    return start_ms + timeout_ms + extra;
}

static void arm_deadline(tg_conn_t *c, int64_t at_ms)
{
    int64_t left = at_ms - tg_mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000),
                         .tv_usec = (suseconds_t)(left % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
}

/* Moves c to `phase` and sets the deadline that applies there. A head's
 * and a body's deadline run from the start of the phase and are not moved
 * by the bytes that arrive (a client sending a byte now and then cannot
 * keep a connection forever); idle time between requests is the read
 * event's idle timeout (conn_read). */
static void conn_phase(tg_conn_t *c, conn_phase_t phase)
{
    const tg_config_t *cfg = c->w->cfg;
    c->phase = phase;
    switch (phase) {
    case CONN_WAITING:
        waiting_add(c);
        if (!c->served) { /* new: the first head's time runs from now */
            c->head_start_ms = tg_mono_ms();
            arm_deadline(c, c->head_start_ms + cfg->header_timeout_ms);
        }
        break;
    case CONN_HEAD:
        waiting_remove(c);
        if (c->served) {
            c->head_start_ms = tg_mono_ms();
            arm_deadline(c, c->head_start_ms + cfg->header_timeout_ms);
        }
        break;
    case CONN_BODY:
        /* The base allowance first; when it passes, on_conn_deadline adds the
         * time the bytes received since have earned. */
        c->body_start_ms = tg_mono_ms();
        arm_deadline(c, c->body_start_ms + cfg->body_timeout_ms);
        break;
    case CONN_ANSWER:
        waiting_remove(c);
        evtimer_del(c->deadline);
        break;
    }
}

static void conn_fail(tg_conn_t *c, int status, const char *msg);

/* A head or body deadline passed. */
static void on_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    tg_conn_t *c = arg;
    const tg_config_t *cfg = c->w->cfg;
    if (!c->open || c->closing) {
        conn_close(c); /* its last answer is not being read either */
        return;
    }
    switch (c->phase) {
    case CONN_WAITING: /* new and silent: nothing to answer */
        tg_metrics_connection_dropped(SHARD(c->w), "header_timeout");
        conn_close(c);
        break;
    case CONN_HEAD:
        tg_metrics_connection_dropped(SHARD(c->w), "header_timeout");
        conn_fail(c, 408, "the request head took longer than server.header_timeout");
        break;
    case CONN_BODY: {
        int64_t at = tg_server_body_deadline_ms(c->body_start_ms, cfg->body_timeout_ms,
                                                cfg->body_min_rate, c->rp.body.len);
        if (at > tg_mono_ms()) {
            arm_deadline(c, at); /* the bytes so far earned more time */
            break;
        }
        tg_metrics_connection_dropped(SHARD(c->w), "body_timeout");
        conn_fail(c, 408, "the request body arrived slower than server.body_timeout and "
                          "server.body_min_rate allow");
        break;
    }
    case CONN_ANSWER: break; /* not armed then */
    }
}

/* Closes the socket now; the memory goes at the end of the turn. */
static void conn_close(tg_conn_t *c)
{
    if (!c->open)
        return;
    c->open = false;
    tg_worker_t *w = c->w;
    waiting_remove(c);
    evtimer_del(c->deadline);
    long open = atomic_fetch_sub(&w->n_conns, 1) - 1;
    if (w->accept_state == PAUSED_LIMIT && open < conn_share(w))
        resume_accepting(w);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->in = c->out = NULL;
    } else {
        event_del(c->rev);
        event_del(c->wev);
        evutil_closesocket(c->fd);
        c->fd = -1;
    }
    tg_http_t *h = c->h;
    if (h) {
        c->h = NULL;
        h->c = NULL;
        client_gone(h);
    }
    queue_conn(c);
}

static void conn_free(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->deadline);
    if (c->rev) { /* plain */
        event_free(c->rev);
        event_free(c->wev);
        evbuffer_free(c->in);
        evbuffer_free(c->out);
    }
    tg_reqparse_free(&c->rp);
    free(c);
}

static struct evbuffer *conn_out(tg_conn_t *c) { return c->out; }

/* Reading on or off; `timed`: under server.idle_timeout (between requests,
 * not while an exchange waits for its provider). */
static void conn_read(tg_conn_t *c, bool on, bool timed)
{
    const struct timeval *tv = timed ? &c->w->idle_tv : NULL;
    if (c->bev) {
        bufferevent_set_timeouts(c->bev, tv, &c->w->idle_tv);
        if (on)
            bufferevent_enable(c->bev, EV_READ);
        else
            bufferevent_disable(c->bev, EV_READ);
    } else if (on) {
        /* event_add with no timeout would keep an earlier one */
        if (c->reading && !tv)
            event_remove_timer(c->rev);
        else
            event_add(c->rev, tv); /* already added: only the timeout changes */
        c->reading = true;
    } else if (c->reading) {
        event_del(c->rev);
        c->reading = false;
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
static bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

/* Appends "HTTP/1.x status reason" and the Date line. Formatted by hand: a
 * printf call costs more than the rest of the head. */
static void put_status_line(tg_worker_t *w, tg_buf_t *head, bool http10, int status)
{
    tg_buf_puts(head, http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    tg_buf_put_i64(head, status);
    tg_buf_append(head, " ", 1);
    tg_buf_puts(head, reason_phrase(status));
    tg_buf_append(head, "\r\n", 2);
    tg_buf_puts(head, date_line(w));
}

/* An answer the connection gives on its own (a request it could not read):
 * an OpenAI-shaped error, and the connection closes after it. */
/* The error's code for a request the connection itself refuses: a string,
 * as every other error code (it was the number). */
static const char *refusal_code(int status)
{
    switch (status) {
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "request_too_large";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 505: return "http_version_not_supported";
    default: return "invalid_request";
    }
}

static void conn_fail(tg_conn_t *c, int status, const char *msg)
{
    tg_buf_t b = {0};
    put_status_line(c->w, &b, false, status);
    tg_buf_puts(&b, "Content-Type: application/json\r\nConnection: close\r\n");
    tg_buf_t body = {0};
    tg_buf_puts(&body, "{\"error\":{\"message\":\"");
    tg_buf_json_escape(&body, msg, strlen(msg));
    tg_buf_printf(&body, "\",\"type\":\"invalid_request_error\",\"code\":\"%s\"}}",
                  refusal_code(status));
    tg_buf_printf(&b, "Content-Length: %zu\r\n\r\n", body.len);
    tg_buf_append(&b, body.data, body.len);
    evbuffer_add(conn_out(c), b.data, b.len);
    tg_buf_free(&b);
    tg_buf_free(&body);
    c->closing = true;
    conn_phase(c, CONN_ANSWER);
    conn_read(c, false, false);
    queue_conn(c);
}

/* Makes the exchange for a request that has been read whole. */
static void dispatch(tg_conn_t *c)
{
    tg_worker_t *w = c->w;
    tg_http_t *h = tg_xcalloc(1, sizeof *h);
    h->c = c;
    h->w = w;
    tg_reqparse_take(&c->rp, &h->req);
    memcpy(h->ip, c->ip, sizeof h->ip);

    /* The target is the first string of the request's own buffer: cut it
     * into path and query there. */
    h->path = h->req.head;
    char *q = strchr(h->path, '?');
    if (q) {
        *q = 0;
        h->query = q + 1;
    }

    h->next = w->live;
    if (w->live)
        w->live->prev = h;
    w->live = h;
    atomic_fetch_add(&w->n_live, 1);
    c->h = h;
    c->served = true;
    conn_phase(c, CONN_ANSWER);
    /* No idle timeout while the exchange runs: a provider may think for
     * longer. A client that stops taking output still times out. */
    conn_read(c, true, false);
    w->srv->hooks.handle(h, w->wctx);
}

/* Reads what the input holds, request after request, until an exchange is
 * in flight, the input is used up or the connection fails. */
static void parse_input(tg_conn_t *c)
{
    while (c->open && !c->h && !c->closing) {
        struct evbuffer *in = c->in;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || !v.iov_len)
            return;
        if (c->phase == CONN_WAITING)
            conn_phase(c, CONN_HEAD); /* the first byte of a request */
        size_t n = tg_reqparse_feed(&c->rp, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        if (c->rp.fail_status) {
            conn_fail(c, c->rp.fail_status, c->rp.fail_msg);
            return;
        }
        if (c->rp.expect_continue) {
            c->rp.expect_continue = false;
            evbuffer_add(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
            queue_conn(c);
        }
        if (c->rp.done)
            dispatch(c); /* may end at once: then the loop reads on */
        else if (c->rp.headers_done && c->phase == CONN_HEAD)
            conn_phase(c, CONN_BODY);
        else if (n < v.iov_len)
            return; /* cannot happen: the parser stops only at an end or a failure */
    }
}

/* New bytes in c's input. */
static void on_input(tg_conn_t *c)
{
    if (!c->h) {
        parse_input(c);
        return;
    }
    /* Pipelined bytes while an exchange runs: kept for later, up to a
     * bound. Past it the client is no longer read, so a very eager pipeliner
     * that leaves is noticed only when its answer cannot be written. */
    if (evbuffer_get_length(c->in) > TG_PIPELINE_MAX)
        conn_read(c, false, false);
}

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* A plain socket is readable (or its idle time ran out). Reads with readv
 * into the input buffer: a first read of up to ~4 KiB (one small buffer
 * chain, enough for most requests), then up to 64 KiB at a time while the
 * reads come back full. libevent's own socket reads cost an
 * ioctl(FIONREAD) each and never take more than 4 KiB. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    tg_conn_t *c = arg;
    if (what & EV_TIMEOUT) {
        conn_close(c); /* idle between requests, or a request that stopped coming */
        return;
    }
    size_t want = 4096 - 64;
    for (int round = 0; round < 8; round++) {
        struct evbuffer_iovec v[2];
        int nv = evbuffer_reserve_space(c->in, (ev_ssize_t)want, v, 2);
        if (nv <= 0)
            abort(); /* out of memory */
        struct iovec iov[2];
        size_t space = 0;
        for (int k = 0; k < nv; k++) {
            iov[k].iov_base = v[k].iov_base;
            iov[k].iov_len = v[k].iov_len;
            space += v[k].iov_len;
        }
        ssize_t n = readv(fd, iov, nv);
        if (n <= 0) {
            if (n < 0 && would_block())
                break;
            conn_close(c); /* end of file or an error: the client is gone */
            return;
        }
        size_t left = (size_t)n;
        int used = 0;
        while (left) {
            if (v[used].iov_len > left)
                v[used].iov_len = left;
            left -= v[used].iov_len;
            used++;
        }
        evbuffer_commit_space(c->in, v, used);
        if ((size_t)n < space)
            break; /* the socket has no more for now */
        want = 64 * 1024;
    }
    on_input(c);
}

/* Client bytes are about to leave: the handler's before_write (the
 * store's journal) goes first, so a record is in the kernel before its
 * client has the last byte of its answer. TLS bufferevents write on their
 * own, without this hook (docs/observability.md). */
static void before_write(tg_worker_t *w)
{
    if (w->srv->hooks.before_write)
        w->srv->hooks.before_write(w->wctx);
}

/* A plain socket with output waiting can take more (or the client stopped
 * reading for longer than server.idle_timeout). */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    tg_conn_t *c = arg;
    if (what & EV_TIMEOUT) {
        conn_close(c);
        return;
    }
    before_write(c->w);
    if (evbuffer_write(c->out, fd) < 0 && !would_block()) {
        conn_close(c);
        return;
    }
    if (!evbuffer_get_length(c->out)) {
        event_del(c->wev);
        c->writing = false;
        queue_conn(c); /* a close, a drain or a pipelined request to see to */
    }
}

/* TLS: the bufferevent read, its output drained (low-water mark 0), or the
 * connection ended. */
static void on_tls_read(struct bufferevent *bev, void *arg) { on_input(arg); }
static void on_tls_written(struct bufferevent *bev, void *arg) { queue_conn(arg); }
static void on_tls_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_close(arg);
}

/* Writes c's output at once, without waiting a loop turn for the socket to
 * be reported writable: that would cost an epoll_ctl to add the write
 * interest and another to drop it, per reply. What the socket does not
 * take stays queued for on_writable. A TLS bufferevent writes for itself. */
static void write_out(tg_conn_t *c)
{
    if (c->bev || c->writing || !evbuffer_get_length(c->out))
        return;
    before_write(c->w);
    if (evbuffer_write(c->out, c->fd) < 0 && !would_block()) {
        conn_close(c);
        return;
    }
    if (evbuffer_get_length(c->out)) {
        event_add(c->wev, &c->w->idle_tv);
        c->writing = true;
    }
}

/* The end of the loop turn: write each queued connection's output; then
 * free the closed ones, close the finished ones, tell a paused stream its
 * output drained, and read a pipelined request that waited. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    /* Callbacks below may queue more (into a list that may grow): index. */
    for (size_t i = 0; i < w->to_write.n; i++) {
        tg_conn_t *c = w->to_write.v[i];
        c->queued = false;
        if (c->open)
            write_out(c);
        if (!c->open) {
            if (!c->queued) /* else closed just now: its later entry frees it */
                conn_free(c);
            continue;
        }
        bool pending = evbuffer_get_length(conn_out(c)) > 0;
        if (pending)
            continue; /* on_writable (on_tls_written) queues it again once drained */
        tg_http_t *h = c->h;
        if (h && h->want_drain) {
            h->want_drain = false;
            if (h->ev.on_drain)
                h->ev.on_drain(h->ev_arg);
        } else if (c->closing) {
            conn_close(c); /* queues it again: freed further down this list */
        } else if (!h && evbuffer_get_length(c->in)) {
            parse_input(c);
        }
    }
    w->to_write.n = 0;
    if (w->draining)
        worker_maybe_finish(w);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    tg_worker_t *w = arg;
    w->backoff_ms = 0;
    /* Over the limit, an idle connection makes room for this one; without
     * one, this one is closed and accepting pauses. */
    long open = atomic_fetch_add(&w->n_conns, 1) + 1;
    if (open > conn_share(w) && !evict_oldest(w)) {
        evutil_closesocket(fd);
        atomic_fetch_sub(&w->n_conns, 1);
        tg_metrics_connection_dropped(SHARD(w), "refused");
        pause_accepting(w, false);
        return;
    }
    tg_conn_t *c = tg_xcalloc(1, sizeof *c);
    c->w = w;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->ip, sizeof c->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->ip, sizeof c->ip);
    /* Stream chunks are small writes that must leave at once. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = -1;
    if (w->ssl_ctx) {
        SSL *ssl = SSL_new(w->ssl_ctx);
        c->bev = ssl ? bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev) {
            evutil_closesocket(fd);
            atomic_fetch_sub(&w->n_conns, 1);
            free(c);
            return;
        }
        c->in = bufferevent_get_input(c->bev);
        c->out = bufferevent_get_output(c->bev);
        bufferevent_setcb(c->bev, on_tls_read, on_tls_written, on_tls_event, c);
        bufferevent_set_timeouts(c->bev, &w->idle_tv, &w->idle_tv);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        c->fd = fd;
        c->in = evbuffer_new();
        c->out = evbuffer_new();
        c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
        c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
        if (!c->in || !c->out || !c->rev || !c->wev)
            abort(); /* out of memory */
        event_add(c->rev, &w->idle_tv);
        c->reading = true;
    }
    c->open = true;
    tg_reqparse_init(&c->rp, w->max_body);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    c->deadline = evtimer_new(w->base, on_conn_deadline, c);
    if (!c->deadline)
        abort(); /* out of memory */
    conn_phase(c, CONN_WAITING);
    /* At the limit now, and nothing older to close for the next client:
     * leave the next ones in the backlog until a connection closes. */
    if (open >= conn_share(w) && w->wait_head == c)
        pause_accepting(w, false);
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
            conn_read(c, true, true); /* also if on_input stopped it */
            conn_phase(c, CONN_WAITING);
        }
        queue_conn(c);
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
        worker_maybe_finish(w);
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
    put_status_line(w, head, old, status);
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

void tg_http_reply(tg_http_t *h, int status, const char *content_type, const void *body,
                   size_t len)
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

void tg_http_stream_start(tg_http_t *h, int status, const char *content_type)
{
    if (!h->c)
        return;
    tg_buf_t out = {0};
    write_head(h, &out, status, content_type, -1);
    evbuffer_add(conn_out(h->c), out.data, out.len);
    tg_buf_free(&out);
    queue_conn(h->c);
}

bool tg_http_stream_write(tg_http_t *h, const void *data, size_t len)
{
    if (h->gone || !h->c || !len)
        return false;
    struct evbuffer *out = conn_out(h->c);
    if (h->chunked) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    queue_conn(h->c);
    if (evbuffer_get_length(out) > TG_HTTP_HIGH_WATER) {
        h->want_drain = true;
        return true;
    }
    return false;
}

void tg_http_stream_end(tg_http_t *h)
{
    if (h->c && h->chunked)
        evbuffer_add(conn_out(h->c), "0\r\n\r\n", 5);
    exchange_end(h);
}

void tg_http_stream_abort(tg_http_t *h)
{
    h->req.keep_alive = false; /* what is queued is written, then the close */
    exchange_end(h);
}

/* ---- TLS ---- */

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
    w->idle_tv.tv_sec = (time_t)(w->cfg->idle_timeout_ms / 1000);
    w->idle_tv.tv_usec = (suseconds_t)(w->cfg->idle_timeout_ms % 1000) * 1000;
    w->max_body = (size_t)w->cfg->max_request_size;
}

static void worker_finish_now(tg_worker_t *w)
{
    if (w->drain_tm)
        event_del(w->drain_tm);
    if (w->deadline)
        event_del(w->deadline);
    event_base_loopbreak(w->base);
}

static void worker_maybe_finish(tg_worker_t *w)
{
    if (!w->live && !w->conns)
        worker_finish_now(w);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    worker_maybe_finish(arg);
}

/* Longest wait, after shutdown_timeout, for the last bytes of the exchanges
 * it ended (an error event, the chunked end) to be written. */
#define TG_SHUTDOWN_GRACE_MS 500

/* shutdown_timeout passed: end what is still running. Each handler is told
 * through on_close, as if its client had left, but the client is still
 * there (tg_http_shutdown_cut): the handler may still write, e.g. tell a
 * stream's client in its dialect, before it ends the exchange. Those last
 * bytes get TG_SHUTDOWN_GRACE_MS to leave; then the worker stops. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    if (w->cut) { /* the grace is over */
        worker_finish_now(w);
        return;
    }
    tg_warn("worker %d: shutdown timeout, ending %ld exchange(s) still in flight", w->index,
            (long)atomic_load(&w->n_live));
    w->cut = true;
    tg_http_t *h = w->live;
    while (h) {
        tg_http_t *next = h->next; /* the handler ends h, which unlinks it */
        if (!h->gone && h->ev.on_close) {
            h->shutdown_cut = true;
            h->ev.on_close(h->ev_arg);
        } else if (!h->gone) {
            client_gone(h);
        }
        h = next;
    }
    struct timeval grace = {0, TG_SHUTDOWN_GRACE_MS * 1000};
    evtimer_add(w->deadline, &grace);
    worker_maybe_finish(w);
}

static void begin_drain(tg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    if (w->listener) {
        evconnlistener_free(w->listener); /* closes the listening socket */
        w->listener = NULL;
    }
    evtimer_del(w->resume_tm);
    /* Connections between requests close now, or once their last answer
     * is written; the others after their exchange (exchange_end). */
    for (tg_conn_t *c = w->conns; c; c = c->next)
        if (!c->h && c->open) {
            c->closing = true;
            queue_conn(c);
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

    /* Stopped: close what is left (the deadline passed, or idle ones). */
    if (w->listener) {
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    while (w->conns) {
        tg_conn_t *c = w->conns;
        if (c->h) {
            c->h->c = NULL;
            c->h = NULL;
        }
        conn_close(c);
        conn_free(c);
    }
    w->to_write.n = 0;
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
    /* Coalesce the read/write interest changes the connections and curl
     * make within one loop iteration into one epoll_ctl each. No fd is
     * dup()ed here, which is the changelist's one caveat. */
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (!w->base) {
        tg_error("worker %d: cannot make an event loop", w->index);
        return -1;
    }
    w->cfg = tg_config_acquire(cfg);
    apply_limits(w);
    if (cfg->ssl_enabled) {
        w->ssl_ctx = make_ssl_ctx(cfg);
        if (!w->ssl_ctx)
            return -1;
    }
    /* backlog -1: the socket already listens (open_listener) */
    w->listener = evconnlistener_new(w->base, on_accept, w,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                     w->listen_fd);
    if (!w->listener) {
        tg_error("worker %d: cannot accept on the listening socket", w->index);
        return -1;
    }
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    w->resume_tm = evtimer_new(w->base, on_resume, w);
    w->shed_ev = event_new(w->base, -1, 0, on_shed, w);
    w->ctl = event_new(w->base, -1, 0, on_control, w);
    w->flush_ev = event_new(w->base, -1, 0, on_flush, w);
    pthread_mutex_init(&w->mu, NULL);
    w->wctx = s->hooks.worker_init(w->base, w->index, cfg, s->hooks.arg);
    return w->wctx ? 0 : -1;
}

static long connections_open(void *arg)
{
    tg_server_t *s = arg;
    long n = 0;
    for (int i = 0; i < s->n_workers; i++)
        n += atomic_load(&s->workers[i].n_conns);
    return n;
}

/* server.max_connections, or what the descriptor limit leaves for clients. */
static void set_max_connections(tg_server_t *s, const tg_config_t *cfg)
{
    struct rlimit rl;
    long nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                      ? (long)rl.rlim_cur
                      : 1024 * 1024;
    long fit = tg_server_default_max_connections(nofile, s->n_workers);
    long max = cfg->max_connections ? (long)cfg->max_connections : fit;
    if (max != atomic_load(&s->max_conns))
        tg_info("server: up to %ld client connections, %ld per worker (descriptor limit %ld)",
                max, max / s->n_workers > 0 ? max / s->n_workers : 1, nofile);
    if (cfg->max_connections > fit)
        tg_warn("server.max_connections %ld is more than the descriptor limit (%ld) leaves for "
                "clients (%ld): past that, accepts fail and idle connections are closed",
                max, nofile, fit);
    atomic_store(&s->max_conns, max);
}

/* What a worker holds besides its connections, its listener and the
 * pipeline's state; after its thread ended, or when it never started. */
static void free_worker_parts(tg_worker_t *w)
{
    if (w->ctl)
        event_free(w->ctl);
    if (w->resume_tm)
        event_free(w->resume_tm);
    if (w->shed_ev)
        event_free(w->shed_ev);
    free(w->to_write.v);
    if (w->flush_ev)
        event_free(w->flush_ev);
    if (w->drain_tm)
        event_free(w->drain_tm);
    if (w->deadline)
        event_free(w->deadline);
    if (w->base)
        event_base_free(w->base);
    if (w->ssl_ctx)
        SSL_CTX_free(w->ssl_ctx);
    tg_config_release(w->cfg);
    tg_config_release(w->pending_cfg);
    pthread_mutex_destroy(&w->mu);
}

/* A start that failed part-way (a port in use, a bad certificate): frees
 * what worker_setup made for each worker it reached. No thread runs yet. */
static void free_unstarted(tg_server_t *s)
{
    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        if (w->wctx)
            s->hooks.worker_free(w->wctx);
        if (w->listener)
            evconnlistener_free(w->listener); /* closes listen_fd */
        else if (w->listen_fd > 0)
            close(w->listen_fd);
        free_worker_parts(w);
    }
    free(s->workers);
    free(s);
}

tg_server_t *tg_server_start(tg_config_t *cfg, const tg_server_hooks_t *hooks)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    http_parser_set_max_header_size(TG_MAX_HEADERS_SIZE + 1024); /* request.c counts exactly */

    tg_server_t *s = tg_xcalloc(1, sizeof *s);
    s->hooks = *hooks;
    s->n_workers = cfg->workers > 0 ? cfg->workers : 1;
    s->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    set_max_connections(s, cfg);
    s->workers = tg_xcalloc((size_t)s->n_workers, sizeof *s->workers);

    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->listen_fd = open_listener(cfg->host, cfg->port, i == 0);
        if (w->listen_fd < 0 || worker_setup(s, w, cfg) < 0) {
            free_unstarted(s);
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
    tg_metrics_set_connections(s->hooks.metrics, connections_open, s);
    return s;
}

void tg_server_reload(tg_server_t *s, tg_config_t *cfg)
{
    s->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
    set_max_connections(s, cfg);
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
    /* All of them first: a worker may touch another's shed_ev (on_accept_error). */
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (int i = 0; i < s->n_workers; i++) {
        tg_worker_t *w = &s->workers[i];
        free_worker_parts(w);
    }
    tg_metrics_set_connections(s->hooks.metrics, NULL, NULL);
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
