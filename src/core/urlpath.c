/*
 * urlpath.c — see urlpath.h. One pass over the path: each byte is decoded
 * once and fed to the state of the current piece (the text between two
 * slashes, raw or decoded); a piece that ends as a dot-segment, a decoded
 * byte no path should hold, or broken UTF-8 refuses the whole path. Pure;
 * any thread.
 */
#include "core/urlpath.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The piece being read: whether what came before any ';' was only dots and
 * spaces with at least one dot. */
typedef struct {
    bool in_params; /* after a ';' */
    bool dots_only; /* no byte but '.' or ' ' so far (before ';') */
    bool has_dot;
} piece_t;

static const piece_t new_piece = {false, true, false};

static bool dot_segment(const piece_t *p)
{
    return p->dots_only && p->has_dot;
}

/* UTF-8 of the decoded bytes (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). need: continuation bytes still expected; lo, hi:
 * the range the next one must fall in; cp: the code point so far. */
typedef struct {
    int need;
    unsigned char lo, hi;
    uint32_t cp;
} utf8_t;

/* Code points that Unicode compatibility folding (NFKC, which some servers
 * apply to paths) turns into '.', "..", "...", '/' or '\'. */
static bool folds_to_dot_or_slash(uint32_t cp)
{
    static const uint32_t look_alikes[] = {0x2024, 0x2025, 0x2026, 0xFE52,
                                           0xFE68, 0xFF0E, 0xFF0F, 0xFF3C};
    for (size_t i = 0; i < sizeof look_alikes / sizeof look_alikes[0]; i++)
        if (cp == look_alikes[i])
            return true;
    return false;
}

/* Takes the next decoded byte; false when the bytes are not UTF-8 or end a
 * look-alike of '.' or a slash. */
static bool utf8_step(utf8_t *u, unsigned char c)
{
    if (u->need) {
        if (c < u->lo || c > u->hi)
            return false;
        u->cp = u->cp << 6 | (c & 0x3F);
        u->lo = 0x80;
        u->hi = 0xBF;
        return --u->need || !folds_to_dot_or_slash(u->cp);
    }
    if (c < 0x80)
        return true;
    /* RFC 3629's table: a lead byte, how many bytes follow, its payload
     * bits, and the range of the byte after it */
    static const struct {
        unsigned char from, to, need, bits, lo, hi;
    } leads[] = {
        {0xC2, 0xDF, 1, 0x1F, 0x80, 0xBF}, {0xE0, 0xE0, 2, 0x0F, 0xA0, 0xBF},
        {0xE1, 0xEC, 2, 0x0F, 0x80, 0xBF}, {0xED, 0xED, 2, 0x0F, 0x80, 0x9F},
        {0xEE, 0xEF, 2, 0x0F, 0x80, 0xBF}, {0xF0, 0xF0, 3, 0x07, 0x90, 0xBF},
        {0xF1, 0xF3, 3, 0x07, 0x80, 0xBF}, {0xF4, 0xF4, 3, 0x07, 0x80, 0x8F},
    };
    for (size_t i = 0; i < sizeof leads / sizeof leads[0]; i++) {
        if (c >= leads[i].from && c <= leads[i].to) {
            u->need = leads[i].need;
            u->cp = c & leads[i].bits;
            u->lo = leads[i].lo;
            u->hi = leads[i].hi;
            return true;
        }
    }
    return false;
}

int tg_urlpath_check(const char *path, size_t len, unsigned flags)
{
    if (!len)
        return 0;
    if (path[0] != '/')
        return -1;
    piece_t piece = new_piece;
    utf8_t u = {0, 0x80, 0xBF, 0};
    for (size_t i = 1; i <= len; i++) {
        if (i == len || path[i] == '/') { /* a raw segment ends */
            if (dot_segment(&piece) || u.need)
                return -1;
            piece = new_piece;
            continue;
        }
        unsigned char c = (unsigned char)path[i];
        bool encoded = false;
        if (c < 0x21 || c > 0x7E || c == '\\' || c == '?' || c == '#')
            return -1;
        if (c == '%') {
            int h1 = i + 2 < len ? tg_hexval(path[i + 1]) : -1;
            int h2 = h1 >= 0 ? tg_hexval(path[i + 2]) : -1;
            if (h2 < 0)
                return -1;
            c = (unsigned char)(h1 * 16 + h2);
            i += 2;
            encoded = true;
        }
        if (!utf8_step(&u, c))
            return -1;
        if (c < 0x20 || c == 0x7F)
            return -1; /* NUL and the other controls: no path needs them */
        if (encoded && (c == '/' || c == '\\')) {
            /* a server that decodes before splitting sees a new piece */
            if ((flags & TG_URLPATH_STRICT) || dot_segment(&piece))
                return -1;
            piece = new_piece;
            continue;
        }
        if (piece.in_params)
            continue;
        if (c == ';')
            piece.in_params = true;
        else if (c == '.')
            piece.has_dot = true;
        else if (c != ' ')
            piece.dots_only = false;
    }
    return 0;
}

int tg_urlquery_check(const char *query)
{
    for (const unsigned char *p = (const unsigned char *)query; p && *p; p++)
        if (*p < 0x21 || *p > 0x7E || *p == '#')
            return -1;
    return 0;
}

void tg_urlpath_put_segment(tg_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            tg_buf_append(b, &c, 1);
        else
            tg_buf_printf(b, "%%%02X", c);
    }
}

char *tg_url_shown(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    const char *path_end = end + strcspn(end, "?#");
    tg_buf_t b = {0};
    tg_buf_append(&b, url, (size_t)(host - url));
    tg_buf_append(&b, at ? at + 1 : host, (size_t)(path_end - (at ? at + 1 : host)));
    return b.data;
}
