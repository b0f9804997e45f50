/*
 * libFuzzer target: the member look-ups of src/core/jsonscan.c, on bytes
 * that need not be JSON. Properties checked: tg_json_members finds, for each
 * of its keys, exactly what tg_json_member finds for that key alone; every
 * span lies inside the input; on a document tg_json_valid accepts, a found
 * value is itself valid JSON. The input is copied to a buffer of its exact
 * size, so ASan sees any read past the end. See run.sh.
 */
#include "core/jsonscan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const keys[] = {"model", "stream", "usage", "a", "max_tokens", "\"", "m"};
enum { NKEYS = sizeof keys / sizeof keys[0] };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (size)
        memcpy(s, data, size);
    tg_json_span_t sp[NKEYS];
    tg_json_members(s, size, keys, NKEYS, sp);
    bool valid = tg_json_valid(s, size, NULL, NULL);
    /* never past its length (ASan); an object after a colon is one '{' */
    if (tg_json_object_follows(s, size) && !memchr(s, '{', size))
        abort();
    for (size_t k = 0; k < NKEYS; k++) {
        size_t a = 0, b = 0;
        bool one = tg_json_member(s, size, keys[k], &a, &b);
        if (one != sp[k].found || (one && (a != sp[k].start || b != sp[k].end)))
            abort(); /* the one-pass and the one-key look-ups disagree */
        if (!one)
            continue;
        if (a >= b || b > size)
            abort();
        if (valid && !tg_json_valid(s + a, b - a, NULL, NULL))
            abort();
        tg_json_span_long(s, sp[k]);
        char out[32];
        tg_json_span_plain_string(s, sp[k], out, sizeof out);
    }
    free(s);
    return 0;
}
