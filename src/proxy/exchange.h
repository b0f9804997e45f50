/*
 * exchange.h — one client request on its way through the proxy, and what the
 * files of src/proxy share about it.
 *
 *   pipeline.c   routes a request to a stage list (or answers it directly)
 *   stages.c     the stage lists and the loop that runs them
 *   attempt.c    calls to providers: request, retries, fallbacks, failures
 *   filters.c    the response body on its way to the client
 *   local.c      answers made without a provider (mock, count_tokens)
 *   exchange.c   the exchange's life: its start, its record, its one end
 *
 * Ownership: everything an exchange holds hangs off it. What one attempt
 * builds lives in its tg_attempt_t and is freed by tg_attempt_clear (between
 * attempts and at the end); the rest is freed by tg_exchange_finish, the
 * single ending, which also clears the attempt. Neither list is kept in step
 * with the other by hand.
 *
 * Thread: the worker thread of the exchange. An exchange holds a reference
 * to the config it started with, so a reload never changes a request midway.
 */
#ifndef TG_EXCHANGE_H
#define TG_EXCHANGE_H

#include "auth/access.h"
#include "auth/keys.h"
#include "budget/budget.h"
#include "cache/cache.h"
#include "config/config.h"
#include "core/jsonscan.h"
#include "core/sse.h"
#include "core/usage.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "otlp/otlp.h"
#include "providers/translate.h"
#include "proxy/attempt.h"
#include "proxy/limits.h"
#include "proxy/relay.h"
#include "proxy/stages.h"
#include "ratelimit/ratelimit.h"
#include "router/fallbacks.h"
#include "router/router.h"
#include "server/http.h"
#include "store/record.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct event;

/* Largest non-streamed answer buffered from a provider. */
#define TG_MAX_BUFFERED_RESPONSE (64 * 1024 * 1024)
/* Most targets a request may fall back to after its first. */
#define TG_MAX_FALLBACKS 10

/* A config a worker replaced while some of its exchanges still used it
 * (tg_pworker_cfg_hold): kept, with one reference, until the last lets go. */
typedef struct tg_cfg_lease {
    tg_config_t *cfg;
    long users; /* exchanges holding cfg */
    struct tg_cfg_lease *next;
} tg_cfg_lease_t;

/* A worker's share of the proxy. The gateway's shared parts (cache,
 * limiter, runtime rules, store, provider health: gateway.h) are
 * thread-safe and outlive every worker. */
typedef struct {
    struct event_base *base;
    tg_relay_t *relay;
    tg_config_t *cfg;
    /* The exchanges that use cfg, counted here rather than in cfg's atomic
     * reference count, which every worker shares: two atomic updates of one
     * cache line per request, bouncing between the workers' cores (and the
     * line holds cfg->generation, which the cost lookup reads). The worker
     * holds one reference for all of them; a replaced config moves to
     * old_cfgs until its last exchange ends. Worker thread only. */
    long cfg_users;
    tg_cfg_lease_t *old_cfgs;
    struct tg_health **health; /* provider health records met (tg_pworker_health) */
    size_t n_health;
    tg_access_t *access; /* built from cfg */
    int index;
    tg_journal_t *journal;    /* NULL when request logging is off */
    struct event *journal_ev; /* writes the journal when no client write will */
    struct tg_gateway *gw;
    tg_metrics_shard_t *metrics; /* this worker's shard of gw->metrics */
    struct tg_redis *redis;      /* this worker's Redis connection; NULL without redis.url */
    struct tg_redis *bus;        /* worker 0's subscriber to the other instances' changes */
    struct tg_spend_retries *settle_retries; /* budget settlements waiting for Redis (spend.h) */
    struct tg_spend_plan *spend_plan;        /* the budgets cfg can apply (spend.h), lazily */
} tg_pworker_t;

/** The worker's current config, held until tg_pworker_cfg_drop: what an
 *  exchange uses for its whole life, through reloads (pipeline.c). Worker
 *  thread only. */
tg_config_t *tg_pworker_cfg_hold(tg_pworker_t *pw);
/** Let go of a config tg_pworker_cfg_hold gave, on the same worker. */
void tg_pworker_cfg_drop(tg_pworker_t *pw, tg_config_t *cfg);
/** The gateway's health record of `provider` (tg_health_for), remembered
 *  by the worker so that later requests find it without the registry's
 *  lock, which every worker shares. Worker thread only. */
struct tg_health *tg_pworker_health(tg_pworker_t *pw, const char *provider);

/* Who is calling, as established by admit() (pipeline.c). */
typedef struct {
    const char *consumed_header; /* header that carried the gateway key: not forwarded */
    const char *key_name;        /* gateway key's name, or NULL */
    bool may_read;               /* may read logs, costs and metrics */
    bool may_write;              /* may change limits, budgets and keys */
    /* Set when admit() refused the caller (401, 403): an LLM route still
     * makes its exchange, so the refusal gets its record (SPEC §8), and
     * ends it with this error before any stage runs. */
    int refused_status;
    const char *refused_code, *refused_msg;
    const tg_vkey_t *vkey; /* a virtual key (/api/v1/keys), or NULL; lives with the gateway */
} tg_caller_t;

typedef enum {
    TG_ROUTE_CHAT,
    TG_ROUTE_COMPLETIONS,
    TG_ROUTE_EMBEDDINGS,
    TG_ROUTE_RESPONSES,
    TG_ROUTE_MESSAGES,     /* Anthropic Messages */
    TG_ROUTE_COUNT_TOKENS, /* Anthropic count_tokens */
    TG_ROUTE_GEMINI,       /* Gemini generateContent, streamGenerateContent */
    TG_ROUTE_PASSTHROUGH,
    TG_ROUTE_LOG, /* Helicone manual logging (manual_log.h) */
} tg_route_kind_t;

/* The top-level members of an LLM request body the stages read, found in one
 * pass (stages.c, read_body); the max_* ones in the token cap's order. */
enum {
    TG_IN_MODEL,
    TG_IN_STREAM,
    TG_IN_STREAM_OPTIONS,
    TG_IN_MAX_TOKENS,
    TG_IN_NKEYS = TG_IN_MAX_TOKENS + 4
};
extern const char *const tg_in_keys_names[TG_IN_NKEYS];

/* The response body filters' state for one attempt (filters.c); each filter
 * owns its part. */
typedef struct {
    tg_sse_parser_t sse_in;    /* events: the provider's stream, for usage (and filtering) */
    tg_buf_t sse_out;          /* events: translated events */
    tg_sse_pass_t sse_pass;    /* events: a native stream's bytes, passed on in whole events */
    tg_translate_stream_t *ts; /* translate: another dialect's event stream */
    bool hide_usage;           /* hide usage: we asked for the usage chunk; the client did not */
    bool stream_over;          /* events: the native stream's terminator or error event came */
    long next_seq;             /* events: a native Responses stream's next sequence_number */
    tg_buf_t stream_copy;      /* copy to cache: the client's stream */
    bool stream_copy_full;
} tg_filters_t;

/* One attempt at one target. Everything in it is freed by tg_attempt_clear. */
typedef struct {
    const tg_translator_t *tr; /* NULL: the provider speaks the client's dialect */
    bool tr_include_usage;     /* OpenAI client asked for the usage chunk */
    long tr_prompt_estimate;   /* Anthropic client: estimated input for message_start */
    char *url;
    char *suffix_buf; /* Gemini: "/models/{model}:{action}" */
    char **hdrs;
    size_t n_hdrs, cap_hdrs;
    char *body; /* the upstream body when it differs from the client's */
    const char *body_ptr;
    size_t body_len;
    tg_upstream_t *up;
    bool sse;               /* the answer is an event stream */
    bool too_large;         /* the buffered answer went over TG_MAX_BUFFERED_RESPONSE */
    bool discard;           /* this attempt's answer is a failure we will retry past */
    tg_next_t next;         /* ... by retrying or falling back (decided as it began) */
    int64_t retry_after_ms; /* the provider's Retry-After on this attempt, 0 if none */
    int64_t t0_us, ttfb_us;
    tg_filters_t f;
    tg_buf_t resp; /* buffered answer (or a streamed one's usage / error body) */
    char *resp_ctype;
} tg_attempt_t;

typedef struct tg_exchange {
    tg_http_t *h;
    tg_pworker_t *pw;
    tg_config_t *cfg; /* our reference */
    tg_route_kind_t route;
    const char *route_path;
    tg_wire_t wire; /* the client's dialect: errors and answers are written in it */
    tg_caller_t caller;
    char id[72];
    tg_route_t target; /* the target of the current attempt */
    char *model_requested;
    const char *suffix;        /* route suffix appended to the provider's base_url */
    const char *gemini_action; /* "generateContent" or "streamGenerateContent" */
    /* Manual-logging routes (manual_log.c): the dialect the route implies,
     * and what the posted log says the record shows instead of what this
     * exchange measured. */
    const char *log_dialect;
    char *log_provider;
    int64_t log_latency_ms;

    /* The stages (stages.h): the list this request runs and where it is. */
    const tg_stage_t *stages;
    size_t next_stage;

    /* The client's request, as read once (stages.c, read_body). */
    const char *in_body;
    size_t in_len;
    json_t *in_root; /* parsed only when needed (tg_exchange_in_root) */
    tg_json_span_t in_keys[TG_IN_NKEYS];
    bool in_stream, in_client_usage, in_has_stream_options;

    /* Attempts (attempt.c; SPEC §4 fallback chain, §6 retry and fallback headers). */
    tg_attempt_t att;
    tg_route_t fallbacks[TG_MAX_FALLBACKS]; /* targets after the first */
    size_t n_fallbacks;
    /* A Helicone-Fallbacks target-url entry's onCodes and headers: the
     * current target's, and those of the fallbacks (same index). */
    tg_target_opts_t target_opts;
    tg_target_opts_t fallback_opts[TG_MAX_FALLBACKS];
    bool model_list;        /* the model was a Helicone list: the fallbacks are its entries */
    bool fallbacks_planned; /* tg_attempt_plan_fallbacks ran (resolve may run it early) */
    int fallback_index;     /* 0 = the first target */
    int tries_here;         /* retries made on the current target */
    int retries;            /* retries made in all */
    bool retry_on;          /* Helicone-Retry-Enabled */
    int retry_num;
    double retry_factor;
    int64_t retry_min_ms, retry_max_ms;
    struct event *retry_timer;
    bool streaming; /* the client response has started (chunked) */

    /* Rate limits (proxy/limits.h): acquired before the call, settled after. */
    tg_limits_t limits;  /* on the caller */
    tg_limits_t plimits; /* on the provider */
    /* With redis.url: the shared limiter's reply awaited (cancelled if the
     * exchange ends first), and which set it is for. */
    tg_redis_req_t *redis_req;
    tg_limits_t *rl_pending;

    /* Cache (cache/cache.h). */
    tg_cache_policy_t cache_policy;
    tg_cache_key_t cache_key;
    tg_cache_flight_t *flight; /* we lead: complete or abandon it */
    tg_cache_waiter_t *waiter; /* we wait for a leader */
    tg_cache_entry_t *woken;   /* what the leader handed us (set on its thread) */
    struct event *cache_ev;    /* the leader wakes us through this */
    bool cache_store_after;    /* store the answer without a flight */
    const char *cache_result;  /* "hit", "miss", or NULL when the cache was not read */
    /* caching.backend: redis (proxy/rcache.h): in use, leading a flight
     * of the fleet in that bucket, the lock's value. */
    bool rcache, rcache_lead;
    int rcache_bucket;
    char rcache_token[128];

    /* Budgets (proxy/spend.h): what is reserved, for which target. */
    tg_budget_hold_t budget_hold;
    int64_t worst_nusd; /* the reservation's worst case; -1 unknown */
    bool worst_known;   /* worst_nusd was computed (Helicone-Max-Cost) */
    /* With redis.url: what was reserved in Redis, to settle there. */
    tg_budget_apply_t *shared_apply;
    tg_budget_redis_slot_t *shared_slots;
    int n_shared_slots;
    int64_t shared_amount;
    char shared_hold[17]; /* the hold's id there */
    bool budget_ran;      /* the budget stage ran */
    /* Raw pass-through of an LLM call the gateway can cost (spend.c,
     * tg_spend_reserve_raw): the route it is; its answer is read for usage
     * as it passes (filters.c). */
    bool raw_metered;
    tg_route_kind_t raw_kind;
    bool raw_usage_lost; /* the answer was too large to read for usage */
    int budget_target;   /* the fallback_index it reserved for */

    /* The record (SPEC §8). */
    tg_usage_t usage;         /* -1 per count until known */
    int64_t cost_nusd;        /* nano-USD; -1 unknown or unpriced */
    int64_t cache_saved_nusd; /* a cache hit: what the provider would have charged; else -1 */
    char *error;              /* why it failed (tg_exchange_set_error) */
    int64_t t0_wall_ms;
    tg_buf_t log_body; /* the answer as the client got it (streams, hits) */
    tg_record_t *rec;  /* begun with the exchange, completed and submitted at its end */
    bool omit_request, omit_response;
    int status;
    int64_t t0_us, ttfb_us;

    /* The span (span.c), when spans are exported: the client's trace, the
     * provider's answer id and model (from its answer or first event). */
    tg_otlp_ctx_t trace;
    uint8_t span_id[8];
    long span_max_tokens;    /* -1 unknown */
    double span_temperature; /* NaN unknown */
    bool span_ids_read;
    char resp_id[128], resp_model[128];
} tg_exchange_t;

/* ---- span.c: the exchange as an OpenTelemetry span (otlp/otlp.h) ---- */

/** The client's traceparent, kept when spans are exported, and the span's id. */
void tg_exchange_span_begin(tg_exchange_t *x);
/** When spans are exported: the traceparent for the provider (the span as
 *  the parent, in the client's trace or the span's own) into out, true. */
bool tg_exchange_span_traceparent(const tg_exchange_t *x, char out[56]);
/** The request's max_tokens and temperature, read while its body is there. */
void tg_exchange_span_request(tg_exchange_t *x);
/** The provider's answer id and model, from its whole answer or its first
 *  event (only the first call reads). */
void tg_exchange_span_ids(tg_exchange_t *x, const char *json, size_t len);
/** Queue the span of an ending exchange, from its finished record. */
void tg_exchange_span_submit(tg_exchange_t *x, const tg_record_t *r);

/* ---- exchange.c: life, record, endings ---- */

tg_exchange_t *tg_exchange_new(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller,
                               tg_route_kind_t route, const char *route_path);
/** The single cleanup: submits the record, gives back cache tickets, frees
 *  the attempt and the exchange. The HTTP exchange has already been ended. */
void tg_exchange_finish(tg_exchange_t *x);
/** An error answer in the client's dialect, then the end. */
void tg_exchange_error(tg_exchange_t *x, int status, const char *code, const char *message);
/** A failure after the exchange began: an error answer, or, once a stream
 *  started, the dialect's error event (or a cut); then the end. */
void tg_exchange_fail(tg_exchange_t *x, int status, const char *code, const char *message);
/** The record's error (owned; replaces an earlier one; NULL clears it). */
void tg_exchange_set_error(tg_exchange_t *x, char *message);
/** The record's error for a provider's own error answer or event. */
void tg_exchange_note_provider_error(tg_exchange_t *x, const char *body, size_t len,
                                     const char *fallback);
/** Whether bodies go into the record: it is stored (not only an event's
 *  or a span's) and observability.request_logging.bodies is on. */
bool tg_exchange_logs_bodies(const tg_exchange_t *x);
/** The request body into the record (bounded; never when omitted), and what
 *  the span reads of it (tg_exchange_span_request). */
void tg_exchange_record_request_body(tg_exchange_t *x);

/** True for a POST; otherwise the exchange ends with a 405 (Allow: POST). */
bool tg_exchange_post_only(tg_exchange_t *x);

/** A Helicone-* header's meaning for the record (user, session, property,
 *  omit); other names are ignored. For values that come from elsewhere
 *  than the request's headers (a manual log's meta). */
void tg_exchange_record_header(tg_exchange_t *x, const char *name, const char *value);
/** Helicone-RateLimit-* when the request sent a policy. */
void tg_exchange_policy_headers(tg_exchange_t *x);
/** Answer with a cached entry (Helicone-Cache: HIT) and end the exchange;
 *  releases e (stages.c). */
void tg_exchange_serve_cached(tg_exchange_t *x, tg_cache_entry_t *e);
/** The answer is complete: cost, limits settled, the cache fed. */
void tg_exchange_settle(tg_exchange_t *x);

/** What the provider charges for usage u of this exchange's model (the
 *  price of Helicone-Model-Override's model when given), in nano-USD; -1
 *  when costs are off or the model has no price. */
int64_t tg_exchange_price_usage(tg_exchange_t *x, const tg_usage_t *u);
/** The client's body as a tree, parsed once and only when needed. */
json_t *tg_exchange_in_root(tg_exchange_t *x);
/** A request header by name, in the shape the router, cache and limits take. */
const char *tg_exchange_header(void *h, const char *name);

/* ---- stages.c ---- */

/** Run the exchange's stages from where it stopped (a parked stage calls
 *  this to go on with the next one). */
void tg_exchange_resume(tg_exchange_t *x);

/* ---- attempt.c ---- */

/** Forget what one attempt built; the attempt is then empty. */
void tg_attempt_clear(tg_attempt_t *a);
/** Helicone-Fallbacks or routing.fallback_chain into x->fallbacks. False
 *  when the exchange was answered (a bad header). */
bool tg_attempt_plan_fallbacks(tg_exchange_t *x);
/** Can the client's dialect reach a provider of that type? */
bool tg_attempt_reachable(const tg_exchange_t *x, const tg_provider_cfg_t *p);
/** The first attempt at the first target; the relay's callbacks go on. */
void tg_attempt_begin(tg_exchange_t *x);
/** Watch the client (it may leave or drain) while the exchange is parked. */
void tg_attempt_watch_client(tg_exchange_t *x);

/* ---- filters.c: the response body ---- */

/** Bytes of the provider's answer, through the filter chain. Returns 0 to go
 *  on, 1 when the client's output is full (pause), -1 to abort. */
int tg_filters_body(tg_exchange_t *x, const char *data, size_t len);
/** The provider's answer ended cleanly: the filters' last bytes (closing
 *  events, held bytes), a whole answer made the client's. False when a 2xx
 *  answer cannot be read. */
bool tg_filters_end(tg_exchange_t *x);
/** Did a stream end as its dialect ends one? */
bool tg_filters_stream_complete(const tg_exchange_t *x);
/** The provider's answer began (x->status set; its Content-Type given): a
 *  stream starts the client's chunked answer and its filters; any other
 *  answer is buffered whole. */
void tg_filters_start(tg_exchange_t *x, const char *content_type);
/** Bytes the gateway itself sends (cache hits, mock, error events), for the record. */
void tg_filters_copy_to_log(tg_exchange_t *x, const char *data, size_t len);
/** One provider event through the event filters (the tg_sse_feed callback;
 *  the mock's streams use it too): read for usage and the stream's end; a
 *  translated stream's output in x->att.f.sse_out. */
int tg_filters_event(void *arg, const char *event, const char *data, size_t len);

/* ---- local.c: answers without a provider ---- */

void tg_local_count_tokens(tg_exchange_t *x);
void tg_local_mock(tg_exchange_t *x);

#endif
