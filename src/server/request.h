/*
 * request.h — reads HTTP/1.1 requests off a client connection's bytes.
 *
 * Strict RFC 9112: every byte of the head and of a chunked body's framing
 * is checked (request.c says how), and anything a lenient reader might
 * take differently from a front proxy is refused. Debian's http-parser
 * splits the checked head into method, target and headers. One request at
 * a time is gathered (method, target, headers, body) into buffers the
 * exchange then owns, within the size limits, and reading stops at the end
 * of each request so pipelined ones wait their turn. No I/O and no event loop:
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
/** Header fields a request may have: every later look-up scans them, and
 *  ~2,500 Helicone-Property-* fields made the record's property list grow
 *  quadratically. Real clients send 10-30. */
#define TG_MAX_HEADER_FIELDS 256

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
    size_t head_bytes; /* of the head (or of the trailers) so far, against the 64 KiB */
    bool in_field, in_value;
    /* the byte checker and body reader (request.c) */
    int st;          /* where the next byte falls */
    char version[8]; /* the request line's version, as read */
    size_t version_len;
    bool head_read;    /* http-parser has read the whole head */
    bool chunked;      /* the body is chunked, else Content-Length (or none) */
    bool trailers;     /* reading the trailer lines after the last chunk */
    size_t left;       /* body bytes (Content-Length) or chunk bytes still to come */
    size_t chunk_line; /* bytes of the chunk-size line so far */
    /* the outcome of the last feed */
    bool headers_done;    /* the current request's head is read (its body may follow) */
    bool done;            /* a whole request is ready: tg_reqparse_take */
    bool expect_continue; /* headers just read ask for "100 Continue": the caller
                           * answers it and clears the flag */
    int fail_status;      /* 400, 405, 413, 417, 431, 501 or 505: the connection cannot go on */
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
