/*
 * body.c — the stored form of a record's bodies: an LZ4 frame (the format
 * of the lz4 tool, RFC-like spec in lz4's doc/lz4_Frame_format.md) when
 * that saves at least an eighth, else the bytes as they came.
 *
 * Why: a streamed answer's body is ~10 KB of near-identical events. Every
 * byte of it was copied by the kernel three times (the crash journal, the
 * WAL, the checkpoint into the database) and held in the queue; LZ4 makes
 * it ~25 times smaller for ~2 µs of a worker's time (bench/README.md).
 *
 * The form is self-describing, so the record, the journal, the spool and
 * both stores carry bodies as opaque bytes and no schema says which is
 * which: a stored body that begins with the frame magic (04 22 4D 18) and
 * decodes as one whole frame is compressed; anything else is raw. A raw
 * body that itself begins with the magic (an .lz4 file a client sent) is
 * always wrapped in a frame, so that it is never taken for one; bodies
 * stored before this form existed read as they always did.
 *
 * Bounds: a frame must state its content size, which may not exceed 255
 * times its compressed size plus 64 KiB (LZ4's limit; a larger claim is
 * damage) nor TG_BODY_MAX, and must decode to exactly that many bytes with
 * no byte left over. A frame that fails any check is shown raw.
 *
 * A record is compressed once (r->bodies_stored), when it is submitted;
 * records read back from the journal or the spool carry their stored form.
 *
 * Any thread: compression uses a context per thread (freed when the thread
 * ends); decompression one per call (reads of a single record are rare).
 */
#include "store/record.h"

#include <lz4frame.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char frame_magic[4] = {0x04, 0x22, 0x4D, 0x18};

bool tg_body_is_frame(const char *p, size_t n)
{
    return p && n >= sizeof frame_magic && !memcmp(p, frame_magic, sizeof frame_magic);
}

static pthread_key_t cctx_key;
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;
static bool cctx_key_ok; /* no key (never seen): bodies are stored raw */

static void cctx_free(void *c)
{
    LZ4F_freeCompressionContext(c);
}

static void cctx_key_make(void)
{
    cctx_key_ok = pthread_key_create(&cctx_key, cctx_free) == 0;
}

/* This thread's compression context, made on its first body. */
static LZ4F_cctx *thread_cctx(void)
{
    pthread_once(&cctx_once, cctx_key_make);
    if (!cctx_key_ok)
        return NULL;
    LZ4F_cctx *c = pthread_getspecific(cctx_key);
    if (!c) {
        if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)))
            return NULL;
        if (pthread_setspecific(cctx_key, c) != 0) {
            LZ4F_freeCompressionContext(c);
            return NULL;
        }
    }
    return c;
}

/* The frame of p[0..n), or NULL (not worth it, or LZ4 failed). */
static char *compress(const char *p, size_t n, bool must, size_t *out_n)
{
    LZ4F_cctx *c = thread_cctx();
    if (!c)
        return NULL;
    /* independent blocks: nothing kept between calls, and a 10 KB body is
     * one block anyway */
    LZ4F_preferences_t prefs = {
        .frameInfo = {.blockSizeID = LZ4F_max64KB,
                      .blockMode = LZ4F_blockIndependent,
                      .contentSize = n},
        .autoFlush = 1,
    };
    LZ4F_compressOptions_t opts = {.stableSrc = 1};
    size_t cap =
        LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(n, &prefs) + LZ4F_compressBound(0, &prefs);
    char *dst = tg_xmalloc(cap + 1);
    size_t at = LZ4F_compressBegin(c, dst, cap, &prefs), k = 0;
    if (!LZ4F_isError(at) &&
        !LZ4F_isError(k = LZ4F_compressUpdate(c, dst + at, cap - at, p, n, &opts))) {
        at += k;
        if (!LZ4F_isError(k = LZ4F_compressEnd(c, dst + at, cap - at, &opts)))
            at += k;
    }
    if (LZ4F_isError(at) || LZ4F_isError(k) || (!must && at > n - n / 8)) {
        free(dst);
        return NULL;
    }
    dst = tg_xrealloc(dst, at + 1);
    dst[at] = '\0'; /* bodies end in a NUL, as every tg_buf */
    *out_n = at;
    return dst;
}

static void compress_body(char **body, size_t *len)
{
    bool must = tg_body_is_frame(*body, *len);
    if (!*body || (*len < TG_BODY_COMPRESS_MIN && !must))
        return;
    size_t n;
    char *z = compress(*body, *len, must, &n);
    if (z) {
        free(*body);
        *body = z;
        *len = n;
    }
}

void tg_record_compress_bodies(tg_record_t *r)
{
    if (!r || r->bodies_stored)
        return;
    r->bodies_stored = true;
    size_t resp = r->response_body_len;
    compress_body(&r->request_body, &r->request_body_len);
    compress_body(&r->response_body, &r->response_body_len);
    if (r->response_body_len != resp)
        r->response_body_slack = 0; /* a fresh, exact buffer */
}

bool tg_body_expand(const char *p, size_t n, char **out, size_t *out_len)
{
    if (!tg_body_is_frame(p, n))
        return false;
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return false;
    LZ4F_frameInfo_t info;
    size_t used = n;
    bool ok = false;
    char *dst = NULL;
    if (LZ4F_isError(LZ4F_getFrameInfo(d, &info, p, &used)) || info.contentSize == 0 ||
        info.contentSize > (unsigned long long)n * 255 + 65536 || info.contentSize > TG_BODY_MAX)
        goto out;
    size_t want = (size_t)info.contentSize, made = 0, at = used;
    dst = tg_xmalloc(want + 1);
    size_t rc = 1;
    while (rc != 0 && at < n && made <= want) {
        size_t dn = want - made, sn = n - at;
        rc = LZ4F_decompress(d, dst + made, &dn, p + at, &sn, NULL);
        if (LZ4F_isError(rc))
            goto out;
        at += sn;
        made += dn;
        if (dn == 0 && sn == 0)
            break; /* no progress: the frame wants more than it says */
    }
    ok = rc == 0 && at == n && made == want;
    if (ok) {
        dst[want] = '\0';
        if (out) {
            *out = dst;
            dst = NULL;
        }
        if (out_len)
            *out_len = want;
    }
out:
    free(dst);
    LZ4F_freeDecompressionContext(d);
    return ok;
}
