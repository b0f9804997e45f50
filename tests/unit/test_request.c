/* Unit tests for src/server/request.c: reading client requests. */
#include "server/request.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reads every request of `in`, fed `step` bytes at a time (0: all at
 * once), into a text that names each part; a failure ends it. */
static char *read_all(const char *in, size_t step, size_t max_body)
{
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, max_body);
    tg_buf_t got = {0};
    size_t len = strlen(in), off = 0;
    while (off < len) {
        size_t want = step && step < len - off ? step : len - off;
        size_t n = tg_reqparse_feed(&rp, in + off, want);
        off += n;
        if (rp.fail_status) {
            tg_buf_printf(&got, "fail %d;", rp.fail_status);
            break;
        }
        if (rp.expect_continue) {
            tg_buf_puts(&got, "continue;");
            rp.expect_continue = false;
        }
        if (rp.done) {
            tg_request_t r;
            tg_reqparse_take(&rp, &r);
            tg_buf_printf(&got, "%s %s %d.%d%s", r.method, r.target, r.major, r.minor,
                          r.keep_alive ? " ka" : "");
            for (size_t i = 0; i < r.n_headers; i++)
                tg_buf_printf(&got, " [%s=%s]", r.names[i], r.values[i]);
            tg_buf_printf(&got, " body(%zu)=%s;", r.body_len, r.body ? r.body : "");
            tg_request_free(&r);
        } else if (n < want) {
            tg_buf_puts(&got, "stuck;");
            break;
        }
    }
    tg_reqparse_free(&rp);
    if (!got.data)
        tg_buf_puts(&got, "");
    return got.data;
}

static void check_any_chunking(const char *file, int line, const char *in, size_t max_body,
                               const char *want)
{
    for (size_t step = 0; step <= strlen(in); step++) {
        char *got = read_all(in, step, max_body);
        if (strcmp(got, want)) {
            tg_test_fail(file, line, "step %zu: got\n      %s\n    want\n      %s", step, got,
                         want);
            free(got);
            return;
        }
        free(got);
    }
}
#define CHECK_READS(in, max, want) check_any_chunking(__FILE__, __LINE__, in, max, want)

/* `before`, then 700 fields of ~100 bytes (more than 64 KiB) and the empty
 * line: 431, read at once or in 1000-byte pieces (every cut would be slow). */
static void check_fields_over_64k(const char *file, int line, const char *before)
{
    tg_buf_t big = {0};
    tg_buf_puts(&big, before);
    for (int i = 0; i < 700; i++)
        tg_buf_printf(&big, "X-H%d: %090d\r\n", i, i);
    tg_buf_puts(&big, "\r\n");
    for (size_t step = 0; step <= 1000; step += 1000) {
        char *got = read_all(big.data, step, 10);
        if (strcmp(got, "fail 431;"))
            tg_test_fail(file, line, "step %zu: got %s, want fail 431;", step, got);
        free(got);
    }
    tg_buf_free(&big);
}
#define CHECK_FIELDS_OVER_64K(before) check_fields_over_64k(__FILE__, __LINE__, before)

TEST(request_pipelined_requests_in_order_with_headers_and_bodies)
{
    CHECK_READS("POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n"
                "Content-Length: 3\r\n\r\nabc"
                "GET /health HTTP/1.1\r\nhelicone-user-id:  u 1 \r\nHost: a\r\n\r\n",
                100,
                "POST /v1/chat/completions?x=1 1.1 ka [Host=a] [X-Empty=] [Content-Length=3]"
                " body(3)=abc;GET /health 1.1 ka [helicone-user-id=u 1] [Host=a] body(0)=;");
}

TEST(request_chunked_body_and_expect_continue)
{
    CHECK_READS("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                "Expect: 100-continue\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                100,
                "continue;POST /p 1.1 ka [Host=a] [Transfer-Encoding=chunked] [Expect=100-continue]"
                " body(5)=abcde;");
    /* no body: nothing to continue for */
    CHECK_READS("GET /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", 100,
                "GET /p 1.1 ka [Host=a] [Expect=100-continue] body(0)=;");
    CHECK_READS("POST /p HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", 100,
                "fail 417;");
}

TEST(request_keep_alive_follows_version_and_connection)
{
    CHECK_READS("GET / HTTP/1.0\r\n\r\n", 10, "GET / 1.0 body(0)=;");
    CHECK_READS("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10,
                "GET / 1.0 ka [Connection=keep-alive] body(0)=;");
    CHECK_READS("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 10,
                "GET / 1.1 [Host=a] [Connection=close] body(0)=;");
    CHECK_READS("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 10,
                "GET / 1.1 [Host=a] [Connection=Upgrade] [Upgrade=h2c] body(0)=;");
}

TEST(request_limits_and_malformed_input)
{
    /* declared too long: refused before any body byte */
    CHECK_READS("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 10, "fail 413;");
    /* exactly the limit passes; a chunked body over it fails */
    CHECK_READS("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", 10,
                "POST /p 1.1 ka [Host=a] [Content-Length=10] body(10)=0123456789;");
    CHECK_READS("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n",
                10, "fail 413;");
    CHECK_READS("PROPFIND /p HTTP/1.1\r\nHost: a\r\n\r\n", 10, "fail 405;");
    CHECK_READS("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 10, "fail 405;");
    CHECK_READS("hello\r\n\r\n", 10, "fail 400;");
    CHECK_READS("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 10, "fail 400;");
    CHECK_READS("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                10, "fail 400;");

    /* more than 64 KiB of headers */
    CHECK_FIELDS_OVER_64K("GET / HTTP/1.1\r\n");
}

TEST(request_nothing_is_read_past_the_end_of_a_request)
{
    const char *two = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, 10);
    size_t n = tg_reqparse_feed(&rp, two, strlen(two));
    CHECK_INT(n, strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK(rp.done);
    /* until the request is taken, the next one waits */
    CHECK_INT(tg_reqparse_feed(&rp, two + n, strlen(two) - n), 0);
    tg_request_t r;
    tg_reqparse_take(&rp, &r);
    CHECK_STR(r.target, "/a");
    tg_request_free(&r);
    CHECK_INT(tg_reqparse_feed(&rp, two + n, strlen(two) - n), strlen(two) - n);
    tg_reqparse_take(&rp, &r);
    CHECK_STR(r.target, "/b");
    tg_request_free(&r);
    tg_reqparse_free(&rp);
}

/* ---- strict RFC 9112: what a lenient reader would take differently ---- */

/* Each of ins[] must be refused with `status`, however it is cut. */
static void check_refused(const char *file, int line, const char *const *ins, size_t n, int status)
{
    char want[16];
    snprintf(want, sizeof want, "fail %d;", status);
    for (size_t i = 0; i < n; i++)
        check_any_chunking(file, line, ins[i], 100, want);
}
#define CHECK_REFUSED(ins, status)                                                                 \
    check_refused(__FILE__, __LINE__, ins, sizeof ins / sizeof *ins, status)

#define POST_CHUNKED "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

TEST(request_chunk_data_must_be_followed_by_crlf)
{
    static const char *const bad[] = {
        POST_CHUNKED "3\r\nabcXX0\r\n\r\n",
        POST_CHUNKED "3\r\nabcd\r\n0\r\n\r\n",
        POST_CHUNKED "3\r\nabc\n0\r\n\r\n",
        POST_CHUNKED "3\r\nabc\r0\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
}

TEST(request_bare_lf_and_bare_cr_are_refused_in_the_head_and_the_framing)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n",       "GET / HTTP/1.1\rHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",       "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\rX",      "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX-A: 1\n\n", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",   POST_CHUNKED "3\nabc\r\n0\r\n\r\n",
        POST_CHUNKED "3;x\nabc\r\n0\r\n\r\n",    POST_CHUNKED "3\r\nabc\r\n0\n\r\n",
        POST_CHUNKED "3\r\nabc\r\n0\r\n\n",      POST_CHUNKED "3\r\nabc\r\n0\r\nX-T: 1\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
}

TEST(request_folded_header_lines_are_refused)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",     /* whitespace before the first header line */
        POST_CHUNKED "0\r\nX-T: 1\r\n 2\r\n\r\n", /* and in trailers */
    };
    CHECK_REFUSED(bad, 400);
}

TEST(request_whitespace_between_a_field_name_and_its_colon_is_refused)
{
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        POST_CHUNKED "0\r\nX-T : 1\r\n\r\n",
        /* no name, no colon, a control character in a value */
        "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
}

TEST(request_only_http_1_0_and_1_1_are_served)
{
    static const char *const unsupported[] = {
        "GET / HTTP/9.9\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
    };
    CHECK_REFUSED(unsupported, 505);
    static const char *const bad[] = {
        "GET /\r\n\r\n", /* no version: HTTP/0.9 is not served */
        "GET /\r\nHost: a\r\n\r\n",
        "GET / HXYZ/1.1\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
}

TEST(request_http_1_1_needs_exactly_one_host)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
    /* what clients send */
    CHECK_READS(
        "GET / HTTP/1.1\r\nhost: 127.0.0.1:8585\r\n\r\nGET / HTTP/1.1\r\nHOST: [::1]:80\r\n\r\n"
        "GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n",
        100,
        "GET / 1.1 ka [host=127.0.0.1:8585] body(0)=;GET / 1.1 ka [HOST=[::1]:80] body(0)=;"
        "GET http://x.test/ 1.1 ka [Host=x.test] body(0)=;");
    /* HTTP/1.0 may leave it out */
    CHECK_READS("GET / HTTP/1.0\r\n\r\n", 100, "GET / 1.0 body(0)=;");
}

TEST(request_transfer_codings_other_than_chunked_are_not_implemented)
{
#define POST_TE "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
    static const char *const unsupported[] = {
        POST_TE "gzip, chunked\r\n\r\n0\r\n\r\n",
        POST_TE "gzip\r\n\r\n",
        POST_TE "chunked, gzip\r\n\r\n",
        POST_TE "identity\r\n\r\n",
        POST_TE "gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    CHECK_REFUSED(unsupported, 501);
    static const char *const bad[] = {
        /* chunked twice; with a Content-Length; in HTTP/1.0 */
        POST_TE "chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        POST_TE "chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
#undef POST_TE
}

TEST(request_chunk_sizes_extensions_and_trailers_are_bounded)
{
    /* sizes: hex only, within the body limit (no overflow) */
    static const char *const too_large[] = {
        /* the limit is 100 */
        POST_CHUNKED "ffffffffffffffffffff\r\n",
        POST_CHUNKED "65\r\n",
    };
    CHECK_REFUSED(too_large, 413);
    CHECK_READS(POST_CHUNKED "ffffffffffffffffffff\r\n", SIZE_MAX, "fail 413;");
    static const char *const bad[] = {
        POST_CHUNKED "x\r\n",
        POST_CHUNKED "0x3\r\nabc\r\n0\r\n\r\n",
        POST_CHUNKED "-3\r\nabc\r\n0\r\n\r\n",
        POST_CHUNKED "\r\n",
        POST_CHUNKED "3 x\r\nabc\r\n0\r\n\r\n",
        POST_CHUNKED "3;a\x01\r\nabc\r\n0\r\n\r\n",
    };
    CHECK_REFUSED(bad, 400);
    /* exactly the limit is fine, so far */
    CHECK_READS(POST_CHUNKED "64\r\n", 100, "");

    /* a chunk-size line over 4 KiB; trailers over 64 KiB */
    tg_buf_t big = {0};
    tg_buf_printf(&big, POST_CHUNKED "1;x=%05000d\r\na\r\n0\r\n\r\n", 0);
    char *got = read_all(big.data, 0, 100);
    CHECK_STR(got, "fail 400;");
    free(got);
    got = read_all(big.data, 7, 100);
    CHECK_STR(got, "fail 400;");
    free(got);
    tg_buf_free(&big);
    CHECK_FIELDS_OVER_64K(POST_CHUNKED "0\r\n");
}

TEST(request_strict_reading_still_takes_what_clients_send)
{
    /* chunked in any case, extensions (with blanks before ";"), upper-case
     * hex, trailers (dropped: never merged into the headers), then
     * pipelined requests: Content-Length, and HTTP/1.0 without Host after
     * an empty line (RFC 9112 2.2) */
    CHECK_READS("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n"
                "3;name=value\r\nabc\r\n3 ; q=\"a b\"\r\ndef\r\nA\r\n0123456789\r\n"
                "0;last\r\nX-Trailer: t\r\nHost: evil\r\n\r\n"
                "POST /l HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
                "\r\nGET /z HTTP/1.0\r\nX-Obs: caf\xc3\xa9\t!\r\n\r\n",
                100,
                "POST /c 1.1 ka [Host=a] [Transfer-Encoding=Chunked] body(16)=abcdef0123456789;"
                "POST /l 1.1 ka [Host=a] [Content-Length=2] body(2)=hi;"
                "GET /z 1.0 [X-Obs=caf\xc3\xa9\t!] body(0)=;");
    CHECK_READS("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n", 100,
                "POST /c 1.1 ka [Host=a] [Transfer-Encoding=CHUNKED] body(0)=;");
}

/* conn.c starts a request's body deadline when its head is read: the
 * flag says so while the body is still coming, and is clear again for the
 * next request. */
TEST(request_headers_done_marks_the_end_of_the_head)
{
    static const char head[] = "POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n";
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, 1024);
    CHECK_INT(tg_reqparse_feed(&rp, head, strlen(head)), strlen(head));
    CHECK(!rp.headers_done);
    CHECK_INT(tg_reqparse_feed(&rp, "\r\n{}", 4), 4);
    CHECK(rp.headers_done);
    CHECK(!rp.done);
    CHECK_INT(tg_reqparse_feed(&rp, "{}GET", 5), 2);
    CHECK(rp.done);
    tg_request_t r;
    tg_reqparse_take(&rp, &r);
    CHECK(!rp.headers_done);
    CHECK_INT(r.body_len, 4);
    tg_request_free(&r);
    CHECK_INT(tg_reqparse_feed(&rp, "GET / HTTP/1.1\r\n", 16), 16);
    CHECK(!rp.headers_done);
    tg_reqparse_free(&rp);
}

/* A head of exactly 64 KiB is read; one byte more is refused (431), whether
 * the last byte falls in the target, a header name or a header value, which
 * the reader steps over in runs, and however the input is cut. */
TEST(request_head_limit_is_exact_inside_runs)
{
    static const char *const shapes[][3] = {
        /* before the padding, the padding byte, after it */
        {"GET /", "t", " HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-", "n", ": v\r\n\r\n"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ", "v", "\r\n\r\n"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t fixed = strlen(shapes[s][0]) + strlen(shapes[s][2]);
        for (size_t extra = 0; extra <= 1; extra++) {
            tg_buf_t in = {0};
            tg_buf_puts(&in, shapes[s][0]);
            for (size_t i = 0; i < TG_MAX_HEADERS_SIZE - fixed + extra; i++)
                tg_buf_puts(&in, shapes[s][1]);
            tg_buf_puts(&in, shapes[s][2]);
            CHECK_INT(in.len, TG_MAX_HEADERS_SIZE + extra);
            for (size_t step = 0; step <= 7; step += 7) {
                char *got = read_all(in.data, step, 10);
                if (extra)
                    CHECK_STR(got, "fail 431;");
                else
                    CHECK(strncmp(got, "GET /", 5) == 0);
                free(got);
            }
            tg_buf_free(&in);
        }
    }
}
