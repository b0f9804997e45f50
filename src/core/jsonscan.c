/*
 * jsonscan.c — see jsonscan.h. The member look-ups are a scanner, not a
 * validator: on malformed input they stop and report "not found", and they
 * never read past len. tg_json_valid is the strict grammar check that lets
 * the request path skip building a jansson tree it does not need.
 */
#include "core/jsonscan.h"

#include <string.h>

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] == '"'; returns the index after the closing quote, or n. A quote
 * ends the string unless an odd number of backslashes precede it; memchr
 * finds the candidates (LLM answers are long strings). */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    size_t from = i + 1;
    for (;;) {
        const char *q = from < n ? memchr(s + from, '"', n - from) : NULL;
        if (!q)
            return n;
        size_t j = (size_t)(q - s), k = j;
        while (k > i + 1 && s[k - 1] == '\\')
            k--;
        if (((j - k) & 1) == 0)
            return j + 1;
        from = j + 1;
    }
}

/* What skip_value's container loop stops at: 1 a string, 2 an opening
 * bracket, 3 a closing one; everything else is stepped over. */
static const unsigned char stop_at[256] = {['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3};

/* Returns the index after the value starting at s[i], or n. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        while (i < n) {
            switch (stop_at[(unsigned char)s[i]]) {
            case 0: i++; continue;
            case 1: i = skip_string(s, i, n); continue;
            case 2: depth++; break;
            default:
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return n;
    }
    /* number, true, false, null */
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

size_t tg_json_object_start(const char *json, size_t len)
{
    size_t i = skip_ws(json, 0, len);
    return i < len && json[i] == '{' ? i + 1 : 0;
}

bool tg_json_object_follows(const char *s, size_t len)
{
    size_t i = skip_ws(s, 0, len);
    if (i == len || s[i] != ':')
        return false;
    i = skip_ws(s, i + 1, len);
    return i < len && s[i] == '{';
}

bool tg_json_members(const char *s, size_t n, const char *const *keys, size_t nkeys,
                     tg_json_span_t *out)
{
    memset(out, 0, nkeys * sizeof *out);
    size_t i = tg_json_object_start(s, n);
    if (!i)
        return false;
    for (;;) {
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != '"')
            return true; /* '}' (end) or malformed: what was found stands */
        size_t kstart = i + 1;
        i = skip_string(s, i, n);
        if (i >= n)
            goto cut;
        size_t klen = i - 1 - kstart;
        size_t match = nkeys;
        for (size_t k = 0; k < nkeys; k++)
            if (keys[k][0] == s[kstart] && strlen(keys[k]) == klen &&
                !memcmp(s + kstart, keys[k], klen)) {
                match = k;
                break;
            }
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != ':')
            goto cut;
        i = skip_ws(s, i + 1, n);
        size_t v = i;
        i = skip_value(s, i, n);
        /* In a well-formed object a value is always followed by ',' or '}'. */
        if (i >= n)
            goto cut;
        if (match < nkeys && i > v)
            out[match] = (tg_json_span_t){.start = v, .end = i, .found = true};
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != ',')
            return true;
        i++;
    }
cut: /* the document ends inside a member: nothing in it counts */
    memset(out, 0, nkeys * sizeof *out);
    return false;
}

bool tg_json_member(const char *s, size_t n, const char *key, size_t *vstart, size_t *vend)
{
    tg_json_span_t sp;
    if (!tg_json_members(s, n, &key, 1, &sp) || !sp.found)
        return false;
    *vstart = sp.start;
    *vend = sp.end;
    return true;
}

long tg_json_span_long(const char *s, tg_json_span_t sp)
{
    if (!sp.found || sp.end - sp.start > 18)
        return -1;
    long v = 0;
    for (size_t i = sp.start; i < sp.end; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int tg_json_span_plain_string(const char *s, tg_json_span_t sp, char *out, size_t outlen)
{
    if (!sp.found)
        return 0;
    size_t a = sp.start, b = sp.end;
    if (b - a < 2 || s[a] != '"' || b - a - 2 >= outlen || memchr(s + a + 1, '\\', b - a - 2))
        return -1;
    memcpy(out, s + a + 1, b - a - 2);
    out[b - a - 2] = 0;
    return 1;
}

bool tg_json_span_is(const char *s, tg_json_span_t sp, const char *literal)
{
    size_t l = strlen(literal);
    return sp.found && sp.end - sp.start == l && !memcmp(s + sp.start, literal, l);
}

long tg_json_member_long(const char *s, size_t n, const char *key)
{
    tg_json_span_t sp;
    tg_json_members(s, n, &key, 1, &sp);
    return tg_json_span_long(s, sp);
}

int tg_json_member_plain_string(const char *s, size_t n, const char *key, char *out, size_t outlen)
{
    tg_json_span_t sp;
    tg_json_members(s, n, &key, 1, &sp);
    return tg_json_span_plain_string(s, sp, out, outlen);
}

/* ---- validation ---- */

typedef struct {
    const char *s;
    size_t n, i;
    const char *why;
} vstate_t;

static bool fail(vstate_t *v, const char *why)
{
    if (!v->why)
        v->why = why;
    return false;
}

static bool hex4(vstate_t *v, unsigned *out)
{
    if (v->n - v->i < 4)
        return fail(v, "truncated \\u escape");
    unsigned x = 0;
    for (int k = 0; k < 4; k++) {
        char c = v->s[v->i++];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (unsigned)(c - 'A' + 10);
        else
            return fail(v, "bad \\u escape");
    }
    *out = x;
    return true;
}

/* One UTF-8 sequence starting at v->i (first byte >= 0x80). */
static bool utf8_seq(vstate_t *v)
{
    const unsigned char *u = (const unsigned char *)v->s;
    unsigned c = u[v->i];
    int len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return fail(v, "invalid UTF-8");
    if (v->n - v->i < (size_t)len)
        return fail(v, "invalid UTF-8");
    unsigned cp = c & (0xFF >> (len + 1));
    for (int k = 1; k < len; k++) {
        unsigned b = u[v->i + (size_t)k];
        if ((b & 0xC0) != 0x80)
            return fail(v, "invalid UTF-8");
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(v, "invalid UTF-8");
    v->i += (size_t)len;
    return true;
}

/* A byte a string holds as it is: printable ASCII but '"' and '\\'. A
 * table: one load per byte in the loop that reads the bulk of a body. */
#define P16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
#define Z16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char plain_tab[256] = {
    Z16, Z16,                                                      /* 0x00-0x1f: controls */
    1,   1,   0,   1,   1,   1,   1,   1,  1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: '"' at 0x22 */
    P16, P16,                                                      /* 0x30-0x4f */
    1,   1,   1,   1,   1,   1,   1,   1,  1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: '\\' at 0x5c */
    P16, P16,                                                      /* 0x60-0x7f */
    Z16, Z16, Z16, Z16, Z16, Z16, Z16, Z16};                       /* 0x80-0xff: UTF-8 */
#undef P16
#undef Z16

static inline bool plain_char(unsigned char c)
{
    return plain_tab[c];
}

static bool v_string(vstate_t *v)
{
    const unsigned char *u = (const unsigned char *)v->s;
    v->i++; /* opening quote */
    while (v->i < v->n) {
        while (v->i < v->n && plain_char(u[v->i])) /* the common case, in a tight loop */
            v->i++;
        if (v->i >= v->n)
            break;
        unsigned char c = u[v->i];
        if (c == '"') {
            v->i++;
            return true;
        }
        if (c < 0x20)
            return fail(v, "control character in string");
        if (c >= 0x80) {
            if (!utf8_seq(v))
                return false;
            continue;
        }
        v->i++;
        if (c != '\\')
            continue;
        if (v->i >= v->n)
            break;
        char e = v->s[v->i++];
        if (e == 'u') {
            unsigned x, y;
            if (!hex4(v, &x))
                return false;
            /* Surrogates only as a pair, as jansson (which parses the same
             * bodies elsewhere) requires. */
            if (x >= 0xDC00 && x <= 0xDFFF)
                return fail(v, "lone surrogate in \\u escape");
            if (x >= 0xD800 && x <= 0xDBFF) {
                if (v->n - v->i < 2 || v->s[v->i] != '\\' || v->s[v->i + 1] != 'u')
                    return fail(v, "lone surrogate in \\u escape");
                v->i += 2;
                if (!hex4(v, &y))
                    return false;
                if (y < 0xDC00 || y > 0xDFFF)
                    return fail(v, "lone surrogate in \\u escape");
            }
        } else if (!strchr("\"\\/bfnrt", e) || !e) {
            return fail(v, "bad escape in string");
        }
    }
    return fail(v, "unterminated string");
}

static bool v_number(vstate_t *v)
{
    const char *s = v->s;
    size_t i = v->i;
    if (i < v->n && s[i] == '-')
        i++;
    if (i >= v->n)
        return fail(v, "bad number");
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < v->n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return fail(v, "unexpected character");
    if (i < v->n && s[i] == '.') {
        i++;
        if (i >= v->n || s[i] < '0' || s[i] > '9')
            return fail(v, "bad number");
        while (i < v->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < v->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < v->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= v->n || s[i] < '0' || s[i] > '9')
            return fail(v, "bad number");
        while (i < v->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    v->i = i;
    return true;
}

static bool v_literal(vstate_t *v, const char *word)
{
    size_t k = strlen(word);
    if (v->n - v->i < k || memcmp(v->s + v->i, word, k) != 0)
        return fail(v, "unexpected character");
    v->i += k;
    return true;
}

#define MAX_DEPTH 512

/* Which of keys[0..nkeys) a key spelled json[a..b) is, or nkeys. */
static size_t key_index(const char *json, size_t a, size_t b, const char *const *keys, size_t nkeys)
{
    for (size_t k = 0; k < nkeys; k++)
        if (keys[k][0] == json[a] && !strncmp(json + a, keys[k], b - a) && !keys[k][b - a])
            return k;
    return nkeys;
}

/* Iterative: the containers' kinds on a small stack, so no input can
 * exhaust the C stack. The top-level object's members asked for are
 * noted on the way (a member's value ends where the walk comes back to
 * depth 1 after it). */
bool tg_json_valid_members(const char *json, size_t len, const char *const *keys, size_t nkeys,
                           tg_json_span_t *out, size_t *err_offset, const char **err_reason)
{
    vstate_t v = {.s = json, .n = len};
    char stack[MAX_DEPTH];
    int depth = 0;
    enum { VALUE, AFTER_VALUE, KEY_OR_END, KEY } want = VALUE;
    bool ok = true;
    size_t key = nkeys, vstart = 0; /* the member being read at depth 1, if asked for */
    if (nkeys)
        memset(out, 0, nkeys * sizeof *out);
    v.i = skip_ws(json, 0, len);
    for (;;) {
        if (want == VALUE) {
            if (depth == 1 && stack[0] == '{')
                vstart = v.i;
            if (v.i >= len) {
                ok = fail(&v, "unexpected end of input");
                break;
            }
            char c = json[v.i];
            if (c == '{' || c == '[') {
                if (depth == MAX_DEPTH) {
                    ok = fail(&v, "nested too deeply");
                    break;
                }
                stack[depth++] = c;
                v.i = skip_ws(json, v.i + 1, len);
                if (v.i < len && json[v.i] == (c == '{' ? '}' : ']')) {
                    depth--;
                    v.i++;
                    want = AFTER_VALUE;
                } else {
                    want = c == '{' ? KEY : VALUE;
                }
                continue;
            }
            if (c == '"')
                ok = v_string(&v);
            else if (c == 't')
                ok = v_literal(&v, "true");
            else if (c == 'f')
                ok = v_literal(&v, "false");
            else if (c == 'n')
                ok = v_literal(&v, "null");
            else
                ok = v_number(&v);
            if (!ok)
                break;
            want = AFTER_VALUE;
        } else if (want == KEY) {
            v.i = skip_ws(json, v.i, len);
            if (v.i >= len || json[v.i] != '"') {
                ok = fail(&v, "expected a string key");
                break;
            }
            size_t kstart = v.i + 1;
            if (!(ok = v_string(&v)))
                break;
            if (depth == 1 && nkeys)
                key = key_index(json, kstart, v.i - 1, keys, nkeys);
            v.i = skip_ws(json, v.i, len);
            if (v.i >= len || json[v.i] != ':') {
                ok = fail(&v, "expected ':'");
                break;
            }
            v.i = skip_ws(json, v.i + 1, len);
            want = VALUE;
        } else {                             /* AFTER_VALUE */
            if (depth == 1 && key < nkeys) { /* the last occurrence counts */
                out[key] = (tg_json_span_t){.start = vstart, .end = v.i, .found = true};
                key = nkeys;
            }
            v.i = skip_ws(json, v.i, len);
            if (depth == 0)
                break;
            if (v.i >= len) {
                ok = fail(&v, "unexpected end of input");
                break;
            }
            char c = json[v.i];
            char open = stack[depth - 1];
            if (c == ',') {
                v.i = skip_ws(json, v.i + 1, len);
                want = open == '{' ? KEY : VALUE;
            } else if (c == (open == '{' ? '}' : ']')) {
                depth--;
                v.i++;
            } else {
                ok = fail(&v, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
                break;
            }
        }
    }
    if (ok && v.i < len)
        ok = fail(&v, "text after the end of the document");
    if (!ok) {
        if (err_offset)
            *err_offset = v.i;
        if (err_reason)
            *err_reason = v.why;
        if (nkeys)
            memset(out, 0, nkeys * sizeof *out);
    }
    return ok;
}

bool tg_json_valid(const char *json, size_t len, size_t *err_offset, const char **err_reason)
{
    return tg_json_valid_members(json, len, NULL, 0, NULL, err_offset, err_reason);
}
