/* Helicone manual logs (proxy/manual_log.h): the document's shape, and
 * what a record takes from it. */
#include "test.h"

#include "proxy/manual_log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TIMING                                                                                     \
    "\"timing\":{\"startTime\":{\"seconds\":100,\"milliseconds\":250},"                            \
    "\"endTime\":{\"seconds\":101,\"milliseconds\":0},\"timeToFirstToken\":120}"

static int read_doc(const char *doc, const char *dialect, tg_manual_log_t *l, char *err,
                    size_t errlen, json_t **root)
{
    *root = json_loads(doc, 0, NULL);
    return tg_manual_log_read(*root, dialect, l, err, errlen);
}

TEST(manual_log_openai_answer)
{
    tg_manual_log_t l;
    char err[300];
    json_t *root;
    int rc = read_doc("{\"providerRequest\":{\"url\":\"u\",\"json\":{\"model\":\"gpt-4o-mini\"},"
                      "\"meta\":{\"Helicone-User-Id\":\"u1\"}},"
                      "\"providerResponse\":{\"status\":200,\"headers\":{},\"json\":{\"model\":"
                      "\"gpt-4o-mini-2024\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":"
                      "4}}}," TIMING "}",
                      "openai", &l, err, sizeof err, &root);
    CHECK_INT(rc, 0);
    CHECK_INT(l.status, 200);
    CHECK_INT(l.start_ms, 100250);
    CHECK_INT(l.latency_ms, 750);
    CHECK_INT(l.ttft_ms, 120);
    CHECK_STR(l.model, "gpt-4o-mini-2024");
    CHECK_STR(l.model_requested, "gpt-4o-mini");
    CHECK_INT(l.usage.prompt_tokens, 10);
    CHECK_INT(l.usage.completion_tokens, 4);
    CHECK(l.meta != NULL);
    json_decref(root);
}

TEST(manual_log_streamed_text_in_each_dialect)
{
    tg_manual_log_t l;
    char err[300];
    json_t *root;
    /* Anthropic's events, named by the document's provider on the custom route */
    int rc = read_doc(
        "{\"provider\":\"ANTHROPIC\",\"providerRequest\":{\"json\":{\"model\":\"claude-x\"}},"
        "\"providerResponse\":{\"textBody\":\"event: message_start\\ndata: "
        "{\\\"type\\\":\\\"message_start\\\",\\\"message\\\":{\\\"usage\\\":{\\\"input_tokens\\\":"
        "30,\\\"output_tokens\\\":1}}}\\n\\nevent: message_delta\\ndata: "
        "{\\\"type\\\":\\\"message_delta\\\",\\\"usage\\\":{\\\"output_tokens\\\":9}}\"}," TIMING
        "}",
        "openai", &l, err, sizeof err, &root);
    CHECK_INT(rc, 0);
    CHECK_INT(l.usage.prompt_tokens, 30);
    CHECK_INT(l.usage.completion_tokens, 9);
    CHECK_STR(l.model, "claude-x");
    CHECK_STR(l.provider, "ANTHROPIC");
    json_decref(root);
    /* Gemini's streamed JSON array, on the googleapis route */
    rc = read_doc("{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"textBody\":"
                  "\"[{\\\"usageMetadata\\\":{\\\"promptTokenCount\\\":5,"
                  "\\\"candidatesTokenCount\\\":2}}]\"}," TIMING "}",
                  "gemini", &l, err, sizeof err, &root);
    CHECK_INT(rc, 0);
    CHECK_INT(l.usage.prompt_tokens, 5);
    CHECK_INT(l.usage.completion_tokens, 2);
    CHECK(l.model == NULL);
    json_decref(root);
}

TEST(manual_log_refuses_other_shapes)
{
    static const struct {
        const char *doc, *says;
    } bad[] = {
        {"[]", "must be a JSON object"},
        {"{\"providerResponse\":{\"json\":{}}," TIMING "}", "providerRequest must be"},
        {"{\"providerRequest\":{\"json\":{}}," TIMING "}", "providerResponse must be"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}}}",
         "timing must be"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"provider\":"
         "1," TIMING "}",
         "provider must be a string"},
        {"{\"providerRequest\":{\"url\":3,\"json\":{}},\"providerResponse\":{\"json\":{}}," TIMING
         "}",
         "providerRequest.url"},
        {"{\"providerRequest\":{\"json\":\"x\"},\"providerResponse\":{\"json\":{}}," TIMING "}",
         "providerRequest.json"},
        {"{\"providerRequest\":{\"json\":{},\"meta\":[]},\"providerResponse\":{\"json\":{}}," TIMING
         "}",
         "providerRequest.meta"},
        {"{\"providerRequest\":{\"json\":{},\"meta\":{\"k\":1}},\"providerResponse\":{\"json\":{}}"
         "," TIMING "}",
         "providerRequest.meta.k"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"status\":600,\"json\":{}}"
         "," TIMING "}",
         "providerResponse.status"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"status\":\"200\",\"json\":{}}"
         "," TIMING "}",
         "providerResponse.status"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"headers\":1,\"json\":{}}"
         "," TIMING "}",
         "providerResponse.headers"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":5}," TIMING "}",
         "providerResponse.json"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"textBody\":{}}," TIMING "}",
         "providerResponse.textBody"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"status\":200}," TIMING "}",
         "needs json or textBody"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"timing\":{"
         "\"startTime\":{\"seconds\":-1},\"endTime\":{\"seconds\":1}}}",
         "timing.startTime"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"timing\":{"
         "\"startTime\":{\"seconds\":1},\"endTime\":{\"seconds\":1.5}}}",
         "timing.endTime"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"timing\":{"
         "\"startTime\":{\"seconds\":1,\"milliseconds\":1000},\"endTime\":{\"seconds\":2}}}",
         "timing.startTime"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"timing\":{"
         "\"startTime\":{\"seconds\":5},\"endTime\":{\"seconds\":2}}}",
         "before timing.startTime"},
        {"{\"providerRequest\":{\"json\":{}},\"providerResponse\":{\"json\":{}},\"timing\":{"
         "\"startTime\":{\"seconds\":1},\"endTime\":{\"seconds\":2},\"timeToFirstToken\":-3}}",
         "timeToFirstToken"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_manual_log_t l;
        char err[300] = "";
        json_t *root;
        int rc = read_doc(bad[i].doc, "openai", &l, err, sizeof err, &root);
        if (rc != -1 || !strstr(err, bad[i].says))
            tg_test_fail(__FILE__, __LINE__, "case %zu: rc %d, error '%s', expected '%s'", i, rc,
                         err, bad[i].says);
        json_decref(root);
    }
}
