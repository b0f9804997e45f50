/* The built-in mock provider answers like OpenAI, with usage. */
#include "test.h"

#include "core/sse.h"
#include "providers/provider.h"

#include <jansson.h>

TEST(mock_chat_plain)
{
    json_t *req = json_loads("{\"model\":\"mock/x\",\"messages\":[{\"role\":\"system\",\"content\":"
                             "\"be brief\"},{\"role\":\"user\",\"content\":\"hello there\"}]}",
                             0, NULL);
    tg_buf_t out = {0};
    CHECK_INT(tg_mock_answer(TG_MOCK_CHAT, req, "x", false, &out), 200);
    json_t *res = json_loads(out.data, 0, NULL);
    CHECK(res != NULL);
    const char *content = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(res, "choices"), 0), "message"), "content"));
    CHECK(content && strstr(content, "hello there"));
    json_t *usage = json_object_get(res, "usage");
    long p = (long)json_integer_value(json_object_get(usage, "prompt_tokens"));
    long c = (long)json_integer_value(json_object_get(usage, "completion_tokens"));
    CHECK(p > 0 && c > 0);
    CHECK_INT(json_integer_value(json_object_get(usage, "total_tokens")), p + c);
    CHECK_STR(json_string_value(json_object_get(res, "object")), "chat.completion");
    json_decref(res);
    json_decref(req);
    tg_buf_free(&out);
}

typedef struct {
    tg_buf_t text;
    int done;
    long completion_tokens;
    int bad;
} stream_t;

static int on_event(void *arg, const char *event, const char *data, size_t len)
{
    stream_t *s = arg;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        s->done++;
        return 0;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!j) {
        s->bad++;
        return 0;
    }
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    const char *piece =
        json_string_value(json_object_get(json_object_get(choice, "delta"), "content"));
    if (piece)
        tg_buf_puts(&s->text, piece);
    json_t *usage = json_object_get(j, "usage");
    if (usage)
        s->completion_tokens =
            (long)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_decref(j);
    return 0;
}

TEST(mock_chat_stream_with_usage)
{
    json_t *req = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                             "\"text\":\"parts work\"}]}],\"stream\":true,"
                             "\"stream_options\":{\"include_usage\":true}}",
                             0, NULL);
    tg_buf_t out = {0};
    CHECK_INT(tg_mock_answer(TG_MOCK_CHAT, req, "echo", true, &out), 200);
    tg_sse_parser_t p = {0};
    stream_t s = {0};
    CHECK_INT(tg_sse_feed(&p, out.data, out.len, on_event, &s), 0);
    CHECK_INT(s.done, 1);
    CHECK_INT(s.bad, 0);
    CHECK(s.text.data && strstr(s.text.data, "parts work"));
    CHECK(s.completion_tokens > 0);
    tg_sse_free(&p);
    tg_buf_free(&s.text);
    tg_buf_free(&out);
    json_decref(req);
}

TEST(mock_rejects_bad_input_and_embeds)
{
    json_t *req = json_loads("{\"messages\":\"nope\"}", 0, NULL);
    tg_buf_t out = {0};
    CHECK_INT(tg_mock_answer(TG_MOCK_CHAT, req, "x", false, &out), 400);
    CHECK(strstr(out.data, "invalid_request_error") != NULL);
    json_decref(req);
    tg_buf_reset(&out);

    req = json_loads("{\"input\":[\"a\",\"b\"]}", 0, NULL);
    CHECK_INT(tg_mock_answer(TG_MOCK_EMBEDDINGS, req, "e", false, &out), 200);
    json_t *res = json_loads(out.data, 0, NULL);
    CHECK_INT(json_array_size(json_object_get(res, "data")), 2);
    json_decref(res);
    json_decref(req);
    tg_buf_free(&out);
}
