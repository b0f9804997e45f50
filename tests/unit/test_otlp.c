/*
 * test_otlp.c — the OpenTelemetry export (src/otlp/): the OTLP/HTTP JSON of
 * a span against a golden text (ids in hex, times and integers as strings,
 * kind CLIENT, the GenAI attributes, an error's status), the W3C
 * traceparent parser against hostile values, the provider's answer id and
 * model in each dialect, the traces URL, and the exporter dropping and
 * counting what a collector that cannot be reached never takes.
 */
#include "test.h"

#include "config/config.h"
#include "otlp/otlp.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char *const PARENT = "00f067aa0ba902b7";

static tg_otlp_span_t sample_span(void)
{
    static const tg_otlp_prop_t props[] = {{"team", "blue"}, {"env", "prod\"x"}};
    tg_otlp_span_t s = {
        .span_id = {1, 2, 3, 4, 5, 6, 7, 0xab},
        .start_ns = 1733580000123000000LL,
        .end_ns = 1733580000456000000LL,
        .operation = "chat",
        .provider_name = "openai",
        .request_model = "gpt-4o-mini",
        .response_model = "gpt-4o-mini-2024-07-18",
        .response_id = "chatcmpl-1",
        .server_address = "api.openai.com",
        .server_port = 443,
        .status = 200,
        .input_tokens = 12,
        .output_tokens = 34,
        .max_tokens = 50,
        .temperature = 0.7,
        .stream = true,
        .provider = "openai",
        .model_requested = "openai/gpt-4o-mini",
        .route = "/v1/chat/completions",
        .request_id = "req-1",
        .user_id = "alice",
        .session_id = "s-1",
        .key_name = "team-key",
        .cache = "miss",
        .cost_nusd = 123456,
        .latency_ms = 333,
        .ttft_ms = 120,
        .retries = 0,
        .fallback_index = 0,
        .props = props,
        .n_props = 2,
    };
    for (int i = 0; i < 16; i++)
        s.ctx.trace_id[i] = (uint8_t)(0xf0 + i);
    return s;
}

TEST(otlp_encode_golden)
{
    tg_otlp_span_t s = sample_span();
    const tg_otlp_span_t *spans[] = {&s};
    tg_buf_t b = {0};
    tg_otlp_encode(spans, 1, "my-gw", "1.2.3", &b);
    CHECK_STR(
        b.data,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"my-gw\"}},"
        "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"1.2.3\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"tollgate\",\"version\":\"1.2.3\"},\"spans\":["
        "{\"traceId\":\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\",\"spanId\":\"01020304050607ab\","
        "\"name\":\"chat gpt-4o-mini\",\"kind\":3,"
        "\"startTimeUnixNano\":\"1733580000123000000\",\"endTimeUnixNano\":\"1733580000456000000\","
        "\"attributes\":["
        "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
        "{\"key\":\"gen_ai.provider.name\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o-mini\"}},"
        "{\"key\":\"gen_ai.response.model\",\"value\":{\"stringValue\":\"gpt-4o-mini-2024-07-18\"}}"
        ","
        "{\"key\":\"gen_ai.response.id\",\"value\":{\"stringValue\":\"chatcmpl-1\"}},"
        "{\"key\":\"gen_ai.request.max_tokens\",\"value\":{\"intValue\":\"50\"}},"
        "{\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.7}},"
        "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"12\"}},"
        "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"34\"}},"
        "{\"key\":\"server.address\",\"value\":{\"stringValue\":\"api.openai.com\"}},"
        "{\"key\":\"server.port\",\"value\":{\"intValue\":\"443\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}},"
        "{\"key\":\"tollgate.request_id\",\"value\":{\"stringValue\":\"req-1\"}},"
        "{\"key\":\"tollgate.provider\",\"value\":{\"stringValue\":\"openai\"}},"
        "{\"key\":\"tollgate.model_requested\",\"value\":{\"stringValue\":\"openai/gpt-4o-mini\"}},"
        "{\"key\":\"tollgate.route\",\"value\":{\"stringValue\":\"/v1/chat/completions\"}},"
        "{\"key\":\"tollgate.stream\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"tollgate.cache\",\"value\":{\"stringValue\":\"miss\"}},"
        "{\"key\":\"tollgate.cost_usd\",\"value\":{\"doubleValue\":0.000123456}},"
        "{\"key\":\"tollgate.latency_ms\",\"value\":{\"intValue\":\"333\"}},"
        "{\"key\":\"tollgate.ttft_ms\",\"value\":{\"intValue\":\"120\"}},"
        "{\"key\":\"tollgate.retries\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"tollgate.fallback_index\",\"value\":{\"intValue\":\"0\"}},"
        "{\"key\":\"tollgate.user_id\",\"value\":{\"stringValue\":\"alice\"}},"
        "{\"key\":\"tollgate.session_id\",\"value\":{\"stringValue\":\"s-1\"}},"
        "{\"key\":\"tollgate.key_name\",\"value\":{\"stringValue\":\"team-key\"}},"
        "{\"key\":\"tollgate.property.team\",\"value\":{\"stringValue\":\"blue\"}},"
        "{\"key\":\"tollgate.property.env\",\"value\":{\"stringValue\":\"prod\\\"x\"}}"
        "]}]}]}]}");
    tg_buf_free(&b);
}

TEST(otlp_encode_error_parent_and_unknowns)
{
    tg_otlp_span_t s = {
        .operation = "embeddings",
        .status = 502,
        .error = "provider answered 502 \xff", /* not UTF-8: replaced, still valid JSON */
        .input_tokens = -1,
        .output_tokens = -1,
        .max_tokens = -1,
        .temperature = NAN,
        .cost_nusd = -1,
        .latency_ms = -1,
        .ttft_ms = -1,
        .retries = 2,
        .fallback_index = -1,
    };
    CHECK_INT(tg_otlp_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                        &s.ctx),
              0);
    const tg_otlp_span_t *spans[] = {&s, &s};
    tg_buf_t b = {0};
    tg_otlp_encode(spans, 2, NULL, "1.2.3", &b);
    json_error_t err;
    json_t *root = json_loadb(b.data, b.len, 0, &err);
    CHECK(root != NULL);
    json_t *rs = json_array_get(json_object_get(root, "resourceSpans"), 0);
    json_t *attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(attrs, 0), "value"),
                                                "stringValue")),
              "tollgate"); /* the default service.name */
    json_t *list = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
    CHECK_INT(json_array_size(list), 2);
    json_t *sp = json_array_get(list, 0);
    CHECK_STR(json_string_value(json_object_get(sp, "traceId")), TRACE);
    CHECK_STR(json_string_value(json_object_get(sp, "parentSpanId")), PARENT);
    CHECK_STR(json_string_value(json_object_get(sp, "name")), "embeddings"); /* no model */
    json_t *st = json_object_get(sp, "status");
    CHECK_INT(json_integer_value(json_object_get(st, "code")), 2);
    CHECK_STR(json_string_value(json_object_get(st, "message")),
              "provider answered 502 \xef\xbf\xbd");
    /* unknown numbers are left out; the error's type is its status */
    CHECK(!strstr(b.data, "gen_ai.usage.input_tokens"));
    CHECK(!strstr(b.data, "gen_ai.request.temperature"));
    CHECK(!strstr(b.data, "tollgate.cost_usd"));
    CHECK(!strstr(b.data, "tollgate.fallback_index"));
    CHECK(strstr(b.data, "{\"key\":\"error.type\",\"value\":{\"stringValue\":\"502\"}}"));
    CHECK(strstr(b.data, "{\"key\":\"tollgate.retries\",\"value\":{\"intValue\":\"2\"}}"));
    json_decref(root);
    tg_buf_free(&b);
}

TEST(otlp_traceparent_valid_and_hostile)
{
    tg_otlp_ctx_t c = {0};
    CHECK_INT(
        tg_otlp_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c),
        0);
    CHECK(c.has_parent);
    CHECK_INT(c.trace_id[0], 0x4b);
    CHECK_INT(c.trace_id[15], 0x36);
    CHECK_INT(c.parent_id[0], 0x00);
    CHECK_INT(c.parent_id[7], 0xb7);
    CHECK_INT(c.flags, 1);
    /* the traceparent for what follows: same trace and flags, our span the parent */
    uint8_t span[8] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3};
    char tp[56];
    tg_otlp_traceparent_format(&c, span, tp);
    CHECK_STR(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-deadbeef00010203-01");
    tg_otlp_ctx_t back = {0};
    CHECK_INT(tg_otlp_traceparent_parse(tp, &back), 0);
    CHECK(!memcmp(back.trace_id, c.trace_id, 16) && !memcmp(back.parent_id, span, 8));
    /* a new span keeps the trace; without one, a trace is made */
    tg_otlp_new_span(&c, span);
    CHECK(c.has_parent && c.trace_id[0] == 0x4b);
    tg_otlp_ctx_t fresh = {0};
    tg_otlp_new_span(&fresh, span);
    CHECK(!fresh.has_parent && fresh.flags == 1);
    static const uint8_t zero[16];
    CHECK(memcmp(fresh.trace_id, zero, 16) != 0 && memcmp(span, zero, 8) != 0);
    /* flags need not be 01; a later version may carry more after a '-' */
    CHECK_INT(
        tg_otlp_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c),
        0);
    CHECK_INT(tg_otlp_traceparent_parse(
                  "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next", &c),
              0);
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short flags */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e47361-00f067aa0ba902b7-01", /* long trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",   /* short parent */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* 00 with more */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version not hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",  /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",  /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",  /* flags not hex */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* all-zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* all-zero parent */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later: '-' must follow */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* shifted */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_otlp_ctx_t z = {0};
        if (tg_otlp_traceparent_parse(bad[i], &z) != -1 || z.has_parent)
            tg_test_fail(__FILE__, __LINE__, "traceparent \"%s\" accepted", bad[i]);
    }
    CHECK_INT(tg_otlp_traceparent_parse(NULL, &c), -1);
    /* very long: the parser reads a bounded prefix and refuses it */
    char *lng = malloc(100001);
    memset(lng, 'a', 100000);
    lng[100000] = 0;
    CHECK_INT(tg_otlp_traceparent_parse(lng, &c), -1);
    free(lng);
}

TEST(otlp_response_ids_per_dialect)
{
    char id[64], model[64];
#define IDS(json)                                                                                  \
    (id[0] = model[0] = 0,                                                                         \
     tg_otlp_response_ids(json, strlen(json), id, sizeof id, model, sizeof model))
    CHECK(IDS("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\"}"));
    CHECK_STR(id, "chatcmpl-1");
    CHECK_STR(model, "gpt-4o");
    /* Anthropic's message_start */
    CHECK(IDS("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\"}}"));
    CHECK_STR(id, "msg_1");
    CHECK_STR(model, "claude");
    /* a Responses event */
    CHECK(IDS("{\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"o3\"}}"));
    CHECK_STR(id, "resp_1");
    /* Gemini */
    CHECK(IDS("{\"candidates\":[],\"modelVersion\":\"gemini-2.0\",\"responseId\":\"g-1\"}"));
    CHECK_STR(id, "g-1");
    CHECK_STR(model, "gemini-2.0");
    /* what cannot be taken plainly is left unset */
    CHECK(!IDS("{\"id\":\"a\\\"b\",\"model\":\"m\"}"));
    CHECK_STR(id, "");
    CHECK_STR(model, "m");
    CHECK(!IDS(
        "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}"));
    CHECK_STR(id, "");
    CHECK(!IDS("[1,2]"));
    CHECK(!IDS("not json"));
    CHECK(!IDS("{\"id\":12,\"model\":null}"));
#undef IDS
}

TEST(otlp_urls_and_names)
{
    char *u = tg_otlp_traces_url("http://c:4318");
    CHECK_STR(u, "http://c:4318/v1/traces");
    free(u);
    u = tg_otlp_traces_url("http://c:4318/");
    CHECK_STR(u, "http://c:4318/v1/traces");
    free(u);
    u = tg_otlp_traces_url("https://c/otlp/v1/traces/");
    CHECK_STR(u, "https://c/otlp/v1/traces");
    free(u);
    CHECK_STR(tg_otlp_provider_name("gemini"), "gcp.gemini");
    CHECK_STR(tg_otlp_provider_name("azure"), "azure.ai.openai");
    CHECK_STR(tg_otlp_provider_name("xai"), "x_ai");
    CHECK_STR(tg_otlp_provider_name("anthropic"), "anthropic");
    CHECK_STR(tg_otlp_provider_name("groq"), "groq");
    CHECK(tg_otlp_provider_name(NULL) == NULL);
}

TEST(otlp_unreachable_collector_drops_and_counts)
{
    tg_config_t cfg = {0};
    cfg.otlp_endpoint = "http://127.0.0.1:1"; /* refused at once */
    cfg.otlp_timeout_ms = 500;
    tg_otlp_t *o = tg_otlp_new(&cfg, NULL);
    CHECK(o != NULL);
    tg_otlp_span_t s = sample_span();
    for (int i = 0; i < 3; i++)
        tg_otlp_submit(o, &s);
    long long exported = -1, dropped = -1;
    for (int i = 0; i < 400; i++) { /* the retries take about two seconds */
        tg_otlp_counts(o, &exported, &dropped);
        if (dropped == 3)
            break;
        usleep(25000);
    }
    CHECK_INT(dropped, 3);
    CHECK_INT(exported, 0);
    tg_otlp_free(o);
    cfg.otlp_endpoint = NULL;
    CHECK(tg_otlp_new(&cfg, NULL) == NULL); /* no endpoint: no exporter */
    tg_otlp_submit(NULL, &s);               /* and submitting to none is nothing */
}

TEST(otlp_reload_says_what_needs_a_restart)
{
    tg_kv_t h1[] = {{"Authorization", "Bearer a"}}, h2[] = {{"Authorization", "Bearer b"}};
    tg_config_t a = {0}, b = {0};
    a.otlp_endpoint = b.otlp_endpoint = "http://c:4318";
    a.otlp_timeout_ms = b.otlp_timeout_ms = 10000;
    CHECK(!tg_otlp_config_differs(&a, &b));
    b.otlp_service_name = "other";
    CHECK(tg_otlp_config_differs(&a, &b));
    b.otlp_service_name = NULL;
    a.otlp_headers = h1;
    a.n_otlp_headers = 1;
    b.otlp_headers = h2;
    b.n_otlp_headers = 1;
    CHECK(tg_otlp_config_differs(&a, &b));
    b.otlp_headers = h1;
    CHECK(!tg_otlp_config_differs(&a, &b));
    b.otlp_endpoint = NULL;
    CHECK(tg_otlp_config_differs(&a, &b));
}
