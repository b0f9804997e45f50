/*
 * translate_util.c — what every translation direction shares: JSON
 * helpers, usage objects, stop-reason tables, the stream base and its
 * framing (translate_util.h). Depends on nothing in providers/ but
 * translate.h, so the direction files and the table (translate.c) both sit
 * above it. Pure; any thread.
 *
 * Invariants: a translation appends to `out` only when it succeeds; a
 * stream state never grows with the stream (tool arguments and text are
 * passed on as they come, not collected).
 */
#include "providers/translate_util.h"

#include "core/sse.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON helpers ---- */

const char *tg_xj_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

bool tg_xj_is(json_t *o, const char *key, const char *v)
{
    const char *s = tg_xj_str(o, key);
    return s && !strcmp(s, v);
}

void tg_xj_push_turn(json_t *list, const char *role, const char *field, json_t *items)
{
    if (json_array_size(items) == 0) {
        json_decref(items);
        return;
    }
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    if (last && tg_xj_is(last, "role", role)) {
        json_array_extend(json_object_get(last, field), items);
        json_decref(items);
        return;
    }
    json_array_append_new(list, json_pack("{s:s,s:o}", "role", role, field, items));
}

long tg_xj_count(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    /* Capped so that sums of a few counts cannot overflow. */
    json_int_t n = json_integer_value(v);
    return n > (json_int_t)(LONG_MAX / 16) ? LONG_MAX / 16 : (long)n;
}

void tg_xj_copy(json_t *dst, const char *to_key, json_t *src, const char *from_key)
{
    json_t *v = json_object_get(src, from_key);
    if (v && !json_is_null(v))
        json_object_set(dst, to_key, v);
}

void tg_xj_dump(tg_buf_t *out, json_t *doc)
{
    char *s = json_dumps(doc, TG_TRANSLATE_DUMP_FLAGS);
    if (s) {
        tg_buf_puts(out, s);
        free(s);
    }
    json_decref(doc);
}

json_t *tg_xj_buf_string(const tg_buf_t *b)
{
    json_t *s = json_stringn(b->data ? b->data : "", b->len);
    return s ? s : json_string("");
}

json_t *tg_xj_parse_args(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i == len)
        return json_object();
    json_t *v = json_loadb(s, len, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *tg_xj_call_input(json_t *args)
{
    if (json_is_string(args))
        return tg_xj_parse_args(json_string_value(args), json_string_length(args));
    return json_is_object(args) ? json_incref(args) : json_object();
}

int tg_xerr(char *err, size_t n, const char *fmt, ...)
{
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void tg_xj_content_text(json_t *content, tg_buf_t *b)
{
    if (json_is_string(content)) {
        tg_buf_append(b, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            tg_buf_append(b, json_string_value(t), json_string_length(t));
    }
}

bool tg_xj_data_uri(const char *url, json_t **mime, json_t **data)
{
    if (!url || strncmp(url, "data:", 5) != 0)
        return false;
    const char *semi = strstr(url + 5, ";base64,");
    const char *comma = strchr(url + 5, ',');
    if (!semi || !comma || comma < semi)
        return false;
    *mime = json_stringn(url + 5, (size_t)(semi - (url + 5)));
    *data = json_string(semi + 8);
    if (!*mime || !*data) {
        json_decref(*mime);
        json_decref(*data);
        return false;
    }
    return true;
}

/* ---- usage ---- */

static long known(long v)
{
    return v < 0 ? 0 : v;
}

json_t *tg_xlat_openai_usage_json(const tg_usage_t *u)
{
    if (u->prompt_tokens < 0 && u->completion_tokens < 0)
        return NULL;
    long p = known(u->prompt_tokens), c = known(u->completion_tokens);
    json_t *j = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)p, "completion_tokens",
                          (json_int_t)c, "total_tokens", (json_int_t)(p + c));
    if (u->cached_tokens >= 0)
        json_object_set_new(j, "prompt_tokens_details",
                            json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached_tokens));
    if (u->reasoning_tokens >= 0)
        json_object_set_new(
            j, "completion_tokens_details",
            json_pack("{s:I}", "reasoning_tokens", (json_int_t)u->reasoning_tokens));
    /* OpenAI has no field for prompt-cache writes; Anthropic's name for it
     * is the one OpenAI-SDK users of Claude already know. */
    if (u->cache_write_tokens > 0)
        json_object_set_new(j, "cache_creation_input_tokens", json_integer(u->cache_write_tokens));
    return j;
}

json_t *tg_xlat_anthropic_usage_json(const tg_usage_t *u)
{
    long cached = known(u->cached_tokens), written = known(u->cache_write_tokens);
    long input = known(u->prompt_tokens) - cached - written;
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)(input < 0 ? 0 : input),
                     "cache_creation_input_tokens", (json_int_t)written, "cache_read_input_tokens",
                     (json_int_t)cached, "output_tokens", (json_int_t)known(u->completion_tokens));
}

bool tg_openai_usage(json_t *u, tg_usage_t *usage)
{
    if (!json_is_object(u))
        return false;
    long p = tg_xj_count(u, "prompt_tokens"), c = tg_xj_count(u, "completion_tokens");
    if (p >= 0)
        usage->prompt_tokens = p;
    if (c >= 0)
        usage->completion_tokens = c;
    long cached = tg_xj_count(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    if (cached < 0) /* DeepSeek's name for it */
        cached = tg_xj_count(u, "prompt_cache_hit_tokens");
    if (cached >= 0)
        usage->cached_tokens = cached;
    long r = tg_xj_count(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
    if (r >= 0)
        usage->reasoning_tokens = r;
    return true;
}

/* ---- stop reasons ---- */

typedef struct {
    const char *from, *to;
} pair_t;

static const char *lookup(const pair_t *t, const char *key, const char *dflt)
{
    for (; key && t->from; t++)
        if (!strcmp(t->from, key))
            return t->to;
    return dflt;
}

const char *tg_xlat_finish_from_anthropic(const char *stop_reason)
{
    static const pair_t t[] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"model_context_window_exceeded", "length"},
        {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
        {NULL, NULL},
    };
    return lookup(t, stop_reason, "stop");
}

const char *tg_xlat_stop_from_openai(const char *finish_reason)
{
    static const pair_t t[] = {
        {"stop", "end_turn"},          {"length", "max_tokens"},      {"tool_calls", "tool_use"},
        {"function_call", "tool_use"}, {"content_filter", "refusal"}, {NULL, NULL},
    };
    return lookup(t, finish_reason, "end_turn");
}

const char *tg_xlat_finish_from_gemini(const char *finish_reason, bool had_tool_calls)
{
    static const pair_t t[] = {
        {"MAX_TOKENS", "length"},
        {"SAFETY", "content_filter"},
        {"RECITATION", "content_filter"},
        {"BLOCKLIST", "content_filter"},
        {"PROHIBITED_CONTENT", "content_filter"},
        {"SPII", "content_filter"},
        {"IMAGE_SAFETY", "content_filter"},
        {NULL, NULL},
    };
    const char *r = lookup(t, finish_reason, NULL);
    if (r)
        return r;
    return had_tool_calls ? "tool_calls" : "stop";
}

/* ---- streams ---- */

void tg_xstream_set_model(tg_translate_stream_t *s, const char *model)
{
    if (model && *model) {
        free(s->model);
        s->model = tg_xstrdup(model);
    }
}

json_t *tg_xlat_chunk(const tg_translate_stream_t *s)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:[]}", "id", s->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)s->created, "model", s->model, "choices");
}

json_t *tg_xlat_chunk_choice(const tg_translate_stream_t *s, size_t index, json_t *delta,
                             const char *finish_reason)
{
    json_t *c = tg_xlat_chunk(s);
    json_t *choice =
        json_pack("{s:I,s:o,s:o}", "index", (json_int_t)index, "delta", delta, "finish_reason",
                  finish_reason ? json_string(finish_reason) : json_null());
    json_array_append_new(json_object_get(c, "choices"), choice);
    return c;
}

long tg_xlat_call_index(json_t *call, long last)
{
    long idx = tg_xj_count(call, "index");
    const char *cid = tg_xj_str(call, "id");
    if (idx < 0) /* no index: a call with an id is a new one */
        idx = last < 0 ? 0 : last + (cid && *cid ? 1 : 0);
    return idx;
}

void tg_xlat_emit(tg_buf_t *out, json_t *doc)
{
    tg_xlat_emit_named(out, NULL, doc);
}

void tg_xlat_emit_named(tg_buf_t *out, const char *event, json_t *doc)
{
    char *s = json_dumps(doc, TG_TRANSLATE_DUMP_FLAGS);
    if (s) {
        tg_sse_write(out, event, s, strlen(s));
        free(s);
    }
    json_decref(doc);
}

void tg_xlat_openai_tail(tg_translate_stream_t *s, tg_buf_t *out)
{
    if (s->include_usage) {
        json_t *c = tg_xlat_chunk(s);
        json_t *u = tg_xlat_openai_usage_json(&s->usage);
        json_object_set_new(c, "usage", u ? u : json_null());
        tg_xlat_emit(out, c);
    }
    tg_sse_write(out, NULL, "[DONE]", 6);
    s->done = true;
}

/* ---- the generic stream entry points (translate.h), over a direction's
 * operations: the table and the chain both start streams here ---- */

void tg_translate_req_free(tg_translate_req_t *rq)
{
    json_decref(rq->body);
    free(rq->path);
    memset(rq, 0, sizeof *rq);
}

tg_translate_stream_t *tg_xstream_new(const tg_xstream_ops_t *ops, const tg_translate_opts_t *o)
{
    tg_translate_stream_t *s = tg_xcalloc(1, ops->size);
    s->ops = ops;
    s->usage = (tg_usage_t)TG_USAGE_UNKNOWN;
    s->id = tg_xstrdup(o && o->id ? o->id : "chatcmpl-tollgate");
    s->model = tg_xstrdup(o && o->model ? o->model : "");
    s->created = o ? o->created : 0;
    s->include_usage = o && o->include_usage;
    s->prompt_estimate = o ? o->prompt_estimate : 0;
    if (ops->init)
        ops->init(s);
    return s;
}

int tg_translate_stream_feed(tg_translate_stream_t *s, const char *event, const char *data,
                             size_t len, tg_buf_t *out)
{
    if (s->done)
        return 1;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        tg_translate_stream_finish(s, out);
        return 1;
    }
    json_t *doc = json_loadb(data, len, 0, NULL);
    if (json_is_object(doc))
        s->ops->feed(s, event ? event : "message", doc, out);
    json_decref(doc);
    return s->done ? 1 : 0;
}

void tg_translate_stream_finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    if (!s->done)
        s->ops->finish(s, out);
    s->done = true;
}

bool tg_translate_stream_ended(const tg_translate_stream_t *s)
{
    return s->ops->ended ? s->ops->ended(s) : s->done;
}

const char *tg_translate_stream_error(const tg_translate_stream_t *s)
{
    return s->error;
}

long tg_translate_stream_seq(const tg_translate_stream_t *s)
{
    return s->seq;
}

void tg_translate_stream_usage(const tg_translate_stream_t *s, tg_usage_t *usage)
{
    *usage = s->usage;
}

void tg_translate_stream_free(tg_translate_stream_t *s)
{
    if (!s)
        return;
    if (s->ops->destroy)
        s->ops->destroy(s);
    free(s->id);
    free(s->model);
    free(s->error);
    free(s);
}
