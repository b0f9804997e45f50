/*
 * translate.c — the translator table (which direction exists for which
 * client and provider) and the generic request/response/stream entry
 * points. The directions live in the dialect files (anthropic*.c,
 * gemini*.c, openai*.c, responses*.c, translate_chain.c), which share the
 * helpers of translate_util.c; this file sits above both, so the folder
 * has no include cycle. Pure; any thread.
 */
#include "providers/provider.h"
#include "providers/translate_internal.h"

#include <stdlib.h>
#include <string.h>

struct tg_translator {
    const char *name;
    int (*request)(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                   tg_translate_req_t *out, char *err, size_t errlen);
    int (*response)(json_t *doc, const tg_translate_opts_t *o, tg_buf_t *out, tg_usage_t *u);
    const tg_xstream_ops_t *stream;
};

/* ---- the table ---- */

static int req_openai_to_anthropic(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                   tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_anthropic_request_from_openai(req, model, out, err, errlen);
}

static int req_openai_to_gemini(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_gemini_request_from_openai(req, model, out, err, errlen);
}

static int req_anthropic_to_openai(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                   tg_translate_req_t *out, char *err, size_t errlen)
{
    return tg_openai_request_from_anthropic(req, model, ro && ro->stream_usage, out, err, errlen);
}

static int req_anthropic_to_gemini(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                   tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_xchain_request(req, model, out, err, errlen);
}

static const tg_translator_t openai_to_anthropic = {
    "openai->anthropic",
    req_openai_to_anthropic,
    tg_anthropic_response_to_openai,
    &tg_xstream_anthropic_to_openai,
};

static const tg_translator_t openai_to_gemini = {
    "openai->gemini",
    req_openai_to_gemini,
    tg_gemini_response_to_openai,
    &tg_xstream_gemini_to_openai,
};

static const tg_translator_t anthropic_to_openai = {
    "anthropic->openai",
    req_anthropic_to_openai,
    tg_openai_response_to_anthropic,
    &tg_xstream_openai_to_anthropic,
};

static const tg_translator_t anthropic_to_gemini = {
    "anthropic->gemini",
    req_anthropic_to_gemini,
    tg_xchain_response,
    &tg_xstream_anthropic_to_gemini,
};

static int req_responses_to_anthropic(json_t *req, const char *model,
                                      const tg_translate_ropts_t *ro, tg_translate_req_t *out,
                                      char *err, size_t errlen)
{
    (void)ro;
    return tg_xchain_responses_to_anthropic_request(req, model, out, err, errlen);
}

static int req_responses_to_gemini(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                   tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_xchain_responses_to_gemini_request(req, model, out, err, errlen);
}

static int req_responses_to_chat(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                 tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_chat_request_from_responses(req, model, out, err, errlen);
}

static const tg_translator_t responses_to_anthropic = {
    "responses->anthropic",
    req_responses_to_anthropic,
    tg_xchain_anthropic_to_responses,
    &tg_xstream_responses_to_anthropic,
};

static const tg_translator_t responses_to_gemini = {
    "responses->gemini",
    req_responses_to_gemini,
    tg_xchain_gemini_to_responses,
    &tg_xstream_responses_to_gemini,
};

/* Only for the mock, which answers Chat Completions: OpenAI-type providers
 * take Responses natively. */
static const tg_translator_t responses_to_chat = {
    "responses->openai",
    req_responses_to_chat,
    tg_responses_from_chat,
    &tg_xstream_chat_to_responses,
};

tg_wire_t tg_wire_of(tg_provider_type_t type)
{
    return tg_provider_rec_for_type(type)->wire;
}

bool tg_translate_native(tg_wire_t client, tg_provider_type_t type)
{
    const tg_provider_rec_t *r = tg_provider_rec_for_type(type);
    return client == r->wire ||
           (client == TG_WIRE_RESPONSES && r->wire == TG_WIRE_OPENAI && !r->local);
}

const tg_translator_t *tg_translate_for(tg_wire_t client, tg_provider_type_t type)
{
    tg_wire_t provider = tg_wire_of(type);
    if (client == TG_WIRE_RESPONSES && provider == TG_WIRE_ANTHROPIC)
        return &responses_to_anthropic;
    if (client == TG_WIRE_RESPONSES && provider == TG_WIRE_GEMINI)
        return &responses_to_gemini;
    if (client == TG_WIRE_RESPONSES && tg_provider_rec_for_type(type)->local)
        return &responses_to_chat;
    if (client == TG_WIRE_OPENAI && provider == TG_WIRE_ANTHROPIC)
        return &openai_to_anthropic;
    if (client == TG_WIRE_OPENAI && provider == TG_WIRE_GEMINI)
        return &openai_to_gemini;
    if (client == TG_WIRE_ANTHROPIC && provider == TG_WIRE_OPENAI)
        return &anthropic_to_openai;
    if (client == TG_WIRE_ANTHROPIC && provider == TG_WIRE_GEMINI)
        return &anthropic_to_gemini;
    return NULL;
}

/* OpenAI embeddings -> Gemini (embeddings.c); never a stream. */
static int req_embeddings_to_gemini(json_t *req, const char *model, const tg_translate_ropts_t *ro,
                                    tg_translate_req_t *out, char *err, size_t errlen)
{
    (void)ro;
    return tg_embeddings_request_to_gemini(req, model, out, err, errlen);
}

static const tg_translator_t embeddings_to_gemini = {
    "openai-embeddings->gemini",
    req_embeddings_to_gemini,
    tg_embeddings_response_from_gemini,
    &tg_xstream_gemini_to_openai,
};

static const tg_translator_t embeddings_to_gemini_base64 = {
    "openai-embeddings->gemini",
    req_embeddings_to_gemini,
    tg_embeddings_response_from_gemini_base64,
    &tg_xstream_gemini_to_openai,
};

const tg_translator_t *tg_translate_embeddings_for(tg_provider_type_t type, bool base64)
{
    if (tg_wire_of(type) != TG_WIRE_GEMINI)
        return NULL;
    return base64 ? &embeddings_to_gemini_base64 : &embeddings_to_gemini;
}

const char *tg_translate_name(const tg_translator_t *t)
{
    return t->name;
}

/* ---- entry points ---- */

int tg_translate_request(const tg_translator_t *t, json_t *req, const char *model,
                         const tg_translate_ropts_t *ro, tg_translate_req_t *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(req))
        return tg_xerr(err, errlen, "the request body must be a JSON object");
    int rc = t->request(req, model ? model : "", ro, out, err, errlen);
    if (rc < 0)
        tg_translate_req_free(out);
    return rc;
}

int tg_translate_response(const tg_translator_t *t, const char *body, size_t len,
                          const tg_translate_opts_t *o, tg_buf_t *out, tg_usage_t *usage)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    int rc = -1;
    if (json_is_object(doc))
        rc = t->response(doc, o, out, usage);
    json_decref(doc);
    return rc;
}

tg_translate_stream_t *tg_translate_stream_new(const tg_translator_t *t,
                                               const tg_translate_opts_t *o)
{
    return tg_xstream_new(t->stream, o);
}
