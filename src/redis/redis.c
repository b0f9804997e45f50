/*
 * redis.c — see redis.h. hiredis 0.14's async API on the worker's loop.
 *
 * Owns, per worker: the async context (NULL while disconnected), the FIFO
 * of requests in flight (Redis answers in order, so the oldest is the one
 * whose deadline comes first), one deadline timer armed for that oldest
 * request, the connect timer, the reconnect timer and the scripts' SHA-1s.
 *
 * Invariants: a request is on the FIFO from the moment hiredis takes it to
 * the moment hiredis gives it back (a reply, or NULL when the context is
 * freed); only then is it freed, so hiredis never holds a freed pointer. A
 * request's callback runs at most once (`cb` is cleared before it runs);
 * tg_redis_cancel clears it too. The context is freed only by hiredis
 * itself (after a failed connect or a lost connection, telling us through
 * on_connect / on_disconnect) or by drop(), which is the one place that
 * frees it on purpose (deadline passed, handshake refused, closing).
 *
 * hiredis 0.14 has no connect or command timeouts of its own, hence the
 * timers; and no TLS, hence rediss:// refused at start.
 *
 * Thread: the worker's for tg_redis_t; tg_redis_shared_t's counters are
 * atomics read by whoever scrapes /metrics.
 */
#include "redis/redis.h"

#include "core/log.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_SCRIPTS    8

/* ---------------------------------------------------------------- URLs */

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/* Percent-decode s[0..n) into out (size cap); false when it does not fit
 * or an escape is broken. */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = tg_hexval(s[i + 1])) < 0 || (lo = tg_hexval(s[i + 2])) < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == 0 || k + 1 >= cap)
            return false;
        out[k++] = c;
    }
    out[k] = 0;
    return true;
}

int tg_redis_url_parse(const char *url, tg_redis_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return fail(err, errlen, "no URL");
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        if (!strncmp(p, "//", 2)) /* unix:///run/redis.sock */
            p += 2;
        if (*p != '/' || strlen(p) >= sizeof out->host)
            return fail(err, errlen, "unix:PATH needs an absolute path (at most 255 bytes)");
        out->unix_socket = true;
        snprintf(out->host, sizeof out->host, "%s", p);
        return 0;
    }
    if (!strncmp(url, "rediss://", 9))
        return fail(err, errlen,
                    "rediss:// (TLS) is not supported: this build's hiredis (0.14) has no TLS; "
                    "use redis:// on a private network, a unix: socket, or a TLS tunnel");
    if (strncmp(url, "redis://", 8))
        return fail(err, errlen, "expected redis://HOST:PORT/N or unix:PATH");
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q; /* the last one: a password may hold an encoded one */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : 0;
        if (colon) {
            if (!decode(p, ulen, out->user, sizeof out->user) ||
                !decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof out->pass))
                return fail(err, errlen,
                            "the user or password of redis.url is badly encoded or "
                            "too long");
        } else if (!decode(p, (size_t)(at - p), out->pass, sizeof out->pass)) {
            /* redis://secret@host: the password alone */
            return fail(err, errlen, "the password of redis.url is badly encoded or too long");
        }
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend)
            return fail(err, errlen, "redis.url: unclosed [ in the host");
        if ((size_t)(hend - p - 1) >= sizeof out->host)
            return fail(err, errlen, "redis.url: host too long");
        memcpy(out->host, p + 1, (size_t)(hend - p - 1));
        hend++;
    } else {
        hend = p;
        while (hend < end && *hend != ':')
            hend++;
        if ((size_t)(hend - p) >= sizeof out->host)
            return fail(err, errlen, "redis.url: host too long");
        memcpy(out->host, p, (size_t)(hend - p));
    }
    if (!out->host[0])
        return fail(err, errlen, "redis.url has no host");
    out->port = 6379;
    if (hend < end) {
        if (*hend != ':')
            return fail(err, errlen, "redis.url: unexpected text after the host");
        char *e;
        long port = strtol(hend + 1, &e, 10);
        if (e != end || e == hend + 1 || port < 1 || port > 65535)
            return fail(err, errlen, "redis.url: the port must be a number from 1 to 65535");
        out->port = (int)port;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long db = strtol(end + 1, &e, 10);
        if (*e || db < 0 || db > 1000000)
            return fail(err, errlen, "redis.url: the database after / must be a number");
        out->db = (int)db;
    } else if (*end && strcmp(end, "/")) {
        return fail(err, errlen, "redis.url: unexpected text after the host");
    }
    return 0;
}

void tg_redis_url_redact(const char *url, char *out, size_t len)
{
    if (!len)
        return;
    char *shown = tg_redact_secrets(url ? url : "");
    snprintf(out, len, "%s", shown);
    free(shown);
}

/* ---------------------------------------------------------- the shared */

struct tg_redis_shared {
    tg_redis_url_t url;
    char shown[512]; /* redacted, for logs */
    tg_redis_failure_t on_failure;
    int64_t timeout_ms, connect_timeout_ms;
    atomic_int n_conns, n_ready;
    atomic_llong n_errors;
};

tg_redis_shared_t *tg_redis_shared_new(const char *url, int on_failure, int64_t timeout_ms,
                                       int64_t connect_timeout_ms, char *err, size_t errlen)
{
    if (!url)
        return NULL;
    tg_redis_shared_t *sh = tg_xcalloc(1, sizeof *sh);
    if (tg_redis_url_parse(url, &sh->url, err, errlen) < 0) {
        free(sh);
        return NULL;
    }
    tg_redis_url_redact(url, sh->shown, sizeof sh->shown);
    sh->on_failure = on_failure == TG_REDIS_CLOSED ? TG_REDIS_CLOSED : TG_REDIS_OPEN;
    sh->timeout_ms = timeout_ms > 0 ? timeout_ms : 250;
    sh->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 1000;
    return sh;
}

void tg_redis_shared_free(tg_redis_shared_t *sh)
{
    free(sh);
}

tg_redis_failure_t tg_redis_on_failure(const tg_redis_shared_t *sh)
{
    return sh->on_failure;
}

bool tg_redis_up(const tg_redis_shared_t *sh)
{
    tg_redis_shared_t *m = (tg_redis_shared_t *)(uintptr_t)sh; /* atomics are read-only here */
    int n = atomic_load(&m->n_conns);
    return n > 0 && atomic_load(&m->n_ready) == n;
}

void tg_redis_render_metrics(void *arg, tg_buf_t *out)
{
    tg_redis_shared_t *sh = arg;
    tg_buf_printf(out,
                  "# HELP tollgate_redis_up Whether every worker's connection to Redis is ready.\n"
                  "# TYPE tollgate_redis_up gauge\n"
                  "tollgate_redis_up %d\n"
                  "# HELP tollgate_redis_errors_total Failed Redis connections and commands "
                  "(refused, lost, past their deadline, error replies).\n"
                  "# TYPE tollgate_redis_errors_total counter\n"
                  "tollgate_redis_errors_total %lld\n",
                  tg_redis_up(sh) ? 1 : 0, (long long)atomic_load(&sh->n_errors));
}

/* ---------------------------------------------------- a worker's client */

struct tg_redis_req {
    tg_redis_t *r;
    tg_redis_reply_fn cb;
    void *arg;
    int64_t deadline_ms;
    struct tg_redis_req *prev, *next; /* the FIFO */
    bool retried;                     /* NOSCRIPT: sent again as EVAL */
    int slot;                         /* the script's slot */
    int argc;                         /* what follows: argc strings, lengths */
    size_t *lens;
    const char **argv;
};

typedef struct {
    const char *body; /* identity: the script's text pointer */
    char sha[41];
} script_slot_t;

struct tg_redis {
    tg_redis_shared_t *sh;
    struct event_base *base;
    redisAsyncContext *ac;
    bool connected, ready, closing;
    bool quiet; /* this outage was logged: the next tries fail silently */
    struct event *deadline_ev, *connect_ev, *retry_ev;
    int64_t backoff_ms;
    struct tg_redis_req *head, *tail;
    script_slot_t scripts[MAX_SCRIPTS];
    int n_scripts;
    void (*on_ready)(void *arg, tg_redis_t *r);
    void *on_ready_arg;
    /* a subscriber (tg_redis_subscribe): its channel and what takes its messages */
    char channel[64];
    tg_redis_message_fn on_message;
    void *on_message_arg;
};

static void schedule_retry(tg_redis_t *r);
static void became_ready(tg_redis_t *r);

static void count_error(tg_redis_t *r)
{
    atomic_fetch_add(&r->sh->n_errors, 1);
}

static void set_ready(tg_redis_t *r, bool ready)
{
    if (r->ready == ready)
        return;
    r->ready = ready;
    atomic_fetch_add(&r->sh->n_ready, ready ? 1 : -1);
}

static void fifo_remove(tg_redis_t *r, struct tg_redis_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
    q->prev = q->next = NULL;
}

static void fifo_push(tg_redis_t *r, struct tg_redis_req *q)
{
    q->prev = r->tail;
    q->next = NULL;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
}

static void arm_deadline(tg_redis_t *r)
{
    if (!r->head) {
        event_del(r->deadline_ev);
        return;
    }
    int64_t left = r->head->deadline_ms - tg_mono_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    event_add(r->deadline_ev, &tv);
}

static void req_free(struct tg_redis_req *q)
{
    free(q); /* argv and lens live in the same block */
}

/* Free the context on purpose: every request in flight gets NULL (a
 * failure) from hiredis, and on_disconnect (if it was connected) schedules
 * the next attempt; if it was not, we do. */
static void drop(tg_redis_t *r)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    bool was_connected = r->connected;
    r->ac = NULL;
    r->connected = false;
    set_ready(r, false);
    event_del(r->connect_ev);
    redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
    if (!was_connected && !r->closing)
        schedule_retry(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    tg_redis_t *r = arg;
    if (!r->head)
        return;
    if (r->head->deadline_ms > tg_mono_ms()) {
        arm_deadline(r);
        return;
    }
    count_error(r);
    tg_warn("redis %s: no reply within %lld ms; reconnecting", r->sh->shown,
            (long long)r->sh->timeout_ms);
    drop(r);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

/* Send q (again); false when hiredis refused it (the context is going). */
static bool send_req(tg_redis_t *r, struct tg_redis_req *q, bool as_eval)
{
    if (q->slot < 0) /* a plain command: argv as given */
        return redisAsyncCommandArgv(r->ac, reply_cb, q, q->argc, q->argv, q->lens) == REDIS_OK;
    script_slot_t *s = &r->scripts[q->slot];
    const char *argv0 = as_eval ? "EVAL" : "EVALSHA";
    q->argv[0] = argv0;
    q->lens[0] = strlen(argv0);
    q->argv[1] = as_eval ? s->body : s->sha;
    q->lens[1] = as_eval ? strlen(s->body) : 40;
    return redisAsyncCommandArgv(r->ac, reply_cb, q, q->argc, q->argv, q->lens) == REDIS_OK;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct tg_redis_req *q = privdata;
    tg_redis_t *r = q->r;
    redisReply *rep = reply;
    fifo_remove(r, q);
    if (rep && rep->type == REDIS_REPLY_ERROR && q->slot >= 0 && !q->retried &&
        !strncmp(rep->str, "NOSCRIPT", 8) && r->ac == ac &&
        !(ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
        q->retried = true; /* Redis forgot the script: EVAL loads it again */
        q->deadline_ms = tg_mono_ms() + r->sh->timeout_ms;
        if (send_req(r, q, true)) {
            fifo_push(r, q);
            arm_deadline(r);
            return;
        }
    }
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        count_error(r);
        tg_warn("redis: %s failed: %.200s", q->slot >= 0 ? r->scripts[q->slot].sha : q->argv[0],
                rep->str);
        rep = NULL;
    } else if (!rep) {
        count_error(r);
    }
    if (r->ac == ac)
        arm_deadline(r);
    tg_redis_reply_fn cb = q->cb;
    q->cb = NULL;
    if (cb)
        cb(q->arg, rep);
    req_free(q);
}

/* ---- connecting ---- */

static void sha1_hex(const char *s, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, strlen(s), d);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[40] = 0;
}

/* The handshake's replies (AUTH, SELECT, SCRIPT LOAD, PING): the last one
 * makes the connection ready; an error ends it. */
/* A reply of the handshake or the subscription, ours to read: false when
 * the context is going, or for an error, which ends the connection. */
static bool setup_reply(redisAsyncContext *ac, const redisReply *rep)
{
    tg_redis_t *r = ac->data;
    if (!rep || !r || r->ac != ac)
        return false;
    if (rep->type != REDIS_REPLY_ERROR)
        return true;
    count_error(r);
    /* Redis's own message (WRONGPASS, NOAUTH, ...) never holds the password */
    tg_error("redis %s: %.200s", r->sh->shown, rep->str);
    drop(r);
    return false;
}

static void handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    if (setup_reply(ac, reply) && privdata) /* the last step */
        became_ready(ac->data);
}

static void became_ready(tg_redis_t *r)
{
    set_ready(r, true);
    r->backoff_ms = 0;
    r->quiet = false;
    tg_info("redis %s: connected%s%s", r->sh->shown, r->channel[0] ? ", subscribed to " : "",
            r->channel);
    if (r->on_ready)
        r->on_ready(r->on_ready_arg, r);
}

/* A subscriber's replies: the SUBSCRIBE's confirmation (ready), then each
 * message published on the channel. */
static void subscribe_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    tg_redis_t *r = ac->data;
    redisReply *rep = reply;
    if (!setup_reply(ac, rep))
        return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(rep->element[0]->str, "subscribe"))
        became_ready(r);
    else if (!strcmp(rep->element[0]->str, "message") &&
             rep->element[2]->type == REDIS_REPLY_STRING && r->on_message)
        r->on_message(r->on_message_arg, rep->element[2]->str, rep->element[2]->len);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    tg_redis_t *r = ac->data;
    if (!r || r->ac != ac)
        return;
    event_del(r->connect_ev);
    if (status != REDIS_OK) { /* hiredis frees the context after this */
        count_error(r);
        if (!r->quiet)
            tg_warn("redis %s: cannot connect: %s (trying again, quietly, until it answers)",
                    r->sh->shown, ac->errstr);
        r->quiet = true;
        r->ac = NULL;
        schedule_retry(r);
        return;
    }
    r->connected = true;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    tg_redis_t *r = ac->data;
    if (!r)
        return;
    if (r->ac == ac) { /* lost, not dropped by us */
        r->ac = NULL;
        r->connected = false;
        if (r->ready)
            tg_warn("redis %s: connection lost: %s", r->sh->shown,
                    ac->errstr[0] ? ac->errstr : "closed by the server");
        count_error(r);
        set_ready(r, false);
    }
    if (!r->closing)
        schedule_retry(r);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    tg_redis_t *r = arg;
    if (r->ready)
        return;
    count_error(r);
    if (!r->quiet)
        tg_warn("redis %s: not ready within %lld ms", r->sh->shown,
                (long long)r->sh->connect_timeout_ms);
    r->quiet = true;
    drop(r);
}

static void connect_now(tg_redis_t *r)
{
    const tg_redis_url_t *u = &r->sh->url;
    redisAsyncContext *ac =
        u->unix_socket ? redisAsyncConnectUnix(u->host) : redisAsyncConnect(u->host, u->port);
    if (!ac || ac->err) {
        count_error(r);
        if (!r->quiet)
            tg_warn("redis %s: cannot connect: %s", r->sh->shown,
                    ac ? ac->errstr : "out of memory");
        r->quiet = true;
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    r->connected = false;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* The handshake, pipelined behind the connect: hiredis sends it once
     * the socket is up. The PING's reply (the last) means ready. */
    if (u->pass[0]) {
        if (u->user[0])
            redisAsyncCommand(ac, handshake_cb, NULL, "AUTH %s %s", u->user, u->pass);
        else
            redisAsyncCommand(ac, handshake_cb, NULL, "AUTH %s", u->pass);
    }
    if (u->db > 0)
        redisAsyncCommand(ac, handshake_cb, NULL, "SELECT %d", u->db);
    if (r->channel[0]) { /* a subscriber: its SUBSCRIBE's answer means ready */
        redisAsyncCommand(ac, subscribe_cb, NULL, "SUBSCRIBE %s", r->channel);
    } else {
        for (int i = 0; i < r->n_scripts; i++)
            redisAsyncCommand(ac, handshake_cb, NULL, "SCRIPT LOAD %s", r->scripts[i].body);
        redisAsyncCommand(ac, handshake_cb, r, "PING");
    }
    int64_t ms = r->sh->connect_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(r->connect_ev, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    connect_now(arg);
}

static void schedule_retry(tg_redis_t *r)
{
    if (r->closing || event_pending(r->retry_ev, EV_TIMEOUT, NULL))
        return;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    int64_t ms = r->backoff_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(r->retry_ev, &tv);
}

static tg_redis_t *make(tg_redis_shared_t *sh, struct event_base *base, const char *channel,
                        tg_redis_message_fn fn, void *arg)
{
    tg_redis_t *r = tg_xcalloc(1, sizeof *r);
    if (channel)
        snprintf(r->channel, sizeof r->channel, "%s", channel);
    r->on_message = fn;
    r->on_message_arg = arg;
    r->sh = sh;
    r->base = base;
    r->deadline_ev = evtimer_new(base, on_deadline, r);
    r->connect_ev = evtimer_new(base, on_connect_timeout, r);
    r->retry_ev = evtimer_new(base, on_retry, r);
    atomic_fetch_add(&sh->n_conns, 1);
    connect_now(r);
    return r;
}

tg_redis_t *tg_redis_new(tg_redis_shared_t *sh, struct event_base *base)
{
    return sh ? make(sh, base, NULL, NULL, NULL) : NULL;
}

tg_redis_t *tg_redis_subscribe(tg_redis_shared_t *sh, struct event_base *base, const char *channel,
                               tg_redis_message_fn fn, void *arg)
{
    return sh ? make(sh, base, channel, fn, arg) : NULL;
}

void tg_redis_free(tg_redis_t *r)
{
    if (!r)
        return;
    r->closing = true;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* in-flight requests get NULL and are freed */
    }
    set_ready(r, false);
    atomic_fetch_sub(&r->sh->n_conns, 1);
    event_free(r->deadline_ev);
    event_free(r->connect_ev);
    event_free(r->retry_ev);
    free(r);
}

void tg_redis_set_on_ready(tg_redis_t *r, void (*fn)(void *arg, tg_redis_t *r), void *arg)
{
    r->on_ready = fn;
    r->on_ready_arg = arg;
}

bool tg_redis_ready(const tg_redis_t *r)
{
    return r && r->ready && r->ac;
}

static int script_slot(tg_redis_t *r, const tg_redis_script_t *s)
{
    for (int i = 0; i < r->n_scripts; i++)
        if (r->scripts[i].body == s->body)
            return i;
    if (r->n_scripts == MAX_SCRIPTS)
        abort(); /* a broken invariant: the scripts are the modules' consts */
    script_slot_t *slot = &r->scripts[r->n_scripts];
    slot->body = s->body;
    sha1_hex(s->body, slot->sha);
    return r->n_scripts++;
}

/* Send q with its deadline and put it on the FIFO; NULL (q freed) when
 * hiredis refuses it. */
static tg_redis_req_t *submit(tg_redis_t *r, struct tg_redis_req *q)
{
    q->deadline_ms = tg_mono_ms() + r->sh->timeout_ms;
    if (!send_req(r, q, false)) {
        free(q);
        return NULL;
    }
    fifo_push(r, q);
    if (!event_pending(r->deadline_ev, EV_TIMEOUT, NULL))
        arm_deadline(r);
    return q;
}

tg_redis_req_t *tg_redis_eval(tg_redis_t *r, const tg_redis_script_t *s, int nkeys, int argc,
                              const char *const *argv, const size_t *lens, tg_redis_reply_fn cb,
                              void *arg)
{
    if (!tg_redis_ready(r) || r->channel[0])
        return NULL;
    int slot = script_slot(r, s);
    int total = argc + 3; /* EVALSHA sha nkeys args... */
    size_t bytes = sizeof(struct tg_redis_req) + (size_t)total * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++)
        bytes += lens[i] + 1;
    bytes += 16; /* nkeys as text */
    struct tg_redis_req *q = tg_xcalloc(1, bytes);
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->slot = slot;
    q->argc = total;
    q->argv = (const char **)(q + 1);
    q->lens = (size_t *)(q->argv + total);
    char *p = (char *)(q->lens + total);
    q->argv[2] = p;
    q->lens[2] = (size_t)snprintf(p, 16, "%d", nkeys);
    p += 16;
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], lens[i]);
        p[lens[i]] = 0;
        q->argv[3 + i] = p;
        q->lens[3 + i] = lens[i];
        p += lens[i] + 1;
    }
    return submit(r, q);
}

bool tg_redis_publish(tg_redis_t *r, const char *channel, const char *msg, size_t len)
{
    if (!tg_redis_ready(r) || r->channel[0])
        return false;
    size_t clen = strlen(channel);
    struct tg_redis_req *q =
        tg_xcalloc(1, sizeof *q + 3 * (sizeof(char *) + sizeof(size_t)) + clen + len + 2);
    q->r = r;
    q->slot = -1;
    q->argc = 3;
    q->argv = (const char **)(q + 1);
    q->lens = (size_t *)(q->argv + 3);
    char *p = (char *)(q->lens + 3);
    memcpy(p, channel, clen + 1);
    memcpy(p + clen + 1, msg, len);
    p[clen + 1 + len] = 0;
    q->argv[0] = "PUBLISH";
    q->lens[0] = 7;
    q->argv[1] = p;
    q->lens[1] = clen;
    q->argv[2] = p + clen + 1;
    q->lens[2] = len;
    return submit(r, q) != NULL;
}

void tg_redis_cancel(tg_redis_req_t *q)
{
    if (q)
        q->cb = NULL;
}

int tg_redis_reply_ints(const struct redisReply *reply, int64_t *out, int max)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return -1;
    int n = 0;
    for (size_t i = 0; i < reply->elements && n < max; i++) {
        const redisReply *e = reply->element[i];
        if (!e || e->type != REDIS_REPLY_INTEGER)
            return -1;
        out[n++] = e->integer;
    }
    return n;
}

/* ---- arguments ---- */

void tg_redis_args_reset(tg_redis_args_t *a)
{
    tg_buf_reset(&a->buf);
    a->argc = a->nkeys = 0;
}

void tg_redis_args_push(tg_redis_args_t *a, const char *s, size_t len)
{
    if (a->argc == TG_REDIS_MAX_ARGS)
        return;
    a->off[a->argc] = a->buf.len;
    a->lens[a->argc] = len;
    tg_buf_append(&a->buf, s, len);
    tg_buf_append(&a->buf, "", 1);
    a->argc++;
}

void tg_redis_args_push_i64(tg_redis_args_t *a, int64_t v)
{
    char t[24];
    tg_redis_args_push(a, t, (size_t)snprintf(t, sizeof t, "%" PRId64, v));
}

void tg_redis_args_keys_done(tg_redis_args_t *a)
{
    a->nkeys = a->argc;
}

void tg_redis_args_done(tg_redis_args_t *a)
{
    for (int i = 0; i < a->argc; i++)
        a->argv[i] = a->buf.data + a->off[i];
}

void tg_redis_args_free(tg_redis_args_t *a)
{
    tg_buf_free(&a->buf);
    a->argc = a->nkeys = 0;
}
