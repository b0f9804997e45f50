/*
 * server.c — the listeners and the worker threads: start, reload, drain,
 * shutdown and join (server.h), and how many connections a worker takes.
 * The connections themselves are conn.c's, the replies reply.c's; what the
 * three share is in server_internal.h, with the invariants they keep.
 *
 * Threads: tg_server_start/reload/shutdown/join run on the main thread;
 * the rest runs on the worker thread that owns the event loop (its control
 * event, the drain and the deadline timers, the accept back-off).
 *
 * Connections are bounded: each worker takes an equal share of
 * server.max_connections. At its share, or out of descriptors, it closes
 * its longest-waiting idle connection for the newcomer, or else stops
 * accepting for a while (tg_server_pause_accepting): never an accept loop
 * that spins.
 */
#include "server/server_internal.h"

#include "core/log.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <event2/thread.h>
#include <netdb.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
long tg_server_conn_share(const tg_worker_t *w)
{
    long share = atomic_load(&w->srv->max_conns) / w->srv->n_workers;
    return share > 0 ? share : 1;
}

/* One warning line per episode of pressure (a pause, an eviction), at most
 * one per TG_PRESSURE_LOG_MS per worker, saying how many were not logged. */
void tg_server_pressure_note(tg_worker_t *w, const char *what)
{
    int64_t now = tg_mono_ms();
    if (w->pressure_log_ms && now - w->pressure_log_ms < TG_PRESSURE_LOG_MS) {
        w->pressure_quiet++;
        return;
    }
    tg_warn("worker %d: %s (its connections: %ld, its share of server.max_connections: %ld; "
            "%ld more such event(s) since the last line)",
            w->index, what, atomic_load(&w->n_conns), tg_server_conn_share(w), w->pressure_quiet);
    w->pressure_log_ms = now;
    w->pressure_quiet = 0;
}
/* Stops accepting for a while: the listening socket stays readable while
 * clients wait in its backlog, and accepting on would only spin. */
void tg_server_pause_accepting(tg_worker_t *w, bool out_of_descriptors)
{
    if (!w->listener || w->accept_state != ACCEPTING)
        return;
    evconnlistener_disable(w->listener);
    if (w->dash_listener)
        evconnlistener_disable(w->dash_listener);
    int64_t ms = TG_LIMIT_RECHECK_MS;
    if (out_of_descriptors) {
        w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : TG_BACKOFF_MIN_MS;
        if (w->backoff_ms > TG_BACKOFF_MAX_MS)
            w->backoff_ms = TG_BACKOFF_MAX_MS;
        ms = w->backoff_ms;
        w->accept_state = PAUSED_DESCRIPTORS;
        tg_metrics_accept_paused(SHARD(w), "descriptors");
        tg_server_pressure_note(w, "out of file descriptors with no idle connection to close: not "
                                   "accepting for a moment");
    } else {
        w->accept_state = PAUSED_LIMIT;
        tg_metrics_accept_paused(SHARD(w), "limit");
        tg_server_pressure_note(
            w, "server.max_connections reached with no idle connection to close: not "
               "accepting until one closes");
    }
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(w->resume_tm, &tv);
}

void tg_server_resume_accepting(tg_worker_t *w)
{
    if (w->accept_state == ACCEPTING)
        return;
    w->accept_state = ACCEPTING;
    evtimer_del(w->resume_tm);
    if (w->listener)
        evconnlistener_enable(w->listener);
    if (w->dash_listener)
        evconnlistener_enable(w->dash_listener);
}

/* A paused worker's timer: out of descriptors, try again; at the limit,
 * go on once there is room or an idle connection to close for it. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    if (w->accept_state == PAUSED_LIMIT && atomic_load(&w->n_conns) >= tg_server_conn_share(w) &&
        !w->wait_head) {
        struct timeval tv = {0, TG_LIMIT_RECHECK_MS * 1000};
        evtimer_add(w->resume_tm, &tv);
        return;
    }
    tg_server_resume_accepting(w);
}

/* Another worker is out of descriptors and has no idle connection of its
 * own to close: descriptors are the process's, so one of ours frees one. */
static void on_shed(evutil_socket_t fd, short what, void *arg)
{
    tg_worker_t *w = arg;
    atomic_store(&w->shed_asked, false);
    tg_server_evict_oldest(w);
}

/* accept() failed with something other than "try again" (libevent would
 * log each one itself, and retry at once: a flood). */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    tg_worker_t *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        if (tg_server_evict_oldest(w))
            return; /* the descriptor it freed takes the next client */
        /* Nothing of ours to close: each other worker closes one (once per
         * request outstanding), and we try again after the pause. */
        tg_server_t *s = w->srv;
        for (int i = 0; i < s->n_workers; i++) {
            tg_worker_t *o = &s->workers[i];
            if (o != w && o->shed_ev && !atomic_exchange(&o->shed_asked, true))
                event_active(o->shed_ev, EV_READ, 0);
        }
        tg_server_pause_accepting(w, true);
        return;
    }
    tg_server_pressure_note(w, strerror(err));
    tg_server_pause_accepting(w, true);
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

void tg_server_worker_maybe_finish(tg_worker_t *w)
{
    if (!w->live && !w->conns)
        worker_finish_now(w);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    tg_server_worker_maybe_finish(arg);
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
            tg_server_client_gone(h);
        }
        h = next;
    }
    struct timeval grace = {0, TG_SHUTDOWN_GRACE_MS * 1000};
    evtimer_add(w->deadline, &grace);
    tg_server_worker_maybe_finish(w);
}

/* Both listening sockets, the gateway's and the dashboard's, close. */
static void close_listeners(tg_worker_t *w)
{
    if (w->listener) {
        evconnlistener_free(w->listener); /* closes the listening socket */
        w->listener = NULL;
    }
    if (w->dash_listener) {
        evconnlistener_free(w->dash_listener);
        w->dash_listener = NULL;
    }
}

static void begin_drain(tg_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    evtimer_del(w->resume_tm);
    /* Connections between requests close now, or once their last answer
     * is written; the others after their exchange (exchange_end). */
    for (tg_conn_t *c = w->conns; c; c = c->next)
        if (!c->h && c->open) {
            c->closing = true;
            tg_server_queue_conn(c);
        }
    struct timeval tick = {0, 10 * 1000};
    w->drain_tm = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
    event_add(w->drain_tm, &tick);
    int64_t ms = w->srv->shutdown_timeout_ms;
    struct timeval dl = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    w->deadline = evtimer_new(w->base, on_deadline, w);
    evtimer_add(w->deadline, &dl);
    tg_server_worker_maybe_finish(w);
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
    char name[16]; /* the thread's name in top -H, perf and /proc/PID/task */
    snprintf(name, sizeof name, "tg-worker-%d", w->index);
    pthread_setname_np(pthread_self(), name);
    event_base_dispatch(w->base);

    /* Stopped: close what is left (the deadline passed, or idle ones). */
    close_listeners(w);
    while (w->conns) {
        tg_conn_t *c = w->conns;
        if (c->h) {
            c->h->c = NULL;
            c->h = NULL;
        }
        tg_server_conn_close(c);
        tg_server_conn_free(c);
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

/* `what`: the setting that names the address, for the errors. */
static int open_listener(const char *what, const char *host, int port, bool first)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        tg_error("%s %s: %s", what, host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (first && port_in_use(ai)) {
            tg_error("cannot listen on %s:%d (%s): the address is already in use", host, port,
                     what);
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
        tg_error("cannot listen on %s:%d (%s): %s", host, port, what, strerror(errno));
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
    w->listener =
        evconnlistener_new(w->base, tg_server_on_accept, w,
                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, w->listen_fd);
    if (!w->listener) {
        tg_error("worker %d: cannot accept on the listening socket", w->index);
        return -1;
    }
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    /* The dashboard's socket (observability.dashboard): the same worker,
     * connections and limits; its connections are marked (tg_http_dashboard)
     * so that the pipeline serves them the page and /api/v1 only. */
    if (w->dash_fd >= 0) {
        w->dash_listener =
            evconnlistener_new(w->base, tg_server_on_accept, w,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, w->dash_fd);
        if (!w->dash_listener) {
            tg_error("worker %d: cannot accept on the dashboard's listening socket", w->index);
            return -1;
        }
        evconnlistener_set_error_cb(w->dash_listener, on_accept_error);
    }
    w->resume_tm = evtimer_new(w->base, on_resume, w);
    w->shed_ev = event_new(w->base, -1, 0, on_shed, w);
    w->ctl = event_new(w->base, -1, 0, on_control, w);
    w->flush_ev = event_new(w->base, -1, 0, tg_server_on_flush, w);
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
        tg_info("server: up to %ld client connections, %ld per worker (descriptor limit %ld)", max,
                max / s->n_workers > 0 ? max / s->n_workers : 1, nofile);
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
        if (w->dash_listener)
            evconnlistener_free(w->dash_listener); /* closes dash_fd */
        else if (w->dash_fd >= 0)
            close(w->dash_fd);
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
        w->dash_fd = -1;
        w->listen_fd = open_listener("server.host", cfg->host, cfg->port, i == 0);
        if (w->listen_fd >= 0 && cfg->dashboard_enabled)
            w->dash_fd = open_listener("observability.dashboard", cfg->dashboard_host,
                                       cfg->dashboard_port, i == 0);
        if (w->listen_fd < 0 || (cfg->dashboard_enabled && w->dash_fd < 0) ||
            worker_setup(s, w, cfg) < 0) {
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
