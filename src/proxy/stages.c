/*
 * stages.c — the request path as lists of small stages (stages.h), read top
 * to bottom:
 *
 *   LLM routes                          raw pass-through
 *   read_body      POST, JSON, model    read_raw_body  path under base_url
 *   resolve        provider and model
 *   token_cap      max_tokens_per_request
 *   caller_limits  rate limits on the caller (both)
 *   local_answer   mock, count_tokens
 *   plan           reachable? fallbacks
 *   cache          hit / lead / wait (parks)
 *   budget         Helicone-Max-Cost; the worst case reserved against every budget (spend.c)
 *                                       raw_budget     the same for an LLM call (model from its
 * body) provider_limits rate limits on the provider (both) attempt        the call (parks until the
 * provider answers; attempt.c) (both)
 *
 * A stage that answers ends the exchange itself (tg_exchange_error or an
 * answer and tg_exchange_finish) and says TG_STAGE_ANSWERED; one that waits
 * says TG_STAGE_PARKED and whoever wakes it calls tg_exchange_resume, which
 * goes on with the next stage. Adding a stage (budget reservation, say) is
 * one function and one line in a list.
 *
 * Thread: the worker thread of the exchange; the cache's leader may wake a
 * parked exchange from another worker (on_cache_wake), which only hands
 * over and activates an event on ours.
 */
#include "proxy/stages.h"

#include "core/urlpath.h"
#include "gateway.h"
#include "metrics/metrics.h"
#include "providers/provider.h"
#include "proxy/exchange.h"
#include "proxy/rcache.h"
#include "proxy/spend.h"

#include <event2/event.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

const char *const tg_in_keys_names[TG_IN_NKEYS] = {"model",
                                                   "stream",
                                                   "stream_options",
                                                   "max_tokens",
                                                   "max_completion_tokens",
                                                   "max_output_tokens",
                                                   "maxOutputTokens"};

/* ---- the loop ---- */

tg_stage_result_t tg_stages_run(const tg_stage_t *list, size_t *next, void *arg)
{
    while (list[*next].run) {
        /* past it before it runs: the exchange may be gone when it returns */
        tg_stage_result_t r = list[(*next)++].run(arg);
        if (r != TG_STAGE_CONTINUE)
            return r;
    }
    return TG_STAGE_CONTINUE;
}

void tg_exchange_resume(tg_exchange_t *x)
{
    tg_stages_run(x->stages, &x->next_stage, x);
}

/* ---- read_body: the client's JSON, read once without a tree ---- */

static bool member_is(const char *doc, size_t len, const char *key, const char *literal)
{
    tg_json_span_t sp;
    tg_json_members(doc, len, &key, 1, &sp);
    return tg_json_span_is(doc, sp, literal);
}

/* 'model' when it is not a plain string: let jansson decide. False when
 * the exchange was answered (400). */
static bool odd_model(tg_exchange_t *x)
{
    json_t *jm = json_object_get(tg_exchange_in_root(x), "model");
    if (jm && !json_is_null(jm) && !json_is_string(jm)) {
        tg_exchange_error(x, 400, "invalid_model", "'model' must be a string");
        return false;
    }
    /* A NUL would cut the name in C strings (route, record, cost) while
     * the body goes upstream whole: refuse it rather than disagree. */
    if (json_is_string(jm) && strlen(json_string_value(jm)) != json_string_length(jm)) {
        tg_exchange_error(x, 400, "invalid_model", "'model' must not contain a NUL character");
        return false;
    }
    if (json_is_string(jm))
        x->model_requested = tg_xstrdup(json_string_value(jm));
    return true;
}

/* POST only; the body valid JSON, an object; model, stream and
 * stream_options found in one pass. */
static tg_stage_result_t read_body(void *arg)
{
    tg_exchange_t *x = arg;
    if (!tg_exchange_post_only(x))
        return TG_STAGE_ANSWERED;
    char msg[300], mbuf[256];
    x->in_body = tg_http_body(x->h, &x->in_len);
    tg_exchange_record_request_body(x);
    size_t off;
    const char *why;
    if (!x->in_body) {
        tg_exchange_error(x, 400, "invalid_json",
                          "the request body is empty; a JSON object is expected");
        return TG_STAGE_ANSWERED;
    }
    /* checked and its members found in one walk; Gemini's model and
     * streaming come from the URL, so its body's members are not read */
    bool gemini = x->route == TG_ROUTE_GEMINI;
    if (!tg_json_valid_members(x->in_body, x->in_len, tg_in_keys_names, gemini ? 0 : TG_IN_NKEYS,
                               x->in_keys, &off, &why)) {
        snprintf(msg, sizeof msg, "the request body is not valid JSON: %s at byte %zu", why, off);
        tg_exchange_error(x, 400, "invalid_json", msg);
        return TG_STAGE_ANSWERED;
    }
    if (!tg_json_object_start(x->in_body, x->in_len)) {
        tg_exchange_error(x, 400, "invalid_json", "the request body must be a JSON object");
        return TG_STAGE_ANSWERED;
    }
    if (gemini)
        return TG_STAGE_CONTINUE;
    int mr = tg_json_span_plain_string(x->in_body, x->in_keys[TG_IN_MODEL], mbuf, sizeof mbuf);
    if (mr == 1)
        x->model_requested = tg_xstrdup(mbuf);
    else if (mr == -1 && !odd_model(x)) /* escapes, a long name, or not a string */
        return TG_STAGE_ANSWERED;
    x->in_stream = tg_json_span_is(x->in_body, x->in_keys[TG_IN_STREAM], "true");
    tg_json_span_t so = x->in_keys[TG_IN_STREAM_OPTIONS];
    if (so.found && x->in_body[so.start] == '{') {
        x->in_has_stream_options = true;
        x->in_client_usage =
            member_is(x->in_body + so.start, so.end - so.start, "include_usage", "true");
    }
    return TG_STAGE_CONTINUE;
}

/* Pass-through: the body as sent; the path must stay under base_url. */
static tg_stage_result_t read_raw_body(void *arg)
{
    tg_exchange_t *x = arg;
    x->in_body = tg_http_body(x->h, &x->in_len);
    tg_exchange_record_request_body(x);
    if (tg_urlpath_check(x->suffix, strlen(x->suffix), TG_URLPATH_STRICT) < 0) {
        tg_exchange_error(x, 400, "invalid_path",
                          "the pass-through path must stay under the provider's base path: no "
                          "'.' or '..' segments (plain or percent-encoded), backslashes, encoded "
                          "slashes, NUL or fragments");
        return TG_STAGE_ANSWERED;
    }
    return TG_STAGE_CONTINUE;
}

/* ---- resolve, token_cap ---- */

/* A virtual key's `models` globs: the model as asked for, as resolved, or
 * as provider/model must match one. */
static bool route_allowed(const tg_exchange_t *x, const tg_route_t *r)
{
    const tg_vkey_t *v = x->caller.vkey;
    if (!v || !v->n_models)
        return true;
    char full[600];
    snprintf(full, sizeof full, "%s/%s", r->provider ? r->provider->name : "",
             r->model ? r->model : "");
    return tg_vkey_allows(v, x->model_requested) || tg_vkey_allows(v, r->model) ||
           tg_vkey_allows(v, full);
}

/* The target and every entry of a model list must be allowed (403
 * model_not_allowed). */
static bool model_allowed(tg_exchange_t *x)
{
    for (size_t i = 0; i <= x->n_fallbacks; i++) {
        const tg_route_t *r = i ? &x->fallbacks[i - 1] : &x->target;
        if (route_allowed(x, r))
            continue;
        char msg[1400];
        snprintf(msg, sizeof msg, "the gateway key '%s' may not use model '%s'",
                 x->caller.vkey->name, r->model ? r->model : x->model_requested);
        tg_exchange_error(x, 403, "model_not_allowed", msg);
        return false;
    }
    return true;
}

/* Fallbacks planned later (Helicone-Fallbacks, routing.fallback_chain) that
 * the key may not use are left out: they are never tried for it. */
static void drop_disallowed_fallbacks(tg_exchange_t *x)
{
    size_t k = 0;
    for (size_t i = 0; i < x->n_fallbacks; i++) {
        if (route_allowed(x, &x->fallbacks[i]))
            x->fallbacks[k++] = x->fallbacks[i];
        else
            tg_route_clear(&x->fallbacks[i]);
    }
    x->n_fallbacks = k;
}

/* SPEC §4: provider and model (404 when nothing serves it). A Helicone
 * model list (`a/openai,b/anthropic`) is this request's fallback chain: its
 * first entry is the target, the others follow it in order. */
static tg_stage_result_t resolve(void *arg)
{
    tg_exchange_t *x = arg;
    char err[1024];
    tg_route_t routes[TG_ROUTER_MAX_LIST];
    size_t n;
    int rc =
        tg_router_resolve_list(x->cfg, x->pw->gw->health, x->model_requested, tg_exchange_header,
                               x->h, routes, TG_ROUTER_MAX_LIST, &n, err, sizeof err);
    if (rc == 0) {
        x->target = routes[0];
        for (size_t i = 1; i < n; i++) {
            routes[i].how = "fallback";
            x->fallbacks[x->n_fallbacks++] = routes[i];
        }
        x->model_list = n > 1;
        return model_allowed(x) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    }
    /* Nothing here serves the model, but Helicone's own Helicone-Fallbacks
     * names its targets (configured providers, by origin): the model goes
     * to them as asked, as Helicone's gateway would send it. */
    const char *fh = tg_http_header(x->h, "Helicone-Fallbacks");
    if (rc == -1 && fh && !strchr(x->model_requested, ',') && tg_fallbacks_helicone_form(fh)) {
        x->target = (tg_route_t){.model = tg_xstrdup(x->model_requested), .how = "fallback"};
        if (!tg_attempt_plan_fallbacks(x))
            return TG_STAGE_ANSWERED;
        return model_allowed(x) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    }
    if (rc == -2)
        tg_exchange_error(x, 400, "missing_model", err);
    else if (rc == -3)
        tg_exchange_error(x, 400, "invalid_model", err);
    else
        tg_exchange_error(x, 404, "model_not_found", err);
    return TG_STAGE_ANSWERED;
}

/* security.max_tokens_per_request bounds the output a request may ask for
 * (max_tokens, max_completion_tokens, max_output_tokens; Gemini's
 * maxOutputTokens in generationConfig). */
static tg_stage_result_t token_cap(void *arg)
{
    tg_exchange_t *x = arg;
    int64_t cap = x->cfg->max_tokens_per_request;
    if (cap <= 0)
        return TG_STAGE_CONTINUE;
    const char *const *fields = tg_in_keys_names + TG_IN_MAX_TOKENS;
    enum { N = TG_IN_NKEYS - TG_IN_MAX_TOKENS };
    const char *doc = x->in_body;
    const tg_json_span_t *found = x->in_keys + TG_IN_MAX_TOKENS; /* read_body found them */
    tg_json_span_t gen[N];
    if (x->route == TG_ROUTE_GEMINI) {
        size_t a, b;
        if (!tg_json_member(doc, x->in_len, "generationConfig", &a, &b) || doc[a] != '{')
            return TG_STAGE_CONTINUE;
        doc += a;
        tg_json_members(doc, b - a, fields, N, gen);
        found = gen;
    }
    for (size_t i = 0; i < N; i++) {
        long v = tg_json_span_long(doc, found[i]);
        if (v > cap) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "%s is %ld, above this gateway's limit of %lld tokens per request", fields[i],
                     v, (long long)cap);
            tg_exchange_error(x, 400, "max_tokens_exceeded", msg);
            return TG_STAGE_ANSWERED;
        }
    }
    return TG_STAGE_CONTINUE;
}

/* ---- rate limits (proxy/limits.h) ---- */

/* 429 with Retry-After and the denied limit's Helicone-RateLimit-* headers. */
static tg_stage_result_t deny(tg_exchange_t *x, const tg_rl_headers_t *rh)
{
    tg_metrics_rate_limited(x->pw->metrics);
    tg_http_add_header(x->h, "Retry-After", rh->retry_after);
    tg_http_add_header(x->h, "Helicone-RateLimit-Limit", rh->limit);
    tg_http_add_header(x->h, "Helicone-RateLimit-Remaining", rh->remaining);
    tg_http_add_header(x->h, "Helicone-RateLimit-Policy", rh->policy);
    char msg[256];
    snprintf(msg, sizeof msg, "rate limit exceeded (%s); retry after %s s", rh->policy,
             rh->retry_after);
    tg_exchange_error(x, 429, "rate_limit_exceeded", msg);
    return TG_STAGE_ANSWERED;
}

/* Every request check of a set, all or nothing, in this instance's limiter. */
static tg_stage_result_t acquire_local(tg_exchange_t *x, tg_limits_t *L)
{
    tg_rl_headers_t rh;
    return tg_limits_acquire(x->pw->gw->rl, L, &rh) ? TG_STAGE_CONTINUE : deny(x, &rh);
}

/* Redis could not answer (down, or past its deadline): redis.on_failure
 * says whether this instance's own counters decide (open) or the request
 * is refused (closed). */
static tg_stage_result_t shared_failed(tg_exchange_t *x, tg_limits_t *L)
{
    if (tg_redis_on_failure(x->pw->gw->redis) == TG_REDIS_OPEN)
        return acquire_local(x, L);
    tg_exchange_error(x, 503, "shared_state_unavailable",
                      "the gateway's shared rate-limit state (Redis) is unavailable and "
                      "redis.on_failure is closed; try again shortly");
    return TG_STAGE_ANSWERED;
}

/* The shared limiter's answer, back on our loop: go on, refuse, or fall
 * back as if it had not answered. */
static void on_shared_limits(void *arg, const struct redisReply *reply)
{
    tg_exchange_t *x = arg;
    tg_limits_t *L = x->rl_pending;
    x->redis_req = NULL;
    x->rl_pending = NULL;
    int64_t v[1 + 4 * TG_LIMITS_MAX];
    tg_rl_headers_t rh;
    int nv = reply ? tg_redis_reply_ints(reply, v, 1 + 4 * TG_LIMITS_MAX) : -1;
    int r = nv < 0 ? -2 : tg_limits_shared_result(L, v, nv, &rh);
    tg_stage_result_t next = r == -2  ? shared_failed(x, L)
                             : r >= 0 ? deny(x, &rh)
                                      : TG_STAGE_CONTINUE;
    if (next == TG_STAGE_CONTINUE)
        tg_exchange_resume(x);
}

/* With redis.url the checks run in Redis (one script, one round trip) and
 * the stage parks until it answers; otherwise, or when it cannot be asked,
 * as above. */
static tg_stage_result_t acquire(tg_exchange_t *x, tg_limits_t *L)
{
    if (!L->n)
        return TG_STAGE_CONTINUE;
    if (!x->pw->redis)
        return acquire_local(x, L);
    tg_redis_args_t a = {0};
    tg_rl_redis_args(&a, L->checks, NULL, L->n);
    x->redis_req = tg_redis_eval(x->pw->redis, &tg_rl_redis_acquire, a.nkeys, a.argc, a.argv,
                                 a.lens, on_shared_limits, x);
    tg_redis_args_free(&a);
    if (!x->redis_req)
        return shared_failed(x, L);
    x->rl_pending = L;
    tg_attempt_watch_client(x); /* a client that leaves while parked */
    return TG_STAGE_PARKED;
}

static tg_stage_result_t caller_limits(void *arg)
{
    tg_exchange_t *x = arg;
    char err[256];
    if (tg_limits_for_client(&x->limits, x->cfg, x->pw->gw->rules, tg_exchange_header, x->h,
                             tg_http_client_ip(x->h), x->caller.key_name, err, sizeof err) < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "Helicone-RateLimit-Policy: %s", err);
        tg_exchange_error(x, 400, "invalid_rate_limit_policy", msg);
        return TG_STAGE_ANSWERED;
    }
    if (x->caller.vkey) /* a virtual key's own rate_limit */
        tg_limits_add_key(&x->limits, x->caller.vkey->name, &x->caller.vkey->rate);
    return acquire(x, &x->limits);
}

static tg_stage_result_t provider_limits(void *arg)
{
    tg_exchange_t *x = arg;
    tg_limits_for_provider(&x->plimits, x->cfg, x->target.provider->name);
    return acquire(x, &x->plimits);
}

/* ---- local_answer, plan ---- */

/* Answers made here, without a provider (local.c). */
static tg_stage_result_t local_answer(void *arg)
{
    tg_exchange_t *x = arg;
    const tg_provider_cfg_t *p = x->target.provider;
    /* count_tokens is Anthropic's endpoint: other dialects get an estimate. */
    if (x->route == TG_ROUTE_COUNT_TOKENS && tg_wire_of(p->type) != TG_WIRE_ANTHROPIC) {
        tg_local_count_tokens(x);
        return TG_STAGE_ANSWERED;
    }
    if (tg_provider_rec_of(p)->local &&
        (tg_translate_native(x->wire, p->type) || tg_translate_for(x->wire, p->type))) {
        tg_local_mock(x);
        return TG_STAGE_ANSWERED;
    }
    return TG_STAGE_CONTINUE;
}

/* The target must speak the client's dialect or be reached by a
 * translator; then the targets that follow it if it fails. */
static tg_stage_result_t plan(void *arg)
{
    tg_exchange_t *x = arg;
    /* the target, and every entry of a model list: each was asked for */
    for (size_t i = 0; i <= x->n_fallbacks; i++) {
        const tg_provider_cfg_t *p = i ? x->fallbacks[i - 1].provider : x->target.provider;
        if (!tg_attempt_reachable(x, p)) {
            char err[1024];
            snprintf(err, sizeof err, "provider '%s' (type %s) cannot serve %s requests", p->name,
                     tg_provider_type_name(p->type), x->route_path);
            tg_exchange_error(x, 400, "unsupported_provider", err);
            return TG_STAGE_ANSWERED;
        }
    }
    if (!tg_attempt_plan_fallbacks(x))
        return TG_STAGE_ANSWERED;
    drop_disallowed_fallbacks(x);
    return TG_STAGE_CONTINUE;
}

/* ---- cache (cache/cache.h) ---- */

/* Answers are shared between callers who would reach the provider with the
 * same credential: for a provider with a configured key, per gateway key
 * (or everyone, without gateway keys); for bring-your-own-key, per client
 * credential, which is never stored itself, only a digest of it. */
static const char *cache_scope(tg_exchange_t *x, char out[33])
{
    if (x->target.provider->api_key)
        return x->caller.key_name;
    /* Every header any provider type takes a key from (Azure's api-key too:
     * a caller must not get an answer paid with another caller's key), and
     * the query where the type takes a key from it (Gemini's ?key=): the
     * records say which (providers/credentials.c). */
    tg_buf_t creds = {0};
    tg_provider_credentials_text(x->target.provider, tg_exchange_header, x->h, tg_http_query(x->h),
                                 &creds);
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

void tg_exchange_serve_cached(tg_exchange_t *x, tg_cache_entry_t *e)
{
    x->cache_result = "hit";
    x->status = e->status;
    x->usage = e->usage;
    x->cost_nusd = 0; /* the provider was not paid for this one */
    x->cache_saved_nusd = tg_exchange_price_usage(x, &e->usage); /* what it would have cost */
    tg_filters_copy_to_log(x, e->body, e->body_len);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", e->bucket);
    tg_http_add_header(x->h, "Helicone-Cache", "HIT");
    tg_http_add_header(x->h, "Helicone-Cache-Bucket-Idx", idx);
    tg_http_add_header(x->h, "Helicone-Provider", x->target.provider->name);
    tg_exchange_policy_headers(x);
    tg_spend_headers(x); /* a hit costs nothing, but its budgets are still told */
    tg_metrics_cache(x->pw->metrics, "hit");
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
    tg_exchange_finish(x);
}

/* The leader finished (on its own thread): hand over, nothing more. */
static void on_cache_wake(void *arg, tg_cache_entry_t *entry)
{
    tg_exchange_t *x = arg;
    x->woken = entry;
    event_active(x->cache_ev, EV_READ, 0);
}

/* Back on our thread: serve what the leader got, or go on to fetch it. */
static void on_cache_ev(evutil_socket_t fd, short what, void *arg)
{
    tg_exchange_t *x = arg;
    tg_cache_unwait(x->pw->gw->cache, x->waiter);
    x->waiter = NULL;
    tg_cache_entry_t *e = x->woken;
    x->woken = NULL;
    if (e) {
        tg_exchange_serve_cached(x, e);
        return;
    }
    tg_metrics_cache(x->pw->metrics, "miss");
    x->cache_store_after = x->cache_policy.save;
    tg_exchange_resume(x);
}

/* Look the request up: a hit is answered here; behind an identical
 * request already in flight, the exchange parks until its leader ends. */
static tg_stage_result_t cache(void *arg)
{
    tg_exchange_t *x = arg;
    if (x->route == TG_ROUTE_COUNT_TOKENS)
        return TG_STAGE_CONTINUE;
    char err[256];
    tg_cache_policy_t *p = &x->cache_policy;
    if (tg_cache_policy_parse(p, x->cfg->cache_enabled, x->cfg->cache_ttl_ms, tg_exchange_header,
                              x->h, err, sizeof err) < 0) {
        tg_exchange_error(x, 400, "invalid_cache_header", err);
        return TG_STAGE_ANSWERED;
    }
    if (!p->read && !p->save)
        return TG_STAGE_CONTINUE;
    char scope_buf[33], route[600];
    /* Gemini's model is in the path, so the path is part of the key */
    snprintf(route, sizeof route, "POST %.500s",
             x->route == TG_ROUTE_GEMINI ? tg_http_path(x->h) : x->route_path);
    tg_cache_key(p, cache_scope(x, scope_buf), route, x->in_body, x->in_len, &x->cache_key);
    if (!p->read) {
        x->cache_store_after = true;
        x->rcache = tg_rcache_on(x); /* the answer goes to Redis */
        return TG_STAGE_CONTINUE;
    }
    if (tg_rcache_on(x)) /* caching.backend: redis, shared by the fleet */
        return tg_rcache_lookup(x);
    x->cache_result = "miss";
    x->cache_ev = event_new(x->pw->base, -1, 0, on_cache_ev, x);
    tg_cache_result_t r;
    tg_cache_lookup(x->pw->gw->cache, &x->cache_key, p->bucket_max, p->save, on_cache_wake, x, &r);
    switch (r.status) {
    case TG_CACHE_HIT: tg_exchange_serve_cached(x, r.entry); return TG_STAGE_ANSWERED;
    case TG_CACHE_MISS_WAIT:
        x->waiter = r.waiter;
        tg_attempt_watch_client(x); /* a client that leaves while parked */
        return TG_STAGE_PARKED;
    case TG_CACHE_MISS_LEADER: x->flight = r.flight; break;
    case TG_CACHE_MISS: break;
    }
    tg_metrics_cache(x->pw->metrics, "miss");
    return TG_STAGE_CONTINUE;
}

/* ---- budget (proxy/spend.h) ---- */

/* After the cache: a hit costs nothing and is never refused. */
static tg_stage_result_t budget(void *arg)
{
    return tg_spend_stage(arg);
}

/* Raw pass-through: an LLM call of the provider's type is budgeted like
 * the routes above (its model and output cap read from its body); any
 * other call costs nothing. */
static tg_stage_result_t raw_budget(void *arg)
{
    return tg_spend_stage_raw(arg);
}

/* ---- attempt ---- */

/* The call: parked until the provider's answer ends the exchange (attempt.c). */
static tg_stage_result_t attempt(void *arg)
{
    tg_attempt_begin(arg);
    return TG_STAGE_PARKED;
}

/* ---- the lists ---- */

#define STAGE(fn)                                                                                  \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const tg_stage_t llm_stages[] = {
    STAGE(read_body),       STAGE(resolve), STAGE(token_cap), STAGE(caller_limits),
    STAGE(local_answer),    STAGE(plan),    STAGE(cache),     STAGE(budget),
    STAGE(provider_limits), STAGE(attempt), {NULL, NULL},
};

static const tg_stage_t passthrough_stages[] = {
    STAGE(read_raw_body),   STAGE(caller_limits), STAGE(raw_budget),
    STAGE(provider_limits), STAGE(attempt),       {NULL, NULL},
};

const tg_stage_t *tg_stages_llm(void)
{
    return llm_stages;
}

const tg_stage_t *tg_stages_passthrough(void)
{
    return passthrough_stages;
}
