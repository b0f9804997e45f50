/* The upstream HTTP/1.1 client: its answer reader (h1parse.c) on edge
 * cases and any chunking, and its pools (h1client.c) against a scripted
 * server on a loopback socket in the test's own event loop. */
#include "test.h"

#include "core/util.h"
#include "proxy/h1client.h"
#include "proxy/h1parse.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the reader ---- */

typedef struct {
    int status, heads;
    tg_buf_t hdrs, body;
    int pause_every; /* on_body returns 1 on every call when set */
} got_t;

static void got_head(void *arg, int status, const tg_headers_t *h)
{
    got_t *g = arg;
    g->status = status;
    g->heads++;
    for (size_t i = 0; i < h->n; i++)
        tg_buf_printf(&g->hdrs, "%s=%s;", h->names[i], h->values[i]);
}

static int got_body(void *arg, const char *data, size_t len)
{
    got_t *g = arg;
    tg_buf_append(&g->body, data, len);
    return g->pause_every ? 1 : 0;
}

static const tg_h1resp_cbs_t got_cbs = {got_head, got_body};

static void got_free(got_t *g)
{
    tg_buf_free(&g->hdrs);
    tg_buf_free(&g->body);
}

/* A reader and what it gave. */
typedef struct {
    got_t g;
    tg_h1resp_t r;
} rd_t;

static rd_t *rd_new(bool head_request, int pause_every)
{
    rd_t *x = tg_xcalloc(1, sizeof *x);
    x->g.pause_every = pause_every;
    tg_h1resp_init(&x->r, head_request, &got_cbs, &x->g);
    return x;
}

static void rd_free(rd_t *x)
{
    tg_h1resp_free(&x->r);
    got_free(&x->g);
    free(x);
}

/* Feeds `in` in pieces of `step`, unpausing whenever paused. Returns the
 * bytes consumed. */
static size_t feed_steps(tg_h1resp_t *r, const char *in, size_t n, size_t step)
{
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        size_t used = tg_h1resp_feed(r, in + off, k);
        off += used;
        if (r->paused) {
            tg_h1resp_unpause(r);
            continue;
        }
        if (used < k)
            break;
    }
    return off;
}

TEST(h1parse_same_answer_for_any_chunking)
{
    const char *cases[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
        "X-A:  spaced  \r\n\r\n{\"ok\":true}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: spaced\r\n\r\n"
        "4;ext=1\r\n{\"ok\r\n7\r\n\":true}\r\n0\r\nTrailer: x\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\nHTTP/1.1 200 OK\r\nX-A: spaced\r\n"
        "Content-Length: 11\r\n\r\n{\"ok\":true}",
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t step = 1; step <= 64; step = step * 2 + 1) {
            for (int pause = 0; pause < 2; pause++) {
                rd_t *x = rd_new(false, pause);
                size_t n = strlen(cases[c]);
                CHECK_INT(feed_steps(&x->r, cases[c], n, step), n);
                CHECK(x->r.complete);
                CHECK(x->r.keep_alive);
                CHECK(!x->r.error);
                CHECK_INT(x->g.status, 200);
                CHECK_INT(x->g.heads, 1);
                CHECK_STR(x->g.body.data, "{\"ok\":true}");
                CHECK(strstr(x->g.hdrs.data, "X-A=spaced;") != NULL);
                CHECK(!strstr(x->g.hdrs.data, "X-Interim"));
                rd_free(x);
            }
        }
    }
}

/* Heads larger than the reader's first block, with long names and values
 * cut anywhere: every header as sent, whatever the cuts (the entries that
 * outgrow a block move whole). */
TEST(h1parse_long_heads_read_alike_for_any_chunking)
{
    tg_buf_t in = {0}, want = {0};
    tg_buf_puts(&in, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\nHTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 40; i++) {
        tg_buf_t name = {0}, value = {0};
        tg_buf_printf(&name, "X-Header-%d", i);
        for (int k = 0; k < (i % 7) * (i % 5) * 11; k++)
            tg_buf_append(&name, "n", 1);
        for (int k = 0; k < (i == 17 ? 3000 : i * 13); k++)
            tg_buf_append(&value, &"abcdefghij"[k % 10], 1);
        tg_buf_printf(&in, "%s: %s\r\n", name.data, value.data ? value.data : "");
        tg_buf_printf(&want, "%s=%s;", name.data, value.data ? value.data : "");
        tg_buf_free(&name);
        tg_buf_free(&value);
    }
    tg_buf_puts(&in, "Content-Length: 2\r\n\r\nok");
    tg_buf_puts(&want, "Content-Length=2;");
    static const size_t steps[] = {1, 2, 3, 7, 64, 1000, 100000};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        rd_t *x = rd_new(false, 0);
        CHECK_INT(feed_steps(&x->r, in.data, in.len, steps[s]), in.len);
        CHECK(x->r.complete && !x->r.error);
        CHECK_INT(x->g.heads, 1);
        CHECK_STR(x->g.hdrs.data, want.data);
        CHECK_STR(x->g.body.data, "ok");
        rd_free(x);
    }
    tg_buf_free(&in);
    tg_buf_free(&want);
}

TEST(h1parse_no_body_for_head_204_304)
{
    const struct {
        const char *in;
        bool head;
        int status;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", true, 200},
        {"HTTP/1.1 204 No Content\r\n\r\n", false, 204},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\n", false, 304},
    };
    for (size_t i = 0; i < 3; i++) {
        rd_t *x = rd_new(cases[i].head, 0);
        size_t n = strlen(cases[i].in);
        CHECK_INT(tg_h1resp_feed(&x->r, cases[i].in, n), n);
        CHECK(x->r.complete);
        CHECK(x->r.keep_alive);
        CHECK_INT(x->g.status, cases[i].status);
        CHECK_INT(x->g.body.len, 0);
        rd_free(x);
    }
}

TEST(h1parse_close_delimited_needs_eof)
{
    rd_t *x = rd_new(false, 0);
    const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello";
    CHECK_INT(tg_h1resp_feed(&x->r, in, strlen(in)), strlen(in));
    CHECK(!x->r.complete);
    CHECK(tg_h1resp_eof(&x->r));
    CHECK(x->r.complete);
    CHECK(!x->r.keep_alive);
    CHECK_STR(x->g.body.data, "hello");
    rd_free(x);
}

TEST(h1parse_cut_answers_are_not_complete)
{
    const char *cuts[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Le",
    };
    for (size_t i = 0; i < 3; i++) {
        rd_t *x = rd_new(false, 0);
        tg_h1resp_feed(&x->r, cuts[i], strlen(cuts[i]));
        CHECK(tg_h1resp_started(&x->r));
        CHECK(!tg_h1resp_eof(&x->r));
        CHECK(!x->r.complete);
        rd_free(x);
    }
    /* nothing read at all: not started, not complete */
    rd_t *x = rd_new(false, 0);
    CHECK(!tg_h1resp_started(&x->r));
    CHECK(!tg_h1resp_eof(&x->r));
    rd_free(x);
}

TEST(h1parse_malformed_and_oversized_heads_are_errors)
{
    const char *bad[] = {"garbage\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"};
    for (size_t i = 0; i < 3; i++) {
        rd_t *x = rd_new(false, 0);
        tg_h1resp_feed(&x->r, bad[i], strlen(bad[i]));
        CHECK(x->r.error != NULL);
        CHECK(!x->r.complete);
        rd_free(x);
    }
    /* a NUL opening a header value (http-parser lets it through there):
     * the head is kept as C strings */
    static const char nul[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding:\0chunked\r\n\r\n0\r\n\r\n";
    rd_t *z = rd_new(false, 0);
    tg_h1resp_feed(&z->r, nul, sizeof nul - 1);
    CHECK(z->r.error && strstr(z->r.error, "NUL"));
    CHECK_INT(z->g.heads, 0);
    rd_free(z);
    /* 70 KiB of one header value, fed in 1 KiB pieces */
    tg_buf_t big = {0};
    tg_buf_puts(&big, "HTTP/1.1 200 OK\r\nX-Big: ");
    for (int i = 0; i < 70 * 1024; i++)
        tg_buf_append(&big, "a", 1);
    tg_buf_puts(&big, "\r\nContent-Length: 0\r\n\r\n");
    rd_t *x = rd_new(false, 0);
    feed_steps(&x->r, big.data, big.len, 1024);
    CHECK(x->r.error && strstr(x->r.error, "64 KiB"));
    CHECK_INT(x->g.heads, 0);
    rd_free(x);
    /* 300 small headers */
    tg_buf_reset(&big);
    tg_buf_puts(&big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 300; i++)
        tg_buf_printf(&big, "X-%d: v\r\n", i);
    tg_buf_puts(&big, "Content-Length: 0\r\n\r\n");
    x = rd_new(false, 0);
    tg_h1resp_feed(&x->r, big.data, big.len);
    CHECK(x->r.error && strstr(x->r.error, "200 headers"));
    rd_free(x);
    tg_buf_free(&big);
}

TEST(h1parse_leaves_bytes_after_the_answer)
{
    rd_t *x = rd_new(false, 0);
    const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    size_t used = tg_h1resp_feed(&x->r, in, strlen(in));
    CHECK(x->r.complete);
    CHECK_INT(used, strlen(in) - strlen("HTTP/1.1 200 OK\r\n"));
    CHECK_STR(x->g.body.data, "ok");
    rd_free(x);
}

TEST(h1parse_http10_and_connection_close_are_not_kept)
{
    const char *ins[] = {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
                         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
    for (size_t i = 0; i < 2; i++) {
        rd_t *x = rd_new(false, 0);
        tg_h1resp_feed(&x->r, ins[i], strlen(ins[i]));
        CHECK(x->r.complete);
        CHECK(!x->r.keep_alive);
        rd_free(x);
    }
}

TEST(h1parse_pause_stops_delivery_until_unpaused)
{
    rd_t *x = rd_new(false, 1);
    const char *in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    size_t n = strlen(in);
    size_t used = tg_h1resp_feed(&x->r, in, n);
    CHECK(x->r.paused);
    CHECK_STR(x->g.body.data, "abc");
    CHECK(used < n);
    CHECK_INT(tg_h1resp_feed(&x->r, in + used, n - used), 0); /* paused: nothing taken */
    tg_h1resp_unpause(&x->r);
    used += tg_h1resp_feed(&x->r, in + used, n - used);
    CHECK_STR(x->g.body.data, "abcdef");
    tg_h1resp_unpause(&x->r);
    used += tg_h1resp_feed(&x->r, in + used, n - used);
    CHECK(x->r.complete);
    CHECK_INT(used, n);
    rd_free(x);
}

/* ---- the pools, against a scripted server ---- */

typedef enum {
    SRV_ANSWER,         /* answers each request, keeps the connection */
    SRV_ANSWER_CLOSE,   /* answers, then closes (no Connection: close) */
    SRV_DROP_SECOND,    /* closes the connection on its second request, unanswered */
    SRV_ANSWER_EXTRA,   /* answers with bytes beyond the answer */
    SRV_CONN_CLOSE_HDR, /* answers with Connection: close */
    SRV_HANG            /* reads requests, never answers */
} srv_mode_t;

typedef struct srv srv_t;
typedef struct {
    srv_t *s;
    int fd;
    int requests;
    struct event *ev;
    tg_buf_t in;
} srv_conn_t;

struct srv {
    struct event_base *base;
    int lfd, port;
    struct event *lev;
    srv_mode_t mode;
    int accepted;
    srv_conn_t *conns[16];
    int n_conns;
};

static void srv_conn_close(srv_conn_t *sc)
{
    if (sc->fd < 0)
        return;
    event_free(sc->ev);
    close(sc->fd);
    sc->fd = -1;
}

static void srv_on_read(evutil_socket_t fd, short what, void *arg)
{
    srv_conn_t *sc = arg;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
        srv_conn_close(sc);
        return;
    }
    tg_buf_append(&sc->in, buf, (size_t)n);
    char *end;
    while (sc->in.data && (end = strstr(sc->in.data, "\r\n\r\n"))) {
        const char *cl = strcasestr(sc->in.data, "content-length:");
        size_t body = cl && cl < end ? (size_t)atoi(cl + 15) : 0;
        size_t need = (size_t)(end + 4 - sc->in.data) + body;
        if (sc->in.len < need)
            return;
        memmove(sc->in.data, sc->in.data + need, sc->in.len - need + 1);
        sc->in.len -= need;
        sc->requests++;
        srv_mode_t m = sc->s->mode;
        if (m == SRV_HANG)
            continue;
        if (m == SRV_DROP_SECOND && sc->requests == 2) {
            srv_conn_close(sc);
            return;
        }
        const char *ans =
            m == SRV_CONN_CLOSE_HDR
                ? "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
            : m == SRV_ANSWER_EXTRA ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX"
                                    : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if (send(fd, ans, strlen(ans), MSG_NOSIGNAL) < 0)
            return;
        if (m == SRV_ANSWER_CLOSE || m == SRV_CONN_CLOSE_HDR) {
            srv_conn_close(sc);
            return;
        }
    }
}

static void srv_on_accept(evutil_socket_t fd, short what, void *arg)
{
    srv_t *s = arg;
    int cfd = accept(fd, NULL, NULL);
    if (cfd < 0 || s->n_conns == 16) {
        if (cfd >= 0)
            close(cfd);
        return;
    }
    evutil_make_socket_nonblocking(cfd);
    srv_conn_t *sc = tg_xcalloc(1, sizeof *sc);
    sc->s = s;
    sc->fd = cfd;
    sc->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, srv_on_read, sc);
    event_add(sc->ev, NULL);
    s->conns[s->n_conns++] = sc;
    s->accepted++;
}

static void srv_start(srv_t *s, struct event_base *base, srv_mode_t mode)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a);
    listen(s->lfd, 16);
    socklen_t len = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    evutil_make_socket_nonblocking(s->lfd);
    s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, srv_on_accept, s);
    event_add(s->lev, NULL);
}

static void srv_stop(srv_t *s)
{
    for (int i = 0; i < s->n_conns; i++) {
        srv_conn_close(s->conns[i]);
        tg_buf_free(&s->conns[i]->in);
        free(s->conns[i]);
    }
    event_free(s->lev);
    close(s->lfd);
}

typedef struct {
    int done, status;
    tg_upstream_result_t res;
    tg_buf_t body;
    struct event_base *base;
} call_t;

static void c_resp(void *arg, int status, const tg_headers_t *h)
{
    ((call_t *)arg)->status = status;
}
static int c_data(void *arg, const char *d, size_t n)
{
    tg_buf_append(&((call_t *)arg)->body, d, n);
    return 0;
}
static void c_done(void *arg, tg_upstream_result_t res, const char *err)
{
    call_t *c = arg;
    c->done++;
    c->res = res;
    event_base_loopbreak(c->base);
}
static const tg_upstream_cbs_t call_cbs = {c_resp, c_data, c_done};

/* One POST to the server; runs the loop until it ends (or 2 s). */
static void run_call(struct event_base *base, tg_h1_t *h, int port, call_t *c)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", port);
    const char *hdrs[] = {"Content-Type: application/json"};
    tg_upstream_req_t req = {.method = "POST",
                             .url = url,
                             .headers = hdrs,
                             .n_headers = 1,
                             .body = "{}",
                             .body_len = 2,
                             .connect_timeout_ms = 1000,
                             .idle_timeout_ms = 2000};
    memset(c, 0, sizeof *c);
    c->base = base;
    tg_h1_start(h, &req, &call_cbs, c);
    struct timeval tv = {2, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Lets the loop run for ms (the server closes, the pool notices). */
static void spin(struct event_base *base, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

typedef struct {
    struct event_base *base;
    srv_t s;
    tg_h1_t *h;
    char url[64];
    tg_upstream_req_t get; /* GET / on the server */
} fx_t;

static void fx_start(fx_t *f, srv_mode_t mode, const tg_h1_limits_t *l)
{
    f->base = event_base_new();
    srv_start(&f->s, f->base, mode);
    f->h = tg_h1_new(f->base, l);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/", f->s.port);
    f->get = (tg_upstream_req_t){.method = "GET", .url = f->url, .idle_timeout_ms = 2000};
}

static void fx_stop(fx_t *f)
{
    tg_h1_free(f->h);
    srv_stop(&f->s);
    event_base_free(f->base);
}

/* One POST through f's client: it must end OK with the server's "ok". */
static void call_ok(fx_t *f)
{
    call_t c;
    run_call(f->base, f->h, f->s.port, &c);
    CHECK_INT(c.done, 1);
    CHECK_INT(c.res, TG_UP_OK);
    CHECK_INT(c.status, 200);
    CHECK_STR(c.body.data ? c.body.data : "", "ok");
    tg_buf_free(&c.body);
}

/* The client's counters, each -1 for "any". */
static void check_stats(tg_h1_t *h, long connects, long reuses, long retries, long idle_closed,
                        int idle_now)
{
    tg_h1_stats_t st = tg_h1_stats(h);
    if (connects >= 0)
        CHECK_INT(st.connects, connects);
    if (reuses >= 0)
        CHECK_INT(st.reuses, reuses);
    if (retries >= 0)
        CHECK_INT(st.retries, retries);
    if (idle_closed >= 0)
        CHECK_INT(st.idle_closed, idle_closed);
    if (idle_now >= 0)
        CHECK_INT(st.idle_now, idle_now);
}

static const tg_h1_limits_t lim = {
    .max_idle_per_origin = 4, .max_idle_total = 8, .idle_timeout_ms = 60000, .dns_ttl_ms = 1000};

/* Two calls in a row against each server behaviour; the counters after
 * each: {connects, reuses, retries, idle_closed, idle_now}. */
TEST(h1pool_reuses_only_connections_that_can_carry_another_call)
{
    static const struct {
        const char *what;
        srv_mode_t mode;
        int spin_ms; /* between the calls */
        long after[2][5];
    } rows[] = {
        {"kept alive: the second call reuses it",
         SRV_ANSWER,
         0,
         {{1, 0, 0, 0, 1}, {1, 1, 0, 0, 1}}},
        {"closed by the server while idle: never reused",
         SRV_ANSWER_CLOSE,
         50,
         {{1, 0, 0, 1, 0}, {2, 0, 0, 1, 1}}},
        {"dropped unanswered on reuse: sent again once on a new connection",
         SRV_DROP_SECOND,
         0,
         {{1, 0, 0, 0, 1}, {2, 1, 1, -1, 1}}},
        {"bytes beyond the answer: not pooled",
         SRV_ANSWER_EXTRA,
         0,
         {{1, 0, 0, -1, 0}, {2, 0, 0, -1, 0}}},
        {"Connection: close: not pooled",
         SRV_CONN_CLOSE_HDR,
         0,
         {{1, 0, 0, -1, 0}, {2, 0, 0, -1, 0}}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fx_t f;
        fx_start(&f, rows[i].mode, &lim);
        for (int k = 0; k < 2; k++) {
            call_ok(&f);
            if (!k && rows[i].spin_ms)
                spin(f.base, rows[i].spin_ms); /* the server's FIN reaches the idle connection */
            const long *e = rows[i].after[k];
            tg_h1_stats_t st = tg_h1_stats(f.h);
            if (st.connects != e[0] || st.reuses != e[1] || st.retries != e[2] ||
                (e[3] >= 0 && st.idle_closed != e[3]) || st.idle_now != (int)e[4])
                printf("    %s, after call %d: connects %ld reuses %ld retries %ld closed %ld "
                       "idle %d\n",
                       rows[i].what, k + 1, st.connects, st.reuses, st.retries, st.idle_closed,
                       st.idle_now);
            check_stats(f.h, e[0], e[1], e[2], e[3], (int)e[4]);
        }
        fx_stop(&f);
    }
}

TEST(h1pool_idle_connections_are_bounded_per_origin)
{
    tg_h1_limits_t one = lim;
    one.max_idle_per_origin = 1;
    fx_t f;
    fx_start(&f, SRV_ANSWER, &one);
    call_t c[3];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3; i++) {
        c[i].base = f.base;
        tg_h1_start(f.h, &f.get, &call_cbs, &c[i]);
    }
    for (int round = 0; round < 20 && !(c[0].done && c[1].done && c[2].done); round++)
        spin(f.base, 20);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(c[i].res, TG_UP_OK);
        tg_buf_free(&c[i].body);
    }
    check_stats(f.h, 3, 0, 0, 2, 1);
    fx_stop(&f);
}

TEST(h1pool_a_cancelled_call_does_not_return_its_connection)
{
    fx_t f;
    fx_start(&f, SRV_HANG, &lim);
    struct event_base *base = f.base;
    srv_t *s = &f.s;
    tg_h1_t *h = f.h;
    call_t c = {.base = base};
    tg_h1_call_t *u = tg_h1_start(h, &f.get, &call_cbs, &c);
    spin(base, 5);
    tg_h1_cancel(u);
    spin(base, 30);
    CHECK_INT(c.done, 0);
    CHECK_INT(s->conns[0]->requests, 1);
    CHECK_INT(s->conns[0]->fd, -1); /* the server saw the connection close */
    CHECK_INT(tg_h1_stats(h).idle_now, 0);
    tg_buf_free(&c.body);
    fx_stop(&f);
}

TEST(h1client_refused_connections_and_bad_urls_fail_later_not_inside_start)
{
    struct event_base *base = event_base_new();
    tg_h1_t *h = tg_h1_new(base, &lim);
    /* a port nobody listens on: bind one, learn it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    const char *urls[] = {url, "ftp://example.com/", "not a url"};
    for (int i = 0; i < 3; i++) {
        tg_upstream_req_t req = {.method = "GET", .url = urls[i], .connect_timeout_ms = 500};
        call_t c = {.base = base};
        tg_h1_start(h, &req, &call_cbs, &c);
        CHECK_INT(c.done, 0);
        struct timeval tv = {1, 0};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        CHECK_INT(c.done, 1);
        CHECK_INT(c.res, TG_UP_CONNECT);
    }
    tg_h1_free(h);
    event_base_free(base);
}

/* The client keeps what it made of the last URL; a call to another URL,
 * or one that is not a URL, is parsed afresh and goes where it says. */
TEST(h1client_each_call_goes_to_its_own_url)
{
    fx_t f;
    fx_start(&f, SRV_ANSWER_CLOSE, &lim);
    srv_t other;
    srv_start(&other, f.base, SRV_ANSWER_CLOSE);
    int ports[] = {f.s.port, f.s.port, other.port, f.s.port, -1, other.port};
    int want_a = 0, want_b = 0;
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        call_t c;
        if (ports[i] < 0) { /* not a URL, after good ones */
            tg_upstream_req_t req = {.method = "GET", .url = "http://", .connect_timeout_ms = 500};
            memset(&c, 0, sizeof c);
            c.base = f.base;
            tg_h1_start(f.h, &req, &call_cbs, &c);
            spin(f.base, 900); /* its end breaks the loop (c_done) */
            CHECK_INT(c.done, 1);
            CHECK_INT(c.res, TG_UP_CONNECT);
            continue;
        }
        run_call(f.base, f.h, ports[i], &c);
        CHECK_INT(c.res, TG_UP_OK);
        CHECK_STR(c.body.data ? c.body.data : "", "ok");
        tg_buf_free(&c.body);
        if (ports[i] == f.s.port)
            want_a++;
        else
            want_b++;
        CHECK_INT(f.s.accepted, want_a); /* each answer closes: one connection per call */
        CHECK_INT(other.accepted, want_b);
    }
    srv_stop(&other);
    fx_stop(&f);
}
