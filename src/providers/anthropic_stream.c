/*
 * anthropic_stream.c — an Anthropic Messages event stream, event by event,
 * as an OpenAI chat.completion.chunk stream:
 *
 *   message_start          -> first chunk (role), usage and model noted
 *   content_block_start    -> tool_use: a tool_calls chunk with id and name
 *   content_block_delta    -> text_delta: content; input_json_delta: tool
 *                             arguments; thinking_delta: reasoning_content
 *   message_delta          -> the finish_reason chunk; usage noted
 *   message_stop           -> usage chunk (when asked) and [DONE]
 *   error                  -> an OpenAI error event; the stream ends
 *
 * The state is a few scalars: text and arguments pass through as they come.
 * One stream, one thread.
 */
#include "providers/translate_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum { BLOCK_NONE, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING, BLOCK_OTHER } block_t;

typedef struct {
    tg_translate_stream_t base;
    bool started;       /* the role chunk went out */
    block_t block;      /* the open content block */
    long tool_index;    /* OpenAI index of the last tool call, -1 before the first */
    const char *finish; /* static; set by message_delta */
    bool finish_sent;
} astate_t;

static void init(tg_translate_stream_t *s)
{
    ((astate_t *)s)->tool_index = -1;
}

static void start(astate_t *a, tg_buf_t *out)
{
    if (a->started)
        return;
    a->started = true;
    json_t *delta = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
    tg_xlat_emit(out, tg_xlat_chunk_choice(&a->base, 0, delta, NULL));
}

static void emit_delta(astate_t *a, json_t *delta, tg_buf_t *out)
{
    start(a, out);
    tg_xlat_emit(out, tg_xlat_chunk_choice(&a->base, 0, delta, NULL));
}

static void emit_text(astate_t *a, const char *key, json_t *text, tg_buf_t *out)
{
    if (!json_is_string(text) || json_string_length(text) == 0)
        return;
    emit_delta(a, json_pack("{s:O}", key, text), out);
}

static void on_message_start(astate_t *a, json_t *doc, tg_buf_t *out)
{
    json_t *msg = json_object_get(doc, "message");
    tg_anthropic_usage(json_object_get(msg, "usage"), &a->base.usage);
    tg_xstream_set_model(&a->base, tg_xj_str(msg, "model"));
    const char *id = tg_xj_str(msg, "id");
    if (id && *id && !a->started) {
        free(a->base.id);
        a->base.id = tg_xstrdup(id);
    }
    start(a, out);
}

static void on_block_start(astate_t *a, json_t *doc, tg_buf_t *out)
{
    json_t *cb = json_object_get(doc, "content_block");
    const char *type = tg_xj_str(cb, "type");
    a->block = BLOCK_OTHER;
    if (!type)
        return;
    if (!strcmp(type, "text")) {
        a->block = BLOCK_TEXT;
        emit_text(a, "content", json_object_get(cb, "text"), out);
    } else if (!strcmp(type, "thinking")) {
        a->block = BLOCK_THINKING;
        emit_text(a, "reasoning_content", json_object_get(cb, "thinking"), out);
    } else if (!strcmp(type, "tool_use") && tg_xj_str(cb, "id") && tg_xj_str(cb, "name")) {
        a->block = BLOCK_TOOL;
        a->tool_index++;
        json_t *call = json_pack("{s:I,s:O,s:s,s:{s:O,s:s}}", "index", (json_int_t)a->tool_index,
                                 "id", json_object_get(cb, "id"), "type", "function", "function",
                                 "name", json_object_get(cb, "name"), "arguments", "");
        emit_delta(a, json_pack("{s:[o]}", "tool_calls", call), out);
    }
}

static void on_block_delta(astate_t *a, json_t *doc, tg_buf_t *out)
{
    json_t *d = json_object_get(doc, "delta");
    const char *type = tg_xj_str(d, "type");
    if (!type)
        return;
    if (!strcmp(type, "text_delta") && a->block == BLOCK_TEXT) {
        emit_text(a, "content", json_object_get(d, "text"), out);
    } else if (!strcmp(type, "thinking_delta") && a->block == BLOCK_THINKING) {
        emit_text(a, "reasoning_content", json_object_get(d, "thinking"), out);
    } else if (!strcmp(type, "input_json_delta") && a->block == BLOCK_TOOL) {
        json_t *pj = json_object_get(d, "partial_json");
        if (!json_is_string(pj) || json_string_length(pj) == 0)
            return;
        json_t *call = json_pack("{s:I,s:{s:O}}", "index", (json_int_t)a->tool_index, "function",
                                 "arguments", pj);
        emit_delta(a, json_pack("{s:[o]}", "tool_calls", call), out);
    }
}

static void send_finish(astate_t *a, tg_buf_t *out)
{
    if (a->finish_sent)
        return;
    a->finish_sent = true;
    start(a, out);
    const char *fr = a->finish ? a->finish : "stop";
    tg_xlat_emit(out, tg_xlat_chunk_choice(&a->base, 0, json_object(), fr));
}

static void feed(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out)
{
    astate_t *a = (astate_t *)s;
    const char *type = tg_xj_str(doc, "type");
    (void)event; /* the data names its type too, and is what the SDKs read */
    if (!type)
        return;
    if (!strcmp(type, "message_start")) {
        on_message_start(a, doc, out);
    } else if (!strcmp(type, "content_block_start")) {
        on_block_start(a, doc, out);
    } else if (!strcmp(type, "content_block_delta")) {
        on_block_delta(a, doc, out);
    } else if (!strcmp(type, "content_block_stop")) {
        a->block = BLOCK_NONE;
    } else if (!strcmp(type, "message_delta")) {
        tg_anthropic_usage(json_object_get(doc, "usage"), &s->usage);
        const char *sr = tg_xj_str(json_object_get(doc, "delta"), "stop_reason");
        if (sr)
            a->finish = tg_xlat_finish_from_anthropic(sr);
        send_finish(a, out);
    } else if (!strcmp(type, "message_stop")) {
        tg_translate_stream_finish(s, out);
    } else if (!strcmp(type, "error")) {
        tg_xlat_openai_stream_error(s, out, doc);
    }
}

static void finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    send_finish((astate_t *)s, out);
    tg_xlat_openai_tail(s, out);
}

const tg_xstream_ops_t tg_xstream_anthropic_to_openai = {
    .size = sizeof(astate_t),
    .init = init,
    .feed = feed,
    .finish = finish,
    .destroy = NULL,
};
