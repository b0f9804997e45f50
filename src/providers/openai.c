/*
 * openai.c — the OpenAI dialect, spoken by OpenAI and every
 * OpenAI-compatible provider (DeepSeek, Groq, Mistral, xAI, OpenRouter,
 * ModelScope, Together, Fireworks, Ollama, any named endpoint; their
 * records are in registry.c): its usage readers, and the Anthropic -> OpenAI direction
 * (a Messages request becomes a Chat Completions request; a
 * chat.completion becomes a Message). Pure; any thread.
 */
#include "providers/provider.h"

#include "core/jsonscan.h"
#include "providers/translate_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The top-level "usage" of a chat.completion, a completion, an embedding
 * list or a stream chunk, read without building a tree (this runs for every
 * answer and every usage chunk). */
static bool openai_usage(const char *doc, size_t len, tg_usage_t *usage)
{
    size_t a, b;
    if (!tg_json_member(doc, len, "usage", &a, &b) || doc[a] != '{')
        return false;
    static const char *const keys[] = {"prompt_tokens", "completion_tokens",
                                       "prompt_tokens_details", "completion_tokens_details"};
    tg_json_span_t sp[4];
    const char *u = doc + a;
    tg_json_members(u, b - a, keys, 4, sp);
    usage->prompt_tokens = tg_json_span_long(u, sp[0]);
    usage->completion_tokens = tg_json_span_long(u, sp[1]);
    if (sp[2].found && u[sp[2].start] == '{')
        usage->cached_tokens =
            tg_json_member_long(u + sp[2].start, sp[2].end - sp[2].start, "cached_tokens");
    if (sp[3].found && u[sp[3].start] == '{')
        usage->reasoning_tokens =
            tg_json_member_long(u + sp[3].start, sp[3].end - sp[3].start, "reasoning_tokens");
    return true;
}

static void openai_answer_usage(const char *doc, size_t len, tg_usage_t *usage)
{
    openai_usage(doc, len, usage);
}

/* True when some "usage" key in the chunk has an object for its value. A
 * stream with include_usage carries "usage":null in every chunk but the
 * last; without an object after any "usage", openai_usage could only say
 * false, so its walk over the chunk's members (the most of an event's cost)
 * is skipped. Keys are compared as raw bytes there too, so nothing escaped
 * is missed. */
static bool usage_object_follows(const char *doc, size_t len)
{
    const char *end = doc + len;
    for (const char *p = doc; (p = memmem(p, (size_t)(end - p), "\"usage\"", 7)) != NULL; p += 7)
        if (tg_json_object_follows(p + 7, (size_t)(end - p - 7)))
            return true;
    return false;
}

static bool openai_event_usage(const char *data, size_t len, tg_usage_t *usage)
{
    return usage_object_follows(data, len) && openai_usage(data, len, usage);
}

const tg_dialect_t tg_dialect_openai = {
    .name = "openai",
    .answer_usage = openai_answer_usage,
    .event_usage = openai_event_usage,
};

/* ==== Anthropic -> OpenAI: Claude Code and the Anthropic SDKs on
 * OpenAI-type providers. The stream half is openai_stream.c; mapping tables
 * in docs/dialects.md. ==== */

typedef struct {
    char *err;
    size_t errlen;
    /* The request goes on to Gemini (translate_chain.c): documents by URL
     * and of any media type can travel, as Gemini takes them. */
    bool for_gemini;
} octx_t;

/* Models that take max_completion_tokens and refuse max_tokens; they are
 * also the ones that take reasoning_effort (others refuse it with 400). */
static bool wants_max_completion_tokens(const char *model)
{
    static const char *const prefixes[] = {"o1", "o3", "o4", "gpt-5", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (!strncmp(model, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

/* "data:MIME;base64,DATA" from an Anthropic base64 source. */
static json_t *data_uri(json_t *source)
{
    const char *mt = tg_xj_str(source, "media_type"), *data = tg_xj_str(source, "data");
    if (!mt || !data)
        return NULL;
    tg_buf_t b = {0};
    tg_buf_printf(&b, "data:%s;base64,", mt);
    json_t *d = json_object_get(source, "data");
    tg_buf_append(&b, json_string_value(d), json_string_length(d));
    json_t *s = tg_xj_buf_string(&b);
    tg_buf_free(&b);
    return s;
}

static json_t *text_part(json_t *text)
{
    return json_pack("{s:s,s:O}", "type", "text", "text", text);
}

static json_t *file_part(json_t *block, json_t *file_data)
{
    const char *title = tg_xj_str(block, "title");
    return json_pack("{s:s,s:{s:s,s:o}}", "type", "file", "file", "filename",
                     title && *title ? title : "document.pdf", "file_data", file_data);
}

static int block_parts(json_t *content, json_t *parts, octx_t *e, int depth);

/* An image block as an image_url part. */
static int image_parts(json_t *block, json_t *parts, octx_t *e)
{
    json_t *src = json_object_get(block, "source");
    const char *st = tg_xj_str(src, "type");
    json_t *url = NULL;
    if (st && !strcmp(st, "url") && tg_xj_str(src, "url"))
        url = json_incref(json_object_get(src, "url"));
    else if (st && !strcmp(st, "base64"))
        url = data_uri(src);
    if (!url)
        return tg_xerr(e->err, e->errlen,
                       "an image block needs a base64 or url source ('%s' cannot be sent to "
                       "this provider)",
                       st ? st : "none");
    json_array_append_new(parts,
                          json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url", url));
    return 0;
}

/* A document block: a base64 PDF as a file part, plain text and content
 * sources as text parts; what Chat Completions cannot carry (a URL, another
 * media type, a Files API id) is refused — except on the way to Gemini,
 * which takes any of them as inline or file data. */
static int document_parts(json_t *block, json_t *parts, octx_t *e, int depth)
{
    json_t *src = json_object_get(block, "source");
    const char *st = tg_xj_str(src, "type");
    if (!st)
        return tg_xerr(e->err, e->errlen, "a document block needs a source");
    if (!strcmp(st, "text")) {
        json_t *data = json_object_get(src, "data");
        if (!json_is_string(data))
            return tg_xerr(e->err, e->errlen, "a text document needs a string 'data'");
        json_array_append_new(parts, text_part(data));
        return 0;
    }
    if (!strcmp(st, "content"))
        return block_parts(json_object_get(src, "content"), parts, e, depth + 1);
    if (!strcmp(st, "base64")) {
        const char *mt = tg_xj_str(src, "media_type");
        if (!e->for_gemini && (!mt || strcmp(mt, "application/pdf")))
            return tg_xerr(e->err, e->errlen,
                           "a base64 document must be application/pdf for this provider");
        json_t *uri = data_uri(src);
        if (!uri)
            return tg_xerr(e->err, e->errlen, "a base64 document needs media_type and data");
        json_array_append_new(parts, file_part(block, uri));
        return 0;
    }
    if (!strcmp(st, "url") && e->for_gemini && tg_xj_str(src, "url")) {
        json_array_append_new(parts, file_part(block, json_incref(json_object_get(src, "url"))));
        return 0;
    }
    return tg_xerr(e->err, e->errlen,
                   "a document with a '%s' source cannot be sent to this provider (send the PDF "
                   "as base64 or the text as a text source)",
                   st);
}

/* Blocks of an Anthropic content array (or a string) -> OpenAI parts in
 * `parts`. Text keeps its text (citations and cache_control dropped);
 * thinking and the server tools' blocks are left out. */
static int block_parts(json_t *content, json_t *parts, octx_t *e, int depth)
{
    if (depth > 2)
        return tg_xerr(e->err, e->errlen, "document content is nested too deeply");
    if (json_is_string(content)) {
        json_array_append_new(parts, text_part(content));
        return 0;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        json_t *t = json_object_get(b, "text");
        int rc = 0;
        if (tg_xj_is(b, "type", "text") && json_is_string(t))
            json_array_append_new(parts, text_part(t));
        else if (tg_xj_is(b, "type", "image"))
            rc = image_parts(b, parts, e);
        else if (tg_xj_is(b, "type", "document"))
            rc = document_parts(b, parts, e, depth);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Parts (text, images, documents) -> a `content`: one string when all of
 * it is text (what every OpenAI-compatible server takes), else an array. */
static json_t *parts_content(json_t *parts)
{
    tg_buf_t text = {0};
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        if (!tg_xj_is(p, "type", "text")) {
            tg_buf_free(&text);
            return json_incref(parts);
        }
        if (i)
            tg_buf_puts(&text, "\n");
        json_t *t = json_object_get(p, "text");
        tg_buf_append(&text, json_string_value(t), json_string_length(t));
    }
    json_t *s = tg_xj_buf_string(&text);
    tg_buf_free(&text);
    return s;
}

/* A tool_result block as a tool message (text: OpenAI tool messages carry
 * no media); its images and files go to `extra`, for the user message
 * after the tool messages. */
static json_t *tool_message(json_t *b, json_t *extra, octx_t *e)
{
    json_t *parts = json_array();
    if (block_parts(json_object_get(b, "content"), parts, e, 0) < 0) {
        json_decref(parts);
        return NULL;
    }
    tg_buf_t text = {0};
    if (json_is_true(json_object_get(b, "is_error")))
        tg_buf_puts(&text, "Error: ");
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t)) {
            if (n++)
                tg_buf_puts(&text, "\n");
            tg_buf_append(&text, json_string_value(t), json_string_length(t));
        } else {
            json_array_append(extra, p);
        }
    }
    json_t *m = json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id",
                          json_object_get(b, "tool_use_id"), "content", tg_xj_buf_string(&text));
    tg_buf_free(&text);
    json_decref(parts);
    return m;
}

/* A user turn: its tool results first, as tool messages, then the rest. */
static int user_out(json_t *content, json_t *msgs, octx_t *e)
{
    if (json_is_string(content)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", content));
        return 0;
    }
    if (!json_is_array(content))
        return tg_xerr(e->err, e->errlen, "message content must be a string or an array");
    json_t *parts = json_array(), *rest = json_array();
    int rc = 0;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (!tg_xj_is(b, "type", "tool_result")) {
            json_array_append(rest, b);
            continue;
        }
        json_t *m =
            tg_xj_str(b, "tool_use_id")
                ? tool_message(b, parts, e)
                : (tg_xerr(e->err, e->errlen, "a tool_result block needs a tool_use_id"), NULL);
        if (!m) {
            rc = -1;
            break;
        }
        json_array_append_new(msgs, m);
    }
    if (rc == 0)
        rc = block_parts(rest, parts, e, 0);
    json_decref(rest);
    if (rc == 0 && json_array_size(parts))
        json_array_append_new(
            msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts_content(parts)));
    json_decref(parts);
    return rc;
}

static json_t *tool_call_of(json_t *b)
{
    json_t *input = json_object_get(b, "input");
    char *args = input ? json_dumps(input, TG_TRANSLATE_DUMP_FLAGS | JSON_ENCODE_ANY) : NULL;
    json_t *c =
        json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(b, "id"), "type", "function",
                  "function", "name", json_object_get(b, "name"), "arguments", args ? args : "{}");
    free(args);
    return c;
}

static int assistant_out(json_t *content, json_t *msgs, octx_t *e)
{
    if (json_is_string(content)) {
        json_array_append_new(msgs,
                              json_pack("{s:s,s:O}", "role", "assistant", "content", content));
        return 0;
    }
    if (!json_is_array(content))
        return tg_xerr(e->err, e->errlen, "message content must be a string or an array");
    tg_buf_t text = {0};
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        json_t *t = json_object_get(b, "text");
        if (tg_xj_is(b, "type", "text") && json_is_string(t))
            tg_buf_append(&text, json_string_value(t), json_string_length(t));
        else if (tg_xj_is(b, "type", "tool_use") && tg_xj_str(b, "id") && tg_xj_str(b, "name"))
            json_array_append_new(calls, tool_call_of(b));
        /* thinking blocks are the Anthropic model's own: not replayed */
    }
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(
        m, "content", text.len || !json_array_size(calls) ? tg_xj_buf_string(&text) : json_null());
    if (json_array_size(calls))
        json_object_set(m, "tool_calls", calls);
    json_decref(calls);
    tg_buf_free(&text);
    json_array_append_new(msgs, m);
    return 0;
}

/* The text of a system prompt or a system turn (a string or text blocks),
 * appended to `text`, parts apart by a blank line. */
static int system_text(json_t *content, tg_buf_t *text, octx_t *e)
{
    if (!content || json_is_null(content))
        return 0;
    if (!json_is_string(content) && !json_is_array(content))
        return tg_xerr(e->err, e->errlen, "system content must be a string or an array");
    json_t *parts = json_array();
    int rc = block_parts(content, parts, e, 0);
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t) || json_string_length(t) == 0)
            continue;
        if (text->len)
            tg_buf_puts(text, "\n\n");
        tg_buf_append(text, json_string_value(t), json_string_length(t));
    }
    json_decref(parts);
    return rc;
}

/* `system` and every `role: system` turn (Claude Code puts some between the
 * user turns), in order, as one leading system message: the one shape every
 * OpenAI-compatible server takes (several chat templates refuse a system
 * message after the first user turn). */
static int system_out(json_t *req, json_t *in, json_t *msgs, octx_t *e)
{
    tg_buf_t text = {0};
    int rc = system_text(json_object_get(req, "system"), &text, e);
    size_t i;
    json_t *m;
    json_array_foreach(in, i, m)
    {
        if (rc == 0 && tg_xj_is(m, "role", "system"))
            rc = system_text(json_object_get(m, "content"), &text, e);
    }
    if (rc == 0 && text.len)
        json_array_append_new(
            msgs, json_pack("{s:s,s:o}", "role", "system", "content", tg_xj_buf_string(&text)));
    tg_buf_free(&text);
    return rc;
}

static int messages_in(json_t *req, json_t *body, octx_t *e)
{
    json_t *in = json_object_get(req, "messages");
    if (!json_is_array(in))
        return tg_xerr(e->err, e->errlen, "'messages' must be an array");
    json_t *msgs = json_array();
    json_object_set_new(body, "messages", msgs);
    if (system_out(req, in, msgs, e) < 0)
        return -1;
    size_t i;
    json_t *m;
    json_array_foreach(in, i, m)
    {
        const char *role = tg_xj_str(m, "role");
        json_t *content = json_object_get(m, "content");
        int rc = 0;
        if (role && !strcmp(role, "user"))
            rc = user_out(content, msgs, e);
        else if (role && !strcmp(role, "assistant"))
            rc = assistant_out(content, msgs, e);
        else if (!role || strcmp(role, "system"))
            rc = tg_xerr(e->err, e->errlen, "message role must be 'user', 'assistant' or 'system'");
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* One tool_addition / tool_removal block of a system turn applied to the
 * tools by name: Claude Code adds a tool mid-conversation with its
 * definition (or by reference to one already in `tools`, deferred), and
 * removes one by reference. */
static void tool_change(json_t *b, json_t *by_name)
{
    json_t *tool = json_object_get(b, "tool");
    json_t *def =
        tg_xj_is(tool, "type", "tool_definition") ? json_object_get(tool, "definition") : NULL;
    const char *name = def ? tg_xj_str(def, "name") : tg_xj_str(tool, "name");
    if (!name)
        return;
    if (tg_xj_is(b, "type", "tool_removal"))
        json_object_del(by_name, name);
    else if (tg_xj_is(b, "type", "tool_addition") && json_is_object(def))
        json_object_set(by_name, name, def);
}

/* The tools the model may call at the end of the conversation: `tools`,
 * then the additions and removals of the system turns in order. A name ->
 * tool object (jansson keeps insertion order), so that each change costs
 * one look-up. */
static json_t *tools_by_name(json_t *req)
{
    json_t *by_name = json_object(), *t, *m, *b;
    size_t i, k;
    json_array_foreach(json_object_get(req, "tools"), i, t)
    {
        if (tg_xj_str(t, "name"))
            json_object_set(by_name, tg_xj_str(t, "name"), t);
    }
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        json_t *content = json_object_get(m, "content");
        if (!tg_xj_is(m, "role", "system") || !json_is_array(content))
            continue;
        json_array_foreach(content, k, b) tool_change(b, by_name);
    }
    return by_name;
}

/* Anthropic's server tools (web search, code execution, ...) have no
 * input_schema and nothing on the other side to run them: left out. */
static void tools_in(json_t *req, json_t *body)
{
    json_t *tools = tools_by_name(req), *out = json_array();
    const char *name;
    json_t *t;
    json_object_foreach(tools, name, t)
    {
        json_t *schema = json_object_get(t, "input_schema");
        if (!json_is_object(schema))
            continue;
        json_t *fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
        tg_xj_copy(fn, "description", t, "description");
        json_object_set(fn, "parameters", schema);
        json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    json_decref(tools);
    if (json_array_size(out) == 0) {
        json_decref(out);
        return;
    }
    json_object_set_new(body, "tools", out);
    json_t *tc = json_object_get(req, "tool_choice");
    const char *type = tg_xj_str(tc, "type");
    if (type && !strcmp(type, "any"))
        json_object_set_new(body, "tool_choice", json_string("required"));
    else if (type && !strcmp(type, "none"))
        json_object_set_new(body, "tool_choice", json_string("none"));
    else if (type && !strcmp(type, "tool") && tg_xj_str(tc, "name"))
        json_object_set_new(body, "tool_choice",
                            json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                                      json_object_get(tc, "name")));
    else if (type && !strcmp(type, "auto"))
        json_object_set_new(body, "tool_choice", json_string("auto"));
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
        json_object_set_new(body, "parallel_tool_calls", json_false());
}

/* OpenAI refuses a `user` longer than 64 characters (OpenRouter: 128);
 * Claude Code's user_id is a JSON object of about 150. A longer id goes as
 * "u-" and the 64-bit FNV-1a hash of it in hex: still one stable, opaque
 * id per user, which is all the field is for. */
#define MAX_USER_LEN 64

static void user_id_out(json_t *user, json_t *body)
{
    if (!json_is_string(user) || json_string_length(user) == 0)
        return;
    if (json_string_length(user) <= MAX_USER_LEN) {
        json_object_set(body, "user", user);
        return;
    }
    uint64_t h = 14695981039346656037ULL;
    const unsigned char *p = (const unsigned char *)json_string_value(user);
    for (size_t i = 0; i < json_string_length(user); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    char id[24];
    snprintf(id, sizeof id, "u-%016llx", (unsigned long long)h);
    json_object_set_new(body, "user", json_string(id));
}

/* thinking.budget_tokens in bands: below 4,096 low, below 16,384 medium,
 * else high (NULL: no thinking asked, or no budget to read). */
static const char *effort_of(json_t *thinking)
{
    long budget = tg_xj_count(thinking, "budget_tokens");
    if (!tg_xj_is(thinking, "type", "enabled") || budget < 0)
        return NULL;
    return budget < 4096 ? "low" : budget < 16384 ? "medium" : "high";
}

static void params_in(json_t *req, json_t *body, const char *model, octx_t *e)
{
    json_t *mt = json_object_get(req, "max_tokens");
    bool reasoning = wants_max_completion_tokens(model);
    if (json_is_integer(mt))
        json_object_set(body, reasoning ? "max_completion_tokens" : "max_tokens", mt);
    tg_xj_copy(body, "temperature", req, "temperature");
    tg_xj_copy(body, "top_p", req, "top_p");
    if (e->for_gemini) /* Gemini's topK; Chat Completions has none */
        tg_xj_copy(body, "top_k", req, "top_k");
    json_t *stop = json_object_get(req, "stop_sequences");
    if (json_is_array(stop) && json_array_size(stop))
        json_object_set(body, "stop", stop);
    user_id_out(json_object_get(json_object_get(req, "metadata"), "user_id"), body);
    const char *effort = effort_of(json_object_get(req, "thinking"));
    if (effort && reasoning)
        json_object_set_new(body, "reasoning_effort", json_string(effort));
}

static int request_from_anthropic(json_t *req, const char *model, bool stream_usage,
                                  tg_translate_req_t *out, octx_t *e)
{
    json_t *body = json_object();
    out->body = body;
    json_t *jm = json_string(model);
    if (!jm)
        return tg_xerr(e->err, e->errlen, "the model name is not valid UTF-8");
    json_object_set_new(body, "model", jm);
    if (messages_in(req, body, e) < 0)
        return -1;
    params_in(req, body, model, e);
    tools_in(req, body);
    out->stream = json_is_true(json_object_get(req, "stream"));
    if (out->stream) {
        json_object_set_new(body, "stream", json_true());
        if (stream_usage)
            json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    out->path = tg_xstrdup("/chat/completions");
    out->prompt_estimate = tg_translate_count_tokens(req, NULL);
    return 0;
}

int tg_openai_request_from_anthropic(json_t *req, const char *model, bool stream_usage,
                                     tg_translate_req_t *out, char *err, size_t errlen)
{
    octx_t e = {err, errlen, false};
    return request_from_anthropic(req, model, stream_usage, out, &e);
}

int tg_openai_request_from_anthropic_for_gemini(json_t *req, const char *model,
                                                tg_translate_req_t *out, char *err, size_t errlen)
{
    octx_t e = {err, errlen, true};
    return request_from_anthropic(req, model, false, out, &e);
}

/* ---- response: chat.completion -> Anthropic Message ---- */

static void add_thinking(json_t *content, json_t *msg)
{
    json_t *r = json_object_get(msg, "reasoning_content");
    if (!json_is_string(r))
        r = json_object_get(msg, "reasoning"); /* OpenRouter, Groq */
    if (json_is_string(r) && json_string_length(r))
        json_array_append_new(content, json_pack("{s:s,s:O,s:s}", "type", "thinking", "thinking", r,
                                                 "signature", ""));
}

static void add_tool_uses(json_t *content, json_t *calls)
{
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *fn = json_object_get(c, "function");
        json_t *id = json_object_get(c, "id"), *name = json_object_get(fn, "name");
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_string(id) || !json_is_string(name))
            continue;
        json_t *input = json_is_string(args)
                            ? tg_xj_parse_args(json_string_value(args), json_string_length(args))
                            : NULL;
        json_array_append_new(content,
                              json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", id, "name",
                                        name, "input", input ? input : json_object()));
    }
}

int tg_openai_response_to_anthropic(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                    tg_usage_t *usage)
{
    json_t *choice = json_array_get(json_object_get(resp, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg))
        return -1;
    json_t *content = json_array();
    add_thinking(content, msg);
    json_t *text = json_object_get(msg, "content");
    if (json_is_string(text) && json_string_length(text))
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", text));
    add_tool_uses(content, json_object_get(msg, "tool_calls"));
    if (json_array_size(content) == 0)
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", ""));
    tg_usage_t u = TG_USAGE_UNKNOWN;
    tg_openai_usage(json_object_get(resp, "usage"), &u);
    const char *id = tg_xj_str(resp, "id"), *model = tg_xj_str(resp, "model");
    json_t *doc =
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id ? id : (o && o->id ? o->id : ""),
                  "type", "message", "role", "assistant", "model",
                  model ? model : (o && o->model ? o->model : ""), "content", content,
                  "stop_reason", tg_xlat_stop_from_openai(tg_xj_str(choice, "finish_reason")),
                  "stop_sequence", "usage", tg_xlat_anthropic_usage_json(&u));
    if (usage)
        *usage = u;
    tg_xj_dump(out, doc);
    return 0;
}
