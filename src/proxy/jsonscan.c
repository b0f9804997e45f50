/*
 * jsonscan.c — see jsonscan.h. A scanner, not a validator: on malformed
 * input it stops and reports "not found"; it never reads past len.
 */
#include "proxy/jsonscan.h"

#include <string.h>

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] == '"'; returns the index after the closing quote, or n. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

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
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
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

bool tg_json_member(const char *s, size_t n, const char *key, size_t *vstart, size_t *vend)
{
    size_t klen = strlen(key);
    size_t i = tg_json_object_start(s, n);
    if (!i)
        return false;
    for (;;) {
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != '"')
            return false; /* '}' (end) or malformed */
        size_t kstart = i + 1;
        i = skip_string(s, i, n);
        if (i >= n)
            return false;
        bool match = i - 1 - kstart == klen && !memcmp(s + kstart, key, klen);
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != ':')
            return false;
        i = skip_ws(s, i + 1, n);
        size_t v = i;
        i = skip_value(s, i, n);
        /* In a well-formed object a value is always followed by ',' or '}'. */
        if (i >= n)
            return false;
        if (match) {
            if (i <= v)
                return false;
            *vstart = v;
            *vend = i;
            return true;
        }
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != ',')
            return false;
        i++;
    }
}
