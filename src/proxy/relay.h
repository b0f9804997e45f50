/*
 * relay.h — upstream HTTP calls on a worker's event loop.
 *
 * One tg_relay_t per worker: it owns the upstream client's state (keep-alive
 * connections per origin, TLS sessions, resolved names: h1client.c; or,
 * with TOLLGATE_UPSTREAM=curl, a curl multi handle). A tg_upstream_t is one
 * transfer. Everything runs on the worker thread.
 *
 * Callbacks of a transfer, in order: on_response once (status and headers,
 * before the first body byte, or at the end for an empty body), on_data zero
 * or more times, on_done exactly once — unless tg_upstream_cancel() was
 * called, after which none. The transfer is freed right after on_done returns.
 *
 * The unit tests link a scripted relay instead of this one
 * (tests/unit/loopback.c, TG_REPLACEABLE in core/util.h): the request path
 * may rely on nothing but what this header says.
 */
#ifndef TG_RELAY_H
#define TG_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct tg_relay tg_relay_t;
typedef struct tg_upstream tg_upstream_t;

typedef enum {
    TG_UP_OK = 0,
    TG_UP_CONNECT,  /* DNS, connect or TLS failure: nothing was answered */
    TG_UP_TIMEOUT,  /* connect timeout or idle longer than the provider's timeout */
    TG_UP_BROKEN,   /* the provider's answer broke off or was malformed */
    TG_UP_TOO_LARGE /* answer over the relay's limit */
} tg_upstream_result_t;

/** Response header list: names as received, values trimmed; the arrays
 *  have room for cap entries. Without chunks, each names[i] is one
 *  allocation that also holds values[i]; with chunks (the HTTP/1.1
 *  client's reader, h1parse.c), every name and value lies in those blocks,
 *  freed with the list. */
typedef struct {
    char **names;
    char **values;
    size_t n, cap;
    struct tg_hchunk *chunks;
} tg_headers_t;

typedef struct {
    void (*on_response)(void *arg, int status, const tg_headers_t *headers);
    /** Return 0 to go on, 1 to pause the transfer until tg_upstream_resume
     *  (the data passed now is consumed either way), -1 to abort it (on_done
     *  then reports TG_UP_BROKEN). */
    int (*on_data)(void *arg, const char *data, size_t len);
    void (*on_done)(void *arg, tg_upstream_result_t result, const char *error);
} tg_upstream_cbs_t;

typedef struct {
    const char *method; /* "POST", "GET", ... */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t n_headers;
    const char *body; /* must stay valid until on_done or cancel */
    size_t body_len;
    int64_t connect_timeout_ms;
    int64_t idle_timeout_ms; /* no byte from the provider for this long ends the call */
} tg_upstream_req_t;

tg_relay_t *tg_relay_new(struct event_base *base);
void tg_relay_free(tg_relay_t *r);

/** Start a transfer. Never fails synchronously: errors come via on_done,
 *  which is always called later from the event loop, never from inside this call. */
tg_upstream_t *tg_upstream_start(tg_relay_t *r, const tg_upstream_req_t *req,
                                 const tg_upstream_cbs_t *cbs, void *arg);

/** Resume a transfer paused by on_data returning 1. Not from a relay callback. */
void tg_upstream_resume(tg_upstream_t *u);

/** Abort the transfer now; no callback follows. Not from a relay callback
 *  (return -1 from on_data instead). */
void tg_upstream_cancel(tg_upstream_t *u);

void tg_headers_free(tg_headers_t *h);
/** First header of that name (case-insensitive), or NULL. */
const char *tg_headers_get(const tg_headers_t *h, const char *name);

#endif
