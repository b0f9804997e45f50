/*
 * openai_stream.c — an OpenAI chat.completion.chunk stream, chunk by chunk,
 * as an Anthropic Messages event stream (for Claude Code and the Anthropic
 * SDKs on OpenAI-type providers):
 *
 *   first chunk            -> message_start
 *   delta.reasoning_content-> a thinking block (thinking_delta)
 *   delta.content          -> a text block (text_delta)
 *   delta.tool_calls       -> a tool_use block per call (input_json_delta)
 *   finish_reason          -> the open block is closed, stop reason noted
 *   usage chunk            -> usage noted
 *   [DONE] / finish        -> message_delta (stop_reason, usage), message_stop
 *   {"error": ...}         -> an Anthropic `error` event; the stream ends
 *
 * Anthropic blocks cannot interleave, so a block is closed when the next
 * kind of content starts. OpenAI-type providers send each tool call's
 * fragments together, one call after another; a fragment for a call whose
 * block is already closed is dropped (docs/dialects.md). One stream, one
 * thread; the state is a few scalars.
 */
#include "providers/translate_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { BLOCK_NONE, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING } block_t;

typedef struct {
    tg_translate_stream_t base;
    bool started;     /* message_start sent */
    block_t block;    /* the open block */
    long n_blocks;    /* blocks opened so far: the next block's index */
    long tool;        /* OpenAI index of the open or last tool call, -1 before any */
    const char *stop; /* static; from finish_reason */
} ostate_t;

static void init(tg_translate_stream_t *s)
{
    ((ostate_t *)s)->tool = -1;
}

/* Emit event `type`: {"type": type, ...doc} (decrefs doc). */
static void ev(tg_buf_t *out, const char *type, json_t *doc)
{
    json_t *e = json_pack("{s:s}", "type", type);
    json_object_update(e, doc);
    json_decref(doc);
    tg_xlat_emit_named(out, type, e);
}

static void start(ostate_t *o, tg_buf_t *out)
{
    if (o->started)
        return;
    o->started = true;
    /* Usage comes last from OpenAI-type providers: until then the input is
     * the request's estimate (clients such as LangChain's ChatAnthropic read
     * input tokens from message_start only). */
    tg_usage_t u = o->base.usage;
    if (u.prompt_tokens < 0 && o->base.prompt_estimate > 0)
        u.prompt_tokens = o->base.prompt_estimate;
    json_t *msg =
        json_pack("{s:s,s:s,s:s,s:[],s:s,s:n,s:n,s:o}", "id", o->base.id, "type", "message", "role",
                  "assistant", "content", "model", o->base.model, "stop_reason", "stop_sequence",
                  "usage", tg_xlat_anthropic_usage_json(&u));
    ev(out, "message_start", json_pack("{s:o}", "message", msg));
}

static void close_block(ostate_t *o, tg_buf_t *out)
{
    if (o->block == BLOCK_NONE)
        return;
    ev(out, "content_block_stop", json_pack("{s:I}", "index", (json_int_t)(o->n_blocks - 1)));
    o->block = BLOCK_NONE;
}

static void open_block(ostate_t *o, block_t kind, json_t *cb, tg_buf_t *out)
{
    close_block(o, out);
    ev(out, "content_block_start",
       json_pack("{s:I,s:o}", "index", (json_int_t)o->n_blocks, "content_block", cb));
    o->n_blocks++;
    o->block = kind;
}

static void delta(ostate_t *o, json_t *d, tg_buf_t *out)
{
    ev(out, "content_block_delta",
       json_pack("{s:I,s:o}", "index", (json_int_t)(o->n_blocks - 1), "delta", d));
}

static void on_text(ostate_t *o, block_t kind, json_t *text, tg_buf_t *out)
{
    if (!json_is_string(text) || json_string_length(text) == 0)
        return;
    bool thinking = kind == BLOCK_THINKING;
    if (o->block != kind)
        open_block(o, kind,
                   thinking ? json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "",
                                        "signature", "")
                            : json_pack("{s:s,s:s}", "type", "text", "text", ""),
                   out);
    delta(o,
          json_pack("{s:s,s:O}", "type", thinking ? "thinking_delta" : "text_delta",
                    thinking ? "thinking" : "text", text),
          out);
}

static void on_tool_call(ostate_t *o, json_t *call, tg_buf_t *out)
{
    long idx = tg_xlat_call_index(call, o->tool);
    const char *cid = tg_xj_str(call, "id");
    json_t *fn = json_object_get(call, "function");
    if (idx > o->tool) { /* a new call */
        char id[96];
        if (!cid || !*cid || strlen(cid) >= sizeof id)
            snprintf(id, sizeof id, "toolu_%ld_%ld", (long)o->n_blocks, idx);
        const char *name = tg_xj_str(fn, "name");
        o->tool = idx;
        open_block(o, BLOCK_TOOL,
                   json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id",
                             cid && *cid && strlen(cid) < sizeof id ? cid : id, "name",
                             name ? name : "", "input"),
                   out);
    }
    json_t *args = json_object_get(fn, "arguments");
    if (idx != o->tool || o->block != BLOCK_TOOL || !json_is_string(args) ||
        json_string_length(args) == 0)
        return;
    delta(o, json_pack("{s:s,s:O}", "type", "input_json_delta", "partial_json", args), out);
}

static void on_choice(ostate_t *o, json_t *choice, tg_buf_t *out)
{
    json_t *d = json_object_get(choice, "delta");
    json_t *r = json_object_get(d, "reasoning_content");
    if (!json_is_string(r))
        r = json_object_get(d, "reasoning"); /* OpenRouter, Groq */
    on_text(o, BLOCK_THINKING, r, out);
    on_text(o, BLOCK_TEXT, json_object_get(d, "content"), out);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d, "tool_calls"), i, c) on_tool_call(o, c, out);
    const char *fr = tg_xj_str(choice, "finish_reason");
    if (fr && *fr) { /* some servers send "" for "not yet" */
        o->stop = tg_xlat_stop_from_openai(fr);
        close_block(o, out);
    }
}

static void feed(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out)
{
    ostate_t *o = (ostate_t *)s;
    (void)event;
    json_t *err = json_object_get(doc, "error");
    if (err) {
        json_t *m = json_object_get(err, "message");
        m = json_is_string(m) ? json_incref(m)
                              : json_string("the provider reported an error mid-stream");
        ev(out, "error", json_pack("{s:{s:s,s:o}}", "error", "type", "api_error", "message", m));
        tg_xstream_note_error(s, doc);
        s->done = true;
        return;
    }
    tg_openai_usage(json_object_get(doc, "usage"), &s->usage);
    if (!o->started) {
        tg_xstream_set_model(s, tg_xj_str(doc, "model"));
        const char *id = tg_xj_str(doc, "id");
        if (id && *id) {
            free(s->id);
            s->id = tg_xstrdup(id);
        }
    }
    start(o, out);
    json_t *choice = json_array_get(json_object_get(doc, "choices"), 0);
    if (choice)
        on_choice(o, choice, out);
}

static void finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    ostate_t *o = (ostate_t *)s;
    start(o, out);
    close_block(o, out);
    json_t *md =
        json_pack("{s:{s:s,s:n},s:o}", "delta", "stop_reason", o->stop ? o->stop : "end_turn",
                  "stop_sequence", "usage", tg_xlat_anthropic_usage_json(&s->usage));
    ev(out, "message_delta", md);
    ev(out, "message_stop", json_object());
    s->done = true;
}

const tg_xstream_ops_t tg_xstream_openai_to_anthropic = {
    .size = sizeof(ostate_t),
    .init = init,
    .feed = feed,
    .finish = finish,
    .destroy = NULL,
};
