/*
 * test_reply.c — the one writer of gateway-made error replies (proxy/reply.c):
 * each dialect's shape, code as a string or null, messages escaped.
 */
#include "proxy/reply.h"
#include "test.h"

#include <jansson.h>

static json_t *body_of(tg_wire_t wire, int status, const char *code, const char *message)
{
    tg_buf_t b = {0};
    tg_reply_error_body(&b, wire, status, code, message);
    json_t *doc = json_loadb(b.data, b.len, 0, NULL);
    tg_buf_free(&b);
    return doc;
}

TEST(reply_error_shapes)
{
    json_t *d = body_of(TG_WIRE_OPENAI, 404, "model_not_found", "no \"such\" model\n");
    CHECK(d != NULL);
    json_t *e = json_object_get(d, "error");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "no \"such\" model\n");
    CHECK_STR(json_string_value(json_object_get(e, "type")), "not_found_error");
    CHECK_STR(json_string_value(json_object_get(e, "code")), "model_not_found");
    json_decref(d);

    d = body_of(TG_WIRE_OPENAI, 500, NULL, "x");
    CHECK(json_is_null(json_object_get(json_object_get(d, "error"), "code")));
    json_decref(d);

    d = body_of(TG_WIRE_ANTHROPIC, 429, "rate_limit_exceeded", "slow down");
    CHECK_STR(json_string_value(json_object_get(d, "type")), "error");
    e = json_object_get(d, "error");
    CHECK_STR(json_string_value(json_object_get(e, "type")), "rate_limit_error");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "slow down");
    CHECK(json_object_get(e, "code") == NULL);
    json_decref(d);

    d = body_of(TG_WIRE_GEMINI, 400, "invalid_json", "bad");
    e = json_object_get(d, "error");
    CHECK_INT(json_integer_value(json_object_get(e, "code")), 400);
    CHECK_STR(json_string_value(json_object_get(e, "status")), "INVALID_ARGUMENT");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "bad");
    json_decref(d);
}

TEST(reply_error_bytes_stay_valid_json)
{
    static const tg_wire_t wires[] = {TG_WIRE_OPENAI, TG_WIRE_ANTHROPIC, TG_WIRE_GEMINI};
    for (size_t i = 0; i < 3; i++) {
        json_t *d = body_of(wires[i], 400, "c", "bad \xff byte \x01 and \xe2\x82");
        CHECK(d != NULL);
        json_decref(d);
    }
}

TEST(reply_wire_of_path)
{
    CHECK_INT(tg_reply_wire_of_path("/v1/messages"), TG_WIRE_ANTHROPIC);
    CHECK_INT(tg_reply_wire_of_path("/v1/messages/count_tokens"), TG_WIRE_ANTHROPIC);
    CHECK_INT(tg_reply_wire_of_path("/v1beta/models/x:generateContent"), TG_WIRE_GEMINI);
    CHECK_INT(tg_reply_wire_of_path("/v1/chat/completions"), TG_WIRE_OPENAI);
}
