/*
 * filters.c — the provider's answer on its way to the client, through a
 * short chain of filters (as nginx's body filters), each owning its state in
 * tg_filters_t and handing its output to the next:
 *
 *   events        an event stream cut into whole events (tg_sse_feed), and
 *     translate   another dialect's events become the client's, or
 *     hide usage  a native stream's events read for usage and their end and
 *                 passed on as they came (tg_sse_pass_feed), less the usage
 *                 chunk we asked for when the client did not
 *   copy to log   what the client is sent, for the record (bounded)
 *   copy to cache what the client is sent, for the cache (bounded)
 *   client        tg_http_stream_write; its "output full" pauses the relay
 *
 * Raw pass-through and Gemini's streamed JSON array skip the event filters.
 * An answer that is not streamed is buffered whole (bounded) and made the
 * client's at its end (tg_filters_end): translated, its usage read.
 *
 * Thread: the worker thread of the exchange (relay callbacks).
 */
#include "providers/provider.h"
#include "proxy/exchange.h"

#include <string.h>

/* Most of a streamed error answer (raw pass-through) kept for its message. */
#define MAX_ERROR_BODY (64 * 1024)
/* Largest streamed answer kept for the cache. */
#define MAX_CACHED_STREAM (8 * 1024 * 1024)

/* ---- the chain's tail: log → cache → client ---- */

static int to_client(tg_exchange_t *x, const char *data, size_t len)
{
    return tg_http_stream_write(x->h, data, len) ? 1 : 0;
}

static int copy_to_cache(tg_exchange_t *x, const char *data, size_t len)
{
    tg_filters_t *f = &x->att.f;
    if ((x->flight || x->cache_store_after) && !f->stream_copy_full) {
        if (f->stream_copy.len + len > MAX_CACHED_STREAM)
            f->stream_copy_full = true;
        else
            tg_buf_append(&f->stream_copy, data, len);
    }
    return to_client(x, data, len);
}

void tg_filters_copy_to_log(tg_exchange_t *x, const char *data, size_t len)
{
    if (!tg_exchange_logs_bodies(x) || x->omit_response)
        return;
    int64_t room = x->cfg->max_body_bytes - (int64_t)x->log_body.len;
    if (room > 0)
        tg_buf_append(&x->log_body, data, (size_t)room < len ? (size_t)room : len);
}

static int copy_to_log(tg_exchange_t *x, const char *data, size_t len)
{
    tg_filters_copy_to_log(x, data, len);
    return copy_to_cache(x, data, len);
}

/* ---- the event filters ---- */

/* The dialect the provider answers in when the call is native (the mock
 * answers in OpenAI's): it reads the usage of its answers and events. */
static const tg_dialect_t *native_dialect(const tg_exchange_t *x)
{
    if (x->wire == TG_WIRE_RESPONSES) /* OpenAI's other dialect: usage in input/output_tokens */
        return &tg_dialect_responses;
    return tg_provider_rec_of(x->target.provider)->dialect;
}

/* True when the member's value is an empty array (or the member is absent). */
static bool no_choices(const char *doc, size_t len)
{
    size_t a, b;
    if (!tg_json_member(doc, len, "choices", &a, &b))
        return true;
    if (doc[a] != '[')
        return false;
    for (size_t i = a + 1; i < b; i++)
        if (doc[i] != ' ' && doc[i] != '\n' && doc[i] != '\t' && doc[i] != '\r')
            return doc[i] == ']';
    return false;
}

/* Which of the keys "usage" (with an object for its value) and "error" an
 * event's JSON spells anywhere, as raw bytes with their quotes (a key
 * spelled with escapes is no key to tg_json_member either): one pass over
 * the event for both, 32 bytes a step, looking for a quote followed by 'u'
 * or 'e'; the few places found are then compared whole. This runs for every
 * event of an OpenAI or Gemini stream, and a stream with include_usage
 * carries "usage":null in every chunk but the last: only that one is read. */
enum { KEY_USAGE = 1, KEY_ERROR = 2 };

typedef char v16_t __attribute__((vector_size(16)));

static int key_at(const char *p, const char *end)
{
    if (end - p < 7)
        return 0;
    if (!memcmp(p, "\"error\"", 7))
        return KEY_ERROR;
    if (memcmp(p, "\"usage\"", 7))
        return 0;
    return tg_json_object_follows(p + 7, (size_t)(end - p - 7)) ? KEY_USAGE : 0;
}

/* Bytes of m set where a quote is followed by 'u' or 'e' in p[0..17): the
 * two letters differ in one bit (0x75, 0x65), so one compare finds both. */
static v16_t quote_u_or_e(const char *p)
{
    v16_t a, b;
    memcpy(&a, p, 16);
    memcpy(&b, p + 1, 16);
    return (a == '"') & ((b | 0x10) == 'u');
}

/* One bit per byte of a 0/-1 byte mask word, in its lowest bit; the byte
 * the lowest set bit stands for. */
#define BYTE_BITS 0x0101010101010101ull
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FIRST_BYTE(b) (7 - __builtin_ctzll(b) / 8)
#else
#define FIRST_BYTE(b) (__builtin_ctzll(b) / 8)
#endif

/* One step of 32 bytes, scan[0..33): w flags the places where a quote is
 * followed by 'u' or 'e'. False when there is none (nearly every step). */
static inline bool step_flags(const char *scan, uint64_t w[4])
{
    v16_t m[2] = {quote_u_or_e(scan), quote_u_or_e(scan + 16)};
    memcpy(w, m, sizeof m);
    return (w[0] | w[1] | w[2] | w[3]) != 0;
}

/* The places a step flagged from its byte `from` on, compared whole
 * against the document's own bytes: the step began at `at`. */
static int flagged_keys(const uint64_t w[4], size_t from, const char *at, const char *end)
{
    int keys = 0;
    for (size_t i = 0; i < 4; i++)
        for (uint64_t b = w[i] & BYTE_BITS; b; b &= b - 1) {
            size_t k = i * 8 + (size_t)FIRST_BYTE(b);
            if (k >= from)
                keys |= key_at(at + k, end);
        }
    return keys;
}

static int keys_in(const char *doc, size_t len)
{
    const char *p = doc, *end = doc + len;
    uint64_t w[4];
    int keys = 0;
    if (len <= 32) { /* one step over a copy padded with zeros (no quote, no 'u') */
        char pad[33] = {0};
        memcpy(pad, doc, len);
        return step_flags(pad, w) ? flagged_keys(w, 0, doc, end) : 0;
    }
    for (; end - p > 32; p += 32) /* p[32] is read too: the byte after a quote */
        if (step_flags(p, w))
            keys |= flagged_keys(w, 0, p, end);
    if (p < end && step_flags(end - 33, w)) /* the last bytes: the last 33, from p on */
        keys |= flagged_keys(w, (size_t)(p - (end - 33)), end - 33, end);
    return keys;
}

/* True when the JSON document has a top-level "error" member; `keys` are
 * keys_in's. */
static bool has_error_member(const char *doc, size_t len, int keys)
{
    size_t a, b;
    return (keys & KEY_ERROR) && tg_json_member(doc, len, "error", &a, &b);
}

/* What one event of a native stream says about the stream's end: the
 * dialect's terminator (OpenAI's `[DONE]`, or a Responses stream's
 * response.completed / .incomplete / .failed; Anthropic's message_stop;
 * Gemini, which has none, a finishReason) or the provider's own error event,
 * whose message the record keeps. The client gets the events as they are. */
static void note_native_event(tg_exchange_t *x, const char *event, const char *data, size_t len,
                              int keys)
{
    tg_filters_t *f = &x->att.f;
    if (f->stream_over)
        return;
    bool err;
    if (x->wire == TG_WIRE_ANTHROPIC) {
        f->stream_over = !strcmp(event, "message_stop");
        err = !strcmp(event, "error");
    } else if (x->wire == TG_WIRE_GEMINI) {
        f->stream_over = memmem(data, len, "\"finishReason\"", 14) &&
                         !memmem(data, len, "FINISH_REASON_UNSPECIFIED", 25);
        err = has_error_member(data, len, keys);
    } else if (x->wire == TG_WIRE_RESPONSES) {
        f->stream_over =
            !strcmp(event, "response.completed") || !strcmp(event, "response.incomplete");
        err = !strcmp(event, "error") || !strcmp(event, "response.failed");
        long seq = tg_json_member_long(data, len, "sequence_number");
        if (seq >= f->next_seq) /* a cut stream's response.failed follows on */
            f->next_seq = seq + 1;
    } else {
        f->stream_over = len == 6 && !memcmp(data, "[DONE]", 6);
        err = has_error_member(data, len, keys);
    }
    if (err) {
        f->stream_over = true;
        tg_exchange_note_provider_error(x, data, len, "the provider reported an error mid-stream");
    }
}

/* Native: its usage is read; in OpenAI's dialect the usage chunk we asked
 * for (no choices, only usage) is cut out of the stream when the client did
 * not ask for it. Every other event passes as it came (events). */
static void native_event(tg_exchange_t *x, const char *event, const char *data, size_t len)
{
    tg_filters_t *f = &x->att.f;
    bool openai = x->wire == TG_WIRE_OPENAI;
    int keys = openai || x->wire == TG_WIRE_GEMINI ? keys_in(data, len) : 0;
    note_native_event(x, event, data, len, keys);
    const tg_dialect_t *d = native_dialect(x);
    if (!openai) { /* read usage, pass as is */
        d->event_usage(data, len, &x->usage);
        return;
    }
    /* the chunk we asked for: usage, and no choices. Without a "usage"
     * object (keys_in) the reader could only say false. */
    if ((keys & KEY_USAGE) && d->event_usage(data, len, &x->usage) && f->hide_usage &&
        no_choices(data, len))
        tg_sse_pass_cut(&f->sse_pass, &f->sse_in);
}

int tg_filters_event(void *arg, const char *event, const char *data, size_t len)
{
    tg_exchange_t *x = arg;
    tg_filters_t *f = &x->att.f;
    tg_exchange_span_ids(x, data, len); /* the provider's, from its first event */
    if (f->ts) { /* translate: another dialect's events become the client's */
        tg_translate_stream_feed(f->ts, event, data, len, &f->sse_out);
        tg_translate_stream_usage(f->ts, &x->usage);
        return 0;
    }
    native_event(x, event, data, len);
    return 0;
}

static int pass_out(void *arg, const char *data, size_t len)
{
    return copy_to_log(arg, data, len);
}

/* A native event stream goes on as it came, but in whole events: the start
 * of an event waits for its end, so a stream cut in the middle of an event
 * ends with the error event rather than half an event the client cannot
 * read (when chunks end on event boundaries, as they do, nothing waits).
 * The wait is bounded by the SSE parser's event limit. A translated stream
 * goes out as its translator wrote it. */
static int events(tg_exchange_t *x, const char *data, size_t len)
{
    tg_filters_t *f = &x->att.f;
    if (!f->ts)
        return tg_sse_pass_feed(&f->sse_pass, &f->sse_in, data, len, tg_filters_event, pass_out, x);
    if (tg_sse_feed(&f->sse_in, data, len, tg_filters_event, x) < 0)
        return -1; /* an event over the parser's limit: not a sane stream */
    int r = copy_to_log(x, f->sse_out.data, f->sse_out.len);
    tg_buf_reset(&f->sse_out);
    return r;
}

/* A raw pass-through LLM call's events, read for usage only. */
static int raw_usage_event(void *arg, const char *event, const char *data, size_t len)
{
    tg_exchange_t *x = arg;
    (void)event;
    native_dialect(x)->event_usage(data, len, &x->usage);
    return 0;
}

/* A raw pass-through LLM call's answer (2xx), passing as it came, read for
 * its usage on the side: events one by one, a whole answer kept (bounded)
 * and read at its end. What cannot be read is charged its worst case
 * (tg_exchange_settle). */
static void raw_usage(tg_exchange_t *x, const char *data, size_t len)
{
    tg_attempt_t *a = &x->att;
    if (x->raw_usage_lost)
        return;
    if (a->sse) {
        if (tg_sse_feed(&a->f.sse_in, data, len, raw_usage_event, x) < 0)
            x->raw_usage_lost = true;
    } else if (a->resp.len + len <= TG_MAX_BUFFERED_RESPONSE) {
        tg_buf_append(&a->resp, data, len);
    } else {
        x->raw_usage_lost = true;
        tg_buf_free(&a->resp);
    }
}

/* ---- the chain's head ---- */

void tg_filters_start(tg_exchange_t *x, const char *content_type)
{
    tg_attempt_t *a = &x->att;
    int status = x->status;
    a->sse = content_type && tg_has_prefix_ci(content_type, "text/event-stream");
    /* Event streams, Gemini's streamed JSON array and raw pass-through go
     * out as they arrive; other answers are whole JSON documents and are
     * sent with a length. A translated error is a whole document too. */
    bool gemini_array = x->route == TG_ROUTE_GEMINI && x->in_stream && status / 100 == 2;
    if ((a->sse && (!a->tr || status / 100 == 2)) || x->route == TG_ROUTE_PASSTHROUGH ||
        gemini_array) {
        x->streaming = true;
        if (a->tr && a->sse) {
            tg_translate_opts_t o = {.id = x->id,
                                     .created = (long)(x->t0_wall_ms / 1000),
                                     .model = x->target.model,
                                     .include_usage = a->tr_include_usage,
                                     .prompt_estimate = a->tr_prompt_estimate};
            a->f.ts = tg_translate_stream_new(a->tr, &o);
        }
        /* a native stream's events are read where they lie (every reader
         * under tg_filters_event and raw_usage_event takes data and len);
         * a translator gets them NUL-terminated */
        a->f.sse_in.lend = !a->f.ts;
        tg_http_stream_start(x->h, status, NULL);
    }
}

int tg_filters_body(tg_exchange_t *x, const char *data, size_t len)
{
    tg_attempt_t *a = &x->att;
    if (x->streaming && a->sse && x->route != TG_ROUTE_PASSTHROUGH)
        return events(x, data, len);
    if (x->streaming) {
        if (x->route == TG_ROUTE_GEMINI) { /* the JSON array: kept for its usage */
            if (a->resp.len + len <= TG_MAX_BUFFERED_RESPONSE)
                tg_buf_append(&a->resp, data, len);
        } else if (x->status >= 400 && a->resp.len < MAX_ERROR_BODY) { /* for its message */
            tg_buf_append(&a->resp, data, len);
        } else if (x->raw_metered) {
            raw_usage(x, data, len);
        }
        return copy_to_log(x, data, len);
    }
    if (a->resp.len + len > TG_MAX_BUFFERED_RESPONSE) {
        a->too_large = true;
        return -1;
    }
    tg_buf_append(&a->resp, data, len);
    return 0;
}

/* A whole (not streamed) answer, made the client's: translated from the
 * provider's dialect (errors too), and its usage read. False when a 2xx
 * answer cannot be read. */
static bool client_form(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    bool ok2xx = x->status / 100 == 2;
    if (ok2xx)
        tg_exchange_span_ids(x, a->resp.data, a->resp.len); /* before any translation */
    if (a->tr) {
        tg_buf_t out = {0};
        if (ok2xx) {
            tg_translate_opts_t o = {
                .id = x->id, .created = (long)(x->t0_wall_ms / 1000), .model = x->target.model};
            if (x->route == TG_ROUTE_EMBEDDINGS) /* the provider counts none (translate.h) */
                x->usage.prompt_tokens = tg_embeddings_count_tokens(tg_exchange_in_root(x));
            if (tg_translate_response(a->tr, a->resp.data, a->resp.len, &o, &out, &x->usage) < 0) {
                tg_buf_free(&out);
                return false;
            }
        } else {
            tg_translate_error(x->wire, x->status, a->resp.data, a->resp.len, &out);
        }
        tg_buf_free(&a->resp);
        a->resp = out;
        return true;
    }
    if (ok2xx)
        native_dialect(x)->answer_usage(a->resp.data, a->resp.len, &x->usage);
    return true;
}

bool tg_filters_end(tg_exchange_t *x)
{
    tg_attempt_t *a = &x->att;
    tg_filters_t *f = &a->f;
    if (x->streaming && f->ts) {
        /* the provider's stream ended as it should: the client's closing events */
        tg_buf_reset(&f->sse_out);
        tg_translate_stream_finish(f->ts, &f->sse_out);
        tg_translate_stream_usage(f->ts, &x->usage);
        if (tg_translate_stream_error(f->ts))
            tg_exchange_set_error(x, tg_xstrdup(tg_translate_stream_error(f->ts)));
        copy_to_log(x, f->sse_out.data, f->sse_out.len);
    } else if (x->streaming && f->sse_pass.held.len) { /* a last line without its blank line */
        tg_sse_pass_end(&f->sse_pass, pass_out, x);
    } else if (x->raw_metered && !a->sse && x->status / 100 == 2 && !x->raw_usage_lost) {
        native_dialect(x)->answer_usage(a->resp.data, a->resp.len, &x->usage);
    } else if (x->streaming && x->route == TG_ROUTE_GEMINI && !a->sse) {
        /* Gemini's streamed JSON array, kept whole for its usage */
        native_dialect(x)->answer_usage(a->resp.data, a->resp.len, &x->usage);
    } else if (!x->streaming && x->route != TG_ROUTE_PASSTHROUGH) {
        return client_form(x);
    }
    return true;
}

/* Gemini's streamed JSON array ended as Gemini ends one: the array closed,
 * a finishReason given. */
static bool gemini_array_complete(const tg_buf_t *b)
{
    size_t n = b->len;
    while (n && (b->data[n - 1] == ' ' || b->data[n - 1] == '\n' || b->data[n - 1] == '\r' ||
                 b->data[n - 1] == '\t'))
        n--;
    return n && b->data[n - 1] == ']' && memmem(b->data, n, "\"finishReason\"", 14);
}

/* A stream cut on an event boundary (a proxy or the provider closing early)
 * looks clean to HTTP. Raw pass-through bodies are not read, so not judged;
 * nor are error answers. */
bool tg_filters_stream_complete(const tg_exchange_t *x)
{
    const tg_attempt_t *a = &x->att;
    if (!x->streaming || x->route == TG_ROUTE_PASSTHROUGH || x->status / 100 != 2)
        return true;
    if (a->f.ts)
        return tg_translate_stream_ended(a->f.ts);
    if (a->sse)
        return a->f.stream_over;
    return a->resp.len >= TG_MAX_BUFFERED_RESPONSE || gemini_array_complete(&a->resp);
}
