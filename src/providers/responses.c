/*
 * responses.c — the OpenAI Responses dialect (POST /v1/responses) beside
 * Chat Completions: a Responses request becomes a Chat Completions request,
 * a chat.completion becomes a Responses `response`, and the usage of native
 * Responses answers and events is read for the record. Every Responses
 * translation goes through Chat Completions (translate_chain.c composes
 * this with the Chat -> Anthropic and Chat -> Gemini directions); the
 * stream half is responses_stream.c. docs/dialects.md has the mapping and
 * what is dropped. Pure; any thread.
 */
#include "providers/provider.h"

#include "core/jsonscan.h"
#include "providers/translate_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- usage ---- */

bool tg_responses_usage(json_t *u, tg_usage_t *usage)
{
    if (!json_is_object(u))
        return false;
    long p = tg_xj_count(u, "input_tokens"), c = tg_xj_count(u, "output_tokens");
    if (p >= 0)
        usage->prompt_tokens = p;
    if (c >= 0)
        usage->completion_tokens = c;
    long cached = tg_xj_count(json_object_get(u, "input_tokens_details"), "cached_tokens");
    if (cached >= 0)
        usage->cached_tokens = cached;
    long r = tg_xj_count(json_object_get(u, "output_tokens_details"), "reasoning_tokens");
    if (r >= 0)
        usage->reasoning_tokens = r;
    return true;
}

/* The "usage" of a native answer, or of the `response` a stream's terminal
 * event carries (response.completed, .incomplete, .failed). Only events that
 * name a usage are parsed: deltas pass without building a tree. */
static bool responses_event_usage(const char *data, size_t len, tg_usage_t *usage)
{
    size_t a, b;
    if (!memmem(data, len, "\"usage\"", 7))
        return false;
    if (tg_json_member(data, len, "response", &a, &b) && data[a] == '{') {
        data += a;
        len = b - a;
    }
    if (!tg_json_member(data, len, "usage", &a, &b) || data[a] != '{')
        return false;
    json_t *u = json_loadb(data + a, b - a, 0, NULL);
    bool ok = tg_responses_usage(u, usage);
    json_decref(u);
    return ok;
}

static void responses_answer_usage(const char *doc, size_t len, tg_usage_t *usage)
{
    responses_event_usage(doc, len, usage);
}

const tg_dialect_t tg_dialect_responses = {
    .name = "responses",
    .answer_usage = responses_answer_usage,
    .event_usage = responses_event_usage,
};

json_t *tg_xlat_responses_usage_json(const tg_usage_t *u)
{
    long in = u->prompt_tokens < 0 ? 0 : u->prompt_tokens;
    long out = u->completion_tokens < 0 ? 0 : u->completion_tokens;
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)in,
                     "input_tokens_details", "cached_tokens",
                     (json_int_t)(u->cached_tokens < 0 ? 0 : u->cached_tokens), "output_tokens",
                     (json_int_t)out, "output_tokens_details", "reasoning_tokens",
                     (json_int_t)(u->reasoning_tokens < 0 ? 0 : u->reasoning_tokens),
                     "total_tokens", (json_int_t)(in + out));
}

/* ---- request: Responses -> Chat Completions ---- */

typedef struct {
    char *err;
    size_t errlen;
} rctx_t;

/* One content part of a message item as a Chat Completions part. */
static json_t *part_to_chat(json_t *p, rctx_t *e)
{
    const char *type = tg_xj_str(p, "type");
    if (!type) {
        tg_xerr(e->err, e->errlen, "a content part has no type");
        return NULL;
    }
    if (!strcmp(type, "input_text") || !strcmp(type, "output_text") || !strcmp(type, "text") ||
        !strcmp(type, "refusal")) {
        json_t *t = json_object_get(p, !strcmp(type, "refusal") ? "refusal" : "text");
        if (!json_is_string(t)) {
            tg_xerr(e->err, e->errlen, "a %s part needs a string text", type);
            return NULL;
        }
        return json_pack("{s:s,s:O}", "type", "text", "text", t);
    }
    if (!strcmp(type, "input_image")) {
        json_t *url = json_object_get(p, "image_url");
        if (!json_is_string(url)) {
            tg_xerr(e->err, e->errlen,
                    "an input_image needs an image_url (a file_id names a file this "
                    "provider cannot read)");
            return NULL;
        }
        json_t *img = json_pack("{s:O}", "url", url);
        const char *detail = tg_xj_str(p, "detail");
        if (detail && strcmp(detail, "auto"))
            json_object_set_new(img, "detail", json_string(detail));
        return json_pack("{s:s,s:o}", "type", "image_url", "image_url", img);
    }
    tg_xerr(e->err, e->errlen, "content part type '%.40s' cannot be translated for this provider",
            type);
    return NULL;
}

/* A message's content (string or parts) as Chat Completions content. */
static json_t *content_to_chat(json_t *content, bool text_only, rctx_t *e)
{
    if (json_is_string(content))
        return json_incref(content);
    if (!json_is_array(content)) {
        tg_xerr(e->err, e->errlen, "a message's content must be a string or a list of parts");
        return NULL;
    }
    json_t *parts = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        json_t *c = part_to_chat(p, e);
        if (!c) {
            json_decref(parts);
            return NULL;
        }
        json_array_append_new(parts, c);
    }
    if (!text_only)
        return parts;
    tg_buf_t b = {0}; /* assistant turns: their text, as one string */
    tg_xj_content_text(parts, &b);
    json_t *s = tg_xj_buf_string(&b);
    tg_buf_free(&b);
    json_decref(parts);
    return s;
}

static int message_item(json_t *item, json_t *msgs, rctx_t *e)
{
    const char *role = tg_xj_str(item, "role");
    if (!role || (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") &&
                  strcmp(role, "developer")))
        return tg_xerr(e->err, e->errlen,
                       "a message item's role must be user, assistant, system or developer");
    json_t *c = content_to_chat(json_object_get(item, "content"), !strcmp(role, "assistant"), e);
    if (!c)
        return -1;
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", c));
    return 0;
}

/* A function_call item: a tool call of the assistant turn it follows, or of
 * a new one. */
static int function_call_item(json_t *item, json_t *msgs, rctx_t *e)
{
    json_t *id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    json_t *args = json_object_get(item, "arguments");
    if (!json_is_string(id) || !json_is_string(name))
        return tg_xerr(e->err, e->errlen, "a function_call item needs a call_id and a name");
    json_t *call =
        json_pack("{s:O,s:s,s:{s:O,s:o}}", "id", id, "type", "function", "function", "name", name,
                  "arguments", json_is_string(args) ? json_incref(args) : json_string("{}"));
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (!tg_xj_is(last, "role", "assistant")) {
        last = json_pack("{s:s,s:n,s:[]}", "role", "assistant", "content", "tool_calls");
        json_array_append_new(msgs, last);
    } else if (!json_is_array(json_object_get(last, "tool_calls"))) {
        json_object_set_new(last, "tool_calls", json_array());
    }
    json_array_append_new(json_object_get(last, "tool_calls"), call);
    return 0;
}

static int function_output_item(json_t *item, json_t *msgs, rctx_t *e)
{
    json_t *id = json_object_get(item, "call_id");
    if (!json_is_string(id))
        return tg_xerr(e->err, e->errlen, "a function_call_output item needs a call_id");
    json_t *out = json_object_get(item, "output");
    json_t *c = json_is_string(out) ? json_incref(out) : content_to_chat(out, false, e);
    if (!c)
        return -1;
    json_array_append_new(
        msgs, json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content", c));
    return 0;
}

static int input_to_messages(json_t *req, json_t *chat, rctx_t *e)
{
    json_t *msgs = json_array();
    json_object_set_new(chat, "messages", msgs);
    json_t *ins = json_object_get(req, "instructions");
    if (json_is_string(ins) && json_string_length(ins))
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "system", "content", ins));
    else if (ins && !json_is_null(ins) && !json_is_string(ins))
        return tg_xerr(e->err, e->errlen, "'instructions' must be a string");
    json_t *input = json_object_get(req, "input");
    if (json_is_string(input)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", input));
        return 0;
    }
    if (!json_is_array(input))
        return tg_xerr(e->err, e->errlen, "'input' must be a string or a list of items");
    size_t i;
    json_t *item;
    json_array_foreach(input, i, item)
    {
        const char *type = tg_xj_str(item, "type");
        int rc;
        if (!json_is_object(item))
            rc = tg_xerr(e->err, e->errlen, "input item %zu is not an object", i);
        else if (!type || !strcmp(type, "message"))
            rc = message_item(item, msgs, e);
        else if (!strcmp(type, "function_call"))
            rc = function_call_item(item, msgs, e);
        else if (!strcmp(type, "function_call_output"))
            rc = function_output_item(item, msgs, e);
        else if (!strcmp(type, "reasoning") || !strcmp(type, "item_reference"))
            rc = 0; /* OpenAI's own reasoning, or an item OpenAI stored (the Vercel AI SDK
                       refers to earlier assistant text so): nothing another provider can
                       read; dropped */
        else
            rc = tg_xerr(e->err, e->errlen, "input item type '%.40s' cannot be translated", type);
        if (rc < 0)
            return -1;
    }
    if (json_array_size(msgs) == 0)
        return tg_xerr(e->err, e->errlen, "'input' is empty");
    return 0;
}

static int tools_to_chat(json_t *req, json_t *chat, rctx_t *e)
{
    json_t *tools = json_object_get(req, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return 0;
    json_t *out = json_array();
    json_object_set_new(chat, "tools", out);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *name = json_object_get(t, "name");
        if (!tg_xj_is(t, "type", "function") || !json_is_string(name))
            return tg_xerr(e->err, e->errlen,
                           "only function tools with a name can be translated for this provider "
                           "(built-in tools such as web_search are OpenAI's own)");
        json_t *fn = json_pack("{s:O}", "name", name);
        tg_xj_copy(fn, "description", t, "description");
        tg_xj_copy(fn, "parameters", t, "parameters");
        tg_xj_copy(fn, "strict", t, "strict");
        json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    json_t *tc = json_object_get(req, "tool_choice");
    if (json_is_string(tc))
        json_object_set(chat, "tool_choice", tc);
    else if (tg_xj_is(tc, "type", "function") && tg_xj_str(tc, "name"))
        json_object_set_new(chat, "tool_choice",
                            json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                                      json_object_get(tc, "name")));
    else if (tc && !json_is_null(tc))
        return tg_xerr(e->err, e->errlen, "unsupported tool_choice");
    tg_xj_copy(chat, "parallel_tool_calls", req, "parallel_tool_calls");
    return 0;
}

/* text.format: json_schema and json_object map to response_format. */
static void format_to_chat(json_t *req, json_t *chat)
{
    json_t *f = json_object_get(json_object_get(req, "text"), "format");
    if (tg_xj_is(f, "type", "json_object")) {
        json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (tg_xj_is(f, "type", "json_schema")) {
        json_t *js = json_object();
        tg_xj_copy(js, "name", f, "name");
        tg_xj_copy(js, "schema", f, "schema");
        tg_xj_copy(js, "strict", f, "strict");
        tg_xj_copy(js, "description", f, "description");
        json_object_set_new(chat, "response_format",
                            json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    }
}

int tg_chat_request_from_responses(json_t *req, const char *model, tg_translate_req_t *out,
                                   char *err, size_t errlen)
{
    rctx_t e = {err, errlen};
    json_t *chat = json_object();
    out->body = chat;
    json_t *jm = json_string(model);
    if (!jm)
        return tg_xerr(err, errlen, "the model name is not valid UTF-8");
    json_object_set_new(chat, "model", jm);
    json_t *prev = json_object_get(req, "previous_response_id");
    if (prev && !json_is_null(prev))
        return tg_xerr(err, errlen,
                       "previous_response_id needs responses stored by OpenAI; send the whole "
                       "conversation in 'input'");
    if (input_to_messages(req, chat, &e) < 0 || tools_to_chat(req, chat, &e) < 0)
        return -1;
    format_to_chat(req, chat);
    tg_xj_copy(chat, "max_completion_tokens", req, "max_output_tokens");
    tg_xj_copy(chat, "temperature", req, "temperature");
    tg_xj_copy(chat, "top_p", req, "top_p");
    tg_xj_copy(chat, "stop", req, "stop");
    json_t *user = json_object_get(req, "user");
    if (!json_is_string(user)) /* Anthropic keeps one metadata key: user_id */
        user = json_object_get(json_object_get(req, "metadata"), "user_id");
    if (json_is_string(user))
        json_object_set(chat, "user", user);
    const char *effort = tg_xj_str(json_object_get(req, "reasoning"), "effort");
    if (effort)
        json_object_set_new(chat, "reasoning_effort", json_string(effort));
    out->stream = json_is_true(json_object_get(req, "stream"));
    if (out->stream) {
        json_object_set_new(chat, "stream", json_true());
        json_object_set_new(chat, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    out->include_usage = true; /* a Responses stream always ends with its usage */
    out->path = tg_xstrdup("/chat/completions");
    return 0;
}

/* ---- response: chat.completion -> Responses `response` ---- */

/* "resp_<id>" for a provider id that is not one already. */
char *tg_xlat_responses_id(const char *id)
{
    if (!id || !*id)
        id = "tollgate";
    if (!strncmp(id, "resp_", 5))
        return tg_xstrdup(id);
    size_t n = strlen(id) + 6;
    char *s = tg_xmalloc(n);
    snprintf(s, n, "resp_%s", id);
    return s;
}

json_t *tg_xlat_responses_text_item(const char *resp_id, json_t *text, const char *status)
{
    char id[160];
    snprintf(id, sizeof id, "msg_%.150s", resp_id + (strncmp(resp_id, "resp_", 5) ? 0 : 5));
    return json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:o,s:[]}]}", "id", id, "type", "message", "status",
                     status, "role", "assistant", "content", "type", "output_text", "text",
                     text ? text : json_string(""), "annotations");
}

json_t *tg_xlat_responses_call_item(const char *call_id, const char *name, json_t *args,
                                    const char *status)
{
    char id[160];
    snprintf(id, sizeof id, "fc_%.150s", call_id);
    json_t *jc = json_string(call_id), *jn = json_string(name);
    json_t *item = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "id", id, "type", "function_call",
                             "status", status, "call_id", jc ? jc : json_string(""), "name",
                             jn ? jn : json_string(""), "arguments", args);
    return item;
}

json_t *tg_xlat_responses_object(const char *id, long created, const char *model, json_t *output,
                                 const char *finish, const tg_usage_t *u)
{
    const char *incomplete = NULL;
    if (finish && !strcmp(finish, "length"))
        incomplete = "max_output_tokens";
    else if (finish && !strcmp(finish, "content_filter"))
        incomplete = "content_filter";
    json_t *jm = json_string(model ? model : "");
    json_t *jid = json_string(id);
    json_t *r = json_pack("{s:o,s:s,s:I,s:s,s:n,s:o,s:o,s:o,s:o}", "id",
                          jid ? jid : json_string("resp_tollgate"), "object", "response",
                          "created_at", (json_int_t)created, "status",
                          incomplete ? "incomplete" : "completed", "error", "incomplete_details",
                          incomplete ? json_pack("{s:s}", "reason", incomplete) : json_null(),
                          "model", jm ? jm : json_string(""), "output", output, "usage",
                          u ? tg_xlat_responses_usage_json(u) : json_null());
    return r;
}

int tg_responses_from_chat(json_t *chat, const tg_translate_opts_t *o, tg_buf_t *out,
                           tg_usage_t *usage)
{
    json_t *choice = json_array_get(json_object_get(chat, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg))
        return -1;
    tg_usage_t u = TG_USAGE_UNKNOWN;
    tg_openai_usage(json_object_get(chat, "usage"), &u);
    char *id =
        tg_xlat_responses_id(tg_xj_str(chat, "id") ? tg_xj_str(chat, "id") : (o ? o->id : NULL));
    json_t *output = json_array();
    json_t *content = json_object_get(msg, "content");
    tg_buf_t text = {0};
    tg_xj_content_text(content, &text);
    if (text.len)
        json_array_append_new(
            output, tg_xlat_responses_text_item(id, tg_xj_buf_string(&text), "completed"));
    tg_buf_free(&text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, c)
    {
        json_t *fn = json_object_get(c, "function");
        json_t *args = json_object_get(fn, "arguments");
        const char *cid = tg_xj_str(c, "id"), *name = tg_xj_str(fn, "name");
        json_array_append_new(
            output, tg_xlat_responses_call_item(
                        cid ? cid : "call", name ? name : "",
                        json_is_string(args) ? json_incref(args) : json_string("{}"), "completed"));
    }
    json_t *created = json_object_get(chat, "created");
    const char *model = tg_xj_str(chat, "model");
    json_t *r = tg_xlat_responses_object(
        id, json_is_integer(created) ? (long)json_integer_value(created) : (o ? o->created : 0),
        model ? model : (o ? o->model : NULL), output, tg_xj_str(choice, "finish_reason"), &u);
    free(id);
    if (!r)
        return -1;
    if (usage)
        *usage = u;
    tg_xj_dump(out, r);
    return 0;
}
