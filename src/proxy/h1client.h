/*
 * h1client.h — the worker's own HTTP/1.1 client for calls to providers:
 * per-origin keep-alive pools, requests written with one writev from the
 * exchange's buffers, answers read by h1parse.c, TLS by OpenSSL on the
 * worker loop, names resolved by libevent's evdns, HTTP(S)_PROXY through
 * CONNECT or absolute-form. relay.c puts it behind relay.h: the callbacks,
 * their order and the results are relay.h's.
 *
 * Thread: the worker thread that owns the event_base; nothing is shared.
 */
#ifndef TG_H1CLIENT_H
#define TG_H1CLIENT_H

#include "proxy/relay.h"

typedef struct tg_h1 tg_h1_t;
typedef struct tg_h1_call tg_h1_call_t;

/** Limits of the pools (see h1client.c for the defaults). */
typedef struct {
    int max_idle_per_origin;
    int max_idle_total;
    int64_t idle_timeout_ms; /* an idle connection older than this is closed */
    int64_t dns_ttl_ms;      /* how long a resolved address is used */
} tg_h1_limits_t;

tg_h1_t *tg_h1_new(struct event_base *base, const tg_h1_limits_t *limits);
void tg_h1_free(tg_h1_t *c);

/** As tg_upstream_start: callbacks always come later, from the loop. */
tg_h1_call_t *tg_h1_start(tg_h1_t *c, const tg_upstream_req_t *req, const tg_upstream_cbs_t *cbs,
                          void *arg);
void tg_h1_resume(tg_h1_call_t *u);
void tg_h1_cancel(tg_h1_call_t *u);

/** Counters for the tests and the benchmarks. */
typedef struct {
    long connects;    /* TCP connections opened */
    long reuses;      /* requests sent on a pooled connection */
    long retries;     /* requests sent again after a reused connection failed */
    long idle_closed; /* pooled connections closed: peer closed, timed out or over a limit */
    long tls_resumed; /* TLS handshakes that resumed a session */
    int idle_now;     /* connections in the pools */
} tg_h1_stats_t;
tg_h1_stats_t tg_h1_stats(const tg_h1_t *c);

#endif
