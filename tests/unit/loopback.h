/*
 * loopback.h — the request path without sockets, as h2o's t/00unit drives
 * handlers through a loopback connection.
 *
 * tests/unit/loopback.c defines the functions of server/http.h and the
 * transfer functions of proxy/relay.h for the whole unit-test binary; the
 * library's own are weak (TG_REPLACEABLE, core/util.h) and give way. So a
 * test builds a gateway and a worker (tg_pipeline_worker_init, whose relay
 * is then a fake one), makes a client exchange with tg_loop_http_new, hands
 * it to tg_pipeline_handle, runs the event loop, and reads what the client
 * got (tg_loop_client_t) and what the provider was asked (tg_fake_call_t).
 *
 * The fake relay answers each tg_upstream_start with the next scripted
 * answer, one step per loop turn (response, each body piece, the end), so
 * the callbacks arrive from the event loop as the relay's contract says.
 *
 * Thread: the test's thread, which runs the event loop.
 */
#ifndef TG_TEST_LOOPBACK_H
#define TG_TEST_LOOPBACK_H

#include "core/util.h"
#include "proxy/relay.h"
#include "server/http.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* What the client sends. Strings are copied. */
typedef struct {
    const char *method; /* default "POST" */
    const char *path;
    const char *query;
    const char *const *headers; /* name, value, name, value, ..., NULL */
    const char *body;
    const char *ip; /* default "127.0.0.1" */
    bool dashboard; /* as if on the dashboard's listener */
} tg_loop_request_t;

/* What the client got; owned by the test, outlives the exchange. */
typedef struct {
    int status;         /* 0 until the answer began */
    char *content_type; /* as given to reply or stream_start */
    tg_buf_t headers;   /* "Name: value\n" lines added by the handler */
    tg_buf_t body;      /* the whole body, chunks joined */
    int chunks;         /* tg_http_stream_write calls with data */
    bool streamed;      /* the answer was a stream */
    bool ended;         /* reply, stream_end or stream_abort was called */
    bool aborted;       /* ... and it was stream_abort */
    tg_http_t *h;       /* the exchange, while it lives */
} tg_loop_client_t;

/** A client exchange on base for req, recording into c (zeroed here). */
tg_http_t *tg_loop_http_new(tg_loop_client_t *c, struct event_base *base,
                            const tg_loop_request_t *req);
/** The value of a response header the handler added, or NULL (copied into
 *  buf of cap bytes). */
const char *tg_loop_header(const tg_loop_client_t *c, const char *name, char *buf, size_t cap);
/** The client goes away: on_close runs (the exchange must end). */
void tg_loop_client_leave(tg_loop_client_t *c);
void tg_loop_client_free(tg_loop_client_t *c);

/* One scripted provider answer. status 0: no response at all (a connect
 * failure, say): only on_done with result. */
typedef struct {
    int status;
    const char *headers[8]; /* "Name: value", NULL-terminated */
    const char *pieces[8];  /* body pieces, one on_data each, NULL-terminated */
    tg_upstream_result_t result;
    const char *error;
    bool stall; /* after the pieces, deliver nothing more until cancelled */
} tg_fake_answer_t;

/* One call the fake relay saw. */
typedef struct {
    char method[16], url[512];
    tg_buf_t headers; /* "Name: value\n" lines */
    tg_buf_t body;
} tg_fake_call_t;

/** Queue the answer to the next call (a copy of a; its strings must stay). */
void tg_fake_relay_push(tg_relay_t *r, const tg_fake_answer_t *a);
size_t tg_fake_relay_n_calls(const tg_relay_t *r);
const tg_fake_call_t *tg_fake_relay_call(const tg_relay_t *r, size_t i);
/** Transfers cancelled by the caller, and transfers still open. */
int tg_fake_relay_cancels(const tg_relay_t *r);
int tg_fake_relay_open(const tg_relay_t *r);
/** A request header of a call, or NULL (copied into buf of cap bytes). */
const char *tg_fake_call_header(const tg_fake_call_t *c, const char *name, char *buf, size_t cap);

#endif
