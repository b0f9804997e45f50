/*
 * sse.h — Server-Sent Events: an incremental parser for provider streams
 * (any chunking of the bytes gives the same events), a pass-through that
 * hands the stream's own bytes on in whole events less the events its
 * caller cuts out, and a writer that frames one event. Pure; a parser and a
 * pass-through belong to one stream, on one thread.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Called per complete event; `event` is "message" when none was named;
 *  `data` is NUL-terminated at `len` (it may hold a NUL before), unless the
 *  parser lends it (tg_sse_parser_t.lend). Return non-zero to stop parsing
 *  (tg_sse_feed returns that value). */
typedef int (*tg_sse_event_fn)(void *arg, const char *event, const char *data, size_t len);

typedef struct {
    tg_buf_t line;  /* the current, incomplete line */
    tg_buf_t data;  /* data lines of the current event, joined by '\n' */
    tg_buf_t event; /* the current event's name */
    bool has_data;
    bool after_cr;    /* last byte was '\r': a following '\n' belongs to it */
    size_t max_event; /* bytes; 0 = 8 MiB */
    /* An event of one data line that lies whole in the bytes fed, its blank
     * line (LF) after it, is handed to the callback as it lies there, not
     * copied: its data is then not NUL-terminated, and the callback reads
     * data[0..len) only. Most events of a stream are such. */
    bool lend;
    /* Stream offsets (bytes fed before): where the next byte fed goes; where
     * the event being gathered starts, just past the blank line (its
     * terminator whole: a CRLF's LF too) that ended the one before; and,
     * during a callback, just past the blank line that ends this event (a
     * CR's LF not yet fed is not counted). [event_at, event_end) are then
     * the event's own bytes, comments and other fields included. */
    uint64_t pos;
    uint64_t event_at;
    uint64_t event_end;
} tg_sse_parser_t;

/** Feed bytes. Returns 0, a callback's non-zero value, or -1 when an event
 *  grows past max_event (the stream is then unusable). */
int tg_sse_feed(tg_sse_parser_t *p, const char *buf, size_t len, tg_sse_event_fn fn, void *arg);

void tg_sse_free(tg_sse_parser_t *p);

/** Called with bytes to pass on; returns 0 or a value OR-ed into what
 *  tg_sse_pass_feed returns (e.g. "output full"). */
typedef int (*tg_sse_out_fn)(void *arg, const char *data, size_t len);

/** A stream passed on as it came, in whole events: the bytes of an event
 *  wait for its end (so a stream cut in the middle of one never sends half
 *  of it), and an event the callback cuts out (tg_sse_pass_cut) is not sent,
 *  its blank line included. Every other byte goes out unchanged, in order,
 *  usually straight from the fed buffer: one out call per feed. */
typedef struct {
    tg_buf_t held;   /* bytes fed, not yet passed on: the start of an event */
    uint64_t sent;   /* stream offset: every byte before it passed on or cut */
    uint64_t lf_at;  /* a cut event ended in CR at lf_at - 1: an LF here is its
                      * line end's, cut too (0: none) */
    const char *cur; /* during tg_sse_pass_feed: the buffer fed, from cur_at */
    size_t cur_len;
    uint64_t cur_at;
    tg_sse_out_fn out;
    void *out_arg;
    int out_rc;
} tg_sse_pass_t;

/** Feed bytes through p (its callback fn, arg as tg_sse_feed's) and pass
 *  the whole events on to out(arg, ...). Returns -1 as tg_sse_feed does,
 *  also when the bytes held for an event pass p's max_event; a callback's
 *  non-zero value; else the OR of out's values. */
int tg_sse_pass_feed(tg_sse_pass_t *ps, tg_sse_parser_t *p, const char *buf, size_t len,
                     tg_sse_event_fn fn, tg_sse_out_fn out, void *arg);

/** From inside the callback of tg_sse_pass_feed: cut the event it was
 *  called for (p's [event_at, event_end)) out of the stream passed on. */
void tg_sse_pass_cut(tg_sse_pass_t *ps, const tg_sse_parser_t *p);

/** The stream ended: pass on what is held (a last event without its blank
 *  line). Returns out's value, 0 when nothing was held. */
int tg_sse_pass_end(tg_sse_pass_t *ps, tg_sse_out_fn out, void *arg);

void tg_sse_pass_free(tg_sse_pass_t *ps);

/** Append one event: "event: NAME\n" (if name is non-NULL), one "data:" line
 *  per line of data, then a blank line. */
void tg_sse_write(tg_buf_t *out, const char *event, const char *data, size_t len);

#endif
