/*
 * gemini_stream.c — a Gemini streamGenerateContent (alt=sse) stream, event
 * by event, as an OpenAI chat.completion.chunk stream. Every Gemini event is
 * a partial GenerateContentResponse: its text parts become content deltas,
 * thought parts reasoning_content, a functionCall (always whole) one
 * tool_calls delta, a finishReason the finish chunk of that candidate; the
 * latest usageMetadata is the usage. The stream has no end marker: finish
 * writes the usage chunk (when asked) and [DONE]; the stream counts as
 * ended (tg_translate_stream_ended) once every candidate begun has its
 * finishReason.
 *
 * State: a few scalars per candidate, for at most TG_XLAT_MAX_CHOICES
 * candidates (Gemini's candidateCount limit); others are ignored.
 */
#include "providers/translate_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    bool started;  /* role chunk sent */
    bool finished; /* finish chunk sent */
    long n_calls;  /* tool calls of this candidate: their OpenAI index */
} cand_t;

typedef struct {
    tg_translate_stream_t base;
    cand_t cand[TG_XLAT_MAX_CHOICES];
    long n_calls; /* tool calls so far, for their ids */
    bool any;     /* some chunk went out */
} gstate_t;

static void emit(gstate_t *g, size_t i, json_t *delta, const char *finish, tg_buf_t *out)
{
    cand_t *c = &g->cand[i];
    if (!c->started) {
        c->started = true;
        g->any = true;
        json_t *d = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
        tg_xlat_emit(out, tg_xlat_chunk_choice(&g->base, i, d, NULL));
    }
    tg_xlat_emit(out, tg_xlat_chunk_choice(&g->base, i, delta, finish));
}

static void part(gstate_t *g, size_t i, json_t *p, tg_buf_t *out)
{
    json_t *t = json_object_get(p, "text");
    if (json_is_string(t) && json_string_length(t)) {
        const char *key =
            json_is_true(json_object_get(p, "thought")) ? "reasoning_content" : "content";
        emit(g, i, json_pack("{s:O}", key, t), NULL, out);
    } else if (tg_xj_str(json_object_get(p, "functionCall"), "name")) {
        json_t *call = tg_gemini_tool_call(p, g->base.id, g->n_calls++);
        if (!call)
            return;
        /* OpenAI numbers the calls of each choice from 0, index first */
        json_t *entry = json_pack("{s:I}", "index", (json_int_t)g->cand[i].n_calls++);
        json_object_update(entry, call);
        json_decref(call);
        emit(g, i, json_pack("{s:[o]}", "tool_calls", entry), NULL, out);
    }
}

static void candidate(gstate_t *g, json_t *cand, size_t pos, tg_buf_t *out)
{
    long idx = tg_xj_count(cand, "index");
    size_t i = idx >= 0 ? (size_t)idx : pos;
    if (i >= TG_XLAT_MAX_CHOICES || g->cand[i].finished)
        return;
    size_t k;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), k, p)
        part(g, i, p, out);
    const char *fr = tg_xj_str(cand, "finishReason");
    if (fr && strcmp(fr, "FINISH_REASON_UNSPECIFIED") != 0) {
        emit(g, i, json_object(), tg_xlat_finish_from_gemini(fr, g->cand[i].n_calls > 0), out);
        g->cand[i].finished = true;
    }
}

static void feed(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out)
{
    gstate_t *g = (gstate_t *)s;
    (void)event;
    if (json_object_get(doc, "error")) {
        tg_xlat_openai_stream_error(s, out, doc);
        return;
    }
    tg_gemini_usage(json_object_get(doc, "usageMetadata"), &s->usage);
    tg_xstream_set_model(s, tg_xj_str(doc, "modelVersion"));
    const char *rid = tg_xj_str(doc, "responseId");
    if (rid && *rid && !g->any) {
        free(s->id);
        s->id = tg_xstrdup(rid);
    }
    json_t *cands = json_object_get(doc, "candidates");
    size_t i;
    json_t *c;
    json_array_foreach(cands, i, c) candidate(g, c, i, out);
    if (!json_array_size(cands) &&
        tg_xj_str(json_object_get(doc, "promptFeedback"), "blockReason") && !g->cand[0].finished) {
        emit(g, 0, json_object(), "content_filter", out);
        g->cand[0].finished = true;
    }
}

static void finish(tg_translate_stream_t *s, tg_buf_t *out)
{
    gstate_t *g = (gstate_t *)s;
    if (!g->any) {
        emit(g, 0, json_object(), "stop", out);
        g->cand[0].finished = true;
    }
    for (size_t i = 0; i < TG_XLAT_MAX_CHOICES; i++) {
        if (g->cand[i].started && !g->cand[i].finished) {
            emit(g, i, json_object(), g->cand[i].n_calls > 0 ? "tool_calls" : "stop", out);
            g->cand[i].finished = true;
        }
    }
    tg_xlat_openai_tail(s, out);
}

/* Gemini's stream has no end marker: it is over when every candidate that
 * began has had its finishReason (or an error came). */
static bool ended(const tg_translate_stream_t *s)
{
    const gstate_t *g = (const gstate_t *)s;
    if (s->done)
        return true;
    if (!g->any)
        return false;
    for (size_t i = 0; i < TG_XLAT_MAX_CHOICES; i++)
        if (g->cand[i].started && !g->cand[i].finished)
            return false;
    return true;
}

const tg_xstream_ops_t tg_xstream_gemini_to_openai = {
    .size = sizeof(gstate_t),
    .init = NULL,
    .feed = feed,
    .finish = finish,
    .destroy = NULL,
    .ended = ended,
};
