/*
 * conn.c — client connections: accepting one, reading its requests into
 * exchanges, the deadlines of a request being read, closing idle ones to
 * make room (eviction), the TLS bufferevent callbacks, and the end-of-turn
 * flush that writes every connection's output. Separate from server.c
 * (which owns the workers and decides whether to accept at all) and from
 * reply.c (which formats what is written): this file moves bytes between
 * sockets and buffers and keeps each connection's state.
 *
 * Threads: all of it runs on the worker thread that owns the connection.
 *
 * A connection reads one request, hands it to the handler as an exchange
 * (tg_http_t), and reads the next only once that exchange has ended; bytes
 * a client pipelines meanwhile wait in its input buffer. Reading stays on
 * while an exchange runs, so a client that leaves is seen at once (end of
 * file) and the socket's epoll interest never changes between requests.
 *
 * Output goes to the connection's output buffer and is written at the end
 * of the loop turn (tg_server_on_flush): every reply and stream chunk one batch of
 * provider traffic produces leaves in one writev per connection. Only what
 * the socket does not take at once arms the write event (and its timeout)
 * until it has drained. TLS bufferevents write for themselves.
 *
 * A request being read has deadlines that its bytes do not move
 * (tg_server_conn_phase): server.header_timeout for the head,
 * server.body_timeout plus server.body_min_rate for the body.
 */
#include "server/server_internal.h"

#include "metrics/metrics.h"

#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Pipelined bytes a connection buffers while an exchange runs before it
 * stops reading (and so stops noticing a client that leaves early). */
#define TG_PIPELINE_MAX (TG_MAX_HEADERS_SIZE + 64 * 1024)

/* ---- connections ---- */

static void parse_input(tg_conn_t *c);

/* Sees to c at the end of this loop turn (tg_server_on_flush). */
void tg_server_queue_conn(tg_conn_t *c)
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
void tg_server_client_gone(tg_http_t *h)
{
    if (h->gone)
        return;
    h->gone = true;
    if (h->ev.on_close)
        h->ev.on_close(h->ev_arg);
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

/* Closes the connection that has waited longest for a request (an idle
 * keep-alive one, or a new one that has sent nothing), to make room for a
 * new client. False when there is none. */
bool tg_server_evict_oldest(tg_worker_t *w)
{
    tg_conn_t *c = w->wait_head;
    if (!c)
        return false;
    tg_metrics_connection_dropped(SHARD(w), "evicted");
    tg_server_pressure_note(w, "too few descriptors or connections left: closing idle connections, "
                               "longest idle first");
    tg_server_conn_close(c);
    return true;
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
 * event's idle timeout (tg_server_conn_read). */
void tg_server_conn_phase(tg_conn_t *c, conn_phase_t phase)
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
        tg_server_conn_close(c); /* its last answer is not being read either */
        return;
    }
    switch (c->phase) {
    case CONN_WAITING: /* new and silent: nothing to answer */
        tg_metrics_connection_dropped(SHARD(c->w), "header_timeout");
        tg_server_conn_close(c);
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
        conn_fail(c, 408,
                  "the request body arrived slower than server.body_timeout and "
                  "server.body_min_rate allow");
        break;
    }
    case CONN_ANSWER: break; /* not armed then */
    }
}

/* Closes the socket now; the memory goes at the end of the turn. */
void tg_server_conn_close(tg_conn_t *c)
{
    if (!c->open)
        return;
    c->open = false;
    tg_worker_t *w = c->w;
    waiting_remove(c);
    evtimer_del(c->deadline);
    long open = atomic_fetch_sub(&w->n_conns, 1) - 1;
    if (w->accept_state == PAUSED_LIMIT && open < tg_server_conn_share(w))
        tg_server_resume_accepting(w);
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
        tg_server_client_gone(h);
    }
    tg_server_queue_conn(c);
}

void tg_server_conn_free(tg_conn_t *c)
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

/* Reading on or off; `timed`: under server.idle_timeout (between requests,
 * not while an exchange waits for its provider). */
void tg_server_conn_read(tg_conn_t *c, bool on, bool timed)
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
    tg_server_put_status_line(c->w, &b, false, status);
    tg_buf_puts(&b, "Content-Type: application/json\r\nConnection: close\r\n");
    tg_buf_t body = {0};
    tg_buf_openai_error(&body, msg, "invalid_request_error", refusal_code(status));
    tg_buf_printf(&b, "Content-Length: %zu\r\n\r\n", body.len);
    tg_buf_append(&b, body.data, body.len);
    evbuffer_add(conn_out(c), b.data, b.len);
    tg_buf_free(&b);
    tg_buf_free(&body);
    c->closing = true;
    tg_server_conn_phase(c, CONN_ANSWER);
    tg_server_conn_read(c, false, false);
    tg_server_queue_conn(c);
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
    h->dashboard = c->dashboard;

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
    tg_server_conn_phase(c, CONN_ANSWER);
    /* No idle timeout while the exchange runs: a provider may think for
     * longer. A client that stops taking output still times out. */
    tg_server_conn_read(c, true, false);
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
            tg_server_conn_phase(c, CONN_HEAD); /* the first byte of a request */
        size_t n = tg_reqparse_feed(&c->rp, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        if (c->rp.fail_status) {
            conn_fail(c, c->rp.fail_status, c->rp.fail_msg);
            return;
        }
        if (c->rp.expect_continue) {
            c->rp.expect_continue = false;
            evbuffer_add(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
            tg_server_queue_conn(c);
        }
        if (c->rp.done)
            dispatch(c); /* may end at once: then the loop reads on */
        else if (c->rp.headers_done && c->phase == CONN_HEAD)
            tg_server_conn_phase(c, CONN_BODY);
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
        tg_server_conn_read(c, false, false);
}

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* A plain socket is readable (or its idle time ran out). Reads with readv
 * into the input buffer: a first read of up to ~4 KiB (one small buffer
 * chain, enough for most requests), then up to 64 KiB at a time while the
 * reads come back full. libevent's own socket reads cost an
 * ioctl(FIONREAD) each and never take more than 4 KiB. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    tg_conn_t *c = arg;
    if (what & EV_TIMEOUT) {
        tg_server_conn_close(c); /* idle between requests, or a request that stopped coming */
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
            tg_server_conn_close(c); /* end of file or an error: the client is gone */
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
        tg_server_conn_close(c);
        return;
    }
    before_write(c->w);
    if (evbuffer_write(c->out, fd) < 0 && !would_block()) {
        tg_server_conn_close(c);
        return;
    }
    if (!evbuffer_get_length(c->out)) {
        event_del(c->wev);
        c->writing = false;
        tg_server_queue_conn(c); /* a close, a drain or a pipelined request to see to */
    }
}

/* TLS: the bufferevent read, its output drained (low-water mark 0), or the
 * connection ended. */
static void on_tls_read(struct bufferevent *bev, void *arg)
{
    on_input(arg);
}
static void on_tls_written(struct bufferevent *bev, void *arg)
{
    tg_server_queue_conn(arg);
}
static void on_tls_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        tg_server_conn_close(arg);
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
        tg_server_conn_close(c);
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
void tg_server_on_flush(evutil_socket_t fd, short what, void *arg)
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
                tg_server_conn_free(c);
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
            tg_server_conn_close(c); /* queues it again: freed further down this list */
        } else if (!h && evbuffer_get_length(c->in)) {
            parse_input(c);
        }
    }
    w->to_write.n = 0;
    if (w->draining)
        tg_server_worker_maybe_finish(w);
}

void tg_server_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int salen, void *arg)
{
    tg_worker_t *w = arg;
    w->backoff_ms = 0;
    /* Over the limit, an idle connection makes room for this one; without
     * one, this one is closed and accepting pauses. */
    long open = atomic_fetch_add(&w->n_conns, 1) + 1;
    if (open > tg_server_conn_share(w) && !tg_server_evict_oldest(w)) {
        evutil_closesocket(fd);
        atomic_fetch_sub(&w->n_conns, 1);
        tg_metrics_connection_dropped(SHARD(w), "refused");
        tg_server_pause_accepting(w, false);
        return;
    }
    tg_conn_t *c = tg_xcalloc(1, sizeof *c);
    c->w = w;
    c->dashboard = l == w->dash_listener;
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
    tg_server_conn_phase(c, CONN_WAITING);
    /* At the limit now, and nothing older to close for the next client:
     * leave the next ones in the backlog until a connection closes. */
    if (open >= tg_server_conn_share(w) && w->wait_head == c)
        tg_server_pause_accepting(w, false);
}
