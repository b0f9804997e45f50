/*
 * writer.c — the store's write path (see store.h): the submit side, the
 * writer thread, the spool.
 *
 * Owns the queue, the writer thread, the spool files and the back-end.
 *
 * Where a submitted record is at any moment — exactly one of:
 *   1. the queue (memory, bounded by queue_capacity and queue_max_bytes);
 *   2. the writer's current batch (memory, at most batch_max records);
 *   3. the spool: "<spool>" (appended by producers whose record did not fit
 *      in the queue, and by the writer while the database fails) or
 *      "<spool>.replay" (the file being replayed); both runs of the crash
 *      journal's frames (journal.h: magic, length, CRC-32C, the record's
 *      binary form), written with one write(2) per append, fsync'd by the
 *      syncer thread every spool_sync_ms;
 *   4. the writer's backlog (memory, backlog_max) — only while the spool
 *      itself cannot be written;
 *   5. the database (committed), or dropped (counted) when neither the spool
 *      nor the backlog can take it, or when the database rejects it for good.
 * A kill -9 would lose 1, 2 and 4 (records submitted in the last batch_ms
 * plus the transaction being written), so each record also sits in its
 * worker's journal (journal.c) from the loop turn it was made in until it
 * is settled here: committed, spooled or dropped (record_done lets go of
 * it). At the next start the journal's records go to the spool.
 *
 * Replays are idempotent: the back-end skips a record whose (id, created_at)
 * is already stored, so a crash between a commit and the spool truncation
 * does not duplicate records. A replay goes one batch at a time, taking
 * turns with the queue's batches, so a long spool never stops the queue
 * from draining (which would spill more records into the spool).
 *
 * Damage: a torn last frame (a crash inside an append's write(2)) is cut
 * off at start (trim_torn_frame). A frame that fails its magic, length or
 * CRC in the middle of a file (disk damage) is skipped: the replay moves
 * on to the next "TGJ1" whose frame checks out, counts each damaged
 * stretch as one dropped record and logs the file's damage once. Older
 * versions spooled JSON lines ("<legacy>", legacy_spool_path, and its
 * .replay): at start they are turned into frames on the spool, then
 * removed (convert_legacy); nothing else reads JSON lines.
 *
 * Threads: tg_store_submit, tg_store_counters and the rule calls (which
 * go straight to the back-end) run on any thread; the writer thread runs
 * writer_main and everything it calls; the syncer thread fsyncs the spool
 * (syncer_main); open/close on main.
 * The spool append path is shared by producers and the writer under
 * spool_mu; only the writer rotates (renames) the spool.
 */
#include "store/store.h"

#include "core/log.h"
#include "store/journal.h"
#include "store/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct tg_store {
    tg_store_options_t o;
    char *spool_path, *replay_path;
    char *legacy_path; /* an older version's JSON-lines spool, NULL: none */
    tg_store_backend_t *be;
    tg_jset_t *journal; /* NULL: no crash journal */

    tg_queue_t q;
    atomic_llong queue_bytes;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* wake / flush hand-shake */
    pthread_cond_t wake;
    pthread_cond_t flushed;
    uint64_t flush_req, flush_done; /* under mu */
    atomic_bool closing;

    pthread_mutex_t spool_mu;
    int spool_fd;   /* live spool, O_APPEND, -1 when closed; under spool_mu */
    int retired[8]; /* rotated spools' fds, for the syncer's last fsync; under spool_mu */
    int n_retired;
    atomic_llong spool_bytes; /* live + replay file sizes */
    atomic_bool spool_dirty;  /* appended since the last fsync */

    pthread_t syncer; /* fsyncs the spool every spool_sync_ms */
    bool syncer_started;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    bool sync_stop; /* under sync_mu */

    /* writer thread only */
    tg_record_t **batch;
    size_t n_batch;
    tg_record_t **backlog;
    size_t n_backlog;
    bool failing;
    int backoff_ms;
    int64_t next_retry_ms;
    off_t replay_off;    /* bytes of the replay file already in the database */
    tg_buf_t replay_buf; /* the replay file's bytes being decoded */
    long replay_bad;     /* records of the replay file dropped (damage), logged at its end */
    int64_t replay_bad_bytes;
    bool warned_spool;

    atomic_llong in_hand; /* records popped but not yet settled (batch + backlog) */
    atomic_llong written, dropped, spooled, write_errors;
    atomic_bool failing_pub;
};

void tg_store_options_default(tg_store_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->url = "sqlite:tollgate.db";
    o->queue_capacity = 4096;
    o->queue_max_bytes = 4u << 20;
    o->batch_max = 1024;
    o->batch_ms = 250;
    o->spool_max_bytes = (int64_t)1 << 30;
    o->spool_sync_ms = 200;
    o->backlog_max = 10000;
    o->retry_min_ms = 100;
    o->retry_max_ms = 5000;
    o->close_timeout_ms = 5000;
    o->journal_max_bytes = (int64_t)256 << 20;
    o->journal_segment_bytes = (int64_t)1 << 20;
}

/* A record the store is done with (in the database, the spool, or
 * dropped): its journal copy is no longer needed. Any thread. */
static void record_done(tg_record_t *r)
{
    tg_jseg_release(r->journal);
    tg_record_free(r);
}

/* ---- spool ---- */

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Whether "TGJ1" occurs in the file's bytes [from, size): read in 1 MiB
 * pieces that overlap by 3 bytes. */
static bool magic_after(int fd, off_t from, off_t size)
{
    enum { PIECE = 1 << 20 };
    char *buf = tg_xmalloc(PIECE);
    bool found = false;
    while (!found && size - from >= 4) {
        size_t want = size - from > PIECE ? PIECE : (size_t)(size - from);
        ssize_t n = pread(fd, buf, want, from);
        if (n < 4)
            break;
        found = memmem(buf, (size_t)n, "TGJ1", 4) != NULL;
        from += n - 3;
    }
    free(buf);
    return found;
}

/* A crash can leave a torn last frame (the process died inside an append's
 * write(2)): cut it off so the next append starts a frame of its own, not
 * one that the torn frame's length swallows. Walks the frame headers (one
 * pread each, no payload read) and checks the last frame's CRC. A header
 * that is no frame in the middle (damage) ends the walk without a cut, and
 * so does a length running past the end with another frame's magic behind
 * it (a damaged length rather than a torn write): the replay skips damage.
 * Returns the bytes cut. Before threads start. */
static int64_t trim_torn_frame(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    off_t size = lseek(fd, 0, SEEK_END), at = 0, last = -1, cut_at = -1;
    char head[TG_JOURNAL_HEADER];
    size_t flen = 0;
    while (at < size) {
        if (size - at < TG_JOURNAL_HEADER) {
            cut_at = at; /* a torn header */
            break;
        }
        if (pread(fd, head, sizeof head, at) != (ssize_t)sizeof head ||
            !tg_journal_head(head, &flen))
            break; /* damage: left to the replay */
        if ((off_t)flen > size - at) {
            if (!magic_after(fd, at + TG_JOURNAL_HEADER, size))
                cut_at = at; /* the bytes end inside it */
            break;
        }
        last = at;
        at += (off_t)flen;
    }
    if (at == size && last >= 0) {
        /* the last frame whole, but its bytes may not all have reached the file */
        size_t n = (size_t)(size - last), used, plen;
        char *buf = tg_xmalloc(n);
        const char *pl;
        if (pread(fd, buf, n, last) == (ssize_t)n &&
            tg_journal_frame(buf, n, &used, &pl, &plen) != TG_JOURNAL_OK)
            cut_at = last;
        free(buf);
    }
    int64_t cut = cut_at >= 0 ? (int64_t)(size - cut_at) : 0;
    if (cut > 0 && ftruncate(fd, cut_at) != 0)
        cut = 0;
    close(fd);
    return cut;
}

/* Append frames to the live spool: one write(2). Any thread. */
static bool spool_append(tg_store_t *s, const char *data, size_t len)
{
    bool ok = false;
    pthread_mutex_lock(&s->spool_mu);
    if (atomic_load(&s->spool_bytes) + (int64_t)len > s->o.spool_max_bytes)
        goto out;
    if (s->spool_fd < 0)
        s->spool_fd = open(s->spool_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->spool_fd < 0)
        goto out;
    off_t before = lseek(s->spool_fd, 0, SEEK_END);
    if (!tg_write_all(s->spool_fd, data, len)) {
        /* never leave half a frame behind */
        if (before >= 0 && ftruncate(s->spool_fd, before) != 0)
            tg_warn("store: could not trim the spool %s: %s", s->spool_path, strerror(errno));
        goto out;
    }
    atomic_fetch_add(&s->spool_bytes, (long long)len);
    atomic_store(&s->spool_dirty, true);
    ok = true;
out:
    pthread_mutex_unlock(&s->spool_mu);
    return ok;
}

/* n records' frames (frame: the one record's, made already; NULL: encode
 * them here) onto the spool. */
static bool spool_records(tg_store_t *s, tg_record_t *const *recs, size_t n, const char *frame,
                          size_t frame_len)
{
    tg_buf_t b = {0};
    if (!frame) {
        for (size_t i = 0; i < n; i++)
            tg_journal_encode(recs[i], &b);
        frame = b.data;
        frame_len = b.len;
    }
    bool ok = spool_append(s, frame, frame_len);
    tg_buf_free(&b);
    if (ok)
        atomic_fetch_add(&s->spooled, (long long)n);
    return ok;
}

static void sync_close(tg_store_t *s, int fd)
{
    if (fd < 0)
        return;
    if (fdatasync(fd) != 0)
        tg_warn("store: fsync of the spool %s failed: %s", s->spool_path, strerror(errno));
    close(fd);
}

/* fsync what was appended since the last time: the live spool (through a
 * dup, so that appends go on meanwhile) and the spools rotated since.
 * The syncer thread; main before and after the threads. */
static void spool_sync(tg_store_t *s)
{
    int fds[1 + sizeof s->retired / sizeof s->retired[0]], n = 0;
    pthread_mutex_lock(&s->spool_mu);
    for (int i = 0; i < s->n_retired; i++)
        fds[n++] = s->retired[i];
    s->n_retired = 0;
    if (atomic_exchange(&s->spool_dirty, false) && s->spool_fd >= 0)
        fds[n++] = dup(s->spool_fd);
    pthread_mutex_unlock(&s->spool_mu);
    for (int i = 0; i < n; i++)
        sync_close(s, fds[i]);
}

/* A deadline ms from now on CLOCK_MONOTONIC (the store's condition
 * variables' clock). */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/*
 * The syncer thread: the spool's fsync every spool_sync_ms, off the
 * writer. On the writer, an fdatasync of a spool appended at full speed
 * took 50-200 ms on a busy disk (strace, streamed load): the queue went
 * undrained meanwhile and spilled into the spool, which made the next
 * fsync longer still.
 */
static void *syncer_main(void *arg)
{
    tg_store_t *s = arg;
    pthread_mutex_lock(&s->sync_mu);
    while (!s->sync_stop) {
        struct timespec ts = deadline_in(s->o.spool_sync_ms);
        pthread_cond_timedwait(&s->sync_cv, &s->sync_mu, &ts);
        pthread_mutex_unlock(&s->sync_mu);
        spool_sync(s);
        pthread_mutex_lock(&s->sync_mu);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

/* ---- writing ---- */

static int64_t now_ms(void)
{
    return tg_mono_ms();
}

static void settle(tg_store_t *s, size_t n)
{
    atomic_fetch_sub(&s->in_hand, (long long)n);
}

/*
 * Write recs[0..*n) to the database. On success all are settled (written,
 * or dropped when the database rejects one for good). On TG_STORE_ERETRY
 * the records not yet written are left, compacted, in recs[0..*n).
 */
static int write_records(tg_store_t *s, tg_record_t **recs, size_t *n)
{
    char err[256] = "";
    int rc = s->be->ops->write(s->be, recs, *n, err, sizeof err);
    if (rc == TG_STORE_OK) {
        atomic_fetch_add(&s->written, (long long)*n);
        for (size_t i = 0; i < *n; i++)
            record_done(recs[i]);
        settle(s, *n);
        *n = 0;
        return 0;
    }
    atomic_fetch_add(&s->write_errors, 1);
    if (rc == TG_STORE_ERETRY) {
        if (!s->failing)
            tg_warn("store: database write failed (%s); keeping records in the spool %s", err,
                    s->spool_path);
        return TG_STORE_ERETRY;
    }
    /* A record the database refuses: find it by writing one at a time. */
    size_t keep = 0;
    for (size_t i = 0; i < *n; i++) {
        int r1 = keep ? TG_STORE_ERETRY : s->be->ops->write(s->be, &recs[i], 1, err, sizeof err);
        if (r1 == TG_STORE_OK) {
            atomic_fetch_add(&s->written, 1);
        } else if (r1 == TG_STORE_EREJECT) {
            tg_error("store: record %s rejected by the database (%s); dropped", recs[i]->id, err);
            atomic_fetch_add(&s->dropped, 1);
        } else {
            recs[keep++] = recs[i];
            continue;
        }
        record_done(recs[i]);
        settle(s, 1);
    }
    *n = keep;
    return keep ? TG_STORE_ERETRY : 0;
}

/* Records the database cannot take now: spool, else backlog, else drop. */
static void park(tg_store_t *s, tg_record_t **recs, size_t n)
{
    if (!n)
        return;
    if (spool_records(s, recs, n, NULL, 0)) {
        for (size_t i = 0; i < n; i++)
            record_done(recs[i]);
        settle(s, n);
        s->warned_spool = false;
        return;
    }
    if (!s->warned_spool)
        tg_error("store: the spool %s is full or cannot be written; holding records in memory",
                 s->spool_path);
    s->warned_spool = true;
    for (size_t i = 0; i < n; i++) {
        if (s->n_backlog < s->o.backlog_max) {
            s->backlog[s->n_backlog++] = recs[i];
            continue; /* still in hand */
        }
        atomic_fetch_add(&s->dropped, 1);
        record_done(recs[i]);
        settle(s, 1);
    }
    if (atomic_load(&s->dropped))
        tg_error("store: spool and memory backlog full: %lld records dropped so far",
                 (long long)atomic_load(&s->dropped));
}

static void enter_failing(tg_store_t *s)
{
    int64_t now = now_ms();
    if (!s->failing) {
        s->failing = true;
        s->backoff_ms = s->o.retry_min_ms;
    } else {
        s->backoff_ms =
            s->backoff_ms * 2 > s->o.retry_max_ms ? s->o.retry_max_ms : s->backoff_ms * 2;
    }
    s->next_retry_ms = now + s->backoff_ms;
    atomic_store(&s->failing_pub, true);
}

/* Move the live spool aside for replay (writer only). false: nothing to do.
 * The lock covers only the rename and the fd hand-over: producers appending
 * never wait for a disk flush. */
static bool rotate_spool(tg_store_t *s)
{
    bool moved = false;
    pthread_mutex_lock(&s->spool_mu);
    int fd = s->spool_fd;
    s->spool_fd = -1;
    bool dirty = atomic_exchange(&s->spool_dirty, false);
    if (rename(s->spool_path, s->replay_path) == 0)
        moved = true;
    else if (errno == ENOENT)
        atomic_store(&s->spool_bytes, 0); /* no spool file and no replay file */
    if (fd >= 0 && dirty && s->n_retired < (int)(sizeof s->retired / sizeof s->retired[0])) {
        s->retired[s->n_retired++] = fd; /* its last fsync: the syncer's */
        fd = -1;
    }
    pthread_mutex_unlock(&s->spool_mu);
    if (fd >= 0 && dirty)
        sync_close(s, fd); /* the syncer has many waiting already: here */
    else if (fd >= 0)
        close(fd);
    s->replay_off = 0;
    return moved;
}

/* Reads more of the replay file behind buf (whose first byte is at file
 * offset pos): at least what the frame at buf[at] still lacks, 64 KiB at
 * the least. 1: read some; 0: the end of the file; -1: an error. */
static int replay_read(int fd, tg_buf_t *buf, off_t pos, size_t at)
{
    size_t want = 65536, flen;
    if (buf->len - at >= TG_JOURNAL_HEADER && tg_journal_head(buf->data + at, &flen) &&
        flen - (buf->len - at) > want)
        want = flen - (buf->len - at);
    for (;;) {
        char *p = tg_buf_extend(buf, want);
        ssize_t n = pread(fd, p, want, pos + (off_t)(p - buf->data));
        buf->len -= want - (n > 0 ? (size_t)n : 0);
        buf->data[buf->len] = 0;
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0 ? 1 : n == 0 ? 0 : -1;
    }
}

/* Where the next frame may start after damage at buf[at]: the next "TGJ1"
 * in buf, or (none) its last 3 bytes, which could begin one. */
static size_t resync(const tg_buf_t *buf, size_t at, bool eof)
{
    const char *m = memmem(buf->data + at + 1, buf->len - at - 1, "TGJ1", 4);
    if (m)
        return (size_t)(m - buf->data);
    if (eof)
        return buf->len;
    return buf->len - at > 4 ? buf->len - 3 : at + 1;
}

/* Whether the frame that starts at buf[at] can end within the file's
 * `left` bytes from there (a length past the end is damage, not a reason
 * to read the rest of the file). */
static bool frame_fits(const tg_buf_t *buf, size_t at, int64_t left)
{
    size_t flen;
    return buf->len - at < TG_JOURNAL_HEADER || !tg_journal_head(buf->data + at, &flen) ||
           (int64_t)flen <= left;
}

/*
 * One batch of the replay file into the database: the frames from
 * replay_off on, up to batch_max records or half the queue's bytes (the
 * size of a batch the queue would wake the writer for: a replay holds no
 * more records in memory than the queue does). The main loop calls again,
 * between the queue's batches, until the spool is empty. Returns 0 (a
 * batch written, or the file finished and removed), TG_STORE_ERETRY when
 * the database failed (what was committed stays committed; replay_off
 * says where to go on).
 */
static int replay_batch(tg_store_t *s)
{
    if (access(s->replay_path, F_OK) != 0 && !rotate_spool(s))
        return 0;
    int fd = open(s->replay_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tg_error("store: cannot read the spool %s: %s", s->replay_path, strerror(errno));
        return TG_STORE_ERETRY;
    }
    struct stat st;
    int64_t total = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
    tg_buf_t *buf = &s->replay_buf;
    tg_buf_reset(buf);
    off_t pos = s->replay_off; /* file offset of buf->data[0] */
    size_t at = 0, bytes = 0, n = 0, cap = s->o.queue_max_bytes / 2;
    tg_record_t **recs = tg_xcalloc(s->o.batch_max, sizeof *recs);
    long bad = 0;
    int64_t bad_bytes = 0;
    bool eof = false, damaged = false, failed = false;
    int read_errno = 0;
    while (n < s->o.batch_max && bytes < cap) {
        const char *pl;
        size_t used, plen;
        int rc = buf->len > at ? tg_journal_frame(buf->data + at, buf->len - at, &used, &pl, &plen)
                               : TG_JOURNAL_TORN;
        if (rc == TG_JOURNAL_TORN && !eof && frame_fits(buf, at, total - (pos + (off_t)at))) {
            if (at) { /* keep only what is not decoded yet */
                memmove(buf->data, buf->data + at, buf->len - at);
                buf->len -= at;
                pos += (off_t)at;
                at = 0;
            }
            int got = replay_read(fd, buf, pos, at);
            if (got < 0) {
                read_errno = errno;
                failed = true; /* write what was read; come back for the rest */
                break;
            }
            eof = got == 0;
            continue;
        }
        if (rc == TG_JOURNAL_TORN && at == buf->len)
            break; /* the end of the file */
        if (rc != TG_JOURNAL_OK) {
            /* damage, or a frame the file ends inside: skip to where a
             * frame may start again; one stretch, one record lost */
            size_t next = resync(buf, at, eof);
            bad += !damaged;
            damaged = true;
            bad_bytes += (int64_t)(next - at);
            at = next;
            continue;
        }
        damaged = false;
        tg_record_t *r = tg_record_unpack(pl, plen);
        if (r) {
            recs[n++] = r;
            bytes += used;
        } else {
            bad++; /* a frame whose payload is no record */
            bad_bytes += (int64_t)used;
        }
        at += used;
    }
    close(fd);
    if (failed && !n && !at) {
        tg_error("store: cannot read the spool %s: %s", s->replay_path, strerror(read_errno));
        free(recs);
        return TG_STORE_ERETRY;
    }
    atomic_fetch_add(&s->in_hand, (long long)n);
    int rc = n ? write_records(s, recs, &n) : 0;
    if (rc != 0) {
        /* not written: they are still in the replay file */
        for (size_t i = 0; i < n; i++)
            record_done(recs[i]);
        settle(s, n);
    }
    free(recs);
    if (buf->cap > ((size_t)s->o.queue_max_bytes << 1))
        tg_buf_free(buf); /* one huge record: do not keep its buffer */
    if (rc != 0)
        return rc; /* the same bytes are read again: nothing counted twice */
    s->replay_off = pos + (off_t)at;
    s->replay_bad += bad;
    s->replay_bad_bytes += bad_bytes;
    if (s->replay_off < total)
        return 0;
    if (s->replay_bad) { /* once per file */
        tg_error("store: %ld records (%lld bytes) in the spool %s unreadable (torn or damaged); "
                 "dropped",
                 s->replay_bad, (long long)s->replay_bad_bytes, s->replay_path);
        atomic_fetch_add(&s->dropped, s->replay_bad);
    }
    unlink(s->replay_path);
    atomic_fetch_sub(&s->spool_bytes, (long long)total);
    s->replay_off = 0;
    s->replay_bad = 0;
    s->replay_bad_bytes = 0;
    tg_buf_free(buf);
    return 0;
}

/* The database is back (or was never away): backlog, then the spool. */
static int recover(tg_store_t *s)
{
    if (s->failing) {
        char err[256] = "";
        if (s->be->ops->reopen && s->be->ops->reopen(s->be, err, sizeof err) != 0) {
            tg_debug("store: reopen failed: %s", err);
            return TG_STORE_ERETRY;
        }
    }
    while (s->n_backlog) {
        size_t n = s->n_backlog < s->o.batch_max ? s->n_backlog : s->o.batch_max;
        size_t left = n;
        tg_record_t **head = s->backlog + (s->n_backlog - n);
        if (write_records(s, head, &left) != 0) {
            s->n_backlog -= n - left;
            return TG_STORE_ERETRY;
        }
        s->n_backlog -= n;
    }
    if (atomic_load(&s->spool_bytes) > 0 || access(s->replay_path, F_OK) == 0)
        return replay_batch(s);
    return 0;
}

static void signal_flushed(tg_store_t *s, uint64_t req)
{
    pthread_mutex_lock(&s->mu);
    if (s->flush_done < req)
        s->flush_done = req;
    pthread_cond_broadcast(&s->flushed);
    pthread_mutex_unlock(&s->mu);
}

/* Enough is queued for the writer to start now rather than at the end of
 * batch_ms: a full batch, or half the queue's bytes. Any thread. */
static bool queue_wants_writer(tg_store_t *s)
{
    return tg_queue_depth(&s->q) >= s->o.batch_max ||
           atomic_load_explicit(&s->queue_bytes, memory_order_relaxed) >=
               (long long)s->o.queue_max_bytes / 2;
}

static void *writer_main(void *arg)
{
    tg_store_t *s = arg;
    int64_t close_deadline = -1;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        uint64_t req = s->flush_req; /* before looking at the queue: see tg_store_flush */
        pthread_mutex_unlock(&s->mu);
        bool closing = atomic_load(&s->closing);
        if (closing && close_deadline < 0)
            close_deadline = now_ms() + s->o.close_timeout_ms;

        /* 1. one batch from the queue */
        s->n_batch = 0;
        while (s->n_batch < s->o.batch_max) {
            tg_record_t *r = tg_queue_pop(&s->q);
            if (!r)
                break;
            atomic_fetch_add(&s->in_hand, 1);
            atomic_fetch_sub(&s->queue_bytes, (long long)tg_record_size(r));
            s->batch[s->n_batch++] = r;
        }
        /* 2. into the database, or aside while it fails or while older
         *    records wait in the backlog */
        if (s->n_batch) {
            size_t n = s->n_batch;
            if (s->failing || write_records(s, s->batch, &n) != 0) {
                if (!s->failing)
                    enter_failing(s);
                park(s, s->batch, n);
            }
            s->n_batch = 0;
        }
        int64_t now = now_ms();
        /* 3. replay and recovery */
        bool pending = s->n_backlog || atomic_load(&s->spool_bytes) > 0;
        if (pending && (!s->failing || now >= s->next_retry_ms)) {
            if (recover(s) == 0) {
                if (s->failing)
                    tg_info("store: database writable again; spool replayed");
                s->failing = false;
                atomic_store(&s->failing_pub, false);
            } else {
                enter_failing(s);
                /* the backlog goes to the spool as soon as the spool takes it */
                if (s->n_backlog) {
                    size_t n = s->n_backlog;
                    s->n_backlog = 0;
                    park(s, s->backlog, n);
                }
            }
        }
        /* 4. (the spool's fsync is the syncer's) */
        now = now_ms();
        /* 5. idle: wake flush() waiters */
        size_t depth = tg_queue_depth(&s->q);
        bool idle = depth == 0 && !s->n_backlog && atomic_load(&s->spool_bytes) == 0;
        if (idle)
            signal_flushed(s, req);
        /* 6. shutdown */
        if (closing && depth == 0) {
            if (idle)
                break;
            /* a healthy database finishes the spool's replay, batch by batch,
             * however long it takes (as one long replay did before) */
            if (now >= close_deadline && (s->failing || s->n_backlog)) {
                if (s->n_backlog) {
                    size_t n = s->n_backlog;
                    s->n_backlog = 0;
                    park(s, s->backlog, n); /* last chance: spool, else dropped */
                    for (size_t i = 0; i < s->n_backlog; i++)
                        record_done(s->backlog[i]);
                    atomic_fetch_add(&s->dropped, (long long)s->n_backlog);
                    settle(s, s->n_backlog);
                    s->n_backlog = 0;
                }
                tg_warn("store: database still failing at shutdown; %lld bytes of records "
                        "left in the spool %s for the next start",
                        (long long)atomic_load(&s->spool_bytes), s->spool_path);
                break;
            }
        }
        /* 7. wait for more work */
        if (queue_wants_writer(s) || (closing && depth > 0))
            continue;
        int64_t wait = s->o.batch_ms;
        if ((pending || s->failing) && s->next_retry_ms - now < wait)
            wait = s->next_retry_ms - now;
        if (closing)
            wait = wait > 10 ? 10 : wait;
        if (wait <= 0)
            continue;
        struct timespec ts = deadline_in(wait);
        pthread_mutex_lock(&s->mu);
        if (!atomic_load(&s->closing) && s->flush_req == req && !queue_wants_writer(s))
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        pthread_mutex_unlock(&s->mu);
    }
    signal_flushed(s, UINT64_MAX);
    return NULL;
}

/* ---- public ---- */

static void wake_writer(tg_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

void tg_store_submit(tg_store_t *s, tg_record_t *r)
{
    tg_record_compress_bodies(r);
    tg_store_submit_frame(s, r, NULL, 0);
}

void tg_store_submit_frame(tg_store_t *s, tg_record_t *r, const char *frame, size_t frame_len)
{
    if (!r)
        return;
    if (!s) {
        record_done(r);
        return;
    }
    if (!r->id) {
        char id[37];
        tg_uuid4(id);
        r->id = tg_xstrdup(id);
    }
    long long size = (long long)tg_record_size(r);
    long long before = atomic_fetch_add(&s->queue_bytes, size);
    if (before + size <= (long long)s->o.queue_max_bytes && tg_queue_push(&s->q, r)) {
        /* a full batch is waiting, or the queue is half full in bytes (big
         * bodies): do not let it sit for batch_ms, nor spill into the spool
         * meanwhile. Signalled under the writer's mutex: the writer tests
         * queue_wants_writer under it before it waits, so the wake-up cannot
         * fall between its test and its wait (and be lost for batch_ms). */
        if (queue_wants_writer(s))
            wake_writer(s);
        return;
    }
    atomic_fetch_sub(&s->queue_bytes, size);
    /* The queue is full: append the record's frame to the spool from this
     * thread (one write, no fsync; the frame the journal made if there is
     * one). The writer replays it. */
    if (!spool_records(s, &r, 1, frame, frame_len)) {
        long long d = atomic_fetch_add(&s->dropped, 1) + 1;
        if ((d & (d - 1)) == 0) /* 1, 2, 4, 8...: do not flood the log */
            tg_error("store: queue full and spool %s unwritable: %lld records dropped",
                     s->spool_path, d);
    }
    record_done(r);
}

int tg_store_flush(tg_store_t *s, int timeout_ms)
{
    if (!s)
        return 0;
    struct timespec ts = deadline_in(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    uint64_t my = ++s->flush_req;
    pthread_cond_signal(&s->wake);
    while (s->flush_done < my) {
        if (pthread_cond_timedwait(&s->flushed, &s->mu, &ts) == ETIMEDOUT) {
            rc = s->flush_done >= my ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void tg_store_counters(tg_store_t *s, tg_store_counters_t *c)
{
    memset(c, 0, sizeof *c);
    if (!s)
        return;
    c->queue_depth = (int64_t)tg_queue_depth(&s->q) + atomic_load(&s->in_hand);
    c->written = atomic_load(&s->written);
    c->dropped = atomic_load(&s->dropped);
    c->spooled = atomic_load(&s->spooled);
    c->spool_bytes = atomic_load(&s->spool_bytes);
    c->write_errors = atomic_load(&s->write_errors);
    c->failing = atomic_load(&s->failing_pub);
    c->journal_bytes = tg_jset_bytes(s->journal);
    c->journal_skipped = tg_jset_skipped(s->journal);
}

tg_jset_t *tg_store_jset(tg_store_t *s)
{
    return s->journal;
}

tg_store_backend_t *tg_store_backend(tg_store_t *s)
{
    return s ? s->be : NULL;
}

/* ---- runtime rate limits: straight to the back-end, not queued ---- */

/* Whether s has the back-end op (has_op) for `what`; err says why not. */
static bool keeps(tg_store_t *s, bool has_op, const char *what, char *err, size_t errlen)
{
    if (!s)
        snprintf(err, errlen, "no store (request logging is off)");
    else if (!has_op)
        snprintf(err, errlen, "the %s store keeps no %s", s->be->ops->name, what);
    return s && has_op;
}

static bool keeps_rules(tg_store_t *s, bool has_op, char *err, size_t errlen)
{
    return keeps(s, has_op, "rate-limit rules", err, errlen);
}

int tg_store_rule_save(tg_store_t *s, const tg_rl_rule_t *rule, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->rule_save, err, errlen))
        return -1;
    return s->be->ops->rule_save(s->be, rule, err, errlen);
}

int tg_store_rule_delete(tg_store_t *s, const char *id, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->rule_delete, err, errlen))
        return -1;
    return s->be->ops->rule_delete(s->be, id, err, errlen);
}

int tg_store_rules_load(tg_store_t *s, tg_rl_rule_t **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!keeps_rules(s, s && s->be->ops->rules_load, err, errlen))
        return -1;
    return s->be->ops->rules_load(s->be, out, n, err, errlen);
}

/* ---- the webhook outbox: straight to the back-end, not queued ---- */

static bool keeps_outbox(tg_store_t *s, bool has_op, char *err, size_t errlen)
{
    return keeps(s, has_op, "webhook outbox", err, errlen);
}

void tg_outbox_rows_free(tg_outbox_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].event_id);
        free(rows[i].url);
        free(rows[i].type);
        free(rows[i].body);
    }
    free(rows);
}

int tg_store_outbox_add(tg_store_t *s, const tg_outbox_row_t *rows, size_t n, char *err,
                        size_t errlen)
{
    if (!keeps_outbox(s, s && s->be->ops->outbox_add, err, errlen))
        return -1;
    return n ? s->be->ops->outbox_add(s->be, rows, n, err, errlen) : 0;
}

int tg_store_outbox_due(tg_store_t *s, int64_t now_ms, size_t max, tg_outbox_row_t **out, size_t *n,
                        int64_t *next_ms, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    *next_ms = -1;
    if (!keeps_outbox(s, s && s->be->ops->outbox_due, err, errlen))
        return -1;
    return s->be->ops->outbox_due(s->be, now_ms, max, out, n, next_ms, err, errlen);
}

int tg_store_outbox_rewind(tg_store_t *s, int64_t now_ms, char *err, size_t errlen)
{
    if (!keeps_outbox(s, s && s->be->ops->outbox_rewind, err, errlen))
        return -1;
    return s->be->ops->outbox_rewind(s->be, now_ms, err, errlen);
}

int tg_store_outbox_settle(tg_store_t *s, const tg_outbox_row_t *rows, size_t n, char *err,
                           size_t errlen)
{
    if (!keeps_outbox(s, s && s->be->ops->outbox_settle, err, errlen))
        return -1;
    return n ? s->be->ops->outbox_settle(s->be, rows, n, err, errlen) : 0;
}

int tg_store_spend_sums(tg_store_t *s, const char *scope, int64_t since_ms, int64_t until_ms,
                        tg_store_spend_fn fn, void *arg, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->spend_sums, err, errlen))
        return -1;
    return s->be->ops->spend_sums(s->be, scope, since_ms, until_ms, fn, arg, err, errlen);
}

int tg_store_budget_save(tg_store_t *s, const char *scope, const char *value,
                         const tg_budget_cfg_t *b, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->budget_save, err, errlen))
        return -1;
    return s->be->ops->budget_save(s->be, scope, value, b, err, errlen);
}

int tg_store_budget_delete(tg_store_t *s, const char *scope, const char *value, char *err,
                           size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->budget_delete, err, errlen))
        return -1;
    return s->be->ops->budget_delete(s->be, scope, value, err, errlen);
}

int tg_store_budgets_load(tg_store_t *s, tg_store_budget_fn fn, void *arg, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->budgets_load, err, errlen))
        return -1;
    return s->be->ops->budgets_load(s->be, fn, arg, err, errlen);
}

int tg_store_key_save(tg_store_t *s, const tg_vkey_t *k, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->key_save, err, errlen))
        return -1;
    return s->be->ops->key_save(s->be, k, err, errlen);
}

int tg_store_key_delete(tg_store_t *s, const char *name, char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->key_delete, err, errlen))
        return -1;
    return s->be->ops->key_delete(s->be, name, err, errlen);
}

int tg_store_keys_load(tg_store_t *s, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                       char *err, size_t errlen)
{
    if (!keeps_rules(s, s && s->be->ops->keys_load, err, errlen))
        return -1;
    return s->be->ops->keys_load(s->be, fn, arg, err, errlen);
}

/* The syncer's last round, then its end; one more fsync of whatever it
 * did not see. After the writer stopped (or never started). Main. */
static void stop_syncer(tg_store_t *s)
{
    if (s->syncer_started) {
        pthread_mutex_lock(&s->sync_mu);
        s->sync_stop = true;
        pthread_cond_signal(&s->sync_cv);
        pthread_mutex_unlock(&s->sync_mu);
        pthread_join(s->syncer, NULL);
        s->syncer_started = false;
    }
    spool_sync(s);
}

static void store_free(tg_store_t *s)
{
    stop_syncer(s);
    if (s->be)
        s->be->ops->close(s->be);
    tg_record_t *r;
    while (s->q.cells && (r = tg_queue_pop(&s->q)))
        record_done(r); /* only after a failed start */
    tg_queue_destroy(&s->q);
    if (s->spool_fd >= 0)
        close(s->spool_fd);
    tg_jset_free(s->journal); /* every record is settled: no segment is left */
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->spool_mu);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->flushed);
    pthread_cond_destroy(&s->sync_cv);
    free(s->batch);
    free(s->backlog);
    free(s->spool_path);
    free(s->replay_path);
    free(s->legacy_path);
    tg_buf_free(&s->replay_buf);
    free(s);
}

/* Journal segments left by a crash: their frames go to the spool as they
 * are, fsync'd before the segments are removed; the writer then replays
 * them like any spooled record. Main thread, before the writer starts. */
static bool take_journal(void *arg, const char *frames, size_t len)
{
    tg_store_t *s = arg;
    if (!spool_append(s, frames, len))
        return false;
    spool_sync(s);
    return true;
}

/*
 * A spool of JSON lines left by an older version: its records become
 * frames on the spool (fsync'd), then the file is removed, so they are
 * replayed like any other (records already stored are skipped there). A
 * line that is no record (a half-written last line) is counted as dropped.
 * When the spool cannot take them, the file stays for the next start.
 * Main thread, before the writer starts.
 */
static void convert_legacy(tg_store_t *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    tg_buf_t in = {0}, out = {0};
    size_t scan = 0; /* in[0..scan) is done */
    long good = 0, bad = 0;
    bool ok = true, eof = false;
    while (ok && !eof) {
        char *nl = in.len > scan ? memchr(in.data + scan, '\n', in.len - scan) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - (in.data + scan));
            tg_record_t *r = len ? tg_record_from_spool(in.data + scan, len) : NULL;
            good += r != NULL;
            bad += len && !r;
            if (r)
                tg_journal_encode(r, &out);
            tg_record_free(r);
            scan += len + 1;
        } else {
            if (scan) { /* keep only the partial line */
                memmove(in.data, in.data + scan, in.len - scan);
                in.len -= scan;
                scan = 0;
            }
            char *p = tg_buf_extend(&in, 65536);
            ssize_t r = read(fd, p, 65536);
            in.len -= 65536 - (r > 0 ? (size_t)r : 0);
            in.data[in.len] = 0;
            if (r < 0 && errno == EINTR)
                continue;
            ok = r >= 0;
            eof = r == 0;
            bad += eof && in.len > 0; /* a last line without its newline: torn */
        }
        if ((eof || out.len >= (1u << 20)) && out.len) {
            ok = ok && spool_append(s, out.data, out.len);
            tg_buf_reset(&out);
        }
    }
    close(fd);
    tg_buf_free(&in);
    tg_buf_free(&out);
    if (!ok) {
        tg_error("store: could not move the spool %s of an older version into %s; kept for the "
                 "next start",
                 path, s->spool_path);
        return;
    }
    spool_sync(s);
    unlink(path);
    tg_info("store: %ld records of the older spool %s moved into %s", good, path, s->spool_path);
    if (bad) {
        tg_error("store: %ld unreadable lines in the spool %s dropped", bad, path);
        atomic_fetch_add(&s->dropped, bad);
    }
}

/* A store that cannot keep a journal still works: records are then safe
 * from a kill -9 only once in the database, as before the journal. */
static void open_journal(tg_store_t *s, const char *dir)
{
    if (!dir || !*dir)
        return;
    char err[512];
    s->journal =
        tg_jset_new(dir, s->o.journal_max_bytes, s->o.journal_segment_bytes, err, sizeof err);
    if (!s->journal) {
        tg_error("store: %s; running without a crash journal", err);
        return;
    }
    tg_jset_recover(s->journal, take_journal, s);
}

int tg_store_open_backend(const tg_store_options_t *o, tg_store_backend_t *b, tg_store_t **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    if (!o->spool_path || !*o->spool_path) {
        snprintf(err, errlen, "store: no spool path");
        b->ops->close(b);
        return -1;
    }
    tg_store_t *s = tg_xcalloc(1, sizeof *s);
    s->o = *o;
    tg_store_options_t d;
    tg_store_options_default(&d);
    /* zero means default */
    if (!s->o.queue_capacity)
        s->o.queue_capacity = d.queue_capacity;
    if (!s->o.queue_max_bytes)
        s->o.queue_max_bytes = d.queue_max_bytes;
    if (!s->o.batch_max)
        s->o.batch_max = d.batch_max;
    if (s->o.batch_ms <= 0)
        s->o.batch_ms = d.batch_ms;
    if (s->o.spool_max_bytes <= 0)
        s->o.spool_max_bytes = d.spool_max_bytes;
    if (s->o.spool_sync_ms <= 0)
        s->o.spool_sync_ms = d.spool_sync_ms;
    if (!s->o.backlog_max)
        s->o.backlog_max = d.backlog_max;
    if (s->o.retry_min_ms <= 0)
        s->o.retry_min_ms = d.retry_min_ms;
    if (s->o.retry_max_ms < s->o.retry_min_ms)
        s->o.retry_max_ms = s->o.retry_min_ms > d.retry_max_ms ? s->o.retry_min_ms : d.retry_max_ms;
    if (s->o.close_timeout_ms <= 0)
        s->o.close_timeout_ms = d.close_timeout_ms;
    if (s->o.journal_max_bytes <= 0)
        s->o.journal_max_bytes = d.journal_max_bytes;
    if (s->o.journal_segment_bytes <= 0)
        s->o.journal_segment_bytes = d.journal_segment_bytes;
    s->o.url = NULL;
    s->o.spool_path = NULL;
    s->o.legacy_spool_path = NULL;
    s->o.journal_dir = NULL;
    s->be = b;
    s->spool_path = tg_xstrdup(o->spool_path);
    size_t n = strlen(s->spool_path) + 8;
    s->replay_path = tg_xmalloc(n);
    snprintf(s->replay_path, n, "%s.replay", s->spool_path);
    if (o->legacy_spool_path && *o->legacy_spool_path)
        s->legacy_path = tg_xstrdup(o->legacy_spool_path);
    s->spool_fd = -1;
    tg_queue_init(&s->q, s->o.queue_capacity);
    s->batch = tg_xcalloc(s->o.batch_max, sizeof *s->batch);
    s->backlog = tg_xcalloc(s->o.backlog_max, sizeof *s->backlog);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->spool_mu, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->flushed, &ca);
    pthread_cond_init(&s->sync_cv, &ca);
    pthread_condattr_destroy(&ca);

    /* records left by the last run */
    int64_t cut = trim_torn_frame(s->spool_path) + trim_torn_frame(s->replay_path);
    if (cut) /* not counted as dropped: its records are still in a journal, unless their
                answer never left */
        tg_warn("store: dropped %lld bytes of a half-written spool append (crash)", (long long)cut);
    atomic_store(&s->spool_bytes, file_size(s->spool_path) + file_size(s->replay_path));
    if (atomic_load(&s->spool_bytes) > 0)
        tg_info("store: %lld bytes of spooled records to replay",
                (long long)atomic_load(&s->spool_bytes));
    if (s->legacy_path) { /* the older file being replayed first */
        tg_buf_t legacy = {0};
        tg_buf_printf(&legacy, "%s.replay", s->legacy_path);
        convert_legacy(s, legacy.data);
        convert_legacy(s, s->legacy_path);
        tg_buf_free(&legacy);
    }
    open_journal(s, o->journal_dir);

    s->syncer_started = pthread_create(&s->syncer, NULL, syncer_main, s) == 0;
    if (!s->syncer_started || pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "store: cannot start the writer thread");
        store_free(s);
        return -1;
    }
    pthread_setname_np(s->syncer, "tg-spool-sync");
    pthread_setname_np(s->thread, "tg-store-writer");
    s->started = true;
    *out = s;
    return 0;
}

/* The PostgreSQL store. Its spool and the workers' journals are local
 * files all the same: in the working directory unless given. */
static int open_pg(const tg_store_options_t *o, const char *url, tg_store_t **out, char *err,
                   size_t errlen)
{
    tg_store_backend_t *b = tg_store_pg_open(url, err, errlen);
    if (!b)
        return -1;
    char *shown = tg_redact_secrets(url);
    tg_info("store: PostgreSQL %s", shown);
    free(shown);
    tg_store_options_t oo = *o;
    if (!oo.spool_path)
        oo.spool_path = "tollgate-spool.tgj";
    if (!oo.legacy_spool_path)
        oo.legacy_spool_path = "tollgate-spool.jsonl";
    if (!oo.journal_dir)
        oo.journal_dir = "tollgate-journal.d";
    return tg_store_open_backend(&oo, b, out, err, errlen);
}

int tg_store_open(const tg_store_options_t *o, tg_store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *url = o->url ? o->url : "sqlite:tollgate.db";
    if (!strncasecmp(url, "postgres://", 11) || !strncasecmp(url, "postgresql://", 13))
        return open_pg(o, url, out, err, errlen);
    if (strncmp(url, "sqlite:", 7) != 0) {
        char *shown = tg_redact_secrets(url);
        snprintf(err, errlen, "storage.url: expected sqlite:PATH or postgresql://..., got '%s'",
                 shown);
        free(shown);
        return -1;
    }
    const char *path = url + 7;
    if (!strncmp(path, "//", 2)) /* sqlite:///abs/path */
        path += 2;
    if (!*path) {
        snprintf(err, errlen, "storage.url: sqlite: needs a file path");
        return -1;
    }
    tg_store_backend_t *b = tg_store_sqlite_open(path, err, errlen);
    if (!b)
        return -1;
    tg_store_options_t oo = *o;
    tg_buf_t spool = {0}, legacy = {0}, journal = {0};
    if (!oo.spool_path) {
        tg_buf_printf(&spool, "%s-spool.tgj", path);
        oo.spool_path = spool.data;
    }
    if (!oo.legacy_spool_path) {
        tg_buf_printf(&legacy, "%s-spool.jsonl", path);
        oo.legacy_spool_path = legacy.data;
    }
    if (!oo.journal_dir) {
        tg_buf_printf(&journal, "%s-journal.d", path);
        oo.journal_dir = journal.data;
    }
    int rc = tg_store_open_backend(&oo, b, out, err, errlen);
    tg_buf_free(&spool);
    tg_buf_free(&legacy);
    tg_buf_free(&journal);
    return rc;
}

void tg_store_close(tg_store_t *s)
{
    if (!s)
        return;
    if (s->started) {
        atomic_store(&s->closing, true);
        wake_writer(s);
        pthread_join(s->thread, NULL);
    }
    tg_store_counters_t c;
    tg_store_counters(s, &c);
    tg_debug("store: closed: %lld records written, %lld spooled, %lld dropped",
             (long long)c.written, (long long)c.spooled, (long long)c.dropped);
    store_free(s);
}

void tg_record_list_free(tg_record_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        tg_record_free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void tg_cost_rows_free(tg_cost_rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->rows[i].group);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

void tg_series_free(tg_series_t *s)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        free(s->groups[i].group);
        free(s->groups[i].cells);
    }
    free(s->groups);
    memset(s, 0, sizeof *s);
}

void tg_sessions_free(tg_sessions_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rows[i].session_id);
        free(s->rows[i].name);
    }
    free(s->rows);
    memset(s, 0, sizeof *s);
}
