/*
 * util.c — see util.h. Any thread; the UUID generator keeps per-thread state
 * seeded from getrandom(2).
 */
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

bool tg_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static void oom(void)
{
    fputs("tollgate: out of memory\n", stderr);
    abort();
}

void *tg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *tg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *tg_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *tg_xstrdup(const char *s)
{
    return tg_xstrndup(s, strlen(s));
}

char *tg_xstrndup(const char *s, size_t n)
{
    char *p = tg_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static void buf_reserve(tg_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = tg_xrealloc(b->data, cap);
    b->cap = cap;
}

void tg_buf_append(tg_buf_t *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

char *tg_buf_extend(tg_buf_t *b, size_t len)
{
    buf_reserve(b, len);
    char *p = b->data + b->len;
    b->len += len;
    b->data[b->len] = 0;
    return p;
}

void tg_buf_puts(tg_buf_t *b, const char *s)
{
    tg_buf_append(b, s, strlen(s));
}

void tg_buf_printf(tg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t tg_put_hex(char out[16], uint64_t v)
{
    size_t n = 0;
    for (uint64_t t = v; t; t >>= 4)
        n++;
    if (n == 0)
        n = 1;
    for (size_t i = n; i > 0; i--, v >>= 4)
        out[i - 1] = "0123456789abcdef"[v & 15];
    return n;
}

bool tg_str_contains(const char *s, size_t len, const char *needle)
{
    if (strlen(s) != len) /* a NUL inside: strstr would stop at it */
        return memmem(s, len, needle, strlen(needle)) != NULL;
    return strstr(s, needle) != NULL;
}

void tg_buf_put_i64(tg_buf_t *b, int64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    tg_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
size_t tg_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] > 0x8F)
            return 0;
        return 4;
    }
    return 0;
}

void tg_buf_json_escape(tg_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t seq = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = 0;
            esc = ubuf;
        } else if (c >= 0x80) {
            seq = tg_utf8_seq(u + i, len - i);
            if (!seq) {
                esc = "\xEF\xBF\xBD"; /* U+FFFD for one bad byte */
                seq = 1;
            }
        }
        if (esc) {
            tg_buf_append(b, s + run, i - run);
            tg_buf_puts(b, esc);
            run = i + seq;
        }
        i += seq;
    }
    tg_buf_append(b, s + run, len - run);
}

static void put_json_string(tg_buf_t *b, const char *s)
{
    tg_buf_append(b, "\"", 1);
    tg_buf_json_escape(b, s, strlen(s));
    tg_buf_append(b, "\"", 1);
}

void tg_buf_openai_error(tg_buf_t *b, const char *message, const char *type, const char *code)
{
    tg_buf_puts(b, "{\"error\":{\"message\":");
    put_json_string(b, message);
    tg_buf_puts(b, ",\"type\":");
    put_json_string(b, type);
    tg_buf_puts(b, ",\"code\":");
    if (code)
        put_json_string(b, code);
    else
        tg_buf_puts(b, "null");
    tg_buf_puts(b, "}}");
}

void tg_buf_reset(tg_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void tg_buf_free(tg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tg_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* By hand: it runs for every header of every request, mostly on names
 * that differ in their first byte, where a library call costs more than
 * the compare. */
bool tg_has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (*s != *prefix &&
            tg_lower_byte((unsigned char)*s) != tg_lower_byte((unsigned char)*prefix))
            return false; /* also at the end of s: its NUL meets a prefix byte */
    return true;
}

bool tg_name_in(const char *name, size_t n, const tg_name_t *set, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (set[i].n == n && !strncasecmp(name, set[i].s, n))
            return true;
    return false;
}

bool tg_hop_by_hop(const char *name, size_t n)
{
    static const tg_name_t names[] = {TG_NAME("connection"),
                                      TG_NAME("keep-alive"),
                                      TG_NAME("proxy-connection"),
                                      TG_NAME("transfer-encoding"),
                                      TG_NAME("te"),
                                      TG_NAME("trailer"),
                                      TG_NAME("upgrade"),
                                      TG_NAME("content-length"),
                                      TG_NAME("proxy-authenticate")};
    return tg_name_in(name, n, names, sizeof names / sizeof names[0]);
}

int64_t tg_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tg_mono_ms(void)
{
    return tg_mono_us() / 1000;
}

int64_t tg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xoshiro256** per thread, seeded from the kernel. */
static _Thread_local uint64_t rng[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng) {
            /* getrandom cannot fail for 32 bytes once the pool is ready; be safe anyway */
            rng[0] = (uint64_t)tg_mono_us() | 1;
            rng[1] = (uint64_t)(uintptr_t)&rng;
            rng[2] = 0x9e3779b97f4a7c15ull;
            rng[3] = (uint64_t)tg_wall_ms();
        }
        rng_seeded = 1;
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9;
    uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

uint64_t tg_random_u64(void)
{
    return rng_next();
}

void tg_uuid4(char out[37])
{
    uint8_t b[16];
    uint64_t a = rng_next(), c = rng_next();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = 0;
}

void tg_uuid7(char out[37], int64_t unix_ms)
{
    static const char hex[] = "0123456789abcdef";
    static const int pos[12] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12};
    tg_uuid4(out); /* random, variant set; the time replaces the first 48 bits */
    uint64_t t = (uint64_t)unix_ms & 0xFFFFFFFFFFFFull;
    for (int i = 11; i >= 0; i--) {
        out[pos[i]] = hex[t & 15];
        t >>= 4;
    }
    out[14] = '7';
}

bool tg_tz_name_valid(const char *tz)
{
    if (!tz || !*tz || strlen(tz) > 200)
        return false;
    if (!strcmp(tz, "UTC"))
        return true;
    if (tz[0] == '/' || strstr(tz, ".."))
        return false;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return false;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    return access(path, R_OK) == 0;
}

/* Whether s[0..n) starts with `word` (ASCII, either case). */
static bool starts_nocase(const char *s, size_t n, const char *word)
{
    size_t k = strlen(word);
    return n >= k && !strncasecmp(s, word, k);
}

char *tg_redact_secrets(const char *s)
{
    if (!s)
        return NULL;
    tg_buf_t b = {0};
    size_t n = strlen(s);
    tg_buf_append(&b, "", 0);
    for (size_t i = 0; i < n;) {
        /* scheme://user:PASSWORD@host: the user info ends at the first
         * '@' before the next '/', '?', '#' or space */
        if (s[i] == ':' && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') {
            size_t u = i + 3, end = u, at = 0;
            while (end < n && !strchr("/?# \t\r\n'\"", s[end])) {
                if (s[end] == '@')
                    at = end; /* the last one: a password may hold '@' */
                end++;
            }
            const char *colon = at ? memchr(s + u, ':', at - u) : NULL;
            if (colon) {
                tg_buf_append(&b, s + i, (size_t)(colon - s) + 1 - i);
                tg_buf_puts(&b, "***");
                i = at;
                continue;
            }
            /* redis://SECRET@host: Redis reads a lone user info as the
             * password (src/redis/redis.c) */
            size_t k = i;
            while (k > 0 && isalpha((unsigned char)s[k - 1]))
                k--;
            if (at && ((i - k == 5 && starts_nocase(s + k, n - k, "redis")) ||
                       (i - k == 6 && starts_nocase(s + k, n - k, "rediss")))) {
                tg_buf_puts(&b, "://***");
                i = at;
                continue;
            }
            tg_buf_append(&b, s + i, 3);
            i += 3;
            continue;
        }
        /* password=VALUE (keyword/value strings, URL query parameters):
         * the value runs to a space, '&' or ';', or is quoted '...' */
        bool word_start = i == 0 || (!isalnum((unsigned char)s[i - 1]) && s[i - 1] != '_');
        size_t j = i + 8;
        if (word_start && starts_nocase(s + i, n - i, "password")) {
            while (j < n && s[j] == ' ')
                j++;
        }
        if (word_start && starts_nocase(s + i, n - i, "password") && j < n && s[j] == '=') {
            for (j++; j < n && s[j] == ' ';)
                j++;
            tg_buf_append(&b, s + i, j - i);
            tg_buf_puts(&b, "***");
            if (j < n && s[j] == '\'') {
                for (j++; j < n && s[j] != '\''; j++)
                    if (s[j] == '\\' && j + 1 < n)
                        j++;
                j += j < n;
            } else {
                while (j < n && !strchr(" \t\r\n&;", s[j]))
                    j++;
            }
            i = j;
            continue;
        }
        tg_buf_append(&b, s + i, 1);
        i++;
    }
    return b.data;
}

void tg_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}
