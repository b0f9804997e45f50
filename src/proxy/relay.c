/*
 * relay.c — relay.h's interface, given by the worker's own HTTP/1.1 client
 * (h1client.c) or, with TOLLGATE_UPSTREAM=curl (read once per process), by
 * the libcurl multi relay below, driven by the worker's libevent loop. The
 * libcurl relay is kept as a fallback switch; it is off the request path
 * otherwise.
 *
 * Thread: the worker thread that owns the event_base; nothing here is shared.
 *
 * Invariants:
 * - curl_multi_* is never called from inside a curl callback: the socket and
 *   timer callbacks only (re)arm libevent events, and completed transfers
 *   are collected after curl_multi_socket_action has returned;
 * - there is no total-time limit (it would kill long streams): a transfer
 *   ends on connect timeout, or when the provider sends nothing for its idle
 *   timeout while the transfer is not paused for a slow client;
 * - a transfer's owner hears on_done exactly once, or nothing after cancel;
 * - a connected socket curl stops watching (CURL_POLL_REMOVE: its transfer
 *   ended and the connection went back to curl's cache) stays registered with
 *   libevent, for reading only, until curl closes it or it becomes readable.
 *   The next transfer on that connection then costs no epoll_ctl to stop and
 *   start watching it; an idle socket that turns readable (the provider
 *   closed it) is unwatched at once, and curl finds it dead on reuse. Every
 *   socket curl closes passes through on_curl_close, which drops its watch
 *   before the descriptor can be reused.
 */
#include "proxy/relay.h"

#include "core/log.h"
#include "core/util.h"
#include "proxy/h1client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_MAX                  64
#define URL_CACHE                 8
#define MAX_RESPONSE_HEADERS      200
#define MAX_RESPONSE_HEADER_BYTES (64 * 1024)

/* A provider URL parsed once (CURLOPT_CURLU): given a CURLOPT_URL string,
 * curl parses and re-assembles it for every transfer. Kept while a transfer
 * uses it (refs); an unused one makes room for a new URL. */
typedef struct {
    char *url;
    CURLU *uh;
    int refs;
} url_entry_t;

typedef struct curl_relay curl_relay_t;

struct curl_relay {
    struct event_base *base;
    bool env_proxy; /* a proxy variable was set at start: let curl read it */
    CURLM *multi;
    struct event *timer;
    bool in_timer; /* inside on_timer's curl_multi_socket_action */
    CURL *pool[POOL_MAX];
    int n_pool;
    struct sock_ctx **socks; /* by descriptor: every socket being watched */
    int n_socks;
    url_entry_t urls[URL_CACHE];
    int url_hand; /* where the search for a slot to reuse starts */
};

typedef struct curl_call curl_call_t;

struct curl_call {
    curl_relay_t *r;
    CURL *easy;
    url_entry_t *url; /* NULL: the URL went as a string */
    struct curl_slist *hdrs;
    tg_upstream_cbs_t cbs;
    void *arg;
    tg_headers_t resp;
    size_t resp_bytes;
    int64_t idle_ms;
    int64_t last_activity_ms;
    struct event *idle_timer;
    struct event *fail_ev; /* start failed: report from the loop */
    bool response_sent;
    bool paused;
    bool pause_next;
    bool aborted;     /* on_data asked to stop */
    bool in_callback; /* inside a curl callback */
    bool cancelled;   /* cancel arrived while in_callback */
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct sock_ctx {
    curl_relay_t *r;
    curl_socket_t fd;
    struct event *ev;
    bool armed;     /* ev is added */
    bool idle;      /* curl said CURL_POLL_REMOVE: nobody's transfer uses it */
    bool connected; /* curl has asked to read it, so its connect completed */
} sock_ctx_t;

static void check_done(curl_relay_t *r);
static void finish(curl_call_t *u, tg_upstream_result_t res, const char *err);

/* ---- libevent <-> curl glue ---- */

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    sock_ctx_t *sc = arg;
    curl_relay_t *r = sc->r;
    if (sc->idle) {
        /* A cached connection turned readable: the provider closed it, or
         * sent something unasked. Stop watching; curl sees it on reuse. */
        event_del(sc->ev);
        sc->armed = false;
        return;
    }
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(r->multi, fd, flags, &running);
    check_done(r);
}

/* (Re)arms sc for kind, touching libevent only when something changes. */
static void watch(sock_ctx_t *sc, short kind)
{
    bool same = event_get_events(sc->ev) == kind;
    if (sc->armed && same)
        return;
    if (sc->armed)
        event_del(sc->ev);
    if (!same)
        event_assign(sc->ev, sc->r->base, sc->fd, kind, on_sock_event, sc);
    event_add(sc->ev, NULL);
    sc->armed = true;
}

static sock_ctx_t *sock_for(curl_relay_t *r, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    if (s >= r->n_socks) {
        int n = r->n_socks ? r->n_socks : 64;
        while (n <= s)
            n *= 2;
        r->socks = tg_xrealloc(r->socks, (size_t)n * sizeof *r->socks);
        memset(r->socks + r->n_socks, 0, (size_t)(n - r->n_socks) * sizeof *r->socks);
        r->n_socks = n;
    }
    sock_ctx_t *sc = r->socks[s];
    if (!sc) {
        sc = tg_xcalloc(1, sizeof *sc);
        sc->r = r;
        sc->fd = s;
        sc->ev = event_new(r->base, s, 0, on_sock_event, sc);
        r->socks[s] = sc;
    }
    return sc;
}

static void drop_sock(curl_relay_t *r, curl_socket_t s)
{
    if (s < 0 || s >= r->n_socks || !r->socks[s])
        return;
    event_free(r->socks[s]->ev);
    free(r->socks[s]);
    r->socks[s] = NULL;
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    curl_relay_t *r = userp;
    sock_ctx_t *sc = sock_for(r, s);
    if (!sc)
        return 0;
    if (what == CURL_POLL_REMOVE) {
        /* Only a connected socket lingers: curl 7.88 closes a socket whose
         * connect never completed without calling on_curl_close (curl PR
         * #11439), often before this REMOVE, and a watch left on a closed
         * number would stand in for whatever gets that number next. curl
         * asks to read a socket only once it is connected. */
        if (!sc->connected) {
            drop_sock(r, s);
            return 0;
        }
        /* Reading only: a write watch on an idle socket fires on every turn. */
        sc->idle = true;
        if (sc->armed)
            watch(sc, EV_READ | EV_PERSIST);
        return 0;
    }
    sc->idle = false;
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) {
        kind |= EV_READ;
        sc->connected = true;
    }
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    watch(sc, kind);
    return 0;
}

/* Every socket curl opens starts unwatched, whatever an earlier socket of
 * that number left behind. */
static curl_socket_t on_curl_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    drop_sock(clientp, s);
    return s;
}

/* Every socket curl closes: unwatch it before its number can be reused. */
static int on_curl_close(void *clientp, curl_socket_t s)
{
    drop_sock(clientp, s);
    return close(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    curl_relay_t *r = arg;
    int running;
    r->in_timer = true;
    curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    r->in_timer = false;
    check_done(r);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    curl_relay_t *r = userp;
    if (timeout_ms < 0) {
        evtimer_del(r->timer);
        return 0;
    }
    if (timeout_ms == 0 && !r->in_timer) {
        /* "As soon as possible": later in this loop turn, not after a
         * zero-timeout trip through epoll_wait. Asked again from within
         * on_timer, it waits for the next turn, so I/O is never starved. */
        evtimer_del(r->timer);
        event_active(r->timer, EV_TIMEOUT, 0);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);
    return 0;
}

static curl_relay_t *curl_relay_new(struct event_base *base)
{
    curl_relay_t *r = tg_xcalloc(1, sizeof *r);
    r->base = base;
    r->multi = curl_multi_init();
    if (!r->multi) {
        free(r);
        return NULL;
    }
    r->timer = evtimer_new(base, on_timer, r);
    static const char *const proxy_vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                             "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxy_vars / sizeof proxy_vars[0]; i++) {
        const char *v = getenv(proxy_vars[i]);
        r->env_proxy |= v && *v;
    }
    curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
    curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
    curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, 256L);
    curl_multi_setopt(r->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return r;
}

static void curl_relay_free(curl_relay_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_pool; i++)
        curl_easy_cleanup(r->pool[i]);
    curl_multi_cleanup(r->multi); /* closes the cached connections */
    for (int i = 0; i < r->n_socks; i++)
        drop_sock(r, i);
    free(r->socks);
    for (int i = 0; i < URL_CACHE; i++) {
        free(r->urls[i].url);
        curl_url_cleanup(r->urls[i].uh);
    }
    event_free(r->timer);
    free(r);
}

/* ---- curl callbacks (no curl_multi_* in here) ---- */

static void deliver_response(curl_call_t *u)
{
    if (u->response_sent)
        return;
    u->response_sent = true;
    long status = 0;
    curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
    u->cbs.on_response(u->arg, (int)status, &u->resp);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    curl_call_t *u = ud;
    size_t len = size * nitems;
    if (len >= 5 && !memcmp(buf, "HTTP/", 5)) {
        /* A status line: a new response (after 100-continue, say) starts.
         * It and the blank line after the headers count as activity for
         * the idle timeout; the lines between arrive with them. */
        u->last_activity_ms = tg_mono_ms();
        tg_headers_free(&u->resp);
        u->resp_bytes = 0;
        return len;
    }
    u->resp_bytes += len;
    if (u->resp_bytes > MAX_RESPONSE_HEADER_BYTES || u->resp.n >= MAX_RESPONSE_HEADERS)
        return 0; /* aborts: CURLE_WRITE_ERROR */
    const char *colon = memchr(buf, ':', len);
    if (!colon) {
        u->last_activity_ms = tg_mono_ms();
        return len; /* the blank line, or junk */
    }
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    tg_headers_t *h = &u->resp;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->names = tg_xrealloc(h->names, h->cap * sizeof(char *));
        h->values = tg_xrealloc(h->values, h->cap * sizeof(char *));
    }
    size_t vlen = (size_t)(end - v);
    char *block = tg_xmalloc(nlen + vlen + 2); /* "name\0value\0" */
    memcpy(block, buf, nlen);
    block[nlen] = 0;
    memcpy(block + nlen + 1, v, vlen);
    block[nlen + 1 + vlen] = 0;
    h->names[h->n] = block;
    h->values[h->n] = block + nlen + 1;
    h->n++;
    return len;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    curl_call_t *u = ud;
    size_t len = size * nmemb;
    u->last_activity_ms = tg_mono_ms();
    if (u->cancelled)
        return 0;
    if (u->pause_next) {
        u->pause_next = false;
        u->paused = true;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps this data and re-delivers it */
    }
    u->in_callback = true;
    deliver_response(u);
    int rc = u->cancelled ? -1 : u->cbs.on_data(u->arg, ptr, len);
    u->in_callback = false;
    if (u->cancelled || rc < 0) {
        u->aborted = true;
        return 0;
    }
    if (rc > 0)
        u->pause_next = true;
    return len;
}

/* ---- idle timeout ---- */

static void arm_idle(curl_call_t *u, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(u->idle_timer, &tv);
}

static void on_idle_timer(evutil_socket_t fd, short what, void *arg)
{
    curl_call_t *u = arg;
    if (u->paused || u->pause_next) {
        /* Waiting for our own client, not for the provider. */
        arm_idle(u, u->idle_ms);
        return;
    }
    int64_t idle = tg_mono_ms() - u->last_activity_ms;
    if (idle < u->idle_ms) {
        arm_idle(u, u->idle_ms - idle);
        return;
    }
    curl_multi_remove_handle(u->r->multi, u->easy);
    finish(u, TG_UP_TIMEOUT, "the provider sent nothing for longer than its timeout");
}

/* ---- start / finish ---- */

/* A new easy handle with the options every transfer shares. Handles are
 * reused from the pool without curl_easy_reset, so these stay set. */
static CURL *new_easy(curl_relay_t *r)
{
    CURL *e = curl_easy_init();
    if (!e)
        abort();
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_curl_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* No CURLOPT_PIPEWAIT: with it, transfers started while a new
     * connection's multiplexing was still unknown waited for the first
     * transfer to END, not for its headers (curl 7.88 rechecks pending
     * transfers only when one finishes): on a fresh worker, concurrent calls
     * to a plain-HTTP provider queued behind the first stream. Without it a
     * burst opens its own connections, and later calls still multiplex over
     * an HTTP/2 connection once there is one. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Without a proxy variable at start, say so: curl would otherwise look
     * the variables up again for every transfer. */
    if (!r->env_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    return e;
}

/* The parsed form of `url`, with a reference for the caller; NULL when every
 * slot is in use or curl does not take the URL (the caller then passes the
 * string, and curl reports what is wrong with it). */
static url_entry_t *url_get(curl_relay_t *r, const char *url)
{
    url_entry_t *slot = NULL;
    for (int i = 0; i < URL_CACHE; i++) {
        url_entry_t *e = &r->urls[(r->url_hand + i) % URL_CACHE];
        if (e->url && !strcmp(e->url, url)) {
            e->refs++;
            return e;
        }
        if (!e->refs && (!slot || (slot->url && !e->url)))
            slot = e; /* the first unused one, an empty one if any */
    }
    if (!slot)
        return NULL;
    /* the flags curl itself parses a CURLOPT_URL string with */
    CURLU *uh = curl_url();
    if (!uh ||
        curl_url_set(uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME)) {
        curl_url_cleanup(uh);
        return NULL;
    }
    free(slot->url);
    curl_url_cleanup(slot->uh);
    slot->url = tg_xstrdup(url);
    slot->uh = uh;
    slot->refs = 1;
    r->url_hand = (int)(slot - r->urls + 1) % URL_CACHE;
    return slot;
}

static void release(curl_call_t *u)
{
    curl_relay_t *r = u->r;
    if (u->url) {
        u->url->refs--;
        curl_easy_setopt(u->easy, CURLOPT_CURLU, NULL); /* no pooled handle points at it */
    }
    if (u->idle_timer)
        event_free(u->idle_timer);
    if (u->fail_ev)
        event_free(u->fail_ev);
    curl_slist_free_all(u->hdrs);
    tg_headers_free(&u->resp);
    /* Pooled handles are not reset: only one whose transfer ended cleanly,
     * never paused or cut off, is kept for the next. */
    if (r->n_pool < POOL_MAX && !u->cancelled && !u->paused && !u->pause_next && !u->aborted)
        r->pool[r->n_pool++] = u->easy;
    else
        curl_easy_cleanup(u->easy);
    free(u);
}

/* The handle is already out of the multi. Reports and frees. */
static void finish(curl_call_t *u, tg_upstream_result_t res, const char *err)
{
    if (!u->cancelled) {
        if (res == TG_UP_OK)
            deliver_response(u);
        u->cbs.on_done(u->arg, res, err);
    }
    release(u);
}

static tg_upstream_result_t classify(curl_call_t *u, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return TG_UP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return TG_UP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return TG_UP_TIMEOUT;
    default: return TG_UP_BROKEN;
    }
}

static void check_done(curl_relay_t *r)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(r->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        curl_call_t *u = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&u);
        curl_multi_remove_handle(r->multi, e);
        tg_upstream_result_t res = classify(u, rc);
        const char *err = u->errbuf[0] ? u->errbuf : curl_easy_strerror(rc);
        if (u->aborted)
            err = "aborted";
        finish(u, res, err);
    }
}

static void on_start_failed(evutil_socket_t fd, short what, void *arg)
{
    curl_call_t *u = arg;
    finish(u, TG_UP_CONNECT, u->errbuf[0] ? u->errbuf : "cannot start the upstream call");
}

static curl_call_t *curl_call_start(curl_relay_t *r, const tg_upstream_req_t *req,
                                    const tg_upstream_cbs_t *cbs, void *arg)
{
    curl_call_t *u = tg_xcalloc(1, sizeof *u);
    u->r = r;
    u->cbs = *cbs;
    u->arg = arg;
    u->easy = r->n_pool ? r->pool[--r->n_pool] : new_easy(r);
    CURL *e = u->easy;

    for (size_t i = 0; i < req->n_headers; i++)
        u->hdrs = curl_slist_append(u->hdrs, req->headers[i]);
    /* No 100-continue round trip; identity encoding only is asked for by
     * not sending Accept-Encoding (the caller strips the client's). */
    u->hdrs = curl_slist_append(u->hdrs, "Expect:");

    /* Everything that differs between transfers is set here, every time;
     * the rest was set once in new_easy. */
    u->url = url_get(r, req->url);
    if (u->url)
        curl_easy_setopt(e, CURLOPT_CURLU, u->url->uh);
    else
        curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, u);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf);
    int64_t cto = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cto);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);

    const char *m = req->method ? req->method : "POST";
    if (!strcmp(m, "GET")) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "POST") || req->body_len) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else {
        /* PUT, DELETE, ... without a body */
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }

    u->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 60000;
    u->last_activity_ms = tg_mono_ms();
    u->idle_timer = evtimer_new(r->base, on_idle_timer, u);
    arm_idle(u, u->idle_ms);

    CURLMcode mc = curl_multi_add_handle(r->multi, e);
    if (mc != CURLM_OK) {
        snprintf(u->errbuf, sizeof u->errbuf, "%s", curl_multi_strerror(mc));
        evtimer_del(u->idle_timer);
        u->fail_ev = event_new(r->base, -1, 0, on_start_failed, u);
        event_active(u->fail_ev, EV_TIMEOUT, 0);
    }
    return u;
}

static void curl_call_resume(curl_call_t *u)
{
    u->pause_next = false;
    if (!u->paused)
        return;
    u->paused = false;
    u->last_activity_ms = tg_mono_ms();
    curl_easy_pause(u->easy, CURLPAUSE_CONT);
}

static void curl_call_cancel(curl_call_t *u)
{
    if (u->in_callback) {
        /* on_write sees this and stops the transfer; check_done frees it. */
        u->cancelled = true;
        return;
    }
    if (u->fail_ev) {
        u->cancelled = true; /* on_start_failed frees it quietly */
        return;
    }
    curl_multi_remove_handle(u->r->multi, u->easy);
    u->cancelled = true;
    release(u);
}

/* ---- the interface: the HTTP/1.1 client, or libcurl ---- */

/* TOLLGATE_UPSTREAM=curl keeps libcurl multi on the request path (read
 * once per process); anything else, or nothing, uses h1client.c. */
static bool use_curl;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    const char *v = getenv("TOLLGATE_UPSTREAM");
    use_curl = v && !strcmp(v, "curl");
}

struct tg_relay {
    curl_relay_t *curl;
    tg_h1_t *h1;
};

TG_REPLACEABLE tg_relay_t *tg_relay_new(struct event_base *base)
{
    pthread_once(&choose_once, choose);
    tg_relay_t *r = tg_xcalloc(1, sizeof *r);
    if (use_curl) {
        r->curl = curl_relay_new(base);
    } else {
        tg_h1_limits_t lim = {.max_idle_per_origin = 64,
                              .max_idle_total = 512,
                              .idle_timeout_ms = 60000,
                              .dns_ttl_ms = 30000};
        r->h1 = tg_h1_new(base, &lim);
    }
    if (!r->curl && !r->h1) {
        free(r);
        return NULL;
    }
    return r;
}

TG_REPLACEABLE void tg_relay_free(tg_relay_t *r)
{
    if (!r)
        return;
    curl_relay_free(r->curl);
    tg_h1_free(r->h1);
    free(r);
}

TG_REPLACEABLE tg_upstream_t *tg_upstream_start(tg_relay_t *r, const tg_upstream_req_t *req,
                                                const tg_upstream_cbs_t *cbs, void *arg)
{
    if (r->curl)
        return (tg_upstream_t *)curl_call_start(r->curl, req, cbs, arg);
    return (tg_upstream_t *)tg_h1_start(r->h1, req, cbs, arg);
}

TG_REPLACEABLE void tg_upstream_resume(tg_upstream_t *u)
{
    if (use_curl)
        curl_call_resume((curl_call_t *)u);
    else
        tg_h1_resume((tg_h1_call_t *)u);
}

TG_REPLACEABLE void tg_upstream_cancel(tg_upstream_t *u)
{
    if (use_curl)
        curl_call_cancel((curl_call_t *)u);
    else
        tg_h1_cancel((tg_h1_call_t *)u);
}
