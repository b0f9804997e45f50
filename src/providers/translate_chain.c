/*
 * translate_chain.c — Anthropic Messages clients on Gemini providers, by
 * composing the two directions that exist: Messages -> Chat Completions ->
 * generateContent for the request, and back through Chat Completions for
 * the answer and the stream. The stream state holds the two inner streams
 * and an SSE parser for the OpenAI chunks between them; nothing of the
 * content is kept. Pure; a stream belongs to one thread.
 */
#include "providers/translate_internal.h"

#include "core/sse.h"

#include <stdlib.h>
#include <string.h>

/* Anthropic's `thinking` as Gemini's thinkingConfig (Chat Completions has
 * no budget to carry it through): a budget as thinkingBudget, adaptive as
 * -1 (the model decides); thoughts included, so they come back as thinking
 * blocks. Disabled, or absent: the model's default. */
static void thinking_out(json_t *req, json_t *body)
{
    json_t *th = json_object_get(req, "thinking");
    long budget = tg_xj_count(th, "budget_tokens");
    if (tg_xj_is(th, "type", "adaptive"))
        budget = -1;
    else if (!tg_xj_is(th, "type", "enabled") || budget < 0)
        return;
    json_t *gc = json_object_get(body, "generationConfig");
    if (!json_is_object(gc)) {
        gc = json_object();
        json_object_set_new(body, "generationConfig", gc);
    }
    json_object_set_new(
        gc, "thinkingConfig",
        json_pack("{s:I,s:b}", "thinkingBudget", (json_int_t)budget, "includeThoughts", 1));
}

int tg_xchain_request(json_t *req, const char *model, tg_translate_req_t *out, char *err,
                      size_t errlen)
{
    tg_translate_req_t mid = {0};
    if (tg_openai_request_from_anthropic_for_gemini(req, model, &mid, err, errlen) < 0) {
        tg_translate_req_free(&mid);
        return -1;
    }
    int rc = tg_gemini_request_from_openai(mid.body, model, out, err, errlen);
    if (rc == 0) {
        thinking_out(req, out->body);
        out->prompt_estimate = mid.prompt_estimate;
    }
    tg_translate_req_free(&mid);
    return rc;
}

int tg_xchain_response(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out, tg_usage_t *usage)
{
    tg_buf_t mid = {0};
    tg_usage_t u = TG_USAGE_UNKNOWN;
    int rc = tg_gemini_response_to_openai(resp, o, &mid, &u);
    json_t *doc = rc == 0 ? json_loadb(mid.data, mid.len, 0, NULL) : NULL;
    rc = json_is_object(doc) ? tg_openai_response_to_anthropic(doc, o, out, NULL) : -1;
    json_decref(doc);
    tg_buf_free(&mid);
    if (rc == 0 && usage)
        *usage = u; /* Gemini's own counts: they say more than the OpenAI form */
    return rc;
}

typedef struct {
    tg_translate_stream_t base;
    tg_translate_stream_t *inner; /* Gemini events -> OpenAI chunks */
    tg_translate_stream_t *outer; /* OpenAI chunks -> Anthropic events */
    tg_sse_parser_t chunks;       /* the inner stream's output */
    tg_buf_t mid;
    tg_buf_t *out; /* during a feed */
} chain_t;

static void init(tg_translate_stream_t *s)
{
    chain_t *c = (chain_t *)s;
    tg_translate_opts_t o = {s->id, s->created, s->model, true, s->prompt_estimate};
    c->inner = tg_xstream_new(&tg_xstream_gemini_to_openai, &o);
    c->outer = tg_xstream_new(&tg_xstream_openai_to_anthropic, &o);
}

static int on_chunk(void *arg, const char *event, const char *data, size_t len)
{
    chain_t *c = arg;
    tg_translate_stream_feed(c->outer, event, data, len, c->out);
    return 0;
}

/* Pass what the inner stream wrote on to the outer one. */
static void relay(chain_t *c, tg_buf_t *out)
{
    c->out = out;
    /* Gemini counts the prompt in its first event: better than the estimate
     * for the message_start the outer stream is about to send. */
    if (c->inner->usage.prompt_tokens > 0)
        c->outer->prompt_estimate = c->inner->usage.prompt_tokens;
    if (c->mid.len)
        tg_sse_feed(&c->chunks, c->mid.data, c->mid.len, on_chunk, c);
    tg_buf_reset(&c->mid);
    tg_translate_stream_usage(c->inner, &c->base.usage);
    c->base.done = c->outer->done;
    const char *e = c->outer->error ? c->outer->error : c->inner->error;
    if (e && !c->base.error)
        c->base.error = tg_xstrdup(e);
}

static void feed(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out)
{
    chain_t *c = (chain_t *)s;
    char *data = json_dumps(doc, JSON_COMPACT);
    if (data)
        tg_translate_stream_feed(c->inner, event, data, strlen(data), &c->mid);
    free(data);
    relay(c, out);
}

static void finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    chain_t *c = (chain_t *)s;
    tg_translate_stream_finish(c->inner, &c->mid);
    relay(c, out);
    tg_translate_stream_finish(c->outer, out);
}

static bool ended(const tg_translate_stream_t *s)
{
    const chain_t *c = (const chain_t *)s;
    return s->done || tg_translate_stream_ended(c->inner);
}

static void destroy(tg_translate_stream_t *s)
{
    chain_t *c = (chain_t *)s;
    tg_translate_stream_free(c->inner);
    tg_translate_stream_free(c->outer);
    tg_sse_free(&c->chunks);
    tg_buf_free(&c->mid);
}

const tg_xstream_ops_t tg_xstream_anthropic_to_gemini = {
    .size = sizeof(chain_t),
    .init = init,
    .feed = feed,
    .finish = finish,
    .destroy = destroy,
    .ended = ended,
};
