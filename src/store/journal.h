/*
 * journal.h — the store's crash journal, the parts inside the store
 * (writer.c) and the unit tests see. Workers use the calls in store.h
 * (tg_journal_open, _submit, _write, _close).
 *
 * Why: a record waits in memory (queue, batch) for up to batch_ms before
 * its transaction; a kill -9 lost those. Each worker now appends the
 * records of one loop turn to its own journal segment file with one
 * write(2), before any client byte of that turn is written (server.c's
 * before_write hook). A record is thus in the kernel before its client has
 * the last byte of its answer. No fsync: a power loss can still lose what
 * the kernel had not written.
 *
 * Files: "<dir>/<run>-w<worker>-<n>.tgj", 0600, dir 0700 (tg_store_open:
 * "<database>-journal.d"). A segment is a run of frames:
 *
 *     u32 magic "TGJ1" | u32 length | u32 CRC-32C(length, payload) | payload
 *
 * (little-endian), payload = the record's binary form (tg_record_pack: a
 * few copies; a JSON line cost ~40k instructions per record with bodies).
 * A torn last frame (crash mid-write) fails its length or CRC and ends the
 * segment's reading. The store's spool (writer.c) is a run of the same
 * frames.
 *
 * Trim: each record holds a reference on its segment until the writer has
 * settled it (committed, spooled or dropped), the worker holds one while it
 * appends. Sealing a full segment drops the worker's; whoever drops the last
 * reference unlinks the file. Nobody waits for anybody: the counts are
 * atomics. A segment whose records are all settled is truncated by its
 * worker before it appends again (when it has grown past 1/16 of a
 * segment), so an idle gateway keeps little.
 *
 * Start: the whole frames of segments left by a crash are copied as they
 * are into the spool (fsync'd; the spool holds the same frames) and the
 * segments removed; the writer replays the spool, skipping records already
 * stored (same id and created_at), so each record lands exactly once.
 *
 * Threads: the set (tg_jset_*) is made, recovered and freed on the main
 * thread; tg_jseg_release runs on whichever thread settles a record (the
 * writer, or a worker whose record went straight to the spool).
 */
#ifndef TG_JOURNAL_H
#define TG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "store/record.h"

typedef struct tg_jset tg_jset_t;
typedef struct tg_jseg tg_jseg_t;
struct tg_store;

#define TG_JOURNAL_HEADER 12

enum { TG_JOURNAL_OK = 0, TG_JOURNAL_TORN = 1, TG_JOURNAL_BAD = 2 };

/** CRC-32C (Castagnoli); crc 0 to start. SSE4.2 when the CPU has it. */
uint32_t tg_crc32c(uint32_t crc, const void *data, size_t len);

/** Append r's frame to out. */
void tg_journal_encode(const tg_record_t *r, tg_buf_t *out);

/** The frame at p (len bytes left): TG_JOURNAL_OK with its payload and the
 *  bytes it spans (*used); TG_JOURNAL_TORN when the bytes end inside it;
 *  TG_JOURNAL_BAD when it is not a frame (bad magic, length or CRC). */
int tg_journal_frame(const char *p, size_t len, size_t *used, const char **payload, size_t *plen);

/** Whether p[0..TG_JOURNAL_HEADER) starts a frame (magic, a length within
 *  bounds); *frame_len is then the whole frame's size, header included.
 *  The CRC is not checked: that needs the payload (tg_journal_frame). */
bool tg_journal_head(const char *p, size_t *frame_len);

/** tg_journal_frame, then the record (*out, NULL unless TG_JOURNAL_OK; a
 *  frame whose payload is not a record is TG_JOURNAL_BAD). */
int tg_journal_decode(const char *p, size_t len, size_t *used, tg_record_t **out);

/** The set of a store's journals: directory, byte bound, segment size.
 *  Makes dir (0700) if missing. NULL with err when it cannot. Main thread. */
tg_jset_t *tg_jset_new(const char *dir, int64_t max_bytes, int64_t segment_bytes, char *err,
                       size_t errlen);

/** Free the set once no journal and no record refers to it; removes the
 *  directory when it is empty (a clean stop leaves nothing). Main thread. */
void tg_jset_free(tg_jset_t *js);

/** Segments left by an earlier run: each one's whole frames (up to the
 *  first that is torn or damaged) go to take() byte for byte, then the
 *  segment is removed — only if take() returned true. Returns the frames
 *  handed over. Main thread, before any worker journals. */
long tg_jset_recover(tg_jset_t *js, bool (*take)(void *arg, const char *frames, size_t len),
                     void *arg);

/** Bytes in the journal files now; records not journaled because of the
 *  bound. Any thread. */
int64_t tg_jset_bytes(tg_jset_t *js);
int64_t tg_jset_skipped(tg_jset_t *js);

/** A record settled: drop its reference on its segment. Any thread. */
void tg_jseg_release(tg_jseg_t *seg);

/** tg_store_submit of a record whose frame (tg_journal_encode) the caller
 *  has made already: should the record have to take the spool, those bytes
 *  are what is appended (no second encoding). frame NULL: encoded there if
 *  needed. Any thread (writer.c). */
void tg_store_submit_frame(struct tg_store *s, tg_record_t *r, const char *frame, size_t len);

/** The store's journal set, NULL when journaling is off (writer.c). */
tg_jset_t *tg_store_jset(struct tg_store *s);

#endif
