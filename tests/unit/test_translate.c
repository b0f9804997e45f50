/*
 * Dialect translation: every golden case (tests/cases/<dialect>/NAME.json)
 * (run from the repository root), then unit tests of the pieces. A case
 * file holds the client request, the expected upstream request, the
 * upstream reply (a JSON document, or the raw SSE text of a stream) and the
 * expected client answer; JSON is compared semantically (json_equal), a
 * stream event by event. Format: tests/cases/README.md.
 */
#include "test.h"

#include "core/sse.h"
#include "providers/provider.h"
#include "providers/translate.h"

#include <dirent.h>
#include <stdlib.h>

#define CASES_DIR "tests/cases"

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    tg_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tg_buf_append(&b, chunk, n);
    fclose(f);
    if (!b.data)
        tg_buf_puts(&b, "");
    *len = b.len;
    return b.data;
}

/* A stream in a case file: a string, or an array of lines joined by "\n". */
static void stream_text(json_t *v, tg_buf_t *out)
{
    if (json_is_string(v)) {
        tg_buf_append(out, json_string_value(v), json_string_length(v));
        return;
    }
    size_t i;
    json_t *line;
    json_array_foreach(v, i, line)
    {
        tg_buf_append(out, json_string_value(line), json_string_length(line));
        tg_buf_puts(out, "\n");
    }
}

typedef struct {
    json_t *events; /* [[event, data], ...] */
} events_t;

static int collect(void *arg, const char *event, const char *data, size_t len)
{
    events_t *e = arg;
    json_array_append_new(e->events, json_pack("[s,s%]", event, data, len));
    return 0;
}

static json_t *parse_events(const char *text, size_t len)
{
    events_t e = {json_array()};
    tg_sse_parser_t p = {0};
    tg_sse_feed(&p, text, len, collect, &e);
    tg_sse_feed(&p, "\n\n", 2, collect, &e); /* a last event without its blank line */
    tg_sse_free(&p);
    return e.events;
}

static bool same_data(const char *a, const char *b)
{
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    bool same = ja && jb ? json_equal(ja, jb) : !strcmp(a, b);
    json_decref(ja);
    json_decref(jb);
    return same;
}

/* Compare two SSE texts event by event; report the first difference. */
static bool same_stream(const char *what, const char *got, size_t glen, const char *want,
                        size_t wlen)
{
    json_t *g = parse_events(got, glen), *w = parse_events(want, wlen);
    bool ok = true;
    size_t n = json_array_size(g) > json_array_size(w) ? json_array_size(g) : json_array_size(w);
    for (size_t i = 0; i < n && ok; i++) {
        json_t *ge = json_array_get(g, i), *we = json_array_get(w, i);
        const char *gev = json_string_value(json_array_get(ge, 0));
        const char *wev = json_string_value(json_array_get(we, 0));
        const char *gd = json_string_value(json_array_get(ge, 1));
        const char *wd = json_string_value(json_array_get(we, 1));
        if (!ge || !we || strcmp(gev, wev) || !same_data(gd, wd)) {
            tg_test_fail(__FILE__, __LINE__,
                         "%s: event %zu differs\n      got:  %s %s\n      want: %s %s", what, i,
                         gev ? gev : "(none)", gd ? gd : "", wev ? wev : "(none)", wd ? wd : "");
            ok = false;
        }
    }
    json_decref(g);
    json_decref(w);
    return ok;
}

static void check_json(const char *what, json_t *got, json_t *want)
{
    if (json_equal(got, want))
        return;
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    tg_test_fail(__FILE__, __LINE__, "%s differs\n      got:  %s\n      want: %s", what,
                 g ? g : "(null)", w ? w : "(null)");
    free(g);
    free(w);
}

static void check_usage(const char *what, const tg_usage_t *u, json_t *want)
{
    if (!want)
        return;
    long exp[5];
    const char *keys[5] = {"prompt_tokens", "completion_tokens", "cached_tokens",
                           "cache_write_tokens", "reasoning_tokens"};
    long got[5] = {u->prompt_tokens, u->completion_tokens, u->cached_tokens, u->cache_write_tokens,
                   u->reasoning_tokens};
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(want, keys[i]);
        exp[i] = json_is_integer(v) ? (long)json_integer_value(v) : -1;
        if (exp[i] != got[i])
            tg_test_fail(__FILE__, __LINE__, "%s: usage %s == %ld, expected %ld", what, keys[i],
                         got[i], exp[i]);
    }
}

/* ---- one golden case ---- */

static tg_wire_t client_of(const char *dir)
{
    if (!strncmp(dir, "responses->", 11))
        return TG_WIRE_RESPONSES;
    return !strncmp(dir, "anthropic->", 11) ? TG_WIRE_ANTHROPIC : TG_WIRE_OPENAI;
}

/* responses->openai is the mock's direction: OpenAI-type providers take
 * Responses natively. */
static tg_provider_type_t provider_of(const char *dir)
{
    if (strstr(dir, "->anthropic"))
        return TG_PROVIDER_ANTHROPIC;
    if (strstr(dir, "->gemini"))
        return TG_PROVIDER_GEMINI;
    return !strncmp(dir, "responses->", 11) ? TG_PROVIDER_MOCK : TG_PROVIDER_OPENAI;
}

typedef struct {
    tg_translate_stream_t *s;
    tg_buf_t *out;
} feed_ctx_t;

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    feed_ctx_t *c = arg;
    tg_translate_stream_feed(c->s, event, data, len, c->out);
    return 0;
}

/* Feed the upstream stream in pieces of `step` bytes; client bytes to out. */
static void run_stream(const tg_translator_t *t, const tg_translate_opts_t *o, const char *up,
                       size_t len, size_t step, tg_buf_t *out, tg_usage_t *u)
{
    tg_sse_parser_t p = {0};
    feed_ctx_t c = {tg_translate_stream_new(t, o), out};
    for (size_t i = 0; i < len; i += step)
        tg_sse_feed(&p, up + i, len - i < step ? len - i : step, on_event, &c);
    tg_sse_feed(&p, "\n\n", 2, on_event, &c);
    tg_translate_stream_finish(c.s, out);
    tg_translate_stream_usage(c.s, u);
    tg_translate_stream_free(c.s);
    tg_sse_free(&p);
    if (!out->data)
        tg_buf_puts(out, "");
}

static void check_reply(const char *name, const tg_translator_t *t, json_t *c,
                        const tg_translate_opts_t *o, tg_wire_t client)
{
    json_t *status = json_object_get(c, "upstream_status");
    int st = json_is_integer(status) ? (int)json_integer_value(status) : 200;
    json_t *resp = json_object_get(c, "upstream_response");
    json_t *stream = json_object_get(c, "upstream_stream");
    tg_buf_t up = {0}, out = {0};
    tg_usage_t u = TG_USAGE_UNKNOWN;
    if (resp) {
        if (json_is_string(resp))
            tg_buf_puts(&up, json_string_value(resp));
        else {
            char *txt = json_dumps(resp, JSON_COMPACT);
            tg_buf_puts(&up, txt);
            free(txt);
        }
        if (st / 100 == 2)
            CHECK(tg_translate_response(t, up.data, up.len, o, &out, &u) == 0);
        else
            tg_translate_error(client, st, up.data, up.len, &out);
        json_t *got = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        char what[1400];
        snprintf(what, sizeof what, "%s: client response", name);
        check_json(what, got, json_object_get(c, "expected_client_response"));
        json_decref(got);
    } else if (stream) {
        stream_text(stream, &up);
        tg_buf_t want = {0};
        stream_text(json_object_get(c, "expected_client_stream"), &want);
        size_t steps[] = {up.len ? up.len : 1, 1, 7, 64};
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            tg_buf_reset(&out);
            u = (tg_usage_t)TG_USAGE_UNKNOWN;
            run_stream(t, o, up.data, up.len, steps[k], &out, &u);
            char what[1400];
            snprintf(what, sizeof what, "%s: client stream (pieces of %zu)", name, steps[k]);
            if (!same_stream(what, out.data, out.len, want.data ? want.data : "", want.len))
                break;
        }
        tg_buf_free(&want);
    }
    check_usage(name, &u, json_object_get(c, "expected_usage"));
    tg_buf_free(&up);
    tg_buf_free(&out);
}

static void run_case(const char *path, json_t *c)
{
    const char *dir = json_string_value(json_object_get(c, "direction"));
    if (!dir) {
        tg_test_fail(__FILE__, __LINE__, "%s: no direction", path);
        return;
    }
    tg_wire_t client = client_of(dir);
    const tg_translator_t *t = tg_translate_for(client, provider_of(dir));
    CHECK(t && !strcmp(tg_translate_name(t), dir));
    if (!t)
        return;
    json_t *opts = json_object_get(c, "opts");
    tg_translate_ropts_t ro = {json_is_true(json_object_get(opts, "stream_usage"))};
    const char *model = json_string_value(json_object_get(c, "model"));
    tg_translate_req_t rq;
    char err[256] = "";
    int rc = tg_translate_request(t, json_object_get(c, "client_request"), model, &ro, &rq, err,
                                  sizeof err);
    const char *want_err = json_string_value(json_object_get(c, "expected_request_error"));
    if (want_err) {
        if (rc == 0 || !strstr(err, want_err))
            tg_test_fail(__FILE__, __LINE__, "%s: request error \"%s\", expected \"%s\"", path,
                         rc == 0 ? "(none)" : err, want_err);
        tg_translate_req_free(&rq);
        return;
    }
    if (rc < 0) {
        tg_test_fail(__FILE__, __LINE__, "%s: request refused: %s", path, err);
        return;
    }
    char what[1400];
    snprintf(what, sizeof what, "%s: upstream request", path);
    check_json(what, rq.body, json_object_get(c, "expected_upstream_request"));
    const char *want_path = json_string_value(json_object_get(c, "expected_path"));
    if (want_path)
        CHECK_STR(rq.path, want_path);
    const char *want_query = json_string_value(json_object_get(c, "expected_query"));
    if (want_query || rq.query)
        CHECK_STR(rq.query ? rq.query : "(none)", want_query ? want_query : "(none)");
    tg_translate_opts_t o = {
        .id = json_string_value(json_object_get(opts, "id")),
        .created = json_is_integer(json_object_get(opts, "created"))
                       ? (long)json_integer_value(json_object_get(opts, "created"))
                       : 1700000000,
        .model = model,
        .include_usage = rq.include_usage,
        .prompt_estimate = rq.prompt_estimate, /* as the pipeline passes it */
    };
    json_t *want_est = json_object_get(c, "expected_prompt_estimate");
    if (want_est && rq.prompt_estimate != (long)json_integer_value(want_est))
        tg_test_fail(__FILE__, __LINE__, "%s: prompt estimate %ld, expected %ld", path,
                     rq.prompt_estimate, (long)json_integer_value(want_est));
    if (!o.id)
        o.id = "chatcmpl-test";
    check_reply(path, t, c, &o, client);
    tg_translate_req_free(&rq);
}

static int run_dir(const char *dirpath)
{
    DIR *d = opendir(dirpath);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    char **names = NULL;
    size_t count = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) {
            names = tg_xrealloc(names, (count + 1) * sizeof *names);
            names[count++] = tg_xstrdup(e->d_name);
        }
    }
    closedir(d);
    for (size_t i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dirpath, names[i]);
        size_t len;
        char *text = read_file(path, &len);
        json_error_t je;
        json_t *c = text ? json_loadb(text, len, 0, &je) : NULL;
        if (!c)
            tg_test_fail(__FILE__, __LINE__, "%s: unreadable: %s (line %d)", path,
                         text ? je.text : "cannot open", text ? je.line : 0);
        else
            run_case(path, c), n++;
        json_decref(c);
        free(text);
        free(names[i]);
    }
    free(names);
    return n;
}

TEST(translate_golden_cases)
{
    const char *dialects[] = {"anthropic", "gemini", "openai", NULL};
    int n = 0;
    for (int i = 0; dialects[i]; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", CASES_DIR, dialects[i]);
        n += run_dir(dir);
    }
    printf("     %d golden cases\n", n);
    CHECK(n >= 20);
}

/* ---- unit tests of the pieces ---- */

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    if (!j)
        tg_test_fail(__FILE__, __LINE__, "bad test JSON: %s", s);
    return j;
}

static void check_json_text(const char *what, const char *got, const char *want)
{
    json_t *g = json_loads(got ? got : "", 0, NULL), *w = parse(want);
    if (!g)
        tg_test_fail(__FILE__, __LINE__, "%s: not JSON: %s", what, got ? got : "(null)");
    else
        check_json(what, g, w);
    json_decref(g);
    json_decref(w);
}

/* Responses clients: native to OpenAI-type providers, translated for the
 * others; the mock answers Chat Completions, so it gets a translator too. */
TEST(translate_table_responses)
{
    CHECK(tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_OPENAI) == NULL);
    CHECK(tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_AZURE) == NULL);
    CHECK(tg_translate_native(TG_WIRE_RESPONSES, TG_PROVIDER_OPENAI));
    CHECK(tg_translate_native(TG_WIRE_RESPONSES, TG_PROVIDER_AZURE));
    CHECK(!tg_translate_native(TG_WIRE_RESPONSES, TG_PROVIDER_MOCK));
    CHECK(!tg_translate_native(TG_WIRE_RESPONSES, TG_PROVIDER_ANTHROPIC));
    CHECK(!tg_translate_native(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI));
    CHECK(tg_translate_native(TG_WIRE_GEMINI, TG_PROVIDER_GEMINI));
    CHECK_STR(tg_translate_name(tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_ANTHROPIC)),
              "responses->anthropic");
    CHECK_STR(tg_translate_name(tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_GEMINI)),
              "responses->gemini");
    CHECK_STR(tg_translate_name(tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_MOCK)),
              "responses->openai");
}

/* The usage of native Responses answers and of the terminal event of a
 * native Responses stream; deltas carry none. */
TEST(translate_responses_native_usage)
{
    const char *answer = "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],\"usage\":{"
                         "\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":4},"
                         "\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":2},"
                         "\"total_tokens\":19}}";
    tg_usage_t u = TG_USAGE_UNKNOWN;
    tg_dialect_responses.answer_usage(answer, strlen(answer), &u);
    CHECK_INT(u.prompt_tokens, 12);
    CHECK_INT(u.completion_tokens, 7);
    CHECK_INT(u.cached_tokens, 4);
    CHECK_INT(u.reasoning_tokens, 2);
    const char *delta = "{\"type\":\"response.output_text.delta\",\"delta\":\"usage\"}";
    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    CHECK(!tg_dialect_responses.event_usage(delta, strlen(delta), &u));
    CHECK_INT(u.prompt_tokens, -1);
    const char *done = "{\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{"
                       "\"id\":\"resp_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":5}}}";
    CHECK(tg_dialect_responses.event_usage(done, strlen(done), &u));
    CHECK_INT(u.prompt_tokens, 3);
    CHECK_INT(u.completion_tokens, 5);
    CHECK_INT(u.cached_tokens, -1);
}

/* A cut Responses stream ends with response.failed, numbered after the
 * last event sent; the SDKs read the failed response's error. */
TEST(translate_responses_failed_event)
{
    tg_buf_t out = {0};
    tg_translate_responses_failed(7, "req-1", 502, "provider_error", "cut \"short\"", &out);
    CHECK(!strncmp(out.data, "event: response.failed\ndata: ", 29));
    json_t *d = json_loads(out.data + 29, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(d, "type")), "response.failed");
    CHECK_INT(json_integer_value(json_object_get(d, "sequence_number")), 7);
    json_t *r = json_object_get(d, "response");
    CHECK_STR(json_string_value(json_object_get(r, "status")), "failed");
    CHECK_STR(json_string_value(json_object_get(r, "id")), "req-1");
    CHECK_STR(json_string_value(json_object_get(json_object_get(r, "error"), "code")),
              "provider_error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
              "cut \"short\"");
    json_decref(d);
    tg_buf_reset(&out);
    tg_translate_error_event(TG_WIRE_RESPONSES, 503, NULL, "x", &out);
    CHECK(strstr(out.data, "\"sequence_number\":0") && strstr(out.data, "\"api_error\""));
    tg_buf_free(&out);
    /* errors of the Responses route are OpenAI's shape */
    tg_translate_error_json(TG_WIRE_RESPONSES, 429, "slow", &out);
    d = json_loads(out.data, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "error"), "type")),
              "rate_limit_error");
    json_decref(d);
    tg_buf_free(&out);
}

/* A translated Responses stream cut before the provider's terminator is
 * not ended (the pipeline sends response.failed, numbered on), and its
 * events so far are numbered from 0. */
TEST(translate_responses_stream_cut)
{
    const tg_translator_t *t = tg_translate_for(TG_WIRE_RESPONSES, TG_PROVIDER_ANTHROPIC);
    tg_translate_opts_t o = {.id = "x", .created = 1, .model = "m", .include_usage = true};
    tg_translate_stream_t *s = tg_translate_stream_new(t, &o);
    tg_buf_t out = {0};
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{"
                        "\"input_tokens\":5,\"output_tokens\":1}}}";
    const char *block = "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                        "\"type\":\"text\",\"text\":\"\"}}";
    const char *delta = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"text_delta\",\"text\":\"Hi\"}}";
    tg_translate_stream_feed(s, "message_start", start, strlen(start), &out);
    tg_translate_stream_feed(s, "content_block_start", block, strlen(block), &out);
    tg_translate_stream_feed(s, "content_block_delta", delta, strlen(delta), &out);
    CHECK(!tg_translate_stream_ended(s));
    CHECK(strstr(out.data, "response.output_text.delta") != NULL);
    CHECK(!strstr(out.data, "response.completed"));
    CHECK_INT(tg_translate_stream_seq(s), 5); /* created, in_progress, item, part, delta */
    tg_translate_stream_free(s);
    tg_buf_free(&out);
}

TEST(translate_table)
{
    CHECK(tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC) != NULL);
    CHECK(tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI) != NULL);
    CHECK_STR(tg_translate_name(tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_AZURE)),
              "anthropic->openai");
    CHECK(tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_MOCK) != NULL);
    CHECK(tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_OPENAI) == NULL);
    CHECK(tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_AZURE) == NULL);
    CHECK(tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_ANTHROPIC) == NULL);
    CHECK_STR(tg_translate_name(tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_GEMINI)),
              "anthropic->gemini");
    CHECK(tg_wire_of(TG_PROVIDER_AZURE) == TG_WIRE_OPENAI);
}

static void error_case(tg_wire_t client, int status, const char *body, const char *want)
{
    tg_buf_t out = {0};
    tg_translate_error(client, status, body, body ? strlen(body) : 0, &out);
    check_json_text(body ? body : "(no body)", out.data, want);
    tg_buf_free(&out);
}

TEST(translate_errors)
{
    error_case(
        TG_WIRE_ANTHROPIC, 400,
        "{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":\"INVALID_ARGUMENT\"}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad\"}}");
    error_case(TG_WIRE_ANTHROPIC, 529,
               "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
               "\"message\":\"Overloaded\"}}",
               "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
               "\"Overloaded\"}}");
    error_case(TG_WIRE_ANTHROPIC, 500, "{\"error\":{\"message\":\"m\",\"type\":\"server_error\"}}",
               "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"m\"}}");
    error_case(TG_WIRE_OPENAI, 503, NULL,
               "{\"error\":{\"message\":\"the provider answered with status 503\",\"type\":"
               "\"api_error\",\"code\":null}}");
    error_case(TG_WIRE_OPENAI, 422, "{\"error\":\"stream_options not allowed\"}",
               "{\"error\":{\"message\":\"stream_options not allowed\",\"type\":"
               "\"invalid_request_error\",\"code\":null}}");
    error_case(TG_WIRE_OPENAI, 422, "{\"detail\":\"Field required\"}",
               "{\"error\":{\"message\":\"Field required\",\"type\":\"invalid_request_error\","
               "\"code\":null}}");
    error_case(TG_WIRE_OPENAI, 404, "{}",
               "{\"error\":{\"message\":\"the provider answered with status 404\",\"type\":"
               "\"not_found_error\",\"code\":null}}");
    /* bytes that are not UTF-8 are replaced, long pages cut */
    error_case(
        TG_WIRE_ANTHROPIC, 502, "bad \xff\xfe gateway",
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"bad ?? gateway\"}}");
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tg_buf_t out = {0};
    tg_translate_error(TG_WIRE_OPENAI, 500, big, strlen(big), &out);
    json_t *j = json_loads(out.data, 0, NULL);
    CHECK_INT(json_string_length(json_object_get(json_object_get(j, "error"), "message")), 1024);
    json_decref(j);
    tg_buf_reset(&out);
    tg_translate_error_json(TG_WIRE_ANTHROPIC, 429, "slow down \"please\"", &out);
    check_json_text("gateway error", out.data,
                    "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                    "\"message\":\"slow down \\\"please\\\"\"}}");
    tg_buf_free(&out);
    CHECK_STR(tg_translate_error_type(TG_WIRE_ANTHROPIC, 413), "request_too_large");
    CHECK_STR(tg_translate_error_type(TG_WIRE_OPENAI, 413), "invalid_request_error");
}

TEST(translate_count_tokens)
{
    json_t *req = parse(
        "{\"system\":\"abcd\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"hello world!\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
        "\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{}}]}],"
        "\"tools\":[{\"name\":\"t\"}]}");
    tg_buf_t out = {0};
    /* chars: 4 + 12 + 1 + 7 ({"a":1}) + 12 ({"name":"t"}) = 36 -> 9 tokens;
     * 3 messages -> 9; one image -> 1600 */
    CHECK_INT(tg_translate_count_tokens(req, &out), 1618);
    CHECK_STR(out.data, "{\"input_tokens\":1618}");
    tg_buf_free(&out);
    json_decref(req);
    json_t *empty = json_object();
    CHECK_INT(tg_translate_count_tokens(empty, NULL), 0);
    json_decref(empty);
}

TEST(translate_azure_url)
{
    tg_kv_t hdr = {"API-Version", "2025-04-01-preview"};
    tg_provider_cfg_t p = {
        .name = "azure", .type = TG_PROVIDER_AZURE, .base_url = "https://r.openai.azure.com"};
    char *u = tg_azure_url(&p, "gpt-4o", "/chat/completions", NULL);
    CHECK_STR(u, "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
                 "?api-version=2024-10-21");
    free(u);
    u = tg_azure_url(&p, "my dep", "/embeddings", "x=1&api-version=2025-01-01-preview");
    CHECK_STR(u, "https://r.openai.azure.com/openai/deployments/my%20dep/embeddings"
                 "?api-version=2025-01-01-preview");
    free(u);
    u = tg_azure_url(&p, "d", "/chat/completions", "api-version=bad value");
    CHECK_STR(u, "https://r.openai.azure.com/openai/deployments/d/chat/completions"
                 "?api-version=2024-10-21");
    free(u);
    p.headers = &hdr;
    p.n_headers = 1;
    u = tg_azure_url(&p, "d", "/chat/completions", "");
    CHECK_STR(u, "https://r.openai.azure.com/openai/deployments/d/chat/completions"
                 "?api-version=2025-04-01-preview");
    free(u);
    p.base_url = "https://r.openai.azure.com/openai/v1";
    u = tg_azure_url(&p, "d", "/chat/completions", NULL);
    CHECK_STR(u, "https://r.openai.azure.com/openai/v1/chat/completions");
    free(u);
}

/* The URL builders never yield a path outside the provider's base path:
 * pass-through suffixes, a Gemini model, an Azure deployment, a query. */
TEST(translate_urls_stay_under_base)
{
    tg_provider_cfg_t p = {.name = "o", .type = TG_PROVIDER_OPENAI, .base_url = "http://h/v1"};
    char *u = tg_provider_url(&p, "/chat/completions", "a=1&b=%2e%2e/x");
    CHECK_STR(u, "http://h/v1/chat/completions?a=1&b=%2e%2e/x");
    free(u);
    u = tg_provider_url(&p, "", NULL);
    CHECK_STR(u, "http://h/v1");
    free(u);
    static const char *const bad[] = {"/../../etc/passwd",
                                      "/%2e%2e/x",
                                      "/.%2e/x",
                                      "/..%2f",
                                      "/\\..\\x",
                                      "/./x",
                                      "/x%00",
                                      "/..;/x",
                                      "/a#b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        u = tg_provider_url(&p, bad[i], NULL);
        if (u)
            tg_test_fail(__FILE__, __LINE__, "built %s", u);
        free(u);
    }
    CHECK(!tg_provider_url(&p, "/x", "a=1#/../../y")); /* a fragment would cut the URL */

    /* Gemini: the model is one segment; a traversal in it is refused */
    char *g = tg_gemini_model_path("models/gemini-2.5-flash", "generateContent");
    CHECK_STR(g, "/models/gemini-2.5-flash:generateContent");
    u = tg_provider_url(&p, g, "alt=sse");
    CHECK_STR(u, "http://h/v1/models/gemini-2.5-flash:generateContent?alt=sse");
    free(u);
    free(g);
    static const char *const bad_models[] = {"../../escape", "x/../..",     "..\\..",
                                             "a/./b",        "%2e%2e/../x", "x/..;/y"};
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
        g = tg_gemini_model_path(bad_models[i], "generateContent");
        u = tg_provider_url(&p, g, NULL);
        if (u)
            tg_test_fail(__FILE__, __LINE__, "built %s", u);
        free(u);
        free(g);
    }

    /* Azure: the deployment is one segment, never empty, "." or ".." */
    tg_provider_cfg_t az = {.name = "az", .type = TG_PROVIDER_AZURE, .base_url = "https://r"};
    u = tg_azure_url(&az, "a/../../b", "/chat/completions", NULL);
    CHECK(u == NULL);
    free(u);
    static const char *const bad_deployments[] = {"", ".", "..", "..;x", "%2e%2e"};
    for (size_t i = 0; i < sizeof bad_deployments / sizeof bad_deployments[0]; i++) {
        u = tg_azure_url(&az, bad_deployments[i], "/chat/completions", NULL);
        if (u && !strcmp(bad_deployments[i], "%2e%2e")) /* '%' is encoded: a name */
            CHECK_STR(u, "https://r/openai/deployments/%252e%252e/chat/completions"
                         "?api-version=2024-10-21");
        else if (u)
            tg_test_fail(__FILE__, __LINE__, "built %s", u);
        free(u);
    }
    u = tg_azure_url(&az, "dep?x#y", "/chat/completions", "api-version=2024-10-21#x");
    CHECK_STR(u, "https://r/openai/deployments/dep%3Fx%23y/chat/completions"
                 "?api-version=2024-10-21");
    free(u);
    az.base_url = "https://r/openai/v1";
    CHECK(!tg_azure_url(&az, "d", "/../x", NULL));
}

TEST(translate_usage_parsers)
{
    tg_usage_t u = TG_USAGE_UNKNOWN;
    json_t *j =
        parse("{\"prompt_tokens\":50,\"completion_tokens\":5,\"prompt_cache_hit_tokens\":40}");
    CHECK(tg_openai_usage(j, &u));
    CHECK_INT(u.prompt_tokens, 50);
    CHECK_INT(u.cached_tokens, 40);
    CHECK_INT(u.reasoning_tokens, -1);
    json_decref(j);
    CHECK(!tg_openai_usage(NULL, &u));

    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    const char *start = "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,"
                        "\"cache_read_input_tokens\":7,\"output_tokens\":1}}}";
    const char *delta = "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}";
    tg_anthropic_stream_usage(start, strlen(start), &u);
    tg_anthropic_stream_usage(delta, strlen(delta), &u);
    tg_anthropic_stream_usage("not json", 8, &u);
    CHECK_INT(u.prompt_tokens, 10);
    CHECK_INT(u.cached_tokens, 7);
    CHECK_INT(u.cache_write_tokens, -1);
    CHECK_INT(u.completion_tokens, 9);

    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    j = parse("{\"promptTokenCount\":10,\"toolUsePromptTokenCount\":5,\"candidatesTokenCount\":2}");
    CHECK(tg_gemini_usage(j, &u));
    CHECK_INT(u.prompt_tokens, 15);
    CHECK_INT(u.completion_tokens, 2);
    CHECK_INT(u.reasoning_tokens, 0);
    json_decref(j);
}

/* The usage readers of the dialect tables, as the pipeline calls them on
 * native answers and events. */
TEST(dialect_usage_readers)
{
    const tg_dialect_t *oa = tg_dialect_for(TG_PROVIDER_OPENAI);
    const tg_dialect_t *an = tg_dialect_for(TG_PROVIDER_ANTHROPIC);
    const tg_dialect_t *ge = tg_dialect_for(TG_PROVIDER_GEMINI);
    CHECK(tg_dialect_for(TG_PROVIDER_MOCK)->event_usage == oa->event_usage);
    CHECK(tg_dialect_for(TG_PROVIDER_AZURE)->answer_usage == oa->answer_usage);

    tg_usage_t u = TG_USAGE_UNKNOWN;
    const char *chunk = "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,"
                        "\"prompt_tokens_details\":{\"cached_tokens\":8},"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}";
    CHECK(oa->event_usage(chunk, strlen(chunk), &u));
    CHECK_INT(u.prompt_tokens, 12);
    CHECK_INT(u.completion_tokens, 3);
    CHECK_INT(u.cached_tokens, 8);
    CHECK_INT(u.reasoning_tokens, 2);
    const char *plain = "{\"choices\":[{\"delta\":{\"content\":\"usage\"}}]}";
    CHECK(!oa->event_usage(plain, strlen(plain), &u));
    CHECK_INT(u.prompt_tokens, 12);
    /* include_usage's other chunks: "usage":null, an object only nested,
     * spaced, or in a string; and the usage chunk with spaces */
    const char *nulls[] = {
        "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}",
        "{\"choices\":[{\"usage\":{\"prompt_tokens\":99}}],\"usage\" : null}",
        "{\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\": {\"}}],\"usage\":null}",
        "{\"usage\"",
    };
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        CHECK(!oa->event_usage(nulls[i], strlen(nulls[i]), &u));
        CHECK_INT(u.prompt_tokens, 12);
    }
    const char *spaced =
        "{\"choices\":[],\"usage\" :\n {\"prompt_tokens\":7,\"completion_tokens\":1}}";
    CHECK(oa->event_usage(spaced, strlen(spaced), &u));
    CHECK_INT(u.prompt_tokens, 7);
    u.prompt_tokens = 12;

    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    const char *msg = "{\"type\":\"message\",\"usage\":{\"input_tokens\":4,"
                      "\"cache_creation_input_tokens\":6,\"output_tokens\":5}}";
    an->answer_usage(msg, strlen(msg), &u);
    CHECK_INT(u.prompt_tokens, 10);
    CHECK_INT(u.cache_write_tokens, 6);
    CHECK_INT(u.completion_tokens, 5);
    const char *ping = "{\"type\":\"ping\"}";
    CHECK(!an->event_usage(ping, strlen(ping), &u));

    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    const char *ev = "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":9,"
                     "\"candidatesTokenCount\":4,\"thoughtsTokenCount\":3}}";
    CHECK(ge->event_usage(ev, strlen(ev), &u));
    CHECK_INT(u.completion_tokens, 7);
    CHECK_INT(u.reasoning_tokens, 3);
    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    const char *arr = " [{\"usageMetadata\":{\"promptTokenCount\":9}},"
                      "{\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":11}}]";
    ge->answer_usage(arr, strlen(arr), &u);
    CHECK_INT(u.prompt_tokens, 9);
    CHECK_INT(u.completion_tokens, 11);
    u = (tg_usage_t)TG_USAGE_UNKNOWN;
    ge->answer_usage("[", 1, &u); /* broken: nothing read, nothing crashes */
    CHECK_INT(u.prompt_tokens, -1);
}

static int request_rc(tg_wire_t client, tg_provider_type_t type, const char *req, const char *model,
                      json_t **body, char *err)
{
    const tg_translator_t *t = tg_translate_for(client, type);
    tg_translate_req_t rq;
    json_t *r = json_loads(req, 0, NULL);
    tg_translate_ropts_t ro = {false};
    int rc = tg_translate_request(t, r, model, &ro, &rq, err, 256);
    json_decref(r);
    if (body)
        *body = rc == 0 ? json_incref(rq.body) : NULL;
    if (rc == 0)
        tg_translate_req_free(&rq);
    return rc;
}

TEST(translate_request_details)
{
    char err[256];
    json_t *b;
    CHECK_INT(request_rc(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC,
                         "{\"messages\":[],\"max_tokens\":5,\"max_completion_tokens\":7}", "c", &b,
                         err),
              0);
    CHECK_INT(json_integer_value(json_object_get(b, "max_tokens")), 7);
    json_decref(b);
    CHECK_INT(request_rc(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC,
                         "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
                         "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                         "c", NULL, err),
              -1);
    CHECK(strstr(err, "not a JSON object") != NULL);
    CHECK_INT(request_rc(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI, "[]", "g", NULL, err), -1);
    CHECK(strstr(err, "JSON object") != NULL);
    CHECK_INT(request_rc(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI, "{\"messages\":{}}", "g", NULL, err),
              -1);
    CHECK_INT(request_rc(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC,
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                         "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                         "\"tool_choice\":\"none\"}",
                         "c", &b, err),
              0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "tool_choice"), "type")),
              "none");
    json_decref(b);
    /* a model name with reserved characters is escaped in the Gemini path */
    const tg_translator_t *t = tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI);
    tg_translate_req_t rq;
    json_t *r = parse("{\"messages\":[],\"stream\":true}");
    CHECK_INT(tg_translate_request(t, r, "tuned/a b?", NULL, &rq, err, sizeof err), 0);
    CHECK_STR(rq.path, "/models/tuned%2Fa%20b%3F:streamGenerateContent");
    CHECK_STR(rq.query, "alt=sse");
    tg_translate_req_free(&rq);
    json_decref(r);
}

TEST(translate_response_broken)
{
    tg_translate_opts_t o = {.id = "x", .created = 1, .model = "m"};
    const char *bodies[] = {"",  "not json", "[]", "{\"content\":\"str\"}", "{\"choices\":[]}",
                            NULL};
    for (int d = 0; d < 3; d++) {
        const tg_translator_t *t = d == 0 ? tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC)
                                   : d == 1
                                       ? tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI)
                                       : tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI);
        for (int i = 0; bodies[i]; i++) {
            tg_buf_t out = {0};
            tg_usage_t u = TG_USAGE_UNKNOWN;
            CHECK_INT(tg_translate_response(t, bodies[i], strlen(bodies[i]), &o, &out, &u), -1);
            CHECK_INT(out.len, 0);
            tg_buf_free(&out);
        }
    }
}

/* Feed events "name|data" separated by '\n' (name may be empty). */
static char *stream_through(const tg_translator_t *t, const tg_translate_opts_t *o,
                            const char *const *events, bool finish)
{
    tg_translate_stream_t *s = tg_translate_stream_new(t, o);
    tg_buf_t out = {0};
    for (int i = 0; events[i]; i += 2)
        tg_translate_stream_feed(s, events[i], events[i + 1], strlen(events[i + 1]), &out);
    if (finish) {
        tg_translate_stream_finish(s, &out);
        tg_translate_stream_finish(s, &out); /* idempotent */
    }
    tg_translate_stream_free(s);
    if (!out.data)
        tg_buf_puts(&out, "");
    return out.data;
}

TEST(translate_stream_edges)
{
    /* OpenAI -> Anthropic: a late fragment of call 0 after call 1 started is dropped */
    const tg_translator_t *t = tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI);
    const char *ev[] = {
        "message",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}",
        "message",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}",
        "message",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"}\"}}]}}]}",
        "message",
        "garbage",
        "message",
        "[DONE]",
        "message",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"after the end\"}}]}",
        NULL};
    char *out = stream_through(t, NULL, ev, true);
    CHECK(strstr(out, "\"partial_json\":\"{\"") != NULL);
    CHECK(strstr(out, "\"partial_json\":\"}\"") == NULL);
    CHECK(strstr(out, "after the end") == NULL);
    CHECK(strstr(out, "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"b\"") != NULL);
    const char *tail = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    CHECK(strlen(out) > strlen(tail) && !strcmp(out + strlen(out) - strlen(tail), tail));
    free(out);

    /* Anthropic -> OpenAI, truncated (no message_delta/stop): finish closes it */
    t = tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC);
    tg_translate_opts_t o = {.id = "gw-1", .created = 5, .model = "claude", .include_usage = true};
    const char *ev2[] = {"content_block_delta",
                         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                         "\"text_delta\",\"text\":\"orphan\"}}",
                         "content_block_start",
                         "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                         "{\"type\":\"text\",\"text\":\"hi\"}}",
                         NULL};
    out = stream_through(t, &o, ev2, true);
    const char *want2 =
        "data: {\"id\":\"gw-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
        "\"claude\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"gw-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
        "\"claude\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":"
        "null}]}"
        "\n\n"
        "data: {\"id\":\"gw-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
        "\"claude\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"id\":\"gw-1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
        "\"claude\",\"choices\":[],\"usage\":null}\n\n"
        "data: [DONE]\n\n";
    same_stream("truncated anthropic stream", out, strlen(out), want2, strlen(want2));
    free(out);

    /* Gemini -> OpenAI: two candidates interleaved; index 9 is ignored */
    t = tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI);
    o.include_usage = false;
    const char *ev3[] = {
        "message",
        "{\"candidates\":[{\"index\":1,\"content\":{\"parts\":[{\"text\":\"B\"}]}},"
        "{\"index\":0,\"content\":{\"parts\":[{\"text\":\"A\"}]},\"finishReason\":\"STOP\"},"
        "{\"index\":9,\"content\":{\"parts\":[{\"text\":\"Z\"}]}}]}",
        NULL};
    out = stream_through(t, &o, ev3, true);
    CHECK(strstr(out, "\"Z\"") == NULL);
    CHECK(strstr(out, "{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}") != NULL);
    CHECK(strstr(out, "{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}") != NULL);
    CHECK(strstr(out, "data: [DONE]\n\n") != NULL);
    free(out);

    /* an empty provider stream still gives the client a well-formed ending */
    const char *none[] = {NULL};
    out = stream_through(t, &o, none, true);
    CHECK(strstr(out, "\"finish_reason\":\"stop\"") != NULL && strstr(out, "[DONE]") != NULL);
    free(out);
}

/* Anthropic thinking budgets -> OpenAI reasoning_effort bands (models that
 * take it only) and Gemini thinkingConfig; tool_choice none on both. */
TEST(translate_thinking_and_choice)
{
    static const struct {
        long budget;
        const char *effort;
    } bands[] = {{1024, "low"},     {4095, "low"},   {4096, "medium"},
                 {16383, "medium"}, {16384, "high"}, {64000, "high"}};
    char req[512], err[256];
    json_t *b;
    for (size_t i = 0; i < sizeof bands / sizeof bands[0]; i++) {
        snprintf(req, sizeof req,
                 "{\"max_tokens\":9,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":%ld},"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 bands[i].budget);
        CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI, req, "o4-mini", &b, err), 0);
        CHECK_STR(json_string_value(json_object_get(b, "reasoning_effort")), bands[i].effort);
        json_decref(b);
        /* a model that takes no reasoning_effort (it would refuse it) gets none */
        CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI, req, "gpt-4o", &b, err), 0);
        CHECK(json_object_get(b, "reasoning_effort") == NULL);
        json_decref(b);
        CHECK_INT(
            request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_GEMINI, req, "gemini-2.5-flash", &b, err), 0);
        json_t *tc = json_object_get(json_object_get(b, "generationConfig"), "thinkingConfig");
        CHECK_INT(json_integer_value(json_object_get(tc, "thinkingBudget")), bands[i].budget);
        CHECK(json_is_true(json_object_get(tc, "includeThoughts")));
        json_decref(b);
    }
    const char *off = "{\"max_tokens\":9,\"thinking\":{\"type\":\"disabled\"},"
                      "\"tool_choice\":{\"type\":\"none\"},"
                      "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI, off, "o4-mini", &b, err), 0);
    CHECK(json_object_get(b, "reasoning_effort") == NULL);
    CHECK_STR(json_string_value(json_object_get(b, "tool_choice")), "none");
    json_decref(b);
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_GEMINI, off, "gemini-2.5-flash", &b, err),
              0);
    CHECK(json_object_get(json_object_get(b, "generationConfig"), "thinkingConfig") == NULL);
    json_t *fcc = json_object_get(json_object_get(b, "toolConfig"), "functionCallingConfig");
    CHECK_STR(json_string_value(json_object_get(fcc, "mode")), "NONE");
    json_decref(b);
    /* hostile shapes: a clear 400, never a crash */
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI,
                         "{\"messages\":[{\"role\":\"system\",\"content\":5}]}", "m", NULL, err),
              -1);
    CHECK(strstr(err, "system content") != NULL);
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_GEMINI,
                         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                         "\"source\":{\"type\":\"file\",\"file_id\":\"f1\"}}]}]}",
                         "g", NULL, err),
              -1);
    CHECK(strstr(err, "'file'") != NULL);
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI,
                         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                         "\"tool_use_id\":\"t\",\"content\":[{\"type\":\"document\",\"source\":"
                         "{\"type\":\"content\",\"content\":[{\"type\":\"document\",\"source\":"
                         "{\"type\":\"content\",\"content\":[{\"type\":\"document\",\"source\":"
                         "{\"type\":\"content\",\"content\":\"deep\"}}]}}]}}]}]}]}",
                         "m", NULL, err),
              -1);
    CHECK(strstr(err, "nested") != NULL);
}

/* metadata.user_id -> user: kept up to OpenAI's 64 characters, a longer one
 * (Claude Code's JSON id) as a stable opaque hash. */
TEST(translate_user_id)
{
    char err[256];
    json_t *b, *b2;
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI,
                         "{\"metadata\":{\"user_id\":\"user_1\"},\"messages\":[]}", "m", &b, err),
              0);
    CHECK_STR(json_string_value(json_object_get(b, "user")), "user_1");
    json_decref(b);
    const char *long_id =
        "{\"metadata\":{\"user_id\":\"{\\\"device_id\\\":"
        "\\\"6c8796c84c872a4d737db31f3d73d35f9ca84f7b842c8aee72aa"
        "9e913419befa\\\",\\\"session_id\\\":\\\"db92187d-755a-4e28-9c67-15c6fef16d9c\\\"}\"},"
        "\"messages\":[]}";
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI, long_id, "m", &b, err), 0);
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI, long_id, "m", &b2, err), 0);
    const char *u = json_string_value(json_object_get(b, "user"));
    CHECK(u && strlen(u) == 18 && !strncmp(u, "u-", 2));
    CHECK_STR(u, json_string_value(json_object_get(b2, "user"))); /* stable */
    json_decref(b);
    json_decref(b2);
    CHECK_INT(request_rc(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI,
                         "{\"metadata\":{\"user_id\":7},\"messages\":[]}", "m", &b, err),
              0);
    CHECK(json_object_get(b, "user") == NULL);
    json_decref(b);
}

/* message_start of a translated Anthropic stream: the provider's input
 * count when its first event has one, else the request's estimate; the
 * final message_delta keeps the provider's count. */
TEST(translate_message_start_input_tokens)
{
    const tg_translator_t *t = tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI);
    tg_translate_opts_t o = {.id = "m", .model = "x", .prompt_estimate = 77};
    const char *ev[] = {"message",
                        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}",
                        "message",
                        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":90,"
                        "\"completion_tokens\":1}}",
                        NULL};
    char *out = stream_through(t, &o, ev, true);
    const char *ms = strstr(out, "\"message_start\""), *md = strstr(out, "\"message_delta\"");
    CHECK(ms && md && strstr(ms, "\"input_tokens\":77") && strstr(ms, "\"input_tokens\":77") < md);
    CHECK(md && strstr(md, "\"input_tokens\":90") != NULL);
    free(out);
    const char *ev2[] = {"message",
                         "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],"
                         "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":0}}",
                         NULL};
    out = stream_through(t, &o, ev2, true);
    ms = strstr(out, "\"message_start\"");
    md = strstr(out, "\"message_delta\"");
    CHECK(ms && md && strstr(ms, "\"input_tokens\":12") && strstr(ms, "\"input_tokens\":12") < md);
    free(out);
    /* the estimate of a request: the count_tokens estimator's */
    json_t *r = json_loads("{\"system\":\"abcdefgh\",\"max_tokens\":5,\"stream\":true,"
                           "\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}",
                           0, NULL);
    tg_translate_req_t rq;
    char err[128];
    CHECK_INT(tg_translate_request(t, r, "x", NULL, &rq, err, sizeof err), 0);
    CHECK_INT(rq.prompt_estimate, tg_translate_count_tokens(r, NULL));
    CHECK(rq.prompt_estimate > 0);
    tg_translate_req_free(&rq);
    json_decref(r);
}

/* ---- OpenAI embeddings -> Gemini batchEmbedContents ---- */

static int embed_request(json_t *req, tg_translate_req_t *rq, char *err, size_t errlen)
{
    const tg_translator_t *t = tg_translate_embeddings_for(TG_PROVIDER_GEMINI, false);
    int rc = tg_translate_request(t, req, "gemini-embedding-001", NULL, rq, err, errlen);
    json_decref(req);
    return rc;
}

TEST(translate_embeddings_to_gemini)
{
    CHECK(tg_translate_embeddings_for(TG_PROVIDER_ANTHROPIC, false) == NULL);
    CHECK(tg_translate_embeddings_for(TG_PROVIDER_OPENAI, true) == NULL);
    tg_translate_req_t rq;
    char err[256];
    json_t *req = json_pack("{s:s,s:[s,s],s:i,s:s}", "model", "gem/gemini-embedding-001", "input",
                            "first text", "second", "dimensions", 256, "encoding_format", "float");
    CHECK_INT(tg_embeddings_count_tokens(req),
              tg_estimate_tokens("first text", 10) + tg_estimate_tokens("second", 6));
    CHECK(embed_request(req, &rq, err, sizeof err) == 0);
    CHECK_STR(rq.path, "/models/gemini-embedding-001:batchEmbedContents");
    json_t *want =
        json_pack("{s:[{s:s,s:{s:[{s:s}]},s:i},{s:s,s:{s:[{s:s}]},s:i}]}", "requests", "model",
                  "models/gemini-embedding-001", "content", "parts", "text", "first text",
                  "outputDimensionality", 256, "model", "models/gemini-embedding-001", "content",
                  "parts", "text", "second", "outputDimensionality", 256);
    CHECK(json_equal(rq.body, want));
    json_decref(want);
    tg_translate_req_free(&rq);
    CHECK(embed_request(json_pack("{s:s}", "input", "just one"), &rq, err, sizeof err) == 0);
    CHECK_INT(json_array_size(json_object_get(rq.body, "requests")), 1);
    CHECK(!json_object_get(json_array_get(json_object_get(rq.body, "requests"), 0),
                           "outputDimensionality"));
    tg_translate_req_free(&rq);
    /* refused, each with its reason */
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"input\": [1, 2, 3]}", "token arrays"},
        {"{\"input\": [[1, 2], [3]]}", "token arrays"},
        {"{\"input\": []}", "non-empty array"},
        {"{\"input\": 5}", "a string or a non-empty array"},
        {"{\"input\": [\"a\", null]}", "a string or a non-empty array"},
        {"{}", "a string or a non-empty array"},
        {"{\"input\": \"a\", \"dimensions\": 0}", "dimensions"},
        {"{\"input\": \"a\", \"dimensions\": \"8\"}", "dimensions"},
        {"{\"input\": \"a\", \"encoding_format\": \"hex\"}", "encoding_format"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (embed_request(json_loads(bad[i].json, 0, NULL), &rq, err, sizeof err) == 0 ||
            !strstr(err, bad[i].says))
            tg_test_fail(__FILE__, __LINE__, "%s: \"%s\"", bad[i].json, err);
        tg_translate_req_free(&rq);
    }
}

TEST(translate_embeddings_answer_from_gemini)
{
    static const char answer[] = "{\"embeddings\":[{\"values\":[0.5,-1,0.25]},{\"values\":[1]}]}";
    tg_translate_opts_t o = {.model = "gemini-embedding-001"};
    tg_buf_t out = {0};
    tg_usage_t u = TG_USAGE_UNKNOWN;
    u.prompt_tokens = 7; /* the caller's count: Gemini gives none */
    const tg_translator_t *t = tg_translate_embeddings_for(TG_PROVIDER_GEMINI, false);
    CHECK(tg_translate_response(t, answer, sizeof answer - 1, &o, &out, &u) == 0);
    json_t *got = json_loadb(out.data, out.len, 0, NULL);
    json_t *want =
        json_loads("{\"object\":\"list\",\"model\":\"gemini-embedding-001\","
                   "\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.5,-1,0.25]},"
                   "{\"object\":\"embedding\",\"index\":1,\"embedding\":[1]}],"
                   "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}",
                   0, NULL);
    CHECK(json_equal(got, want));
    CHECK_INT(u.prompt_tokens, 7);
    CHECK_INT(u.completion_tokens, 0);
    json_decref(got);
    json_decref(want);
    /* base64: little-endian float32, as OpenAI encodes it */
    tg_buf_reset(&out);
    t = tg_translate_embeddings_for(TG_PROVIDER_GEMINI, true);
    CHECK(tg_translate_response(t, answer, sizeof answer - 1, &o, &out, &u) == 0);
    got = json_loadb(out.data, out.len, 0, NULL);
    json_t *data = json_object_get(got, "data");
    /* 0.5 = 00 00 00 3f, -1 = 00 00 80 bf, 0.25 = 00 00 80 3e */
    CHECK_STR(json_string_value(json_object_get(json_array_get(data, 0), "embedding")),
              "AAAAPwAAgL8AAIA+");
    CHECK_STR(json_string_value(json_object_get(json_array_get(data, 1), "embedding")), "AACAPw==");
    json_decref(got);
    /* not Gemini's answer: refused */
    static const char *broken[] = {"{\"embedding\":{\"values\":[1]}}",
                                   "{\"embeddings\":[{\"values\":[\"x\"]}]}",
                                   "{\"embeddings\":[{}]}", "[]"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        tg_buf_reset(&out);
        if (tg_translate_response(t, broken[i], strlen(broken[i]), &o, &out, &u) == 0)
            tg_test_fail(__FILE__, __LINE__, "accepted %s", broken[i]);
    }
    tg_buf_free(&out);
}
