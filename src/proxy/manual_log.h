/*
 * manual_log.h — Helicone's manual-logging routes (SPEC §3): POST
 * /oai/v1/log, /anthropic/v1/log, /googleapis/v1/log, /custom/v1/log take
 * a call made elsewhere, in the format of @helicone/helpers'
 * HeliconeManualLogger,
 *
 *   {"providerRequest": {"url", "json": {...}, "meta": {...}},
 *    "providerResponse": {"headers", "status", "json": {...} | "textBody": "..."},
 *    "timing": {"startTime": {"seconds", "milliseconds"}, "endTime": {...},
 *               "timeToFirstToken": ms},
 *    "provider": "OPENAI" | "ANTHROPIC" | "GOOGLE" | ...}
 *
 * and record it as if it had passed through: tokens from the answer's usage
 * in its dialect (a streamed text body's events too), cost, model, status,
 * latency from the timing, properties from the Helicone-* headers of the
 * logging request and from providerRequest.meta.
 *
 * tg_manual_log_read is pure (any thread); the stage list runs on the
 * exchange's worker thread.
 */
#ifndef TG_MANUAL_LOG_H
#define TG_MANUAL_LOG_H

#include "core/usage.h"
#include "proxy/stages.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What a posted log says; pointers borrow from the document. */
typedef struct {
    json_t *request;  /* providerRequest.json: the request as sent */
    json_t *meta;     /* providerRequest.meta: {"Helicone-...": "v"}, or NULL */
    json_t *response; /* providerResponse.json, or NULL */
    const char *text; /* providerResponse.textBody (a stream's bytes), or NULL */
    size_t text_len;
    int status;                  /* providerResponse.status (200 when absent) */
    int64_t start_ms;            /* Unix ms */
    int64_t latency_ms;          /* endTime - startTime */
    int64_t ttft_ms;             /* timeToFirstToken, -1 when not given */
    const char *provider;        /* the document's "provider", or NULL */
    const char *model;           /* served (the answer's model), else asked */
    const char *model_requested; /* providerRequest.json.model, or NULL */
    tg_usage_t usage;
} tg_manual_log_t;

/**
 * Reads a posted document. `dialect`: "openai", "anthropic" or "gemini",
 * the one the route implies; the document's "provider" (OPENAI, ANTHROPIC,
 * GOOGLE, case ignored) overrides it. Returns 0, or -1 with a client-facing
 * message in err for a document that is not of the documented shape
 * (every member's type, statuses 100..599, times that are whole
 * non-negative numbers with milliseconds 0..999 and an end not before the
 * start).
 */
int tg_manual_log_read(json_t *root, const char *dialect, tg_manual_log_t *out, char *err,
                       size_t errlen);

/** The manual-logging routes' stage list: read, record, answer
 *  {"id": "<record id>"}. */
const tg_stage_t *tg_stages_manual_log(void);

#endif
