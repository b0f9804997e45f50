/*
 * h1parse.h — an upstream's HTTP/1.1 answer read by Debian's http-parser:
 * status, headers (bounded), then the body as it comes (Content-Length,
 * chunked or close-delimited), interim 1xx answers skipped, no body for
 * HEAD, 204 and 304.
 *
 * The reader calls its owner's on_head once for the final answer's head
 * and on_body for each run of body bytes; it never calls anything else.
 * Feed it bytes with tg_h1resp_feed; it stops (and says so) when the answer
 * is complete, when on_body asked to pause, or on an error.
 *
 * Thread: whoever owns it; no shared state.
 */
#ifndef TG_H1PARSE_H
#define TG_H1PARSE_H

#include "proxy/relay.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define TG_H1_MAX_HEADER_BYTES (64 * 1024)
#define TG_H1_MAX_HEADERS      200

typedef struct {
    /** The final answer's status and headers, before its first body byte. */
    void (*on_head)(void *arg, int status, const tg_headers_t *headers);
    /** 0: go on; 1: pause after these bytes (they are consumed); -1: stop. */
    int (*on_body)(void *arg, const char *data, size_t len);
} tg_h1resp_cbs_t;

typedef struct {
    http_parser p;
    tg_h1resp_cbs_t cbs;
    void *arg;
    bool head_request; /* the answer to HEAD has no body, whatever it says */
    tg_headers_t headers;
    size_t head_bytes; /* bytes of the current head: bounded */
    bool in_value;     /* the last header callback was a value */
    size_t nl, vl;     /* the last header's name and value lengths so far */
    size_t fed;        /* bytes read so far */
    bool got_head;     /* on_head was called */
    bool complete;     /* the final answer ended */
    bool paused;       /* on_body asked to pause */
    bool stopped;      /* on_body said stop */
    bool keep_alive;   /* at completion: the connection may carry another request */
    const char *error; /* a malformed or oversized answer: why */
} tg_h1resp_t;

void tg_h1resp_init(tg_h1resp_t *r, bool head_request, const tg_h1resp_cbs_t *cbs, void *arg);
void tg_h1resp_free(tg_h1resp_t *r);

/** Reads up to len bytes; returns how many it consumed. It stops early when
 *  the answer completes (the rest are bytes the provider sent beyond it),
 *  when paused (call tg_h1resp_unpause, then feed the rest) or on error. */
size_t tg_h1resp_feed(tg_h1resp_t *r, const char *data, size_t len);
void tg_h1resp_unpause(tg_h1resp_t *r);

/** The provider closed the connection: true when that completes the answer
 *  (a close-delimited body), false when the answer was cut short. */
bool tg_h1resp_eof(tg_h1resp_t *r);

/** Whether any byte of an answer has been read. */
bool tg_h1resp_started(const tg_h1resp_t *r);

#endif
