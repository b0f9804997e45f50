/*
 * dialect_errors.c — error bodies in the client's dialect. A provider's
 * error (OpenAI, Anthropic or Gemini shape, or a bare text/HTML page) is
 * read for its message, type and code and written again as the client's
 * SDK expects it; the HTTP status is the caller's and is kept. Pure; any
 * thread.
 */
#include "providers/translate_util.h"

#include "core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest provider text quoted into a message. */
#define MAX_QUOTED 1024

typedef struct {
    json_t *message; /* string */
    const char *type;
    json_t *code; /* string or NULL */
} err_fields_t;

static const char *const anthropic_types[] = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "billing_error",
    "timeout_error",
    NULL,
};

const char *tg_translate_error_type(tg_wire_t client, int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return client == TG_WIRE_ANTHROPIC ? "request_too_large" : "invalid_request_error";
    case 429: return "rate_limit_error";
    case 529: return client == TG_WIRE_ANTHROPIC ? "overloaded_error" : "api_error";
    default: return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

/* Google's canonical status names, as the Gemini API's error.status. */
const char *tg_gemini_status_name(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 405: return "UNIMPLEMENTED";
    case 409: return "ALREADY_EXISTS";
    case 413: return "INVALID_ARGUMENT";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return status >= 400 && status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
    }
}

static bool is_anthropic_type(const char *t)
{
    for (const char *const *p = anthropic_types; t && *p; p++)
        if (!strcmp(*p, t))
            return true;
    return false;
}

/* A JSON string of raw provider bytes: at most MAX_QUOTED, cut at a UTF-8
 * boundary; control characters become spaces, and when the rest is not
 * valid UTF-8, every byte outside printable ASCII becomes '?'. */
static json_t *quote_bytes(const char *s, size_t len)
{
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
        len--;
    if (len > MAX_QUOTED) {
        len = MAX_QUOTED;
        while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char buf[MAX_QUOTED + 1] = "";
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    json_t *j = json_stringn(buf, len);
    if (j)
        return j;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] >= 0x7f)
            buf[i] = '?';
    return json_stringn(buf, len);
}

/* Message, type and code of an error document, whatever its shape. */
static void read_fields(json_t *doc, err_fields_t *f)
{
    json_t *e = json_object_get(doc, "error");
    json_t *holder = json_is_object(e) ? e : doc;
    json_t *m = json_object_get(holder, "message");
    if (json_is_string(e))
        m = e; /* {"error":"text"} */
    if (!json_is_string(m))
        m = json_object_get(doc, "detail"); /* FastAPI-style servers */
    if (json_is_string(m) && json_string_length(m))
        f->message = json_incref(m);
    f->type = tg_xj_str(holder, "type");
    if (f->type && !strcmp(f->type, "error"))
        f->type = NULL; /* Anthropic's outer "type" */
    json_t *code = json_object_get(holder, "code");
    if (!json_is_string(code))
        code = json_object_get(holder, "status"); /* Gemini: "INVALID_ARGUMENT" */
    if (json_is_string(code))
        f->code = code;
}

static void write_error(tg_wire_t client, int status, err_fields_t *f, tg_buf_t *out)
{
    const char *type = f->type;
    /* The Anthropic SDKs expect the type their status implies (OpenAI calls
     * a bad key an invalid_request_error); other types are kept when
     * Anthropic knows them. */
    bool specific = status == 401 || status == 403 || status == 404 || status == 413 ||
                    status == 429 || status == 529;
    if (!type || (client == TG_WIRE_ANTHROPIC && (specific || !is_anthropic_type(type))))
        type = tg_translate_error_type(client, status);
    json_t *doc;
    if (client == TG_WIRE_GEMINI) {
        doc = json_pack("{s:{s:i,s:O,s:s}}", "error", "code", status, "message", f->message,
                        "status", tg_gemini_status_name(status));
    } else if (client == TG_WIRE_ANTHROPIC) {
        doc = json_pack("{s:s,s:{s:s,s:O}}", "type", "error", "error", "type", type, "message",
                        f->message);
    } else {
        doc = json_pack("{s:{s:O,s:s,s:O}}", "error", "message", f->message, "type", type, "code",
                        f->code ? f->code : json_null());
    }
    tg_xj_dump(out, doc);
}

void tg_translate_error(tg_wire_t client, int status, const char *body, size_t len, tg_buf_t *out)
{
    err_fields_t f = {0};
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    if (json_is_object(doc))
        read_fields(doc, &f);
    if (!f.message && body && len && !json_is_object(doc))
        f.message = quote_bytes(body, len);
    if (!f.message) {
        char msg[64];
        snprintf(msg, sizeof msg, "the provider answered with status %d", status);
        f.message = json_string(msg);
    }
    write_error(client, status, &f, out);
    json_decref(f.message);
    json_decref(doc);
}

void tg_translate_error_json(tg_wire_t client, int status, const char *message, tg_buf_t *out)
{
    err_fields_t f = {0};
    f.message = quote_bytes(message, strlen(message));
    write_error(client, status, &f, out);
    json_decref(f.message);
}

/* At most TG_ERROR_MESSAGE_MAX bytes of a valid UTF-8 string, cut on a
 * character boundary, control characters (NUL included) as spaces. */
static char *bounded_message(json_t *m)
{
    const char *s = json_string_value(m);
    size_t len = json_string_length(m);
    if (len > TG_ERROR_MESSAGE_MAX) {
        len = TG_ERROR_MESSAGE_MAX;
        while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char *out = tg_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    out[len] = 0;
    return out;
}

static char *doc_message(json_t *doc)
{
    err_fields_t f = {0};
    if (json_is_object(doc))
        read_fields(doc, &f);
    char *m = f.message ? bounded_message(f.message) : NULL;
    json_decref(f.message);
    return m;
}

char *tg_translate_error_message(const char *body, size_t len)
{
    json_t *doc = body && len ? json_loadb(body, len, JSON_ALLOW_NUL, NULL) : NULL;
    char *m = doc_message(doc);
    json_decref(doc);
    return m;
}

void tg_translate_responses_failed(long seq, const char *id, int status, const char *code,
                                   const char *message, tg_buf_t *out)
{
    json_t *m = quote_bytes(message, strlen(message));
    json_t *c = json_string(code ? code : tg_translate_error_type(TG_WIRE_RESPONSES, status));
    json_t *jid = json_string(id && *id ? id : "resp_tollgate");
    json_t *doc =
        json_pack("{s:s,s:I,s:{s:o,s:s,s:s,s:{s:o,s:o},s:n,s:[],s:n}}", "type", "response.failed",
                  "sequence_number", (json_int_t)(seq < 0 ? 0 : seq), "response", "id",
                  jid ? jid : json_string("resp_tollgate"), "object", "response", "status",
                  "failed", "error", "code", c ? c : json_string("api_error"), "message", m,
                  "incomplete_details", "output", "usage");
    char *s = json_dumps(doc, TG_TRANSLATE_DUMP_FLAGS);
    if (s)
        tg_sse_write(out, "response.failed", s, strlen(s));
    free(s);
    json_decref(doc);
}

void tg_translate_error_event(tg_wire_t client, int status, const char *code, const char *message,
                              tg_buf_t *out)
{
    if (client == TG_WIRE_RESPONSES) { /* the Responses SDKs read the failed response */
        tg_translate_responses_failed(0, NULL, status, code, message, out);
        return;
    }
    err_fields_t f = {.code = code ? json_string(code) : NULL};
    f.message = quote_bytes(message, strlen(message));
    tg_buf_t b = {0};
    write_error(client, status, &f, &b);
    /* Anthropic's SDKs raise on an event named `error`; OpenAI's on a data
     * line holding {"error": ...}; @google/genai on {"error": {"code": 4xx/5xx}}. */
    tg_sse_write(out, client == TG_WIRE_ANTHROPIC ? "error" : NULL, b.data, b.len);
    tg_buf_free(&b);
    json_decref(f.code);
    json_decref(f.message);
}

void tg_xstream_note_error(tg_translate_stream_t *s, json_t *doc)
{
    if (s->error)
        return;
    s->error = doc_message(doc);
    if (!s->error)
        s->error = tg_xstrdup("the provider reported an error mid-stream");
}

void tg_xlat_openai_stream_error(tg_translate_stream_t *s, tg_buf_t *out, json_t *doc)
{
    err_fields_t f = {0};
    read_fields(doc, &f);
    if (!f.message)
        f.message = json_string("the provider reported an error mid-stream");
    tg_buf_t b = {0};
    write_error(TG_WIRE_OPENAI, 500, &f, &b);
    if (b.len)
        tg_sse_write(out, NULL, b.data, b.len);
    tg_buf_free(&b);
    json_decref(f.message);
    tg_xstream_note_error(s, doc);
    s->done = true;
}
