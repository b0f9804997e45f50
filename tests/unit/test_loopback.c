/*
 * test_loopback.c — whole exchanges through tg_pipeline_handle without
 * sockets: a gateway and a worker built from a small config, a loopback
 * client and a scripted provider (loopback.h). What the provider was asked
 * (URL, key, body) and what the client got (status, headers, body, events)
 * are checked together, through the stages and the attempt logic as they
 * run in the gateway.
 */
#include "loopback.h"
#include "test.h"

#include "config/config.h"
#include "gateway.h"
#include "proxy/exchange.h"
#include "proxy/pipeline.h"
#include "proxy/readers.h"
#include "store/query.h"
#include "store/store.h"

#include <event2/event.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    tg_config_t *cfg;
    tg_gateway_t *gw;
    struct event_base *base;
    tg_pworker_t *pw;
    tg_relay_t *relay; /* the worker's, a fake one */
} rig_t;

static const char base_yaml[] =
    "server: {workers: 1}\n"
    "providers:\n"
    "  pa: {base_url: 'http://pa.test/v1', api_key: sk-pa, models: [m1], retries: 0}\n"
    "  pb: {base_url: 'http://pb.test/v1', api_key: sk-pb, models: [m1], retries: 0}\n";

/* store: the gateway's record store (request logging on), or NULL. */
static bool rig_open_store(rig_t *r, const char *extra_yaml, tg_store_t *store)
{
    memset(r, 0, sizeof *r);
    tg_buf_t y = {0};
    tg_buf_puts(&y, base_yaml);
    tg_buf_printf(&y, "observability:\n  request_logging: {enabled: %s}\n",
                  store ? "true" : "false");
    if (extra_yaml)
        tg_buf_puts(&y, extra_yaml);
    tg_config_errors_t errs = {0};
    r->cfg = tg_config_load_string(y.data, y.len, "test", &errs);
    for (size_t i = 0; i < errs.n; i++)
        printf("    config: %s: %s\n", errs.items[i].path, errs.items[i].message);
    CHECK_INT(errs.n, 0);
    tg_config_errors_free(&errs);
    tg_buf_free(&y);
    if (!r->cfg)
        return false;
    char err[256] = "";
    r->gw = tg_gateway_new(r->cfg, store, err, sizeof err);
    CHECK(r->gw != NULL);
    if (!r->gw)
        return false;
    r->base = event_base_new();
    r->pw = tg_pipeline_worker_init(r->base, 0, r->cfg, r->gw);
    CHECK(r->pw != NULL);
    if (!r->pw)
        return false;
    r->relay = r->pw->relay;
    return true;
}

static bool rig_open(rig_t *r, const char *extra_yaml)
{
    return rig_open_store(r, extra_yaml, NULL);
}

static void rig_close(rig_t *r)
{
    if (r->relay)
        CHECK_INT(tg_fake_relay_open(r->relay), 0); /* every transfer ended */
    tg_pipeline_worker_free(r->pw);
    if (r->base)
        event_base_free(r->base);
    tg_gateway_free(r->gw);
    tg_config_release(r->cfg);
}

/* One client exchange, the loop run until nothing is left to do. */
static void rig_send(rig_t *r, tg_loop_client_t *c, const tg_loop_request_t *req)
{
    tg_pipeline_handle(tg_loop_http_new(c, r->base, req), r->pw);
    event_base_dispatch(r->base);
}

/* A rig for extra_yaml, the answers (NULL-terminated) queued, req sent;
 * false when the rig could not be built. Then rig_done. */
static bool rig_exchange(rig_t *r, const char *extra_yaml, const tg_fake_answer_t *const *answers,
                         const tg_loop_request_t *req, tg_loop_client_t *c)
{
    memset(c, 0, sizeof *c);
    if (!rig_open(r, extra_yaml))
        return false;
    for (size_t i = 0; answers[i]; i++)
        tg_fake_relay_push(r->relay, answers[i]);
    rig_send(r, c, req);
    return true;
}

static void rig_done(rig_t *r, tg_loop_client_t *c)
{
    tg_loop_client_free(c);
    rig_close(r);
}

#define ANSWERS(...) ((const tg_fake_answer_t *const[]){__VA_ARGS__, NULL})

static const char chat_body[] =
    "{\"model\":\"pa/m1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char chat_answer[] =
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"m1\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"hello\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}";

static const tg_fake_answer_t answer_ok = {
    .status = 200,
    .headers = {"Content-Type: application/json", "X-Provider-Id: abc"},
    .pieces = {chat_answer},
};

/* The client got the chat answer from provider p (pa or pb), after
 * n_calls calls, the last one to p's URL with p's key. */
static void check_answered_by(const rig_t *r, tg_loop_client_t *c, const char *p, size_t n_calls)
{
    char v[128], want[128];
    CHECK(c->ended && !c->streamed);
    CHECK_INT(c->status, 200);
    CHECK_STR(c->body.data, chat_answer);
    CHECK_STR(tg_loop_header(c, "Helicone-Provider", v, sizeof v), p);
    CHECK_INT(tg_fake_relay_n_calls(r->relay), n_calls);
    const tg_fake_call_t *last = tg_fake_relay_call(r->relay, n_calls - 1);
    if (!last)
        return;
    CHECK_STR(last->method, "POST");
    snprintf(want, sizeof want, "http://%s.test/v1/chat/completions", p);
    CHECK_STR(last->url, want);
    snprintf(want, sizeof want, "Bearer sk-%s", p);
    CHECK_STR(tg_fake_call_header(last, "Authorization", v, sizeof v), want);
}

TEST(loopback_chat_completion)
{
    rig_t r;
    tg_loop_client_t c;
    const char *hdrs[] = {"Content-Type", "application/json", NULL};
    tg_loop_request_t req = {.path = "/v1/chat/completions", .headers = hdrs, .body = chat_body};
    if (rig_exchange(&r, NULL, ANSWERS(&answer_ok), &req, &c)) {
        check_answered_by(&r, &c, "pa", 1);
        char v[128];
        CHECK_STR(tg_loop_header(&c, "X-Provider-Id", v, sizeof v), "abc");
        const tg_fake_call_t *call = tg_fake_relay_call(r.relay, 0);
        if (call) {
            /* the provider's own model name, not the gateway's provider/ prefix */
            CHECK(strstr(call->body.data, "\"model\":\"m1\"") != NULL);
            CHECK(strstr(call->body.data, "pa/m1") == NULL);
            CHECK(strstr(call->body.data, "\"content\":\"hi\"") != NULL);
        }
    }
    rig_done(&r, &c);
}

static const tg_fake_answer_t answer_500 = {
    .status = 500,
    .headers = {"Content-Type: application/json"},
    .pieces = {"{\"error\":{\"message\":\"boom\"}}"},
};

TEST(loopback_retry_after_a_500)
{
    rig_t r;
    tg_loop_client_t c;
    const char *hdrs[] = {"Helicone-Retry-Enabled",
                          "true",
                          "Helicone-Retry-Num",
                          "2",
                          "Helicone-Retry-Min-Timeout",
                          "1",
                          "Helicone-Retry-Max-Timeout",
                          "5",
                          NULL};
    tg_loop_request_t req = {.path = "/v1/chat/completions", .headers = hdrs, .body = chat_body};
    if (rig_exchange(&r, NULL, ANSWERS(&answer_500, &answer_ok), &req, &c)) {
        check_answered_by(&r, &c, "pa", 2); /* the 500's body never reached the client */
    }
    rig_done(&r, &c);
}

static void fallback_after(const tg_fake_answer_t *first)
{
    rig_t r;
    tg_loop_client_t c;
    const char *hdrs[] = {"Helicone-Fallbacks", "[\"pb/m1\"]", NULL};
    tg_loop_request_t req = {.path = "/v1/chat/completions", .headers = hdrs, .body = chat_body};
    if (rig_exchange(&r, NULL, ANSWERS(first, &answer_ok), &req, &c)) {
        check_answered_by(&r, &c, "pb", 2);
        char v[64];
        CHECK_STR(tg_loop_header(&c, "Helicone-Fallback-Index", v, sizeof v), "1");
    }
    rig_done(&r, &c);
}

TEST(loopback_fallback_after_a_502)
{
    fallback_after(&(tg_fake_answer_t){
        .status = 502,
        .headers = {"Content-Type: text/plain"},
        .pieces = {"bad gateway"},
    });
}

TEST(loopback_fallback_after_a_connect_failure)
{
    fallback_after(&(tg_fake_answer_t){.result = TG_UP_CONNECT, .error = "connection refused"});
}

static const char stream_body[] = "{\"model\":\"pa/m1\",\"stream\":true,"
                                  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const tg_loop_request_t stream_req = {.path = "/v1/chat/completions", .body = stream_body};
#define CHUNK(s) "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," s "}\n\n"
static const char ev_hello[] =
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"},\"finish_reason\":null}]");
static const char ev_usage[] =
    CHUNK("\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
          "\"total_tokens\":4}");
static const char ev_done[] = "data: [DONE]\n\n";

/* The client got an event stream holding needle (or not, when absent). */
static bool stream_has(const tg_loop_client_t *c, const char *needle)
{
    return c->streamed && c->body.data && strstr(c->body.data, needle) != NULL;
}

/* A streamed chat exchange: the provider answers 200 with an event stream
 * of a's pieces, then ends as a says. */
static bool stream_exchange(rig_t *r, tg_loop_client_t *c, tg_fake_answer_t a)
{
    a.status = 200;
    a.headers[0] = "Content-Type: text/event-stream";
    return rig_exchange(r, NULL, ANSWERS(&a), &stream_req, c);
}

TEST(loopback_stream_hides_the_usage_chunk_not_asked_for)
{
    rig_t r;
    tg_loop_client_t c;
    if (stream_exchange(&r, &c, (tg_fake_answer_t){.pieces = {ev_hello, ev_usage, ev_done}})) {
        CHECK(c.ended && !c.aborted);
        CHECK_INT(c.status, 200);
        CHECK(stream_has(&c, "\"content\":\"hello\""));
        CHECK(!stream_has(&c, "\"usage\""));
        CHECK(stream_has(&c, "data: [DONE]"));
        const tg_fake_call_t *call = tg_fake_relay_call(r.relay, 0);
        if (call) /* we asked for the usage the client did not */
            CHECK(strstr(call->body.data, "\"include_usage\":true") != NULL);
    }
    rig_done(&r, &c);
}

/* The usage chunk is found wherever its "usage" key falls against the
 * 32-byte steps of the stream's key scan (filters.c): in a step, across
 * two, in the last bytes, in a chunk shorter than one step. Every chunk
 * before it carries "usage":null, as an include_usage stream does. */
TEST(loopback_stream_hides_the_usage_chunk_wherever_its_key_falls)
{
    static const char hello_null[] =
        CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"},"
              "\"finish_reason\":null}],\"usage\":null");
    for (int pad = -1; pad <= 72; pad++) {
        char usage[256];
        if (pad < 0) /* shorter than a step */
            snprintf(usage, sizeof usage, "data: {\"choices\":[],\"usage\":{}}\n\n");
        else
            snprintf(usage, sizeof usage,
                     "data: {\"id\":\"%.*s\",\"choices\":[],\"usage\" : {%s}}\n\n", pad,
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                     pad % 2 ? "\"prompt_tokens\":3" : "");
        rig_t r;
        tg_loop_client_t c;
        if (stream_exchange(&r, &c, (tg_fake_answer_t){.pieces = {hello_null, usage, ev_done}})) {
            CHECK(c.ended && !c.aborted);
            CHECK(stream_has(&c, "\"usage\":null"));
            CHECK(!stream_has(&c, "\"choices\":[]"));
            CHECK(stream_has(&c, "data: [DONE]"));
        }
        rig_done(&r, &c);
    }
}

TEST(loopback_cut_stream_ends_with_an_error_event)
{
    rig_t r;
    tg_loop_client_t c;
    if (stream_exchange(&r, &c,
                        (tg_fake_answer_t){.pieces = {ev_hello},
                                           .result = TG_UP_BROKEN,
                                           .error = "connection reset"})) {
        CHECK(c.ended);
        CHECK_INT(c.status, 200); /* the stream had begun */
        CHECK(stream_has(&c, "\"content\":\"hello\""));
        CHECK(stream_has(&c, "\"error\""));
        CHECK(!stream_has(&c, "[DONE]"));
    }
    rig_done(&r, &c);
}

TEST(loopback_client_leaves_mid_stream)
{
    rig_t r;
    tg_loop_client_t c;
    if (stream_exchange(&r, &c, (tg_fake_answer_t){.pieces = {ev_hello}, .stall = true})) {
        /* the loop ran dry: the provider stalls after one event */
        CHECK(c.streamed && !c.ended);
        CHECK_INT(tg_fake_relay_open(r.relay), 1);
        tg_loop_client_leave(&c);
        CHECK(c.ended);
        CHECK_INT(tg_fake_relay_cancels(r.relay), 1);
        CHECK_INT(tg_fake_relay_open(r.relay), 0);
        event_base_dispatch(r.base); /* nothing left behind to run */
    }
    rig_done(&r, &c);
}

TEST(loopback_cache_hit_answered_without_the_provider)
{
    rig_t r;
    tg_loop_client_t first, second;
    const char *hdrs[] = {"Helicone-Cache-Enabled", "true", NULL};
    tg_loop_request_t req = {.path = "/v1/chat/completions", .headers = hdrs, .body = chat_body};
    if (rig_exchange(&r, "caching: {enabled: true}\n", ANSWERS(&answer_ok), &req, &first)) {
        char v[64];
        CHECK_STR(tg_loop_header(&first, "Helicone-Cache", v, sizeof v), "MISS");
        rig_send(&r, &second, &req);
        check_answered_by(&r, &second, "pa", 1); /* the second never reached the relay */
        CHECK_STR(tg_loop_header(&second, "Helicone-Cache", v, sizeof v), "HIT");
        tg_loop_client_free(&second);
    }
    rig_done(&r, &first);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

TEST(loopback_record_in_the_store)
{
    char dir[64] = "/tmp/tg-loop-XXXXXX", url[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof url, "sqlite:%s/t.db", dir);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.url = url;
    tg_store_t *s = NULL;
    char err[256] = "";
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), 0);
    rig_t r = {0};
    if (s && rig_open_store(&r, NULL, s)) {
        tg_fake_relay_push(r.relay, &answer_ok);
        tg_loop_client_t c;
        rig_send(&r, &c, &(tg_loop_request_t){.path = "/v1/chat/completions", .body = chat_body});
        CHECK_INT(c.status, 200);
        /* the journal is written before the loop sleeps; the writer thread
         * then puts the record in the database */
        CHECK_INT(tg_store_flush(s, 20000), 0);
        tg_buf_t out = {0};
        CHECK_INT(tg_query_requests(s, "", &out), 200);
        const char *j = out.data ? out.data : "";
        CHECK(strstr(j, "\"provider\":\"pa\"") != NULL);
        CHECK(strstr(j, "\"model\":\"m1\"") != NULL);
        CHECK(strstr(j, "\"status\":200") != NULL);
        CHECK(strstr(j, "\"prompt_tokens\":3") != NULL);
        CHECK(strstr(j, "\"completion_tokens\":1") != NULL);
        if (!strstr(j, "\"prompt_tokens\":3"))
            printf("    records: %.600s\n", j);
        tg_buf_free(&out);
        tg_loop_client_free(&c);
        /* the same through /api/v1: the query runs on a reader thread and
         * the exchange ends when its answer is back on this loop */
        CHECK(r.gw->readers != NULL);
        rig_send(
            &r, &c,
            &(tg_loop_request_t){
                .method = "GET", .path = "/api/v1/stats", .query = "model=m1", .dashboard = true});
        CHECK_INT(c.status, 200);
        CHECK(c.body.data && strstr(c.body.data, "\"requests\":1,") != NULL);
        tg_loop_client_free(&c);
        CHECK_INT(tg_readers_pending(r.gw->readers), 0);
    }
    rig_close(&r); /* the gateway closes the store */
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the dashboard's listener ---- */

TEST(loopback_dashboard_port_serves_the_page_and_api_only)
{
    rig_t r;
    tg_loop_client_t c;
    if (!rig_open(&r, NULL))
        return;
    char buf[512];
    /* the page, with its security headers, gzip'd for a browser */
    rig_send(&r, &c,
             &(tg_loop_request_t){.method = "GET",
                                  .path = "/",
                                  .headers = (const char *[]){"Accept-Encoding", "gzip", NULL},
                                  .dashboard = true});
    CHECK_INT(c.status, 200);
    CHECK_STR(c.content_type, "text/html; charset=utf-8");
    CHECK_STR(tg_loop_header(&c, "Content-Encoding", buf, sizeof buf), "gzip");
    CHECK_STR(tg_loop_header(&c, "X-Content-Type-Options", buf, sizeof buf), "nosniff");
    CHECK_STR(tg_loop_header(&c, "Referrer-Policy", buf, sizeof buf), "no-referrer");
    CHECK(tg_loop_header(&c, "Content-Security-Policy", buf, sizeof buf) != NULL);
    char etag[64] = "";
    CHECK(tg_loop_header(&c, "ETag", etag, sizeof etag) != NULL);
    CHECK(c.body.len > 2 && (unsigned char)c.body.data[0] == 0x1f);
    tg_loop_client_free(&c);
    /* again with its ETag: 304 */
    rig_send(&r, &c,
             &(tg_loop_request_t){.method = "GET",
                                  .path = "/",
                                  .headers = (const char *[]){"If-None-Match", etag, NULL},
                                  .dashboard = true});
    CHECK_INT(c.status, 304);
    CHECK_INT(c.body.len, 0);
    tg_loop_client_free(&c);
    /* LLM routes and /metrics are not on the dashboard's port */
    rig_send(
        &r, &c,
        &(tg_loop_request_t){.path = "/v1/chat/completions", .body = chat_body, .dashboard = true});
    CHECK_INT(c.status, 404);
    CHECK_INT(tg_fake_relay_n_calls(r.relay), 0);
    tg_loop_client_free(&c);
    rig_send(&r, &c, &(tg_loop_request_t){.method = "GET", .path = "/metrics", .dashboard = true});
    CHECK_INT(c.status, 404);
    tg_loop_client_free(&c);
    /* /health and /api/v1 are */
    rig_send(&r, &c, &(tg_loop_request_t){.method = "GET", .path = "/health", .dashboard = true});
    CHECK_INT(c.status, 200);
    tg_loop_client_free(&c);
    rig_send(&r, &c,
             &(tg_loop_request_t){.method = "GET", .path = "/api/v1/providers", .dashboard = true});
    CHECK_INT(c.status, 200);
    CHECK(c.body.data &&
          strstr(c.body.data, "{\"name\":\"pa\",\"type\":\"openai\",\"ejected\":false,"
                              "\"usable\":true,") != NULL);
    tg_loop_client_free(&c);
    /* the admin address rule holds there too */
    rig_send(
        &r, &c,
        &(tg_loop_request_t){
            .method = "GET", .path = "/api/v1/providers", .ip = "192.0.2.7", .dashboard = true});
    CHECK_INT(c.status, 403);
    tg_loop_client_free(&c);
    /* and the page is not on the main port */
    rig_send(&r, &c, &(tg_loop_request_t){.method = "GET", .path = "/app.js"});
    CHECK_INT(c.status, 404);
    CHECK(c.body.data && strstr(c.body.data, "unknown_route") != NULL);
    tg_loop_client_free(&c);
    rig_close(&r);
}
