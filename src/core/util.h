/*
 * util.h — small helpers with no third-party dependencies: a growable byte
 * buffer, string helpers, clocks and request ids. Any thread.
 */
#ifndef TG_UTIL_H
#define TG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A macro's value as a string literal: TG_STR(256) is "256". */
#define TG_STR_(x) #x
#define TG_STR(x)  TG_STR_(x)

/* Marks a definition at a seam the unit tests replace: the client side of
 * an exchange (server/http.h, in server/reply.c) and the calls to
 * providers (proxy/relay.h, in proxy/relay.c). A weak definition in the
 * library lets tests/unit/loopback.c link strong ones of its own into the
 * unit-test binary, without a duplicate symbol, even though other members
 * of those files are pulled in. In the gateway binary nothing else defines
 * them: calls stay direct, the hot path pays no indirection. */
#define TG_REPLACEABLE __attribute__((weak))

/** Growable byte buffer; always NUL-terminated after its data. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} tg_buf_t;

void tg_buf_append(tg_buf_t *b, const void *data, size_t len);
/** Grow b by len bytes and return where they start, for the caller to fill
 *  (one reservation for a record written in many small pieces). */
char *tg_buf_extend(tg_buf_t *b, size_t len);
void tg_buf_puts(tg_buf_t *b, const char *s);
void tg_buf_printf(tg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append v in decimal (no printf: for hot paths). */
void tg_buf_put_i64(tg_buf_t *b, int64_t v);
/** Append s as the content of a JSON string (quotes not added). Bytes that
 *  are not valid UTF-8 become U+FFFD each, so the output is always valid
 *  JSON whatever the input (a path, a header, a provider's answer). */
void tg_buf_json_escape(tg_buf_t *b, const char *s, size_t len);
/** Append OpenAI's error body {"error":{"message","type","code"}}: the one
 *  spelling of that shape, for the layers below the proxy's per-dialect
 *  writer (proxy/reply.h) too — the HTTP refusals, the store's API answers.
 *  code NULL is written as null; every string goes through the escaper. */
void tg_buf_openai_error(tg_buf_t *b, const char *message, const char *type, const char *code);
void tg_buf_reset(tg_buf_t *b);
void tg_buf_free(tg_buf_t *b);

/** Writes v in lower-case hexadecimal, without leading zeros ("0" for 0),
 *  into out (room for 16 digits) and returns how many digits: a chunk-size
 *  line without printf, once per streamed write. */
size_t tg_put_hex(char out[16], uint64_t v);

/** True when needle occurs in s[0..len). s must be NUL-terminated at len (a
 *  tg_buf's data; an event's data as tg_sse_feed passes it): glibc's strstr,
 *  vectorised, then does the search, several times cheaper than memmem on the
 *  short documents of a stream's events; memmem when s holds a NUL before
 *  len. */
bool tg_str_contains(const char *s, size_t len, const char *needle);

/** malloc/strdup that abort on out-of-memory. */
void *tg_xmalloc(size_t n);
void *tg_xcalloc(size_t n, size_t size);
void *tg_xrealloc(void *p, size_t n);
char *tg_xstrdup(const char *s);
char *tg_xstrndup(const char *s, size_t n);

/** The value of a hex digit (either case), or -1. */
int tg_hexval(char c);

/** Fold s to lower case in place, ASCII letters only (as SQLite's NOCASE). */
void tg_ascii_lower(char *s);

/** The length of the valid UTF-8 sequence at s[0..n) (1 for ASCII), or 0
 *  when s starts with a byte that begins none. */
size_t tg_utf8_seq(const unsigned char *s, size_t n);

/**
 * A copy of s (free() it) with the secrets of connection strings masked,
 * for every log line, error and answer that can show a storage or Redis
 * URL: the password of a URL's user info (scheme://user:PASS@host ->
 * scheme://user:***@host) and the value of a `password=...` keyword
 * (keyword/value strings, query parameters). NULL gives NULL.
 */
char *tg_redact_secrets(const char *s);

/** write(2) all n bytes, again after EINTR or a short write. False (errno
 *  set) on an error; some bytes may have been written then. */
bool tg_write_all(int fd, const void *p, size_t n);

/** An ASCII letter in lower case; any other byte as it is (header names
 *  are ASCII tokens: no locale applies). */
static inline unsigned char tg_lower_byte(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/** Case-insensitive (ASCII) prefix test. */
bool tg_has_prefix_ci(const char *s, const char *prefix);

/* A fixed set of header names: compared only where the length matches, the
 * common miss costs one integer compare per name instead of a strcasecmp. */
typedef struct {
    const char *s;
    size_t n;
} tg_name_t;
#define TG_NAME(lit)                                                                               \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }
/* Whether name, of length n, is in set[0..count), ignoring ASCII case. */
bool tg_name_in(const char *name, size_t n, const tg_name_t *set, size_t count);

/** Whether a header is one a proxy never copies from one hop to the next
 *  (RFC 9110 7.6.1's hop-by-hop headers, and the framing it sets itself:
 *  content-length, transfer-encoding). */
bool tg_hop_by_hop(const char *name, size_t n);

/** Monotonic milliseconds / microseconds, and wall-clock milliseconds since the epoch. */
int64_t tg_mono_ms(void);
int64_t tg_mono_us(void);
int64_t tg_wall_ms(void);

/** 64 random bits from a per-thread generator seeded by the kernel (not for keys). */
uint64_t tg_random_u64(void);

/** A random UUID v4 into out (37 bytes with NUL). Thread-safe, fast. */
void tg_uuid4(char out[37]);

/** A UUID v7 (RFC 9562): 48 bits of Unix ms, then random bits. Ids that grow
 *  with time keep the store's id index appending instead of writing all over it. */
void tg_uuid7(char out[37], int64_t unix_ms);

/** True when tz is "UTC" or names a zone of the system's tz database: a
 *  readable file under $TZDIR or /usr/share/zoneinfo, with no "..", no
 *  leading '/', only letters, digits, '/', '_', '-', '+'. */
bool tg_tz_name_valid(const char *tz);

#endif
