/*
 * request.c — HTTP/1.1 request reading, strict RFC 9112 (see request.h).
 *
 * Why it is built this way. Debian builds http-parser without
 * HTTP_PARSER_STRICT: it takes a bare LF or a bare CR for a line end, folds
 * header lines, lets a space into a header name ("Content-Length : 5"),
 * reads "HXYZ/9.9" as a version and a request line without one as
 * HTTP/0.9, never looks at the two bytes after chunk data, and hands
 * trailer fields over as if they were headers. Behind a front proxy that
 * reads such bytes differently, leniency is how requests get smuggled. So
 * http-parser is not trusted with the framing:
 *
 * - check_fields() checks the head (request line, header lines, end) byte by
 *   byte against RFC 9112's grammar before http-parser sees it. http-parser
 *   only ever reads a head that passed, where its leniency cannot show, and
 *   does what it does well: methods, the target, header names and values,
 *   Content-Length, Connection. The checker is a state machine that keeps
 *   its state between calls, so every cut of the input reads the same.
 * - The body is read here: on_headers_complete tells http-parser there is
 *   none, so its message ends at the head's last byte. A Content-Length body
 *   is counted; a chunked one goes through a strict decoder of a few states
 *   (chunk_framing: hex sizes bounded by the body limit, extensions bounded
 *   and ignored, CRLF required after each chunk's data), its trailer lines
 *   through check_fields like header lines, bounded alike, then dropped
 *   (RFC 9110 6.5.1: never merged into the headers). Decoding it ourselves
 *   is simpler than checking the framing bytes beside http-parser's
 *   decoding: the two would have to agree on every chunk boundary.
 * - What needs the whole head (method, Host, Transfer-Encoding, limits,
 *   Expect) is decided in on_headers_complete.
 *
 * Invariants:
 * - `head` holds the target, then each header's name and value, each
 *   NUL-terminated once its part is over; `offs` holds the offsets (offsets,
 *   not pointers: `head` grows by realloc while a request is read);
 * - reading stops at the end of every request, so the bytes of a pipelined
 *   request stay unread until the current one was taken;
 * - after a failure nothing more is read: the connection ends after its
 *   error answer.
 */
#include "server/request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest chunk-size line (size and extensions) a chunked body may have. */
#define MAX_CHUNK_LINE 4096

/* Where the next byte falls. */
enum {
    /* the head; S_LINE to S_END_LF also read the trailer lines */
    S_START,    /* before the request line: empty lines are skipped (RFC 9112 2.2) */
    S_START_LF, /* the CR of such an empty line was read */
    S_METHOD,
    S_TARGET_FIRST,
    S_TARGET,
    S_VERSION,
    S_VERSION_LF,
    S_LINE, /* a field line starts, or the empty line that ends the section */
    S_NAME,
    S_VALUE,
    S_VALUE_LF,
    S_END_LF,
    S_HEAD_READ, /* the head passed; http-parser reads it next */
    /* the body */
    S_LENGTH, /* Content-Length bytes */
    S_SIZE_FIRST,
    S_SIZE,
    S_SIZE_WS, /* blanks after a chunk size: only a ";" extension may follow */
    S_EXT,
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    S_DONE
};

/* A byte the checker refuses, reported once http-parser has read what came
 * before it (see read_head). */
typedef struct {
    int status;
    const char *msg;
} refusal_t;

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

/* RFC 9110 5.6.2: the characters of a token (methods, header names). */
static const bool tchars[256] = {
    ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['!'] = true,  ['#'] = true,
    ['$'] = true,         ['%'] = true,         ['&'] = true,         ['\''] = true, ['*'] = true,
    ['+'] = true,         ['-'] = true,         ['.'] = true,         ['^'] = true,  ['_'] = true,
    ['`'] = true,         ['|'] = true,         ['~'] = true,
};

static bool is_tchar(unsigned char c)
{
    return tchars[c];
}

/* RFC 9110 5.5: a field value's bytes: visible, obs-text, SP and HTAB. */
static bool is_value_char(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > ' ' && c != 0x7f);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static tg_reqparse_t *rp_of(http_parser *p)
{
    return p->data;
}

static int fail(tg_reqparse_t *rp, int status, const char *msg)
{
    rp->fail_status = status;
    rp->fail_msg = msg;
    return -1; /* stops the parser (1 would mean "no body" to on_headers_complete) */
}

/* ---- the byte checker of the head and the trailers ---- */

static const char *bare_cr_or_lf(unsigned char c)
{
    return c == '\n' ? "a line ends in a bare LF: CRLF is required" : "a CR is not followed by LF";
}

/* The request line's version, at its CR: only HTTP/1.0 and HTTP/1.1
 * (RFC 9112 2.3); another well-formed one is 505. */
static void check_version(tg_reqparse_t *rp, refusal_t *bad)
{
    const char *v = rp->version;
    if (rp->version_len == 8 && (!memcmp(v, "HTTP/1.1", 8) || !memcmp(v, "HTTP/1.0", 8)))
        return;
    if (rp->version_len == 8 && !memcmp(v, "HTTP/", 5) && v[5] >= '0' && v[5] <= '9' &&
        v[6] == '.' && v[7] >= '0' && v[7] <= '9')
        *bad = (refusal_t){505, "only HTTP/1.0 and HTTP/1.1 are served"};
    else
        *bad = (refusal_t){400, "the request line's HTTP version is malformed"};
}

/* How many bytes from s[i] on are plain bytes of the part being read (a
 * header value, a header name, the target), which leave the state as it
 * is: the bulk of a head, stepped over in a tight loop. Bounded by the
 * head's limit, so the byte past it still meets the check. */
static size_t plain_run(const tg_reqparse_t *rp, const unsigned char *s, size_t i, size_t len)
{
    size_t room = TG_MAX_HEADERS_SIZE - rp->head_bytes;
    size_t end = len - i < room ? len : i + room, j = i;
    switch (rp->st) {
    case S_VALUE:
        while (j < end && is_value_char(s[j]))
            j++;
        break;
    case S_NAME:
        while (j < end && is_tchar(s[j]))
            j++;
        break;
    case S_TARGET:
        while (j < end && s[j] > ' ' && s[j] < 0x7f)
            j++;
        break;
    default: break;
    }
    return j - i;
}

/* Checks bytes of the head (or, with rp->trailers, of the trailer lines)
 * from rp->st on (RFC 9112 2-5). Returns how many passed: it stops after
 * the section's last LF (rp->st is then S_HEAD_READ, or S_DONE after
 * trailers), or before a byte it refuses, which *bad then describes. */
static size_t check_fields(tg_reqparse_t *rp, const unsigned char *s, size_t len, refusal_t *bad)
{
    for (size_t i = 0; i < len; i++) {
        size_t run = plain_run(rp, s, i, len);
        rp->head_bytes += run;
        i += run;
        if (i == len)
            break;
        unsigned char c = s[i];
        const char *why = NULL;
        if (++rp->head_bytes > TG_MAX_HEADERS_SIZE) {
            *bad = (refusal_t){431, rp->trailers
                                        ? "the trailer fields are larger than 64 KiB"
                                        : "the request line and headers are larger than 64 KiB"};
            return i;
        }
        switch (rp->st) {
        case S_START:
            if (c == '\r')
                rp->st = S_START_LF;
            else if (is_tchar(c))
                rp->st = S_METHOD;
            else
                why = c == '\n' ? bare_cr_or_lf(c) : "the request line is malformed";
            break;
        case S_METHOD:
            if (c == ' ')
                rp->st = S_TARGET_FIRST;
            else if (!is_tchar(c))
                why = "the request line is malformed";
            break;
        case S_TARGET_FIRST: /* one SP between the parts, and a target */
        case S_TARGET:
            if (c > ' ' && c < 0x7f)
                rp->st = S_TARGET;
            else if (c == ' ' && rp->st == S_TARGET) {
                rp->st = S_VERSION;
                rp->version_len = 0;
            } else if ((c == '\r' || c == '\n') && rp->st == S_TARGET)
                why = "the request line has no HTTP version (HTTP/0.9 is not served)";
            else
                why = "the request line is malformed";
            break;
        case S_VERSION:
            if (c == '\r') {
                check_version(rp, bad);
                if (bad->status)
                    return i;
                rp->st = S_VERSION_LF;
            } else if (rp->version_len < sizeof rp->version && c > ' ' && c < 0x7f) {
                rp->version[rp->version_len++] = (char)c;
            } else {
                why = c == '\n' ? bare_cr_or_lf(c) : "the request line's HTTP version is malformed";
            }
            break;
        case S_START_LF:
        case S_VERSION_LF:
        case S_VALUE_LF:
            if (c == '\n')
                rp->st = rp->st == S_START_LF ? S_START : S_LINE;
            else
                why = bare_cr_or_lf(c);
            break;
        case S_LINE:
            if (c == '\r')
                rp->st = S_END_LF;
            else if (is_tchar(c))
                rp->st = S_NAME;
            else if (c == ' ' || c == '\t')
                why = "a header line starts with whitespace (obsolete line folding is refused)";
            else
                why = c == '\n' ? bare_cr_or_lf(c) : "a header name is malformed";
            break;
        case S_NAME:
            if (c == ':')
                rp->st = S_VALUE;
            else if (c == ' ' || c == '\t')
                why = "whitespace between a header name and its colon";
            else if (!is_tchar(c))
                why = c == '\r' || c == '\n' ? "a header line has no colon"
                                             : "a header name is malformed";
            break;
        case S_VALUE:
            if (c == '\r')
                rp->st = S_VALUE_LF;
            else if (!is_value_char(c))
                why = c == '\n' ? bare_cr_or_lf(c) : "a control character in a header value";
            break;
        case S_END_LF:
            if (c != '\n') {
                why = bare_cr_or_lf(c);
                break;
            }
            rp->st = rp->trailers ? S_DONE : S_HEAD_READ;
            return i + 1;
        default: abort(); /* not a state of the head */
        }
        if (why) {
            *bad = (refusal_t){400, why};
            return i;
        }
    }
    return len;
}

/* ---- http-parser's part: the head's contents ---- */

/* Counted toward the 64 KiB by check_fields already. */
static int add_head(tg_reqparse_t *rp, const char *at, size_t len)
{
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
        if (rp->n_offs / 2 >= TG_MAX_HEADER_FIELDS)
            return fail(rp, 431, "more than " TG_STR(TG_MAX_HEADER_FIELDS) " header fields");
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

/* A header's value by name, and how many times the name occurs. */
static const char *head_value(tg_reqparse_t *rp, const char *name, size_t *count)
{
    const char *first = NULL;
    unsigned char c0 = tg_lower_byte((unsigned char)name[0]);
    *count = 0;
    for (size_t i = 0; i < rp->n_offs; i += 2) {
        const char *n = rp->head.data + rp->offs[i];
        /* the first byte before the whole name: most differ right there */
        if (tg_lower_byte((unsigned char)n[0]) == c0 && !strcasecmp(n, name) && !(*count)++)
            first = rp->head.data + rp->offs[i + 1];
    }
    return first;
}

/* RFC 9112 3.2: Host is uri-host [ ":" port ]; only its characters are
 * checked (unreserved, sub-delims, "%", ":" and the IP-literal brackets). */
static bool host_valid(const char *v)
{
    for (; *v; v++)
        if (!((*v >= '0' && *v <= '9') || ((*v | 0x20) >= 'a' && (*v | 0x20) <= 'z') ||
              strchr("-._~!$&'()*+,;=%:[]", *v)))
            return false;
    return true;
}

/* How the body is framed (RFC 9112 6): Transfer-Encoding is plain chunked
 * or refused; with it, Content-Length is refused (http-parser refuses that
 * first; the rule is spelled here too). Returns 0 or fail()'s -1. */
static int check_framing(tg_reqparse_t *rp, http_parser *p, bool has_length)
{
    size_t n_te = 0, n_chunked = 0;
    for (size_t i = 0; i < rp->n_offs; i += 2)
        if (tg_lower_byte((unsigned char)rp->head.data[rp->offs[i]]) == 't' &&
            !strcasecmp(rp->head.data + rp->offs[i], "Transfer-Encoding")) {
            n_te++;
            n_chunked += !strcasecmp(rp->head.data + rp->offs[i + 1], "chunked");
        }
    if (n_chunked < n_te) /* gzip, "gzip, chunked", "chunked;x", an empty one ... */
        return fail(rp, 501, "the only transfer coding supported is chunked");
    if (n_te > 1)
        return fail(rp, 400, "the chunked transfer coding is given more than once");
    if (n_te && p->http_minor == 0) /* RFC 9112 6.1: its framing cannot be trusted */
        return fail(rp, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (n_te && has_length)
        return fail(rp, 400, "both Content-Length and Transfer-Encoding");
    rp->chunked = n_te == 1;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    tg_reqparse_t *rp = rp_of(p);
    end_part(rp); /* the target (no headers), or the last name or value */
    if (rp->in_field) {
        /* a name without a colon never gets here: check_fields refuses it */
        rp->offs[rp->n_offs - 1] = (uint32_t)rp->head.len;
        end_part(rp);
    }
    rp->in_field = rp->in_value = false;
    rp->headers_done = true;
    if (!method_allowed(p->method))
        return fail(rp, 405, "this method is not supported");
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1, never two */
    size_t n_host;
    const char *host = head_value(rp, "Host", &n_host);
    if (n_host > 1)
        return fail(rp, 400, "more than one Host header");
    if (!n_host && p->http_minor == 1)
        return fail(rp, 400, "an HTTP/1.1 request without a Host header");
    if (host && !host_valid(host))
        return fail(rp, 400, "the Host header is malformed");
    bool has_length = p->flags & F_CONTENTLENGTH;
    if (check_framing(rp, p, has_length))
        return -1;
    if (!rp->chunked && has_length && p->content_length > rp->max_body)
        return fail(rp, 413, "the request body is larger than security.max_request_size");
    size_t n_expect;
    const char *expect = head_value(rp, "Expect", &n_expect);
    if (expect && p->http_minor >= 1) {
        if (n_expect > 1 || strcasecmp(expect, "100-continue"))
            return fail(rp, 417, "the only expectation supported is 100-continue");
        rp->expect_continue = rp->chunked || (has_length && p->content_length > 0);
    }
    rp->left = has_length ? (size_t)p->content_length : 0;
    return 1; /* "no body": read_body reads it */
}

static int on_message_complete(http_parser *p)
{
    tg_reqparse_t *rp = rp_of(p);
    rp->head_read = true;
    http_parser_pause(p, 1); /* the body, if any, is read_body's */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* Checks head bytes, then lets http-parser read the ones that passed. Its
 * own refusal of an earlier byte wins over the checker's, so that a
 * request is answered the same however its bytes were cut. */
static size_t read_head(tg_reqparse_t *rp, const char *data, size_t len)
{
    refusal_t bad = {0};
    size_t n = check_fields(rp, (const unsigned char *)data, len, &bad);
    if (n) {
        size_t m = http_parser_execute(&rp->p, &settings, data, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&rp->p);
        if (e == HPE_PAUSED)
            http_parser_pause(&rp->p, 0);
        if (e == HPE_HEADER_OVERFLOW) /* its own limit (80 KiB in Debian's build) */
            fail(rp, 431, "the request line and headers are larger than 64 KiB");
        else if (e != HPE_OK && e != HPE_PAUSED && !rp->fail_status)
            fail(rp, 400, http_errno_description(e));
        if (rp->fail_status)
            return n;
        /* Both end the head at the same byte: http-parser only reads heads
         * the checker passed. Should they ever disagree, refuse. */
        if (m != n || rp->head_read != (rp->st == S_HEAD_READ)) {
            fail(rp, 400, "the request head could not be read");
            return n;
        }
    }
    if (bad.status)
        fail(rp, bad.status, bad.msg);
    else if (rp->st == S_HEAD_READ)
        rp->st = rp->chunked ? S_SIZE_FIRST : rp->left ? S_LENGTH : S_DONE;
    return n;
}

/* ---- the body ---- */

/* One more hex digit of a chunk size, which must fit in what the body
 * limit leaves. */
static void add_size_digit(tg_reqparse_t *rp, int d)
{
    size_t room = rp->max_body - rp->body.len;
    if ((size_t)d > room || rp->left > (room - (size_t)d) / 16)
        fail(rp, 413, "the request body is larger than security.max_request_size");
    else
        rp->left = rp->left * 16 + (size_t)d;
}

/* One byte of a chunked body's framing (RFC 9112 7.1):
 *   chunk-size [ BWS ";" ext ] CRLF  data CRLF  ...  "0" [ ext ] CRLF  trailers  CRLF */
static void chunk_framing(tg_reqparse_t *rp, unsigned char c)
{
    int d = hex_value(c);
    if (rp->st >= S_SIZE && rp->st <= S_EXT && ++rp->chunk_line > MAX_CHUNK_LINE) {
        fail(rp, 400, "a chunk-size line is longer than 4 KiB");
        return;
    }
    switch (rp->st) {
    case S_SIZE_FIRST:
        if (d < 0) {
            fail(rp, 400, "a chunk size is malformed");
            return;
        }
        rp->left = 0;
        rp->chunk_line = 1;
        rp->st = S_SIZE;
        add_size_digit(rp, d);
        return;
    case S_SIZE:
        if (d >= 0)
            add_size_digit(rp, d);
        else if (c == '\r')
            rp->st = S_SIZE_LF;
        else if (c == ';')
            rp->st = S_EXT;
        else if (c == ' ' || c == '\t')
            rp->st = S_SIZE_WS;
        else
            fail(rp, 400, "a chunk size is malformed");
        return;
    case S_SIZE_WS:
        if (c == ';')
            rp->st = S_EXT;
        else if (c != ' ' && c != '\t')
            fail(rp, 400, "a chunk size is malformed");
        return;
    case S_EXT: /* ignored, but no control characters: they could end the line for another reader */
        if (c == '\r')
            rp->st = S_SIZE_LF;
        else if (!is_value_char(c))
            fail(rp, 400,
                 c == '\n' ? bare_cr_or_lf(c) : "a control character in a chunk extension");
        return;
    case S_SIZE_LF:
        if (c != '\n') {
            fail(rp, 400, bare_cr_or_lf(c));
        } else if (rp->left) {
            rp->st = S_DATA;
        } else { /* the last chunk: trailer lines follow, checked like headers */
            rp->trailers = true;
            rp->head_bytes = 0;
            rp->st = S_LINE;
        }
        return;
    case S_DATA_CR:
    case S_DATA_LF:
        if (c != (rp->st == S_DATA_CR ? '\r' : '\n'))
            fail(rp, 400, "chunk data is not followed by CRLF");
        else
            rp->st = rp->st == S_DATA_CR ? S_DATA_LF : S_SIZE_FIRST;
        return;
    default: abort(); /* not a state of the framing */
    }
}

/* Reads body bytes until the request's end. */
static size_t read_body(tg_reqparse_t *rp, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && rp->st != S_DONE && !rp->fail_status) {
        if (rp->st == S_LENGTH || rp->st == S_DATA) {
            size_t n = len - i < rp->left ? len - i : rp->left;
            tg_buf_append(&rp->body, data + i, n); /* within max_body: checked on the size */
            i += n;
            rp->left -= n;
            if (!rp->left)
                rp->st = rp->st == S_LENGTH ? S_DONE : S_DATA_CR;
        } else if (rp->st < S_HEAD_READ) { /* the trailer lines */
            refusal_t bad = {0};
            i += check_fields(rp, (const unsigned char *)data + i, len - i, &bad);
            if (bad.status)
                fail(rp, bad.status, bad.msg);
        } else {
            chunk_framing(rp, (unsigned char)data[i++]);
        }
    }
    return i;
}

/* Ready for the next request's first byte. */
static void reset_reading(tg_reqparse_t *rp)
{
    rp->st = S_START;
    rp->head_bytes = 0;
    rp->head_read = rp->chunked = rp->trailers = false;
    rp->left = 0;
}

void tg_reqparse_init(tg_reqparse_t *rp, size_t max_body)
{
    memset(rp, 0, sizeof *rp);
    http_parser_init(&rp->p, HTTP_REQUEST);
    rp->p.data = rp;
    rp->max_body = max_body;
    reset_reading(rp);
}

size_t tg_reqparse_feed(tg_reqparse_t *rp, const char *data, size_t len)
{
    if (rp->done || rp->fail_status || !len)
        return 0;
    size_t n = 0;
    if (!rp->head_read)
        n = read_head(rp, data, len);
    if (!rp->fail_status && rp->head_read)
        n += read_body(rp, data + n, len - n);
    rp->done = !rp->fail_status && rp->st == S_DONE;
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
    reset_reading(rp);
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
