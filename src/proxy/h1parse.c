/*
 * h1parse.c — the upstream answer reader (h1parse.h) on http-parser.
 *
 * Invariants:
 * - a head is bounded: TG_H1_MAX_HEADER_BYTES over its status line, names
 *   and values, and TG_H1_MAX_HEADERS headers; past either the answer is an
 *   error, never a bigger buffer;
 * - the parser is paused when the final answer completes, so bytes after it
 *   are left unconsumed: the caller sees them and does not reuse the
 *   connection;
 * - interim answers (1xx) are read and dropped: their headers never reach
 *   on_head.
 */
#include "proxy/h1parse.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The blocks a head's "name\0value\0" entries are written into, one
 * after the other: an answer's head costs an allocation or two, not two
 * per header. Only the newest block grows; an entry that no longer fits
 * moves, whole, to a new block twice as large. Dead bytes left behind are
 * bounded by the head's own bound. */
struct tg_hchunk {
    struct tg_hchunk *next; /* older */
    size_t len, cap;
    char data[];
};

#define HCHUNK_MIN 1024

void tg_headers_free(tg_headers_t *h)
{
    if (h->chunks) {
        for (struct tg_hchunk *c = h->chunks, *next; c; c = next) {
            next = c->next;
            free(c);
        }
    } else {
        for (size_t i = 0; i < h->n; i++)
            free(h->names[i]); /* the value is in the same block */
    }
    free(h->names);
    free(h->values);
    memset(h, 0, sizeof *h);
}

/* Room for `extra` more bytes after the last entry, which holds `used`
 * bytes (0 for a new one) at the end of the newest block; returns where
 * that entry now starts. */
static char *entry_room(tg_headers_t *h, size_t used, size_t extra)
{
    struct tg_hchunk *c = h->chunks;
    if (c && c->cap - c->len >= extra)
        return c->data + c->len - used;
    size_t cap = c ? c->cap * 2 : HCHUNK_MIN;
    while (cap < used + extra)
        cap *= 2;
    struct tg_hchunk *n = tg_xmalloc(sizeof *n + cap);
    n->next = c;
    n->cap = cap;
    n->len = used;
    if (used) { /* the entry moves: the pointers to it follow */
        memcpy(n->data, c->data + c->len - used, used);
        c->len -= used;
        size_t vl = (size_t)(h->values[h->n - 1] - h->names[h->n - 1]);
        h->names[h->n - 1] = n->data;
        h->values[h->n - 1] = n->data + vl;
    }
    h->chunks = n;
    return n->data;
}

const char *tg_headers_get(const tg_headers_t *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (!strcasecmp(h->names[i], name))
            return h->values[i];
    return NULL;
}

static tg_h1resp_t *of(http_parser *p)
{
    return p->data;
}

/* Fails the answer: the parser stops at this callback. */
static int fail(tg_h1resp_t *r, const char *why)
{
    if (!r->error)
        r->error = why;
    return -1;
}

/* Counts head bytes against the bound; a NUL is refused, as the headers
 * are kept as C strings. */
static int count(tg_h1resp_t *r, const char *at, size_t len)
{
    if (memchr(at, 0, len))
        return fail(r, "the provider's answer has a NUL byte in its head");
    r->head_bytes += len;
    return r->head_bytes > TG_H1_MAX_HEADER_BYTES
               ? fail(r, "the provider's response headers exceed 64 KiB")
               : 0;
}

static int on_message_begin(http_parser *p)
{
    tg_h1resp_t *r = of(p);
    tg_headers_free(&r->headers);
    r->head_bytes = 0;
    r->in_value = false;
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
    return count(of(p), at, len);
}

/* Appends to the name (or value) of the last header, the entry
 * "name\0value\0" at the end of the newest block; a new name starts a new
 * header. r->nl and r->vl are the last entry's name and value lengths. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    tg_h1resp_t *r = of(p);
    if (count(r, at, len))
        return -1;
    tg_headers_t *h = &r->headers;
    if (r->in_value || !h->n) { /* a new header */
        if (h->n >= TG_H1_MAX_HEADERS)
            return fail(r, "the provider's answer has more than 200 headers");
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 16;
            h->names = tg_xrealloc(h->names, h->cap * sizeof(char *));
            h->values = tg_xrealloc(h->values, h->cap * sizeof(char *));
        }
        char *e = entry_room(h, 0, len + 2);
        memcpy(e, at, len);
        e[len] = 0;
        e[len + 1] = 0;
        h->chunks->len += len + 2;
        h->names[h->n] = e;
        h->values[h->n] = e + len + 1;
        h->n++;
        r->nl = len;
        r->vl = 0;
        r->in_value = false;
        return 0;
    }
    /* the name went on in a later read (its value is still empty) */
    char *e = entry_room(h, r->nl + 2, len);
    memcpy(e + r->nl, at, len);
    r->nl += len;
    e[r->nl] = 0;
    e[r->nl + 1] = 0;
    h->chunks->len += len;
    h->values[h->n - 1] = e + r->nl + 1;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    tg_h1resp_t *r = of(p);
    if (count(r, at, len))
        return -1;
    tg_headers_t *h = &r->headers;
    if (!h->n)
        return fail(r, "the provider's answer has a header value without a name");
    char *e = entry_room(h, r->nl + r->vl + 2, len);
    memcpy(e + r->nl + 1 + r->vl, at, len);
    r->vl += len;
    e[r->nl + 1 + r->vl] = 0;
    h->chunks->len += len;
    r->in_value = true;
    return 0;
}

/* Values as the relay always gave them: without surrounding blanks. */
static void trim_values(tg_headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        char *v = h->values[i];
        size_t len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            v[--len] = 0;
        size_t lead = 0;
        while (v[lead] == ' ' || v[lead] == '\t')
            lead++;
        if (lead)
            memmove(v, v + lead, len - lead + 1);
    }
}

static int on_headers_complete(http_parser *p)
{
    tg_h1resp_t *r = of(p);
    if (p->status_code / 100 == 1)
        return 0; /* interim: its message ends here, another head follows */
    trim_values(&r->headers);
    r->got_head = true;
    r->cbs.on_head(r->arg, p->status_code, &r->headers);
    /* 1: no body follows, whatever Content-Length says (RFC 9112 §6.3) */
    return r->head_request || p->status_code == 204 || p->status_code == 304 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    tg_h1resp_t *r = of(p);
    int rc = r->cbs.on_body(r->arg, at, len);
    if (rc < 0) {
        r->stopped = true;
        return -1;
    }
    /* A pause on the last bytes of a Content-Length body is not taken: the
     * answer ends with them, and a paused parser would wait for one more
     * byte to say so. */
    bool last = !(p->flags & F_CHUNKED) && p->content_length == 0;
    if (rc > 0 && !last) {
        r->paused = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    tg_h1resp_t *r = of(p);
    if (!r->got_head)
        return 0; /* an interim answer ended */
    r->complete = true;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* what follows is not ours */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void tg_h1resp_init(tg_h1resp_t *r, bool head_request, const tg_h1resp_cbs_t *cbs, void *arg)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->p, HTTP_RESPONSE);
    r->p.data = r;
    r->cbs = *cbs;
    r->arg = arg;
    r->head_request = head_request;
}

void tg_h1resp_free(tg_h1resp_t *r)
{
    tg_headers_free(&r->headers);
}

static const char *parser_error(tg_h1resp_t *r)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    if (e == HPE_HEADER_OVERFLOW)
        return "the provider's response headers exceed 64 KiB";
    if (e == HPE_INVALID_STATUS || e == HPE_INVALID_CONSTANT || e == HPE_INVALID_VERSION)
        return "the provider's answer does not start with an HTTP/1.x status line";
    if (e == HPE_INVALID_CHUNK_SIZE)
        return "the provider's chunked answer is malformed";
    return "the provider's answer is not valid HTTP/1.1";
}

size_t tg_h1resp_feed(tg_h1resp_t *r, const char *data, size_t len)
{
    if (r->complete || r->paused || r->error || r->stopped || !len)
        return 0;
    size_t n = http_parser_execute(&r->p, &settings, data, len);
    r->fed += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->p);
    if (e != HPE_OK && e != HPE_PAUSED && !r->stopped && !r->error)
        r->error = parser_error(r);
    return n;
}

void tg_h1resp_unpause(tg_h1resp_t *r)
{
    if (!r->paused)
        return;
    r->paused = false;
    http_parser_pause(&r->p, 0);
}

bool tg_h1resp_eof(tg_h1resp_t *r)
{
    if (r->complete)
        return true;
    if (r->error || r->stopped || !r->fed)
        return false;
    http_parser_execute(&r->p, &settings, NULL, 0);
    if (r->complete)
        r->keep_alive = false;
    return r->complete;
}

bool tg_h1resp_started(const tg_h1resp_t *r)
{
    return r->fed > 0;
}
