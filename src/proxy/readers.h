/*
 * readers.h — the API's reader threads: /api/v1 queries (a list of records,
 * stats over a month, a series) take tens of milliseconds at a million
 * records, which a worker's event loop must not wait for. A worker hands
 * the query to this small pool, whose threads read through the store's
 * read-only connections (one per thread at a time, sqlite_read.c's pool);
 * the answer comes back to the worker's loop, which replies and so
 * resumes the exchange.
 *
 * Threads: tg_readers_new and _free on the gateway's owner (main);
 * tg_readers_submit and _forget on a worker thread; `fn` on a reader
 * thread; `done` on the worker thread that submitted, from its loop.
 */
#ifndef TG_READERS_H
#define TG_READERS_H

#include "core/util.h"

struct event_base;

typedef struct tg_readers tg_readers_t;

/** Reader thread: the answer's body into out; returns the HTTP status. */
typedef int (*tg_readers_fn)(void *arg, tg_buf_t *out);
/** Worker thread: the answer. `out` is the job's: done may take its data
 *  (it is freed after done returns). Then free_arg(arg) runs. */
typedef void (*tg_readers_done)(void *arg, int status, tg_buf_t *out);

/** A pool of n threads (at least 1). Aborts when a thread cannot start. */
tg_readers_t *tg_readers_new(int n);

/** Stop and join the threads. Every worker has called tg_readers_forget
 *  (or submitted nothing). NULL is fine. */
void tg_readers_free(tg_readers_t *r);

/** Run fn(arg) on a reader thread, then done(arg, ...) and free_arg(arg)
 *  on base's loop. */
void tg_readers_submit(tg_readers_t *r, struct event_base *base, tg_readers_fn fn,
                       tg_readers_done done, void (*free_arg)(void *), void *arg);

/** The worker's loop is about to go: its queued jobs are dropped, its
 *  running ones waited for; none of their `done` runs, each free_arg does.
 *  Worker thread. NULL r is fine. */
void tg_readers_forget(tg_readers_t *r, struct event_base *base);

/** Jobs submitted and not yet answered or forgotten (tests). */
long tg_readers_pending(tg_readers_t *r);

#endif
