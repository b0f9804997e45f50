/*
 * request.c — HTTP/1.1 request reading over http-parser (see request.h).
 *
 * Invariants:
 * - `head` holds the target, then each header's name and value, each
 *   NUL-terminated once its part is over; `offs` holds the offsets (offsets,
 *   not pointers: `head` grows by realloc while a request is read);
 * - the parser is paused at the end of every request, so the bytes of a
 *   pipelined request stay unread until the current one was taken;
 * - after a failure the parser is left in error and reads nothing more: the
 *   connection ends after its error answer.
 */
#include "server/request.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool method_allowed(unsigned m)
{
    switch (m) {
    case HTTP_GET:
    case HTTP_POST:
    case HTTP_HEAD:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_OPTIONS:
    case HTTP_PATCH: return true;
    default: return false;
    }
}

static tg_reqparse_t *rp_of(http_parser *p) { return p->data; }

static int fail(tg_reqparse_t *rp, int status, const char *msg)
{
    rp->fail_status = status;
    rp->fail_msg = msg;
    return -1; /* stops the parser (1 would mean "no body" to on_headers_complete) */
}

/* Counts toward the request line and header limit. */
static int add_head(tg_reqparse_t *rp, const char *at, size_t len)
{
    rp->head_bytes += len;
    if (rp->head_bytes > TG_MAX_HEADERS_SIZE)
        return fail(rp, 431, "the request line and headers are larger than 64 KiB");
    tg_buf_append(&rp->head, at, len);
    return 0;
}

static void end_part(tg_reqparse_t *rp)
{
    if (rp->in_value) /* a value's trailing blanks are not part of it (RFC 9110 5.5) */
        while (rp->head.len > rp->offs[rp->n_offs - 1] &&
               (rp->head.data[rp->head.len - 1] == ' ' || rp->head.data[rp->head.len - 1] == '\t'))
            rp->head.len--;
    tg_buf_append(&rp->head, "", 1);
}

static int on_message_begin(http_parser *p)
{
    tg_reqparse_t *rp = rp_of(p);
    tg_buf_reset(&rp->head);
    tg_buf_reset(&rp->body);
    rp->n_offs = 0;
    rp->head_bytes = 0;
    rp->in_field = rp->in_value = false;
    rp->headers_done = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    return add_head(rp_of(p), at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    tg_reqparse_t *rp = rp_of(p);
    if (!rp->in_field) {
        end_part(rp); /* the target, or the previous value */
        if (rp->n_offs + 2 > rp->cap_offs) {
            rp->cap_offs = rp->cap_offs ? rp->cap_offs * 2 : 32;
            rp->offs = tg_xrealloc(rp->offs, rp->cap_offs * sizeof *rp->offs);
        }
        rp->offs[rp->n_offs++] = (uint32_t)rp->head.len;
        rp->offs[rp->n_offs++] = 0; /* the value's, once it starts */
        rp->in_field = true;
        rp->in_value = false;
    }
    return add_head(rp, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    tg_reqparse_t *rp = rp_of(p);
    if (!rp->in_value) {
        end_part(rp); /* the name */
        rp->offs[rp->n_offs - 1] = (uint32_t)rp->head.len;
        rp->in_value = true;
        rp->in_field = false;
    }
    return add_head(rp, at, len);
}

/* A header's value, by name, once the headers are read. */
static const char *head_value(tg_reqparse_t *rp, const char *name)
{
    for (size_t i = 0; i < rp->n_offs; i += 2)
        if (!strcasecmp(rp->head.data + rp->offs[i], name))
            return rp->head.data + rp->offs[i + 1];
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    tg_reqparse_t *rp = rp_of(p);
    end_part(rp); /* the target (no headers), or the last name or value */
    if (rp->in_field) {
        /* a name without a colon never gets here: http-parser refuses it */
        rp->offs[rp->n_offs - 1] = (uint32_t)rp->head.len;
        end_part(rp);
    }
    rp->in_field = rp->in_value = false;
    rp->headers_done = true;
    if (!method_allowed(p->method))
        return fail(rp, 405, "this method is not supported");
    bool chunked = p->flags & F_CHUNKED;
    bool has_length = p->content_length != ULLONG_MAX;
    if (!chunked && has_length && p->content_length > rp->max_body)
        return fail(rp, 413, "the request body is larger than security.max_request_size");
    const char *expect = head_value(rp, "Expect");
    if (expect && (p->http_major > 1 || p->http_minor >= 1)) {
        if (strcasecmp(expect, "100-continue"))
            return fail(rp, 417, "the only expectation supported is 100-continue");
        rp->expect_continue = chunked || (has_length && p->content_length > 0);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    tg_reqparse_t *rp = rp_of(p);
    if (rp->body.len + len > rp->max_body)
        return fail(rp, 413, "the request body is larger than security.max_request_size");
    tg_buf_append(&rp->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    tg_reqparse_t *rp = rp_of(p);
    rp->done = true;
    http_parser_pause(p, 1); /* the next pipelined request waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void tg_reqparse_init(tg_reqparse_t *rp, size_t max_body)
{
    memset(rp, 0, sizeof *rp);
    http_parser_init(&rp->p, HTTP_REQUEST);
    rp->p.data = rp;
    rp->max_body = max_body;
}

size_t tg_reqparse_feed(tg_reqparse_t *rp, const char *data, size_t len)
{
    if (rp->done || rp->fail_status || !len)
        return 0;
    size_t n = http_parser_execute(&rp->p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->p);
    if (e == HPE_PAUSED) {
        http_parser_pause(&rp->p, 0);
    } else if (e != HPE_OK && !rp->fail_status) {
        rp->fail_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        rp->fail_msg = e == HPE_HEADER_OVERFLOW
                           ? "the request line and headers are larger than 64 KiB"
                           : http_errno_description(e);
    } else if (e == HPE_OK && rp->p.upgrade && !rp->done) {
        /* A protocol switch, which the gateway does not speak. */
        fail(rp, 400, "protocol upgrades are not supported");
    }
    return n;
}

void tg_reqparse_take(tg_reqparse_t *rp, tg_request_t *out)
{
    memset(out, 0, sizeof *out);
    /* every method that gets this far (method_allowed) fits */
    strncpy(out->method, http_method_str(rp->p.method), sizeof out->method - 1);
    out->major = rp->p.http_major;
    out->minor = rp->p.http_minor;
    /* An upgrade request ends the parser's use of the connection. */
    out->keep_alive = http_should_keep_alive(&rp->p) && !rp->p.upgrade;
    out->n_headers = rp->n_offs / 2;
    out->head = rp->head.data ? rp->head.data : tg_xstrdup("");
    out->target = out->head;
    if (out->n_headers) {
        out->names = tg_xmalloc(out->n_headers * 2 * sizeof *out->names);
        out->values = out->names + out->n_headers;
        for (size_t i = 0; i < out->n_headers; i++) {
            out->names[i] = out->head + rp->offs[2 * i];
            out->values[i] = out->head + rp->offs[2 * i + 1];
        }
    }
    if (rp->body.len) {
        out->body = rp->body.data;
        out->body_len = rp->body.len;
    } else {
        tg_buf_free(&rp->body);
    }
    memset(&rp->head, 0, sizeof rp->head);
    memset(&rp->body, 0, sizeof rp->body);
    rp->n_offs = 0;
    rp->done = false;
    rp->headers_done = false;
    rp->expect_continue = false;
}

void tg_request_free(tg_request_t *r)
{
    free(r->head);
    free(r->names);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void tg_reqparse_free(tg_reqparse_t *rp)
{
    tg_buf_free(&rp->head);
    tg_buf_free(&rp->body);
    free(rp->offs);
    memset(rp, 0, sizeof *rp);
}
