/* The stored form of bodies (src/store/body.c): LZ4 frames when they save,
 * raw bytes otherwise, and the checks a frame read from a store must pass. */
#include "test.h"

#include "store/record.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A streamed answer as providers send it: n near-identical events. */
static char *stream_body(int n, size_t *len)
{
    tg_buf_t b = {0};
    for (int i = 0; i < n; i++)
        tg_buf_printf(&b,
                      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"}}]}\n\n",
                      i);
    tg_buf_puts(&b, "data: [DONE]\n\n");
    *len = b.len;
    return b.data;
}

/* n bytes no compressor shrinks (xorshift). */
static char *noise(size_t n, uint64_t seed)
{
    char *p = malloc(n + 1);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (char)(x >> 24);
    }
    p[n] = '\0';
    return p;
}

static tg_record_t *with_bodies(const char *req, size_t req_n, const char *resp, size_t resp_n)
{
    tg_record_t *r = tg_record_new();
    tg_record_set_body(r, false, req, req_n, -1);
    tg_record_set_body(r, true, resp, resp_n, -1);
    return r;
}

/* A record whose response body is a streamed answer of `events` events
 * (*body, *n bytes), in its stored form. */
static tg_record_t *compressed_stream(int events, char **body, size_t *n)
{
    *body = stream_body(events, n);
    tg_record_t *r = with_bodies(NULL, 0, *body, *n);
    tg_record_compress_bodies(r);
    return r;
}

/* A body's stored form expands back to exactly the body, NUL-terminated. */
static bool expands_to(const char *stored, size_t n, const char *body, size_t len)
{
    char *out = NULL;
    size_t m = 0;
    bool ok = tg_body_expand(stored, n, &out, &m) && m == len && !memcmp(out, body, len) &&
              out[m] == '\0';
    free(out);
    return ok;
}

TEST(body_stream_stored_as_a_frame_and_back)
{
    size_t n;
    char *body = stream_body(50, &n);
    CHECK(n > 5000);
    tg_record_t *r = with_bodies(body, n, body, n);
    tg_record_compress_bodies(r);
    CHECK(r->bodies_stored);
    CHECK(tg_body_is_frame(r->response_body, r->response_body_len));
    CHECK(r->response_body_len < n / 4); /* 50 near-identical events */
    CHECK_INT(r->response_body_slack, 0);
    CHECK(expands_to(r->response_body, r->response_body_len, body, n));
    CHECK(expands_to(r->request_body, r->request_body_len, body, n));
    CHECK(r->response_body[r->response_body_len] == '\0');
    /* once only: a second call leaves the frame as it is */
    char *frame = r->response_body;
    tg_record_compress_bodies(r);
    CHECK(r->response_body == frame);
    tg_record_free(r);
    free(body);
}

TEST(body_small_or_incompressible_stays_raw)
{
    static const char small[] = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\"}]}";
    char *rnd = noise(20000, 7);
    tg_record_t *r = with_bodies(small, sizeof small - 1, rnd, 20000);
    tg_record_compress_bodies(r);
    CHECK_INT(r->request_body_len, sizeof small - 1);
    CHECK_STR(r->request_body, small);
    CHECK_INT(r->response_body_len, 20000);
    CHECK(!memcmp(r->response_body, rnd, 20000));
    /* raw bytes are not a frame: a stored raw body reads as itself */
    CHECK(!tg_body_expand(r->response_body, r->response_body_len, NULL, NULL));
    tg_record_free(r);
    /* just under and at the threshold */
    char *a = calloc(1, TG_BODY_COMPRESS_MIN + 1);
    memset(a, 'a', TG_BODY_COMPRESS_MIN);
    r = with_bodies(a, TG_BODY_COMPRESS_MIN - 1, a, TG_BODY_COMPRESS_MIN);
    tg_record_compress_bodies(r);
    CHECK_INT(r->request_body_len, TG_BODY_COMPRESS_MIN - 1);
    CHECK(tg_body_is_frame(r->response_body, r->response_body_len));
    CHECK(expands_to(r->response_body, r->response_body_len, a, TG_BODY_COMPRESS_MIN));
    tg_record_free(r);
    free(a);
    free(rnd);
}

/* A client's body that itself begins as a frame does (an .lz4 file, or
 * bytes that happen to) is always wrapped, even when short or larger for it,
 * so that the store never takes it for its own frame. */
TEST(body_beginning_with_the_magic_is_always_wrapped)
{
    size_t n;
    char *stream;
    tg_record_t *inner = compressed_stream(20, &stream, &n);
    CHECK(tg_body_is_frame(inner->response_body, inner->response_body_len));
    /* a real frame, sent as the request body, and 5 bytes of magic + 1 */
    static const char tiny[] = "\x04\x22\x4d\x18x";
    tg_record_t *r = with_bodies(inner->response_body, inner->response_body_len, tiny, 5);
    tg_record_compress_bodies(r);
    CHECK(tg_body_is_frame(r->request_body, r->request_body_len));
    CHECK(expands_to(r->request_body, r->request_body_len, inner->response_body,
                     inner->response_body_len));
    CHECK(tg_body_is_frame(r->response_body, r->response_body_len));
    CHECK(expands_to(r->response_body, r->response_body_len, tiny, 5));
    /* and the API shows what the client sent */
    tg_buf_t j = {0};
    tg_record_to_json(r, TG_RECORD_JSON_BODIES, &j);
    CHECK(strstr(j.data, "\"response_body\":\"\\u0004\\\"M\\u0018x\"") != NULL);
    tg_buf_free(&j);
    tg_record_free(r);
    tg_record_free(inner);
    free(stream);
}

/* Damage of every kind is refused (the bytes then read as a raw body): a
 * cut frame, trailing bytes, a content size that lies, no content size, a
 * flipped byte in the compressed data, and nothing but the magic. */
TEST(body_damaged_frames_are_refused)
{
    size_t n;
    char *body;
    tg_record_t *r = compressed_stream(50, &body, &n);
    const char *f = r->response_body;
    size_t fn = r->response_body_len;
    CHECK(expands_to(f, fn, body, n));
    CHECK(tg_body_expand(f, fn, NULL, NULL)); /* a check only */
    for (size_t cut = 0; cut < fn; cut += (cut < 40 ? 1 : 97))
        CHECK(!tg_body_expand(f, cut, NULL, NULL));
    char *copy = malloc(fn + 8);
    memcpy(copy, f, fn);
    memcpy(copy + fn, "garbage!", 8);
    CHECK(!tg_body_expand(copy, fn + 8, NULL, NULL)); /* bytes after the frame */
    /* the content size (8 bytes after FLG and BD) claims one byte more, then
     * a size far beyond what the frame could hold; the header checksum is
     * recomputed by LZ4 on read, so it must fail either there or on length */
    memcpy(copy, f, fn);
    copy[6]++;
    CHECK(!tg_body_expand(copy, fn, NULL, NULL));
    memcpy(copy, f, fn);
    copy[12] = 0x7f;
    CHECK(!tg_body_expand(copy, fn, NULL, NULL));
    /* the compressed data itself: a literal-length or offset byte changed */
    int refused = 0;
    for (size_t at = 20; at < fn - 4; at++) {
        memcpy(copy, f, fn);
        copy[at] ^= 0x5a;
        char *out = NULL;
        size_t m = 0;
        if (!tg_body_expand(copy, fn, &out, &m))
            refused++;
        else
            CHECK(m == n); /* decodes, to the size it states and no more */
        free(out);
    }
    CHECK(refused > 0);
    CHECK(!tg_body_expand("\x04\x22\x4d\x18", 4, NULL, NULL));
    free(copy);
    /* a stored body that fails is kept raw, byte for byte */
    tg_record_t *back = tg_record_new();
    tg_record_set_stored_body(back, true, f, fn - 1);
    CHECK_INT(back->response_body_len, fn - 1);
    CHECK(!memcmp(back->response_body, f, fn - 1));
    tg_record_set_stored_body(back, true, f, fn);
    CHECK_INT(back->response_body_len, n);
    CHECK(!memcmp(back->response_body, body, n));
    tg_record_free(back);
    tg_record_free(r);
    free(body);
}

/* The journal's binary form carries the stored form byte for byte, and a
 * record read back from it shows its bodies raw in the API form. */
TEST(body_frames_survive_the_journal_form)
{
    size_t n;
    char *body = stream_body(50, &n);
    tg_record_t *r = with_bodies(body, n, body, n);
    tg_record_compress_bodies(r);
    tg_buf_t packed = {0};
    tg_record_pack(r, &packed);
    CHECK(packed.len < n); /* both bodies together, compressed */
    tg_record_t *back = tg_record_unpack(packed.data, packed.len);
    CHECK(back != NULL);
    if (back) {
        CHECK(back->bodies_stored);
        CHECK_INT(back->response_body_len, r->response_body_len);
        CHECK(!memcmp(back->response_body, r->response_body, r->response_body_len));
        tg_buf_t a = {0}, b = {0};
        tg_record_to_json(back, TG_RECORD_JSON_BODIES, &a);
        tg_record_t *plain = with_bodies(body, n, body, n);
        tg_record_set_str(&plain->id, back->id);
        plain->created_at_ms = back->created_at_ms;
        tg_record_to_json(plain, TG_RECORD_JSON_BODIES, &b);
        CHECK_STR(a.data, b.data);
        tg_buf_free(&a);
        tg_buf_free(&b);
        tg_record_free(plain);
    }
    tg_record_free(back);
    tg_buf_free(&packed);
    tg_record_free(r);
    free(body);
}

static void *compress_many(void *arg)
{
    size_t n;
    char *body = stream_body(30 + (int)(intptr_t)arg, &n);
    bool ok = true;
    for (int i = 0; i < 200; i++) {
        tg_record_t *r = with_bodies(NULL, 0, body, n);
        tg_record_compress_bodies(r);
        ok = ok && expands_to(r->response_body, r->response_body_len, body, n);
        tg_record_free(r);
    }
    free(body);
    return ok ? arg : NULL;
}

/* Each thread compresses with a context of its own (freed when it ends). */
TEST(body_compression_on_many_threads)
{
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&t[i], NULL, compress_many, (void *)(i + 1)), 0);
    for (intptr_t i = 0; i < 4; i++) {
        void *ret = NULL;
        pthread_join(t[i], &ret);
        CHECK(ret == (void *)(i + 1));
    }
}
