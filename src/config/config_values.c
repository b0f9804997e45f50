/*
 * config_values.c — conversions of configuration scalars: ${VAR} expansion,
 * booleans, integers, numbers, sizes, durations, thresholds and addresses.
 *
 * Pure functions of their arguments (expansion also reads the environment).
 * They run on the thread that loads the config: main, at start-up and on
 * SIGHUP. Numbers are strict: the whole string must be consumed, and only
 * plain decimal notation is accepted (no hex, inf or nan).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest size or duration accepted: far beyond any sane setting, and well
 * inside int64_t so that callers may add to it without overflow. */
#define MAX_SCALED 4.0e18

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf_t;

static void sb_append(strbuf_t *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 64;
        while (cap < sb->len + n + 1)
            cap *= 2;
        char *p = realloc(sb->buf, cap);
        if (!p)
            abort();
        sb->buf = p;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

int tg_config_expand_env(const char *in, char **out, const char **why)
{
    strbuf_t sb = {0};
    sb_append(&sb, "", 0);
    const char *p = in;
    while (*p) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            sb_append(&sb, "${", 2);
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            sb_append(&sb, p, 1);
            p++;
            continue;
        }
        const char *name = p + 2, *q = name;
        if (!(isalpha((unsigned char)*q) || *q == '_')) {
            *why = "bad ${...}: a variable name starts with a letter or '_'";
            goto fail;
        }
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        size_t name_len = (size_t)(q - name);
        const char *def = NULL;
        size_t def_len = 0;
        if (q[0] == ':' && q[1] == '-') {
            def = q + 2;
            const char *end = strchr(def, '}');
            if (!end) {
                *why = "unterminated ${...}";
                goto fail;
            }
            def_len = (size_t)(end - def);
            q = end;
        }
        if (*q != '}') {
            *why = *q ? "bad ${...}: expected ${NAME} or ${NAME:-default}" : "unterminated ${...}";
            goto fail;
        }
        char *var = strndup(name, name_len);
        if (!var)
            abort();
        const char *val = getenv(var);
        free(var);
        if (def && (!val || !*val))
            sb_append(&sb, def, def_len);
        else if (val)
            sb_append(&sb, val, strlen(val));
        p = q + 1;
    }
    *out = sb.buf;
    return 0;
fail:
    free(sb.buf);
    return -1;
}

int tg_config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int tg_config_parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int tg_config_parse_number(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Reads an unsigned decimal "12", "1.5" or ".5" (after optional blanks) and
 * leaves *rest at the first character after it, blanks skipped. */
static int scan_decimal(const char *s, double *v, const char **rest)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *p = s;
    size_t digits = strspn(p, "0123456789");
    p += digits;
    if (*p == '.') {
        size_t frac = strspn(p + 1, "0123456789");
        digits += frac;
        p += 1 + frac;
    }
    if (!digits || p - s > 64)
        return -1;
    char num[72];
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = '\0';
    *v = strtod(num, NULL);
    while (isspace((unsigned char)*p))
        p++;
    *rest = p;
    return 0;
}

/* Case-insensitive comparison of the unit at `u` (trailing blanks allowed). */
static bool unit_is(const char *u, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(u, name, n) != 0)
        return false;
    for (u += n; *u; u++)
        if (!isspace((unsigned char)*u))
            return false;
    return true;
}

int tg_config_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1.0},
        {"b", 1.0},
        {"k", 1024.0},
        {"kb", 1024.0},
        {"kib", 1024.0},
        {"m", 1048576.0},
        {"mb", 1048576.0},
        {"mib", 1048576.0},
        {"g", 1073741824.0},
        {"gb", 1073741824.0},
        {"gib", 1073741824.0},
        {"t", 1099511627776.0},
        {"tb", 1099511627776.0},
        {"tib", 1099511627776.0},
    };
    double v;
    const char *u;
    if (!s || scan_decimal(s, &v, &u) < 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (unit_is(u, units[i].unit)) {
            double bytes = v * units[i].mult;
            if (bytes > MAX_SCALED)
                return -1;
            *out = (int64_t)llround(bytes);
            return 0;
        }
    }
    return -1;
}

int tg_config_parse_duration(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {
        {"", 1000.0},   {"ms", 1.0},      {"s", 1000.0},
        {"m", 60000.0}, {"h", 3600000.0}, {"d", 86400000.0},
    };
    double v;
    const char *u;
    if (!s || scan_decimal(s, &v, &u) < 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (unit_is(u, units[i].unit)) {
            double ms = v * units[i].ms;
            if (ms > MAX_SCALED)
                return -1;
            *out_ms = (int64_t)llround(ms);
            return 0;
        }
    }
    return -1;
}

int tg_config_parse_threshold(const char *s, double *out)
{
    size_t n = strlen(s);
    bool percent = n > 0 && s[n - 1] == '%';
    char num[64];
    if (n >= sizeof num)
        return -1;
    memcpy(num, s, n + 1);
    if (percent)
        num[n - 1] = '\0';
    double v;
    if (tg_config_parse_number(num, &v) < 0 || v <= 0)
        return -1;
    /* "80%" and 80 are percentages; 0.8 and 1 are fractions. */
    *out = (percent || v > 1) ? v / 100.0 : v;
    return 0;
}

int tg_config_check_ip(const char *s)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr)
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    unsigned char bin[16];
    int max_prefix;
    if (inet_pton(AF_INET, addr, bin) == 1)
        max_prefix = 32;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
        max_prefix = 128;
    else
        return -1;
    if (!slash)
        return 0;
    const char *pfx = slash + 1;
    size_t nd = strspn(pfx, "0123456789");
    if (nd == 0 || nd > 3 || pfx[nd])
        return -1;
    return atoi(pfx) <= max_prefix ? 0 : -1;
}
