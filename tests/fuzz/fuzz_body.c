/*
 * libFuzzer target: the stored form of bodies (src/store/body.c), on bytes
 * read from a database that may be damaged. Properties checked: whatever
 * begins with the frame magic, tg_body_expand either refuses it or gives a
 * body within the bounds it promises (255 times the frame plus 64 KiB);
 * any input, compressed as the store compresses a body, expands back to
 * exactly itself; and a body that begins with the magic is always stored as
 * a frame, so that it can never be taken for one. The input is copied to a
 * buffer of its exact size, so ASan sees any read past the end. See run.sh.
 */
#include "store/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (size)
        memcpy(s, data, size);
    char *out = NULL;
    size_t n = 0;
    if (tg_body_expand(s, size, &out, &n)) {
        if (!tg_body_is_frame(s, size) || n == 0 || n > size * 255 + 65536 || out[n] != '\0')
            abort();
        free(out);
    }
    /* the round trip, through a record as the store takes it */
    tg_record_t r = {0};
    r.response_body = malloc(size + 1);
    if (size)
        memcpy(r.response_body, data, size);
    r.response_body[size] = '\0';
    r.response_body_len = size;
    bool magic = tg_body_is_frame(s, size);
    tg_record_compress_bodies(&r);
    if (magic && !tg_body_is_frame(r.response_body, r.response_body_len))
        abort(); /* left raw, it would read back as a frame */
    if (r.response_body_len != size || memcmp(r.response_body, data, size)) {
        if (!tg_body_expand(r.response_body, r.response_body_len, &out, &n))
            abort(); /* changed, but not into a frame of itself */
        if (n != size || memcmp(out, data, size))
            abort();
        free(out);
    } else if (magic) {
        abort();
    }
    free(r.response_body);
    free(s);
    return 0;
}
