/*
 * gemini.c — Google's Gemini (generativelanguage) dialect: its auth header,
 * usage from usageMetadata, and the OpenAI -> Gemini direction on Gemini's
 * native API (a Chat Completions request becomes a generateContent request;
 * a GenerateContentResponse becomes a chat.completion). The stream half is
 * gemini_stream.c. Mapping tables: docs/dialects.md. Pure; any thread.
 *
 * Gemini names no tool-call ids: the answer's calls get
 * "call_<answer id>_<n>", and a later `tool` message finds its function
 * name again through the assistant message that made the call. Gemini 3's
 * thought signatures ride along as tool_calls[].extra_content.google.
 * thought_signature, the field Google's own OpenAI endpoint uses.
 */
#include "providers/provider.h"

#include "core/jsonscan.h"
#include "core/urlpath.h"
#include "providers/translate_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- usage ---- */

bool tg_gemini_usage(json_t *u, tg_usage_t *usage)
{
    if (!json_is_object(u))
        return false;
    long prompt = tg_xj_count(u, "promptTokenCount");
    long tool_prompt = tg_xj_count(u, "toolUsePromptTokenCount");
    long cand = tg_xj_count(u, "candidatesTokenCount");
    long thoughts = tg_xj_count(u, "thoughtsTokenCount");
    long cached = tg_xj_count(u, "cachedContentTokenCount");
    if (prompt >= 0) {
        usage->prompt_tokens = prompt + (tool_prompt > 0 ? tool_prompt : 0);
        /* Gemini leaves out the counts that are zero. */
        usage->cached_tokens = cached > 0 ? cached : 0;
        usage->reasoning_tokens = thoughts > 0 ? thoughts : 0;
    }
    if (cand >= 0 || thoughts >= 0) /* candidates exclude thoughts */
        usage->completion_tokens = (cand > 0 ? cand : 0) + (thoughts > 0 ? thoughts : 0);
    return true;
}

/* "usageMetadata" of one GenerateContentResponse (an answer, or an event of
 * a stream: each carries the counts so far), read with a tree of that
 * member only. */
static bool gemini_event_usage(const char *data, size_t len, tg_usage_t *usage)
{
    size_t a, b;
    if (!tg_json_member(data, len, "usageMetadata", &a, &b) || data[a] != '{')
        return false;
    json_t *u = json_loadb(data + a, b - a, 0, NULL);
    bool ok = tg_gemini_usage(u, usage);
    json_decref(u);
    return ok;
}

/* An answer, or the JSON array streamGenerateContent sends without
 * alt=sse, whose last element has the final counts. */
static void gemini_answer_usage(const char *doc, size_t len, tg_usage_t *usage)
{
    size_t i = 0;
    while (i < len && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == '\t'))
        i++;
    if (i == len || doc[i] != '[') {
        gemini_event_usage(doc, len, usage);
        return;
    }
    json_t *arr = json_loadb(doc, len, 0, NULL);
    size_t n = json_array_size(arr);
    if (n)
        tg_gemini_usage(json_object_get(json_array_get(arr, n - 1), "usageMetadata"), usage);
    json_decref(arr);
}

const tg_dialect_t tg_dialect_gemini = {
    .name = "gemini",
    .answer_usage = gemini_answer_usage,
    .event_usage = gemini_event_usage,
};

/* ---- request: OpenAI -> Gemini ---- */

typedef struct {
    char *err;
    size_t errlen;
    json_t *names; /* tool_call_id -> function name, from assistant messages */
    bool gemini3;  /* the model validates thought signatures */
} gctx_t;

static const char *mime_from_url(const char *url, const char *dflt)
{
    static const struct {
        const char *ext, *mime;
    } t[] = {
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".heic", "image/heic"},
        {".pdf", "application/pdf"},
        {".mp3", "audio/mp3"},
        {".wav", "audio/wav"},
        {".mp4", "video/mp4"},
        {NULL, NULL},
    };
    size_t n = strcspn(url, "?#");
    for (int i = 0; t[i].ext; i++) {
        size_t k = strlen(t[i].ext);
        if (n >= k && !strncasecmp(url + n - k, t[i].ext, k))
            return t[i].mime;
    }
    return dflt;
}

static json_t *media_part(const char *url, const char *dflt_mime)
{
    json_t *mime, *data;
    if (tg_xj_data_uri(url, &mime, &data))
        return json_pack("{s:{s:o,s:o}}", "inlineData", "mimeType", mime, "data", data);
    return json_pack("{s:{s:s,s:s}}", "fileData", "mimeType", mime_from_url(url, dflt_mime),
                     "fileUri", url);
}

static json_t *audio_part(json_t *part)
{
    json_t *a = json_object_get(part, "input_audio");
    const char *data = tg_xj_str(a, "data"), *fmt = tg_xj_str(a, "format");
    if (!data || !fmt || strlen(fmt) > 16)
        return NULL;
    char mime[32];
    snprintf(mime, sizeof mime, "audio/%s", fmt);
    return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", data);
}

static int part_out(json_t *part, json_t *parts, gctx_t *g)
{
    const char *type = tg_xj_str(part, "type");
    json_t *p = NULL;
    if (!type)
        return tg_xerr(g->err, g->errlen, "a content part has no type");
    if (!strcmp(type, "text") || !strcmp(type, "refusal")) {
        json_t *text = json_object_get(part, type);
        if (!json_is_string(text))
            return tg_xerr(g->err, g->errlen, "a %s part has no string '%s'", type, type);
        if (json_string_length(text) == 0)
            return 0;
        p = json_pack("{s:O}", "text", text);
    } else if (!strcmp(type, "image_url")) {
        json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : tg_xj_str(iu, "url");
        p = url ? media_part(url, "image/jpeg") : NULL;
    } else if (!strcmp(type, "file")) {
        const char *fd = tg_xj_str(json_object_get(part, "file"), "file_data");
        p = fd ? media_part(fd, "application/pdf") : NULL;
    } else if (!strcmp(type, "input_audio")) {
        p = audio_part(part);
    } else {
        return tg_xerr(g->err, g->errlen, "content part type '%s' is not supported by Gemini",
                       type);
    }
    if (!p)
        return tg_xerr(g->err, g->errlen, "a '%s' part is malformed", type);
    json_array_append_new(parts, p);
    return 0;
}

static int content_out(json_t *content, json_t *parts, gctx_t *g)
{
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(parts, json_pack("{s:O}", "text", content));
        return 0;
    }
    if (!content || json_is_null(content))
        return 0;
    if (!json_is_array(content))
        return tg_xerr(g->err, g->errlen, "message content must be a string or an array");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        if (part_out(part, parts, g) < 0)
            return -1;
    }
    return 0;
}

static int calls_out(json_t *calls, json_t *parts, gctx_t *g)
{
    size_t i;
    json_t *c;
    bool first = true;
    json_array_foreach(calls, i, c)
    {
        json_t *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        if (!json_is_string(name))
            return tg_xerr(g->err, g->errlen, "a tool call needs a function.name");
        json_t *input = tg_xj_call_input(args);
        if (!input)
            return tg_xerr(g->err, g->errlen, "tool call '%s': arguments are not a JSON object",
                           json_string_value(name));
        json_t *p = json_pack("{s:{s:O,s:o}}", "functionCall", "name", name, "args", input);
        json_t *sig = json_object_get(
            json_object_get(json_object_get(c, "extra_content"), "google"), "thought_signature");
        if (json_is_string(sig))
            json_object_set(p, "thoughtSignature", sig);
        else if (first && g->gemini3) /* Google's documented escape for foreign histories */
            json_object_set_new(p, "thoughtSignature",
                                json_string("skip_thought_signature_validator"));
        first = false;
        if (json_is_string(json_object_get(c, "id")))
            json_object_set(g->names, tg_xj_str(c, "id"), name);
        json_array_append_new(parts, p);
    }
    return 0;
}

/* A tool message: a functionResponse part. Gemini wants an object; a result
 * that is not a JSON object is wrapped as {"result": ...}. */
static int tool_response_out(json_t *m, json_t *parts, gctx_t *g)
{
    const char *id = tg_xj_str(m, "tool_call_id");
    json_t *name = id ? json_object_get(g->names, id) : NULL;
    if (!name)
        name = json_object_get(m, "name");
    if (!json_is_string(name))
        return tg_xerr(g->err, g->errlen,
                       "tool message '%s' answers no tool call of an earlier assistant message",
                       id ? id : "");
    tg_buf_t text = {0};
    tg_xj_content_text(json_object_get(m, "content"), &text);
    json_t *v = text.len ? json_loadb(text.data, text.len, 0, NULL) : NULL;
    json_t *resp = json_is_object(v)
                       ? json_incref(v)
                       : json_pack("{s:o}", "result", v ? json_incref(v) : tg_xj_buf_string(&text));
    json_decref(v);
    tg_buf_free(&text);
    json_array_append_new(
        parts, json_pack("{s:{s:O,s:o}}", "functionResponse", "name", name, "response", resp));
    return 0;
}

static int message_out(json_t *m, json_t *system, json_t *contents, gctx_t *g)
{
    const char *role = tg_xj_str(m, "role");
    json_t *content = json_object_get(m, "content");
    if (!role)
        return tg_xerr(g->err, g->errlen, "a message has no role");
    if (!strcmp(role, "system") || !strcmp(role, "developer"))
        return content_out(content, system, g);
    json_t *parts = json_array();
    int rc;
    const char *grole = "user";
    if (!strcmp(role, "user")) {
        rc = content_out(content, parts, g);
    } else if (!strcmp(role, "assistant")) {
        grole = "model";
        rc = content_out(content, parts, g);
        if (rc == 0)
            rc = calls_out(json_object_get(m, "tool_calls"), parts, g);
    } else if (!strcmp(role, "tool")) {
        rc = tool_response_out(m, parts, g);
    } else {
        rc = tg_xerr(g->err, g->errlen, "message role '%s' is not supported by Gemini", role);
    }
    if (rc < 0) {
        json_decref(parts);
        return -1;
    }
    tg_xj_push_turn(contents, grole, "parts", parts);
    return 0;
}

static int contents_out(json_t *req, json_t *body, gctx_t *g)
{
    json_t *in = json_object_get(req, "messages");
    if (!json_is_array(in))
        return tg_xerr(g->err, g->errlen, "'messages' must be an array");
    json_t *system = json_array(), *contents = json_array();
    json_object_set_new(body, "contents", contents);
    size_t i;
    json_t *m;
    json_array_foreach(in, i, m)
    {
        if (message_out(m, system, contents, g) < 0) {
            json_decref(system);
            return -1;
        }
    }
    if (json_array_size(system))
        json_object_set_new(body, "systemInstruction", json_pack("{s:o}", "parts", system));
    else
        json_decref(system);
    return 0;
}

static void response_format_out(json_t *req, json_t *gc)
{
    json_t *rf = json_object_get(req, "response_format");
    if (tg_xj_is(rf, "type", "json_object")) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
    } else if (tg_xj_is(rf, "type", "json_schema")) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        tg_xj_copy(gc, "responseJsonSchema", json_object_get(rf, "json_schema"), "schema");
    }
}

static void generation_config_out(json_t *req, json_t *body)
{
    json_t *gc = json_object();
    json_t *mt = json_object_get(req, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(req, "max_tokens");
    if (json_is_integer(mt))
        json_object_set(gc, "maxOutputTokens", mt);
    tg_xj_copy(gc, "temperature", req, "temperature");
    tg_xj_copy(gc, "topP", req, "top_p");
    tg_xj_copy(gc, "topK", req, "top_k");
    tg_xj_copy(gc, "candidateCount", req, "n");
    tg_xj_copy(gc, "presencePenalty", req, "presence_penalty");
    tg_xj_copy(gc, "frequencyPenalty", req, "frequency_penalty");
    tg_xj_copy(gc, "seed", req, "seed");
    json_t *stop = json_object_get(req, "stop");
    if (json_is_string(stop))
        json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop))
        json_object_set(gc, "stopSequences", stop);
    response_format_out(req, gc);
    if (json_object_size(gc))
        json_object_set_new(body, "generationConfig", gc);
    else
        json_decref(gc);
}

static int tools_out(json_t *req, json_t *body, gctx_t *g)
{
    json_t *tools = json_object_get(req, "tools");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return 0;
    json_t *decls = json_array();
    json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        json_t *name = json_object_get(fn, "name");
        if (!tg_xj_is(t, "type", "function") || !json_is_string(name))
            return tg_xerr(g->err, g->errlen, "only function tools with a name are supported");
        json_t *d = json_pack("{s:O}", "name", name);
        tg_xj_copy(d, "description", fn, "description");
        /* JSON Schema as the client wrote it; `parameters` takes only
         * Gemini's OpenAPI subset. */
        tg_xj_copy(d, "parametersJsonSchema", fn, "parameters");
        json_array_append_new(decls, d);
    }
    return 0;
}

static int tool_config_out(json_t *req, json_t *body, gctx_t *g)
{
    json_t *tc = json_object_get(req, "tool_choice");
    if (!tc || json_is_null(tc) || !json_object_get(body, "tools"))
        return 0;
    const char *s = json_string_value(tc);
    json_t *fcc;
    if (s && !strcmp(s, "auto"))
        fcc = json_pack("{s:s}", "mode", "AUTO");
    else if (s && !strcmp(s, "none"))
        fcc = json_pack("{s:s}", "mode", "NONE");
    else if (s && !strcmp(s, "required"))
        fcc = json_pack("{s:s}", "mode", "ANY");
    else if (tg_xj_is(tc, "type", "function") && tg_xj_str(json_object_get(tc, "function"), "name"))
        fcc = json_pack("{s:s,s:[O]}", "mode", "ANY", "allowedFunctionNames",
                        json_object_get(json_object_get(tc, "function"), "name"));
    else
        return tg_xerr(g->err, g->errlen, "unsupported tool_choice");
    json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
    return 0;
}

char *tg_gemini_model_path(const char *model, const char *action)
{
    if (!strncmp(model, "models/", 7))
        model += 7;
    tg_buf_t b = {0};
    tg_buf_puts(&b, "/models/");
    tg_urlpath_put_segment(&b, model, strlen(model));
    tg_buf_puts(&b, ":");
    tg_buf_puts(&b, action);
    return b.data;
}

int tg_gemini_request_from_openai(json_t *req, const char *model, tg_translate_req_t *out,
                                  char *err, size_t errlen)
{
    const char *bare = strncmp(model, "models/", 7) ? model : model + 7;
    gctx_t g = {err, errlen, json_object(), !strncmp(bare, "gemini-3", 8)};
    json_t *body = json_object();
    out->body = body;
    int rc = contents_out(req, body, &g);
    if (rc == 0)
        generation_config_out(req, body);
    if (rc == 0)
        rc = tools_out(req, body, &g);
    if (rc == 0)
        rc = tool_config_out(req, body, &g);
    json_decref(g.names);
    if (rc < 0)
        return -1;
    out->stream = json_is_true(json_object_get(req, "stream"));
    out->include_usage =
        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    out->path =
        tg_gemini_model_path(model, out->stream ? "streamGenerateContent" : "generateContent");
    out->query = out->stream ? "alt=sse" : NULL;
    return 0;
}

/* ---- response: GenerateContentResponse -> chat.completion ---- */

json_t *tg_gemini_tool_call(json_t *part, const char *answer_id, long n)
{
    json_t *fc = json_object_get(part, "functionCall");
    json_t *args = json_object_get(fc, "args");
    char *a = args ? json_dumps(args, TG_TRANSLATE_DUMP_FLAGS | JSON_ENCODE_ANY) : NULL;
    char id[160];
    const char *gid = tg_xj_str(fc, "id");
    if (gid && *gid && strlen(gid) < sizeof id) {
        snprintf(id, sizeof id, "%s", gid);
    } else { /* only id-safe characters of the answer id */
        size_t k = 0;
        k += (size_t)snprintf(id, sizeof id, "call_");
        for (const char *q = answer_id; *q && k < 100; q++)
            if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                *q == '-' || *q == '_')
                id[k++] = *q;
        snprintf(id + k, sizeof id - k, "_%ld", n);
    }
    json_t *c = json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type", "function", "function", "name",
                          json_object_get(fc, "name"), "arguments", a ? a : "{}");
    free(a);
    json_t *sig = json_object_get(part, "thoughtSignature");
    if (c && json_is_string(sig))
        json_object_set_new(c, "extra_content",
                            json_pack("{s:{s:O}}", "google", "thought_signature", sig));
    return c;
}

static json_t *choice_json(json_t *cand, size_t index, const char *answer_id, long *n_calls)
{
    tg_buf_t text = {0}, thought = {0};
    json_t *calls = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t))
            tg_buf_append(json_is_true(json_object_get(p, "thought")) ? &thought : &text,
                          json_string_value(t), json_string_length(t));
        else if (tg_xj_str(json_object_get(p, "functionCall"), "name"))
            json_array_append_new(calls, tg_gemini_tool_call(p, answer_id, (*n_calls)++));
    }
    bool has_calls = json_array_size(calls) > 0;
    json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content",
                          text.len || !has_calls ? tg_xj_buf_string(&text) : json_null());
    if (thought.len)
        json_object_set_new(m, "reasoning_content", tg_xj_buf_string(&thought));
    if (has_calls)
        json_object_set(m, "tool_calls", calls);
    json_decref(calls);
    tg_buf_free(&text);
    tg_buf_free(&thought);
    long idx = tg_xj_count(cand, "index");
    return json_pack("{s:I,s:o,s:s,s:n}", "index", (json_int_t)(idx >= 0 ? idx : (long)index),
                     "message", m, "finish_reason",
                     tg_xlat_finish_from_gemini(tg_xj_str(cand, "finishReason"), has_calls),
                     "logprobs");
}

int tg_gemini_response_to_openai(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                 tg_usage_t *usage)
{
    json_t *cands = json_object_get(resp, "candidates");
    if (!json_is_array(cands) && !json_object_get(resp, "promptFeedback") &&
        !json_object_get(resp, "usageMetadata"))
        return -1;
    const char *id = tg_xj_str(resp, "responseId");
    if (!id)
        id = o && o->id ? o->id : "chatcmpl-tollgate";
    const char *model = tg_xj_str(resp, "modelVersion");
    json_t *choices = json_array();
    size_t i;
    json_t *c;
    long n_calls = 0;
    json_array_foreach(cands, i, c) json_array_append_new(choices, choice_json(c, i, id, &n_calls));
    if (json_array_size(choices) == 0) /* the prompt itself was blocked */
        json_array_append_new(choices, json_pack("{s:i,s:{s:s,s:s},s:s,s:n}", "index", 0, "message",
                                                 "role", "assistant", "content", "",
                                                 "finish_reason", "content_filter", "logprobs"));
    tg_usage_t u = TG_USAGE_UNKNOWN;
    tg_gemini_usage(json_object_get(resp, "usageMetadata"), &u);
    json_t *doc = json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", id, "object", "chat.completion",
                            "created", (json_int_t)(o ? o->created : 0), "model",
                            model ? model : (o && o->model ? o->model : ""), "choices", choices);
    json_t *uj = tg_xlat_openai_usage_json(&u);
    if (uj)
        json_object_set_new(doc, "usage", uj);
    if (usage)
        *usage = u;
    tg_xj_dump(out, doc);
    return 0;
}
