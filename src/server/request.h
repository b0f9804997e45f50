/*
 * request.h — reads HTTP/1.1 requests off a client connection's bytes.
 *
 * A thin layer over Debian's http-parser (libhttp-parser): it gathers one
 * request at a time (method, target, headers, body) into buffers the
 * exchange then owns, enforces the size limits, and stops at the end of
 * each request so pipelined ones wait their turn. No I/O and no event loop:
 * server.c feeds it what the socket gave, tests and the fuzzer feed it
 * bytes. Any thread; one parser per connection.
 */
#ifndef TG_SERVER_REQUEST_H
#define TG_SERVER_REQUEST_H

#include "core/util.h"

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Bytes of request line plus headers a request may have. */
#define TG_MAX_HEADERS_SIZE (64 * 1024)

/** One request, complete. Its memory is the caller's once taken. */
typedef struct {
    char method[12];
    int major, minor;
    char *head;         /* target, NUL, then each name NUL value NUL */
    const char *target; /* inside head */
    size_t n_headers;
    const char **names; /* n_headers each, inside head */
    const char **values;
    char *body; /* NUL-terminated; NULL when empty */
    size_t body_len;
    bool keep_alive; /* the client may send another request after this one */
} tg_request_t;

typedef struct {
    http_parser p;
    size_t max_body;
    /* the request being read */
    tg_buf_t head;
    uint32_t *offs; /* per header: name offset, value offset */
    size_t n_offs, cap_offs;
    tg_buf_t body;
    size_t head_bytes;
    bool in_field, in_value;
    /* the outcome of the last feed */
    bool headers_done;    /* the current request's head is read (its body may follow) */
    bool done;            /* a whole request is ready: tg_reqparse_take */
    bool expect_continue; /* headers just read ask for "100 Continue": the caller
                           * answers it and clears the flag */
    int fail_status;      /* 400, 405, 413, 417 or 431: the connection cannot go on */
    const char *fail_msg;
} tg_reqparse_t;

/** Ready for a connection's first request; max_body bounds each body. */
void tg_reqparse_init(tg_reqparse_t *rp, size_t max_body);

/** Reads from data. Returns how many bytes it used: it stops after the end
 *  of a request (rp->done) and on an error (rp->fail_status, fail_msg).
 *  Call again with the rest once the request was taken. */
size_t tg_reqparse_feed(tg_reqparse_t *rp, const char *data, size_t len);

/** Hands the finished request over and gets ready for the next one. */
void tg_reqparse_take(tg_reqparse_t *rp, tg_request_t *out);

/** Frees a request taken with tg_reqparse_take. */
void tg_request_free(tg_request_t *r);

/** Frees what the parser holds. */
void tg_reqparse_free(tg_reqparse_t *rp);

#endif
