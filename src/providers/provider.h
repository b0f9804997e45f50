/*
 * provider.h — one const record per provider type (tg_provider_rec_t),
 * modelled on curl's Curl_cftype: named fields and hooks, each with its
 * contract, and default implementations for the common case. Everything a
 * type changes — dialect, default base URL and path prefix, auth header,
 * the headers and query parameter that carry credentials, URL building,
 * default headers, usage readers, what it accepts, model families — is in
 * its record (registry.c); the router, the config defaults, the credential
 * code, the cache scope and the URL code read it, and nothing outside
 * src/providers/ names a type. Pure functions over const data; any thread.
 */
#ifndef TG_PROVIDER_H
#define TG_PROVIDER_H

#include "config/config.h"
#include "core/usage.h"
#include "core/util.h"
#include "providers/translate.h"

#include <jansson.h>
#include <stdbool.h>

/** How a dialect's answers report usage (one per wire format: openai.c,
 *  anthropic.c, gemini.c). */
typedef struct {
    const char *name;
    /** Usage of a whole native 2xx answer, merged into *usage (counts the
     *  answer does not give are left as they are). */
    void (*answer_usage)(const char *doc, size_t len, tg_usage_t *usage);
    /** Usage of one event of a native stream (its data), merged into
     *  *usage; true when the event carried usage. */
    bool (*event_usage)(const char *data, size_t len, tg_usage_t *usage);
} tg_dialect_t;

extern const tg_dialect_t tg_dialect_openai;
extern const tg_dialect_t tg_dialect_anthropic;
/** The Responses dialect (responses.c): OpenAI-type providers on /v1/responses. */
extern const tg_dialect_t tg_dialect_responses;
extern const tg_dialect_t tg_dialect_gemini;

/** Looks up a request header (case-insensitive); NULL when absent. */
typedef const char *(*tg_provider_header_fn)(void *ctx, const char *name);

/** What a provider URL is built from (the `url` hook). */
typedef struct {
    const char *model;        /* the upstream model (Azure: the deployment) */
    const char *suffix;       /* below base_url: "" or starting with '/' */
    const char *query;        /* the query to send (translator's or client's); may be NULL */
    const char *client_query; /* the client's own query string; may be NULL */
    bool raw;                 /* raw pass-through: suffix as given, no type addressing */
} tg_provider_url_req_t;

/** A header a type adds when the client did not send it. */
typedef struct {
    const char *name, *value;
} tg_provider_header_t;

typedef struct tg_provider_rec tg_provider_rec_t;

struct tg_provider_rec {
    /** The type name (`type:`) or the well-known provider name that infers
     *  this record (`providers.deepseek`). Unique among records. */
    const char *name;
    /** Other names that infer it ("google" for gemini); NULL-terminated, or
     *  NULL. */
    const char *const *aliases;
    /** The type it is; several records (the OpenAI-compatible services)
     *  share TG_PROVIDER_OPENAI. Exactly one record per type has
     *  `name` == tg_provider_type_name(type): the type's own record, used
     *  for a provider of that type under any other name. */
    tg_provider_type_t type;
    /** The wire format its bodies are written in (translate.h) and how its
     *  answers report usage. */
    tg_wire_t wire;
    const tg_dialect_t *dialect;

    /** base_url when none is configured; NULL: it must be configured. A
     *  plain http(s) URL with a host, no trailing '/', ending in
     *  path_prefix. */
    const char *default_base_url;
    /** Added to a configured bare-origin base_url ("https://host"); "" for
     *  none. Never NULL. */
    const char *path_prefix;
    /** What the config error says a base_url looks like, when there is no
     *  default (Azure's resource URL); may be NULL. */
    const char *base_url_hint;
    /** Environment variables a start without a file takes its key from
     *  (the second when the first is unset); NULL: not configured so. */
    const char *key_env, *key_env_alt;

    /** Header that carries a configured key (or a client's key moved into
     *  this dialect), and the value's prefix ("Bearer "; "" for none). NULL
     *  only for a type that answers locally. */
    const char *auth_header;
    const char *auth_prefix;
    /** Every request header this type takes a credential from, auth_header
     *  first; NULL-terminated. A configured key drops them all, the cache
     *  scope digests them, a client's key is found in them
     *  (tg_provider_credentials_text, tg_provider_client_key). */
    const char *const *credential_headers;
    /** Query parameter that may carry a credential (Gemini's ?key=), or
     *  NULL: scrubbed when a key is configured, digested by the cache
     *  scope. */
    const char *credential_query;
    /** Its SDKs send their key in auth_header, so with security.require_auth
     *  a gateway key may arrive there (SPEC §5) and is consumed. */
    bool gateway_key_header;
    /** Sent upstream unless the client sent the same header; {NULL}-ended
     *  or NULL. */
    const tg_provider_header_t *default_headers;
    /** Prefixes of client headers only this type's API reads
     *  ("anthropic-": anthropic-version, anthropic-beta, ...): they are not
     *  sent to a provider of another type (tg_provider_header_foreign);
     *  NULL-terminated, or NULL. */
    const char *const *own_header_prefixes;

    /** The URL of a call, malloc'd; NULL when the suffix, model or query
     *  would leave the base path (tg_urlpath_check). Must handle rq->raw
     *  (pass-through) by appending the suffix as given. Default:
     *  tg_provider_url_default. */
    char *(*url)(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq);
    /** Its API rejects `stream_options.include_usage` (Mistral: 422, and it
     *  sends usage unasked). */
    bool rejects_stream_options;
    /** Model-name prefixes routed to the provider of this name (SPEC §4
     *  step 3); NULL-terminated, or NULL. */
    const char *const *families;
    /** A family is also served by the first provider of this type under
     *  another name: true where the type is one service's own API
     *  (Anthropic, Gemini), false where many services share it (OpenAI). */
    bool families_any_name;
    /** Answers locally (the mock): no base_url, no credentials, never a
     *  fallback target nor a pass-through. */
    bool local;
};

/** Every record, i = 0, 1, ... until NULL; the types' own records come
 *  first, in the order of the enum. */
const tg_provider_rec_t *tg_provider_rec_at(size_t i);

/** The type's own record (never NULL; the OpenAI record for an unknown
 *  value). */
const tg_provider_rec_t *tg_provider_rec_for_type(tg_provider_type_t type);

/** The record a well-known name or alias infers (case-insensitive), or NULL. */
const tg_provider_rec_t *tg_provider_rec_named(const char *name);

/** The record of a configured provider: the well-known record of its name
 *  when the type agrees, else the well-known record whose default base
 *  URL has the same host (a "mistral2" at api.mistral.ai behaves as
 *  Mistral), else its type's own record. Set once at config load
 *  (tg_provider_cfg_t.rec); computed here for a hand-made config. */
const tg_provider_rec_t *tg_provider_rec_find(const char *name, tg_provider_type_t type,
                                              const char *base_url);
const tg_provider_rec_t *tg_provider_rec_of(const tg_provider_cfg_t *p);

/** The record of a provider name that is not well known: OpenAI-compatible. */
const tg_provider_rec_t *tg_provider_rec_fallback(void);

/** The dialect of a provider type (the mock answers in OpenAI's). */
const tg_dialect_t *tg_dialect_for(tg_provider_type_t type);

/** base_url + suffix (+ '?' + query), malloc'd. suffix starts with '/' or is
 *  empty. NULL when suffix or query could leave the base path
 *  (tg_urlpath_check, tg_urlquery_check in core/urlpath.h): the URL never
 *  points anywhere but under base_url. */
char *tg_provider_url(const tg_provider_cfg_t *p, const char *suffix, const char *query);

/** The default `url` hook: tg_provider_url with rq->query, minus the
 *  record's credential_query parameter when a key is configured (the
 *  configured key replaces the client's). */
char *tg_provider_url_default(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq);

/** The URL of this call, by the provider's record. */
char *tg_provider_url_for(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq);

/** Azure's `url` hook (azure.c): tg_azure_url for a model call,
 *  tg_provider_url_default for raw pass-through. */
char *tg_azure_provider_url(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq);

/** A query string without the parameter `name` (malloc'd; NULL for a NULL
 *  query). */
char *tg_provider_query_without(const char *query, const char *name);

/** Whether the provider accepts `stream_options.include_usage`: an
 *  OpenAI-wire provider whose record does not reject it. */
bool tg_provider_accepts_stream_options(const tg_provider_cfg_t *p);

/* ---- credentials (credentials.c) ---- */

/** True for request headers that carry a provider credential of any type
 *  (the union of every record's credential_headers). */
bool tg_is_credential_header(const char *name);

/** True for a client header that belongs to another type's API (its
 *  record's own_header_prefixes) than `r`'s: not forwarded to r's
 *  provider (Claude Code's anthropic-beta would make an OpenAI-type server
 *  refuse or misread the call). */
bool tg_provider_header_foreign(const tg_provider_rec_t *r, const char *name);

/** The provider key a client sent in any type's credential header (bring
 *  your own key), skipping `consumed` (the header that carried the gateway
 *  key; may be NULL). Where a record's auth_header has a prefix
 *  ("Bearer "), only a value with it is a key. NULL when none. */
const char *tg_provider_client_key(tg_provider_header_fn get, void *ctx, const char *consumed);

/** The gateway key in a provider-credential header (SPEC §5: the
 *  auth_header of records with gateway_key_header, in record order);
 *  *header is set to the header it came from. NULL when none. */
const char *tg_provider_gateway_key(tg_provider_header_fn get, void *ctx, const char **header);

/** Appends to `out` every credential the request carries for provider p:
 *  each credential header of any type (name and value), and the whole
 *  query when p's record has a credential_query. The cache scope digests
 *  it. Returns whether anything was appended. */
bool tg_provider_credentials_text(const tg_provider_cfg_t *p, tg_provider_header_fn get, void *ctx,
                                  const char *query, tg_buf_t *out);

/** The provider's auth_header value for `key` ("Bearer KEY"), malloc'd. */
char *tg_provider_auth_value(const tg_provider_rec_t *r, const char *key);

/* ---- the built-in mock provider (mock.c) ---- */

typedef enum { TG_MOCK_CHAT, TG_MOCK_COMPLETIONS, TG_MOCK_EMBEDDINGS } tg_mock_kind_t;

/**
 * Answer a request locally, deterministically. `model` is the name without
 * the `mock/` prefix. For a streamed chat or completion request the output
 * is the whole SSE body (ending with `data: [DONE]`). Returns the HTTP
 * status; on 400 `out` holds an OpenAI-shaped error body.
 */
int tg_mock_answer(tg_mock_kind_t kind, json_t *req, const char *model, bool stream, tg_buf_t *out);

/** Rough token estimate used by the mock: about four characters a token. */
long tg_estimate_tokens(const char *text, size_t len);

#endif
