/*
 * pipeline.c — what happens to a request, top to bottom.
 *
 *   tg_pipeline_handle      route table: health, metrics, /api/v1 (api.c), models,
 *                           LLM routes, Gemini routes, pass-through
 *   handle_llm / handle_gemini → serve_llm
 *                           parse JSON → resolve provider and model → limits →
 *                           cache → mock or upstream
 *   handle_passthrough      /{provider}/{path}, body and method as sent
 *   start_upstream          URL, headers (credentials per SPEC §5), relay call
 *   on_up_response/_data    relay the provider's answer: SSE and pass-through
 *                           streamed chunk by chunk, other answers buffered
 *   on_up_done / on_client_close
 *                           the two ways an exchange ends; both go through
 *                           exchange_finish, the single cleanup
 *
 * Thread: the worker thread of the exchange. An exchange holds a reference
 * to the config it started with, so a reload never changes a request midway.
 */
#include "proxy/pipeline.h"

#include "auth/access.h"
#include "cache/cache.h"
#include "core/jsonscan.h"
#include "cost/cost.h"
#include "core/log.h"
#include "core/urlpath.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "providers/provider.h"
#include "providers/translate.h"
#include "proxy/api.h"
#include "proxy/limits.h"
#include "proxy/relay.h"
#include "proxy/reply.h"
#include "proxy/sse.h"
#include "router/balance.h"
#include "router/router.h"
#include "store/record.h"
#include "store/store.h"

#include <ctype.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest non-streamed answer buffered from a provider. */
#define MAX_BUFFERED_RESPONSE (64 * 1024 * 1024)
/* Most targets a request may fall back to after its first. */
#define TG_MAX_FALLBACKS 8
/* Most of a streamed error answer (raw pass-through) kept for its message. */
#define MAX_ERROR_BODY (64 * 1024)
/* Largest streamed answer kept for the cache. */
#define MAX_CACHED_STREAM (8 * 1024 * 1024)

/* Process-wide, shared by the workers; each is thread-safe. */
static tg_cache_t *g_cache;
static tg_rl_t *g_rl;
static tg_rl_registry_t *g_rules;
static tg_store_t *g_store; /* NULL when request logging is off */

typedef struct {
    struct event_base *base;
    tg_relay_t *relay;
    tg_config_t *cfg;
    tg_access_t *access; /* built from cfg */
    int index;
    tg_journal_t *journal;    /* NULL when request logging is off */
    struct event *journal_ev; /* writes the journal when no client write will */
} pworker_t;

/* Who is calling, as established by admit(). */
typedef struct {
    const char *consumed_header; /* header that carried the gateway key: not forwarded */
    const char *key_name;        /* gateway key's name, or NULL */
    bool may_read;               /* may read logs, costs and metrics */
    bool may_write;              /* may change limits, budgets and keys */
} caller_t;

typedef enum {
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_RESPONSES,
    ROUTE_MESSAGES,     /* Anthropic Messages */
    ROUTE_COUNT_TOKENS, /* Anthropic count_tokens */
    ROUTE_GEMINI,       /* Gemini generateContent, streamGenerateContent */
    ROUTE_PASSTHROUGH,
} route_t;

typedef struct {
    const char *path;
    route_t route;
    const char *suffix; /* appended to the provider's base_url (native calls) */
    tg_wire_t wire;     /* the client's dialect */
} llm_route_t;

static const llm_route_t llm_routes[] = {
    {"/v1/chat/completions", ROUTE_CHAT, "/chat/completions", TG_WIRE_OPENAI},
    {"/v1/completions", ROUTE_COMPLETIONS, "/completions", TG_WIRE_OPENAI},
    {"/v1/embeddings", ROUTE_EMBEDDINGS, "/embeddings", TG_WIRE_OPENAI},
    {"/v1/responses", ROUTE_RESPONSES, "/responses", TG_WIRE_OPENAI},
    {"/v1/messages", ROUTE_MESSAGES, "/messages", TG_WIRE_ANTHROPIC},
    {"/v1/messages/count_tokens", ROUTE_COUNT_TOKENS, "/messages/count_tokens", TG_WIRE_ANTHROPIC},
};

/* The top-level members of an LLM request body the pipeline reads, found
 * in one pass (read_llm_body); the max_* ones in within_token_cap's order. */
enum { IN_MODEL, IN_STREAM, IN_STREAM_OPTIONS, IN_MAX_TOKENS, IN_NKEYS = IN_MAX_TOKENS + 4 };
static const char *const in_keys_names[IN_NKEYS] = {
    "model", "stream", "stream_options",
    "max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens"};

typedef struct {
    tg_http_t *h;
    pworker_t *pw;
    tg_config_t *cfg; /* our reference */
    route_t route;
    const char *route_path;
    tg_wire_t wire; /* the client's dialect: errors and answers are written in it */
    caller_t caller;
    char id[72];
    tg_route_t target; /* the target of the current attempt */
    char *model_requested;
    const char *suffix; /* route suffix appended to the provider's base_url */
    const char *gemini_action; /* "generateContent" or "streamGenerateContent" */
    char *suffix_buf;          /* Gemini: "/models/{model}:{action}", per attempt */

    /* The client's request, as read once (see read_llm_body). */
    const char *in_body;
    size_t in_len;
    json_t *in_root; /* parsed only when needed */
    tg_json_span_t in_keys[IN_NKEYS]; /* the members of in_keys_names, found in one pass */
    bool in_stream, in_client_usage, in_has_stream_options;

    /* Attempts (SPEC §4 fallback chain, §6 retry and fallback headers). */
    tg_route_t fallbacks[TG_MAX_FALLBACKS]; /* targets after the first */
    size_t n_fallbacks;
    int fallback_index; /* 0 = the first target */
    int tries_here;     /* retries made on the current target */
    int retries;        /* retries made in all */
    bool retry_on;      /* Helicone-Retry-Enabled */
    int retry_num;
    double retry_factor;
    int64_t retry_min_ms, retry_max_ms;
    int64_t retry_after_ms; /* the provider's Retry-After on this attempt, 0 if none */
    bool discard;           /* this attempt's answer is a failure we will retry past */
    int64_t attempt_t0_us;  /* when this attempt started */
    int64_t attempt_ttfb_us;
    struct event *retry_timer;

    /* Rate limits (proxy/limits.h): acquired before the call, settled after. */
    tg_limits_t limits;  /* on the caller */
    tg_limits_t plimits; /* on the provider */

    /* Cache (cache/cache.h). */
    tg_cache_policy_t cache_policy;
    tg_cache_key_t cache_key;
    tg_cache_flight_t *flight;  /* we lead: complete or abandon it */
    tg_cache_waiter_t *waiter;  /* we wait for a leader */
    tg_cache_entry_t *woken;    /* what the leader handed us (set on its thread) */
    struct event *cache_ev;     /* the leader wakes us through this */
    bool cache_store_after;     /* store the answer without a flight */
    const char *cache_result;   /* "hit", "miss", or NULL when the cache was not read */
    tg_buf_t stream_copy;       /* the client's stream, kept for the cache */
    bool stream_copy_full;
    char *resp_ctype;

    /* Per attempt. */
    const tg_translator_t *tr;  /* NULL: the provider speaks the client's dialect */
    tg_translate_stream_t *ts;  /* a translated event stream */
    bool tr_include_usage;      /* OpenAI client asked for the usage chunk */
    char *url;
    char **hdrs;
    size_t n_hdrs, cap_hdrs;
    char *body; /* the upstream body when it differs from the client's */
    const char *body_ptr;
    size_t body_len;
    tg_upstream_t *up;
    bool streaming;  /* the client response has started (chunked) */
    bool sse;        /* ... and it is an event stream */
    /* native event stream: its terminator or error event came */
    bool stream_over;
    bool too_large;
    bool hide_usage; /* we asked for the usage chunk; the client did not */
    tg_sse_parser_t sse_in; /* the provider's stream, for usage (and filtering) */
    tg_buf_t sse_out;       /* re-framed events when filtering */
    tg_buf_t sse_held;      /* the start of an event not yet whole (pass_events) */
    tg_usage_t usage;  /* -1 per count until known */
    int64_t cost_nusd; /* nano-USD; -1 unknown or unpriced */
    char *error;       /* why it failed, for the record (set_error) */
    int64_t t0_wall_ms;
    tg_buf_t log_body; /* the answer as the client got it (streams, hits), for the record */
    tg_record_t *rec;  /* begun with the exchange, completed and submitted at its end */
    bool omit_request, omit_response;
    int status;
    tg_buf_t resp; /* buffered answer */
    int64_t t0_us, ttfb_us;
} exchange_t;

/* ---- errors ---- */

/* A request header by name, in the shape the router, cache and limits take. */
static const char *get_header(void *ctx, const char *name)
{
    return tg_http_header(ctx, name);
}

/* An error before an exchange exists, in the dialect its path implies. */
static void reply_error(tg_http_t *h, int status, const char *code, const char *message)
{
    tg_reply_error(h, tg_reply_wire_of_path(tg_http_path(h)), status, code, message);
}

/* ---- exchange lifetime ---- */

static void record_begin(exchange_t *x);

static exchange_t *exchange_new(pworker_t *pw, tg_http_t *h, const caller_t *caller,
                                route_t route, const char *route_path)
{
    exchange_t *x = tg_xcalloc(1, sizeof *x);
    x->h = h;
    x->caller = *caller;
    x->pw = pw;
    x->cfg = tg_config_acquire(pw->cfg);
    x->route = route;
    x->route_path = route_path;
    x->t0_us = tg_mono_us();
    x->usage = (tg_usage_t)TG_USAGE_UNKNOWN;
    x->cost_nusd = -1;
    x->t0_wall_ms = tg_wall_ms();

    /* A client-chosen id is kept if it is a plain token; otherwise we make one. */
    const char *rid = tg_http_header(h, "Helicone-Request-Id");
    size_t n = rid ? strlen(rid) : 0;
    bool ok = n > 0 && n < sizeof x->id;
    for (size_t i = 0; ok && i < n; i++)
        ok = (rid[i] >= '0' && rid[i] <= '9') || (rid[i] >= 'a' && rid[i] <= 'z') ||
             (rid[i] >= 'A' && rid[i] <= 'Z') || rid[i] == '-' || rid[i] == '_' || rid[i] == '.';
    if (ok)
        memcpy(x->id, rid, n + 1);
    else
        tg_uuid7(x->id, tg_wall_ms());
    tg_http_add_header(h, "Helicone-Id", x->id);
    record_begin(x);
    return x;
}

/* Forget what one attempt built (URL, headers, body, answer so far). */
static void reset_attempt(exchange_t *x)
{
    free(x->url);
    x->url = NULL;
    for (size_t i = 0; i < x->n_hdrs; i++)
        free(x->hdrs[i]);
    x->n_hdrs = 0;
    free(x->body);
    x->body = NULL;
    x->body_ptr = NULL;
    x->body_len = 0;
    tg_buf_reset(&x->resp);
    tg_sse_free(&x->sse_in);
    memset(&x->sse_in, 0, sizeof x->sse_in);
    tg_buf_reset(&x->sse_out);
    tg_buf_reset(&x->sse_held);
    tg_translate_stream_free(x->ts);
    x->ts = NULL;
    x->tr = NULL;
    x->too_large = x->discard = x->sse = x->stream_over = false;
    free(x->error); /* a failed attempt retried past is no failure of the exchange */
    x->error = NULL;
    x->retry_after_ms = 0;
    x->status = 0;
    tg_buf_reset(&x->stream_copy);
    x->stream_copy_full = false;
    free(x->resp_ctype);
    x->resp_ctype = NULL;
}

/* Helicone-User-Id, -Session-*, -Property-*, -Omit-* into the record. */
static int record_header(const char *name, const char *value, void *arg)
{
    exchange_t *x = arg;
    tg_record_t *r = x->rec;
    if (!tg_has_prefix_ci(name, "helicone-"))
        return 0;
    const char *n = name + 9;
    if (!strcasecmp(n, "user-id"))
        tg_record_set_str(&r->user_id, value);
    else if (!strcasecmp(n, "session-id"))
        tg_record_set_str(&r->session_id, value);
    else if (!strcasecmp(n, "session-name"))
        tg_record_set_str(&r->session_name, value);
    else if (!strcasecmp(n, "session-path"))
        tg_record_set_str(&r->session_path, value);
    else if (tg_has_prefix_ci(n, "property-") && n[9])
        tg_record_set_property(r, n + 9, value);
    else if (!strcasecmp(n, "omit-request"))
        x->omit_request = !strcasecmp(value, "true");
    else if (!strcasecmp(n, "omit-response"))
        x->omit_response = !strcasecmp(value, "true");
    return 0;
}

/* SPEC §8: one record per request, whatever its ending. What only the
 * request can tell is taken now, while it is alive. */
static void record_begin(exchange_t *x)
{
    if (!g_store || !x->cfg->request_logging_enabled)
        return;
    tg_record_t *r = x->rec = tg_record_new();
    tg_record_set_str(&r->id, x->id);
    r->created_at_ms = x->t0_wall_ms;
    tg_record_set_str(&r->route, x->route_path);
    tg_record_set_str(&r->key_name, x->caller.key_name);
    tg_record_set_str(&r->client_ip, tg_http_client_ip(x->h));
    tg_http_headers_foreach(x->h, record_header, x);
}

/* The request body, once read (bounded copy; never when omitted). */
static void record_request_body(exchange_t *x)
{
    if (x->rec && x->cfg->log_bodies && !x->omit_request && x->in_body)
        tg_record_set_body(x->rec, false, x->in_body, x->in_len, x->cfg->max_body_bytes);
}

static void record_submit(exchange_t *x)
{
    tg_record_t *r = x->rec;
    if (!r)
        return;
    x->rec = NULL;
    tg_record_set_str(&r->provider, x->target.provider ? x->target.provider->name : NULL);
    tg_record_set_str(&r->model, x->target.model);
    tg_record_set_str(&r->model_requested, x->model_requested);
    r->status = x->status;
    r->latency_ms = (tg_mono_us() - x->t0_us) / 1000;
    r->ttft_ms = x->ttfb_us ? x->ttfb_us / 1000 : -1;
    r->usage = x->usage;
    r->cost_nusd = x->cost_nusd;
    r->cache = !x->cache_result                  ? TG_RECORD_CACHE_NONE
               : !strcmp(x->cache_result, "hit") ? TG_RECORD_CACHE_HIT
                                                 : TG_RECORD_CACHE_MISS;
    r->retries = x->retries;
    r->fallback_index = x->fallback_index;
    tg_record_set_str(&r->error, x->error);
    if (x->cfg->log_bodies && !x->omit_response) {
        const tg_buf_t *b = x->log_body.len ? &x->log_body : &x->resp;
        if (b->len)
            tg_record_set_body(r, true, b->data, b->len, x->cfg->max_body_bytes);
    }
    /* Usually the reply that ends this exchange is written at the end of
     * this loop turn, and the journal just before it (before_write). An
     * exchange whose client is gone has no reply: journal_ev then writes. */
    if (tg_journal_submit(g_store, x->pw->journal, r))
        event_active(x->pw->journal_ev, EV_TIMEOUT, 0);
}

/* The single cleanup. The HTTP exchange has already been ended. */
static void exchange_finish(exchange_t *x)
{
    record_submit(x);
    if (x->target.provider && x->cfg->metrics_enabled) {
        tg_metrics_request(x->target.provider->name, x->target.model, x->status,
                           (double)(tg_mono_us() - x->t0_us) / 1e6,
                           x->ttfb_us ? (double)x->ttfb_us / 1e6 : -1, &x->usage,
                           x->cost_nusd >= 0 ? tg_cost_usd(x->cost_nusd) : -1);
    }
    if (tg_log_enabled(TG_LOG_INFO)) {
        double ms = (double)(tg_mono_us() - x->t0_us) / 1000.0;
        tg_info("%s %d provider=%s model=%s %.1fms retries=%d fallback=%d id=%s", x->route_path,
                x->status, x->target.provider ? x->target.provider->name : "-",
                x->target.model ? x->target.model : "-", ms, x->retries, x->fallback_index, x->id);
    }
    reset_attempt(x);
    if (x->retry_timer)
        event_free(x->retry_timer);
    /* Cache tickets end here whatever happened: a flight we still hold had
     * no whole answer; a wait must be withdrawn before its event goes. */
    if (x->flight)
        tg_cache_abandon(g_cache, x->flight);
    if (x->waiter && tg_cache_unwait(g_cache, x->waiter))
        tg_cache_entry_release(x->woken);
    if (x->cache_ev)
        event_free(x->cache_ev);
    tg_cache_policy_free(&x->cache_policy);
    tg_buf_free(&x->stream_copy);
    tg_limits_free(&x->limits);
    tg_limits_free(&x->plimits);
    tg_route_clear(&x->target);
    for (size_t i = 0; i < x->n_fallbacks; i++)
        tg_route_clear(&x->fallbacks[i]);
    free(x->model_requested);
    free(x->suffix_buf);
    free(x->hdrs);
    tg_buf_free(&x->resp);
    tg_buf_free(&x->sse_out);
    tg_buf_free(&x->sse_held);
    json_decref(x->in_root);
    free(x->error);
    tg_buf_free(&x->log_body);
    tg_config_release(x->cfg);
    free(x);
}

/* The record's error (owned; replaces an earlier one). */
static void set_error(exchange_t *x, char *message)
{
    free(x->error);
    x->error = message;
}

/* The record's error for the provider's own error answer or error event:
 * its message (tg_translate_error_message), else `fallback`, else
 * "provider answered NNN". */
static void note_provider_error(exchange_t *x, const char *body, size_t len, const char *fallback)
{
    char *m = tg_translate_error_message(body, len);
    if (!m && fallback)
        m = tg_xstrdup(fallback);
    if (!m) {
        char buf[40];
        snprintf(buf, sizeof buf, "provider answered %d", x->status);
        m = tg_xstrdup(buf);
    }
    set_error(x, m);
}

static void exchange_error(exchange_t *x, int status, const char *code, const char *message)
{
    x->status = status;
    set_error(x, tg_xstrdup(message));
    tg_reply_error(x->h, x->wire, status, code, message);
    exchange_finish(x);
}

static void copy_for_log(exchange_t *x, const char *data, size_t len);

/* The exchange failed after it began (provider cut or silent, gateway
 * shutting down): the one ending for failures, in the client's dialect and
 * in the record. Before the answer started: an error answer with `status`.
 * After a stream started the status line is gone, so the record keeps the
 * status the client was sent (SPEC §7) and the client learns in-band,
 * never a stream passed off as complete: an event stream gets its dialect's
 * error event and then its clean end; a body the gateway does not frame
 * (raw pass-through, Gemini's streamed JSON array) is cut off, the
 * connection closing without the last chunk. */
static void exchange_fail(exchange_t *x, int status, const char *code, const char *message)
{
    if (!x->streaming) {
        exchange_error(x, status, code, message);
        return;
    }
    set_error(x, tg_xstrdup(message));
    if (x->sse && x->route != ROUTE_PASSTHROUGH) {
        tg_buf_t ev = {0};
        tg_translate_error_event(x->wire, status, code, message, &ev);
        copy_for_log(x, ev.data, ev.len);
        tg_http_stream_write(x->h, ev.data, ev.len);
        tg_buf_free(&ev);
        tg_http_stream_end(x->h);
    } else {
        tg_http_stream_abort(x->h);
    }
    exchange_finish(x);
}

/* ---- attempts: retries and fallbacks ---- */

static void start_attempt(exchange_t *x);

/* How many retries the current target gets. */
static int retries_allowed(const exchange_t *x)
{
    return x->retry_on ? x->retry_num : x->target.provider->retries;
}

static bool another_attempt(const exchange_t *x)
{
    return x->tries_here < retries_allowed(x) || (size_t)x->fallback_index < x->n_fallbacks;
}

/* Exponential backoff with jitter: half the step fixed, half random, so
 * clients retrying together spread out. A provider's Retry-After wins when
 * it asks for longer. */
static int64_t backoff_ms(const exchange_t *x)
{
    double step = (double)x->retry_min_ms * pow(x->retry_factor, x->tries_here);
    if (step > (double)x->retry_max_ms)
        step = (double)x->retry_max_ms;
    char id[37];
    tg_uuid4(id); /* a cheap source of per-thread randomness */
    double r = (double)(unsigned char)id[0] / 255.0;
    int64_t ms = (int64_t)(step / 2 + step / 2 * r);
    return x->retry_after_ms > ms ? x->retry_after_ms : ms;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    start_attempt(arg);
}

/* The attempt failed before anything reached the client: try again here,
 * or move to the next target. Returns false when there is nothing left. */
static bool next_attempt(exchange_t *x)
{
    if (!another_attempt(x))
        return false;
    int64_t delay = 0;
    if (x->tries_here < retries_allowed(x) &&
        !(x->retry_after_ms > x->retry_max_ms)) { /* a provider asking for longer: move on */
        delay = backoff_ms(x);
        x->tries_here++;
        x->retries++;
    } else if ((size_t)x->fallback_index < x->n_fallbacks) {
        tg_route_clear(&x->target);
        x->target = x->fallbacks[x->fallback_index];
        memset(&x->fallbacks[x->fallback_index], 0, sizeof x->fallbacks[0]);
        x->fallback_index++;
        x->tries_here = 0;
    } else {
        return false;
    }
    reset_attempt(x);
    if (!x->retry_timer)
        x->retry_timer = evtimer_new(x->pw->base, on_retry_timer, x);
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000), .tv_usec = (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(x->retry_timer, &tv);
    return true;
}

/* Retry-After: seconds, or an HTTP date (then treated as the maximum wait). */
static int64_t parse_retry_after(const char *v)
{
    if (!v)
        return 0;
    char *end;
    double sec = strtod(v, &end);
    if (end != v && sec >= 0)
        return (int64_t)(sec * 1000);
    return INT64_MAX / 2;
}

/* Helicone-RateLimit-Limit/-Remaining/-Policy when the request sent a policy. */
static void add_policy_headers(exchange_t *x)
{
    tg_rl_headers_t rh;
    if (!tg_limits_policy_headers(g_rl, &x->limits, &rh))
        return;
    tg_http_add_header(x->h, "Helicone-RateLimit-Limit", rh.limit);
    tg_http_add_header(x->h, "Helicone-RateLimit-Remaining", rh.remaining);
    tg_http_add_header(x->h, "Helicone-RateLimit-Policy", rh.policy);
}

/* The answer is complete and sent: settle limits, feed the cache. */
static void settle(exchange_t *x)
{
    if (x->cfg->cost_enabled && x->status / 100 == 2 && x->target.model) {
        /* Helicone-Model-Override names the model whose price applies */
        const char *m = tg_http_header(x->h, "Helicone-Model-Override");
        x->cost_nusd = tg_cost_for_provider(x->cfg, x->target.provider->name,
                                            m && *m ? m : x->target.model, &x->usage);
    }
    long tokens = (x->usage.prompt_tokens > 0 ? x->usage.prompt_tokens : 0) +
                  (x->usage.completion_tokens > 0 ? x->usage.completion_tokens : 0);
    double usd = x->cost_nusd >= 0 ? tg_cost_usd(x->cost_nusd) : -1;
    tg_limits_settle(g_rl, &x->limits, tokens, usd);
    tg_limits_settle(g_rl, &x->plimits, tokens, usd);
    if (!x->flight && !x->cache_store_after)
        return;
    bool whole = x->streaming ? !x->stream_copy_full : true;
    tg_cache_answer_t a = {
        .status = x->status,
        .content_type = x->resp_ctype,
        .body = x->streaming ? x->stream_copy.data : x->resp.data,
        .body_len = x->streaming ? x->stream_copy.len : x->resp.len,
        .stream = x->streaming,
        .usage = x->usage,
        .cost = x->cost_nusd >= 0 ? tg_cost_usd(x->cost_nusd) : -1,
    };
    if (!a.body)
        a.body = "";
    if (x->flight && whole)
        tg_cache_complete(g_cache, x->flight, &a, x->cache_policy.ttl_ms);
    else if (x->flight)
        tg_cache_abandon(g_cache, x->flight);
    else if (whole)
        tg_cache_store(g_cache, &x->cache_key, x->cache_policy.bucket_max, &a,
                       x->cache_policy.ttl_ms);
    x->flight = NULL;
}

/* Keep what the client is sent of a stream, for the record (bounded). */
static void copy_for_log(exchange_t *x, const char *data, size_t len)
{
    if (!x->rec || !x->cfg->log_bodies || x->omit_response)
        return;
    int64_t room = x->cfg->max_body_bytes - (int64_t)x->log_body.len;
    if (room > 0)
        tg_buf_append(&x->log_body, data, (size_t)room < len ? (size_t)room : len);
}

/* Keep what the client is sent of a stream, for the cache. */
static void copy_for_cache(exchange_t *x, const char *data, size_t len)
{
    copy_for_log(x, data, len);
    if (!(x->flight || x->cache_store_after) || x->stream_copy_full)
        return;
    if (x->stream_copy.len + len > MAX_CACHED_STREAM) {
        x->stream_copy_full = true;
        return;
    }
    tg_buf_append(&x->stream_copy, data, len);
}

/* What this attempt says about the provider's health (balance.h). */
static void report_health(exchange_t *x, tg_outcome_t o)
{
    if (!x->target.provider)
        return;
    tg_health_report(tg_health_for(x->target.provider->name), o, x->attempt_ttfb_us,
                     x->retry_after_ms, x->cfg->lb_ejection_ms, tg_mono_ms());
}

/* ---- relay callbacks ---- */

static bool hop_by_hop(const char *name, size_t n)
{
    static const tg_name_t names[] = {
        TG_NAME("connection"), TG_NAME("keep-alive"), TG_NAME("proxy-connection"),
        TG_NAME("transfer-encoding"), TG_NAME("te"), TG_NAME("trailer"), TG_NAME("upgrade"),
        TG_NAME("content-length"), TG_NAME("proxy-authenticate")};
    return tg_name_in(name, n, names, sizeof names / sizeof names[0]);
}

static void on_up_response(void *arg, int status, const tg_headers_t *hd)
{
    exchange_t *x = arg;
    x->status = status;
    x->attempt_ttfb_us = tg_mono_us() - x->attempt_t0_us;
    bool failed = status == 429 || status >= 500;
    if (status == 429)
        x->retry_after_ms = parse_retry_after(tg_headers_get(hd, "retry-after"));
    if (failed)
        tg_metrics_upstream_error(x->target.provider->name,
                                  status == 429 ? "status_429" : "status_5xx");
    if (failed && another_attempt(x)) {
        /* Not for the client: we will retry or fall back once it ends. */
        x->discard = true;
        return;
    }
    x->ttfb_us = tg_mono_us() - x->t0_us;
    for (size_t i = 0; i < hd->n; i++) {
        size_t n = strlen(hd->names[i]);
        if (!hop_by_hop(hd->names[i], n) && !tg_has_prefix_ci(hd->names[i], "helicone-"))
            tg_http_add_header(x->h, hd->names[i], hd->values[i]);
    }
    tg_http_add_header(x->h, "Helicone-Provider", x->target.provider->name);
    if (x->cache_result)
        tg_http_add_header(x->h, "Helicone-Cache", "MISS");
    add_policy_headers(x);
    const char *rct = tg_headers_get(hd, "content-type");
    x->resp_ctype = rct ? tg_xstrdup(rct) : NULL;
    if (x->fallback_index) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", x->fallback_index);
        tg_http_add_header(x->h, "Helicone-Fallback-Index", idx);
    }

    const char *ct = tg_headers_get(hd, "content-type");
    x->sse = ct && tg_has_prefix_ci(ct, "text/event-stream");
    /* Event streams, Gemini's streamed JSON array and raw pass-through go
     * out as they arrive; other answers are whole JSON documents and are
     * sent with a length. A translated error is a whole document too. */
    bool gemini_array = x->route == ROUTE_GEMINI && x->in_stream && status / 100 == 2;
    if ((x->sse && (!x->tr || status / 100 == 2)) || x->route == ROUTE_PASSTHROUGH ||
        gemini_array) {
        x->streaming = true;
        if (x->tr && x->sse) {
            tg_translate_opts_t o = {.id = x->id, .created = (long)(x->t0_wall_ms / 1000),
                                     .model = x->target.model,
                                     .include_usage = x->tr_include_usage};
            x->ts = tg_translate_stream_new(x->tr, &o);
        }
        tg_http_stream_start(x->h, status, NULL);
    }
}

/* The dialect the provider answers in when the call is native (the mock
 * answers in OpenAI's): it reads the usage of its answers and events. */
static const tg_dialect_t *native_dialect(const exchange_t *x)
{
    return tg_dialect_for(x->target.provider->type);
}

/* True when the member's value is an empty array (or the member is absent). */
static bool no_choices(const char *doc, size_t len)
{
    size_t a, b;
    if (!tg_json_member(doc, len, "choices", &a, &b))
        return true;
    if (doc[a] != '[')
        return false;
    for (size_t i = a + 1; i < b; i++)
        if (doc[i] != ' ' && doc[i] != '\n' && doc[i] != '\t' && doc[i] != '\r')
            return doc[i] == ']';
    return false;
}

/* True when the JSON document has a top-level "error" member. */
static bool has_error_member(const char *doc, size_t len)
{
    size_t a, b;
    return memmem(doc, len, "\"error\"", 7) && tg_json_member(doc, len, "error", &a, &b);
}

/* What one event of a native stream says about the stream's end: the
 * dialect's terminator (OpenAI's `[DONE]`, or a Responses stream's
 * response.completed / .incomplete / .failed; Anthropic's message_stop;
 * Gemini, which has none, a finishReason) or the provider's own error event,
 * whose message the record keeps. The client gets the events as they are. */
static void note_native_event(exchange_t *x, const char *event, const char *data, size_t len)
{
    if (x->stream_over)
        return;
    bool err;
    if (x->wire == TG_WIRE_ANTHROPIC) {
        x->stream_over = !strcmp(event, "message_stop");
        err = !strcmp(event, "error");
    } else if (x->wire == TG_WIRE_GEMINI) {
        x->stream_over = memmem(data, len, "\"finishReason\"", 14) &&
                         !memmem(data, len, "FINISH_REASON_UNSPECIFIED", 25);
        err = has_error_member(data, len);
    } else if (x->route == ROUTE_RESPONSES) {
        x->stream_over =
            !strcmp(event, "response.completed") || !strcmp(event, "response.incomplete");
        err = !strcmp(event, "error") || !strcmp(event, "response.failed");
    } else {
        x->stream_over = len == 6 && !memcmp(data, "[DONE]", 6);
        err = has_error_member(data, len);
    }
    if (err) {
        x->stream_over = true;
        note_provider_error(x, data, len, "the provider reported an error mid-stream");
    }
}

/* One event of the provider's stream. Translated: it becomes the client's
 * events. Native: its usage is read; in OpenAI's dialect the usage chunk we
 * asked for (no choices, only usage) is dropped when the client did not ask
 * for it; everything else is passed on. */
static int on_stream_event(void *arg, const char *event, const char *data, size_t len)
{
    exchange_t *x = arg;
    if (x->ts) { /* another dialect: its events become the client's */
        tg_translate_stream_feed(x->ts, event, data, len, &x->sse_out);
        tg_translate_stream_usage(x->ts, &x->usage);
        return 0;
    }
    note_native_event(x, event, data, len);
    const tg_dialect_t *d = native_dialect(x);
    if (x->wire != TG_WIRE_OPENAI) { /* read usage, pass as is */
        d->event_usage(data, len, &x->usage);
        return 0;
    }
    bool drop = false;
    if (memmem(data, len, "\"usage\"", 7)) {
        /* the chunk we asked for: usage, and no choices */
        drop = d->event_usage(data, len, &x->usage) && x->hide_usage && no_choices(data, len);
    }
    if (x->hide_usage && !drop)
        tg_sse_write(&x->sse_out, strcmp(event, "message") ? event : NULL, data, len);
    return 0;
}

/* A native event stream goes on as it came, but in whole events: the start
 * of an event waits for its end, so a stream cut in the middle of an event
 * ends with the error event rather than half an event the client cannot
 * read (when chunks end on event boundaries, as they do, nothing waits).
 * The wait is bounded by the SSE parser's event limit. True when the
 * client's output is full. */
static bool pass_events(exchange_t *x, const char *data, size_t len)
{
    if (x->sse_held.len) {
        tg_buf_append(&x->sse_held, data, len);
        data = x->sse_held.data;
        len = x->sse_held.len;
    }
    size_t whole = tg_sse_whole(data, len);
    bool full = false;
    if (whole) {
        copy_for_cache(x, data, whole);
        full = tg_http_stream_write(x->h, data, whole);
    }
    if (data == x->sse_held.data) {
        memmove(x->sse_held.data, data + whole, len - whole);
        x->sse_held.len = len - whole;
        x->sse_held.data[x->sse_held.len] = 0;
    } else if (whole < len) {
        tg_buf_append(&x->sse_held, data + whole, len - whole);
    }
    return full;
}

static int on_up_data(void *arg, const char *data, size_t len)
{
    exchange_t *x = arg;
    if (x->discard)
        return 0;
    if (x->streaming && x->sse && x->route != ROUTE_PASSTHROUGH) {
        if (tg_sse_feed(&x->sse_in, data, len, on_stream_event, x) < 0)
            return -1; /* an event over the parser's limit: not a sane stream */
        if (!x->hide_usage && !x->ts)
            return pass_events(x, data, len) ? 1 : 0;
        copy_for_cache(x, x->sse_out.data, x->sse_out.len);
        bool full = tg_http_stream_write(x->h, x->sse_out.data, x->sse_out.len);
        tg_buf_reset(&x->sse_out);
        return full ? 1 : 0;
    }
    if (x->streaming) {
        if (x->route == ROUTE_GEMINI) { /* the JSON array: kept for its usage and the cache */
            if (x->resp.len + len <= MAX_BUFFERED_RESPONSE)
                tg_buf_append(&x->resp, data, len);
            copy_for_cache(x, data, len);
        } else {
            copy_for_log(x, data, len);
            if (x->status >= 400 && x->resp.len < MAX_ERROR_BODY) /* for its message */
                tg_buf_append(&x->resp, data, len);
        }
        return tg_http_stream_write(x->h, data, len) ? 1 : 0;
    }
    if (x->resp.len + len > MAX_BUFFERED_RESPONSE) {
        x->too_large = true;
        return -1;
    }
    tg_buf_append(&x->resp, data, len);
    return 0;
}

/* A whole (not streamed) answer, made the client's: translated from the
 * provider's dialect (errors too), and its usage read. False when a 2xx
 * answer cannot be read. */
static bool client_form(exchange_t *x)
{
    bool ok2xx = x->status / 100 == 2;
    if (x->tr) {
        tg_buf_t out = {0};
        if (ok2xx) {
            tg_translate_opts_t o = {.id = x->id, .created = (long)(x->t0_wall_ms / 1000),
                                     .model = x->target.model};
            if (tg_translate_response(x->tr, x->resp.data, x->resp.len, &o, &out, &x->usage) < 0) {
                tg_buf_free(&out);
                return false;
            }
        } else {
            tg_translate_error(x->wire, x->status, x->resp.data, x->resp.len, &out);
        }
        tg_buf_free(&x->resp);
        x->resp = out;
        return true;
    }
    if (ok2xx)
        native_dialect(x)->answer_usage(x->resp.data, x->resp.len, &x->usage);
    return true;
}

/* Gemini's streamed JSON array ended as Gemini ends one: the array closed,
 * a finishReason given. */
static bool gemini_array_complete(const tg_buf_t *b)
{
    size_t n = b->len;
    while (n && (b->data[n - 1] == ' ' || b->data[n - 1] == '\n' || b->data[n - 1] == '\r' ||
                 b->data[n - 1] == '\t'))
        n--;
    return n && b->data[n - 1] == ']' && memmem(b->data, n, "\"finishReason\"", 14);
}

/* Did the provider's stream, whose transfer ended cleanly, end as its
 * dialect ends a stream? A stream cut on an event boundary (a proxy or the
 * provider closing early) looks clean to HTTP. Raw pass-through bodies are
 * not read, so not judged; nor are error answers. */
static bool stream_complete(const exchange_t *x)
{
    if (!x->streaming || x->route == ROUTE_PASSTHROUGH || x->status / 100 != 2)
        return true;
    if (x->ts)
        return tg_translate_stream_ended(x->ts);
    if (x->sse)
        return x->stream_over;
    return x->resp.len >= MAX_BUFFERED_RESPONSE || gemini_array_complete(&x->resp);
}

/* Why an attempt failed, in one place: the status a client that has no
 * answer yet gets, the error code, the message for client and record, and
 * the metric's kind. */
typedef struct {
    int status;
    const char *code;
    const char *kind;
    char msg[512];
} failure_t;

static void classify_failure(const exchange_t *x, tg_upstream_result_t res, const char *err,
                             failure_t *f)
{
    const char *pname = x->target.provider->name;
    f->status = 502;
    f->code = "provider_error";
    f->kind = "broken";
    if (x->too_large) {
        f->kind = "too_large";
        snprintf(f->msg, sizeof f->msg, "provider '%s' answered more than %d MiB", pname,
                 MAX_BUFFERED_RESPONSE >> 20);
    } else if (res == TG_UP_TIMEOUT) {
        f->status = 504;
        f->code = "provider_timeout";
        f->kind = "timeout";
        snprintf(f->msg, sizeof f->msg, "provider '%s' timed out: %s", pname, err);
    } else if (res == TG_UP_CONNECT) {
        f->code = "provider_unreachable";
        f->kind = "connect";
        snprintf(f->msg, sizeof f->msg, "provider '%s' is unreachable: %s", pname, err);
    } else {
        snprintf(f->msg, sizeof f->msg, "provider '%s' broke off its answer: %s", pname, err);
    }
}

static void on_up_done(void *arg, tg_upstream_result_t res, const char *err)
{
    exchange_t *x = arg;
    x->up = NULL;
    if (res == TG_UP_OK && !x->too_large && !stream_complete(x)) {
        res = TG_UP_BROKEN;
        err = "the stream ended without its terminator";
    }
    report_health(x, x->status == 429                             ? TG_OUTCOME_RATE_LIMITED
                     : res != TG_UP_OK || x->status >= 500 || x->too_large ? TG_OUTCOME_FAILED
                                                                        : TG_OUTCOME_OK);
    if (x->discard) {
        if (!next_attempt(x)) /* cannot happen: discard implies another attempt */
            exchange_error(x, 502, "provider_error", "no attempt left");
        return;
    }
    if (res == TG_UP_OK && !x->too_large) {
        if (x->status >= 400 && !x->error) /* the provider's own error, passed on */
            note_provider_error(x, x->resp.data, x->resp.len, NULL);
        if (x->streaming && x->ts) {
            /* the provider's stream ended as it should: the client's closing events */
            tg_buf_reset(&x->sse_out);
            tg_translate_stream_finish(x->ts, &x->sse_out);
            tg_translate_stream_usage(x->ts, &x->usage);
            if (tg_translate_stream_error(x->ts))
                set_error(x, tg_xstrdup(tg_translate_stream_error(x->ts)));
            copy_for_cache(x, x->sse_out.data, x->sse_out.len);
            tg_http_stream_write(x->h, x->sse_out.data, x->sse_out.len);
        } else if (x->streaming && x->sse_held.len) { /* a last line without its blank line */
            copy_for_cache(x, x->sse_held.data, x->sse_held.len);
            tg_http_stream_write(x->h, x->sse_held.data, x->sse_held.len);
        } else if (x->streaming && x->route == ROUTE_GEMINI && !x->sse) {
            /* Gemini's streamed JSON array, kept whole for its usage */
            native_dialect(x)->answer_usage(x->resp.data, x->resp.len, &x->usage);
        } else if (!x->streaming && x->route != ROUTE_PASSTHROUGH && !client_form(x)) {
            exchange_error(x, 502, "provider_error", "the provider's answer could not be read");
            return;
        }
        if (x->error && x->status / 100 == 2) { /* a stream that carried the provider's error */
            if (x->flight)
                tg_cache_abandon(g_cache, x->flight);
            x->flight = NULL;
            x->cache_store_after = false;
        }
        settle(x); /* before the reply: the answer buffers still hold the body */
        if (x->streaming)
            tg_http_stream_end(x->h);
        else
            tg_http_reply(x->h, x->status, NULL, x->resp.data, x->resp.len);
        exchange_finish(x);
        return;
    }

    failure_t f;
    classify_failure(x, res, err, &f);
    tg_warn("%s id=%s: %s", x->route_path, x->id, f.msg);
    tg_metrics_upstream_error(x->target.provider->name, f.kind);
    if (!x->streaming && !x->too_large && next_attempt(x))
        return;
    exchange_fail(x, f.status, f.code, f.msg);
}

static void on_client_close(void *arg)
{
    exchange_t *x = arg;
    if (x->up) {
        tg_upstream_cancel(x->up);
        x->up = NULL;
    }
    if (x->retry_timer)
        event_del(x->retry_timer);
    if (tg_http_shutdown_cut(x->h)) { /* the gateway ends it; the client is still there */
        exchange_fail(x, 503, "gateway_shutting_down",
                      "the gateway is shutting down: server.shutdown_timeout passed");
        return;
    }
    x->status = 499; /* nothing more reaches the client: 499 means it left */
    set_error(x, tg_xstrdup(x->streaming ? "the client closed the connection mid-stream"
                                         : "the client closed the connection"));
    if (x->streaming)
        tg_http_stream_end(x->h);
    else
        tg_http_reply(x->h, 499, NULL, NULL, 0);
    exchange_finish(x);
}

static void on_client_drain(void *arg)
{
    exchange_t *x = arg;
    if (x->up)
        tg_upstream_resume(x->up);
}

/* ---- upstream request ---- */

static void push_header(exchange_t *x, const char *name, const char *value)
{
    if (x->n_hdrs == x->cap_hdrs) {
        x->cap_hdrs = x->cap_hdrs ? x->cap_hdrs * 2 : 16;
        x->hdrs = tg_xrealloc(x->hdrs, x->cap_hdrs * sizeof(char *));
    }
    size_t nl = strlen(name), vl = strlen(value);
    char *line = tg_xmalloc(nl + vl + 3);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
    x->hdrs[x->n_hdrs++] = line;
}

typedef struct {
    exchange_t *x;
    bool drop_credentials;
} fwd_ctx_t;

/* Which client headers reach the provider. */
static int forward_header(const char *name, const char *value, void *arg)
{
    fwd_ctx_t *c = arg;
    static const tg_name_t dropped[] = {TG_NAME("host"), TG_NAME("expect"),
                                        TG_NAME("accept-encoding"), TG_NAME("proxy-authorization"),
                                        TG_NAME("cookie")};
    size_t n = strlen(name);
    if (hop_by_hop(name, n) || tg_has_prefix_ci(name, "helicone-") ||
        tg_name_in(name, n, dropped, sizeof dropped / sizeof dropped[0]))
        return 0;
    if (c->drop_credentials && tg_is_credential_header(name))
        return 0;
    if (c->x->caller.consumed_header && !strcasecmp(name, c->x->caller.consumed_header))
        return 0;
    push_header(c->x, name, value);
    return 0;
}

/* The provider key a client sent in its own dialect's header (bring your
 * own key), not counting a header that carried the gateway key. */
static const char *client_credential(const exchange_t *x)
{
    static const char *const names[] = {"Authorization", "x-api-key", "x-goog-api-key",
                                        "api-key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (x->caller.consumed_header && !strcasecmp(names[i], x->caller.consumed_header))
            continue;
        const char *v = tg_http_header(x->h, names[i]);
        if (!v)
            continue;
        if (i == 0) /* only a Bearer token is a key; other schemes are not ours to move */
            return tg_has_prefix_ci(v, "Bearer ") ? v + 7 : NULL;
        return v;
    }
    return NULL;
}

/* The request body with its top-level "model" (at model_span) set to
 * `model` (when not NULL) and `"stream_options":{"include_usage":true}`
 * added (when asked; the body has no stream_options then). Everything else
 * stays as sent. */
static char *edit_body(const char *body, size_t len, tg_json_span_t model_span,
                       const char *model, bool add_usage, size_t *out_len)
{
    tg_buf_t out = {0}, ins = {0};
    size_t a = model_span.start, b = model_span.end;
    bool has_model = model && model_span.found;
    if (model && !has_model) {
        tg_buf_puts(&ins, "\"model\":\"");
        tg_buf_json_escape(&ins, model, strlen(model));
        tg_buf_puts(&ins, "\",");
    }
    if (add_usage)
        tg_buf_puts(&ins, "\"stream_options\":{\"include_usage\":true},");
    size_t open = tg_json_object_start(body, len);
    size_t rest = open;
    while (rest < len && (body[rest] == ' ' || body[rest] == '\n' || body[rest] == '\t' ||
                          body[rest] == '\r'))
        rest++;
    if (ins.len && rest < len && body[rest] == '}')
        ins.len--; /* empty object: no comma after what we insert */

    tg_buf_append(&out, body, open);
    if (ins.len)
        tg_buf_append(&out, ins.data, ins.len);
    if (has_model) {
        tg_buf_append(&out, body + open, a - open);
        tg_buf_puts(&out, "\"");
        tg_buf_json_escape(&out, model, strlen(model));
        tg_buf_puts(&out, "\"");
        tg_buf_append(&out, body + b, len - b);
    } else {
        tg_buf_append(&out, body + open, len - open);
    }
    tg_buf_free(&ins);
    *out_len = out.len;
    return out.data;
}

/* The body this attempt's provider gets (LLM routes). The client's bytes go
 * through unchanged unless something must change, and are then edited in
 * place; only a client's own stream_options object that needs a new member,
 * or a model key spelled with escapes, makes us re-encode the document. */
static void build_llm_body(exchange_t *x)
{
    const tg_provider_cfg_t *p = x->target.provider;
    if (x->route == ROUTE_GEMINI) { /* the model is in the URL; the body passes as is */
        x->body_ptr = x->in_body;
        x->body_len = x->in_len;
        return;
    }
    /* SPEC §7: usage for every stream. Ask for the usage chunk; hide it from
     * a client that did not ask for it (on_stream_event). */
    bool add_usage = x->in_stream && (x->route == ROUTE_CHAT || x->route == ROUTE_COMPLETIONS) &&
                     tg_provider_accepts_stream_options(p) && !x->in_client_usage;
    x->hide_usage = add_usage;
    const char *model = x->model_requested;
    bool new_model = !model || strcmp(model, x->target.model) != 0;
    bool odd_key = model && new_model && !x->in_keys[IN_MODEL].found;
    if ((add_usage && x->in_has_stream_options) || odd_key) {
        if (!x->in_root)
            x->in_root = json_loadb(x->in_body, x->in_len, JSON_ALLOW_NUL, NULL);
        json_t *root = json_deep_copy(x->in_root);
        if (add_usage)
            json_object_set_new(json_object_get(root, "stream_options"), "include_usage",
                                json_true());
        json_object_set_new(root, "model", json_string(x->target.model));
        x->body = json_dumps(root, JSON_COMPACT);
        x->body_len = strlen(x->body);
        json_decref(root);
    } else if (new_model || add_usage) {
        x->body = edit_body(x->in_body, x->in_len, x->in_keys[IN_MODEL],
                            new_model ? x->target.model : NULL, add_usage, &x->body_len);
    }
    x->body_ptr = x->body ? x->body : x->in_body;
    if (!x->body)
        x->body_len = x->in_len;
}

/* A query string without the parameter `name` (malloc'd; NULL for none). */
static char *query_without(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nlen = strlen(name);
    tg_buf_t out = {0};
    for (const char *p = query; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!(len >= nlen && !memcmp(p, name, nlen) && (len == nlen || p[nlen] == '='))) {
            if (out.len)
                tg_buf_puts(&out, "&");
            tg_buf_append(&out, p, len);
        }
        p += len + (end ? 1 : 0);
    }
    if (!out.len) {
        tg_buf_free(&out);
        return tg_xstrdup("");
    }
    return out.data;
}

/* The client's body as a tree, parsed once and only when needed. */
static json_t *in_root(exchange_t *x)
{
    if (!x->in_root)
        x->in_root = json_loadb(x->in_body, x->in_len, JSON_ALLOW_NUL, NULL);
    return x->in_root;
}

/* One attempt at the current target: URL, headers, body, then the call. */
static void start_attempt(exchange_t *x)
{
    const tg_provider_cfg_t *p = x->target.provider;
    const tg_dialect_t *d = tg_dialect_for(p->type);

    x->tr = x->route == ROUTE_PASSTHROUGH ? NULL : tg_translate_for(x->wire, p->type);
    if (x->tr) {
        /* The provider speaks another dialect: translate the request. */
        char err[512];
        tg_translate_ropts_t ro = {.stream_usage = tg_provider_accepts_stream_options(p)};
        tg_translate_req_t rq;
        memset(&rq, 0, sizeof rq);
        if (tg_translate_request(x->tr, in_root(x), x->target.model, &ro, &rq, err, sizeof err) <
            0) {
            tg_translate_req_free(&rq);
            exchange_error(x, 400, "untranslatable_request", err);
            return;
        }
        x->body = json_dumps(rq.body, TG_TRANSLATE_DUMP_FLAGS);
        x->body_ptr = x->body;
        x->body_len = strlen(x->body);
        x->tr_include_usage = rq.include_usage;
        x->url = p->type == TG_PROVIDER_AZURE
                     ? tg_azure_url(p, x->target.model, rq.path, tg_http_query(x->h))
                     : tg_provider_url(p, rq.path, rq.query);
        tg_translate_req_free(&rq);
    } else {
        if (x->route == ROUTE_PASSTHROUGH) {
            x->body_ptr = x->in_body;
            x->body_len = x->in_len;
        } else {
            build_llm_body(x);
        }
        if (x->route == ROUTE_GEMINI) { /* this attempt's model goes in the path */
            free(x->suffix_buf);
            x->suffix_buf = tg_gemini_model_path(x->target.model, x->gemini_action);
            x->suffix = x->suffix_buf;
        }
        /* A Gemini client may carry its key as ?key=; a configured key replaces it. */
        char *query = p->type == TG_PROVIDER_GEMINI && p->api_key
                          ? query_without(tg_http_query(x->h), "key")
                          : NULL;
        const char *q = query ? query : tg_http_query(x->h);
        x->url = p->type == TG_PROVIDER_AZURE && x->route != ROUTE_PASSTHROUGH
                     ? tg_azure_url(p, x->target.model, x->suffix, q)
                     : tg_provider_url(p, x->suffix, q);
        free(query);
    }
    if (!x->url) { /* the URL builders refuse a path that leaves base_url */
        char msg[400];
        snprintf(msg, sizeof msg,
                 "the path, model or query of this request would not stay under the base path "
                 "of provider '%s'",
                 p->name);
        exchange_error(x, 400, "invalid_path", msg);
        return;
    }
    /* SPEC §5: a configured key replaces whatever credential the client sent;
     * without one, the client's own credential goes through unchanged — in
     * the provider's header when the request is translated (an OpenAI SDK's
     * Bearer key becomes x-api-key for Anthropic, x-goog-api-key for Gemini). */
    const char *key = p->api_key ? p->api_key : x->tr ? client_credential(x) : NULL;
    fwd_ctx_t c = {.x = x, .drop_credentials = key != NULL};
    tg_http_headers_foreach(x->h, forward_header, &c);
    if (key) {
        size_t n = strlen(d->auth_prefix) + strlen(key) + 1;
        char *v = tg_xmalloc(n);
        snprintf(v, n, "%s%s", d->auth_prefix, key);
        push_header(x, d->auth_header, v);
        free(v);
    }
    for (size_t i = 0; i < p->n_headers; i++)
        push_header(x, p->headers[i].name, p->headers[i].value);
    if (p->type == TG_PROVIDER_ANTHROPIC && !tg_http_header(x->h, "anthropic-version"))
        push_header(x, "anthropic-version", "2023-06-01");

    tg_upstream_req_t req = {
        .method = tg_http_method(x->h),
        .url = x->url,
        .headers = (const char *const *)x->hdrs,
        .n_headers = x->n_hdrs,
        .body = x->body_ptr,
        .body_len = x->body_len,
        .connect_timeout_ms = p->timeout_ms < 10000 ? p->timeout_ms : 10000,
        .idle_timeout_ms = p->timeout_ms,
    };
    static const tg_upstream_cbs_t cbs = {on_up_response, on_up_data, on_up_done};
    x->attempt_t0_us = tg_mono_us();
    x->attempt_ttfb_us = 0;
    x->up = tg_upstream_start(x->pw->relay, &req, &cbs, x);
}

/* Retry settings from the Helicone-Retry-* headers (SPEC §6). */
static void read_retry_headers(exchange_t *x)
{
    const char *v = tg_http_header(x->h, "Helicone-Retry-Enabled");
    x->retry_on = v && !strcasecmp(v, "true");
    x->retry_num = 5;
    x->retry_factor = 2;
    x->retry_min_ms = 1000;
    x->retry_max_ms = 10000;
    if (!x->retry_on)
        return;
    if ((v = tg_http_header(x->h, "Helicone-Retry-Num")) && atoi(v) >= 0)
        x->retry_num = atoi(v) > 20 ? 20 : atoi(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Factor")) && atof(v) >= 1)
        x->retry_factor = atof(v) > 10 ? 10 : atof(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Min-Timeout")) && atoll(v) >= 0)
        x->retry_min_ms = atoll(v);
    if ((v = tg_http_header(x->h, "Helicone-Retry-Max-Timeout")) && atoll(v) > 0)
        x->retry_max_ms = atoll(v);
    if (x->retry_min_ms > x->retry_max_ms)
        x->retry_min_ms = x->retry_max_ms;
}

static const tg_http_events_t client_events = {on_client_close, on_client_drain};

/* Start the call: the first attempt at the first target. */
static void begin_upstream(exchange_t *x)
{
    tg_http_set_events(x->h, &client_events, x);
    read_retry_headers(x);
    start_attempt(x);
}

/* ---- rate limits (proxy/limits.h) ---- */

/* 429 with Retry-After and the denied limit's Helicone-RateLimit-* headers. */
static void deny(exchange_t *x, const tg_rl_headers_t *rh)
{
    tg_metrics_rate_limited();
    tg_http_add_header(x->h, "Retry-After", rh->retry_after);
    tg_http_add_header(x->h, "Helicone-RateLimit-Limit", rh->limit);
    tg_http_add_header(x->h, "Helicone-RateLimit-Remaining", rh->remaining);
    tg_http_add_header(x->h, "Helicone-RateLimit-Policy", rh->policy);
    char msg[256];
    snprintf(msg, sizeof msg, "rate limit exceeded (%s); retry after %s s", rh->policy,
             rh->retry_after);
    exchange_error(x, 429, "rate_limit_exceeded", msg);
}

/* The caller's limits. False when the exchange was answered (400 or 429). */
static bool client_limits(exchange_t *x)
{
    char err[256];
    if (tg_limits_for_client(&x->limits, x->cfg, g_rules, get_header, x->h,
                             tg_http_client_ip(x->h), x->caller.key_name, err, sizeof err) < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "Helicone-RateLimit-Policy: %s", err);
        exchange_error(x, 400, "invalid_rate_limit_policy", msg);
        return false;
    }
    tg_rl_headers_t rh;
    if (!tg_limits_acquire(g_rl, &x->limits, &rh)) {
        deny(x, &rh);
        return false;
    }
    return true;
}

/* The provider's limits, then the call. */
static void proceed_upstream(exchange_t *x)
{
    tg_limits_for_provider(&x->plimits, x->cfg, x->target.provider->name);
    tg_rl_headers_t rh;
    if (!tg_limits_acquire(g_rl, &x->plimits, &rh)) {
        deny(x, &rh);
        return;
    }
    begin_upstream(x);
}

/* ---- cache (cache/cache.h) ---- */

/* Answers are shared between callers who would reach the provider with the
 * same credential: for a provider with a configured key, per gateway key
 * (or everyone, without gateway keys); for bring-your-own-key, per client
 * credential, which is never stored itself, only a digest of it. */
static const char *cache_scope(exchange_t *x, char out[33])
{
    if (x->target.provider->api_key)
        return x->caller.key_name;
    /* Every header a provider may take a key from (Azure's api-key too: a
     * caller must not get an answer paid with another caller's key), and
     * for Gemini the query (?key=..., with whatever else is there). */
    static const char *const names[] = {"Authorization", "x-api-key", "x-goog-api-key",
                                        "api-key"};
    tg_buf_t creds = {0};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = tg_http_header(x->h, names[i]);
        if (v) {
            tg_buf_printf(&creds, "%zu:", i);
            tg_buf_append(&creds, v, strlen(v) + 1);
        }
    }
    const char *q = tg_http_query(x->h);
    if (q && x->target.provider->type == TG_PROVIDER_GEMINI) {
        tg_buf_puts(&creds, "q:");
        tg_buf_puts(&creds, q);
    }
    if (!creds.len)
        return x->caller.key_name;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)creds.data, creds.len, d);
    tg_buf_free(&creds);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = 0;
    return out;
}

static void serve_cached(exchange_t *x, tg_cache_entry_t *e)
{
    x->cache_result = "hit";
    x->status = e->status;
    x->usage = e->usage;
    x->cost_nusd = 0; /* the provider was not paid for this one */
    copy_for_log(x, e->body, e->body_len);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", e->bucket);
    tg_http_add_header(x->h, "Helicone-Cache", "HIT");
    tg_http_add_header(x->h, "Helicone-Cache-Bucket-Idx", idx);
    tg_http_add_header(x->h, "Helicone-Provider", x->target.provider->name);
    add_policy_headers(x);
    tg_metrics_cache("hit");
    if (e->stream) {
        tg_http_add_header(x->h, "Cache-Control", "no-cache");
        tg_http_stream_start(x->h, e->status,
                             e->content_type[0] ? e->content_type : "text/event-stream");
        tg_http_stream_write(x->h, e->body, e->body_len);
        tg_http_stream_end(x->h);
    } else {
        tg_http_reply(x->h, e->status, e->content_type[0] ? e->content_type : "application/json",
                      e->body, e->body_len);
    }
    tg_cache_entry_release(e);
    exchange_finish(x);
}

/* The leader finished (on its own thread): hand over, nothing more. */
static void on_cache_wake(void *arg, tg_cache_entry_t *entry)
{
    exchange_t *x = arg;
    x->woken = entry;
    event_active(x->cache_ev, EV_READ, 0);
}

/* Back on our thread: serve what the leader got, or fetch it ourselves. */
static void on_cache_ev(evutil_socket_t fd, short what, void *arg)
{
    exchange_t *x = arg;
    tg_cache_unwait(g_cache, x->waiter);
    x->waiter = NULL;
    tg_cache_entry_t *e = x->woken;
    x->woken = NULL;
    if (e) {
        serve_cached(x, e);
        return;
    }
    tg_metrics_cache("miss");
    x->cache_store_after = x->cache_policy.save;
    proceed_upstream(x);
}

/* Look the request up. True when the exchange was answered here (a hit, a
 * bad header) or parked behind an identical request already in flight. */
static bool cache_stage(exchange_t *x)
{
    char err[256];
    tg_cache_policy_t *p = &x->cache_policy;
    if (tg_cache_policy_parse(p, x->cfg->cache_enabled, x->cfg->cache_ttl_ms, get_header, x->h,
                              err, sizeof err) < 0) {
        exchange_error(x, 400, "invalid_cache_header", err);
        return true;
    }
    if (!p->read && !p->save)
        return false;
    char scope_buf[33], route[600];
    /* Gemini's model is in the path, so the path is part of the key */
    snprintf(route, sizeof route, "POST %.500s",
             x->route == ROUTE_GEMINI ? tg_http_path(x->h) : x->route_path);
    tg_cache_key(p, cache_scope(x, scope_buf), route, x->in_body, x->in_len, &x->cache_key);
    if (!p->read) {
        x->cache_store_after = true;
        return false;
    }
    x->cache_result = "miss";
    x->cache_ev = event_new(x->pw->base, -1, 0, on_cache_ev, x);
    tg_cache_result_t r;
    tg_cache_lookup(g_cache, &x->cache_key, p->bucket_max, p->save, on_cache_wake, x, &r);
    switch (r.status) {
    case TG_CACHE_HIT:
        serve_cached(x, r.entry);
        return true;
    case TG_CACHE_MISS_WAIT:
        x->waiter = r.waiter;
        tg_http_set_events(x->h, &client_events, x); /* a client that leaves while parked */
        return true;
    case TG_CACHE_MISS_LEADER:
        x->flight = r.flight;
        break;
    case TG_CACHE_MISS:
        break;
    }
    tg_metrics_cache("miss");
    return false;
}

/* ---- LLM routes ---- */

/* count_tokens for a provider that has none: a documented local estimate. */
static void count_tokens_locally(exchange_t *x)
{
    tg_buf_t out = {0};
    tg_translate_count_tokens(in_root(x), &out);
    x->status = 200;
    tg_http_reply(x->h, 200, "application/json", out.data, out.len);
    tg_buf_free(&out);
    exchange_finish(x);
}

/* An Anthropic client on the mock: its request translated to Chat
 * Completions, the mock's answer translated back, through the same
 * translators a real provider's call would use. */
static void answer_mock_translated(exchange_t *x, bool stream)
{
    const tg_translator_t *t = tg_translate_for(x->wire, TG_PROVIDER_MOCK);
    char err[512];
    tg_translate_ropts_t ro = {.stream_usage = true};
    tg_translate_req_t rq;
    memset(&rq, 0, sizeof rq);
    if (!t || tg_translate_request(t, in_root(x), x->target.model, &ro, &rq, err, sizeof err) < 0) {
        tg_translate_req_free(&rq);
        exchange_error(x, 400, "untranslatable_request", t ? err : "no translation to the mock");
        return;
    }
    tg_buf_t mock = {0}, out = {0};
    x->status = tg_mock_answer(TG_MOCK_CHAT, rq.body, x->target.model, stream, &mock);
    tg_translate_req_free(&rq);
    tg_translate_opts_t o = {.id = x->id, .created = (long)(x->t0_wall_ms / 1000),
                             .model = x->target.model};
    tg_http_add_header(x->h, "Helicone-Provider", "mock");
    add_policy_headers(x);
    x->cost_nusd = x->cfg->cost_enabled ? 0 : -1;
    if (x->status != 200) {
        note_provider_error(x, mock.data, mock.len, NULL);
        tg_translate_error(x->wire, x->status, mock.data, mock.len, &out);
        tg_http_reply(x->h, x->status, "application/json", out.data, out.len);
    } else if (!stream) {
        tg_translate_response(t, mock.data, mock.len, &o, &out, &x->usage);
        copy_for_log(x, out.data, out.len);
        tg_http_reply(x->h, 200, "application/json", out.data, out.len);
    } else {
        x->ts = tg_translate_stream_new(t, &o);
        tg_sse_parser_t sp = {0};
        tg_sse_feed(&sp, mock.data, mock.len, on_stream_event, x); /* into x->sse_out */
        tg_sse_free(&sp);
        tg_translate_stream_finish(x->ts, &x->sse_out);
        tg_translate_stream_usage(x->ts, &x->usage);
        copy_for_log(x, x->sse_out.data, x->sse_out.len);
        tg_http_add_header(x->h, "Cache-Control", "no-cache");
        tg_http_stream_start(x->h, 200, "text/event-stream");
        tg_http_stream_write(x->h, x->sse_out.data, x->sse_out.len);
        tg_http_stream_end(x->h);
    }
    tg_buf_free(&mock);
    tg_buf_free(&out);
    exchange_finish(x);
}

/* The mock's usage: in its JSON, or in the last event of its stream. */
static void take_usage_from_mock(exchange_t *x, const tg_buf_t *out, bool stream)
{
    if (!stream) {
        tg_dialect_openai.answer_usage(out->data, out->len, &x->usage);
        return;
    }
    tg_sse_parser_t p = {0};
    bool hide = x->hide_usage;
    x->hide_usage = false;
    tg_sse_feed(&p, out->data, out->len, on_stream_event, x);
    x->hide_usage = hide;
    tg_sse_free(&p);
}

static void answer_mock(exchange_t *x, json_t *root, bool stream)
{
    if (x->wire != TG_WIRE_OPENAI) {
        answer_mock_translated(x, stream);
        return;
    }
    tg_mock_kind_t kind;
    switch (x->route) {
    case ROUTE_CHAT:
        kind = TG_MOCK_CHAT;
        break;
    case ROUTE_COMPLETIONS:
        kind = TG_MOCK_COMPLETIONS;
        break;
    case ROUTE_EMBEDDINGS:
        kind = TG_MOCK_EMBEDDINGS;
        stream = false;
        break;
    default:
        exchange_error(x, 400, "unsupported_route",
                       "the mock provider answers chat completions, completions and embeddings");
        return;
    }
    tg_buf_t out = {0};
    x->status = tg_mock_answer(kind, root, x->target.model, stream, &out);
    if (x->status == 200)
        take_usage_from_mock(x, &out, stream);
    else
        note_provider_error(x, out.data, out.len, NULL);
    copy_for_log(x, out.data, out.len);
    x->cost_nusd = x->cfg->cost_enabled ? 0 : -1; /* answered locally: free */
    tg_http_add_header(x->h, "Helicone-Provider", "mock");
    add_policy_headers(x);
    if (stream && x->status == 200) {
        tg_http_add_header(x->h, "Cache-Control", "no-cache");
        tg_http_stream_start(x->h, 200, "text/event-stream");
        tg_http_stream_write(x->h, out.data, out.len);
        tg_http_stream_end(x->h);
    } else {
        tg_http_reply(x->h, x->status, "application/json", out.data, out.len);
    }
    tg_buf_free(&out);
    exchange_finish(x);
}

static bool member_is(const char *doc, size_t len, const char *key, const char *literal)
{
    tg_json_span_t sp;
    tg_json_members(doc, len, &key, 1, &sp);
    return tg_json_span_is(doc, sp, literal);
}

/* Validate the body and read model, stream and stream_options without
 * building a tree. Answers 400 and returns false when it is not usable. */
static bool read_llm_body(exchange_t *x)
{
    char msg[300], mbuf[256];
    x->in_body = tg_http_body(x->h, &x->in_len);
    record_request_body(x);
    size_t off;
    const char *why;
    if (!x->in_body) {
        exchange_error(x, 400, "invalid_json", "the request body is empty; a JSON object is expected");
        return false;
    }
    if (!tg_json_valid(x->in_body, x->in_len, &off, &why)) {
        snprintf(msg, sizeof msg, "the request body is not valid JSON: %s at byte %zu", why, off);
        exchange_error(x, 400, "invalid_json", msg);
        return false;
    }
    if (!tg_json_object_start(x->in_body, x->in_len)) {
        exchange_error(x, 400, "invalid_json", "the request body must be a JSON object");
        return false;
    }
    if (x->route == ROUTE_GEMINI) /* model and streaming come from the URL */
        return true;
    tg_json_members(x->in_body, x->in_len, in_keys_names, IN_NKEYS, x->in_keys);
    int mr = tg_json_span_plain_string(x->in_body, x->in_keys[IN_MODEL], mbuf, sizeof mbuf);
    if (mr == 1) {
        x->model_requested = tg_xstrdup(mbuf);
    } else if (mr == -1) {
        /* escapes, a long name, or not a string: let jansson decide */
        json_t *jm = json_object_get(in_root(x), "model");
        if (jm && !json_is_null(jm) && !json_is_string(jm)) {
            exchange_error(x, 400, "invalid_model", "'model' must be a string");
            return false;
        }
        /* A NUL would cut the name in C strings (route, record, cost) while
         * the body goes upstream whole: refuse it rather than disagree. */
        if (json_is_string(jm) && strlen(json_string_value(jm)) != json_string_length(jm)) {
            exchange_error(x, 400, "invalid_model", "'model' must not contain a NUL character");
            return false;
        }
        if (json_is_string(jm))
            x->model_requested = tg_xstrdup(json_string_value(jm));
    }
    x->in_stream = tg_json_span_is(x->in_body, x->in_keys[IN_STREAM], "true");
    tg_json_span_t so = x->in_keys[IN_STREAM_OPTIONS];
    if (so.found && x->in_body[so.start] == '{') {
        x->in_has_stream_options = true;
        x->in_client_usage = member_is(x->in_body + so.start, so.end - so.start, "include_usage",
                                       "true");
    }
    return true;
}

/* security.max_tokens_per_request bounds the output a request may ask for
 * (max_tokens, max_completion_tokens, max_output_tokens). False when the
 * exchange was answered with a 400. */
static bool within_token_cap(exchange_t *x)
{
    int64_t cap = x->cfg->max_tokens_per_request;
    if (cap <= 0)
        return true;
    const char *const *fields = in_keys_names + IN_MAX_TOKENS;
    enum { N = IN_NKEYS - IN_MAX_TOKENS };
    /* read_llm_body found them; Gemini's are in generationConfig */
    const char *doc = x->in_body;
    const tg_json_span_t *found = x->in_keys + IN_MAX_TOKENS;
    tg_json_span_t gen[N];
    if (x->route == ROUTE_GEMINI) {
        size_t a, b;
        if (!tg_json_member(doc, x->in_len, "generationConfig", &a, &b) || doc[a] != '{')
            return true;
        doc += a;
        tg_json_members(doc, b - a, fields, N, gen);
        found = gen;
    }
    for (size_t i = 0; i < N; i++) {
        long v = tg_json_span_long(doc, found[i]);
        if (v > cap) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "%s is %ld, above this gateway's limit of %lld tokens per request",
                     fields[i], v, (long long)cap);
            exchange_error(x, 400, "max_tokens_exceeded", msg);
            return false;
        }
    }
    return true;
}

/* Can this client's dialect reach a provider of that type: natively, or
 * through a translator? */
static bool reachable(const exchange_t *x, const tg_provider_cfg_t *p)
{
    if (p->type == TG_PROVIDER_MOCK)
        return false; /* answered locally, never as a fallback */
    return tg_wire_of(p->type) == x->wire || tg_translate_for(x->wire, p->type) != NULL;
}

/* The targets after the first: Helicone-Fallbacks (a JSON list of
 * "provider/model" strings, or {"provider","model"} objects), else the
 * providers after this one in routing.fallback_chain, each with its
 * default model. Returns false (and answers 400) for a bad header. */
static bool plan_fallbacks(exchange_t *x)
{
    const char *hv = tg_http_header(x->h, "Helicone-Fallbacks");
    char err[1024];
    if (hv) {
        json_t *list = json_loads(hv, 0, NULL);
        if (!json_is_array(list)) {
            json_decref(list);
            exchange_error(x, 400, "invalid_fallbacks",
                           "Helicone-Fallbacks must be a JSON list of \"provider/model\" strings");
            return false;
        }
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            char target[512];
            if (json_is_string(e))
                snprintf(target, sizeof target, "%s", json_string_value(e));
            else if (json_is_object(e) && json_is_string(json_object_get(e, "provider")))
                snprintf(target, sizeof target, "%s/%s",
                         json_string_value(json_object_get(e, "provider")),
                         json_is_string(json_object_get(e, "model"))
                             ? json_string_value(json_object_get(e, "model"))
                             : "");
            else
                continue;
            tg_route_t r;
            if (x->n_fallbacks == TG_MAX_FALLBACKS ||
                tg_router_resolve(x->cfg, target, get_header, x->h, &r, err, sizeof err) < 0)
                continue;
            if (!reachable(x, r.provider)) {
                tg_route_clear(&r);
                continue;
            }
            x->fallbacks[x->n_fallbacks++] = r;
        }
        json_decref(list);
        return true;
    }
    /* routing.fallback_chain: those after the chosen provider, or all of it */
    const tg_config_t *cfg = x->cfg;
    size_t from = 0;
    for (size_t i = 0; i < cfg->n_fallback_chain; i++)
        if (!strcasecmp(cfg->fallback_chain[i], x->target.provider->name))
            from = i + 1;
    for (size_t i = from; i < cfg->n_fallback_chain && x->n_fallbacks < TG_MAX_FALLBACKS; i++) {
        const tg_provider_cfg_t *p =
            tg_config_provider(cfg, cfg->fallback_chain[i], strlen(cfg->fallback_chain[i]));
        if (!p || p == x->target.provider || !reachable(x, p))
            continue;
        const char *m = p->default_model ? p->default_model : x->target.model;
        x->fallbacks[x->n_fallbacks++] =
            (tg_route_t){.provider = p, .model = tg_xstrdup(m), .how = "fallback"};
    }
    return true;
}

/* An LLM request, from its body to the provider (or the cache, or the mock).
 * The route, the client's dialect and the URL suffix are set. */
static void serve_llm(exchange_t *x)
{
    tg_http_t *h = x->h;
    if (strcmp(tg_http_method(h), "POST") != 0) {
        tg_http_add_header(h, "Allow", "POST");
        exchange_error(x, 405, "method_not_allowed", "this route takes POST");
        return;
    }
    if (!read_llm_body(x))
        return;

    char err[1024];
    int rc = tg_router_resolve(x->cfg, x->model_requested, get_header, h, &x->target, err,
                               sizeof err);
    if (rc < 0) {
        if (rc == -2)
            exchange_error(x, 400, "missing_model", err);
        else
            exchange_error(x, 404, "model_not_found", err);
        return;
    }
    if (!within_token_cap(x) || !client_limits(x))
        return;
    const tg_provider_cfg_t *p = x->target.provider;
    if (x->route == ROUTE_COUNT_TOKENS && p->type != TG_PROVIDER_ANTHROPIC) {
        count_tokens_locally(x);
        return;
    }
    if (p->type == TG_PROVIDER_MOCK && (x->wire == TG_WIRE_OPENAI ||
                                        tg_translate_for(x->wire, TG_PROVIDER_MOCK))) {
        answer_mock(x, in_root(x), x->in_stream);
        return;
    }
    if (!reachable(x, p)) {
        snprintf(err, sizeof err, "provider '%s' (type %s) cannot serve %s requests", p->name,
                 tg_provider_type_name(p->type), x->route_path);
        exchange_error(x, 400, "unsupported_provider", err);
        return;
    }
    if (!plan_fallbacks(x))
        return;
    if (x->route != ROUTE_COUNT_TOKENS && cache_stage(x))
        return;
    proceed_upstream(x);
}

static void handle_llm(pworker_t *pw, tg_http_t *h, const caller_t *caller, const llm_route_t *r)
{
    exchange_t *x = exchange_new(pw, h, caller, r->route, r->path);
    x->wire = r->wire;
    x->suffix = r->suffix;
    serve_llm(x);
}

/* Gemini's native API: rest = "{model}:{action}" after /v1beta/models/.
 * The model may carry a provider/ prefix like any other (SPEC §4). */
static void handle_gemini(pworker_t *pw, tg_http_t *h, const caller_t *caller, const char *rest)
{
    static const char *const actions[] = {"generateContent", "streamGenerateContent"};
    static const char *const paths[] = {"/v1beta/models/{model}:generateContent",
                                        "/v1beta/models/{model}:streamGenerateContent"};
    char *name = tg_http_decode(rest, strlen(rest));
    char *colon = name ? strrchr(name, ':') : NULL;
    int k = -1;
    for (int i = 0; colon && i < 2; i++)
        if (!strcmp(colon + 1, actions[i]))
            k = i;
    if (k < 0) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "no route for %s /v1beta/models/%.200s: this gateway serves :generateContent "
                 "and :streamGenerateContent",
                 tg_http_method(h), rest);
        reply_error(h, 404, "unknown_route", msg);
        free(name);
        return;
    }
    *colon = 0;
    exchange_t *x = exchange_new(pw, h, caller, ROUTE_GEMINI, paths[k]);
    x->wire = TG_WIRE_GEMINI;
    x->gemini_action = actions[k];
    x->in_stream = k == 1;
    bool plain = *name != 0;
    for (const char *c = name; *c; c++)
        plain = plain && (isalnum((unsigned char)*c) || strchr("._-/@", *c));
    if (!plain) {
        free(name);
        exchange_error(x, 400, "invalid_model",
                       "the model in the path must be a name of letters, digits and . _ - / @");
        return;
    }
    x->model_requested = name;
    serve_llm(x);
}

/* ---- raw pass-through ---- */

/* rest = "{provider}/{path}" */
static void handle_passthrough(pworker_t *pw, tg_http_t *h, const caller_t *caller,
                               const char *route_path, const char *rest)
{
    exchange_t *x = exchange_new(pw, h, caller, ROUTE_PASSTHROUGH, route_path);
    const char *slash = strchr(rest, '/');
    size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const tg_provider_cfg_t *p = tg_config_provider(x->cfg, rest, nlen);
    if (!p || p->type == TG_PROVIDER_MOCK) {
        char err[1024], name[128];
        snprintf(name, sizeof name, "%.*s/", (int)(nlen < 100 ? nlen : 100), rest);
        tg_router_explain(x->cfg, name, err, sizeof err);
        exchange_error(x, 404, "provider_not_found", err);
        return;
    }
    x->target.provider = p;
    x->target.how = "passthrough";
    x->in_body = tg_http_body(h, &x->in_len);
    record_request_body(x);
    x->suffix = slash ? slash : "";
    if (tg_urlpath_check(x->suffix, strlen(x->suffix), TG_URLPATH_STRICT) < 0) {
        exchange_error(x, 400, "invalid_path",
                       "the pass-through path must stay under the provider's base path: no "
                       "'.' or '..' segments (plain or percent-encoded), backslashes, encoded "
                       "slashes, NUL or fragments");
        return;
    }
    if (!client_limits(x))
        return;
    proceed_upstream(x);
}

/* ---- small routes ---- */

static void handle_models(pworker_t *pw, tg_http_t *h)
{
    const tg_config_t *cfg = pw->cfg;
    json_t *data = json_array();
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const tg_provider_cfg_t *p = &cfg->providers[i];
        const char *owner = p->name;
        char id[512];
        if (p->type == TG_PROVIDER_MOCK) {
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", "mock/echo", "object",
                                                  "model", "created", 0, "owned_by", "tollgate"));
            continue;
        }
        if (p->default_model) {
            snprintf(id, sizeof id, "%s/%s", p->name, p->default_model);
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model",
                                                  "created", 0, "owned_by", owner));
        }
        for (size_t k = 0; k < p->n_models; k++) {
            if (strpbrk(p->models[k], "*?["))
                continue; /* a glob names no single model */
            if (p->default_model && !strcmp(p->models[k], p->default_model))
                continue;
            snprintf(id, sizeof id, "%s/%s", p->name, p->models[k]);
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model",
                                                  "created", 0, "owned_by", owner));
        }
    }
    json_t *root = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *s = json_dumps(root, JSON_COMPACT);
    tg_http_reply(h, 200, "application/json", s, strlen(s));
    free(s);
    json_decref(root);
}

/* ---- access (SPEC §5) ---- */

/* The gateway key a request presents: Helicone-Auth first (then the
 * client's Authorization stays its provider credential), else
 * Authorization: Bearer, x-api-key or x-goog-api-key, which are then
 * consumed. */
static const char *presented_key(tg_http_t *h, const char **header)
{
    const char *v;
    if ((v = tg_http_header(h, "Helicone-Auth"))) {
        *header = NULL; /* Helicone-* headers are never forwarded anyway */
        return tg_has_prefix_ci(v, "Bearer ") ? v + 7 : v;
    }
    if ((v = tg_http_header(h, "Authorization")) && tg_has_prefix_ci(v, "Bearer ")) {
        *header = "Authorization";
        return v + 7;
    }
    if ((v = tg_http_header(h, "x-api-key"))) {
        *header = "x-api-key";
        return v;
    }
    if ((v = tg_http_header(h, "x-goog-api-key"))) { /* Gemini SDKs */
        *header = "x-goog-api-key";
        return v;
    }
    return NULL;
}

/* Address allow-list and gateway key. Ends the exchange and returns false
 * when the caller may not go on. */
static bool admit(pworker_t *pw, tg_http_t *h, caller_t *caller)
{
    if (!tg_access_ip_allowed(pw->access, tg_http_client_ip(h))) {
        reply_error(h, 403, "address_not_allowed", "this address may not use the gateway");
        return false;
    }
    if (!pw->cfg->require_auth) {
        caller->may_read = caller->may_write = true;
        return true;
    }
    const char *header = NULL;
    const char *key = presented_key(h, &header);
    while (key && *key == ' ')
        key++;
    const tg_api_key_cfg_t *k = key ? tg_access_find_key(pw->access, key, strlen(key)) : NULL;
    if (!k) {
        reply_error(h, 401, key ? "invalid_api_key" : "missing_api_key",
                    key ? "the gateway key is not valid"
                        : "this gateway needs a key: send Helicone-Auth: Bearer <key> (or "
                          "Authorization: Bearer <key>)");
        return false;
    }
    caller->consumed_header = header;
    caller->key_name = k->name;
    caller->may_read = k->perm_read;
    caller->may_write = k->perm_write;
    return true;
}

/* /api/v1 and /metrics show every stored prompt and change limits: without
 * gateway keys, the address decides (security.admin_allowed_ips, loopback by
 * default); with keys, their permissions do. Ends the exchange and returns
 * false when the caller may not go on. */
static bool admin_reachable(pworker_t *pw, tg_http_t *h)
{
    if (pw->cfg->require_auth || tg_access_admin_ip_allowed(pw->access, tg_http_client_ip(h)))
        return true;
    reply_error(h, 403, "address_not_allowed",
                "/api/v1 and /metrics answer only the addresses in "
                "security.admin_allowed_ips (default: this machine) while "
                "security.require_auth is off");
    return false;
}

/* ---- the route table ---- */

void tg_pipeline_handle(tg_http_t *h, void *wctx)
{
    pworker_t *pw = wctx;
    const char *path = tg_http_path(h);
    const char *method = tg_http_method(h);

    if (!strcmp(path, "/health")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            reply_error(h, 405, "method_not_allowed", "/health takes GET or HEAD");
        else
            tg_http_reply(h, 200, "application/json", "{\"status\":\"ok\"}", 15);
        return;
    }
    caller_t caller = {0};
    if (!admit(pw, h, &caller))
        return;
    bool admin_route = !strcmp(path, "/metrics") || !strncmp(path, "/api/v1/", 8);
    if (admin_route && !admin_reachable(pw, h))
        return;
    if (!strcmp(path, "/metrics")) {
        if (!pw->cfg->metrics_enabled)
            reply_error(h, 404, "unknown_route", "metrics are disabled (observability.metrics)");
        else if (!caller.may_read)
            reply_error(h, 403, "permission_denied", "this key may not read metrics");
        else {
            tg_buf_t out = {0};
            tg_metrics_render(&out);
            tg_http_reply(h, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
            tg_buf_free(&out);
        }
        return;
    }
    if (!strncmp(path, "/api/v1/", 8)) {
        tg_api_handle(h, g_store, g_rules, caller.may_read, caller.may_write, path);
        return;
    }
    if (!strcmp(path, "/v1/models")) {
        if (strcmp(method, "GET"))
            reply_error(h, 405, "method_not_allowed", "/v1/models takes GET");
        else
            handle_models(pw, h);
        return;
    }
    for (size_t i = 0; i < sizeof llm_routes / sizeof llm_routes[0]; i++)
        if (!strcmp(path, llm_routes[i].path)) {
            handle_llm(pw, h, &caller, &llm_routes[i]);
            return;
        }
    if (!strncmp(path, "/v1beta/models/", 15)) {
        handle_gemini(pw, h, &caller, path + 15);
        return;
    }
    if (!strncmp(path, "/passthrough/", 13)) {
        handle_passthrough(pw, h, &caller, "/passthrough", path + 13);
        return;
    }
    /* /{provider}/{path}, for a configured provider name */
    const char *seg = path + 1, *slash = strchr(seg, '/');
    if (path[0] == '/' && slash && slash > seg &&
        tg_config_provider(pw->cfg, seg, (size_t)(slash - seg))) {
        handle_passthrough(pw, h, &caller, "/{provider}", seg);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no route for %s %.200s", method, path);
    reply_error(h, 404, "unknown_route", msg);
}

/* ---- process-wide state ---- */

static long store_depth(void)
{
    tg_store_counters_t c;
    tg_store_counters(g_store, &c);
    return (long)c.queue_depth;
}

static long store_dropped(void)
{
    tg_store_counters_t c;
    tg_store_counters(g_store, &c);
    return (long)c.dropped;
}

int tg_pipeline_init(const tg_config_t *cfg, struct tg_store *store, char *err, size_t errlen)
{
    g_store = store;
    if (store) {
        static const tg_metrics_store_t gauges = {store_depth, store_dropped};
        tg_metrics_set_store(&gauges);
    }
    g_cache = tg_cache_new(cfg->cache_max_size > 0 ? (size_t)cfg->cache_max_size : 10000, 0, NULL,
                           NULL);
    g_rl = tg_rl_new(0, NULL, NULL);
    g_rules = tg_rl_registry_new();
    if (!store)
        return 0; /* runtime rate limits live in memory only */
    /* the runtime rate limits made through the API before this start */
    tg_rl_rule_t *rules = NULL;
    size_t n = 0;
    if (tg_store_rules_load(store, &rules, &n, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (tg_rl_registry_add(g_rules, &rules[i]) < 0)
            tg_warn("rate limits: stored rule %s not loaded (more than the registry holds)",
                    rules[i].id);
    if (n)
        tg_info("rate limits: %zu runtime limit(s) loaded from the store", n);
    free(rules);
    return 0;
}

void tg_pipeline_shutdown(void)
{
    tg_cache_free(g_cache);
    tg_rl_free(g_rl);
    tg_rl_registry_free(g_rules);
    g_cache = NULL;
    g_rl = NULL;
    g_rules = NULL;
    static const tg_metrics_store_t none = {NULL, NULL};
    tg_metrics_set_store(&none);
    g_store = NULL;
}

/* ---- worker hooks ---- */

static void on_journal_ev(evutil_socket_t fd, short what, void *arg)
{
    tg_journal_write(((pworker_t *)arg)->journal);
}

void *tg_pipeline_worker_init(struct event_base *base, int index, tg_config_t *cfg)
{
    pworker_t *pw = tg_xcalloc(1, sizeof *pw);
    pw->base = base;
    pw->index = index;
    pw->cfg = tg_config_acquire(cfg);
    pw->access = tg_access_new(cfg);
    pw->relay = tg_relay_new(base);
    pw->journal = tg_journal_open(g_store, index);
    if (pw->journal)
        pw->journal_ev = event_new(base, -1, 0, on_journal_ev, pw);
    if (!pw->relay) {
        tg_pipeline_worker_free(pw);
        return NULL;
    }
    return pw;
}

void tg_pipeline_worker_free(void *wctx)
{
    pworker_t *pw = wctx;
    if (!pw)
        return;
    tg_journal_close(pw->journal); /* no exchange is left to submit a record */
    if (pw->journal_ev)
        event_free(pw->journal_ev);
    tg_relay_free(pw->relay);
    tg_access_free(pw->access);
    tg_config_release(pw->cfg);
    free(pw);
}

void tg_pipeline_before_write(void *wctx)
{
    tg_journal_write(((pworker_t *)wctx)->journal);
}

void tg_pipeline_config_changed(void *wctx, tg_config_t *cfg)
{
    pworker_t *pw = wctx;
    tg_config_t *old = pw->cfg;
    pw->cfg = tg_config_acquire(cfg);
    tg_config_release(old);
    tg_access_free(pw->access);
    pw->access = tg_access_new(cfg);
}
