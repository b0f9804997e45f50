/*
 * server_internal.h — what the files of src/server/ share and nothing
 * outside it includes: the worker, connection and exchange structures, the
 * limits they run under, and the functions one file of the folder calls in
 * another. Public surface stays in server.h, http.h and request.h.
 *
 * The server is HTTP/1.1 on libevent, requests read by request.c
 * (http-parser). A plain connection is a socket with two events and two
 * evbuffers of our own; a TLS one is an OpenSSL bufferevent. Its files:
 *   server.c  listeners and workers: start, reload, drain, shutdown,
 *             descriptor limits and accept back-off (main and worker thread)
 *   conn.c    client connections: accept, reading, deadlines, idle
 *             eviction, TLS callbacks, the end-of-turn flush (worker thread)
 *   reply.c   tg_http_t (http.h) and the reply writer: status line, head,
 *             chunked framing (worker thread)
 *
 * Threads: tg_server_start/reload/shutdown/join run on the main thread; all
 * other code here runs on the worker thread that owns the event loop. The
 * main thread talks to a worker only through the worker's control event
 * (event_active is thread-safe once evthread_use_pthreads() ran) and the
 * fields guarded by the worker's mutex (pending_cfg, stop).
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
#ifndef TG_SERVER_INTERNAL_H
#define TG_SERVER_INTERNAL_H

#include "core/util.h"
#include "server/request.h"
#include "server/server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

typedef struct tg_worker tg_worker_t;
typedef struct tg_conn tg_conn_t;

/* Where a connection is in its current request; it decides the deadline
 * that applies (see tg_server_conn_phase). */
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
    bool dashboard;                /* came in on the dashboard's listener */
    struct tg_http *prev, *next;   /* worker's live list */
};

struct tg_conn {
    tg_worker_t *w;
    bool open;                 /* until tg_server_conn_close */
    struct bufferevent *bev;   /* TLS: the connection's I/O */
    evutil_socket_t fd;        /* plain socket; -1 with TLS */
    struct event *rev, *wev;   /* plain: reading (always on), writing (while output waits) */
    bool reading, writing;     /* plain: rev added, wev added */
    struct evbuffer *in, *out; /* plain: our own; TLS: the bufferevent's */
    tg_reqparse_t rp;
    tg_http_t *h;   /* the exchange in flight */
    bool closing;   /* close once the output is written */
    bool queued;    /* on w->to_write for tg_server_on_flush */
    bool dashboard; /* accepted on the dashboard's listener */
    char ip[INET6_ADDRSTRLEN];
    struct tg_conn *prev, *next; /* worker's connection list */
    /* deadlines: the timer is set for the phase's whole span, never
     * restarted by a byte (the idle timeout on reads is, see tg_server_conn_read) */
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
    int dash_fd;                          /* observability.dashboard's socket, -1 none */
    struct evconnlistener *dash_listener; /* its listener (NULL: dashboard off) */
    struct event *ctl;                    /* activated by the main thread */
    struct event *drain_tm;               /* while draining: checks for the end */
    struct event *deadline;               /* while draining: forces the end */
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
    struct event *flush_ev;           /* runs tg_server_on_flush at the end of the loop turn */
    time_t date_sec;                  /* the second date_line was made for */
    char date_line[64];               /* "Date: ...\r\n" */
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
     * whole process, each worker taking an equal share (tg_server_conn_share) */
    atomic_long max_conns;
};

/* A worker's shard of the gateway's metrics (metrics.h). */
#define SHARD(w) tg_metrics_shard((w)->srv->hooks.metrics, (w)->index)

/* Functions shared between the files of src/server/ (each defined in the
 * file named; everything else in the folder is static to its file). */

/* server.c: limits and accept back-off */
long tg_server_conn_share(const tg_worker_t *w);
void tg_server_pressure_note(tg_worker_t *w, const char *what);
void tg_server_pause_accepting(tg_worker_t *w, bool out_of_descriptors);
void tg_server_resume_accepting(tg_worker_t *w);
void tg_server_worker_maybe_finish(tg_worker_t *w);

/* conn.c: connections */
void tg_server_queue_conn(tg_conn_t *c);
void tg_server_client_gone(tg_http_t *h);
bool tg_server_evict_oldest(tg_worker_t *w);
void tg_server_conn_phase(tg_conn_t *c, conn_phase_t phase);
void tg_server_conn_close(tg_conn_t *c);
void tg_server_conn_free(tg_conn_t *c);
void tg_server_conn_read(tg_conn_t *c, bool on, bool timed);
void tg_server_on_flush(evutil_socket_t fd, short what, void *arg);
void tg_server_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int salen, void *arg);

/* reply.c: the status line and Date line of every answer */
void tg_server_put_status_line(tg_worker_t *w, tg_buf_t *head, bool http10, int status);

static inline struct evbuffer *conn_out(tg_conn_t *c)
{
    return c->out;
}

#endif
