/*
 * translate_chain.c — directions made of two others, through Chat
 * Completions: Anthropic Messages clients on Gemini providers (Messages ->
 * Chat -> generateContent, and back), and Responses clients on Anthropic
 * and Gemini providers (Responses -> Chat -> Messages or generateContent,
 * and back). The stream state holds the two inner streams and an SSE parser
 * for the OpenAI chunks between them. Pure; a stream belongs to one thread.
 */
#include "providers/translate_internal.h"

#include "core/sse.h"

#include <stdlib.h>
#include <string.h>

typedef int (*req_fn)(json_t *req, const char *model, tg_translate_req_t *out, char *err,
                      size_t errlen);
typedef int (*resp_fn)(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                       tg_usage_t *usage);

static int chain_request(req_fn first, req_fn second, json_t *req, const char *model,
                         tg_translate_req_t *out, char *err, size_t errlen)
{
    tg_translate_req_t mid = {0};
    if (first(req, model, &mid, err, errlen) < 0) {
        tg_translate_req_free(&mid);
        return -1;
    }
    int rc = second(mid.body, model, out, err, errlen);
    out->include_usage = out->include_usage || mid.include_usage;
    if (!out->prompt_estimate)
        out->prompt_estimate = mid.prompt_estimate;
    tg_translate_req_free(&mid);
    return rc;
}

/* provider answer -first-> chat.completion -second-> the client's answer.
 * The usage is the provider's own counts: they say more than the OpenAI
 * form (cache writes). */
static int chain_response(resp_fn first, resp_fn second, json_t *resp, const tg_translate_opts_t *o,
                          tg_buf_t *out, tg_usage_t *usage)
{
    tg_buf_t mid = {0};
    tg_usage_t u = TG_USAGE_UNKNOWN;
    int rc = first(resp, o, &mid, &u);
    json_t *doc = rc == 0 ? json_loadb(mid.data, mid.len, 0, NULL) : NULL;
    rc = json_is_object(doc) ? second(doc, o, out, NULL) : -1;
    json_decref(doc);
    tg_buf_free(&mid);
    if (rc == 0 && usage)
        *usage = u;
    return rc;
}

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
    int rc = chain_request(tg_openai_request_from_anthropic_for_gemini,
                           tg_gemini_request_from_openai, req, model, out, err, errlen);
    if (rc == 0)
        thinking_out(req, out->body);
    return rc;
}

int tg_xchain_response(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out, tg_usage_t *usage)
{
    return chain_response(tg_gemini_response_to_openai, tg_openai_response_to_anthropic, resp, o,
                          out, usage);
}

int tg_xchain_responses_to_anthropic_request(json_t *req, const char *model,
                                             tg_translate_req_t *out, char *err, size_t errlen)
{
    return chain_request(tg_chat_request_from_responses, tg_anthropic_request_from_openai, req,
                         model, out, err, errlen);
}

int tg_xchain_responses_to_gemini_request(json_t *req, const char *model, tg_translate_req_t *out,
                                          char *err, size_t errlen)
{
    return chain_request(tg_chat_request_from_responses, tg_gemini_request_from_openai, req, model,
                         out, err, errlen);
}

int tg_xchain_anthropic_to_responses(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                     tg_usage_t *usage)
{
    return chain_response(tg_anthropic_response_to_openai, tg_responses_from_chat, resp, o, out,
                          usage);
}

int tg_xchain_gemini_to_responses(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                  tg_usage_t *usage)
{
    return chain_response(tg_gemini_response_to_openai, tg_responses_from_chat, resp, o, out,
                          usage);
}

typedef struct {
    tg_translate_stream_t base;
    tg_translate_stream_t *inner; /* Gemini events -> OpenAI chunks */
    tg_translate_stream_t *outer; /* OpenAI chunks -> Anthropic events */
    tg_sse_parser_t chunks;       /* the inner stream's output */
    tg_buf_t mid;
    tg_buf_t *out; /* during a feed */
} chain_t;

static void init_with(tg_translate_stream_t *s, const tg_xstream_ops_t *inner,
                      const tg_xstream_ops_t *outer)
{
    chain_t *c = (chain_t *)s;
    tg_translate_opts_t o = {s->id, s->created, s->model, true, s->prompt_estimate};
    c->inner = tg_xstream_new(inner, &o);
    c->outer = tg_xstream_new(outer, &o);
}

static void init_anthropic_to_gemini(tg_translate_stream_t *s)
{
    init_with(s, &tg_xstream_gemini_to_openai, &tg_xstream_openai_to_anthropic);
}

static void init_responses_to_anthropic(tg_translate_stream_t *s)
{
    init_with(s, &tg_xstream_anthropic_to_openai, &tg_xstream_chat_to_responses);
}

static void init_responses_to_gemini(tg_translate_stream_t *s)
{
    init_with(s, &tg_xstream_gemini_to_openai, &tg_xstream_chat_to_responses);
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
    c->base.seq = c->outer->seq;
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
    .init = init_anthropic_to_gemini,
    .feed = feed,
    .finish = finish,
    .destroy = destroy,
    .ended = ended,
};

const tg_xstream_ops_t tg_xstream_responses_to_anthropic = {
    .size = sizeof(chain_t),
    .init = init_responses_to_anthropic,
    .feed = feed,
    .finish = finish,
    .destroy = destroy,
    .ended = ended,
};

const tg_xstream_ops_t tg_xstream_responses_to_gemini = {
    .size = sizeof(chain_t),
    .init = init_responses_to_gemini,
    .feed = feed,
    .finish = finish,
    .destroy = destroy,
    .ended = ended,
};
