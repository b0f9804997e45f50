/*
 * provider.h — what differs between provider dialects.
 *
 * One file per dialect (openai.c, ...) defines a tg_dialect_t; registry.c
 * maps a provider type to its dialect. Pure functions; any thread.
 */
#ifndef TG_PROVIDER_H
#define TG_PROVIDER_H

#include "config/config.h"
#include "core/usage.h"
#include "core/util.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct {
    const char *name;
    /** Header that carries a configured key, and the value's prefix. */
    const char *auth_header;
    const char *auth_prefix;
    /** Usage of a whole native 2xx answer, merged into *usage (counts the
     *  answer does not give are left as they are). */
    void (*answer_usage)(const char *doc, size_t len, tg_usage_t *usage);
    /** Usage of one event of a native stream (its data), merged into
     *  *usage; true when the event carried usage. */
    bool (*event_usage)(const char *data, size_t len, tg_usage_t *usage);
} tg_dialect_t;

extern const tg_dialect_t tg_dialect_openai;
extern const tg_dialect_t tg_dialect_anthropic;
extern const tg_dialect_t tg_dialect_gemini;
extern const tg_dialect_t tg_dialect_azure;

/** The dialect of a provider type (the mock answers in OpenAI's). */
const tg_dialect_t *tg_dialect_for(tg_provider_type_t type);

/** base_url + suffix (+ '?' + query), malloc'd. suffix starts with '/' or is
 *  empty. NULL when suffix or query could leave the base path
 *  (tg_urlpath_check, tg_urlquery_check in core/urlpath.h): the URL never
 *  points anywhere but under base_url. */
char *tg_provider_url(const tg_provider_cfg_t *p, const char *suffix, const char *query);

/** Whether an OpenAI-type provider accepts `stream_options.include_usage`.
 *  Mistral's API rejects the field (422) and sends usage unasked. */
bool tg_provider_accepts_stream_options(const tg_provider_cfg_t *p);

/** True for request headers that carry a provider credential
 *  (Authorization, x-api-key, x-goog-api-key, api-key). */
bool tg_is_credential_header(const char *name);

/* ---- the built-in mock provider (mock.c) ---- */

typedef enum { TG_MOCK_CHAT, TG_MOCK_COMPLETIONS, TG_MOCK_EMBEDDINGS } tg_mock_kind_t;

/**
 * Answer a request locally, deterministically. `model` is the name without
 * the `mock/` prefix. For a streamed chat or completion request the output
 * is the whole SSE body (ending with `data: [DONE]`). Returns the HTTP
 * status; on 400 `out` holds an OpenAI-shaped error body.
 */
int tg_mock_answer(tg_mock_kind_t kind, json_t *req, const char *model, bool stream,
                   tg_buf_t *out);

/** Rough token estimate used by the mock: about four characters a token. */
long tg_estimate_tokens(const char *text, size_t len);

#endif
