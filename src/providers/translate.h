/*
 * translate.h — translation between the client dialects (OpenAI Chat
 * Completions, OpenAI Responses, Anthropic Messages) and the provider
 * dialects (OpenAI, Anthropic, Gemini), plus what every dialect needs
 * beside it: usage extraction, error bodies in the client's shape, the
 * Azure deployment URL and a local count_tokens estimate. docs/dialects.md has the mapping
 * tables and the decisions.
 *
 * Everything here is pure: no I/O, no globals; any thread. A stream
 * translator belongs to one exchange (one thread).
 *
 * How the pipeline uses it, for a client speaking `client` to provider p:
 *
 *   const tg_translator_t *t = tg_translate_for(client, p->type);
 *   if (!t) -> native: the body goes through as today.
 *   tg_translate_req_t rq;
 *   if (tg_translate_request(t, root, model, &ropts, &rq, err, sizeof err) < 0)
 *       -> 400 in the client's error shape (tg_translate_error_json)
 *   url = tg_provider_url_for(p, &(tg_provider_url_req_t){model, rq.path, rq.query,
 *                                                           client_query})
 *       (provider.h: the provider record builds it; Azure's names the deployment)
 *   body = json_dumps(rq.body, TG_TRANSLATE_DUMP_FLAGS); tg_translate_req_free(&rq);
 *   answer 2xx, not streamed: tg_translate_response(t, body, len, &opts, &out, &usage)
 *       (< 0: the provider's answer is broken -> 502)
 *   answer 2xx, event stream: s = tg_translate_stream_new(t, &opts);
 *       per provider event (tg_sse_feed): tg_translate_stream_feed(s, ev, data, len, &out)
 *       on a clean end: tg_translate_stream_finish(s, &out); tg_translate_stream_usage(s, &u)
 *       tg_translate_stream_free(s)
 *   answer not 2xx: tg_translate_error(client, status, body, len, &out), status kept.
 *
 * `opts` for the answer: id (the request id, used when the provider names
 * none), created (time(NULL)), model (the upstream model), include_usage
 * (= rq.include_usage). Azure: the model name is the deployment
 * (tg_azure_url). Native calls need no translator; their usage is read by
 * the provider's dialect table (provider.h: answer_usage, event_usage).
 * POST /v1/messages/count_tokens on a non-Anthropic provider:
 * tg_translate_count_tokens, answered locally with 200.
 */
#ifndef TG_TRANSLATE_H
#define TG_TRANSLATE_H

#include "config/config.h"
#include "core/usage.h"
#include "core/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/** json_dumps flags for translated bodies: compact, and reals written with
 *  15 significant digits, so `0.7` goes out as `0.7`. */
#define TG_TRANSLATE_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/** The wire format a body is written in. */
typedef enum {
    TG_WIRE_OPENAI = 0, /* Chat Completions (also Azure OpenAI and the mock) */
    TG_WIRE_ANTHROPIC,  /* Messages */
    TG_WIRE_GEMINI,     /* generateContent */
    TG_WIRE_RESPONSES,  /* OpenAI Responses (/v1/responses): native to OpenAI-type providers */
} tg_wire_t;

/** The wire format a provider type speaks. */
tg_wire_t tg_wire_of(tg_provider_type_t type);

/** What the translation of a request produced. */
typedef struct {
    json_t *body;       /* the upstream body (owned) */
    char *path;         /* suffix for tg_provider_url: "/messages",
                           "/models/M:streamGenerateContent", "/chat/completions" */
    const char *query;  /* static query string ("alt=sse") or NULL */
    bool stream;        /* the client asked for a stream */
    bool include_usage; /* OpenAI client: stream_options.include_usage */
} tg_translate_req_t;

void tg_translate_req_free(tg_translate_req_t *rq);

/** Options of a request translation. */
typedef struct {
    /** OpenAI-type provider: it accepts stream_options.include_usage
     *  (tg_provider_accepts_stream_options). */
    bool stream_usage;
} tg_translate_ropts_t;

/** Options of a response or stream translation. */
typedef struct {
    const char *id;     /* answer id when the provider gives none; seeds tool-call ids */
    long created;       /* "created" of OpenAI answers (Unix seconds) */
    const char *model;  /* model name when the provider's answer names none */
    bool include_usage; /* OpenAI client asked for the final usage chunk */
} tg_translate_opts_t;

/** One direction: client dialect -> provider dialect and back. */
typedef struct tg_translator tg_translator_t;

/** The translator for a client dialect and a provider type, or NULL when the
 *  body goes through natively (same dialect) or no translation exists.
 *  Exists for: OpenAI -> Anthropic, OpenAI -> Gemini, Anthropic -> OpenAI
 *  (OpenAI, Azure and the mock), Anthropic -> Gemini (through Chat
 *  Completions) and Responses -> Anthropic, Gemini and the mock (through
 *  Chat Completions: responses.c). */
const tg_translator_t *tg_translate_for(tg_wire_t client, tg_provider_type_t type);

/** True when a client of dialect `client` talks to a provider of `type`
 *  without translation: the same wire, or a Responses client on an
 *  OpenAI-type provider (not the mock, which answers Chat Completions). */
bool tg_translate_native(tg_wire_t client, tg_provider_type_t type);

/** "openai->anthropic" and so on. */
const char *tg_translate_name(const tg_translator_t *t);

/**
 * Client request -> upstream request. `model` is the upstream model name
 * (prefix already removed). Returns 0, or -1 with a message in err for a
 * request the provider's dialect cannot express (the pipeline answers 400).
 */
int tg_translate_request(const tg_translator_t *t, json_t *req, const char *model,
                         const tg_translate_ropts_t *ro, tg_translate_req_t *out, char *err,
                         size_t errlen);

/**
 * Provider's 2xx answer -> the client's answer, appended to out as JSON;
 * usage (may be NULL) filled with what the answer reports. Returns 0, or -1
 * when the answer is not the provider dialect's document (out untouched).
 */
int tg_translate_response(const tg_translator_t *t, const char *body, size_t len,
                          const tg_translate_opts_t *o, tg_buf_t *out, tg_usage_t *usage);

/** State of one translated event stream. */
typedef struct tg_translate_stream tg_translate_stream_t;

tg_translate_stream_t *tg_translate_stream_new(const tg_translator_t *t,
                                               const tg_translate_opts_t *o);

/**
 * One provider event, as tg_sse_feed delivers it (`event` is "message" when
 * unnamed). Appends zero or more client events, SSE-framed, to out. Returns
 * 0; 1 once the stream has ended (terminal events written: later events are
 * ignored).
 */
int tg_translate_stream_feed(tg_translate_stream_t *s, const char *event, const char *data,
                             size_t len, tg_buf_t *out);

/** The provider stream ended cleanly: append whatever terminal events are
 *  still due (final chunk, usage chunk if asked, `[DONE]`; or
 *  `message_delta` + `message_stop`). Idempotent. */
void tg_translate_stream_finish(tg_translate_stream_t *s, tg_buf_t *out);

/** True once the provider's stream has said it is over: its terminator
 *  (OpenAI's `[DONE]`, Anthropic's `message_stop`; Gemini, which has none:
 *  a finishReason for every candidate begun) or an error event. A transfer
 *  that ends before that was cut: the caller must not call
 *  tg_translate_stream_finish (it would pass the stream off as complete)
 *  but end the client's stream with tg_translate_error_event. */
bool tg_translate_stream_ended(const tg_translate_stream_t *s);

/** The provider's own message when its stream carried an error event
 *  (already passed on to the client as the client's error event), else
 *  NULL. Valid until tg_translate_stream_free. */
const char *tg_translate_stream_error(const tg_translate_stream_t *s);

/** Responses clients: the sequence_number the next event of this stream
 *  gets (the `response.failed` of a cut stream follows on). 0 for other
 *  dialects. */
long tg_translate_stream_seq(const tg_translate_stream_t *s);

/** Usage seen so far (fields not reported stay -1). */
void tg_translate_stream_usage(const tg_translate_stream_t *s, tg_usage_t *usage);

void tg_translate_stream_free(tg_translate_stream_t *s);

/* ---- errors ---- */

/**
 * A provider's error body (OpenAI, Anthropic or Gemini shape, or anything
 * else) rewritten in the client's dialect: OpenAI
 * {"error":{"message","type","code"}}, Anthropic
 * {"type":"error","error":{"type","message"}} or Gemini
 * {"error":{"code","message","status"}}. The HTTP status is kept by
 * the caller; it only picks the type when the body names none the client's
 * dialect knows.
 */
void tg_translate_error(tg_wire_t client, int status, const char *body, size_t len, tg_buf_t *out);

/** Longest provider error message tg_translate_error_message keeps. */
#define TG_ERROR_MESSAGE_MAX 512

/**
 * The provider's own error message in an error body of any dialect
 * (error.message of OpenAI, Anthropic and Gemini; {"error":"text"};
 * {"detail":"text"}), for the request record: at most TG_ERROR_MESSAGE_MAX
 * bytes, cut on a character boundary, valid UTF-8, control characters as
 * spaces. NULL when the body is not JSON or names no message. malloc'd.
 */
char *tg_translate_error_message(const char *body, size_t len);

/**
 * The event that tells a client of the dialect that its stream failed after
 * it started, SSE-framed, appended to out: OpenAI `data:
 * {"error":{message,type,code}}` (the openai SDKs raise APIError), Anthropic
 * `event: error` + `{"type":"error","error":{type,message}}`, Gemini `data:
 * {"error":{code,message,status}}` (@google/genai raises ApiError for a
 * code of 400-599). `status` picks type, code and status names; `code`
 * (may be NULL) is OpenAI's error.code.
 */
void tg_translate_error_event(tg_wire_t client, int status, const char *code, const char *message,
                              tg_buf_t *out);

/**
 * The end of a Responses stream that failed after it started: `event:
 * response.failed` with {"type","sequence_number":seq,"response":{"id",
 * "object":"response","status":"failed","error":{"code","message"},...}}.
 * tg_translate_error_event writes it for TG_WIRE_RESPONSES with seq 0.
 */
void tg_translate_responses_failed(long seq, const char *id, int status, const char *code,
                                   const char *message, tg_buf_t *out);

/** A gateway-made error in the client's dialect (type chosen from status). */
void tg_translate_error_json(tg_wire_t client, int status, const char *message, tg_buf_t *out);

/** Error type for a status in the client's dialect ("rate_limit_error", ...). */
const char *tg_translate_error_type(tg_wire_t client, int status);

/** Google's status name for an HTTP status ("RESOURCE_EXHAUSTED" for 429). */
const char *tg_gemini_status_name(int status);

/** "/models/{model}:{action}" (malloc'd), a leading "models/" dropped and the
 *  model encoded as one path segment ('/' as %2F): the path of a Gemini call,
 *  native or translated, below the provider's base_url. */
char *tg_gemini_model_path(const char *model, const char *action);

/* ---- embeddings ---- */

/**
 * The translator of OpenAI's POST /v1/embeddings for a provider type, or
 * NULL when that type has no embeddings translation (then the route is a
 * 400 for it unless the type speaks OpenAI's dialect). Exists for Gemini
 * (batchEmbedContents); `base64`: the client asked for encoding_format
 * "base64" and gets each vector as base64 of little-endian float32.
 * Gemini reports no token count for embeddings: the caller puts its own
 * count (tg_embeddings_count_tokens) in usage->prompt_tokens before
 * tg_translate_response, which writes it into the answer's usage (and
 * sets completion_tokens to 0).
 */
const tg_translator_t *tg_translate_embeddings_for(tg_provider_type_t type, bool base64);

/** The local token count of an embeddings request's input (about four
 *  characters a token): what usage reports for a provider that gives none. */
long tg_embeddings_count_tokens(json_t *req);

/* ---- count_tokens ---- */

/**
 * Local estimate for POST /v1/messages/count_tokens on a non-Anthropic
 * provider: about four characters a token over the text of system, messages
 * and tool definitions, plus 3 tokens a message and 1,600 an image or
 * document. Returns the estimate; `out` (may be NULL) gets
 * {"input_tokens":N}.
 */
long tg_translate_count_tokens(json_t *anthropic_req, tg_buf_t *out);

/* ---- usage from native answers (no translation) ---- */

/** OpenAI "usage" object -> usage (cached_tokens and reasoning_tokens from
 *  the *_details objects). Returns false when `u` is not an object. */
bool tg_openai_usage(json_t *u, tg_usage_t *usage);

/** Anthropic "usage" object (message or message_delta) -> usage. Anthropic's
 *  input_tokens exclude cache reads and writes; prompt_tokens include them.
 *  Fields absent from `u` are left as they are. */
bool tg_anthropic_usage(json_t *u, tg_usage_t *usage);

/** Responses "usage" object ({input_tokens, output_tokens,
 *  input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens})
 *  -> usage. Returns false when `u` is not an object. */
bool tg_responses_usage(json_t *u, tg_usage_t *usage);

/** Gemini "usageMetadata" -> usage (thoughts count as completion tokens). */
bool tg_gemini_usage(json_t *u, tg_usage_t *usage);

/** Usage of one native Anthropic stream event (message_start,
 *  message_delta), merged into usage. */
void tg_anthropic_stream_usage(const char *data, size_t len, tg_usage_t *usage);

/* ---- the directions, callable alone (the table above uses them) ---- */

int tg_anthropic_request_from_openai(json_t *req, const char *model, tg_translate_req_t *out,
                                     char *err, size_t errlen);
int tg_anthropic_response_to_openai(json_t *msg, const tg_translate_opts_t *o, tg_buf_t *out,
                                    tg_usage_t *usage);
int tg_gemini_request_from_openai(json_t *req, const char *model, tg_translate_req_t *out,
                                  char *err, size_t errlen);
int tg_gemini_response_to_openai(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                 tg_usage_t *usage);
int tg_openai_request_from_anthropic(json_t *req, const char *model, bool stream_usage,
                                     tg_translate_req_t *out, char *err, size_t errlen);
int tg_openai_response_to_anthropic(json_t *resp, const tg_translate_opts_t *o, tg_buf_t *out,
                                    tg_usage_t *usage);

/* Responses <-> Chat Completions (responses.c, responses_stream.c): the
 * middle of every Responses translation. */
int tg_chat_request_from_responses(json_t *req, const char *model, tg_translate_req_t *out,
                                   char *err, size_t errlen);
int tg_responses_from_chat(json_t *chat, const tg_translate_opts_t *o, tg_buf_t *out,
                           tg_usage_t *usage);

/* ---- Azure OpenAI ---- */

/** The api-version used when neither the client nor the provider names one
 *  (the latest GA data-plane inference version). */
#define TG_AZURE_DEFAULT_API_VERSION "2024-10-21"

/**
 * URL of an Azure OpenAI call: `{base}/openai/deployments/{model}{suffix}
 * ?api-version=V`, the model name being the deployment name. V is the
 * client's own `api-version` query parameter (from `client_query`, may be
 * NULL), else the provider's `headers` entry `api-version`, else
 * TG_AZURE_DEFAULT_API_VERSION. A base_url ending in `/openai/v1` is
 * Azure's v1 API: `{base}{suffix}`, no deployment, no api-version.
 * The deployment is encoded as one path segment; NULL (like
 * tg_provider_url) for an empty one, or when the path after the base would
 * not pass tg_urlpath_check ("." or "..").
 */
char *tg_azure_url(const tg_provider_cfg_t *p, const char *model, const char *suffix,
                   const char *client_query);

#endif
