/*
 * journal.c — the per-worker crash journal (design, file format and trim
 * hand-shake: journal.h; guarantees: docs/observability.md).
 *
 * Owns the journal set (directory, byte count), the segments (files and
 * their reference counts) and each worker's journal (current segment, the
 * frames of this loop turn).
 *
 * Threads: a tg_journal_t belongs to one worker thread: tg_journal_open,
 * _submit, _write and _close run there and need no lock. A segment is
 * shared between its worker (which appends) and whichever thread settles
 * its records (tg_jseg_release): only its reference count is touched by
 * both, and its byte count is read by another thread only once the
 * worker's reference is gone. The set is made, recovered and freed on the
 * main thread; its counters are atomics.
 */
#include "store/journal.h"

#include "core/log.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC       0x314a4754u /* "TGJ1" little-endian */
#define MAX_PAYLOAD (1u << 30)  /* larger "lengths" are garbage */

struct tg_jset {
    char *dir;
    int64_t max_bytes;     /* journal files in all, at most (past it: not journaled) */
    int64_t segment_bytes; /* a segment this big is sealed */
    char run[40];          /* this run's file name prefix: never an old segment's */
    atomic_llong bytes;
    atomic_llong skipped;
};

struct tg_jseg {
    tg_jset_t *js;
    atomic_long refs; /* unsettled records + 1 while its worker appends */
    int64_t bytes;    /* the worker's, until its reference is gone */
    char path[];
};

struct tg_journal {
    tg_store_t *s;
    tg_jset_t *js;
    int worker;
    unsigned next; /* number of the next segment */
    tg_jseg_t *seg;
    int fd;          /* seg's file, -1 until the first write */
    tg_buf_t frames; /* this loop turn's records */
    bool full;       /* at max_bytes (warned) */
    bool failed;     /* a write failed (warned) */
};

/* ---- CRC-32C ---- */

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c, const unsigned char *p,
                                                            size_t n)
{
    uint64_t c64 = c;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    while (n--)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

/* Four bits at a time: a 16-entry table instead of a 1 KiB one, for CPUs
 * without the instruction. */
static uint32_t crc32c_sw(uint32_t c, const unsigned char *p, size_t n)
{
    static const uint32_t t[16] = {0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1,
                                   0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
                                   0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9,
                                   0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75};
    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }
    return c;
}

uint32_t tg_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_hw(crc, data, len);
#endif
    return ~crc32c_sw(crc, data, len);
}

/* ---- frames ---- */

static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

void tg_journal_encode(const tg_record_t *r, tg_buf_t *out)
{
    size_t at = out->len;
    char head[TG_JOURNAL_HEADER] = {0};
    tg_buf_append(out, head, sizeof head);
    tg_record_pack(r, out);
    char *h = out->data + at;
    uint32_t len = (uint32_t)(out->len - at - TG_JOURNAL_HEADER);
    put_u32(h, MAGIC);
    put_u32(h + 4, len);
    put_u32(h + 8, tg_crc32c(tg_crc32c(0, h + 4, 4), h + TG_JOURNAL_HEADER, len));
}

bool tg_journal_head(const char *p, size_t *frame_len)
{
    uint32_t n = get_u32(p + 4);
    if (get_u32(p) != MAGIC || n > MAX_PAYLOAD)
        return false;
    *frame_len = TG_JOURNAL_HEADER + (size_t)n;
    return true;
}

int tg_journal_frame(const char *p, size_t len, size_t *used, const char **payload, size_t *plen)
{
    if (len < TG_JOURNAL_HEADER)
        return len && (len < 4 ? memcmp(p, "TGJ1", len) : get_u32(p) != MAGIC) ? TG_JOURNAL_BAD
                                                                               : TG_JOURNAL_TORN;
    uint32_t n = get_u32(p + 4);
    if (get_u32(p) != MAGIC || n > MAX_PAYLOAD)
        return TG_JOURNAL_BAD;
    if (len - TG_JOURNAL_HEADER < n)
        return TG_JOURNAL_TORN;
    if (tg_crc32c(tg_crc32c(0, p + 4, 4), p + TG_JOURNAL_HEADER, n) != get_u32(p + 8))
        return TG_JOURNAL_BAD; /* torn too, when it is the last frame: its bytes are stale */
    *payload = p + TG_JOURNAL_HEADER;
    *plen = n;
    *used = TG_JOURNAL_HEADER + n;
    return TG_JOURNAL_OK;
}

int tg_journal_decode(const char *p, size_t len, size_t *used, tg_record_t **out)
{
    const char *pl;
    size_t n;
    *out = NULL;
    int rc = tg_journal_frame(p, len, used, &pl, &n);
    if (rc != TG_JOURNAL_OK)
        return rc;
    *out = tg_record_unpack(pl, n);
    return *out ? TG_JOURNAL_OK : TG_JOURNAL_BAD;
}

/* ---- the set ---- */

tg_jset_t *tg_jset_new(const char *dir, int64_t max_bytes, int64_t segment_bytes, char *err,
                       size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make the journal directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    tg_jset_t *js = tg_xcalloc(1, sizeof *js);
    js->dir = tg_xstrdup(dir);
    js->max_bytes = max_bytes;
    js->segment_bytes = segment_bytes;
    snprintf(js->run, sizeof js->run, "%llx-%ld", (unsigned long long)tg_wall_ms(), (long)getpid());
    return js;
}

void tg_jset_free(tg_jset_t *js)
{
    if (!js)
        return;
    rmdir(js->dir); /* fails, as it should, while a segment is left */
    free(js->dir);
    free(js);
}

int64_t tg_jset_bytes(tg_jset_t *js)
{
    return js ? atomic_load(&js->bytes) : 0;
}

int64_t tg_jset_skipped(tg_jset_t *js)
{
    return js ? atomic_load(&js->skipped) : 0;
}

static bool read_file(const char *path, tg_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char tmp[65536];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        tg_buf_append(out, tmp, (size_t)n);
    }
    close(fd);
    return n == 0;
}

/* One segment left by an earlier run: how many whole frames it starts
 * with, and the bytes they span (*good). What follows them (a torn write,
 * or damage) is not handed over. */
static long segment_frames(const tg_buf_t *file, size_t *good)
{
    long n = 0;
    size_t at = 0;
    while (at < file->len) {
        const char *pl;
        size_t used, plen;
        if (tg_journal_frame(file->data + at, file->len - at, &used, &pl, &plen) != TG_JOURNAL_OK)
            break;
        n++;
        at += used;
    }
    *good = at;
    return n;
}

long tg_jset_recover(tg_jset_t *js, bool (*take)(void *arg, const char *frames, size_t len),
                     void *arg)
{
    DIR *d = opendir(js->dir);
    if (!d)
        return 0;
    long total = 0;
    size_t torn = 0;
    struct dirent *e;
    tg_buf_t file = {0}, path = {0};
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".tgj") != 0)
            continue;
        tg_buf_reset(&path);
        tg_buf_printf(&path, "%s/%s", js->dir, e->d_name);
        tg_buf_reset(&file);
        if (!read_file(path.data, &file)) {
            tg_error("store: cannot read the journal %s: %s", path.data, strerror(errno));
            continue;
        }
        size_t good;
        long n = segment_frames(&file, &good);
        if (n && !take(arg, file.data, good)) {
            tg_error("store: the spool cannot take the journal %s; kept for the next start",
                     path.data);
            continue;
        }
        unlink(path.data);
        total += n;
        torn += file.len - good;
    }
    closedir(d);
    tg_buf_free(&file);
    tg_buf_free(&path);
    if (total)
        tg_info("store: %ld records recovered from the journal %s", total, js->dir);
    if (torn)
        tg_warn("store: dropped %zu bytes of half-written journal records (crash)", torn);
    return total;
}

/* ---- segments ---- */

void tg_jseg_release(tg_jseg_t *seg)
{
    if (!seg || atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Every record in it is settled and its worker moved on. */
    unlink(seg->path);
    atomic_fetch_sub(&seg->js->bytes, (long long)seg->bytes);
    free(seg);
}

static tg_jseg_t *segment_new(tg_journal_t *j)
{
    int n = snprintf(NULL, 0, "%s/%s-w%d-%u.tgj", j->js->dir, j->js->run, j->worker, j->next);
    tg_jseg_t *seg = tg_xcalloc(1, sizeof *seg + (size_t)n + 1);
    snprintf(seg->path, (size_t)n + 1, "%s/%s-w%d-%u.tgj", j->js->dir, j->js->run, j->worker,
             j->next++);
    seg->js = j->js;
    atomic_init(&seg->refs, 1);
    return seg;
}

/* The worker lets go of its segment: the last record settled removes it. */
static void segment_seal(tg_journal_t *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    tg_jseg_t *seg = j->seg;
    j->seg = NULL;
    tg_jseg_release(seg);
}

/* Every record appended so far is settled: start the file over, in place
 * (one ftruncate instead of an unlink and a create). Only the worker adds
 * references, so nothing can appear between the check and the cut. */
static void segment_trim(tg_journal_t *j)
{
    tg_jseg_t *seg = j->seg;
    if (!seg || j->fd < 0 || seg->bytes < j->js->segment_bytes / 16 ||
        atomic_load_explicit(&seg->refs, memory_order_acquire) != 1)
        return;
    if (ftruncate(j->fd, 0) != 0)
        return;
    atomic_fetch_sub(&j->js->bytes, (long long)seg->bytes);
    seg->bytes = 0;
}

/* ---- a worker's journal (store.h) ---- */

tg_journal_t *tg_journal_open(tg_store_t *s, int worker)
{
    tg_jset_t *js = s ? tg_store_jset(s) : NULL;
    if (!js)
        return NULL;
    tg_journal_t *j = tg_xcalloc(1, sizeof *j);
    j->s = s;
    j->js = js;
    j->worker = worker;
    j->fd = -1;
    return j;
}

bool tg_journal_submit(tg_store_t *s, tg_journal_t *j, tg_record_t *r)
{
    bool first = false;
    /* the journal, the queue, the spool and the database all hold the
     * stored form: compressed once, here, on the worker */
    tg_record_compress_bodies(r);
    if (j && r && r->id) {
        if (!j->frames.len)
            segment_trim(j);
        if (atomic_load(&j->js->bytes) + (int64_t)j->frames.len >= j->js->max_bytes) {
            atomic_fetch_add(&j->js->skipped, 1);
            if (!j->full)
                tg_warn("store: the journal %s is full (%lld bytes): records wait in memory "
                        "only until the database has them",
                        j->js->dir, (long long)j->js->max_bytes);
            j->full = true;
        } else {
            j->full = false;
            if (!j->seg)
                j->seg = segment_new(j);
            first = !j->frames.len;
            size_t at = j->frames.len;
            tg_journal_encode(r, &j->frames);
            atomic_fetch_add_explicit(&j->seg->refs, 1, memory_order_relaxed);
            r->journal = j->seg;
            /* the same bytes go to the spool if the queue is full */
            tg_store_submit_frame(s, r, j->frames.data + at, j->frames.len - at);
            return first;
        }
    }
    tg_store_submit(s, r);
    return first;
}

void tg_journal_write(tg_journal_t *j)
{
    if (!j || !j->frames.len)
        return;
    tg_jseg_t *seg = j->seg;
    if (j->fd < 0)
        j->fd = open(seg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    bool ok = j->fd >= 0 && tg_write_all(j->fd, j->frames.data, j->frames.len);
    if (ok) {
        seg->bytes += (int64_t)j->frames.len;
        atomic_fetch_add(&j->js->bytes, (long long)j->frames.len);
        j->failed = false;
    } else {
        /* Those records are in memory only, as they were before the
         * journal. A torn frame must not stay in the middle of the file:
         * frames written after it could not be read. */
        if (!j->failed)
            tg_error("store: cannot write the journal %s: %s", seg->path, strerror(errno));
        j->failed = true;
        if (j->fd >= 0 && ftruncate(j->fd, seg->bytes) != 0)
            segment_seal(j);
    }
    if (j->frames.cap > (4u << 20))
        tg_buf_free(&j->frames); /* a turn of huge bodies: do not keep its buffer */
    else
        tg_buf_reset(&j->frames);
    if (j->seg && j->seg->bytes >= j->js->segment_bytes)
        segment_seal(j);
}

void tg_journal_close(tg_journal_t *j)
{
    if (!j)
        return;
    tg_journal_write(j);
    if (j->seg)
        segment_seal(j);
    tg_buf_free(&j->frames);
    free(j);
}
