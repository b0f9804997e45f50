/*
 * otlp.h — OpenTelemetry trace export (observability.otlp, docs/observability.md).
 *
 * Each request the proxy answers becomes one span, named and attributed
 * after the OpenTelemetry GenAI semantic conventions ("chat gpt-4o-mini",
 * kind CLIENT, gen_ai.*, server.*, http.response.status_code, error.type)
 * plus tollgate.* attributes (cost, cache, request id, user, session,
 * properties, latency, time to first token). Spans go to a collector over
 * OTLP/HTTP with the JSON encoding: POST {endpoint}/v1/traces.
 *
 * A worker hands the span to tg_otlp_submit, which copies it into one
 * allocation and queues it under a short mutex: it never waits on I/O, and
 * when the bounded queue is full the span is dropped and counted. One
 * thread of the gateway's, the exporter, takes the queue in batches (up to
 * TG_OTLP_BATCH spans, or what came within about a second), encodes them
 * and POSTs them with libcurl (connect and total timeouts), retrying a
 * batch that failed in a way the OTLP specification calls retryable (no
 * answer, 429, 502, 503, 504) a few times with backoff; then the batch is
 * dropped and counted. A collector that is slow, failing or gone touches
 * only that thread. Nothing of a request's content (prompts, answers,
 * credentials) is in a span.
 *
 * Owned by the gateway object (gateway.h, `otlp`; NULL when no endpoint is
 * configured). The settings are read at start: changing them needs a
 * restart.
 *
 * Threads: tg_otlp_new and tg_otlp_free on the gateway's owner (main),
 * before the workers start and after they stop; tg_otlp_submit on any
 * thread; the encoding and parsing functions are pure (any thread).
 */
#ifndef TG_OTLP_H
#define TG_OTLP_H

#include "config/config.h"
#include "core/util.h"
#include "metrics/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_OTLP_QUEUE 4096 /* spans waiting for the exporter */
#define TG_OTLP_BATCH 256  /* spans in one POST at most */

typedef struct tg_otlp tg_otlp_t;

/* The W3C trace context a span belongs to. */
typedef struct {
    uint8_t trace_id[16];
    uint8_t parent_id[8]; /* all zero: a root span */
    bool has_parent;
    uint8_t flags; /* the traceparent's trace-flags (01: sampled) */
} tg_otlp_ctx_t;

typedef struct {
    const char *name, *value;
} tg_otlp_prop_t;

/*
 * One span, as the proxy sees a request end. Strings may be NULL (the
 * attribute is then left out); numbers are -1 when unknown, temperature
 * NaN. In a view handed to tg_otlp_submit the strings are the caller's;
 * in a queued span they live in the span's own allocation.
 */
typedef struct tg_otlp_span {
    tg_otlp_ctx_t ctx;
    uint8_t span_id[8];
    int64_t start_ns, end_ns;   /* Unix nanoseconds */
    const char *operation;      /* gen_ai.operation.name: "chat", "embeddings", ... */
    const char *provider_name;  /* gen_ai.provider.name (and gen_ai.system) */
    const char *request_model;  /* gen_ai.request.model: the model sent to the provider */
    const char *response_model; /* gen_ai.response.model */
    const char *response_id;    /* gen_ai.response.id */
    const char *server_address; /* server.address (the provider's host) */
    int server_port;            /* server.port, 0 unknown */
    int status;                 /* http.response.status_code; >= 400: error.type */
    const char *error;          /* the span's status message on failure */
    long input_tokens, output_tokens, max_tokens;
    double temperature;
    bool stream;
    /* tollgate.* */
    const char *provider;        /* the configured provider's name */
    const char *model_requested; /* what the client asked for */
    const char *route;
    const char *request_id;
    const char *user_id;
    const char *session_id;
    const char *key_name;
    const char *cache; /* "hit", "miss", NULL: not used */
    int64_t cost_nusd, latency_ms, ttft_ms;
    int retries, fallback_index;
    const tg_otlp_prop_t *props;
    size_t n_props;
} tg_otlp_span_t;

/** Start the exporter for cfg's observability.otlp (endpoint set). The
 *  metrics (NULL: none) show tollgate_otlp_spans_total and must outlive it. */
tg_otlp_t *tg_otlp_new(const tg_config_t *cfg, tg_metrics_t *metrics);

/** Stop the exporter: an export under way is cut; what is left is sent
 *  once more (within the shorter of the timeout and 2 s), then dropped.
 *  NULL is fine. */
void tg_otlp_free(tg_otlp_t *o);

/** Whether a and b differ in what tg_otlp_new reads. */
bool tg_otlp_config_differs(const tg_config_t *a, const tg_config_t *b);

/** Queue a copy of span (a view; only read). Never blocks. A span without
 *  a span id gets a random one; without a trace id, a new trace. */
void tg_otlp_submit(tg_otlp_t *o, const tg_otlp_span_t *span);

/** Spans exported and dropped so far (tollgate_otlp_spans_total). */
void tg_otlp_counts(const tg_otlp_t *o, long long *exported, long long *dropped);

/* ---- the pure parts ---- */

/** Parse a W3C traceparent header value: version (two lower-case hex
 *  digits, not "ff"; "00" exactly 55 characters, a later version may carry
 *  more after a '-'), trace id (32 lower-case hex, not all zero), parent id
 *  (16, not all zero), flags (2). Fills ctx (has_parent, flags) and returns
 *  0, or -1 for anything else (ctx untouched). */
int tg_otlp_traceparent_parse(const char *value, tg_otlp_ctx_t *ctx);

/** A new span in ctx's trace: a random span id (never all zero), and a
 *  random trace id with flags 01 when ctx has none. Any thread. */
void tg_otlp_new_span(tg_otlp_ctx_t *ctx, uint8_t span_id[8]);

/** The traceparent that makes span_id the parent of what follows:
 *  "00-{trace id}-{span id}-{flags}" (55 characters and a NUL). */
void tg_otlp_traceparent_format(const tg_otlp_ctx_t *ctx, const uint8_t span_id[8], char out[56]);

/** Append the ExportTraceServiceRequest JSON for spans[0..n) under one
 *  resource (service.name, service.version) and one scope ("tollgate"). */
void tg_otlp_encode(const tg_otlp_span_t *const *spans, size_t n, const char *service_name,
                    const char *service_version, tg_buf_t *out);

/** The provider's id and model in an answer or stream event (JSON): top
 *  level "id" / "model" (OpenAI, Anthropic), "responseId" / "modelVersion"
 *  (Gemini), or the same inside "message" (Anthropic's message_start) or
 *  "response" (Responses events). Each is written only when found and
 *  plain (no escapes) and fits; returns whether both are now set. */
bool tg_otlp_response_ids(const char *json, size_t len, char *id, size_t id_len, char *model,
                          size_t model_len);

/** gen_ai.provider.name for a provider record's name ("gemini" ->
 *  "gcp.gemini", "azure" -> "azure.ai.openai", ...; others as they are). */
const char *tg_otlp_provider_name(const char *rec_name);

/** The traces URL for an endpoint: {endpoint}/v1/traces unless it already
 *  ends in /v1/traces (a trailing '/' dropped first). Owned by the caller. */
char *tg_otlp_traces_url(const char *endpoint);

#endif
