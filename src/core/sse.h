/*
 * sse.h — Server-Sent Events: an incremental parser for provider streams
 * (any chunking of the bytes gives the same events) and a writer that frames
 * one event. Pure; a parser belongs to one stream, on one thread.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>

/** Called per complete event; `event` is "message" when none was named;
 *  `data` is NUL-terminated at `len` (it may hold a NUL before).
 *  Return non-zero to stop parsing (tg_sse_feed returns that value). */
typedef int (*tg_sse_event_fn)(void *arg, const char *event, const char *data, size_t len);

typedef struct {
    tg_buf_t line;  /* the current, incomplete line */
    tg_buf_t data;  /* data lines of the current event, joined by '\n' */
    tg_buf_t event; /* the current event's name */
    bool has_data;
    bool after_cr;    /* last byte was '\r': a following '\n' belongs to it */
    size_t max_event; /* bytes; 0 = 8 MiB */
} tg_sse_parser_t;

/** Feed bytes. Returns 0, a callback's non-zero value, or -1 when an event
 *  grows past max_event (the stream is then unusable). */
int tg_sse_feed(tg_sse_parser_t *p, const char *buf, size_t len, tg_sse_event_fn fn, void *arg);

void tg_sse_free(tg_sse_parser_t *p);

/** How many of the bytes p[0..n), read from the start of an event, are
 *  whole events: up to the last line terminator that ends an empty line
 *  (LF, CRLF or CR twice); 0 if none. What follows is the start of an event
 *  still to come. */
size_t tg_sse_whole(const char *p, size_t n);

/** Append one event: "event: NAME\n" (if name is non-NULL), one "data:" line
 *  per line of data, then a blank line. */
void tg_sse_write(tg_buf_t *out, const char *event, const char *data, size_t len);

#endif
