/*
 * record.c — the request record (see record.h): building, freeing, the API
 * and spool JSON forms, and the RFC 3339 time helpers the store uses.
 *
 * Owns the record's memory. Invariants: every string the encoder writes is
 * valid UTF-8 JSON (bad bytes become U+FFFD); the spool form round-trips
 * every field through tg_record_from_spool (strings after that repair);
 * unknown numbers are -1 in C and null in JSON, never 0.
 *
 * Any thread; a record is used by one thread at a time.
 */
#include "store/record.h"

#include "core/jsonscan.h"
#include "cost/cost.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- building ---- */

tg_record_t *tg_record_new(void)
{
    tg_record_t *r = tg_xcalloc(1, sizeof *r);
    char id[37];
    r->created_at_ms = tg_wall_ms();
    tg_uuid7(id, r->created_at_ms);
    r->id = tg_xstrdup(id);
    r->latency_ms = -1;
    r->ttft_ms = -1;
    r->usage = (tg_usage_t)TG_USAGE_UNKNOWN;
    r->cost_nusd = -1;
    r->cache_saved_nusd = -1;
    r->cache = TG_RECORD_CACHE_NONE;
    r->fallback_index = 0;
    return r;
}

void tg_record_free(tg_record_t *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->provider);
    free(r->model);
    free(r->model_requested);
    free(r->route);
    free(r->user_id);
    free(r->session_id);
    free(r->session_name);
    free(r->session_path);
    for (size_t i = 0; i < r->n_props; i++) {
        free(r->props[i].name);
        free(r->props[i].value);
    }
    free(r->props);
    free(r->key_name);
    free(r->client_ip);
    free(r->error);
    free(r->request_body);
    free(r->response_body);
    free(r);
}

void tg_record_set_str(char **field, const char *s)
{
    free(*field);
    *field = s ? tg_xstrdup(s) : NULL;
}

void tg_record_set_property(tg_record_t *r, const char *name, const char *value)
{
    if (!name || !*name)
        return;
    for (size_t i = 0; i < r->n_props; i++) {
        if (!strcasecmp(r->props[i].name, name)) {
            tg_record_set_str(&r->props[i].value, value ? value : "");
            return;
        }
    }
    r->props = tg_xrealloc(r->props, (r->n_props + 1) * sizeof *r->props);
    r->props[r->n_props].name = tg_xstrdup(name);
    r->props[r->n_props].value = tg_xstrdup(value ? value : "");
    r->n_props++;
}

void tg_record_set_body(tg_record_t *r, bool response, const char *data, size_t len, int64_t max)
{
    char **field = response ? &r->response_body : &r->request_body;
    size_t *flen = response ? &r->response_body_len : &r->request_body_len;
    free(*field);
    *field = NULL;
    *flen = 0;
    if (!data)
        return;
    if (max >= 0 && len > (uint64_t)max) {
        size_t cut = (size_t)max;
        /* data[cut] continues a UTF-8 sequence: cut before its lead byte */
        if (((unsigned char)data[cut] & 0xC0) == 0x80) {
            size_t j = cut;
            while (j > 0 && cut - j < 3 && ((unsigned char)data[j - 1] & 0xC0) == 0x80)
                j--;
            if (j > 0 && ((unsigned char)data[j - 1] & 0xC0) == 0xC0)
                cut = j - 1;
        }
        len = cut;
    }
    *field = tg_xstrndup(data, len);
    *flen = len;
    if (response)
        r->response_body_slack = 0;
}

void tg_record_take_body(tg_record_t *r, tg_buf_t *b, int64_t max)
{
    if (!b->data || (max >= 0 && b->len > (uint64_t)max)) {
        tg_record_set_body(r, true, b->data, b->len, max);
        return;
    }
    free(r->response_body);
    r->response_body = b->data; /* NUL-terminated at len, as every tg_buf */
    r->response_body_len = b->len;
    r->response_body_slack = b->cap - b->len - 1;
    *b = (tg_buf_t){0};
}

void tg_record_set_stored_body(tg_record_t *r, bool response, const char *p, size_t n)
{
    char *raw;
    size_t len;
    if (!tg_body_expand(p, n, &raw, &len)) {
        tg_record_set_body(r, response, p, n, -1);
        return;
    }
    char **field = response ? &r->response_body : &r->request_body;
    free(*field);
    *field = raw;
    *(response ? &r->response_body_len : &r->request_body_len) = len;
    if (response)
        r->response_body_slack = 0;
}

size_t tg_record_size(const tg_record_t *r)
{
    size_t n = sizeof *r + 256; /* the small strings, roughly */
    n += r->request_body_len + r->response_body_len + r->response_body_slack;
    if (r->error)
        n += strlen(r->error);
    for (size_t i = 0; i < r->n_props; i++)
        n += strlen(r->props[i].name) + strlen(r->props[i].value) + 2 * sizeof(char *);
    return n;
}

const char *tg_record_cache_name(tg_record_cache_t c)
{
    switch (c) {
    case TG_RECORD_CACHE_HIT: return "hit";
    case TG_RECORD_CACHE_MISS: return "miss";
    default: return "none";
    }
}

int tg_record_cache_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcmp(s, "hit"))
        return TG_RECORD_CACHE_HIT;
    if (!strcmp(s, "miss"))
        return TG_RECORD_CACHE_MISS;
    if (!strcmp(s, "none"))
        return TG_RECORD_CACHE_NONE;
    return -1;
}

/* ---- JSON ---- */

void tg_record_json_str(tg_buf_t *out, const char *s, size_t len)
{
    tg_buf_append(out, "\"", 1);
    tg_buf_json_escape(out, s, len);
    tg_buf_append(out, "\"", 1);
}

void tg_record_props_json(const tg_record_t *r, tg_buf_t *out)
{
    tg_buf_append(out, "{", 1);
    for (size_t i = 0; i < r->n_props; i++) {
        if (i)
            tg_buf_append(out, ",", 1);
        tg_record_json_str(out, r->props[i].name, strlen(r->props[i].name));
        tg_buf_append(out, ":", 1);
        tg_record_json_str(out, r->props[i].value, strlen(r->props[i].value));
    }
    tg_buf_append(out, "}", 1);
}

static void key(tg_buf_t *b, const char *k, bool *first)
{
    if (!*first)
        tg_buf_append(b, ",", 1);
    *first = false;
    tg_buf_append(b, "\"", 1);
    tg_buf_puts(b, k);
    tg_buf_append(b, "\":", 2);
}

static void put_str(tg_buf_t *b, const char *k, const char *v, bool *first)
{
    key(b, k, first);
    if (v)
        tg_record_json_str(b, v, strlen(v));
    else
        tg_buf_puts(b, "null");
}

static void put_num(tg_buf_t *b, const char *k, int64_t v, bool *first)
{
    key(b, k, first);
    if (v < 0)
        tg_buf_puts(b, "null");
    else
        tg_buf_put_i64(b, v);
}

/* API form of a body: JSON stays JSON, anything else becomes a string. */
static void put_body(tg_buf_t *b, const char *k, const char *body, size_t len, bool raw,
                     bool stored, bool *first)
{
    char *expanded = NULL;
    if (stored && tg_body_expand(body, len, &expanded, &len))
        body = expanded; /* a record the store has taken: its bodies may be frames */
    key(b, k, first);
    if (!body)
        tg_buf_puts(b, "null");
    else if (!raw && len && tg_json_valid(body, len, NULL, NULL))
        tg_buf_append(b, body, len);
    else
        tg_record_json_str(b, body, len);
    free(expanded);
}

/* Money: "<name>_nusd" as an integer in the spool, "<name>" in USD (null
 * when unknown) in the API. */
static void put_money(tg_buf_t *b, bool spool, const char *name, int64_t nusd, bool *first)
{
    char k[48];
    if (spool) {
        snprintf(k, sizeof k, "%s_nusd", name);
        put_num(b, k, nusd, first);
        return;
    }
    key(b, name, first);
    if (nusd < 0) {
        tg_buf_puts(b, "null");
    } else {
        char c[32];
        tg_cost_format(nusd, c);
        tg_buf_puts(b, c);
    }
}

void tg_record_to_json(const tg_record_t *r, unsigned flags, tg_buf_t *b)
{
    bool spool = flags & TG_RECORD_JSON_SPOOL;
    bool first = true;
    tg_buf_append(b, "{", 1);
    put_str(b, "id", r->id, &first);
    if (spool) {
        key(b, "created_at_ms", &first);
        tg_buf_put_i64(b, r->created_at_ms);
    } else {
        key(b, "created_at", &first);
        tg_buf_append(b, "\"", 1);
        tg_record_time_format(r->created_at_ms, b);
        tg_buf_append(b, "\"", 1);
    }
    put_str(b, "provider", r->provider, &first);
    put_str(b, "model", r->model, &first);
    put_str(b, "model_requested", r->model_requested, &first);
    put_str(b, "route", r->route, &first);
    key(b, "status", &first);
    tg_buf_put_i64(b, r->status);
    put_num(b, "latency_ms", r->latency_ms, &first);
    put_num(b, "ttft_ms", r->ttft_ms, &first);
    put_num(b, "prompt_tokens", r->usage.prompt_tokens, &first);
    put_num(b, "completion_tokens", r->usage.completion_tokens, &first);
    put_num(b, "cached_tokens", r->usage.cached_tokens, &first);
    put_num(b, "cache_write_tokens", r->usage.cache_write_tokens, &first);
    put_num(b, "reasoning_tokens", r->usage.reasoning_tokens, &first);
    put_money(b, spool, "cost", r->cost_nusd, &first);
    put_str(b, "cache", tg_record_cache_name(r->cache), &first);
    put_money(b, spool, "cache_saved", r->cache_saved_nusd, &first);
    put_str(b, "user_id", r->user_id, &first);
    put_str(b, "session_id", r->session_id, &first);
    put_str(b, "session_name", r->session_name, &first);
    put_str(b, "session_path", r->session_path, &first);
    key(b, "properties", &first);
    tg_record_props_json(r, b);
    put_str(b, "key_name", r->key_name, &first);
    put_str(b, "client_ip", r->client_ip, &first);
    key(b, "retries", &first);
    tg_buf_put_i64(b, r->retries);
    put_num(b, "fallback_index", r->fallback_index, &first);
    put_str(b, "error", r->error, &first);
    if (spool || (flags & TG_RECORD_JSON_BODIES)) {
        put_body(b, "request_body", r->request_body, r->request_body_len, spool, r->bodies_stored,
                 &first);
        put_body(b, "response_body", r->response_body, r->response_body_len, spool,
                 r->bodies_stored, &first);
    }
    tg_buf_append(b, "}", 1);
}

static char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? tg_xstrndup(json_string_value(v), json_string_length(v)) : NULL;
}

static int64_t jint(json_t *o, const char *k, int64_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

tg_record_t *tg_record_from_spool(const char *line, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "id")) ||
        !json_is_integer(json_object_get(o, "created_at_ms"))) {
        json_decref(o);
        return NULL;
    }
    tg_record_t *r = tg_xcalloc(1, sizeof *r);
    r->id = jstr(o, "id");
    r->created_at_ms = jint(o, "created_at_ms", 0);
    r->provider = jstr(o, "provider");
    r->model = jstr(o, "model");
    r->model_requested = jstr(o, "model_requested");
    r->route = jstr(o, "route");
    r->status = (int)jint(o, "status", 0);
    r->latency_ms = jint(o, "latency_ms", -1);
    r->ttft_ms = jint(o, "ttft_ms", -1);
    r->usage.prompt_tokens = (long)jint(o, "prompt_tokens", -1);
    r->usage.completion_tokens = (long)jint(o, "completion_tokens", -1);
    r->usage.cached_tokens = (long)jint(o, "cached_tokens", -1);
    r->usage.cache_write_tokens = (long)jint(o, "cache_write_tokens", -1);
    r->usage.reasoning_tokens = (long)jint(o, "reasoning_tokens", -1);
    r->cost_nusd = jint(o, "cost_nusd", -1);
    r->cache_saved_nusd = jint(o, "cache_saved_nusd", -1);
    json_t *c = json_object_get(o, "cache");
    int cache = json_is_string(c) ? tg_record_cache_parse(json_string_value(c)) : -1;
    r->cache = cache < 0 ? TG_RECORD_CACHE_NONE : (tg_record_cache_t)cache;
    r->user_id = jstr(o, "user_id");
    r->session_id = jstr(o, "session_id");
    r->session_name = jstr(o, "session_name");
    r->session_path = jstr(o, "session_path");
    json_t *props = json_object_get(o, "properties");
    const char *pk;
    json_t *pv;
    json_object_foreach(props, pk, pv)
    {
        if (json_is_string(pv))
            tg_record_set_property(r, pk, json_string_value(pv));
    }
    r->key_name = jstr(o, "key_name");
    r->client_ip = jstr(o, "client_ip");
    r->retries = (int)jint(o, "retries", 0);
    r->fallback_index = (int)jint(o, "fallback_index", -1);
    r->error = jstr(o, "error");
    json_t *rb = json_object_get(o, "request_body");
    if (json_is_string(rb))
        tg_record_set_body(r, false, json_string_value(rb), json_string_length(rb), -1);
    json_t *sb = json_object_get(o, "response_body");
    if (json_is_string(sb))
        tg_record_set_body(r, true, json_string_value(sb), json_string_length(sb), -1);
    json_decref(o);
    return r;
}

/* ---- time ---- */

int64_t tg_record_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tg_record_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

void tg_record_time_format(int64_t ms, tg_buf_t *out)
{
    int64_t days = floor_div(ms, 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned mo, d;
    tg_record_civil_from_days(days, &y, &mo, &d);
    tg_buf_printf(out, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, mo, d,
                  (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
                  (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}

/* n decimal digits at s into *v; false when any is not a digit. */
static bool digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tg_record_time_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    /* Unix seconds, optionally with a fraction */
    if (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-')) {
        int64_t secs = 0;
        const char *p = s;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (++nd > 12) /* past year 33000 */
                return -1;
            secs = secs * 10 + (*p++ - '0');
        }
        int64_t frac = 0;
        if (*p == '.') {
            p++;
            int fd = 0;
            if (!(*p >= '0' && *p <= '9'))
                return -1;
            while (*p >= '0' && *p <= '9') {
                if (fd < 3)
                    frac = frac * 10 + (*p - '0');
                fd++;
                p++;
            }
            for (; fd < 3; fd++)
                frac *= 10;
        }
        if (*p)
            return -1;
        *ms = secs * 1000 + frac;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d))
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
        return -1;
    const char *p = s + 10;
    int64_t frac = 0, offset_min = 0;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi))
            return -1;
        p += 5;
        if (*p == ':') {
            if (!digits(p + 1, 2, &sec))
                return -1;
            p += 3;
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (sec == 60)
            sec = 59; /* leap second: the last ms of the minute is close enough */
        if (*p == '.') {
            p++;
            int fd = 0;
            if (!(*p >= '0' && *p <= '9'))
                return -1;
            while (*p >= '0' && *p <= '9') {
                if (fd < 3)
                    frac = frac * 10 + (*p - '0');
                fd++;
                p++;
            }
            for (; fd < 3; fd++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-' || *p == ' ') {
            /* ' ': a '+' that a query string decoded to a space */
            int sign = *p == '-' ? -1 : 1, oh, om;
            if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
                om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
            p += 6;
        }
        if (*p)
            return -1;
    }
    int64_t days = tg_record_days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + frac;
    return 0;
}

/* ---- the binary form (tg_record_pack) ---- */

#define PACK_VERSION 1
#define PACK_NULL    0xffffffffu /* string length of a NULL field */

static unsigned char *pack_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static unsigned char *pack_str(unsigned char *p, const char *s, size_t len)
{
    uint32_t v = s ? (uint32_t)len : PACK_NULL;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    if (s)
        memcpy(p + 4, s, len);
    return p + 4 + (s ? len : 0);
}

/* The numbers, in this order, after the version byte. */
#define PACK_NUMS 15
/* The strings, in this order, after the numbers: the fixed ones, the two
 * bodies, then each property's name and value. */
#define PACK_STRS 14

/* Sizes first, then one reservation and plain stores: the worker packs
 * every record it journals, and a buffer append per field cost more than
 * the copies themselves. */
void tg_record_pack(const tg_record_t *r, tg_buf_t *out)
{
    const int64_t nums[PACK_NUMS] = {r->created_at_ms, r->status, r->latency_ms, r->ttft_ms,
                                     r->usage.prompt_tokens, r->usage.completion_tokens,
                                     r->usage.cached_tokens, r->usage.cache_write_tokens,
                                     r->usage.reasoning_tokens, r->cost_nusd, r->cache, r->retries,
                                     r->fallback_index, (int64_t)r->n_props,
                                     /* once reserved (0): a journal from before reads as -1 */
                                     r->cache_saved_nusd + 1};
    const char *strs[PACK_STRS] = {
        r->id,        r->provider,   r->model,        r->model_requested, r->route,
        r->user_id,   r->session_id, r->session_name, r->session_path,    r->key_name,
        r->client_ip, r->error,      r->request_body, r->response_body};
    size_t lens[PACK_STRS], total = 1 + 8 * PACK_NUMS + 4 * (PACK_STRS + 2 * r->n_props);
    for (int i = 0; i < PACK_STRS - 2; i++)
        total += lens[i] = strs[i] ? strlen(strs[i]) : 0;
    total += lens[PACK_STRS - 2] = r->request_body ? r->request_body_len : 0;
    total += lens[PACK_STRS - 1] = r->response_body ? r->response_body_len : 0;
    for (size_t i = 0; i < r->n_props; i++)
        total += strlen(r->props[i].name) + strlen(r->props[i].value);
    unsigned char *p = (unsigned char *)tg_buf_extend(out, total);
    *p++ = PACK_VERSION;
    for (int i = 0; i < PACK_NUMS; i++)
        p = pack_u64(p, (uint64_t)nums[i]);
    for (int i = 0; i < PACK_STRS; i++)
        p = pack_str(p, strs[i], lens[i]);
    for (size_t i = 0; i < r->n_props; i++) {
        p = pack_str(p, r->props[i].name, strlen(r->props[i].name));
        p = pack_str(p, r->props[i].value, strlen(r->props[i].value));
    }
}

typedef struct {
    const unsigned char *p;
    size_t left;
    bool bad;
} unpack_t;

static uint64_t unpack_u(unpack_t *u, int bytes)
{
    if (u->bad || u->left < (size_t)bytes) {
        u->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)u->p[i] << (8 * i);
    u->p += bytes;
    u->left -= (size_t)bytes;
    return v;
}

/* A string field: NULL for a NULL one (or on error: u->bad says which). */
static char *unpack_str(unpack_t *u, size_t *len)
{
    uint32_t n = (uint32_t)unpack_u(u, 4);
    if (u->bad || n == PACK_NULL)
        return NULL;
    if (n > u->left) {
        u->bad = true;
        return NULL;
    }
    char *s = tg_xstrndup((const char *)u->p, n);
    u->p += n;
    u->left -= n;
    if (len)
        *len = n;
    return s;
}

tg_record_t *tg_record_unpack(const char *p, size_t len)
{
    unpack_t u = {(const unsigned char *)p, len, false};
    if (unpack_u(&u, 1) != PACK_VERSION)
        return NULL;
    int64_t nums[PACK_NUMS];
    for (int i = 0; i < PACK_NUMS; i++)
        nums[i] = (int64_t)unpack_u(&u, 8);
    tg_record_t *r = tg_xcalloc(1, sizeof *r);
    r->created_at_ms = nums[0];
    r->status = (int)nums[1];
    r->latency_ms = nums[2];
    r->ttft_ms = nums[3];
    r->usage.prompt_tokens = (long)nums[4];
    r->usage.completion_tokens = (long)nums[5];
    r->usage.cached_tokens = (long)nums[6];
    r->usage.cache_write_tokens = (long)nums[7];
    r->usage.reasoning_tokens = (long)nums[8];
    r->cost_nusd = nums[9];
    r->cache = nums[10] == TG_RECORD_CACHE_HIT    ? TG_RECORD_CACHE_HIT
               : nums[10] == TG_RECORD_CACHE_MISS ? TG_RECORD_CACHE_MISS
                                                  : TG_RECORD_CACHE_NONE;
    r->retries = (int)nums[11];
    r->fallback_index = (int)nums[12];
    r->cache_saved_nusd = nums[14] - 1;
    char **strs[] = {&r->id,           &r->provider, &r->model,      &r->model_requested,
                     &r->route,        &r->user_id,  &r->session_id, &r->session_name,
                     &r->session_path, &r->key_name, &r->client_ip,  &r->error};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        *strs[i] = unpack_str(&u, NULL);
    r->request_body = unpack_str(&u, &r->request_body_len);
    r->response_body = unpack_str(&u, &r->response_body_len);
    r->bodies_stored = true; /* as the worker journaled them: frames or raw */
    /* each property is at least 8 bytes: a count beyond that is garbage */
    uint64_t n_props = (uint64_t)nums[13];
    if (!u.bad && n_props > u.left / 8)
        u.bad = true;
    for (uint64_t i = 0; i < n_props && !u.bad; i++) {
        char *name = unpack_str(&u, NULL), *value = unpack_str(&u, NULL);
        if (name && value)
            tg_record_set_property(r, name, value);
        free(name);
        free(value);
    }
    if (u.bad || u.left || !r->id) {
        tg_record_free(r);
        return NULL;
    }
    return r;
}
