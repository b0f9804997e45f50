/* Unit tests for src/server/request.c: reading client requests. */
#include "server/request.h"
#include "test.h"

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

TEST(request_pipelined_requests_in_order_with_headers_and_bodies)
{
    CHECK_READS("POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n"
                "Content-Length: 3\r\n\r\nabc"
                "GET /health HTTP/1.1\r\nhelicone-user-id:  u 1 \r\n\r\n",
                100,
                "POST /v1/chat/completions?x=1 1.1 ka [Host=a] [X-Empty=] [Content-Length=3]"
                " body(3)=abc;GET /health 1.1 ka [helicone-user-id=u 1] body(0)=;");
}

TEST(request_chunked_body_and_expect_continue)
{
    CHECK_READS("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
                "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                100,
                "continue;POST /p 1.1 ka [Transfer-Encoding=chunked] [Expect=100-continue]"
                " body(5)=abcde;");
    /* no body: nothing to continue for */
    CHECK_READS("GET /p HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", 100,
                "GET /p 1.1 ka [Expect=100-continue] body(0)=;");
    CHECK_READS("POST /p HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", 100,
                "fail 417;");
}

TEST(request_keep_alive_follows_version_and_connection)
{
    CHECK_READS("GET / HTTP/1.0\r\n\r\n", 10, "GET / 1.0 body(0)=;");
    CHECK_READS("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10,
                "GET / 1.0 ka [Connection=keep-alive] body(0)=;");
    CHECK_READS("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 10,
                "GET / 1.1 [Connection=close] body(0)=;");
    CHECK_READS("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 10,
                "GET / 1.1 [Connection=Upgrade] [Upgrade=h2c] body(0)=;");
}

TEST(request_limits_and_malformed_input)
{
    /* declared too long: refused before any body byte */
    CHECK_READS("POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10, "fail 413;");
    /* exactly the limit passes; a chunked body over it fails */
    CHECK_READS("POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 10,
                "POST /p 1.1 ka [Content-Length=10] body(10)=0123456789;");
    CHECK_READS("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n"
                "5\r\nghijk\r\n0\r\n\r\n",
                10, "fail 413;");
    CHECK_READS("PROPFIND /p HTTP/1.1\r\n\r\n", 10, "fail 405;");
    CHECK_READS("CONNECT a:443 HTTP/1.1\r\n\r\n", 10, "fail 405;");
    CHECK_READS("hello\r\n\r\n", 10, "fail 400;");
    CHECK_READS("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 10, "fail 400;");
    CHECK_READS("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 10,
                "fail 400;");

    /* more than 64 KiB of headers */
    tg_buf_t big = {0};
    tg_buf_puts(&big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 700; i++)
        tg_buf_printf(&big, "X-H%d: %090d\r\n", i, i);
    tg_buf_puts(&big, "\r\n");
    char *got = read_all(big.data, 0, 10);
    CHECK_STR(got, "fail 431;");
    free(got);
    got = read_all(big.data, 1000, 10);
    CHECK_STR(got, "fail 431;");
    free(got);
    tg_buf_free(&big);
}

TEST(request_nothing_is_read_past_the_end_of_a_request)
{
    const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    tg_reqparse_t rp;
    tg_reqparse_init(&rp, 10);
    size_t n = tg_reqparse_feed(&rp, two, strlen(two));
    CHECK_INT(n, strlen("GET /a HTTP/1.1\r\n\r\n"));
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

/* server.c starts a request's body deadline when its head is read: the
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
