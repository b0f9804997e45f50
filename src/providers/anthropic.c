/*
 * anthropic.c — the Anthropic Messages dialect: its auth header, usage in
 * Anthropic's terms, and the OpenAI -> Anthropic direction (a Chat
 * Completions request becomes a Messages request; a Message becomes a
 * chat.completion). The stream half of the direction is anthropic_stream.c.
 * Mapping tables: docs/dialects.md. Pure; any thread.
 *
 * Messages are built as block arrays, consecutive messages of one role are
 * merged (tool results must share the user turn that follows the tool
 * calls), and a message left with a single plain text block is written
 * back as a string.
 */
#include "providers/provider.h"
#include "providers/translate_internal.h"

#include <string.h>

/* max_tokens is required by the Messages API; OpenAI's is optional. */
#define DEFAULT_MAX_TOKENS 4096

/* ---- usage ---- */

bool tg_anthropic_usage(json_t *u, tg_usage_t *usage)
{
    if (!json_is_object(u))
        return false;
    long input = tg_xj_count(u, "input_tokens");
    long written = tg_xj_count(u, "cache_creation_input_tokens");
    long read = tg_xj_count(u, "cache_read_input_tokens");
    long output = tg_xj_count(u, "output_tokens");
    if (written >= 0)
        usage->cache_write_tokens = written;
    if (read >= 0)
        usage->cached_tokens = read;
    if (input >= 0) /* Anthropic's input excludes what the cache served or stored */
        usage->prompt_tokens = input +
                               (usage->cache_write_tokens > 0 ? usage->cache_write_tokens : 0) +
                               (usage->cached_tokens > 0 ? usage->cached_tokens : 0);
    if (output >= 0)
        usage->completion_tokens = output;
    return true;
}

void tg_anthropic_stream_usage(const char *data, size_t len, tg_usage_t *usage)
{
    json_t *doc = json_loadb(data, len, 0, NULL);
    if (tg_xj_is(doc, "type", "message_start"))
        tg_anthropic_usage(json_object_get(json_object_get(doc, "message"), "usage"), usage);
    else if (tg_xj_is(doc, "type", "message_delta"))
        tg_anthropic_usage(json_object_get(doc, "usage"), usage);
    json_decref(doc);
}

static void anthropic_answer_usage(const char *doc, size_t len, tg_usage_t *usage)
{
    json_t *j = json_loadb(doc, len, 0, NULL);
    tg_anthropic_usage(json_object_get(j, "usage"), usage);
    json_decref(j);
}

static bool anthropic_event_usage(const char *data, size_t len, tg_usage_t *usage)
{
    if (!memmem(data, len, "\"usage\"", 7))
        return false;
    tg_anthropic_stream_usage(data, len, usage);
    return true;
}

const tg_dialect_t tg_dialect_anthropic = {
    .name = "anthropic",
    .answer_usage = anthropic_answer_usage,
    .event_usage = anthropic_event_usage,
};

/* ---- request: OpenAI -> Anthropic ---- */

typedef struct {
    char *err;
    size_t errlen;
} ectx_t;

static json_t *text_block(json_t *text, json_t *part)
{
    json_t *b = json_pack("{s:s,s:O}", "type", "text", "text", text);
    if (part)
        tg_xj_copy(b, "cache_control", part, "cache_control");
    return b;
}

/* An image_url part: a data URI becomes a base64 source, anything else a
 * URL source. */
static json_t *image_block(json_t *part)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : tg_xj_str(iu, "url");
    if (!url)
        return NULL;
    json_t *mime, *data, *b;
    if (tg_xj_data_uri(url, &mime, &data))
        b = json_pack("{s:s,s:{s:s,s:o,s:o}}", "type", "image", "source", "type", "base64",
                      "media_type", mime, "data", data);
    else
        b = json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
    tg_xj_copy(b, "cache_control", part, "cache_control");
    return b;
}

/* A file part with inline data (PDFs): a document block. */
static json_t *document_block(json_t *part)
{
    json_t *mime, *data;
    if (!tg_xj_data_uri(tg_xj_str(json_object_get(part, "file"), "file_data"), &mime, &data))
        return NULL;
    json_t *b = json_pack("{s:s,s:{s:s,s:o,s:o}}", "type", "document", "source", "type", "base64",
                          "media_type", mime, "data", data);
    tg_xj_copy(b, "cache_control", part, "cache_control");
    return b;
}

/* One content part of a user, system or assistant message. */
static int part_to_block(json_t *part, json_t *blocks, ectx_t *e)
{
    const char *type = tg_xj_str(part, "type");
    if (!type)
        return tg_xerr(e->err, e->errlen, "a content part has no type");
    json_t *b = NULL;
    if (!strcmp(type, "text") || !strcmp(type, "refusal")) {
        json_t *text = json_object_get(part, type);
        if (!json_is_string(text))
            return tg_xerr(e->err, e->errlen, "a %s part has no string '%s'", type, type);
        if (json_string_length(text) == 0)
            return 0; /* the Messages API refuses empty text blocks */
        b = text_block(text, part);
    } else if (!strcmp(type, "image_url")) {
        b = image_block(part);
    } else if (!strcmp(type, "file")) {
        b = document_block(part);
    } else {
        return tg_xerr(e->err, e->errlen, "content part type '%s' is not supported by Anthropic",
                       type);
    }
    if (!b)
        return tg_xerr(e->err, e->errlen, "a '%s' part is malformed or not inline data", type);
    json_array_append_new(blocks, b);
    return 0;
}

static int content_to_blocks(json_t *content, json_t *blocks, ectx_t *e)
{
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(blocks, text_block(content, NULL));
        return 0;
    }
    if (json_is_null(content) || !content)
        return 0;
    if (!json_is_array(content))
        return tg_xerr(e->err, e->errlen, "message content must be a string or an array");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        if (part_to_block(part, blocks, e) < 0)
            return -1;
    }
    return 0;
}

static int tool_calls_to_blocks(json_t *calls, json_t *blocks, ectx_t *e)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *fn = json_object_get(c, "function");
        json_t *id = json_object_get(c, "id"), *name = json_object_get(fn, "name");
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_string(id) || !json_is_string(name))
            return tg_xerr(e->err, e->errlen, "a tool call needs a string id and function.name");
        json_t *input = tg_xj_call_input(args);
        if (!input)
            return tg_xerr(e->err, e->errlen, "tool call '%s': arguments are not a JSON object",
                           json_string_value(id));
        json_array_append_new(blocks, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", id,
                                                "name", name, "input", input));
    }
    return 0;
}

static int tool_result_block(json_t *m, json_t *blocks, ectx_t *e)
{
    json_t *id = json_object_get(m, "tool_call_id");
    if (!json_is_string(id))
        return tg_xerr(e->err, e->errlen, "a tool message needs a string tool_call_id");
    json_t *b = json_pack("{s:s,s:O}", "type", "tool_result", "tool_use_id", id);
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        json_object_set(b, "content", content);
    } else if (json_is_array(content)) {
        json_t *inner = json_array();
        if (content_to_blocks(content, inner, e) < 0) {
            json_decref(inner);
            json_decref(b);
            return -1;
        }
        json_object_set_new(b, "content", inner);
    }
    json_array_append_new(blocks, b);
    return 0;
}

/* A single plain text block reads better, and caches the same, as a string. */
static json_t *simplify(json_t *blocks)
{
    json_t *b = json_array_get(blocks, 0);
    if (json_array_size(blocks) == 1 && json_object_size(b) == 2 && tg_xj_is(b, "type", "text"))
        return json_incref(json_object_get(b, "text"));
    return json_incref(blocks);
}

static int one_message(json_t *m, json_t *system, json_t *msgs, ectx_t *e)
{
    const char *role = tg_xj_str(m, "role");
    json_t *content = json_object_get(m, "content");
    if (!role)
        return tg_xerr(e->err, e->errlen, "a message has no role");
    if (!strcmp(role, "system") || !strcmp(role, "developer"))
        return content_to_blocks(content, system, e);
    json_t *blocks = json_array();
    int rc;
    if (!strcmp(role, "user")) {
        rc = content_to_blocks(content, blocks, e);
    } else if (!strcmp(role, "assistant")) {
        rc = content_to_blocks(content, blocks, e);
        if (rc == 0)
            rc = tool_calls_to_blocks(json_object_get(m, "tool_calls"), blocks, e);
    } else if (!strcmp(role, "tool")) {
        rc = tool_result_block(m, blocks, e);
        role = "user";
    } else {
        rc = tg_xerr(e->err, e->errlen, "message role '%s' is not supported by Anthropic", role);
    }
    if (rc < 0) {
        json_decref(blocks);
        return -1;
    }
    tg_xj_push_turn(msgs, role, "content", blocks);
    return 0;
}

static int messages_out(json_t *req, json_t *body, ectx_t *e)
{
    json_t *in = json_object_get(req, "messages");
    if (!json_is_array(in))
        return tg_xerr(e->err, e->errlen, "'messages' must be an array");
    json_t *system = json_array(), *msgs = json_array();
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(in, i, m)
    {
        if ((rc = one_message(m, system, msgs, e)) < 0)
            break;
    }
    if (rc == 0 && json_array_size(system))
        json_object_set_new(body, "system", simplify(system));
    json_array_foreach(msgs, i, m)
    {
        json_t *c = json_object_get(m, "content");
        json_object_set_new(m, "content", simplify(c));
    }
    json_object_set_new(body, "messages", msgs);
    json_decref(system);
    return rc;
}

static int tools_out(json_t *req, json_t *body, ectx_t *e)
{
    json_t *tools = json_object_get(req, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return 0;
    json_t *out = json_array();
    json_object_set_new(body, "tools", out);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        json_t *name = json_object_get(fn, "name");
        if (!tg_xj_is(t, "type", "function") || !json_is_string(name))
            return tg_xerr(e->err, e->errlen, "only function tools with a name are supported");
        json_t *schema = json_object_get(fn, "parameters");
        json_t *a = json_pack("{s:O}", "name", name);
        tg_xj_copy(a, "description", fn, "description");
        json_object_set_new(a, "input_schema",
                            json_is_object(schema)
                                ? json_incref(schema)
                                : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        tg_xj_copy(a, "cache_control", t, "cache_control");
        json_array_append_new(out, a);
    }
    return 0;
}

static int tool_choice_out(json_t *req, json_t *body, ectx_t *e)
{
    if (!json_object_get(body, "tools"))
        return 0;
    json_t *tc = json_object_get(req, "tool_choice");
    json_t *out = NULL;
    const char *s = json_string_value(tc);
    if (!tc || json_is_null(tc) || (s && !strcmp(s, "auto")))
        out = json_pack("{s:s}", "type", "auto");
    else if (s && !strcmp(s, "none"))
        out = json_pack("{s:s}", "type", "none");
    else if (s && !strcmp(s, "required"))
        out = json_pack("{s:s}", "type", "any");
    else if (tg_xj_is(tc, "type", "function") && tg_xj_str(json_object_get(tc, "function"), "name"))
        out = json_pack("{s:s,s:O}", "type", "tool", "name",
                        json_object_get(json_object_get(tc, "function"), "name"));
    else
        return tg_xerr(e->err, e->errlen, "unsupported tool_choice");
    if (json_is_false(json_object_get(req, "parallel_tool_calls")) &&
        !tg_xj_is(out, "type", "none"))
        json_object_set_new(out, "disable_parallel_tool_use", json_true());
    /* Anthropic's default: leave it out unless it says something. */
    if (json_object_size(out) == 1 && tg_xj_is(out, "type", "auto") && !tc)
        json_decref(out);
    else
        json_object_set_new(body, "tool_choice", out);
    return 0;
}

static int sampling_out(json_t *req, json_t *body, ectx_t *e)
{
    json_t *n = json_object_get(req, "n");
    if (json_is_integer(n) && json_integer_value(n) > 1)
        return tg_xerr(e->err, e->errlen, "n > 1 is not supported by Anthropic");
    json_t *mt = json_object_get(req, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(req, "max_tokens");
    if (json_is_integer(mt) && json_integer_value(mt) > 0)
        json_object_set(body, "max_tokens", mt);
    else
        json_object_set_new(body, "max_tokens", json_integer(DEFAULT_MAX_TOKENS));
    json_t *t = json_object_get(req, "temperature");
    if (json_is_number(t)) { /* OpenAI's range is 0..2, Anthropic's 0..1 */
        double v = json_number_value(t);
        if (v > 1 || v < 0)
            json_object_set_new(body, "temperature", json_integer(v > 1 ? 1 : 0));
        else
            json_object_set(body, "temperature", t);
    }
    /* Claude 4.1 and later refuse temperature together with top_p; OpenAI
     * clients often send both (top_p=1 by default). Temperature wins. */
    if (!json_is_number(t))
        tg_xj_copy(body, "top_p", req, "top_p");
    tg_xj_copy(body, "top_k", req, "top_k");
    json_t *stop = json_object_get(req, "stop");
    if (json_is_string(stop))
        json_object_set_new(body, "stop_sequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop))
        json_object_set(body, "stop_sequences", stop);
    json_t *user = json_object_get(req, "user");
    if (json_is_string(user))
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", user));
    if (json_is_object(json_object_get(req, "thinking")))
        tg_xj_copy(body, "thinking", req, "thinking");
    return 0;
}

int tg_anthropic_request_from_openai(json_t *req, const char *model, tg_translate_req_t *out,
                                     char *err, size_t errlen)
{
    ectx_t e = {err, errlen};
    json_t *body = json_object();
    out->body = body;
    json_t *jm = json_string(model);
    if (!jm)
        return tg_xerr(err, errlen, "the model name is not valid UTF-8");
    json_object_set_new(body, "model", jm);
    if (messages_out(req, body, &e) < 0 || sampling_out(req, body, &e) < 0 ||
        tools_out(req, body, &e) < 0 || tool_choice_out(req, body, &e) < 0)
        return -1;
    out->stream = json_is_true(json_object_get(req, "stream"));
    if (out->stream)
        json_object_set_new(body, "stream", json_true());
    out->include_usage =
        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    out->path = tg_xstrdup("/messages");
    return 0;
}

/* ---- response: Anthropic Message -> chat.completion ---- */

static json_t *tool_call_json(json_t *block)
{
    json_t *input = json_object_get(block, "input");
    char *args = input ? json_dumps(input, TG_TRANSLATE_DUMP_FLAGS | JSON_ENCODE_ANY) : NULL;
    json_t *c = json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(block, "id"), "type",
                          "function", "function", "name", json_object_get(block, "name"),
                          "arguments", args ? args : "{}");
    free(args);
    return c;
}

int tg_anthropic_response_to_openai(json_t *msg, const tg_translate_opts_t *o, tg_buf_t *out,
                                    tg_usage_t *usage)
{
    json_t *content = json_object_get(msg, "content");
    if (!json_is_array(content))
        return -1;
    tg_buf_t text = {0}, thinking = {0};
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        json_t *t = json_object_get(b, "text");
        json_t *th = json_object_get(b, "thinking");
        if (tg_xj_is(b, "type", "text") && json_is_string(t))
            tg_buf_append(&text, json_string_value(t), json_string_length(t));
        else if (tg_xj_is(b, "type", "thinking") && json_is_string(th))
            tg_buf_append(&thinking, json_string_value(th), json_string_length(th));
        else if (tg_xj_is(b, "type", "tool_use") && tg_xj_str(b, "id") && tg_xj_str(b, "name"))
            json_array_append_new(calls, tool_call_json(b));
    }
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(
        m, "content", text.len || !json_array_size(calls) ? tg_xj_buf_string(&text) : json_null());
    if (thinking.len)
        json_object_set_new(m, "reasoning_content", tg_xj_buf_string(&thinking));
    if (json_array_size(calls))
        json_object_set(m, "tool_calls", calls);
    json_decref(calls);
    tg_buf_free(&text);
    tg_buf_free(&thinking);

    tg_usage_t u = TG_USAGE_UNKNOWN;
    tg_anthropic_usage(json_object_get(msg, "usage"), &u);
    const char *id = tg_xj_str(msg, "id"), *model = tg_xj_str(msg, "model");
    json_t *doc = json_pack(
        "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s,s:n}]}", "id", id ? id : (o && o->id ? o->id : ""),
        "object", "chat.completion", "created", (json_int_t)(o ? o->created : 0), "model",
        model ? model : (o && o->model ? o->model : ""), "choices", "index", 0, "message", m,
        "finish_reason", tg_xlat_finish_from_anthropic(tg_xj_str(msg, "stop_reason")), "logprobs");
    json_t *uj = tg_xlat_openai_usage_json(&u);
    if (uj)
        json_object_set_new(doc, "usage", uj);
    if (usage)
        *usage = u;
    tg_xj_dump(out, doc);
    return 0;
}
