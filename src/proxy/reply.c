/*
 * reply.c — the one writer of gateway-made error replies, per dialect
 * (reply.h). Every error the proxy writes itself (the pipeline's stages and
 * attempts, routing, /api/v1) comes through here, so the three shapes are
 * spelled once and every message is escaped by the same UTF-8-safe writer.
 * Pure; the caller's thread (a worker).
 */
#include "proxy/reply.h"

#include <string.h>

static void put_string(tg_buf_t *out, const char *s)
{
    tg_buf_puts(out, "\"");
    tg_buf_json_escape(out, s, strlen(s));
    tg_buf_puts(out, "\"");
}

void tg_reply_error_body(tg_buf_t *out, tg_wire_t wire, int status, const char *code,
                         const char *message)
{
    tg_reply_error_with(out, wire, status, NULL, code, message, NULL);
}

void tg_reply_error_with(tg_buf_t *out, tg_wire_t wire, int status, const char *type,
                         const char *code, const char *message, const char *extra)
{
    if (!type)
        type = tg_translate_error_type(wire, status);
    switch (wire) {
    case TG_WIRE_ANTHROPIC:
        tg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":");
        put_string(out, type);
        tg_buf_puts(out, ",\"message\":");
        put_string(out, message);
        break;
    case TG_WIRE_GEMINI:
        tg_buf_printf(out, "{\"error\":{\"code\":%d,\"message\":", status);
        put_string(out, message);
        tg_buf_printf(out, ",\"status\":\"%s\"", tg_gemini_status_name(status));
        break;
    case TG_WIRE_OPENAI:
    case TG_WIRE_RESPONSES:
    default:
        tg_buf_openai_error(out, message, type, code);
        out->len -= 2; /* its closing "}}", written below after `extra` */
        out->data[out->len] = 0;
        break;
    }
    if (extra && *extra)
        tg_buf_printf(out, ",%s", extra);
    tg_buf_puts(out, "}}");
}

void tg_reply_error(tg_http_t *h, tg_wire_t wire, int status, const char *code, const char *message)
{
    tg_buf_t b = {0};
    tg_reply_error_body(&b, wire, status, code, message);
    tg_http_reply(h, status, "application/json", b.data, b.len);
    tg_buf_free(&b);
}

tg_wire_t tg_reply_wire_of_path(const char *path)
{
    if (!strncmp(path, "/v1/messages", 12) || !strncmp(path, "/v1/v1/messages", 15) ||
        !strncmp(path, "/messages", 9))
        return TG_WIRE_ANTHROPIC;
    return !strncmp(path, "/v1beta/", 8) ? TG_WIRE_GEMINI : TG_WIRE_OPENAI;
}
