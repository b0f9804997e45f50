/* The query API: the query-string parser and the answers (SPEC §8). */
#include "store_env.h"
#include "test.h"

#include "store/query.h"
#include "store/record.h"
#include "store/store.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0   1762300800000LL /* 2025-11-05T00:00:00Z, a Wednesday */
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

static int q_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

typedef struct {
    char dir[64];
    tg_store_t *s;
} fixture_t;

typedef struct {
    const char *id;
    int64_t at;
    const char *provider, *model;
    int status;
    const char *user, *session;
    const char *agent, *env;
    long prompt, completion;
    int64_t cost;
    tg_record_cache_t cache;
    int64_t latency, ttft;
    const char *error;
} row_t;

static const row_t rows[] = {
    {"r1", T0 + 1 * HOUR, "openai", "gpt-4o", 200, "u1", "s1", "a1", "prod", 100, 50, 1000,
     TG_RECORD_CACHE_MISS, 100, 10, NULL},
    {"r2", T0 + 2 * HOUR, "openai", "gpt-4o-mini", 200, "u1", "s1", "a1", NULL, 200, 20, 2000,
     TG_RECORD_CACHE_HIT, 200, 20, NULL},
    {"r3", T0 + 3 * HOUR, "anthropic", "claude-3-5-sonnet", 429, "u2", "s2", "a2", NULL, -1, -1, -1,
     TG_RECORD_CACHE_NONE, 300, -1, "rate limited"},
    {"r4", T0 + DAY + HOUR, "anthropic", "claude-3-5-sonnet", 200, "u2", NULL, "a2", "dev", 1000,
     100, 5000, TG_RECORD_CACHE_MISS, 400, 40, NULL},
    {"r5", T0 + DAY + 2 * HOUR, "mock", "local-model", 200, NULL, NULL, NULL, NULL, 10, 10, -1,
     TG_RECORD_CACHE_NONE, 500, 50, NULL},
    {"r6", T0 + 2 * DAY, "openai", "gpt-4o", 500, "u3", "s3", "a1", NULL, -1, -1, -1,
     TG_RECORD_CACHE_NONE, 600, -1, "upstream error"},
};

static tg_record_t *row_record(const row_t *w)
{
    tg_record_t *r = tg_record_new();
    tg_record_set_str(&r->id, w->id);
    r->created_at_ms = w->at;
    tg_record_set_str(&r->provider, w->provider);
    tg_record_set_str(&r->model, w->model);
    tg_record_set_str(&r->model_requested, w->model);
    tg_record_set_str(&r->route, "/v1/chat/completions");
    r->status = w->status;
    tg_record_set_str(&r->user_id, w->user);
    tg_record_set_str(&r->session_id, w->session);
    if (w->agent)
        tg_record_set_property(r, "Agent-Name", w->agent);
    if (w->env)
        tg_record_set_property(r, "Env", w->env);
    r->usage.prompt_tokens = w->prompt;
    r->usage.completion_tokens = w->completion;
    r->cost_nusd = w->cost;
    r->cache = w->cache;
    if (w->cache == TG_RECORD_CACHE_HIT)
        r->cache_saved_nusd = 7000; /* what the provider would have charged */
    r->latency_ms = w->latency;
    r->ttft_ms = w->ttft;
    tg_record_set_str(&r->error, w->error);
    return r;
}

static bool fixture_open(fixture_t *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/tg-query-XXXXXX");
    if (!mkdtemp(f->dir))
        return false;
    char err[256];
    tg_test_store_t where;
    tg_store_options_t o;
    tg_test_store_options(f->dir, "q.db", &where, &o);
    if (tg_store_open(&o, &f->s, err, sizeof err) != 0) {
        printf("    open: %s\n", err);
        return false;
    }
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tg_record_t *r = row_record(&rows[i]);
        if (i == 0) {
            static const char req[] = "{\"model\":\"gpt-4o\",\"messages\":[]}";
            static const char resp[] = "data: {\"x\":1}\n\ndata: [DONE]\n\n";
            tg_record_set_body(r, false, req, sizeof req - 1, -1);
            tg_record_set_body(r, true, resp, sizeof resp - 1, -1);
        }
        tg_store_submit(f->s, r);
    }
    return tg_store_flush(f->s, 20000) == 0;
}

static void fixture_close(fixture_t *f)
{
    tg_store_close(f->s);
    nftw(f->dir, q_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The ids of a list answer in order, "r6,r5,..." (or the error message). */
static char *list_ids(tg_store_t *s, const char *qs, int *status, int64_t *total)
{
    tg_buf_t b = {0};
    *status = tg_query_requests(s, qs, &b);
    tg_buf_t ids = {0};
    tg_buf_puts(&ids, "");
    const char *p = b.data;
    while ((p = strstr(p, "{\"id\":\""))) {
        p += 7;
        const char *e = strchr(p, '"');
        if (ids.len)
            tg_buf_append(&ids, ",", 1);
        tg_buf_append(&ids, p, (size_t)(e - p));
    }
    const char *t = strstr(b.data, "\"total\":");
    *total = t ? atoll(t + 8) : -1;
    if (*status != 200) {
        tg_buf_reset(&ids);
        tg_buf_puts(&ids, b.data);
    }
    tg_buf_free(&b);
    return ids.data;
}

static void expect_list(tg_store_t *s, const char *qs, const char *want, int64_t want_total,
                        int line)
{
    int status;
    int64_t total;
    char *got = list_ids(s, qs, &status, &total);
    if (status != 200 || strcmp(got, want) || total != want_total)
        tg_test_fail(__FILE__, line, "?%s -> %d [%s] total %lld, expected [%s] total %lld", qs,
                     status, got, (long long)total, want, (long long)want_total);
    free(got);
}
#define EXPECT_LIST(s, qs, want, total) expect_list(s, qs, want, total, __LINE__)

static void expect_400(int (*fn)(tg_store_t *, const char *, tg_buf_t *), tg_store_t *s,
                       const char *qs, const char *msg_part, int line)
{
    tg_buf_t b = {0};
    int status = fn(s, qs, &b);
    if (status != 400 || !strstr(b.data, msg_part) ||
        !strstr(b.data, "\"type\":\"invalid_request_error\""))
        tg_test_fail(__FILE__, line, "?%s -> %d %s, expected 400 mentioning '%s'", qs, status,
                     b.data, msg_part);
    tg_buf_free(&b);
}
#define EXPECT_400(fn, s, qs, part) expect_400(fn, s, qs, part, __LINE__)

TEST(query_params_decoding)
{
    tg_query_param_t *p;
    char err[200];
    int n = tg_query_params_parse("a=1&b=x%20y&b=z+w&c&&=v&d=%41%2b&e=%C3%A9", &p, err, sizeof err);
    CHECK_INT(n, 7);
    if (n == 7) {
        CHECK_STR(p[0].key, "a");
        CHECK_STR(p[0].value, "1");
        CHECK_STR(p[1].value, "x y");
        CHECK_STR(p[2].key, "b"); /* repeated keys are kept, in order */
        CHECK_STR(p[2].value, "z w");
        CHECK_STR(p[3].key, "c");
        CHECK_STR(p[3].value, "");
        CHECK_STR(p[4].key, "");
        CHECK_STR(p[5].value, "A+");
        CHECK_STR(p[6].value, "\xc3\xa9");
    }
    tg_query_params_free(p, n);
    CHECK_INT(tg_query_params_parse("", &p, err, sizeof err), 0);
    tg_query_params_free(p, 0);
    CHECK_INT(tg_query_params_parse(NULL, &p, err, sizeof err), 0);
    CHECK_INT(tg_query_params_parse("?a=1", &p, err, sizeof err), 1);
    tg_query_params_free(p, 1);
    CHECK_INT(tg_query_params_parse("a=%zz", &p, err, sizeof err), -1);
    CHECK(strstr(err, "percent-encoding") != NULL);
    CHECK_INT(tg_query_params_parse("a=%4", &p, err, sizeof err), -1);
    CHECK_INT(tg_query_params_parse("a=%", &p, err, sizeof err), -1);
    CHECK_INT(tg_query_params_parse("a=x%00y", &p, err, sizeof err), -1);
    CHECK(strstr(err, "NUL") != NULL);
}

TEST(query_parse_filters_and_errors)
{
    tg_query_t q;
    char err[300];
    CHECK_INT(tg_query_parse(TG_QUERY_LIST,
                             "model=a&model=b&model=a&status=4xx&status=200&status=error"
                             "&property.Agent-Name=x&properties.agent-name=y&user_id=u"
                             "&from=2025-11-05&to=1762387200&limit=10&offset=20",
                             0, &q, err, sizeof err),
              0);
    CHECK_INT(q.models.n, 2);
    CHECK_INT(q.n_status, 2);
    CHECK(q.status[0].lo == 400 && q.status[0].hi == 499);
    CHECK(q.status_error);
    CHECK_INT(q.n_props, 1); /* property names are case-insensitive */
    CHECK_INT(q.props[0].values.n, 2);
    CHECK(q.has_from && q.from_ms == T0);
    CHECK(q.has_to && q.to_ms == T0 + DAY);
    CHECK_INT(q.limit, 10);
    CHECK_INT(q.offset, 20);
    tg_query_free(&q);

    static const struct {
        tg_query_kind_t kind;
        const char *qs, *msg;
    } bad[] = {
        {TG_QUERY_LIST, "from=yesterday", "from: expected an RFC 3339 time"},
        {TG_QUERY_LIST, "to=2025-02-30", "to: expected"},
        {TG_QUERY_LIST, "limit=0", "limit: expected an integer from 1 to 1000"},
        {TG_QUERY_LIST, "limit=5000", "limit"},
        {TG_QUERY_LIST, "offset=-1", "offset"},
        {TG_QUERY_LIST, "limit=ten", "limit"},
        {TG_QUERY_LIST, "status=abc", "status: expected an HTTP status"},
        {TG_QUERY_LIST, "status=6xx", "status"},
        {TG_QUERY_LIST, "colour=red", "unknown parameter 'colour'"},
        {TG_QUERY_LIST, "group_by=model", "unknown parameter 'group_by'"},
        {TG_QUERY_LIST, "property.=x", "property name is missing"},
        {TG_QUERY_LIST, "model=", "model: empty value"},
        {TG_QUERY_LIST, "from=2025-11-06&to=2025-11-05", "from must be before to"},
        {TG_QUERY_LIST, "model=%G1", "percent-encoding"},
        {TG_QUERY_COSTS, "group_by=colour", "group_by: expected model, provider, user, day"},
        {TG_QUERY_COSTS, "group_by=property:", "group_by"},
        {TG_QUERY_COSTS, "limit=5", "unknown parameter 'limit'"},
        {TG_QUERY_COSTS_PERIOD, "period=year", "period: expected day, week or month"},
        {TG_QUERY_COSTS_PERIOD, "period=day&from=2025-11-01", "either period or from/to"},
        {TG_QUERY_COSTS_PERIOD, "filter=Agent-Name", "filter: expected FIELD=VALUE"},
        {TG_QUERY_COSTS_PERIOD, "filter=agent=x", "filter: unknown field 'agent'"},
        {TG_QUERY_STATS, "period=day", "unknown parameter 'period'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = tg_query_parse(bad[i].kind, bad[i].qs, T0, &q, err, sizeof err);
        if (rc != -1 || !strstr(err, bad[i].msg))
            tg_test_fail(__FILE__, __LINE__, "'%s' -> %d '%s', expected '%s'", bad[i].qs, rc, err,
                         bad[i].msg);
        tg_query_free(&q);
    }
}

TEST(query_periods_are_utc_calendar_periods)
{
    tg_query_t q;
    char err[200];
    int64_t now = T0 + 10 * HOUR; /* Wednesday 2025-11-05 10:00Z */
    CHECK_INT(tg_query_parse(TG_QUERY_COSTS_PERIOD, "filter=properties.Agent-Name=a1", now, &q, err,
                             sizeof err),
              0);
    CHECK_STR(q.period, "day"); /* the default */
    CHECK(q.from_ms == T0 && q.to_ms == T0 + DAY);
    CHECK_INT(q.n_props, 1);
    CHECK_STR(q.props[0].name, "Agent-Name");
    CHECK_STR(q.props[0].values.v[0], "a1");
    tg_query_free(&q);
    CHECK_INT(tg_query_parse(TG_QUERY_COSTS_PERIOD, "period=week", now, &q, err, sizeof err), 0);
    CHECK(q.from_ms == T0 - 2 * DAY && q.to_ms == T0 + 5 * DAY); /* Monday to Monday */
    tg_query_free(&q);
    CHECK_INT(tg_query_parse(TG_QUERY_COSTS_PERIOD, "period=month", now, &q, err, sizeof err), 0);
    CHECK(q.from_ms == T0 - 4 * DAY && q.to_ms == T0 + 26 * DAY); /* Nov 1 .. Dec 1 */
    tg_query_free(&q);
    int64_t dec = T0 + 40 * DAY; /* 2025-12-15 */
    CHECK_INT(tg_query_parse(TG_QUERY_COSTS_PERIOD, "period=month", dec, &q, err, sizeof err), 0);
    CHECK(q.from_ms == T0 + 26 * DAY && q.to_ms == T0 + 57 * DAY); /* Dec 1 .. Jan 1 */
    tg_query_free(&q);
    /* explicit from/to instead of a period */
    CHECK_INT(tg_query_parse(TG_QUERY_COSTS_PERIOD, "from=2025-11-05&to=2025-11-06", now, &q, err,
                             sizeof err),
              0);
    CHECK(q.period == NULL && q.from_ms == T0 && q.to_ms == T0 + DAY);
    tg_query_free(&q);
}

TEST(query_list_filters)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_store_t *s = f.s;
    EXPECT_LIST(s, "", "r6,r5,r4,r3,r2,r1", 6); /* newest first */
    EXPECT_LIST(s, NULL, "r6,r5,r4,r3,r2,r1", 6);
    EXPECT_LIST(s, "limit=2&offset=1", "r5,r4", 6);
    EXPECT_LIST(s, "limit=2&offset=10", "", 6);
    EXPECT_LIST(s, "model=gpt-4o", "r6,r1", 2);
    EXPECT_LIST(s, "model=gpt-4o&model=gpt-4o-mini", "r6,r2,r1", 3);
    EXPECT_LIST(s, "provider=anthropic", "r4,r3", 2);
    EXPECT_LIST(s, "status=200", "r5,r4,r2,r1", 4);
    EXPECT_LIST(s, "status=4xx", "r3", 1);
    EXPECT_LIST(s, "status=4xx&status=5xx", "r6,r3", 2); /* errors only: the partial index */
    EXPECT_LIST(s, "status=4xx&status=200", "r5,r4,r3,r2,r1", 5);
    EXPECT_LIST(s, "status=error", "r6,r3", 2);
    EXPECT_LIST(s, "status=success", "r5,r4,r2,r1", 4);
    EXPECT_LIST(s, "user_id=u1", "r2,r1", 2);
    EXPECT_LIST(s, "session_id=s2", "r3", 1);
    EXPECT_LIST(s, "property.Agent-Name=a1", "r6,r2,r1", 3);
    EXPECT_LIST(s, "property.agent-name=a1", "r6,r2,r1", 3); /* names ignore case */
    EXPECT_LIST(s, "property.Agent-Name=A1", "", 0);         /* values do not */
    EXPECT_LIST(s, "properties.Agent-Name=a2", "r4,r3", 2);
    EXPECT_LIST(s, "property.Agent-Name=a1&property.Agent-Name=a2", "r6,r4,r3,r2,r1", 5);
    EXPECT_LIST(s, "property.Agent-Name=a1&property.Env=prod", "r1", 1);
    EXPECT_LIST(s, "property.Env=dev&model=claude-3-5-sonnet", "r4", 1);
    EXPECT_LIST(s, "property.Nope=x", "", 0);
    EXPECT_LIST(s, "from=2025-11-06T00:00:00Z", "r6,r5,r4", 3);
    EXPECT_LIST(s, "to=2025-11-06", "r3,r2,r1", 3);
    EXPECT_LIST(s, "from=1762387200&to=1762473600", "r5,r4", 2);          /* Unix seconds */
    EXPECT_LIST(s, "from=2025-11-05T04:00:00%2B01:00", "r6,r5,r4,r3", 4); /* 03:00Z, inclusive */
    EXPECT_LIST(s, "property.Agent-Name=a2&from=2025-11-06", "r4", 1);
    EXPECT_LIST(s, "property.Agent-Name=a1&limit=1&offset=1", "r2", 3);
    EXPECT_LIST(s, "filter=properties.Agent-Name=a2", "r4,r3", 2);
    /* values are bound, never spliced into SQL */
    EXPECT_LIST(s, "model='%20OR%201=1%20--", "", 0);
    EXPECT_LIST(s, "property.x')%20OR%20('1'='1=y", "", 0);
    EXPECT_400(tg_query_requests, s, "from=tomorrow", "from: expected");
    EXPECT_400(tg_query_requests, s, "limit=-3", "limit");

    /* the list answer's shape: SPEC names, no bodies */
    tg_buf_t b = {0};
    CHECK_INT(tg_query_requests(s, "limit=1&offset=5", &b), 200);
    CHECK(strstr(b.data, "{\"data\":[{\"id\":\"r1\",\"created_at\":\"2025-11-05T01:00:00.000Z\","
                         "\"provider\":\"openai\",\"model\":\"gpt-4o\"") == b.data);
    CHECK(strstr(b.data, "\"properties\":{\"Agent-Name\":\"a1\",\"Env\":\"prod\"}") != NULL);
    CHECK(strstr(b.data, "\"cost\":0.000001,\"cache\":\"miss\"") != NULL);
    CHECK(strstr(b.data, "request_body") == NULL);
    CHECK(strstr(b.data, "],\"total\":6,\"limit\":1,\"offset\":5}") != NULL);
    tg_buf_free(&b);
    fixture_close(&f);
}

TEST(query_one_record_with_bodies)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t b = {0};
    CHECK_INT(tg_query_request(f.s, "r1", &b), 200);
    CHECK(strstr(b.data,
                 "\"request_body\":{\"model\":\"gpt-4o\",\"messages\":[]},"
                 "\"response_body\":\"data: {\\\"x\\\":1}\\n\\ndata: [DONE]\\n\\n\"}") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request(f.s, "r3", &b), 200);
    CHECK(strstr(b.data, "\"error\":\"rate limited\",\"request_body\":null,"
                         "\"response_body\":null}") != NULL);
    CHECK(strstr(b.data, "\"prompt_tokens\":null") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request(f.s, "nope", &b), 404);
    CHECK(strstr(b.data, "\"code\":\"not_found\"") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request(f.s, "", &b), 400);
    tg_buf_free(&b);
    fixture_close(&f);
}

/* A long streamed body goes into the store compressed (on either
 * back-end) and the API gives it back as it was sent. */
TEST(query_one_record_with_long_bodies)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t stream = {0}, want = {0}, b = {0};
    for (int i = 0; i < 60; i++)
        tg_buf_printf(&stream, "data: {\"choices\":[{\"delta\":{\"content\":\"w%d\"}}]}\n\n", i);
    tg_record_t *r = row_record(&rows[0]);
    tg_record_set_str(&r->id, "long");
    tg_record_set_body(r, true, stream.data, stream.len, -1);
    tg_store_submit(f.s, r);
    CHECK_INT(tg_store_flush(f.s, 20000), 0);
    CHECK_INT(tg_query_request(f.s, "long", &b), 200);
    tg_buf_puts(&want, "\"response_body\":");
    tg_record_json_str(&want, stream.data, stream.len);
    tg_buf_puts(&want, "}");
    CHECK(b.len > want.len && !strcmp(b.data + b.len - want.len, want.data));
    tg_buf_free(&b);
    tg_buf_free(&want);
    tg_buf_free(&stream);
    fixture_close(&f);
}

TEST(query_costs_grouped)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t b = {0};
    CHECK_INT(tg_query_costs(f.s, "group_by=model", &b), 200);
    CHECK_STR(
        b.data,
        "{\"group_by\":\"model\",\"from\":null,\"to\":null,\"data\":["
        "{\"group\":\"claude-3-5-sonnet\",\"total_cost\":0.000005,\"requests\":2,"
        "\"prompt_tokens\":1000,\"completion_tokens\":100,\"cached_tokens\":0,"
        "\"cache_write_tokens\":0,\"reasoning_tokens\":0,\"unpriced\":0,\"cache_saved\":0},"
        "{\"group\":\"gpt-4o-mini\",\"total_cost\":0.000002,\"requests\":1,"
        "\"prompt_tokens\":200,\"completion_tokens\":20,\"cached_tokens\":0,"
        "\"cache_write_tokens\":0,\"reasoning_tokens\":0,\"unpriced\":0,\"cache_saved\":0.000007},"
        "{\"group\":\"gpt-4o\",\"total_cost\":0.000001,\"requests\":2,"
        "\"prompt_tokens\":100,\"completion_tokens\":50,\"cached_tokens\":0,"
        "\"cache_write_tokens\":0,\"reasoning_tokens\":0,\"unpriced\":0,\"cache_saved\":0},"
        "{\"group\":\"local-model\",\"total_cost\":0,\"requests\":1,"
        "\"prompt_tokens\":10,\"completion_tokens\":10,\"cached_tokens\":0,"
        "\"cache_write_tokens\":0,\"reasoning_tokens\":0,\"unpriced\":1,\"cache_saved\":0}]}");
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "group_by=day&from=2025-11-05&to=2025-11-07", &b), 200);
    CHECK(strstr(b.data, "\"from\":\"2025-11-05T00:00:00.000Z\",\"to\":"
                         "\"2025-11-07T00:00:00.000Z\"") != NULL);
    CHECK(strstr(b.data, "{\"group\":\"2025-11-05\",\"total_cost\":0.000003,\"requests\":3,") !=
          NULL);
    CHECK(strstr(b.data, "{\"group\":\"2025-11-06\",\"total_cost\":0.000005,\"requests\":2,") !=
          NULL);
    CHECK(strstr(b.data, "2025-11-07\"") == NULL ||
          strstr(b.data, "\"group\":\"2025-11-07\"") == NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "group_by=property:Agent-Name", &b), 200);
    CHECK(strstr(b.data, "\"group_by\":\"property:Agent-Name\"") != NULL);
    const char *a2 = strstr(b.data, "{\"group\":\"a2\",\"total_cost\":0.000005,\"requests\":2,");
    const char *a1 = strstr(b.data, "{\"group\":\"a1\",\"total_cost\":0.000003,\"requests\":3,");
    const char *none = strstr(b.data, "{\"group\":null,\"total_cost\":0,\"requests\":1,");
    CHECK(a2 && a1 && none && a2 < a1 && a1 < none);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "group_by=property:agent-name&property.Env=dev", &b), 200);
    CHECK(strstr(b.data, "\"data\":[{\"group\":\"a2\",\"total_cost\":0.000005,\"requests\":1,") !=
          NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "group_by=user", &b), 200);
    CHECK(strstr(b.data, "\"data\":[{\"group\":\"u2\",\"total_cost\":0.000005,\"requests\":2,") !=
          NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "group_by=provider&status=200", &b), 200);
    CHECK(strstr(b.data, "\"data\":[{\"group\":\"anthropic\",\"total_cost\":0.000005,"
                         "\"requests\":1,") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_costs(f.s, "", &b), 200); /* group_by defaults to model */
    CHECK(strstr(b.data, "\"group_by\":\"model\"") != NULL);
    tg_buf_free(&b);
    EXPECT_400(tg_query_costs, f.s, "group_by=hour", "group_by: expected");
    EXPECT_400(tg_query_costs, f.s, "group_by=day&from=2025-13-01", "from: expected");
    fixture_close(&f);
}

TEST(query_costs_seed_form)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    /* two calls today for agent "seed", one for another agent, one yesterday */
    int64_t now = tg_wall_ms();
    for (int i = 0; i < 4; i++) {
        tg_record_t *r = tg_record_new();
        r->created_at_ms = i == 3 ? now - 2 * DAY : now - i;
        r->status = 200;
        tg_record_set_str(&r->model, "deepseek-chat");
        tg_record_set_property(r, "Agent-Name", i == 2 ? "other" : "seed");
        r->usage = (tg_usage_t){1234, 567, -1, -1, -1};
        r->cost_nusd = 331520;
        tg_store_submit(f.s, r);
    }
    CHECK_INT(tg_store_flush(f.s, 20000), 0);
    tg_buf_t b = {0};
    CHECK_INT(tg_query_request_costs(f.s, "filter=properties.Agent-Name=seed&period=day", &b), 200);
    CHECK(strstr(b.data, "{\"total_cost\":0.00066304,\"requests\":2,\"prompt_tokens\":2468,"
                         "\"completion_tokens\":1134,") == b.data);
    CHECK(strstr(b.data, "\"period\":\"day\",\"from\":\"") != NULL);
    CHECK(strstr(b.data, "T00:00:00.000Z\",\"to\":\"") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request_costs(f.s, "filter=properties.Agent-Name=seed&period=month", &b),
              200);
    /* the record two days ago is in this month unless the month just began */
    CHECK(strstr(b.data, "\"requests\":2,") || strstr(b.data, "\"requests\":3,"));
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request_costs(f.s,
                                     "filter=properties.Agent-Name=a1&from=2025-11-05"
                                     "&to=2025-11-06",
                                     &b),
              200);
    CHECK(strstr(b.data, "{\"total_cost\":0.000003,\"requests\":2,\"prompt_tokens\":300,"
                         "\"completion_tokens\":70,") == b.data);
    CHECK(strstr(b.data, "\"period\":null,\"from\":\"2025-11-05T00:00:00.000Z\","
                         "\"to\":\"2025-11-06T00:00:00.000Z\"}") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_request_costs(f.s, "filter=properties.Agent-Name=nobody", &b), 200);
    CHECK(strstr(b.data, "{\"total_cost\":0,\"requests\":0,\"prompt_tokens\":0,") == b.data);
    tg_buf_free(&b);
    EXPECT_400(tg_query_request_costs, f.s, "filter=properties.Agent-Name=x&period=fortnight",
               "period");
    fixture_close(&f);
}

TEST(query_stats_percentiles)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t b = {0};
    CHECK_INT(tg_query_stats(f.s, "", &b), 200);
    CHECK_STR(b.data, "{\"from\":null,\"to\":null,\"requests\":6,\"errors\":2,\"cache_hits\":1,"
                      "\"cache_misses\":2,\"cache_hit_rate\":0.333333,"
                      "\"latency_ms\":{\"p50\":300,\"p95\":600,\"p99\":600},"
                      "\"ttft_ms\":{\"p50\":20,\"p95\":50,\"p99\":50},"
                      "\"prompt_tokens\":1310,\"completion_tokens\":180,\"cached_tokens\":0,"
                      "\"cache_write_tokens\":0,\"reasoning_tokens\":0,\"total_cost\":0.000008,"
                      "\"cache_saved\":0.000007,\"priced\":3,\"unpriced\":1}");
    tg_buf_reset(&b);
    CHECK_INT(tg_query_stats(f.s, "from=2025-11-05&to=2025-11-06", &b), 200);
    CHECK(strstr(b.data, "\"requests\":3,\"errors\":1,") != NULL);
    CHECK(strstr(b.data, "\"latency_ms\":{\"p50\":200,\"p95\":300,\"p99\":300}") != NULL);
    CHECK(strstr(b.data, "\"ttft_ms\":{\"p50\":10,\"p95\":20,\"p99\":20}") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_stats(f.s, "from=2030-01-01", &b), 200);
    CHECK(strstr(b.data, "\"requests\":0,\"errors\":0,\"cache_hits\":0,\"cache_misses\":0,"
                         "\"cache_hit_rate\":null,\"latency_ms\":{\"p50\":null,\"p95\":null,"
                         "\"p99\":null}") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_stats(f.s, "property.Agent-Name=a1&model=gpt-4o", &b), 200);
    CHECK(strstr(b.data, "\"requests\":2,\"errors\":1,") != NULL);
    tg_buf_free(&b);
    EXPECT_400(tg_query_stats, f.s, "to=soon", "to: expected");
    fixture_close(&f);
}

TEST(query_without_a_store)
{
    tg_buf_t b = {0};
    CHECK_INT(tg_query_requests(NULL, "", &b), 503);
    CHECK(strstr(b.data, "logging_disabled") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_stats(NULL, "from=x", &b), 400); /* the query is checked first */
    tg_buf_free(&b);
}

/* ---- the dashboard's series and sessions ---- */

TEST(query_series_buckets_and_groups)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t b = {0};
    /* three days by day: every bucket present, empty ones zero */
    CHECK_INT(tg_query_series(f.s, "from=2025-11-05&to=2025-11-08&bucket=1d", &b), 200);
    CHECK(strstr(b.data, "\"bucket\":\"1d\",\"bucket_seconds\":86400,") != NULL);
    CHECK(strstr(b.data, "\"group_by\":null,\"groups_total\":1,"
                         "\"t\":[1762300800,1762387200,1762473600],") != NULL);
    CHECK(strstr(b.data, "\"group\":null,\"total_cost\":0.000008,\"total_requests\":6,"
                         "\"requests\":[3,2,1],\"errors\":[1,0,1],\"cache_hits\":[1,0,0],"
                         "\"cache_misses\":[1,1,0],\"prompt_tokens\":[300,1010,0],"
                         "\"completion_tokens\":[70,110,0],\"latency_p50\":[200,400,600],"
                         "\"latency_p95\":[300,500,600],\"latency_p99\":[300,500,600],"
                         "\"ttft_p50\":[10,40,null],\"cost\":[0.000003,0.000005,0]}") != NULL);
    /* by model, the costliest first, and a filter */
    tg_buf_reset(&b);
    CHECK_INT(tg_query_series(f.s, "from=2025-11-05&to=2025-11-08&bucket=1d&group_by=model", &b),
              200);
    const char *first = strstr(b.data, "\"series\":[{\"group\":\"claude-3-5-sonnet\",");
    CHECK(first != NULL);
    CHECK(first && strstr(first, "\"requests\":[1,1,0],\"errors\":[1,0,0]") != NULL);
    CHECK(strstr(b.data, "\"groups_total\":4,") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_series(f.s,
                              "from=2025-11-05&to=2025-11-06&bucket=1h&group_by=property:Agent-Name"
                              "&provider=openai",
                              &b),
              200);
    CHECK(strstr(b.data, "\"group_by\":\"property:Agent-Name\",\"groups_total\":1,") != NULL);
    CHECK(strstr(b.data, "{\"group\":\"a1\",\"total_cost\":0.000003,\"total_requests\":2,") !=
          NULL);
    /* from is rounded down to its bucket's start */
    tg_buf_reset(&b);
    CHECK_INT(
        tg_query_series(f.s, "from=2025-11-05T01:30:00Z&to=2025-11-05T03:00:00Z&bucket=1h", &b),
        200);
    CHECK(strstr(b.data, "\"from\":\"2025-11-05T01:00:00.000Z\"") != NULL);
    CHECK(strstr(b.data, "\"requests\":[1,1]") != NULL);
    tg_buf_free(&b);
    EXPECT_400(tg_query_series, f.s, "bucket=2m", "bucket: expected 1m, 5m, 1h or 1d");
    EXPECT_400(tg_query_series, f.s, "group_by=day", "already by time");
    EXPECT_400(tg_query_series, f.s, "from=2025-01-01&to=2025-11-01&bucket=1m", "more than");
    EXPECT_400(tg_query_series, f.s, "from=2025-11-02&to=2025-11-01", "before");
    fixture_close(&f);
}

TEST(query_series_default_range_and_bucket)
{
    tg_query_t q;
    char err[200];
    int64_t now = T0 + 10 * HOUR + 123;
    CHECK_INT(tg_query_parse(TG_QUERY_SERIES, "", now, &q, err, sizeof err), 0);
    CHECK_INT(q.to_ms, now);
    CHECK_INT(q.bucket_ms, 300000); /* a day: 5 minutes */
    CHECK_INT(q.from_ms, now - 123 - DAY);
    tg_query_free(&q);
    CHECK_INT(
        tg_query_parse(TG_QUERY_SERIES, "from=2025-11-05T09:00:00Z", now, &q, err, sizeof err), 0);
    CHECK_INT(q.bucket_ms, 60000); /* an hour: one minute */
    tg_query_free(&q);
    CHECK_INT(tg_query_parse(TG_QUERY_SERIES, "from=2025-10-01", now, &q, err, sizeof err), 0);
    CHECK_INT(q.bucket_ms, DAY);
    tg_query_free(&q);
}

TEST(query_sessions_list_and_one)
{
    fixture_t f;
    CHECK(fixture_open(&f));
    tg_buf_t b = {0};
    CHECK_INT(tg_query_sessions(f.s, "", &b), 200);
    /* by the last request, newest first */
    const char *s3 = strstr(b.data, "\"session_id\":\"s3\"");
    const char *s2 = strstr(b.data, "\"session_id\":\"s2\"");
    const char *s1 = strstr(b.data, "\"session_id\":\"s1\"");
    CHECK(s3 && s2 && s1 && s3 < s2 && s2 < s1);
    CHECK(s1 && strstr(s1, "\"session_id\":\"s1\",\"session_name\":null,\"requests\":2,"
                           "\"errors\":0,\"cost\":0.000003,\"prompt_tokens\":300,"
                           "\"completion_tokens\":70,\"latency_ms\":300,"
                           "\"first_at\":\"2025-11-05T01:00:00.000Z\","
                           "\"last_at\":\"2025-11-05T02:00:00.000Z\"}") == s1);
    CHECK(strstr(b.data, "\"total\":3,\"limit\":50,\"offset\":0}") != NULL);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_sessions(f.s, "user_id=u2&limit=1", &b), 200);
    CHECK(strstr(b.data, "{\"data\":[{\"session_id\":\"s2\",") == b.data);
    CHECK(strstr(b.data, "\"total\":1,\"limit\":1,") != NULL);
    /* one session: its records oldest first, and its totals */
    tg_buf_reset(&b);
    CHECK_INT(tg_query_session(f.s, "s1", &b), 200);
    CHECK(strstr(b.data, "{\"session_id\":\"s1\",\"session_name\":null,\"requests\":2,") == b.data);
    const char *r1 = strstr(b.data, "{\"id\":\"r1\"");
    const char *r2 = strstr(b.data, "{\"id\":\"r2\"");
    CHECK(r1 && r2 && r1 < r2);
    tg_buf_reset(&b);
    CHECK_INT(tg_query_session(f.s, "nope", &b), 404);
    tg_buf_free(&b);
    EXPECT_400(tg_query_sessions, f.s, "limit=0", "limit");
    fixture_close(&f);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

TEST(query_stats_percentiles_match_a_sort)
{
    /* many values with repeats, in a random order: the selection the
     * stats use must give what sorting gives (nearest rank) */
    fixture_t f;
    snprintf(f.dir, sizeof f.dir, "/tmp/tg-query-XXXXXX");
    CHECK(mkdtemp(f.dir) != NULL);
    char err[256];
    tg_test_store_t where;
    tg_store_options_t o;
    tg_test_store_options(f.dir, "q.db", &where, &o);
    CHECK_INT(tg_store_open(&o, &f.s, err, sizeof err), 0);
    enum { N = 997 };
    long long lat[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        lat[i] = (long long)((seed >> 8) % 300); /* repeats */
        tg_record_t *r = tg_record_new();
        r->created_at_ms = T0 + i;
        r->status = 200;
        r->latency_ms = lat[i];
        tg_store_submit(f.s, r);
    }
    CHECK_INT(tg_store_flush(f.s, 20000), 0);
    qsort(lat, N, sizeof lat[0], cmp_ll);
    char want[128];
    snprintf(want, sizeof want, "\"latency_ms\":{\"p50\":%lld,\"p95\":%lld,\"p99\":%lld}",
             lat[(50 * N + 99) / 100 - 1], lat[(95 * N + 99) / 100 - 1],
             lat[(99 * N + 99) / 100 - 1]);
    tg_buf_t b = {0};
    CHECK_INT(tg_query_stats(f.s, "", &b), 200);
    if (!strstr(b.data, want))
        tg_test_fail(__FILE__, __LINE__, "%s, expected %s", b.data, want);
    tg_buf_free(&b);
    fixture_close(&f);
}

TEST(query_series_keeps_the_costliest_groups)
{
    /* 50 groups (a property unique to each request): the 20 costliest are
     * kept, in cost order, with their buckets; groups_total says 50 */
    fixture_t f;
    snprintf(f.dir, sizeof f.dir, "/tmp/tg-query-XXXXXX");
    CHECK(mkdtemp(f.dir) != NULL);
    char err[256];
    tg_test_store_t where;
    tg_store_options_t o;
    tg_test_store_options(f.dir, "q.db", &where, &o);
    CHECK_INT(tg_store_open(&o, &f.s, err, sizeof err), 0);
    for (int i = 0; i < 50; i++) {
        tg_record_t *r = tg_record_new();
        r->created_at_ms = T0 + i * 60000LL;
        r->status = 200;
        r->cost_nusd = 1000LL * (i + 1);
        char v[16];
        snprintf(v, sizeof v, "req-%02d", i);
        tg_record_set_property(r, "Req", v);
        tg_store_submit(f.s, r);
    }
    CHECK_INT(tg_store_flush(f.s, 20000), 0);
    tg_buf_t b = {0};
    CHECK_INT(tg_query_series(f.s,
                              "from=2025-11-05T00:00:00Z&to=2025-11-05T01:00:00Z&bucket=5m"
                              "&group_by=property:Req",
                              &b),
              200);
    CHECK(strstr(b.data, "\"groups_total\":50,") != NULL);
    const char *first = strstr(b.data, "\"series\":[{\"group\":\"req-49\",\"total_cost\":0.00005,"
                                       "\"total_requests\":1,");
    CHECK(first != NULL);
    CHECK(strstr(b.data, "\"group\":\"req-30\"") != NULL);
    CHECK(strstr(b.data, "\"group\":\"req-29\"") == NULL);
    /* req-49 came at minute 49: the 10th bucket of 5 minutes */
    CHECK(first && strstr(first, "\"requests\":[0,0,0,0,0,0,0,0,0,1,0,0]") != NULL);
    tg_buf_free(&b);
    fixture_close(&f);
}
