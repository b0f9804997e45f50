/*
 * query.c — the query API over the store (see query.h): the query-string
 * parser and the JSON answers of SPEC §8.
 *
 * Owns no state. Invariants: user input never reaches SQL text (the
 * back-end binds every value); every parse failure is a 400 with a message
 * naming the parameter; times in answers are RFC 3339 UTC with
 * milliseconds; money is an exact decimal number of USD.
 *
 * Any thread (the back-end's reader connections are pooled).
 */
#include "store/query.h"

#include "cost/cost.h"
#include "store/record.h"
#include "store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIMIT_DEFAULT 50
#define LIMIT_MAX     1000
#define ID_MAX        256

/* ---- query strings ---- */

static char *decode(const char *s, size_t n, char *err, size_t errlen)
{
    char *out = tg_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < n ? tg_hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? tg_hexval(s[i + 2]) : -1;
            int h = hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
            if (h < 0) {
                snprintf(err, errlen, "bad percent-encoding in '%.*s'", (int)(n > 64 ? 64 : n), s);
                free(out);
                return NULL;
            }
            if (h == 0) {
                snprintf(err, errlen, "NUL byte (%%00) in '%.*s'", (int)(n > 64 ? 64 : n), s);
                free(out);
                return NULL;
            }
            out[o++] = (char)h;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return out;
}

void tg_query_params_free(tg_query_param_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

int tg_query_params_parse(const char *qs, tg_query_param_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int n = 0, cap = 0;
    tg_query_param_t *p = NULL;
    if (qs && *qs == '?')
        qs++;
    while (qs && *qs) {
        const char *end = strchr(qs, '&');
        size_t len = end ? (size_t)(end - qs) : strlen(qs);
        if (len) {
            const char *eq = memchr(qs, '=', len);
            size_t klen = eq ? (size_t)(eq - qs) : len;
            char *k = decode(qs, klen, err, errlen);
            char *v =
                k ? (eq ? decode(eq + 1, len - klen - 1, err, errlen) : tg_xstrdup("")) : NULL;
            if (!k || !v) {
                free(k);
                tg_query_params_free(p, n);
                return -1;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                p = tg_xrealloc(p, (size_t)cap * sizeof *p);
            }
            p[n].key = k;
            p[n].value = v;
            n++;
        }
        qs = end ? end + 1 : NULL;
    }
    *out = p;
    return n;
}

/* ---- parsed queries ---- */

static void strlist_add(tg_strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return;
    l->v = tg_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = tg_xstrdup(s);
}

static void strlist_free(tg_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void tg_query_free(tg_query_t *q)
{
    strlist_free(&q->models);
    strlist_free(&q->providers);
    strlist_free(&q->user_ids);
    strlist_free(&q->session_ids);
    free(q->status);
    for (size_t i = 0; i < q->n_props; i++) {
        free(q->props[i].name);
        strlist_free(&q->props[i].values);
    }
    free(q->props);
    free(q->group_prop);
    free(q->period);
    memset(q, 0, sizeof *q);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int add_prop(tg_query_t *q, const char *name, const char *value)
{
    for (size_t i = 0; i < q->n_props; i++) {
        if (!strcasecmp(q->props[i].name, name)) {
            strlist_add(&q->props[i].values, value);
            return 0;
        }
    }
    q->props = tg_xrealloc(q->props, (q->n_props + 1) * sizeof *q->props);
    tg_query_prop_t *p = &q->props[q->n_props++];
    memset(p, 0, sizeof *p);
    p->name = tg_xstrdup(name);
    strlist_add(&p->values, value);
    return 0;
}

static int add_status(tg_query_t *q, const char *v, char *err, size_t errlen)
{
    int lo, hi;
    if (!strcmp(v, "error")) {
        q->status_error = true;
        return 0;
    }
    if (!strcmp(v, "success")) {
        q->status_success = true;
        return 0;
    }
    if (strlen(v) == 3 && v[0] >= '1' && v[0] <= '5' && (v[1] == 'x' || v[1] == 'X') &&
        (v[2] == 'x' || v[2] == 'X')) {
        lo = (v[0] - '0') * 100;
        hi = lo + 99;
    } else {
        char *end;
        errno = 0;
        long s = strtol(v, &end, 10);
        if (!*v || *end || errno || s < 0 || s > 999)
            return fail(err, errlen,
                        "status: expected an HTTP status (e.g. 429), a class (4xx), "
                        "'error' or 'success', got '%s'",
                        v);
        lo = hi = (int)s;
    }
    q->status = tg_xrealloc(q->status, (q->n_status + 1) * sizeof *q->status);
    q->status[q->n_status].lo = lo;
    q->status[q->n_status].hi = hi;
    q->n_status++;
    return 0;
}

static const char *prop_name(const char *k)
{
    if (!strncmp(k, "property.", 9))
        return k + 9;
    if (!strncmp(k, "properties.", 11))
        return k + 11;
    return NULL;
}

/* A record filter: model, provider, status, user_id, session_id,
 * property.<Name>/properties.<Name>. 1: not a filter key. */
static int apply_filter(tg_query_t *q, const char *k, const char *v, char *err, size_t errlen)
{
    const char *pn = prop_name(k);
    if (pn) {
        if (!*pn)
            return fail(err, errlen, "%s: the property name is missing", k);
        return add_prop(q, pn, v);
    }
    tg_strlist_t *l = !strcmp(k, "model")        ? &q->models
                      : !strcmp(k, "provider")   ? &q->providers
                      : !strcmp(k, "user_id")    ? &q->user_ids
                      : !strcmp(k, "session_id") ? &q->session_ids
                                                 : NULL;
    if (l) {
        if (!*v)
            return fail(err, errlen, "%s: empty value", k);
        strlist_add(l, v);
        return 0;
    }
    if (!strcmp(k, "status"))
        return add_status(q, v, err, errlen);
    return 1;
}

static int parse_int(const char *k, const char *v, int64_t lo, int64_t hi, int64_t *out, char *err,
                     size_t errlen)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return fail(err, errlen, "%s: expected an integer from %lld to %lld, got '%s'", k,
                    (long long)lo, (long long)hi, v);
    *out = x;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* [from, to) of the calendar period (UTC) that contains now. */
static void period_bounds(const char *period, int64_t now, int64_t *from, int64_t *to)
{
    const int64_t day = 86400000;
    int64_t days = floor_div(now, day);
    if (!strcmp(period, "week")) {
        int64_t dow = ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday = 0 */
        *from = (days - dow) * day;
        *to = *from + 7 * day;
    } else if (!strcmp(period, "month")) {
        int64_t y;
        unsigned m, d;
        tg_record_civil_from_days(days, &y, &m, &d);
        *from = tg_record_days_from_civil(y, m, 1) * day;
        *to = (m == 12 ? tg_record_days_from_civil(y + 1, 1, 1)
                       : tg_record_days_from_civil(y, m + 1, 1)) *
              day;
    } else {
        *from = days * day;
        *to = *from + day;
    }
}

/* A series' range and bucket: to defaults to now, from to a day before to;
 * the bucket to what gives at most a few hundred points; from is rounded
 * down to a bucket's start. At most SERIES_MAX_BUCKETS. */
#define SERIES_MAX_BUCKETS 2000
static int series_range(tg_query_t *q, int64_t now_ms, char *err, size_t errlen)
{
    if (!q->has_to) {
        q->to_ms = now_ms;
        q->has_to = true;
    }
    if (!q->has_from) {
        q->from_ms = q->to_ms - 86400000;
        q->has_from = true;
    }
    if (q->from_ms >= q->to_ms)
        return fail(err, errlen, "from must be before to");
    int64_t span = q->to_ms - q->from_ms;
    if (!q->bucket_ms)
        q->bucket_ms = span <= 3 * 3600000LL     ? 60000
                       : span <= 2 * 86400000LL  ? 300000
                       : span <= 14 * 86400000LL ? 3600000
                                                 : 86400000;
    q->from_ms = floor_div(q->from_ms, q->bucket_ms) * q->bucket_ms;
    if ((q->to_ms - q->from_ms + q->bucket_ms - 1) / q->bucket_ms > SERIES_MAX_BUCKETS)
        return fail(err, errlen,
                    "the range holds more than %d buckets: choose a larger bucket or a "
                    "shorter range",
                    SERIES_MAX_BUCKETS);
    return 0;
}

int tg_query_parse(tg_query_kind_t kind, const char *qs, int64_t now_ms, tg_query_t *q, char *err,
                   size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->limit = LIMIT_DEFAULT;
    tg_query_param_t *p;
    int n = tg_query_params_parse(qs, &p, err, errlen);
    if (n < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *k = p[i].key, *v = p[i].value;
        if (!strcmp(k, "from") || !strcmp(k, "to")) {
            int64_t t;
            if (tg_record_time_parse(v, &t) != 0) {
                rc = fail(err, errlen,
                          "%s: expected an RFC 3339 time (2026-11-05T10:00:00Z) or Unix "
                          "seconds, got '%s'",
                          k, v);
            } else if (k[0] == 'f') {
                q->has_from = true;
                q->from_ms = t;
            } else {
                q->has_to = true;
                q->to_ms = t;
            }
        } else if (!strcmp(k, "filter")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                rc = fail(err, errlen,
                          "filter: expected FIELD=VALUE (e.g. properties.Agent-Name=a1), got '%s'",
                          v);
                continue;
            }
            char *field = tg_xstrndup(v, (size_t)(eq - v));
            rc = apply_filter(q, field, eq + 1, err, errlen);
            if (rc == 1)
                rc = fail(err, errlen,
                          "filter: unknown field '%s' (use properties.<Name>, model, provider, "
                          "status, user_id or session_id)",
                          field);
            free(field);
        } else if ((kind == TG_QUERY_LIST || kind == TG_QUERY_SESSIONS) && !strcmp(k, "limit")) {
            rc = parse_int(k, v, 1, LIMIT_MAX, &q->limit, err, errlen);
        } else if ((kind == TG_QUERY_LIST || kind == TG_QUERY_SESSIONS) && !strcmp(k, "offset")) {
            rc = parse_int(k, v, 0, INT64_MAX / 2, &q->offset, err, errlen);
        } else if (kind == TG_QUERY_COSTS_PERIOD && !strcmp(k, "period")) {
            if (strcmp(v, "day") && strcmp(v, "week") && strcmp(v, "month")) {
                rc = fail(err, errlen, "period: expected day, week or month, got '%s'", v);
            } else {
                free(q->period);
                q->period = tg_xstrdup(v);
            }
        } else if (kind == TG_QUERY_SERIES && !strcmp(k, "bucket")) {
            q->bucket_ms = !strcmp(v, "1m")   ? 60000
                           : !strcmp(v, "5m") ? 300000
                           : !strcmp(v, "1h") ? 3600000
                           : !strcmp(v, "1d") ? 86400000
                                              : 0;
            if (!q->bucket_ms)
                rc = fail(err, errlen, "bucket: expected 1m, 5m, 1h or 1d, got '%s'", v);
        } else if ((kind == TG_QUERY_COSTS || kind == TG_QUERY_SERIES) && !strcmp(k, "group_by")) {
            free(q->group_prop);
            q->group_prop = NULL;
            if (kind == TG_QUERY_SERIES && !strcmp(v, "day"))
                rc = fail(err, errlen, "group_by: a series is already by time (use bucket=1d)");
            else if (!strcmp(v, "model"))
                q->group_by = TG_GROUP_MODEL;
            else if (!strcmp(v, "provider"))
                q->group_by = TG_GROUP_PROVIDER;
            else if (!strcmp(v, "user") || !strcmp(v, "user_id"))
                q->group_by = TG_GROUP_USER;
            else if (!strcmp(v, "day"))
                q->group_by = TG_GROUP_DAY;
            else if (!strncmp(v, "property:", 9) && v[9]) {
                q->group_by = TG_GROUP_PROPERTY;
                q->group_prop = tg_xstrdup(v + 9);
            } else
                rc = fail(err, errlen,
                          "group_by: expected model, provider, user, day or property:<Name>, "
                          "got '%s'",
                          v);
        } else {
            rc = apply_filter(q, k, v, err, errlen);
            if (rc == 1)
                rc = fail(err, errlen, "unknown parameter '%s'", k);
        }
    }
    tg_query_params_free(p, n);
    if (rc != 0)
        return -1;
    if (kind == TG_QUERY_COSTS_PERIOD) {
        if (q->period && (q->has_from || q->has_to))
            return fail(err, errlen, "give either period or from/to, not both");
        if (!q->has_from && !q->has_to) {
            if (!q->period)
                q->period = tg_xstrdup("day");
            period_bounds(q->period, now_ms, &q->from_ms, &q->to_ms);
            q->has_from = q->has_to = true;
        }
    }
    if (kind == TG_QUERY_COSTS && q->group_by == TG_GROUP_NONE)
        q->group_by = TG_GROUP_MODEL;
    if (kind == TG_QUERY_SERIES && series_range(q, now_ms, err, errlen) != 0)
        return -1;
    if (q->has_from && q->has_to && q->from_ms >= q->to_ms)
        return fail(err, errlen, "from must be before to");
    return 0;
}

/* ---- answers ---- */

static int answer_error(tg_buf_t *out, int status, const char *type, const char *code,
                        const char *msg)
{
    tg_buf_openai_error(out, msg, type, code);
    return status;
}

static int bad_request(tg_buf_t *out, const char *msg)
{
    return answer_error(out, 400, "invalid_request_error", "invalid_parameter", msg);
}

/* The store cannot answer now (a database that is down, a query past its
 * time limit): 503, the client may try again. */
static int store_failed(tg_buf_t *out, const char *msg)
{
    char m[400];
    snprintf(m, sizeof m, "request store: %s", msg);
    return answer_error(out, 503, "server_error", "store_unavailable", m);
}

static tg_store_backend_t *backend_or_error(tg_store_t *s, tg_buf_t *out, int *status)
{
    tg_store_backend_t *b = tg_store_backend(s);
    if (!b)
        *status = answer_error(out, 503, "server_error", "logging_disabled",
                               "request logging is disabled (observability.request_logging)");
    return b;
}

/* The query string parsed and the back-end at hand: the back-end, or NULL
 * with the error answered in `out` and its status in *status. */
static tg_store_backend_t *start_query(tg_store_t *s, tg_query_kind_t kind, const char *qs,
                                       tg_query_t *q, tg_buf_t *out, int *status)
{
    char err[300];
    if (tg_query_parse(kind, qs, tg_wall_ms(), q, err, sizeof err) != 0) {
        tg_query_free(q);
        *status = bad_request(out, err);
        return NULL;
    }
    tg_store_backend_t *b = backend_or_error(s, out, status);
    if (!b)
        tg_query_free(q);
    return b;
}

static void put_time(tg_buf_t *out, const char *k, bool has, int64_t ms)
{
    tg_buf_printf(out, "\"%s\":", k);
    if (!has) {
        tg_buf_puts(out, "null");
        return;
    }
    tg_buf_append(out, "\"", 1);
    tg_record_time_format(ms, out);
    tg_buf_append(out, "\"", 1);
}

/* "from":...,"to":... of the query's time range. */
static void put_range(tg_buf_t *out, const tg_query_t *q)
{
    put_time(out, "from", q->has_from, q->from_ms);
    tg_buf_append(out, ",", 1);
    put_time(out, "to", q->has_to, q->to_ms);
}

static void put_cost(tg_buf_t *out, const char *k, int64_t nusd)
{
    char c[32];
    tg_cost_format(nusd, c);
    tg_buf_printf(out, "\"%s\":%s", k, c);
}

/* The end of a page: `],"total":N,"limit":L,"offset":O}`. */
static void put_page_end(tg_buf_t *out, int64_t total, const tg_query_t *q)
{
    tg_buf_printf(out, "],\"total\":%lld,\"limit\":%lld,\"offset\":%lld}", (long long)total,
                  (long long)q->limit, (long long)q->offset);
}

int tg_query_requests(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_LIST, qs, &q, out, &status);
    if (!b)
        return status;
    tg_record_list_t l;
    if (b->ops->list(b, &q, &l, err, sizeof err) != 0)
        status = store_failed(out, err);
    else {
        tg_buf_puts(out, "{\"data\":[");
        for (size_t i = 0; i < l.n; i++) {
            if (i)
                tg_buf_append(out, ",", 1);
            tg_record_to_json(l.items[i], 0, out);
        }
        put_page_end(out, l.total, &q);
        tg_record_list_free(&l);
    }
    tg_query_free(&q);
    return status;
}

int tg_query_request(tg_store_t *s, const char *id, tg_buf_t *out)
{
    int status = 200;
    if (!id || !*id || strlen(id) > ID_MAX)
        return bad_request(out, "a request id is required (at most 256 characters)");
    tg_store_backend_t *b = backend_or_error(s, out, &status);
    if (!b)
        return status;
    tg_record_t *r;
    char err[300];
    int rc = b->ops->get(b, id, &r, err, sizeof err);
    if (rc < 0)
        return store_failed(out, err);
    if (rc == 1) {
        snprintf(err, sizeof err, "no request with id '%.*s'", 200, id);
        return answer_error(out, 404, "not_found_error", "not_found", err);
    }
    tg_record_to_json(r, TG_RECORD_JSON_BODIES, out);
    tg_record_free(r);
    return 200;
}

int tg_query_request_costs(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_COSTS_PERIOD, qs, &q, out, &status);
    if (!b)
        return status;
    tg_cost_rows_t rows;
    if (b->ops->costs(b, &q, &rows, err, sizeof err) != 0)
        status = store_failed(out, err);
    else {
        tg_cost_row_t zero = {0}, *r = rows.n ? &rows.rows[0] : &zero;
        tg_buf_puts(out, "{");
        put_cost(out, "total_cost", r->cost_nusd);
        tg_buf_printf(out,
                      ",\"requests\":%lld,\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                      "\"cached_tokens\":%lld,\"cache_write_tokens\":%lld,\"unpriced\":%lld,",
                      (long long)r->requests, (long long)r->prompt_tokens,
                      (long long)r->completion_tokens, (long long)r->cached_tokens,
                      (long long)r->cache_write_tokens, (long long)r->unpriced);
        tg_buf_puts(out, "\"period\":");
        if (q.period)
            tg_buf_printf(out, "\"%s\"", q.period);
        else
            tg_buf_puts(out, "null");
        tg_buf_append(out, ",", 1);
        put_range(out, &q);
        tg_buf_puts(out, "}");
        tg_cost_rows_free(&rows);
    }
    tg_query_free(&q);
    return status;
}

static const char *group_name(const tg_query_t *q)
{
    switch (q->group_by) {
    case TG_GROUP_PROVIDER: return "provider";
    case TG_GROUP_USER: return "user";
    case TG_GROUP_DAY: return "day";
    case TG_GROUP_PROPERTY: return "property";
    default: return "model";
    }
}

int tg_query_costs(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_COSTS, qs, &q, out, &status);
    if (!b)
        return status;
    tg_cost_rows_t rows;
    if (b->ops->costs(b, &q, &rows, err, sizeof err) != 0)
        status = store_failed(out, err);
    else {
        tg_buf_puts(out, "{\"group_by\":");
        if (q.group_by == TG_GROUP_PROPERTY) {
            tg_buf_t g = {0};
            tg_buf_printf(&g, "property:%s", q.group_prop);
            tg_record_json_str(out, g.data, g.len);
            tg_buf_free(&g);
        } else {
            tg_buf_printf(out, "\"%s\"", group_name(&q));
        }
        tg_buf_append(out, ",", 1);
        put_range(out, &q);
        tg_buf_puts(out, ",\"data\":[");
        for (size_t i = 0; i < rows.n; i++) {
            tg_cost_row_t *r = &rows.rows[i];
            tg_buf_puts(out, i ? ",{\"group\":" : "{\"group\":");
            if (r->group)
                tg_record_json_str(out, r->group, strlen(r->group));
            else
                tg_buf_puts(out, "null");
            tg_buf_append(out, ",", 1);
            put_cost(out, "total_cost", r->cost_nusd);
            tg_buf_printf(out,
                          ",\"requests\":%lld,\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                          "\"cached_tokens\":%lld,\"cache_write_tokens\":%lld,"
                          "\"reasoning_tokens\":%lld,\"unpriced\":%lld,",
                          (long long)r->requests, (long long)r->prompt_tokens,
                          (long long)r->completion_tokens, (long long)r->cached_tokens,
                          (long long)r->cache_write_tokens, (long long)r->reasoning_tokens,
                          (long long)r->unpriced);
            put_cost(out, "cache_saved", r->cache_saved_nusd);
            tg_buf_append(out, "}", 1);
        }
        tg_buf_puts(out, "]}");
        tg_cost_rows_free(&rows);
    }
    tg_query_free(&q);
    return status;
}

static void put_pcts(tg_buf_t *out, const char *k, const int64_t p[3])
{
    static const char *names[3] = {"p50", "p95", "p99"};
    tg_buf_printf(out, "\"%s\":{", k);
    for (int i = 0; i < 3; i++) {
        if (p[i] < 0)
            tg_buf_printf(out, "%s\"%s\":null", i ? "," : "", names[i]);
        else
            tg_buf_printf(out, "%s\"%s\":%lld", i ? "," : "", names[i], (long long)p[i]);
    }
    tg_buf_append(out, "}", 1);
}

int tg_query_stats(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_STATS, qs, &q, out, &status);
    if (!b)
        return status;
    tg_stats_t st;
    if (b->ops->stats(b, &q, &st, err, sizeof err) != 0)
        status = store_failed(out, err);
    else {
        tg_buf_puts(out, "{");
        put_range(out, &q);
        tg_buf_printf(out,
                      ",\"requests\":%lld,\"errors\":%lld,\"cache_hits\":%lld,"
                      "\"cache_misses\":%lld,\"cache_hit_rate\":",
                      (long long)st.requests, (long long)st.errors, (long long)st.cache_hits,
                      (long long)st.cache_misses);
        if (st.cache_hits + st.cache_misses)
            tg_buf_printf(out, "%.6g",
                          (double)st.cache_hits / (double)(st.cache_hits + st.cache_misses));
        else
            tg_buf_puts(out, "null");
        tg_buf_append(out, ",", 1);
        put_pcts(out, "latency_ms", st.latency_ms);
        tg_buf_append(out, ",", 1);
        put_pcts(out, "ttft_ms", st.ttft_ms);
        tg_buf_printf(out,
                      ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"cached_tokens\":%lld,"
                      "\"cache_write_tokens\":%lld,\"reasoning_tokens\":%lld,",
                      (long long)st.prompt_tokens, (long long)st.completion_tokens,
                      (long long)st.cached_tokens, (long long)st.cache_write_tokens,
                      (long long)st.reasoning_tokens);
        put_cost(out, "total_cost", st.cost_nusd);
        tg_buf_append(out, ",", 1);
        put_cost(out, "cache_saved", st.cache_saved_nusd);
        tg_buf_printf(out, ",\"priced\":%lld,\"unpriced\":%lld}", (long long)st.priced,
                      (long long)st.unpriced);
    }
    tg_query_free(&q);
    return status;
}

/* ---- the dashboard's answers: series and sessions ---- */

static void put_group_by(tg_buf_t *out, const tg_query_t *q)
{
    tg_buf_puts(out, "\"group_by\":");
    if (q->group_by == TG_GROUP_NONE) {
        tg_buf_puts(out, "null");
    } else if (q->group_by == TG_GROUP_PROPERTY) {
        tg_buf_t g = {0};
        tg_buf_printf(&g, "property:%s", q->group_prop);
        tg_record_json_str(out, g.data, g.len);
        tg_buf_free(&g);
    } else {
        tg_buf_printf(out, "\"%s\"", group_name(q));
    }
}

/* One column of a series: "name":[v,...] over the buckets. `nul`: values
 * below 0 are null (no data), else they are numbers. */
static void put_column(tg_buf_t *out, const char *name, const tg_series_group_t *g, size_t n,
                       size_t off, bool nul)
{
    tg_buf_printf(out, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        int64_t v = *(const int64_t *)((const char *)&g->cells[i] + off);
        if (i)
            tg_buf_append(out, ",", 1);
        if (nul && v < 0)
            tg_buf_puts(out, "null");
        else
            tg_buf_printf(out, "%lld", (long long)v);
    }
    tg_buf_append(out, "]", 1);
}

int tg_query_series(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_SERIES, qs, &q, out, &status);
    if (!b)
        return status;
    tg_series_t se;
    if (!b->ops->series) {
        status = store_failed(out, "this store has no series");
    } else if (b->ops->series(b, &q, &se, err, sizeof err) != 0) {
        status = store_failed(out, err);
    } else {
        static const char *const names[] = {"1m", "5m", "1h", "1d"};
        static const int64_t ms[] = {60000, 300000, 3600000, 86400000};
        const char *bn = "1m";
        for (int i = 0; i < 4; i++)
            if (ms[i] == q.bucket_ms)
                bn = names[i];
        tg_buf_printf(out, "{\"bucket\":\"%s\",\"bucket_seconds\":%lld,", bn,
                      (long long)(q.bucket_ms / 1000));
        put_range(out, &q);
        tg_buf_append(out, ",", 1);
        put_group_by(out, &q);
        tg_buf_printf(out, ",\"groups_total\":%zu,\"t\":[", se.groups_total);
        for (size_t i = 0; i < se.n_buckets; i++)
            tg_buf_printf(out, "%s%lld", i ? "," : "",
                          (long long)((se.from_ms + (int64_t)i * se.bucket_ms) / 1000));
        tg_buf_puts(out, "],\"series\":[");
        for (size_t k = 0; k < se.n_groups; k++) {
            const tg_series_group_t *g = &se.groups[k];
            size_t n = se.n_buckets;
            tg_buf_puts(out, k ? ",{\"group\":" : "{\"group\":");
            if (g->group)
                tg_record_json_str(out, g->group, strlen(g->group));
            else
                tg_buf_puts(out, "null");
            tg_buf_append(out, ",", 1);
            put_cost(out, "total_cost", g->cost_nusd);
            tg_buf_printf(out, ",\"total_requests\":%lld", (long long)g->requests);
#define COL(name, field, nul) put_column(out, name, g, n, offsetof(tg_series_cell_t, field), nul)
            COL("requests", requests, false);
            COL("errors", errors, false);
            COL("cache_hits", cache_hits, false);
            COL("cache_misses", cache_misses, false);
            COL("prompt_tokens", prompt_tokens, false);
            COL("completion_tokens", completion_tokens, false);
            COL("latency_p50", latency_ms[0], true);
            COL("latency_p95", latency_ms[1], true);
            COL("latency_p99", latency_ms[2], true);
            COL("ttft_p50", ttft_ms[0], true);
#undef COL
            tg_buf_puts(out, ",\"cost\":[");
            for (size_t i = 0; i < n; i++) {
                char c[32];
                tg_cost_format(g->cells[i].cost_nusd, c);
                tg_buf_printf(out, "%s%s", i ? "," : "", c);
            }
            tg_buf_puts(out, "]}");
        }
        tg_buf_puts(out, "]}");
        tg_series_free(&se);
    }
    tg_query_free(&q);
    return status;
}

static void put_session(tg_buf_t *out, const tg_session_row_t *r)
{
    tg_buf_puts(out, "\"session_id\":");
    tg_record_json_str(out, r->session_id, strlen(r->session_id));
    tg_buf_puts(out, ",\"session_name\":");
    if (r->name)
        tg_record_json_str(out, r->name, strlen(r->name));
    else
        tg_buf_puts(out, "null");
    tg_buf_printf(out, ",\"requests\":%lld,\"errors\":%lld,", (long long)r->requests,
                  (long long)r->errors);
    put_cost(out, "cost", r->cost_nusd);
    tg_buf_printf(out, ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"latency_ms\":%lld,",
                  (long long)r->prompt_tokens, (long long)r->completion_tokens,
                  (long long)r->latency_ms);
    put_time(out, "first_at", true, r->first_ms);
    tg_buf_append(out, ",", 1);
    put_time(out, "last_at", true, r->last_ms);
}

int tg_query_sessions(tg_store_t *s, const char *qs, tg_buf_t *out)
{
    int status = 200;
    tg_query_t q;
    char err[300];
    tg_store_backend_t *b = start_query(s, TG_QUERY_SESSIONS, qs, &q, out, &status);
    if (!b)
        return status;
    tg_sessions_t ss;
    if (!b->ops->sessions) {
        status = store_failed(out, "this store has no sessions");
    } else if (b->ops->sessions(b, &q, &ss, err, sizeof err) != 0) {
        status = store_failed(out, err);
    } else {
        tg_buf_puts(out, "{\"data\":[");
        for (size_t i = 0; i < ss.n; i++) {
            tg_buf_puts(out, i ? ",{" : "{");
            put_session(out, &ss.rows[i]);
            tg_buf_append(out, "}", 1);
        }
        put_page_end(out, ss.total, &q);
        tg_sessions_free(&ss);
    }
    tg_query_free(&q);
    return status;
}

int tg_query_session(tg_store_t *s, const char *id, tg_buf_t *out)
{
    int status = 200;
    if (!id || !*id || strlen(id) > ID_MAX)
        return bad_request(out, "a session id is required (at most 256 characters)");
    tg_store_backend_t *b = backend_or_error(s, out, &status);
    if (!b)
        return status;
    tg_query_t q;
    memset(&q, 0, sizeof q);
    q.kind = TG_QUERY_LIST;
    q.limit = LIMIT_MAX;
    strlist_add(&q.session_ids, id);
    tg_record_list_t l;
    char err[300];
    if (b->ops->list(b, &q, &l, err, sizeof err) != 0) {
        tg_query_free(&q);
        return store_failed(out, err);
    }
    tg_query_free(&q);
    if (!l.n) {
        tg_record_list_free(&l);
        snprintf(err, sizeof err, "no request with session id '%.*s'", 200, id);
        return answer_error(out, 404, "not_found_error", "not_found", err);
    }
    /* the list is newest first; a session reads oldest first */
    tg_session_row_t t = {.session_id = (char *)(uintptr_t)id, .first_ms = INT64_MAX};
    for (size_t i = 0; i < l.n; i++) {
        const tg_record_t *r = l.items[i];
        t.requests++;
        t.errors += r->status >= 400 || r->error;
        t.cost_nusd += r->cost_nusd > 0 ? r->cost_nusd : 0;
        t.prompt_tokens += r->usage.prompt_tokens > 0 ? r->usage.prompt_tokens : 0;
        t.completion_tokens += r->usage.completion_tokens > 0 ? r->usage.completion_tokens : 0;
        t.latency_ms += r->latency_ms > 0 ? r->latency_ms : 0;
        t.first_ms = r->created_at_ms < t.first_ms ? r->created_at_ms : t.first_ms;
        t.last_ms = r->created_at_ms > t.last_ms ? r->created_at_ms : t.last_ms;
        if (!t.name && r->session_name)
            t.name = r->session_name;
    }
    tg_buf_append(out, "{", 1);
    put_session(out, &t);
    tg_buf_printf(out, ",\"total\":%lld,\"data\":[", (long long)l.total);
    for (size_t i = l.n; i-- > 0;) {
        tg_record_to_json(l.items[i], 0, out);
        if (i)
            tg_buf_append(out, ",", 1);
    }
    tg_buf_puts(out, "]}");
    tg_record_list_free(&l);
    return 200;
}
