/*
 * responses_stream.c — an OpenAI chat.completion.chunk stream, chunk by
 * chunk, as an OpenAI Responses event stream (the outer half of every
 * translated Responses stream: translate_chain.c feeds it the chunks of the
 * Anthropic -> Chat or Gemini -> Chat stream, or the mock's own):
 *
 *   first chunk        -> response.created, response.in_progress
 *   delta.content      -> a message item: output_item.added,
 *                         content_part.added, output_text.delta ...
 *   delta.tool_calls   -> a function_call item per call: output_item.added,
 *                         function_call_arguments.delta ...
 *   next item / finish -> the open item closed: output_text.done,
 *                         content_part.done (or function_call_arguments.done),
 *                         output_item.done
 *   usage chunk        -> usage noted
 *   [DONE] / finish    -> response.completed (response.incomplete when the
 *                         answer hit max tokens or a content filter), with
 *                         the whole output and usage
 *   {"error": ...}     -> response.failed; the stream ends
 *
 * Every event carries its sequence_number (base.seq). The terminal events
 * repeat the whole output, so the items' text and arguments are kept
 * (bounded by the stream itself: the relay's SSE parser caps each event).
 * Reasoning deltas are dropped (docs/dialects.md). One stream, one thread.
 */
#include "providers/translate_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ITEM_NONE, ITEM_TEXT, ITEM_CALL } item_t;

typedef struct {
    tg_translate_stream_t base;
    char *rid;     /* the response id ("resp_...") */
    bool started;  /* response.created sent */
    item_t open;   /* the open item */
    long tool;     /* chat index of the open or last tool call, -1 before any */
    tg_buf_t acc;  /* the open item's text or arguments */
    char *call_id; /* the open call's id and name */
    char *call_name;
    json_t *output; /* the items closed so far */
    char *finish;   /* the chat finish_reason */
} rstate_t;

static void init(tg_translate_stream_t *s)
{
    rstate_t *r = (rstate_t *)s;
    r->tool = -1;
    r->output = json_array();
}

/* Emit {"type": type, "sequence_number": n, ...doc} as `event: type`. */
static void ev(rstate_t *r, tg_buf_t *out, const char *type, json_t *doc)
{
    json_t *e = json_pack("{s:s,s:I}", "type", type, "sequence_number", (json_int_t)r->base.seq++);
    json_object_update(e, doc);
    json_decref(doc);
    tg_xlat_emit_named(out, type, e);
}

static json_t *response(rstate_t *r, json_t *output, const tg_usage_t *u)
{
    json_t *doc =
        tg_xlat_responses_object(r->rid, r->base.created, r->base.model, output, r->finish, u);
    if (!u)
        json_object_set_new(doc, "status", json_string("in_progress"));
    return doc;
}

static void start(rstate_t *r, tg_buf_t *out)
{
    if (r->started)
        return;
    r->started = true;
    if (!r->rid)
        r->rid = tg_xlat_responses_id(r->base.id);
    ev(r, out, "response.created", json_pack("{s:o}", "response", response(r, json_array(), NULL)));
    ev(r, out, "response.in_progress",
       json_pack("{s:o}", "response", response(r, json_array(), NULL)));
}

static long out_index(const rstate_t *r)
{
    return (long)json_array_size(r->output);
}

static const char *item_id(json_t *item)
{
    return tg_xj_str(item, "id");
}

static void close_item(rstate_t *r, tg_buf_t *out)
{
    if (r->open == ITEM_NONE)
        return;
    json_int_t oi = out_index(r);
    json_t *item;
    if (r->open == ITEM_TEXT) {
        item = tg_xlat_responses_text_item(r->rid, tg_xj_buf_string(&r->acc), "completed");
        json_t *part = json_array_get(json_object_get(item, "content"), 0);
        ev(r, out, "response.output_text.done",
           json_pack("{s:s,s:I,s:i,s:O,s:[]}", "item_id", item_id(item), "output_index", oi,
                     "content_index", 0, "text", json_object_get(part, "text"), "logprobs"));
        ev(r, out, "response.content_part.done",
           json_pack("{s:s,s:I,s:i,s:O}", "item_id", item_id(item), "output_index", oi,
                     "content_index", 0, "part", part));
    } else {
        item = tg_xlat_responses_call_item(r->call_id, r->call_name, tg_xj_buf_string(&r->acc),
                                           "completed");
        ev(r, out, "response.function_call_arguments.done",
           json_pack("{s:s,s:I,s:O,s:O}", "item_id", item_id(item), "output_index", oi, "name",
                     json_object_get(item, "name"), "arguments",
                     json_object_get(item, "arguments")));
    }
    ev(r, out, "response.output_item.done",
       json_pack("{s:I,s:O}", "output_index", oi, "item", item));
    json_array_append_new(r->output, item);
    r->open = ITEM_NONE;
    tg_buf_reset(&r->acc);
}

static void on_text(rstate_t *r, json_t *text, tg_buf_t *out)
{
    if (!json_is_string(text) || json_string_length(text) == 0)
        return;
    json_int_t oi = out_index(r);
    if (r->open != ITEM_TEXT) {
        close_item(r, out);
        oi = out_index(r);
        json_t *item = tg_xlat_responses_text_item(r->rid, json_string(""), "in_progress");
        json_t *part = json_incref(json_array_get(json_object_get(item, "content"), 0));
        json_object_set_new(item, "content", json_array());
        ev(r, out, "response.output_item.added",
           json_pack("{s:I,s:O}", "output_index", oi, "item", item));
        ev(r, out, "response.content_part.added",
           json_pack("{s:s,s:I,s:i,s:o}", "item_id", item_id(item), "output_index", oi,
                     "content_index", 0, "part", part));
        json_decref(item);
        r->open = ITEM_TEXT;
    }
    tg_buf_append(&r->acc, json_string_value(text), json_string_length(text));
    char id[160];
    snprintf(id, sizeof id, "msg_%.150s", r->rid + 5);
    ev(r, out, "response.output_text.delta",
       json_pack("{s:s,s:I,s:i,s:O,s:[]}", "item_id", id, "output_index", oi, "content_index", 0,
                 "delta", text, "logprobs"));
}

static void on_tool_call(rstate_t *r, json_t *call, tg_buf_t *out)
{
    long idx = tg_xlat_call_index(call, r->tool);
    const char *cid = tg_xj_str(call, "id");
    json_t *fn = json_object_get(call, "function");
    if (idx > r->tool) { /* a new call */
        close_item(r, out);
        r->tool = idx;
        char gen[96];
        if (!cid || !*cid || strlen(cid) > 120) {
            snprintf(gen, sizeof gen, "call_%ld_%ld", out_index(r), idx);
            cid = gen;
        }
        const char *name = tg_xj_str(fn, "name");
        free(r->call_id);
        free(r->call_name);
        r->call_id = tg_xstrdup(cid);
        r->call_name = tg_xstrdup(name ? name : "");
        json_t *item =
            tg_xlat_responses_call_item(r->call_id, r->call_name, json_string(""), "in_progress");
        ev(r, out, "response.output_item.added",
           json_pack("{s:I,s:o}", "output_index", (json_int_t)out_index(r), "item", item));
        r->open = ITEM_CALL;
    }
    json_t *args = json_object_get(fn, "arguments");
    if (idx != r->tool || r->open != ITEM_CALL || !json_is_string(args) ||
        json_string_length(args) == 0)
        return; /* a fragment of a call already closed: dropped */
    tg_buf_append(&r->acc, json_string_value(args), json_string_length(args));
    char id[160];
    snprintf(id, sizeof id, "fc_%.150s", r->call_id);
    ev(r, out, "response.function_call_arguments.delta",
       json_pack("{s:s,s:I,s:O}", "item_id", id, "output_index", (json_int_t)out_index(r), "delta",
                 args));
}

static void fail(rstate_t *r, json_t *doc, tg_buf_t *out)
{
    tg_xstream_note_error(&r->base, doc);
    json_t *e = json_object_get(doc, "error");
    const char *code = tg_xj_str(e, "code");
    if (!code)
        code = tg_xj_str(e, "type");
    bool known = r->base.usage.prompt_tokens >= 0 || r->base.usage.completion_tokens >= 0;
    json_t *resp = response(r, json_incref(r->output), known ? &r->base.usage : NULL);
    json_object_set_new(resp, "status", json_string("failed"));
    json_object_set_new(
        resp, "error",
        json_pack("{s:s,s:s}", "code", code ? code : "api_error", "message", r->base.error));
    ev(r, out, "response.failed", json_pack("{s:o}", "response", resp));
    r->base.done = true;
}

static void feed(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out)
{
    rstate_t *r = (rstate_t *)s;
    (void)event;
    if (!r->started) {
        tg_xstream_set_model(s, tg_xj_str(doc, "model"));
        const char *id = tg_xj_str(doc, "id");
        if (id && *id && strlen(id) < 200)
            r->rid = tg_xlat_responses_id(id);
    }
    start(r, out);
    if (json_object_get(doc, "error")) {
        fail(r, doc, out);
        return;
    }
    tg_openai_usage(json_object_get(doc, "usage"), &s->usage);
    json_t *choice = json_array_get(json_object_get(doc, "choices"), 0);
    json_t *d = json_object_get(choice, "delta");
    on_text(r, json_object_get(d, "content"), out);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d, "tool_calls"), i, c) on_tool_call(r, c, out);
    const char *fr = tg_xj_str(choice, "finish_reason");
    if (fr && *fr) { /* some servers send "" for "not yet" */
        free(r->finish);
        r->finish = tg_xstrdup(fr);
        close_item(r, out);
    }
}

static void finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    rstate_t *r = (rstate_t *)s;
    start(r, out);
    close_item(r, out);
    json_t *resp = response(r, json_incref(r->output), &s->usage);
    const char *type =
        tg_xj_is(resp, "status", "incomplete") ? "response.incomplete" : "response.completed";
    ev(r, out, type, json_pack("{s:o}", "response", resp));
    s->done = true;
}

static void destroy(tg_translate_stream_t *s)
{
    rstate_t *r = (rstate_t *)s;
    free(r->rid);
    free(r->call_id);
    free(r->call_name);
    free(r->finish);
    tg_buf_free(&r->acc);
    json_decref(r->output);
}

const tg_xstream_ops_t tg_xstream_chat_to_responses = {
    .size = sizeof(rstate_t),
    .init = init,
    .feed = feed,
    .finish = finish,
    .destroy = destroy,
};
