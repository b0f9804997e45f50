/*
 * h1client.c — the worker's HTTP/1.1 client for calls to providers
 * (h1client.h).
 *
 * Thread: the worker thread that owns the event_base; nothing is shared.
 *
 * A call goes DNS → connect → (proxy CONNECT) → (TLS) → send → receive,
 * skipping the first steps when it takes a pooled connection. Invariants:
 * - a connection is in exactly one place: a call's, or its origin's idle
 *   list (most recently used first), or closed;
 * - a connection goes back to the pool only after an answer that ended
 *   cleanly with keep-alive, the whole request sent, and no byte beyond the
 *   answer read: a cancelled, paused-then-cut, failed or over-read one is
 *   closed;
 * - an idle connection keeps its read watch (no epoll_ctl between calls):
 *   if it turns readable while idle the provider closed it (or sent bytes
 *   nobody asked for), and it is closed at once, never reused;
 * - a call on a reused connection that ends (EOF, reset, a failed write)
 *   before any byte of answer is sent again once on a new connection. That
 *   holds for POST too: an HTTP/1.1 server that closes a kept-alive
 *   connection without a byte of answer closed it idle (RFC 9112 §9.3.1),
 *   the race this retry covers; a call that timed out, or got any byte, is
 *   never sent again;
 * - callbacks never run inside tg_h1_start, and after tg_h1_cancel none
 *   runs; on_done runs once, after the connection went back to its pool, so
 *   a call started from on_done can take it;
 * - a call's timer ends it when connecting (DNS, TCP, proxy, TLS) takes
 *   longer than its connect timeout, or when the provider sends nothing for
 *   its idle timeout while the call is not paused for a slow client; there
 *   is no total-time limit (it would cut long streams), as with the relay.
 */
#include "proxy/h1client.h"

#include "core/log.h"
#include "core/util.h"
#include "proxy/h1parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_BUF      (64 * 1024)
#define MAX_ADDRS     4
#define SWEEP_MS      2000
#define CONNECT_LIMIT 8192 /* bytes of a proxy's answer to CONNECT */
#define MAX_SESSIONS  4    /* TLS sessions kept per origin */

typedef struct origin origin_t;
typedef struct conn conn_t;

typedef struct {
    char *hostport; /* "host:port" to connect to */
    char *host;
    int port;
    char *auth; /* Proxy-Authorization value, or NULL */
} proxy_t;

/* One per origin a call went to: as many as the configuration names (the
 * providers' base URLs; Helicone-Fallbacks selects configured providers). */
struct origin {
    origin_t *next;
    bool tls;
    char *host; /* as in the URL, without brackets */
    int port;
    char *hostport; /* the Host header: host, or host:port when not the default */
    const proxy_t *proxy;
    /* Sessions the origin gave, newest last: a new connection resumes the
     * newest. A TLS 1.3 one is used once (RFC 8446 §C.4; servers send two
     * tickets for that), a TLS 1.2 one until it expires. */
    SSL_SESSION *sessions[MAX_SESSIONS];
    int n_sessions;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addr_lens[MAX_ADDRS];
    int n_addrs;
    int64_t addrs_until; /* mono ms; INT64_MAX for a numeric host */
    conn_t *idle;        /* most recently used first */
    int n_idle;
};

struct conn {
    tg_h1_t *c;
    origin_t *o;
    int fd;
    SSL *ssl;
    struct event rev; /* EV_READ|EV_PERSIST: armed from connect to close */
    struct event wev; /* EV_WRITE: armed while a write waits */
    bool rev_armed;
    conn_t *prev, *next; /* in o->idle */
    int64_t idle_since;
    tg_h1_call_t *u;
};

enum { S_DNS, S_CONNECT, S_PROXY, S_TLS, S_SEND, S_RECV };

struct tg_h1_call {
    tg_h1_t *c;
    origin_t *o;
    conn_t *conn;
    tg_upstream_cbs_t cbs;
    void *arg;
    int state;
    tg_buf_t head; /* request line and headers (and, over TLS, the body) */
    const char *body;
    size_t body_len;
    size_t sent; /* bytes of head + body written */
    tg_h1resp_t resp;
    int64_t t0_ms, connect_ms, idle_ms, last_ms;
    struct event timer;
    struct event kick; /* deferred end, or resume */
    bool kicked;       /* kick was ever activated: only then has it to be deleted */
    struct evdns_getaddrinfo_request *dns;
    int addr_i;
    tg_buf_t proxy_in; /* the proxy's answer to CONNECT */
    char *pend;        /* answer bytes read but not yet given (paused) */
    size_t pend_len, pend_off;
    bool starting, in_callback, cancelled, retried, reused, over_read;
    bool dns_timed_out;    /* the connect timeout passed while resolving */
    bool write_wants_read; /* SSL_write waits for the socket to be readable */
    bool end_pending;
    tg_upstream_result_t end_res;
    char err[256];
};

struct tg_h1 {
    struct event_base *base;
    tg_h1_limits_t lim;
    origin_t *origins;
    int n_idle;
    struct event sweep;
    bool sweep_armed;
    SSL_CTX *ssl_ctx;
    struct evdns_base *dns;
    proxy_t *http_proxy, *https_proxy;
    char **no_proxy;
    size_t n_no_proxy;
    bool no_proxy_all;
    tg_h1_stats_t stats;
    /* The last URL parsed (owned; NULL before the first) and what
     * http_parser made of it: a worker calls the same few URLs over and
     * over, and parsing one costs more than the rest of the request head. */
    char *last_url;
    size_t last_url_len;
    struct http_parser_url last_pu;
    char rbuf[READ_BUF];
};

/* Longest URL kept as the last one parsed. */
#define LAST_URL_MAX 2048

/* http_parser_parse_url, answered from the last call when the URL is the
 * same bytes. Returns 0, or http_parser's non-zero for a bad URL (never
 * kept). */
static int parse_url(tg_h1_t *c, const char *url, size_t len, struct http_parser_url *pu)
{
    if (c->last_url && len == c->last_url_len && !memcmp(url, c->last_url, len)) {
        *pu = c->last_pu;
        return 0;
    }
    http_parser_url_init(pu);
    int rc = http_parser_parse_url(url, len, 0, pu);
    if (rc == 0 && len <= LAST_URL_MAX) {
        free(c->last_url);
        c->last_url = tg_xstrndup(url, len);
        c->last_url_len = len;
        c->last_pu = *pu;
    }
    return rc;
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void call_connect(tg_h1_call_t *u);
static bool call_send(tg_h1_call_t *u);
static void call_read(tg_h1_call_t *u);
static void tls_step(tg_h1_call_t *u);

/* ---- proxies from the environment ---- */

static const char *env2(const char *lower, const char *upper)
{
    const char *v = getenv(lower);
    if (!v || !*v)
        v = getenv(upper);
    return v && *v ? v : NULL;
}

/* "http://user:pass@host:port" or "host:port"; NULL (with a warning) for
 * what this client does not speak. */
static proxy_t *proxy_parse(const char *var, const char *v)
{
    const char *s = v;
    if (strstr(s, "://")) {
        if (strncasecmp(s, "http://", 7) != 0) {
            tg_warn("%s: only http:// proxies are supported; '%s' is ignored", var, v);
            return NULL;
        }
        s += 7;
    }
    size_t len = strcspn(s, "/");
    char *hp = tg_xmalloc(len + 1);
    memcpy(hp, s, len);
    hp[len] = 0;
    proxy_t *p = tg_xcalloc(1, sizeof *p);
    char *at = strrchr(hp, '@');
    char *where = hp;
    if (at) {
        *at = 0;
        size_t ul = strlen(hp);
        unsigned char *b64 = tg_xmalloc(4 * ((ul + 2) / 3) + 1);
        EVP_EncodeBlock(b64, (const unsigned char *)hp, (int)ul);
        tg_buf_t a = {0};
        tg_buf_printf(&a, "Basic %s", b64);
        free(b64);
        p->auth = a.data;
        where = at + 1;
    }
    char *colon = strrchr(where, ':');
    char *rb = strrchr(where, ']');
    if (colon && (!rb || colon > rb)) {
        p->port = atoi(colon + 1);
        *colon = 0;
    } else {
        p->port = 80;
    }
    if (*where == '[') {
        where++;
        if (rb)
            *strrchr(where, ']') = 0;
    }
    p->host = tg_xstrdup(where);
    tg_buf_t b = {0};
    tg_buf_printf(&b, strchr(p->host, ':') ? "[%s]:%d" : "%s:%d", p->host, p->port);
    p->hostport = b.data;
    free(hp);
    if (!*p->host || p->port <= 0 || p->port > 65535) {
        tg_warn("%s: '%s' is not host:port; ignored", var, v);
        free(p->host);
        free(p->hostport);
        free(p->auth);
        free(p);
        return NULL;
    }
    return p;
}

static void proxy_free(proxy_t *p)
{
    if (!p)
        return;
    free(p->host);
    free(p->hostport);
    free(p->auth);
    free(p);
}

static void read_proxy_env(tg_h1_t *c)
{
    const char *all = env2("all_proxy", "ALL_PROXY");
    const char *h = env2("http_proxy", "HTTP_PROXY");
    const char *s = env2("https_proxy", "HTTPS_PROXY");
    if (h || all)
        c->http_proxy = proxy_parse(h ? "HTTP_PROXY" : "ALL_PROXY", h ? h : all);
    if (s || all)
        c->https_proxy = proxy_parse(s ? "HTTPS_PROXY" : "ALL_PROXY", s ? s : all);
    const char *np = env2("no_proxy", "NO_PROXY");
    if (!np)
        return;
    char *copy = tg_xstrdup(np), *save = NULL;
    for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (!strcmp(t, "*")) {
            c->no_proxy_all = true;
            continue;
        }
        while (*t == '.' || *t == '*')
            t++;
        char *colon = strchr(t, ':');
        if (colon && !strchr(colon + 1, ':'))
            *colon = 0; /* a port in an entry: the host alone decides */
        if (!*t)
            continue;
        c->no_proxy = tg_xrealloc(c->no_proxy, (c->n_no_proxy + 1) * sizeof(char *));
        c->no_proxy[c->n_no_proxy++] = tg_xstrdup(t);
    }
    free(copy);
}

/* NO_PROXY: the host itself or a name under a listed domain. */
static bool no_proxy_for(const tg_h1_t *c, const char *host)
{
    if (c->no_proxy_all)
        return true;
    size_t hl = strlen(host);
    for (size_t i = 0; i < c->n_no_proxy; i++) {
        const char *e = c->no_proxy[i];
        size_t el = strlen(e);
        if (hl == el && !strcasecmp(host, e))
            return true;
        if (hl > el && host[hl - el - 1] == '.' && !strcasecmp(host + hl - el, e))
            return true;
    }
    return false;
}

/* ---- origins ---- */

static bool numeric_host(origin_t *o)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&o->addrs[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o->addrs[0];
    memset(&o->addrs[0], 0, sizeof o->addrs[0]);
    if (inet_pton(AF_INET, o->host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)o->port);
        o->addr_lens[0] = sizeof *s4;
    } else if (inet_pton(AF_INET6, o->host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)o->port);
        o->addr_lens[0] = sizeof *s6;
    } else {
        return false;
    }
    o->n_addrs = 1;
    o->addrs_until = INT64_MAX;
    return true;
}

static origin_t *origin_get(tg_h1_t *c, bool tls, const char *host, size_t hlen, int port)
{
    for (origin_t *o = c->origins; o; o = o->next)
        if (o->tls == tls && o->port == port && !strncasecmp(o->host, host, hlen) && !o->host[hlen])
            return o;
    origin_t *o = tg_xcalloc(1, sizeof *o);
    o->tls = tls;
    o->host = tg_xmalloc(hlen + 1);
    memcpy(o->host, host, hlen);
    o->host[hlen] = 0;
    o->port = port;
    tg_buf_t hp = {0};
    bool v6 = memchr(host, ':', hlen) != NULL;
    tg_buf_printf(&hp, v6 ? "[%s]" : "%s", o->host);
    if (port != (tls ? 443 : 80))
        tg_buf_printf(&hp, ":%d", port);
    o->hostport = hp.data;
    if (!no_proxy_for(c, o->host))
        o->proxy = tls ? c->https_proxy : c->http_proxy;
    if (o->proxy) { /* the proxy's address is what gets resolved */
        origin_t tmp = {.host = o->proxy->host, .port = o->proxy->port};
        if (numeric_host(&tmp)) {
            memcpy(o->addrs, tmp.addrs, sizeof o->addrs);
            memcpy(o->addr_lens, tmp.addr_lens, sizeof o->addr_lens);
            o->n_addrs = 1;
            o->addrs_until = INT64_MAX;
        }
    } else {
        numeric_host(o);
    }
    o->next = c->origins;
    c->origins = o;
    return o;
}

/* ---- connections ---- */

static void conn_close(conn_t *k)
{
    if (!k)
        return;
    if (k->rev_armed)
        event_del(&k->rev);
    event_del(&k->wev);
    if (k->ssl) {
        SSL_set_app_data(k->ssl, NULL);
        /* No close_notify is sent: the connection is dropped. Marked shut
         * down all the same, or OpenSSL makes the origin's session (which
         * may be this connection's) not resumable. */
        SSL_set_shutdown(k->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(k->ssl);
    }
    if (k->fd >= 0)
        close(k->fd);
    free(k);
}

static void idle_unlink(conn_t *k)
{
    origin_t *o = k->o;
    if (k->prev)
        k->prev->next = k->next;
    else
        o->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    o->n_idle--;
    k->c->n_idle--;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    tg_h1_t *c = arg;
    int64_t now = tg_mono_ms();
    for (origin_t *o = c->origins; o; o = o->next) {
        conn_t *k = o->idle;
        while (k) {
            conn_t *next = k->next;
            if (now - k->idle_since >= c->lim.idle_timeout_ms) {
                idle_unlink(k);
                conn_close(k);
                c->stats.idle_closed++;
            }
            k = next;
        }
    }
    if (!c->n_idle) {
        event_del(&c->sweep);
        c->sweep_armed = false;
    }
}

/* Back to its origin's pool, or closed when the pools are full. */
static void pool_put(conn_t *k)
{
    tg_h1_t *c = k->c;
    origin_t *o = k->o;
    k->u = NULL;
    if (o->n_idle >= c->lim.max_idle_per_origin || c->n_idle >= c->lim.max_idle_total) {
        conn_close(k);
        c->stats.idle_closed++;
        return;
    }
    k->idle_since = tg_mono_ms();
    k->prev = NULL;
    k->next = o->idle;
    if (o->idle)
        o->idle->prev = k;
    o->idle = k;
    o->n_idle++;
    c->n_idle++;
    if (!c->sweep_armed) {
        struct timeval tv = {.tv_sec = SWEEP_MS / 1000, .tv_usec = (SWEEP_MS % 1000) * 1000};
        event_add(&c->sweep, &tv);
        c->sweep_armed = true;
    }
}

/* The most recently used idle connection of o still inside its idle time. */
static conn_t *pool_take(tg_h1_t *c, origin_t *o)
{
    int64_t now = tg_mono_ms();
    while (o->idle) {
        conn_t *k = o->idle;
        idle_unlink(k);
        if (now - k->idle_since < c->lim.idle_timeout_ms)
            return k;
        conn_close(k);
        c->stats.idle_closed++;
    }
    return NULL;
}

/* ---- ending a call ---- */

static void call_free(tg_h1_call_t *u)
{
    /* event_del takes the base's lock even for an event that is not
     * pending: the kick, seldom used, is deleted only if it was */
    event_del(&u->timer);
    if (u->kicked)
        event_del(&u->kick);
    tg_buf_free(&u->head);
    tg_buf_free(&u->proxy_in);
    tg_h1resp_free(&u->resp);
    free(u->pend);
    free(u);
}

/* Reports the end (unless cancelled) and frees the call. The connection,
 * if still the call's, is closed first. */
static void call_report(tg_h1_call_t *u, tg_upstream_result_t res, const char *err)
{
    if (u->conn) {
        conn_close(u->conn);
        u->conn = NULL;
    }
    /* the timer is deleted by call_free: it cannot fire before (no loop
     * turn in between) */
    if (!u->cancelled)
        u->cbs.on_done(u->arg, res, err);
    call_free(u);
}

/* A failure: reported now, or from the loop when inside tg_h1_start. */
static void call_fail(tg_h1_call_t *u, tg_upstream_result_t res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void call_fail(tg_h1_call_t *u, tg_upstream_result_t res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->err, sizeof u->err, fmt, ap);
    va_end(ap);
    if (u->conn) {
        conn_close(u->conn);
        u->conn = NULL;
    }
    if (u->starting) {
        u->end_pending = true;
        u->end_res = res;
        u->kicked = true;
        event_active(&u->kick, EV_TIMEOUT, 0);
        return;
    }
    call_report(u, res, u->err);
}

/* The answer ended cleanly: the connection goes back to the pool when it
 * can carry another call, then the owner hears. */
static void call_ok(tg_h1_call_t *u)
{
    conn_t *k = u->conn;
    u->conn = NULL;
    bool reusable = u->resp.keep_alive && !u->over_read && u->state == S_RECV &&
                    (!k->ssl || !SSL_has_pending(k->ssl)); /* read-ahead bytes too */
    if (reusable)
        pool_put(k);
    else
        conn_close(k);
    call_report(u, TG_UP_OK, NULL);
}

/* A reused connection failed before any answer: once more on a new one. */
static bool call_retry(tg_h1_call_t *u)
{
    if (!u->reused || u->retried || tg_h1resp_started(&u->resp))
        return false;
    u->c->stats.retries++;
    u->retried = true;
    u->reused = false;
    conn_close(u->conn);
    u->conn = NULL;
    u->sent = 0;
    call_connect(u);
    return true;
}

/* ---- the answer ---- */

static void on_head(void *arg, int status, const tg_headers_t *h)
{
    tg_h1_call_t *u = arg;
    if (!u->cancelled)
        u->cbs.on_response(u->arg, status, h);
}

static int on_body(void *arg, const char *data, size_t len)
{
    tg_h1_call_t *u = arg;
    return u->cancelled ? -1 : u->cbs.on_data(u->arg, data, len);
}

static const tg_h1resp_cbs_t resp_cbs = {on_head, on_body};

/* Feeds bytes to the reader. True: read on; false: the call ended, paused
 * or was cancelled, and u may be gone. */
static bool call_feed(tg_h1_call_t *u, const char *data, size_t len, bool from_pend)
{
    u->in_callback = true;
    size_t used = tg_h1resp_feed(&u->resp, data, len);
    u->in_callback = false;
    if (from_pend)
        u->pend_off += used;
    if (u->cancelled) {
        call_report(u, TG_UP_BROKEN, "cancelled"); /* quietly: cancelled */
        return false;
    }
    if (u->resp.error) {
        call_fail(u, TG_UP_BROKEN, "%s", u->resp.error);
        return false;
    }
    if (u->resp.stopped) {
        call_fail(u, TG_UP_BROKEN, "aborted");
        return false;
    }
    if (u->resp.complete) {
        if (used < len || (from_pend && u->pend_off < u->pend_len))
            u->over_read = true; /* bytes beyond the answer: never reuse */
        call_ok(u);
        return false;
    }
    if (u->resp.paused) {
        if (!from_pend && used < len) {
            free(u->pend);
            u->pend_len = len - used;
            u->pend = tg_xmalloc(u->pend_len);
            memcpy(u->pend, data + used, u->pend_len);
            u->pend_off = 0;
        }
        if (u->conn->rev_armed) {
            event_del(&u->conn->rev);
            u->conn->rev_armed = false;
        }
        return false;
    }
    return true;
}

static void call_eof(tg_h1_call_t *u, int err)
{
    if (tg_h1resp_eof(&u->resp)) {
        u->resp.keep_alive = false;
        call_ok(u);
        return;
    }
    if (u->resp.error) {
        call_fail(u, TG_UP_BROKEN, "%s", u->resp.error);
        return;
    }
    if (call_retry(u))
        return;
    const char *how = err ? strerror(err) : "closed";
    if (tg_h1resp_started(&u->resp))
        call_fail(u, TG_UP_BROKEN, "the provider's connection broke off mid-answer (%s)", how);
    else
        call_fail(u, TG_UP_BROKEN, "the provider's connection ended before an answer (%s)", how);
}

/* The thread's OpenSSL error queue emptied before an SSL call, as
 * SSL_get_error needs. ERR_clear_error alone costs ~2,000 instructions in
 * OpenSSL 3 even on an empty queue (it resets every slot), twice per call;
 * the queue is almost always empty, and ERR_peek_error is cheap. */
static void tls_clear_errors(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

/* OpenSSL wants the socket for e: wait for it (the read watch is always
 * armed; a write waits on wev). False for any other error. */
static bool tls_wants(conn_t *k, int e)
{
    if (e == SSL_ERROR_WANT_WRITE)
        event_add(&k->wev, NULL);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Reads what the connection has; for TLS until OpenSSL wants the socket. */
static void call_read(tg_h1_call_t *u)
{
    tg_h1_t *c = u->c;
    conn_t *k = u->conn;
    for (;;) {
        ssize_t n;
        if (k->ssl) {
            tls_clear_errors();
            errno = 0;
            int r = SSL_read(k->ssl, c->rbuf, READ_BUF);
            if (r <= 0) {
                int e = SSL_get_error(k->ssl, r);
                if (tls_wants(k, e))
                    return;
                call_eof(u, e == SSL_ERROR_ZERO_RETURN ? 0 : errno ? errno : ECONNRESET);
                return;
            }
            n = r;
        } else {
            n = recv(k->fd, c->rbuf, READ_BUF, 0);
            if (n == 0) {
                call_eof(u, 0);
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return;
                call_eof(u, errno);
                return;
            }
        }
        u->last_ms = tg_mono_ms();
        if (!call_feed(u, c->rbuf, (size_t)n, false))
            return;
        if (!k->ssl && n < READ_BUF)
            return; /* drained: the next readiness brings more */
    }
}

/* ---- the request ---- */

/* "METHOD target HTTP/1.1", Host, the caller's headers, Content-Length. */
static void build_head(tg_h1_call_t *u, const tg_upstream_req_t *req, const char *url,
                       const struct http_parser_url *pu)
{
    tg_buf_t *b = &u->head;
    const char *m = req->method ? req->method : "POST";
    tg_buf_puts(b, m);
    tg_buf_append(b, " ", 1);
    if (u->o->proxy && !u->o->tls) { /* absolute-form for an HTTP proxy */
        tg_buf_puts(b, "http://");
        tg_buf_puts(b, u->o->hostport);
    }
    if (pu->field_set & (1 << UF_PATH))
        tg_buf_append(b, url + pu->field_data[UF_PATH].off, pu->field_data[UF_PATH].len);
    else
        tg_buf_append(b, "/", 1);
    if (pu->field_set & (1 << UF_QUERY)) {
        tg_buf_append(b, "?", 1);
        tg_buf_append(b, url + pu->field_data[UF_QUERY].off, pu->field_data[UF_QUERY].len);
    }
    tg_buf_puts(b, " HTTP/1.1\r\nHost: ");
    tg_buf_puts(b, u->o->hostport);
    tg_buf_append(b, "\r\n", 2);
    if (u->o->proxy && !u->o->tls && u->o->proxy->auth) {
        tg_buf_puts(b, "Proxy-Authorization: ");
        tg_buf_puts(b, u->o->proxy->auth);
        tg_buf_append(b, "\r\n", 2);
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon)
            continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!*v)
            continue; /* "Name:" alone sends nothing, as with libcurl */
        size_t nl = (size_t)(colon - h);
        if ((nl == 4 && !strncasecmp(h, "host", 4)) ||
            (nl == 14 && !strncasecmp(h, "content-length", 14)) ||
            (nl == 17 && !strncasecmp(h, "transfer-encoding", 17)) ||
            (nl == 10 && !strncasecmp(h, "connection", 10)) ||
            (nl == 6 && !strncasecmp(h, "expect", 6)))
            continue;
        tg_buf_puts(b, h);
        tg_buf_append(b, "\r\n", 2);
    }
    bool body_method = !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
    if (req->body_len || body_method) {
        tg_buf_puts(b, "Content-Length: ");
        tg_buf_put_i64(b, (int64_t)req->body_len);
        tg_buf_append(b, "\r\n", 2);
    }
    tg_buf_append(b, "\r\n", 2);
}

/* Writes what is left of head + body: one sendmsg from the exchange's
 * buffers over TCP; over TLS the body was appended to the head. True when
 * the whole request is out on this connection (the caller may read on);
 * false when it waits for the socket, ended, or went again on a new one. */
static bool call_send(tg_h1_call_t *u)
{
    conn_t *k = u->conn;
    u->state = S_SEND;
    size_t total = u->head.len + (k->ssl ? 0 : u->body_len);
    while (u->sent < total) {
        ssize_t n;
        int err = 0;
        if (k->ssl) {
            tls_clear_errors();
            int r = SSL_write(k->ssl, u->head.data + u->sent, (int)(u->head.len - u->sent));
            if (r <= 0) {
                int e = SSL_get_error(k->ssl, r);
                u->write_wants_read = e == SSL_ERROR_WANT_READ;
                if (tls_wants(k, e))
                    return false; /* the watch brings us back */
                err = errno ? errno : EPIPE;
                n = -1;
            } else {
                n = r;
            }
        } else {
            struct iovec iov[2];
            int cnt = 0;
            if (u->sent < u->head.len) {
                iov[cnt].iov_base = u->head.data + u->sent;
                iov[cnt++].iov_len = u->head.len - u->sent;
            }
            size_t boff = u->sent > u->head.len ? u->sent - u->head.len : 0;
            if (u->body_len > boff) {
                iov[cnt].iov_base = (void *)(uintptr_t)(u->body + boff);
                iov[cnt++].iov_len = u->body_len - boff;
            }
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
            n = sendmsg(k->fd, &mh, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    event_add(&k->wev, NULL);
                    return false;
                }
                err = errno;
            }
        }
        if (n < 0) {
            if (!call_retry(u))
                call_fail(u, TG_UP_BROKEN, "sending the request to the provider failed: %s",
                          strerror(err));
            return false;
        }
        u->sent += (size_t)n;
    }
    u->state = S_RECV;
    return true;
}

/* ---- connecting ---- */

static void conn_watch_read(conn_t *k)
{
    if (!k->rev_armed) {
        event_add(&k->rev, NULL);
        k->rev_armed = true;
    }
}

static void call_connected(tg_h1_call_t *u)
{
    conn_t *k = u->conn;
    conn_watch_read(k);
    if (u->o->proxy && u->o->tls) {
        u->state = S_PROXY;
        tg_buf_t b = {0};
        tg_buf_printf(&b, "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n", u->o->host, u->o->port,
                      u->o->host, u->o->port);
        if (strchr(u->o->host, ':')) {
            tg_buf_reset(&b);
            tg_buf_printf(&b, "CONNECT [%s]:%d HTTP/1.1\r\nHost: [%s]:%d\r\n", u->o->host,
                          u->o->port, u->o->host, u->o->port);
        }
        if (u->o->proxy->auth)
            tg_buf_printf(&b, "Proxy-Authorization: %s\r\n", u->o->proxy->auth);
        tg_buf_puts(&b, "\r\n");
        ssize_t n = send(k->fd, b.data, b.len, MSG_NOSIGNAL);
        bool whole = n == (ssize_t)b.len;
        tg_buf_free(&b);
        if (!whole)
            call_fail(u, TG_UP_CONNECT, "sending CONNECT to the proxy %s failed",
                      u->o->proxy->hostport);
        return;
    }
    if (u->o->tls) {
        tls_step(u);
        return;
    }
    call_send(u);
}

/* The proxy's answer to CONNECT: a 2xx head, then the tunnel. */
static void proxy_read(tg_h1_call_t *u)
{
    conn_t *k = u->conn;
    char buf[1024];
    ssize_t n = recv(k->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        call_fail(u, TG_UP_CONNECT, "the proxy %s closed the connection during CONNECT",
                  u->o->proxy->hostport);
        return;
    }
    tg_buf_append(&u->proxy_in, buf, (size_t)n);
    char *end = strstr(u->proxy_in.data, "\r\n\r\n");
    if (!end) {
        if (u->proxy_in.len > CONNECT_LIMIT)
            call_fail(u, TG_UP_CONNECT, "the proxy's answer to CONNECT is too long");
        return;
    }
    int code = 0;
    if (sscanf(u->proxy_in.data, "HTTP/1.%*d %d", &code) != 1 || code / 100 != 2) {
        call_fail(u, TG_UP_CONNECT, "the proxy %s refused CONNECT to %s:%d (status %d)",
                  u->o->proxy->hostport, u->o->host, u->o->port, code);
        return;
    }
    if ((size_t)(end + 4 - u->proxy_in.data) != u->proxy_in.len) {
        call_fail(u, TG_UP_CONNECT, "the proxy sent bytes before the TLS handshake");
        return;
    }
    tg_buf_free(&u->proxy_in);
    tls_step(u);
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    conn_t *k = SSL_get_app_data(ssl);
    if (!k)
        return 0;
    origin_t *o = k->o;
    if (o->n_sessions == MAX_SESSIONS) { /* the oldest goes */
        SSL_SESSION_free(o->sessions[0]);
        memmove(o->sessions, o->sessions + 1, (MAX_SESSIONS - 1) * sizeof o->sessions[0]);
        o->n_sessions--;
    }
    o->sessions[o->n_sessions++] = sess;
    return 1; /* we keep the reference */
}

/* Offers the origin's newest resumable session to a new connection. */
static void offer_session(origin_t *o, SSL *ssl)
{
    while (o->n_sessions) {
        SSL_SESSION *sess = o->sessions[o->n_sessions - 1];
        bool once = SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION;
        if (SSL_SESSION_is_resumable(sess))
            SSL_set_session(ssl, sess); /* takes its own reference */
        else
            once = true;
        if (once) {
            SSL_SESSION_free(sess);
            o->n_sessions--;
        }
        if (!once || SSL_get_session(ssl))
            return;
    }
}

static SSL_CTX *ssl_ctx(tg_h1_t *c)
{
    if (c->ssl_ctx)
        return c->ssl_ctx;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* The system store; OpenSSL honours SSL_CERT_FILE and SSL_CERT_DIR. */
    SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One read(2) per burst of records rather than two per record (a
     * record's 5-byte header, then its body). Safe here because call_read
     * calls SSL_read until OpenSSL wants the socket, and on_kick reads on
     * after a pause: bytes OpenSSL holds never wait for a readiness that
     * will not come. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    c->ssl_ctx = ctx;
    return ctx;
}

static void tls_step(tg_h1_call_t *u)
{
    conn_t *k = u->conn;
    u->state = S_TLS;
    if (!k->ssl) {
        SSL_CTX *ctx = ssl_ctx(u->c);
        if (!ctx || !(k->ssl = SSL_new(ctx))) {
            call_fail(u, TG_UP_CONNECT, "TLS: cannot set up a session");
            return;
        }
        SSL_set_app_data(k->ssl, k);
        SSL_set_fd(k->ssl, k->fd);
        SSL_set_connect_state(k->ssl);
        struct in6_addr any;
        bool ip =
            inet_pton(AF_INET, u->o->host, &any) == 1 || inet_pton(AF_INET6, u->o->host, &any) == 1;
        if (ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), u->o->host);
        } else {
            SSL_set_tlsext_host_name(k->ssl, u->o->host);
            SSL_set1_host(k->ssl, u->o->host);
        }
        offer_session(u->o, k->ssl);
    }
    tls_clear_errors();
    errno = 0;
    int r = SSL_do_handshake(k->ssl);
    if (r == 1) {
        if (SSL_session_reused(k->ssl))
            u->c->stats.tls_resumed++;
        if (u->body_len) /* one TLS write for the whole request */
            tg_buf_append(&u->head, u->body, u->body_len);
        u->body_len = 0;
        call_send(u);
        return;
    }
    if (tls_wants(k, SSL_get_error(k->ssl, r)))
        return;
    long vr = SSL_get_verify_result(k->ssl);
    unsigned long oe = ERR_peek_error();
    if (vr != X509_V_OK)
        call_fail(u, TG_UP_CONNECT, "TLS: the certificate of %s does not verify: %s", u->o->host,
                  X509_verify_cert_error_string(vr));
    else if (oe)
        call_fail(u, TG_UP_CONNECT, "TLS handshake with %s failed: %s", u->o->host,
                  ERR_reason_error_string(oe) ? ERR_reason_error_string(oe) : "error");
    else
        call_fail(u, TG_UP_CONNECT, "TLS handshake with %s failed: the connection %s", u->o->host,
                  errno ? strerror(errno) : "was closed");
    ERR_clear_error();
}

static void call_try_addr(tg_h1_call_t *u)
{
    origin_t *o = u->o;
    tg_h1_t *c = u->c;
    while (u->addr_i < o->n_addrs) {
        const struct sockaddr *sa = (const struct sockaddr *)&o->addrs[u->addr_i];
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            call_fail(u, TG_UP_CONNECT, "cannot open a socket: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        c->stats.connects++;
        conn_t *k = tg_xcalloc(1, sizeof *k);
        k->c = c;
        k->o = o;
        k->fd = fd;
        k->u = u;
        event_assign(&k->rev, c->base, fd, EV_READ | EV_PERSIST, conn_on_read, k);
        event_assign(&k->wev, c->base, fd, EV_WRITE, conn_on_write, k);
        u->conn = k;
        u->state = S_CONNECT;
        if (connect(fd, sa, o->addr_lens[u->addr_i]) == 0) {
            call_connected(u);
            return;
        }
        if (errno == EINPROGRESS) {
            event_add(&k->wev, NULL);
            return;
        }
        int err = errno;
        conn_close(k);
        u->conn = NULL;
        u->addr_i++;
        if (u->addr_i >= o->n_addrs) {
            call_fail(u, TG_UP_CONNECT, "cannot connect to %s: %s",
                      o->proxy ? o->proxy->hostport : o->hostport, strerror(err));
            return;
        }
    }
    call_fail(u, TG_UP_CONNECT, "no address for %s", o->host);
}

static void on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
    tg_h1_call_t *u = arg;
    u->dns = NULL;
    if (u->cancelled || u->dns_timed_out) {
        if (res)
            evutil_freeaddrinfo(res);
        if (u->cancelled)
            call_free(u);
        else
            call_fail(u, TG_UP_TIMEOUT, "connecting to the provider took longer than %lld ms",
                      (long long)u->connect_ms);
        return;
    }
    origin_t *o = u->o;
    const char *name = o->proxy ? o->proxy->host : o->host;
    int port = o->proxy ? o->proxy->port : o->port;
    if (result != 0 || !res) {
        call_fail(u, TG_UP_CONNECT, "cannot resolve %s: %s", name, evutil_gai_strerror(result));
        return;
    }
    int n = 0;
    for (struct evutil_addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof o->addrs[0])
            continue;
        memcpy(&o->addrs[n], ai->ai_addr, ai->ai_addrlen);
        ((struct sockaddr_in *)&o->addrs[n])->sin_port =
            htons((uint16_t)port); /* same offset in v6 */
        o->addr_lens[n] = (socklen_t)ai->ai_addrlen;
        n++;
    }
    evutil_freeaddrinfo(res);
    o->n_addrs = n;
    o->addrs_until = tg_mono_ms() + u->c->lim.dns_ttl_ms;
    u->addr_i = 0;
    call_try_addr(u);
}

/* A new connection: resolve (cache, or evdns), then connect. */
static void call_connect(tg_h1_call_t *u)
{
    origin_t *o = u->o;
    tg_h1_t *c = u->c;
    u->state = S_DNS;
    if (o->n_addrs && tg_mono_ms() < o->addrs_until) {
        u->addr_i = 0;
        call_try_addr(u);
        return;
    }
    if (!c->dns) {
        c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!c->dns)
            c->dns = evdns_base_new(c->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!c->dns) {
            call_fail(u, TG_UP_CONNECT, "cannot start the resolver");
            return;
        }
    }
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    const char *name = o->proxy ? o->proxy->host : o->host;
    /* May call on_dns at once (the hosts file); it then returns NULL. */
    struct evdns_getaddrinfo_request *r = evdns_getaddrinfo(c->dns, name, NULL, &hints, on_dns, u);
    if (r) /* not answered yet: u is still ours to touch */
        u->dns = r;
}

/* ---- events ---- */

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    conn_t *k = arg;
    tg_h1_call_t *u = k->u;
    if (!u) { /* idle and readable: the provider closed it, or sent unasked bytes */
        tg_h1_t *c = k->c;
        idle_unlink(k);
        conn_close(k);
        c->stats.idle_closed++;
        return;
    }
    switch (u->state) {
    case S_PROXY: proxy_read(u); break;
    case S_TLS: tls_step(u); break;
    case S_SEND:
        /* TLS: a write that waited for this readiness goes first; reading
         * follows only once the request is out (a plain socket's early
         * answer is read while sending) */
        if (u->write_wants_read) {
            u->write_wants_read = false;
            if (!call_send(u))
                return;
        }
        __attribute__((fallthrough));
    case S_RECV:
        /* paused, or the rest of a paused answer still waits for on_kick */
        if (!u->resp.paused && u->pend_off >= u->pend_len)
            call_read(u);
        break;
    default: break;
    }
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    conn_t *k = arg;
    tg_h1_call_t *u = k->u;
    if (!u)
        return;
    switch (u->state) {
    case S_CONNECT: {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_close(k);
            u->conn = NULL;
            u->addr_i++;
            if (u->addr_i < u->o->n_addrs) {
                call_try_addr(u);
                return;
            }
            call_fail(u, TG_UP_CONNECT, "cannot connect to %s: %s",
                      u->o->proxy ? u->o->proxy->hostport : u->o->hostport, strerror(err));
            return;
        }
        call_connected(u);
        break;
    }
    case S_TLS: tls_step(u); break;
    case S_SEND: call_send(u); break;
    case S_RECV: call_read(u); break; /* TLS read that wanted to write */
    default: break;
    }
}

static void arm_timer(tg_h1_call_t *u, int64_t ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(&u->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    tg_h1_call_t *u = arg;
    int64_t now = tg_mono_ms();
    if (u->state < S_SEND) {
        int64_t left = u->connect_ms - (now - u->t0_ms);
        if (left <= 0) {
            if (u->dns) { /* on_dns runs later and reports the timeout */
                u->dns_timed_out = true;
                evdns_getaddrinfo_cancel(u->dns);
                return;
            }
            call_fail(u, TG_UP_TIMEOUT, "connecting to the provider took longer than %lld ms",
                      (long long)u->connect_ms);
            return;
        }
        arm_timer(u, left);
        return;
    }
    if (u->resp.paused) { /* waiting for our own client */
        arm_timer(u, u->idle_ms);
        return;
    }
    int64_t idle = now - u->last_ms;
    if (idle < u->idle_ms) {
        arm_timer(u, u->idle_ms - idle);
        return;
    }
    call_fail(u, TG_UP_TIMEOUT, "the provider sent nothing for longer than its timeout");
}

/* A deferred end, or the rest of a paused answer after resume. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    tg_h1_call_t *u = arg;
    if (u->end_pending) {
        u->end_pending = false;
        call_report(u, u->end_res, u->err);
        return;
    }
    if (u->resp.paused || !u->conn)
        return;
    if (u->pend_off < u->pend_len) {
        if (!call_feed(u, u->pend + u->pend_off, u->pend_len - u->pend_off, true))
            return;
        free(u->pend);
        u->pend = NULL;
        u->pend_len = u->pend_off = 0;
    }
    call_read(u);
}

/* ---- the interface ---- */

tg_h1_t *tg_h1_new(struct event_base *base, const tg_h1_limits_t *limits)
{
    tg_h1_t *c = tg_xcalloc(1, sizeof *c);
    c->base = base;
    c->lim = *limits;
    evtimer_assign(&c->sweep, base, on_sweep, c);
    read_proxy_env(c);
    return c;
}

void tg_h1_free(tg_h1_t *c)
{
    if (!c)
        return;
    origin_t *o = c->origins;
    while (o) {
        origin_t *next = o->next;
        while (o->idle) {
            conn_t *k = o->idle;
            idle_unlink(k);
            conn_close(k);
        }
        for (int i = 0; i < o->n_sessions; i++)
            SSL_SESSION_free(o->sessions[i]);
        free(o->host);
        free(o->hostport);
        free(o);
        o = next;
    }
    if (c->sweep_armed)
        event_del(&c->sweep);
    if (c->dns)
        evdns_base_free(c->dns, 0);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    proxy_free(c->http_proxy);
    proxy_free(c->https_proxy);
    for (size_t i = 0; i < c->n_no_proxy; i++)
        free(c->no_proxy[i]);
    free(c->no_proxy);
    free(c->last_url);
    free(c);
}

tg_h1_call_t *tg_h1_start(tg_h1_t *c, const tg_upstream_req_t *req, const tg_upstream_cbs_t *cbs,
                          void *arg)
{
    tg_h1_call_t *u = tg_xcalloc(1, sizeof *u);
    u->c = c;
    u->cbs = *cbs;
    u->arg = arg;
    u->starting = true;
    u->body = req->body ? req->body : "";
    u->body_len = req->body_len;
    u->t0_ms = u->last_ms = tg_mono_ms();
    u->connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000;
    u->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 60000;
    evtimer_assign(&u->timer, c->base, on_timer, u);
    event_assign(&u->kick, c->base, -1, 0, on_kick, u);
    const char *m = req->method ? req->method : "POST";
    tg_h1resp_init(&u->resp, !strcmp(m, "HEAD"), &resp_cbs, u);

    const char *url = req->url ? req->url : "";
    struct http_parser_url pu;
    bool https = !strncasecmp(url, "https://", 8);
    if (parse_url(c, url, strlen(url), &pu) != 0 || !(pu.field_set & (1 << UF_HOST)) ||
        (!https && strncasecmp(url, "http://", 7) != 0)) {
        call_fail(u, TG_UP_CONNECT, "the provider URL '%.200s' is not an http(s) URL", url);
        u->starting = false;
        return u;
    }
    int port = pu.field_set & (1 << UF_PORT) ? pu.port : https ? 443 : 80;
    u->o = origin_get(c, https, url + pu.field_data[UF_HOST].off, pu.field_data[UF_HOST].len, port);
    build_head(u, req, url, &pu);
    arm_timer(u, u->connect_ms < u->idle_ms ? u->connect_ms : u->idle_ms);

    conn_t *k = pool_take(c, u->o);
    if (k) {
        c->stats.reuses++;
        k->u = u;
        u->conn = k;
        u->reused = true;
        if (k->ssl && u->body_len) {
            tg_buf_append(&u->head, u->body, u->body_len);
            u->body_len = 0;
        }
        call_send(u);
    } else {
        call_connect(u);
    }
    u->starting = false;
    return u;
}

void tg_h1_resume(tg_h1_call_t *u)
{
    if (!u->resp.paused)
        return;
    tg_h1resp_unpause(&u->resp);
    u->last_ms = tg_mono_ms();
    if (u->conn)
        conn_watch_read(u->conn);
    u->kicked = true;
    event_active(&u->kick, EV_TIMEOUT, 0);
}

void tg_h1_cancel(tg_h1_call_t *u)
{
    u->cancelled = true;
    if (u->in_callback)
        return; /* call_feed sees it when the reader returns */
    if (u->dns) {
        struct evdns_getaddrinfo_request *r = u->dns;
        u->dns = NULL;
        event_del(&u->timer);
        evdns_getaddrinfo_cancel(r); /* on_dns frees the call */
        return;
    }
    if (u->conn) { /* mid-answer or mid-request: never back to the pool */
        conn_close(u->conn);
        u->conn = NULL;
    }
    call_free(u);
}

tg_h1_stats_t tg_h1_stats(const tg_h1_t *c)
{
    tg_h1_stats_t s = c->stats;
    s.idle_now = c->n_idle;
    return s;
}
