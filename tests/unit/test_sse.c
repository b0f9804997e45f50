/* SSE framing: the parser gives the same events for any chunking. */
#include "test.h"

#include "core/sse.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_buf_t log; /* "event|data;" per event */
    int count;
} collect_t;

static int collect(void *arg, const char *event, const char *data, size_t len)
{
    collect_t *c = arg;
    tg_buf_puts(&c->log, event);
    tg_buf_puts(&c->log, "|");
    tg_buf_append(&c->log, data, len);
    tg_buf_puts(&c->log, ";");
    c->count++;
    return 0;
}

/* Parse `in` split into pieces of `step` bytes. */
static char *parse_in_steps(const char *in, size_t step, int *count)
{
    tg_sse_parser_t p = {0};
    collect_t c = {0};
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        CHECK(tg_sse_feed(&p, in + i, k, collect, &c) == 0);
    }
    tg_sse_free(&p);
    *count = c.count;
    if (!c.log.data)
        tg_buf_puts(&c.log, "");
    return c.log.data;
}

static const char *stream = ": keep-alive comment\n"
                            "data: {\"a\":1}\n\n"
                            "event: message_start\r\n"
                            "data: {\"type\":\"message_start\"}\r\n\r\n"
                            "data:no-space\r\r"
                            "data: line1\n"
                            "data: line2\n\n"
                            "event: ping\n\n" /* no data: dropped */
                            "id: 7\nretry: 10\ndata: [DONE]\n\n"
                            "data: incomplete";

static const char *expected =
    "message|{\"a\":1};message_start|{\"type\":\"message_start\"};message|no-space;"
    "message|line1\nline2;message|[DONE];";

TEST(sse_parser_any_chunking)
{
    for (size_t step = 1; step <= strlen(stream); step++) {
        int count;
        char *got = parse_in_steps(stream, step, &count);
        if (strcmp(got, expected) != 0) {
            tg_test_fail(__FILE__, __LINE__, "step %zu: got %s", step, got);
            free(got);
            return;
        }
        CHECK_INT(count, 5);
        free(got);
    }
}

static int stop_at_second(void *arg, const char *event, const char *data, size_t len)
{
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

TEST(sse_parser_callback_stops_and_limit)
{
    tg_sse_parser_t p = {0};
    int n = 0;
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    CHECK_INT(tg_sse_feed(&p, s, strlen(s), stop_at_second, &n), 42);
    tg_sse_free(&p);

    tg_sse_parser_t q = {.max_event = 16};
    int m = 0;
    const char *big = "data: 0123456789abcdefghijklmnop\n\n";
    CHECK_INT(tg_sse_feed(&q, big, strlen(big), stop_at_second, &m), -1);
    CHECK_INT(m, 0);
    tg_sse_free(&q);
}

TEST(sse_writer_roundtrip)
{
    tg_buf_t out = {0};
    tg_sse_write(&out, "content_block_delta", "{\"x\":1}", 7);
    tg_sse_write(&out, NULL, "a\nb\n", 4);
    CHECK_STR(out.data,
              "event: content_block_delta\ndata: {\"x\":1}\n\ndata: a\ndata: b\ndata: \n\n");
    int count;
    char *got = parse_in_steps(out.data, 3, &count);
    CHECK_STR(got, "content_block_delta|{\"x\":1};message|a\nb\n;");
    free(got);
    tg_buf_free(&out);
}

/* The callback's data ends in a NUL at len (sse.h), whether the event's line
 * came whole in one buffer or in pieces, and a NUL inside the data stays. */
static int check_terminated(void *arg, const char *event, const char *data, size_t len)
{
    int *bad = arg;
    if (data[len] != 0 || len != 6 || memcmp(data, "a\0b\ncd", 6) != 0)
        ++*bad;
    return 0;
}

TEST(sse_event_data_terminated)
{
    static const char s[] = "data: a\0b\ndata: cd\n\n";
    size_t n = sizeof s - 1;
    for (size_t step = 1; step <= n; step++) {
        tg_sse_parser_t p = {0};
        int bad = 0;
        for (size_t i = 0; i < n; i += step)
            CHECK(tg_sse_feed(&p, s + i, n - i < step ? n - i : step, check_terminated, &bad) == 0);
        CHECK_INT(bad, 0);
        tg_sse_free(&p);
    }
}

/* ---- the pass-through ---- */

typedef struct {
    tg_sse_pass_t *ps;
    tg_sse_parser_t *p;
    tg_buf_t out;
    int outs;
    const char *fed; /* the buffer being fed, to see that bytes pass uncopied */
    int from_fed;
} pass_t;

/* Cut the events whose data holds "usage" (the usage chunk a gateway hides). */
static int cut_usage(void *arg, const char *event, const char *data, size_t len)
{
    pass_t *t = arg;
    if (strstr(data, "\"usage\""))
        tg_sse_pass_cut(t->ps, t->p);
    return 0;
}

static int pass_out(void *arg, const char *data, size_t len)
{
    pass_t *t = arg;
    tg_buf_append(&t->out, data, len);
    t->outs++;
    if (t->fed && data == t->fed)
        t->from_fed++;
    return 0;
}

static const char *mixed = ": hi\n"
                           "data: {\"a\":1}\n\n"
                           "data: {\"usage\":{\"x\":1}}\r\n\r\n"
                           "event: e\r\ndata: b\r\n\r\n"
                           "data: {\"usage\":2}\r\r"
                           "data: c\n"
                           "data: d\n\n"
                           ": ping\n\n"
                           "data: {\"choices\":[],\r\n"
                           "data: \"usage\":3}\r\n\r\n"
                           "data: [DONE]\r\n\r\n"
                           "data: rest";
/* the same, less the three usage events, their blank lines and line ends
 * included; "data: rest", not yet whole, comes with the end */
static const char *mixed_passed = ": hi\n"
                                  "data: {\"a\":1}\n\n"
                                  "event: e\r\ndata: b\r\n\r\n"
                                  "data: c\n"
                                  "data: d\n\n"
                                  ": ping\n\n"
                                  "data: [DONE]\r\n\r\n";

/* Feed s in the pieces that end at cuts[0..n) (and at its end). */
static char *pass_pieces(const char *s, const size_t *cuts, size_t n, char **at_end)
{
    tg_sse_parser_t p = {0};
    tg_sse_pass_t ps = {0};
    pass_t t = {.ps = &ps, .p = &p};
    size_t len = strlen(s), from = 0;
    for (size_t k = 0; k <= n; k++) {
        size_t to = k < n ? cuts[k] : len;
        CHECK(tg_sse_pass_feed(&ps, &p, s + from, to - from, cut_usage, pass_out, &t) == 0);
        from = to;
    }
    tg_buf_puts(&t.out, "");
    char *passed = tg_xstrdup(t.out.data);
    tg_sse_pass_end(&ps, pass_out, &t);
    *at_end = tg_xstrdup(t.out.data + strlen(passed));
    tg_sse_pass_free(&ps);
    tg_sse_free(&p);
    tg_buf_free(&t.out);
    return passed;
}

/* Every split of the stream into two and three pieces (a usage chunk split
 * anywhere, a CRLF split between its CR and LF) passes the same bytes. */
TEST(sse_pass_any_split)
{
    size_t n = strlen(mixed);
    int bad = 0;
    for (size_t i = 0; i <= n && bad < 3; i++) {
        for (size_t j = i; j <= n && bad < 3; j++) {
            size_t cuts[2] = {i, j};
            char *end, *got = pass_pieces(mixed, cuts, 2, &end);
            if (strcmp(got, mixed_passed) != 0 || strcmp(end, "data: rest") != 0) {
                tg_test_fail(__FILE__, __LINE__, "split at %zu, %zu: passed \"%s\", then \"%s\"", i,
                             j, got, end);
                bad++;
            }
            free(got);
            free(end);
        }
    }
}

/* A usage event cut at the very end, ended by CR: its LF, in the next
 * read or never, is not passed either. */
TEST(sse_pass_cut_cr_then_lf)
{
    const char *s = "data: a\r\n\r\ndata: {\"usage\":1}\r\r\ndata: b\r\n\r\n";
    size_t n = strlen(s);
    for (size_t i = 0; i <= n; i++) {
        char *end, *got = pass_pieces(s, &i, 1, &end);
        CHECK_STR(got, "data: a\r\n\r\ndata: b\r\n\r\n");
        CHECK_STR(end, "");
        free(got);
        free(end);
    }
    const char *t = "data: a\n\ndata: {\"usage\":1}\r\r";
    size_t k = strlen(t);
    char *end, *got = pass_pieces(t, &k, 1, &end);
    CHECK_STR(got, "data: a\n\n");
    CHECK_STR(end, "");
    free(got);
    free(end);
}

/* Reads that end on event boundaries pass straight from the fed buffer,
 * in one out call each; a read that ends inside an event holds its start. */
TEST(sse_pass_uncopied)
{
    tg_sse_parser_t p = {0};
    tg_sse_pass_t ps = {0};
    pass_t t = {.ps = &ps, .p = &p};
    const char *reads[] = {"data: 1\n\ndata: 2\n\n", "data: {\"usage\":{}}\n\ndata: 3\n\n",
                           "data: [DONE]\n\n"};
    for (int i = 0; i < 3; i++) {
        t.fed = reads[i];
        CHECK_INT(tg_sse_pass_feed(&ps, &p, reads[i], strlen(reads[i]), cut_usage, pass_out, &t),
                  0);
    }
    CHECK_STR(t.out.data, "data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\n");
    CHECK_INT(t.outs, 3);
    CHECK_INT(t.from_fed, 2); /* the second read's starts after the cut event */
    CHECK_INT(ps.held.len, 0);
    t.fed = NULL;
    CHECK_INT(tg_sse_pass_feed(&ps, &p, "data: 4\n\nda", 11, cut_usage, pass_out, &t), 0);
    CHECK_INT(ps.held.len, 2);
    CHECK_INT(tg_sse_pass_feed(&ps, &p, "ta: 5\n\n", 7, cut_usage, pass_out, &t), 0);
    CHECK_STR(t.out.data,
              "data: 1\n\ndata: 2\n\ndata: 3\n\ndata: [DONE]\n\ndata: 4\n\ndata: 5\n\n");
    tg_sse_pass_free(&ps);
    tg_sse_free(&p);
    tg_buf_free(&t.out);
}

/* What an event holds back is bounded by the event limit, comments and
 * fields included: a stream of comments without a blank line is refused. */
TEST(sse_pass_held_bounded)
{
    tg_sse_parser_t p = {.max_event = 64};
    tg_sse_pass_t ps = {0};
    pass_t t = {.ps = &ps, .p = &p};
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = tg_sse_pass_feed(&ps, &p, ": keep-alive\n", 13, cut_usage, pass_out, &t);
    CHECK_INT(rc, -1);
    CHECK(ps.held.len <= 64);
    CHECK(t.out.len == 0);
    tg_sse_pass_free(&ps);
    tg_sse_free(&p);
    tg_buf_free(&t.out);
}

/* A lending parser: an event of one data line whole in the bytes fed, its
 * blank line an LF, comes as it lies there; every other event as before. */
typedef struct {
    const char *fed, *fed_end;
    int lent, copied;
    collect_t c;
} lend_t;

static int note_lent(void *arg, const char *event, const char *data, size_t len)
{
    lend_t *l = arg;
    if (data >= l->fed && data + len <= l->fed_end)
        l->lent++;
    else
        l->copied++;
    return collect(&l->c, event, data, len);
}

TEST(sse_lends_whole_one_line_events)
{
    static const char in[] = "event: e\ndata: abc\n\n" /* lent, named */
                             "data:x\n\n"              /* lent, no space */
                             "data: a\ndata: b\n\n"    /* two lines: gathered */
                             ": c\ndata: y\r\n\n"      /* CRLF, then an LF blank line: lent */
                             "data: z\r\n\r\n"         /* a CRLF blank line: gathered */
                             "data: cut";              /* no end yet */
    tg_sse_parser_t p = {.lend = true};
    lend_t l = {.fed = in, .fed_end = in + sizeof in - 1};
    CHECK(tg_sse_feed(&p, in, sizeof in - 1, note_lent, &l) == 0);
    CHECK_STR(l.c.log.data, "e|abc;message|x;message|a\nb;message|y;message|z;");
    CHECK_INT(l.lent, 3);
    CHECK_INT(l.copied, 2);
    /* the rest, in another buffer: a line begun before is gathered */
    static const char more[] = "\n\ndata: 1\n\n";
    l.fed = more;
    l.fed_end = more + sizeof more - 1;
    CHECK(tg_sse_feed(&p, more, sizeof more - 1, note_lent, &l) == 0);
    CHECK_STR(l.c.log.data,
              "e|abc;message|x;message|a\nb;message|y;message|z;message|cut;message|1;");
    CHECK_INT(l.lent, 4);
    CHECK_INT(l.copied, 3);
    tg_sse_free(&p);
    tg_buf_free(&l.c.log);
}
