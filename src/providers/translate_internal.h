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

extern const tg_xstream_ops_t tg_xstream_chat_to_responses;
extern const tg_xstream_ops_t tg_xstream_responses_to_anthropic;
extern const tg_xstream_ops_t tg_xstream_responses_to_gemini;

/* Anthropic -> Gemini, through Chat Completions (translate_chain.c). */
int tg_xchain_request(json_t *req, const char *model, tg_translate_req_t *out, char *err,
                      size_t errlen);
int tg_xchain_response(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                       tg_usage_t *usage);

/* Responses -> Anthropic and Responses -> Gemini, through Chat Completions
 * (translate_chain.c): the request goes Responses -> Chat -> provider, the
 * answer provider -> Chat -> Responses. */
int tg_xchain_responses_to_anthropic_request(json_t *req, const char *model,
                                             tg_translate_req_t *out, char *err, size_t errlen);
int tg_xchain_responses_to_gemini_request(json_t *req, const char *model, tg_translate_req_t *out,
                                          char *err, size_t errlen);
int tg_xchain_anthropic_to_responses(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                     tg_usage_t *usage);
int tg_xchain_gemini_to_responses(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                  tg_usage_t *usage);

/* ---- the Responses document, shared by responses.c and responses_stream.c ---- */

/** usage -> Responses "usage" object (unknown counts as 0). */
json_t *tg_xlat_responses_usage_json(const tg_usage_t *u);
/** "resp_<id>" (malloc'd); an id that starts with resp_ is kept. */
char *tg_xlat_responses_id(const char *id);
/** A message item with one output_text part; `text` is stolen. */
json_t *tg_xlat_responses_text_item(const char *resp_id, json_t *text, const char *status);
/** A function_call item; `args` (a JSON string) is stolen. */
json_t *tg_xlat_responses_call_item(const char *call_id, const char *name, json_t *args,
                                    const char *status);
/** A `response` object: status completed, or incomplete with its
 *  incomplete_details when the chat finish_reason is length or
 *  content_filter; `output` is stolen; usage null when u is NULL. */
json_t *tg_xlat_responses_object(const char *id, long created, const char *model, json_t *output,
                                 const char *finish, const tg_usage_t *u);

/* OpenAI embeddings -> Gemini batchEmbedContents (embeddings.c). */
int tg_embeddings_request_to_gemini(json_t *req, const char *model, tg_translate_req_t *out,
                                    char *err, size_t errlen);
int tg_embeddings_response_from_gemini(json_t *doc, const tg_translate_opts_t *o, tg_buf_t *out,
                                       tg_usage_t *usage);
int tg_embeddings_response_from_gemini_base64(json_t *doc, const tg_translate_opts_t *o,
                                              tg_buf_t *out, tg_usage_t *usage);

#endif
