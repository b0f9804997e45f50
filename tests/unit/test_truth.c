/*
 * What a record and a cut stream's client are told (SPEC §7): the
 * provider's own error message read from an error body of any dialect
 * (bounded, valid UTF-8), the error event of each client dialect, and
 * whether a translated stream ended as its provider's dialect ends one.
 */
#include "test.h"

#include "providers/provider.h"
#include "providers/translate.h"

#include <jansson.h>
#include <stdlib.h>

static void check_message(const char *body, const char *want)
{
    char *m = tg_translate_error_message(body, body ? strlen(body) : 0);
    if (!want) {
        if (m)
            tg_test_fail(__FILE__, __LINE__, "message of %s: \"%s\", expected none",
                         body ? body : "(null)", m);
    } else {
        CHECK_STR(m, want);
    }
    free(m);
}

TEST(error_message_of_each_dialect)
{
    check_message("{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\","
                  "\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
                  "Rate limit reached");
    check_message("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                  "\"Overloaded\"}}",
                  "Overloaded");
    check_message("{\"error\":{\"code\":429,\"message\":\"Resource exhausted\",\"status\":"
                  "\"RESOURCE_EXHAUSTED\"}}",
                  "Resource exhausted");
    check_message("{\"error\":\"plain text error\"}", "plain text error");
    check_message("{\"detail\":\"Not Found\"}", "Not Found");
    /* a Responses-style error event: the message at the top */
    check_message("{\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\"}", "boom");
    /* nothing to quote: the caller falls back to "provider answered NNN" */
    check_message("<html><body>502 Bad Gateway</body></html>", NULL);
    check_message("{\"error\":{\"code\":500}}", NULL);
    check_message("{\"error\":{\"message\":\"\"}}", NULL);
    check_message("[1,2]", NULL);
    check_message("", NULL);
    check_message(NULL, NULL);
}

TEST(error_message_bounded_and_clean)
{
    /* control characters (an escaped NUL too) become spaces */
    check_message("{\"error\":{\"message\":\"line one\\nline\\u0000two\\t!\"}}",
                  "line one line two !");
    /* a long message is cut on a character boundary: 'é' is two bytes */
    tg_buf_t b = {0};
    tg_buf_puts(&b, "{\"error\":{\"message\":\"");
    for (int i = 0; i < TG_ERROR_MESSAGE_MAX; i++)
        tg_buf_puts(&b, "\xc3\xa9");
    tg_buf_puts(&b, "\"}}");
    char *m = tg_translate_error_message(b.data, b.len);
    CHECK(m != NULL);
    if (m) {
        CHECK_INT(strlen(m), TG_ERROR_MESSAGE_MAX); /* 256 whole characters */
        json_t *j = json_string(m);                 /* NULL when not valid UTF-8 */
        CHECK(j != NULL);
        json_decref(j);
    }
    free(m);
    /* an odd byte budget: the half character is left out */
    tg_buf_reset(&b);
    tg_buf_puts(&b, "{\"error\":{\"message\":\"x");
    for (int i = 0; i < TG_ERROR_MESSAGE_MAX; i++)
        tg_buf_puts(&b, "\xc3\xa9");
    tg_buf_puts(&b, "\"}}");
    m = tg_translate_error_message(b.data, b.len);
    CHECK(m && strlen(m) == TG_ERROR_MESSAGE_MAX - 1);
    free(m);
    /* bytes that are not UTF-8: not JSON, so no message (never invalid text) */
    check_message("{\"error\":{\"message\":\"bad \xff byte\"}}", NULL);
    tg_buf_free(&b);
}

static char *event_of(tg_wire_t wire, int status, const char *code, const char *msg)
{
    tg_buf_t b = {0};
    tg_translate_error_event(wire, status, code, msg, &b);
    return b.data;
}

TEST(error_event_per_dialect)
{
    char *e = event_of(TG_WIRE_OPENAI, 502, "provider_error", "cut \"short\"");
    CHECK_STR(e, "data: {\"error\":{\"message\":\"cut \\\"short\\\"\",\"type\":\"api_error\","
                 "\"code\":\"provider_error\"}}\n\n");
    free(e);
    e = event_of(TG_WIRE_ANTHROPIC, 504, "provider_timeout", "slow");
    CHECK_STR(e, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                 "\"message\":\"slow\"}}\n\n");
    free(e);
    e = event_of(TG_WIRE_GEMINI, 503, NULL, "stopping");
    CHECK_STR(e, "data: {\"error\":{\"code\":503,\"message\":\"stopping\",\"status\":"
                 "\"UNAVAILABLE\"}}\n\n");
    free(e);
    e = event_of(TG_WIRE_OPENAI, 503, NULL, "x");
    CHECK_STR(e, "data: {\"error\":{\"message\":\"x\",\"type\":\"api_error\",\"code\":null}}\n\n");
    free(e);
}

/* Feed (event, data) pairs; report ended and the provider's error. */
static bool feed_all(const tg_translator_t *t, const char *const *ev, char **error)
{
    tg_translate_stream_t *s = tg_translate_stream_new(t, NULL);
    tg_buf_t out = {0};
    for (int i = 0; ev[i]; i += 2)
        tg_translate_stream_feed(s, ev[i], ev[i + 1], strlen(ev[i + 1]), &out);
    bool ended = tg_translate_stream_ended(s);
    const char *e = tg_translate_stream_error(s);
    *error = e ? strdup(e) : NULL;
    tg_translate_stream_free(s);
    tg_buf_free(&out);
    return ended;
}

TEST(translated_stream_ended)
{
    char *err;
    const tg_translator_t *o2a = tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_OPENAI);
    const char *chunk = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}";
    const char *fin = "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}";
    const char *open_only[] = {"message", chunk, "message", fin, NULL};
    CHECK(!feed_all(o2a, open_only, &err)); /* a finish_reason is not the end: [DONE] is */
    CHECK(err == NULL);
    const char *done[] = {"message", chunk, "message", fin, "message", "[DONE]", NULL};
    CHECK(feed_all(o2a, done, &err));
    CHECK(err == NULL);
    const char *failed[] = {"message", chunk, "message",
                            "{\"error\":{\"message\":\"upstream overloaded\"}}", NULL};
    CHECK(feed_all(o2a, failed, &err));
    CHECK_STR(err, "upstream overloaded");
    free(err);

    const tg_translator_t *a2o = tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_ANTHROPIC);
    const char *delta = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}";
    const char *no_stop[] = {"message_delta", delta, NULL};
    CHECK(!feed_all(a2o, no_stop, &err));
    const char *stop[] = {"message_delta", delta, "message_stop", "{\"type\":\"message_stop\"}",
                          NULL};
    CHECK(feed_all(a2o, stop, &err));
    const char *aerr[] = {"error",
                          "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded\"}}",
                          NULL};
    CHECK(feed_all(a2o, aerr, &err));
    CHECK_STR(err, "Overloaded");
    free(err);

    /* Gemini has no end marker: every candidate begun needs its finishReason */
    const tg_translator_t *g2o = tg_translate_for(TG_WIRE_OPENAI, TG_PROVIDER_GEMINI);
    const char *part =
        "{\"candidates\":[{\"index\":0,\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}";
    const char *last = "{\"candidates\":[{\"index\":0,\"content\":{\"parts\":[{\"text\":\"b\"}]},"
                       "\"finishReason\":\"STOP\"}]}";
    const char *none[] = {NULL};
    CHECK(!feed_all(g2o, none, &err));
    const char *partial[] = {"message", part, NULL};
    CHECK(!feed_all(g2o, partial, &err));
    const char *whole[] = {"message", part, "message", last, NULL};
    CHECK(feed_all(g2o, whole, &err));
    /* ... also through the chain (Anthropic client, Gemini provider) */
    const tg_translator_t *a2g = tg_translate_for(TG_WIRE_ANTHROPIC, TG_PROVIDER_GEMINI);
    CHECK(!feed_all(a2g, partial, &err));
    CHECK(feed_all(a2g, whole, &err));
    const char *gerr[] = {"message", part, "message",
                          "{\"error\":{\"code\":500,\"message\":\"internal\",\"status\":"
                          "\"INTERNAL\"}}",
                          NULL};
    CHECK(feed_all(a2g, gerr, &err));
    CHECK_STR(err, "internal");
    free(err);
}
