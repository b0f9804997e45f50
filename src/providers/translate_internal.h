/*
 * translate_internal.h — the translation directions, as the table in
 * translate.c sees them: each direction's stream operations and the
 * Anthropic -> Gemini chain, plus what the direction files share between
 * themselves. Included by translate.c and the direction files, never by
 * translate_util.c (the helpers sit below the directions). Pure; any thread.
 */
#ifndef TG_TRANSLATE_INTERNAL_H
#define TG_TRANSLATE_INTERNAL_H

#include "providers/translate_util.h"

/** A Gemini functionCall part as an OpenAI tool call; n numbers the calls
 *  of the answer for the id ("call_<answer id>_<n>" when Gemini gives none). */
json_t *tg_gemini_tool_call(json_t *part, const char *answer_id, long n);

extern const tg_xstream_ops_t tg_xstream_anthropic_to_openai;
extern const tg_xstream_ops_t tg_xstream_gemini_to_openai;
extern const tg_xstream_ops_t tg_xstream_openai_to_anthropic;
extern const tg_xstream_ops_t tg_xstream_anthropic_to_gemini;

/* Anthropic -> Gemini, through Chat Completions (translate_chain.c). */
int tg_xchain_request(json_t *req, const char *model, tg_translate_req_t *out, char *err,
                      size_t errlen);
int tg_xchain_response(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                       tg_usage_t *usage);

/* OpenAI embeddings -> Gemini batchEmbedContents (embeddings.c). */
int tg_embeddings_request_to_gemini(json_t *req, const char *model, tg_translate_req_t *out,
                                    char *err, size_t errlen);
int tg_embeddings_response_from_gemini(json_t *doc, const tg_translate_opts_t *o, tg_buf_t *out,
                                       tg_usage_t *usage);
int tg_embeddings_response_from_gemini_base64(json_t *doc, const tg_translate_opts_t *o,
                                              tg_buf_t *out, tg_usage_t *usage);

#endif
