/*
 * loopback.c — an in-memory client (server/http.h) and a scripted provider
 * (proxy/relay.h) for the unit tests; see loopback.h. These strong
 * definitions replace the library's weak ones in the unit-test binary.
 *
 * Thread: the test's thread, which runs the event loop.
 */
#include "loopback.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the client side: server/http.h ---- */

struct tg_http {
    tg_loop_client_t *c;
    struct event_base *base;
    const char *method, *path, *query, *body, *ip;
    size_t body_len;
    const char **hnames, **hvalues;
    size_t n_headers;
    char **own; /* every string above: freed at the end */
    size_t n_own;
    tg_http_events_t ev;
    void *ev_arg;
    bool gone;
    bool dashboard;
};

static char *dup_or_null(const char *s)
{
    return s ? tg_xstrdup(s) : NULL;
}

/* A copy of s (or NULL) that lives as long as the exchange. */
static const char *keep(tg_http_t *h, const char *s)
{
    return s ? (h->own[h->n_own++] = tg_xstrdup(s)) : NULL;
}

tg_http_t *tg_loop_http_new(tg_loop_client_t *c, struct event_base *base,
                            const tg_loop_request_t *req)
{
    memset(c, 0, sizeof *c);
    tg_http_t *h = tg_xcalloc(1, sizeof *h);
    h->c = c;
    h->base = base;
    h->dashboard = req->dashboard;
    while (req->headers && req->headers[2 * h->n_headers])
        h->n_headers++;
    h->own = tg_xcalloc(5 + 2 * h->n_headers, sizeof *h->own);
    h->method = keep(h, req->method ? req->method : "POST");
    h->path = keep(h, req->path);
    h->query = keep(h, req->query);
    h->ip = keep(h, req->ip ? req->ip : "127.0.0.1");
    h->body = keep(h, req->body);
    h->body_len = req->body ? strlen(req->body) : 0;
    h->hnames = tg_xcalloc(h->n_headers + 1, sizeof *h->hnames);
    h->hvalues = tg_xcalloc(h->n_headers + 1, sizeof *h->hvalues);
    for (size_t i = 0; i < h->n_headers; i++) {
        h->hnames[i] = keep(h, req->headers[2 * i]);
        h->hvalues[i] = keep(h, req->headers[2 * i + 1]);
    }
    c->h = h;
    return h;
}

/* The exchange's one end: the pointer is invalid afterwards (http.h), so it
 * is freed here and ASan sees any later use. */
static void end(tg_http_t *h)
{
    h->c->ended = true;
    h->c->h = NULL;
    for (size_t i = 0; i < h->n_own; i++)
        free(h->own[i]);
    free(h->own);
    free(h->hnames);
    free(h->hvalues);
    free(h);
}

const char *tg_http_method(const tg_http_t *h)
{
    return h->method;
}
const char *tg_http_path(const tg_http_t *h)
{
    return h->path;
}
const char *tg_http_query(const tg_http_t *h)
{
    return h->query;
}
const char *tg_http_client_ip(const tg_http_t *h)
{
    return h->ip;
}
struct event_base *tg_http_base(const tg_http_t *h)
{
    return h->base;
}
bool tg_http_dashboard(const tg_http_t *h)
{
    return h->dashboard;
}

bool tg_http_client_gone(const tg_http_t *h)
{
    return h->gone;
}
bool tg_http_shutdown_cut(const tg_http_t *h)
{
    return false;
}

const char *tg_http_header(tg_http_t *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (!strcasecmp(h->hnames[i], name))
            return h->hvalues[i];
    return NULL;
}

void tg_http_headers_foreach(const tg_http_t *h,
                             int (*fn)(const char *name, const char *value, void *arg), void *arg)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (fn(h->hnames[i], h->hvalues[i], arg))
            return;
}

const char *tg_http_body(tg_http_t *h, size_t *len)
{
    *len = h->body_len;
    return h->body;
}

void tg_http_set_events(tg_http_t *h, const tg_http_events_t *ev, void *arg)
{
    h->ev = *ev;
    h->ev_arg = arg;
}

void tg_http_add_header(tg_http_t *h, const char *name, const char *value)
{
    tg_buf_printf(&h->c->headers, "%s: %s\n", name, value);
}

void tg_http_add_own_header(tg_http_t *h, const char *name, const char *value)
{
    tg_http_add_header(h, name, value);
}

static void begin(tg_http_t *h, int status, const char *content_type, bool stream)
{
    h->c->status = status;
    h->c->streamed = stream;
    free(h->c->content_type);
    h->c->content_type = dup_or_null(content_type);
}

void tg_http_reply(tg_http_t *h, int status, const char *content_type, const void *body, size_t len)
{
    if (!h->gone) {
        begin(h, status, content_type, false);
        if (len && strcmp(h->method, "HEAD"))
            tg_buf_append(&h->c->body, body, len);
    }
    end(h);
}

void tg_http_stream_start(tg_http_t *h, int status, const char *content_type)
{
    if (!h->gone)
        begin(h, status, content_type, true);
}

bool tg_http_stream_write(tg_http_t *h, const void *data, size_t len)
{
    if (h->gone || !len)
        return false;
    tg_buf_append(&h->c->body, data, len);
    h->c->chunks++;
    return false; /* the loopback client reads at once: never full */
}

void tg_http_stream_end(tg_http_t *h)
{
    end(h);
}

void tg_http_stream_abort(tg_http_t *h)
{
    h->c->aborted = true;
    end(h);
}

/* The value of header `name` in "Name: value\n" lines, copied into buf. */
static const char *header_in(const char *lines, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = lines; p && *p; p = strchr(p, '\n') + 1) {
        if (strncasecmp(p, name, n) || p[n] != ':')
            continue;
        const char *v = p + n + 1;
        while (*v == ' ')
            v++;
        size_t vlen = strcspn(v, "\n");
        if (vlen >= cap)
            vlen = cap - 1;
        memcpy(buf, v, vlen);
        buf[vlen] = 0;
        return buf;
    }
    return NULL;
}

const char *tg_loop_header(const tg_loop_client_t *c, const char *name, char *buf, size_t cap)
{
    return header_in(c->headers.data, name, buf, cap);
}

void tg_loop_client_leave(tg_loop_client_t *c)
{
    tg_http_t *h = c->h;
    if (!h)
        return;
    h->gone = true;
    if (h->ev.on_close)
        h->ev.on_close(h->ev_arg); /* ends the exchange: h is gone after this */
}

void tg_loop_client_free(tg_loop_client_t *c)
{
    free(c->content_type);
    tg_buf_free(&c->headers);
    tg_buf_free(&c->body);
    c->content_type = NULL;
}

/* ---- the provider side: proxy/relay.h ---- */

#define MAX_SCRIPT 16
#define MAX_CALLS  16

struct tg_relay {
    struct event_base *base;
    tg_fake_answer_t script[MAX_SCRIPT];
    size_t n_script, next_script;
    tg_fake_call_t calls[MAX_CALLS];
    size_t n_calls;
    int cancels, open;
};

struct tg_upstream {
    tg_relay_t *r;
    tg_fake_answer_t a;
    tg_upstream_cbs_t cbs;
    void *arg;
    struct event *ev;
    int step; /* 0: the response; 1..n: piece step-1; then the end */
    bool paused;
};

tg_relay_t *tg_relay_new(struct event_base *base)
{
    tg_relay_t *r = tg_xcalloc(1, sizeof *r);
    r->base = base;
    return r;
}

void tg_relay_free(tg_relay_t *r)
{
    for (size_t i = 0; r && i < r->n_calls; i++) {
        tg_buf_free(&r->calls[i].headers);
        tg_buf_free(&r->calls[i].body);
    }
    free(r);
}

static void upstream_free(tg_upstream_t *u)
{
    u->r->open--;
    event_free(u->ev);
    free(u);
}

static void schedule(tg_upstream_t *u)
{
    static const struct timeval now = {0, 0};
    evtimer_add(u->ev, &now);
}

static size_t n_pieces(const tg_fake_answer_t *a)
{
    size_t n = 0;
    while (n < 8 && a->pieces[n])
        n++;
    return n;
}

/* One step of the scripted answer per loop turn. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
    tg_upstream_t *u = arg;
    if (u->step == 0 && u->a.status) {
        tg_headers_t hd = {0};
        char *names[8], *values[8];
        for (size_t i = 0; i < 8 && u->a.headers[i]; i++) {
            const char *line = u->a.headers[i], *colon = strchr(line, ':');
            names[i] = tg_xstrdup(line);
            names[i][colon - line] = 0;
            values[i] = names[i] + (colon - line) + 1;
            while (*values[i] == ' ')
                values[i]++;
            hd.n++;
        }
        hd.names = names;
        hd.values = values;
        hd.cap = 8;
        u->cbs.on_response(u->arg, u->a.status, &hd);
        for (size_t i = 0; i < hd.n; i++)
            free(names[i]);
        u->step++;
        schedule(u);
        return;
    }
    size_t np = u->a.status ? n_pieces(&u->a) : 0;
    if (u->step == 0)
        u->step++; /* no response: straight to the end */
    if ((size_t)u->step <= np) {
        const char *piece = u->a.pieces[u->step - 1];
        u->step++;
        int rc = u->cbs.on_data(u->arg, piece, strlen(piece));
        if (rc < 0) {
            u->cbs.on_done(u->arg, TG_UP_BROKEN, "aborted by the caller");
            upstream_free(u);
            return;
        }
        if (rc == 1)
            u->paused = true;
        else
            schedule(u);
        return;
    }
    if (u->a.stall)
        return; /* until cancelled */
    u->cbs.on_done(u->arg, u->a.result, u->a.error);
    upstream_free(u);
}

tg_upstream_t *tg_upstream_start(tg_relay_t *r, const tg_upstream_req_t *req,
                                 const tg_upstream_cbs_t *cbs, void *arg)
{
    if (r->n_calls < MAX_CALLS) {
        tg_fake_call_t *c = &r->calls[r->n_calls++];
        snprintf(c->method, sizeof c->method, "%s", req->method);
        snprintf(c->url, sizeof c->url, "%s", req->url);
        for (size_t i = 0; i < req->n_headers; i++)
            tg_buf_printf(&c->headers, "%s\n", req->headers[i]);
        tg_buf_append(&c->body, req->body, req->body_len);
    }
    tg_upstream_t *u = tg_xcalloc(1, sizeof *u);
    u->r = r;
    if (r->next_script < r->n_script)
        u->a = r->script[r->next_script++];
    else
        u->a = (tg_fake_answer_t){.result = TG_UP_CONNECT, .error = "no scripted answer"};
    u->cbs = *cbs;
    u->arg = arg;
    u->ev = evtimer_new(r->base, on_step, u);
    r->open++;
    schedule(u); /* never from inside this call (relay.h) */
    return u;
}

void tg_upstream_resume(tg_upstream_t *u)
{
    if (u->paused) {
        u->paused = false;
        schedule(u);
    }
}

void tg_upstream_cancel(tg_upstream_t *u)
{
    u->r->cancels++;
    upstream_free(u);
}

void tg_fake_relay_push(tg_relay_t *r, const tg_fake_answer_t *a)
{
    if (r->n_script < MAX_SCRIPT)
        r->script[r->n_script++] = *a;
}

size_t tg_fake_relay_n_calls(const tg_relay_t *r)
{
    return r->n_calls;
}

const tg_fake_call_t *tg_fake_relay_call(const tg_relay_t *r, size_t i)
{
    return i < r->n_calls ? &r->calls[i] : NULL;
}

int tg_fake_relay_cancels(const tg_relay_t *r)
{
    return r->cancels;
}

int tg_fake_relay_open(const tg_relay_t *r)
{
    return r->open;
}

const char *tg_fake_call_header(const tg_fake_call_t *c, const char *name, char *buf, size_t cap)
{
    return header_in(c->headers.data, name, buf, cap);
}
