/*
 * libFuzzer target: the SSE parser (src/core/sse.c). Properties checked:
 * any chunking of the bytes gives the same events as one feed; an event's
 * data is NUL-terminated at its length; every event
 * written back with tg_sse_write parses to itself; a small max_event is
 * honoured without harm. The pass-through, cutting the events whose data
 * starts with 'x', passes the same bytes for any chunking, and what it
 * passes parses to the events of the whole input less the cut ones (an
 * event never ended is passed at the end as it came). A parser that lends
 * an event's data where it lies (tg_sse_parser_t.lend) gives the same
 * events, and the pass-through the same bytes. See run.sh.
 */
#include "core/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_buf_t log; /* "event\0data\0" per event */
    int count;
    bool lent; /* the parser lends data (not NUL-terminated) */
} log_t;

static int record(void *arg, const char *event, const char *data, size_t len)
{
    log_t *l = arg;
    if (!l->lent && data[len] != 0) /* the callback's data is NUL-terminated at len (sse.h) */
        abort();
    if (!*event) /* a name starting with NUL: the writer takes C strings */
        event = "message";
    tg_buf_append(&l->log, event, strlen(event) + 1);
    tg_buf_append(&l->log, data, len);
    tg_buf_append(&l->log, "", 1);
    l->count++;
    return 0;
}

static int parse(const uint8_t *d, size_t n, size_t step, size_t max, log_t *l)
{
    tg_sse_parser_t p = {.max_event = max, .lend = l->lent};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = tg_sse_feed(&p, (const char *)d + i, n - i < step ? n - i : step, record, l);
    tg_sse_free(&p);
    return rc;
}

/* Each event of the whole-input parse, written and parsed again. */
static int roundtrip(void *arg, const char *event, const char *data, size_t len)
{
    (void)arg;
    tg_buf_t w = {0};
    tg_sse_write(&w, event, data, len);
    log_t a = {0}, b = {0};
    record(&a, event, data, len);
    tg_sse_parser_t p = {0};
    if (tg_sse_feed(&p, w.data, w.len, record, &b) != 0 || b.count != 1 || a.log.len != b.log.len ||
        memcmp(a.log.data, b.log.data, a.log.len) != 0)
        abort();
    tg_sse_free(&p);
    tg_buf_free(&w);
    tg_buf_free(&a.log);
    tg_buf_free(&b.log);
    return 0;
}

/* ---- the pass-through ---- */

typedef struct {
    tg_sse_pass_t ps;
    tg_sse_parser_t p;
    tg_buf_t out;
} pass_t;

static int cut_x(void *arg, const char *event, const char *data, size_t len)
{
    pass_t *t = arg;
    if (len && data[0] == 'x')
        tg_sse_pass_cut(&t->ps, &t->p);
    return 0;
}

static int keep_out(void *arg, const char *data, size_t len)
{
    tg_buf_append(&((pass_t *)arg)->out, data, len);
    return 0;
}

/* The bytes passed (whole events, then the rest at the end); -1 when the
 * stream was refused. */
static int pass(const uint8_t *d, size_t n, size_t step, bool lend, tg_buf_t *out)
{
    pass_t t = {.p.lend = lend};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = tg_sse_pass_feed(&t.ps, &t.p, (const char *)d + i, n - i < step ? n - i : step, cut_x,
                              keep_out, &t);
    if (rc == 0)
        tg_sse_pass_end(&t.ps, keep_out, &t);
    tg_sse_pass_free(&t.ps);
    tg_sse_free(&t.p);
    *out = t.out;
    return rc;
}

/* The events not cut ("event\0data\0" each), as record() logs them. */
static int record_uncut(void *arg, const char *event, const char *data, size_t len)
{
    return len && data[0] == 'x' ? 0 : record(arg, event, data, len);
}

static void check_pass(const uint8_t *d, size_t n, size_t step)
{
    tg_buf_t a = {0}, b = {0};
    /* data lent or not, whole or in pieces: the same bytes pass */
    int ra = pass(d, n, n ? n : 1, false, &a), rb = pass(d, n, step, true, &b);
    if (ra != rb || (ra == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))))
        abort();
    if (ra == 0) { /* what passed parses to the events not cut */
        log_t want = {0}, got = {0};
        tg_sse_parser_t p = {0}, q = {0};
        tg_sse_feed(&p, (const char *)d, n, record_uncut, &want);
        if (a.len) /* an unended last event passes whole and uncut, and parses to none */
            tg_sse_feed(&q, a.data, a.len, record, &got);
        if (want.count != got.count || want.log.len != got.log.len ||
            (want.log.len && memcmp(want.log.data, got.log.data, want.log.len) != 0))
            abort();
        tg_sse_free(&p);
        tg_sse_free(&q);
        tg_buf_free(&want.log);
        tg_buf_free(&got.log);
    }
    tg_buf_free(&a);
    tg_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 16 + 1;
    data++, size--;
    log_t whole = {0}, pieces = {0}, small = {0}, lent = {.lent = true};
    int r1 = parse(data, size, size ? size : 1, 0, &whole);
    int r2 = parse(data, size, step, 0, &pieces);
    int r3 = parse(data, size, step, 0, &lent); /* lent data: the same events */
    if (r1 != 0 || r2 != 0 || r3 != 0 || whole.count != pieces.count ||
        whole.log.len != pieces.log.len ||
        (whole.log.len && memcmp(whole.log.data, pieces.log.data, whole.log.len) != 0) ||
        whole.count != lent.count || whole.log.len != lent.log.len ||
        (whole.log.len && memcmp(whole.log.data, lent.log.data, whole.log.len) != 0))
        abort();
    parse(data, size, step, 64, &small);
    tg_sse_parser_t p = {0};
    tg_sse_feed(&p, (const char *)data, size, roundtrip, NULL);
    tg_sse_free(&p);
    check_pass(data, size, step);
    tg_buf_free(&whole.log);
    tg_buf_free(&pieces.log);
    tg_buf_free(&small.log);
    tg_buf_free(&lent.log);
    return 0;
}
