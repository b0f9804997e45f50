/*
 * exchange.c — an exchange's life: how it begins (its id, its record), the
 * two ways it ends in the client's eyes (an error answer, a failure after
 * the answer began), the settling of what it cost, and tg_exchange_finish,
 * the one place where everything it holds is given back.
 *
 * Why one place: an exchange ends on many paths (an answer, an error, a
 * client that left, the gateway shutting down), and every one of them must
 * submit the record, release the cache tickets and free the same things.
 * Per-attempt state is freed by tg_attempt_clear, which finish calls too.
 *
 * Thread: the worker thread of the exchange.
 */
#include "proxy/exchange.h"
#include "proxy/rcache.h"

#include "core/log.h"
#include "cost/cost.h"
#include "gateway.h"
#include "metrics/metrics.h"
#include "proxy/reply.h"
#include "proxy/spend.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *tg_exchange_header(void *h, const char *name)
{
    return tg_http_header(h, name);
}

json_t *tg_exchange_in_root(tg_exchange_t *x)
{
    if (!x->in_root)
        x->in_root = json_loadb(x->in_body, x->in_len, JSON_ALLOW_NUL, NULL);
    return x->in_root;
}

/* ---- the record (SPEC §8) ---- */

/* Helicone-User-Id, -Session-*, -Property-*, -Omit-* into the record. */
static int record_header(const char *name, const char *value, void *arg)
{
    tg_exchange_t *x = arg;
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

/* Whether the record goes to the store: only then are bodies kept (the
 * event and the span never carry them). */
static bool record_stored(const tg_exchange_t *x)
{
    return x->pw->gw->store && x->cfg->request_logging_enabled;
}

bool tg_exchange_logs_bodies(const tg_exchange_t *x)
{
    return x->rec && record_stored(x) && x->cfg->log_bodies;
}

/* One record per request, whatever its ending. What only the request can
 * tell is taken now, while it is alive. */
static void record_begin(tg_exchange_t *x)
{
    if (!record_stored(x) && !tg_events_wants_requests(x->pw->gw->events) && !x->pw->gw->otlp)
        return;
    tg_record_t *r = x->rec = tg_record_new();
    tg_record_set_str(&r->id, x->id);
    r->created_at_ms = x->t0_wall_ms;
    tg_record_set_str(&r->route, x->route_path);
    tg_record_set_str(&r->key_name, x->caller.key_name);
    tg_record_set_str(&r->client_ip, tg_http_client_ip(x->h));
    tg_http_headers_foreach(x->h, record_header, x);
}

void tg_exchange_record_header(tg_exchange_t *x, const char *name, const char *value)
{
    if (x->rec)
        record_header(name, value, x);
}

void tg_exchange_record_request_body(tg_exchange_t *x)
{
    tg_exchange_span_request(x);
    if (tg_exchange_logs_bodies(x) && !x->omit_request && x->in_body)
        tg_record_set_body(x->rec, false, x->in_body, x->in_len, x->cfg->max_body_bytes);
}

static void record_submit(tg_exchange_t *x)
{
    tg_record_t *r = x->rec;
    if (!r)
        return;
    x->rec = NULL;
    tg_record_set_str(&r->provider,
                      x->target.provider ? x->target.provider->name : x->log_provider);
    tg_record_set_str(&r->model, x->target.model);
    tg_record_set_str(&r->model_requested, x->model_requested);
    r->status = x->status;
    r->latency_ms = x->log_dialect ? x->log_latency_ms : (tg_mono_us() - x->t0_us) / 1000;
    r->ttft_ms = x->ttfb_us ? x->ttfb_us / 1000 : -1;
    r->usage = x->usage;
    r->cost_nusd = x->cost_nusd;
    r->cache_saved_nusd = x->cache_saved_nusd;
    r->cache = !x->cache_result                  ? TG_RECORD_CACHE_NONE
               : !strcmp(x->cache_result, "hit") ? TG_RECORD_CACHE_HIT
                                                 : TG_RECORD_CACHE_MISS;
    r->retries = x->retries;
    r->fallback_index = x->fallback_index;
    tg_record_set_str(&r->error, x->error);
    if (record_stored(x) && x->cfg->log_bodies && !x->omit_response) {
        /* the log copy, bounded as it was made, is handed over, not copied */
        if (x->log_body.len)
            tg_record_take_body(r, &x->log_body, x->cfg->max_body_bytes);
        else if (x->att.resp.len)
            tg_record_set_body(r, true, x->att.resp.data, x->att.resp.len, x->cfg->max_body_bytes);
    }
    /* request.completed: the record without its bodies (a copy, queued) */
    tg_events_request(x->pw->gw->events, r);
    tg_exchange_span_submit(x, r); /* the span: a copy of some fields, queued */
    if (!record_stored(x)) {
        tg_record_free(r); /* built for the event or the span only */
        return;
    }
    /* Usually the reply that ends this exchange is written at the end of
     * this loop turn, and the journal just before it (before_write). An
     * exchange whose client is gone has no reply: journal_ev then writes. */
    if (tg_journal_submit(x->pw->gw->store, x->pw->journal, r))
        event_active(x->pw->journal_ev, EV_TIMEOUT, 0);
}

/* ---- beginning and end ---- */

tg_exchange_t *tg_exchange_new(tg_pworker_t *pw, tg_http_t *h, const tg_caller_t *caller,
                               tg_route_kind_t route, const char *route_path)
{
    tg_exchange_t *x = tg_xcalloc(1, sizeof *x);
    x->h = h;
    x->caller = *caller;
    x->pw = pw;
    x->cfg = tg_pworker_cfg_hold(pw);
    x->route = route;
    x->route_path = route_path;
    x->t0_us = tg_mono_us();
    x->usage = (tg_usage_t)TG_USAGE_UNKNOWN;
    x->cost_nusd = -1;
    x->cache_saved_nusd = -1;
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
    tg_exchange_span_begin(x);
    record_begin(x);
    return x;
}

void tg_exchange_finish(tg_exchange_t *x)
{
    /* the record first: a budget reload from the store (budget.h) counts a
     * settled request by its record */
    record_submit(x);
    tg_spend_settle(x); /* the reservation becomes the recorded cost */
    if (x->target.provider && x->cfg->metrics_enabled) {
        tg_metrics_request(x->pw->metrics, x->target.provider->name, x->target.model, x->status,
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
    tg_attempt_clear(&x->att);
    tg_redis_cancel(x->redis_req); /* a reply still to come finds no one */
    x->redis_req = NULL;
    if (x->retry_timer)
        event_free(x->retry_timer);
    /* Cache tickets end here whatever happened: a flight we still hold had
     * no whole answer; a wait must be withdrawn before its event goes. */
    tg_cache_t *cache = x->pw->gw->cache;
    if (x->flight)
        tg_cache_abandon(cache, x->flight);
    if (x->waiter && tg_cache_unwait(cache, x->waiter))
        tg_cache_entry_release(x->woken);
    tg_rcache_finish(x); /* a flight of the fleet we led without an answer */
    if (x->cache_ev)
        event_free(x->cache_ev);
    tg_cache_policy_free(&x->cache_policy);
    tg_limits_free(&x->limits);
    tg_limits_free(&x->plimits);
    tg_route_clear(&x->target);
    tg_target_opts_clear(&x->target_opts);
    for (size_t i = 0; i < x->n_fallbacks; i++) {
        tg_route_clear(&x->fallbacks[i]);
        tg_target_opts_clear(&x->fallback_opts[i]);
    }
    free(x->model_requested);
    free(x->log_provider);
    json_decref(x->in_root);
    free(x->error);
    tg_buf_free(&x->log_body);
    tg_pworker_cfg_drop(x->pw, x->cfg);
    free(x);
}

/* ---- errors ---- */

bool tg_exchange_post_only(tg_exchange_t *x)
{
    if (!strcmp(tg_http_method(x->h), "POST"))
        return true;
    tg_http_add_header(x->h, "Allow", "POST");
    tg_exchange_error(x, 405, "method_not_allowed", "this route takes POST");
    return false;
}

void tg_exchange_set_error(tg_exchange_t *x, char *message)
{
    free(x->error);
    x->error = message;
}

/* The provider's message (tg_translate_error_message), else `fallback`, else
 * "provider answered NNN". */
void tg_exchange_note_provider_error(tg_exchange_t *x, const char *body, size_t len,
                                     const char *fallback)
{
    char *m = tg_translate_error_message(body, len);
    if (!m && fallback)
        m = tg_xstrdup(fallback);
    if (!m) {
        char buf[40];
        snprintf(buf, sizeof buf, "provider answered %d", x->status);
        m = tg_xstrdup(buf);
    }
    tg_exchange_set_error(x, m);
}

void tg_exchange_error(tg_exchange_t *x, int status, const char *code, const char *message)
{
    x->status = status;
    tg_exchange_set_error(x, tg_xstrdup(message));
    tg_reply_error(x->h, x->wire, status, code, message);
    tg_exchange_finish(x);
}

/* The one ending for failures after the exchange began (provider cut or
 * silent, gateway shutting down), in the client's dialect and in the record.
 * Before the answer started: an error answer with `status`. After a stream
 * started the status line is gone, so the record keeps the status the
 * client was sent (SPEC §7) and the client learns in-band, never a stream
 * passed off as complete: an event stream gets its dialect's error event and
 * then its clean end; a body the gateway does not frame (raw pass-through,
 * Gemini's streamed JSON array) is cut off, the connection closing without
 * the last chunk. */
void tg_exchange_fail(tg_exchange_t *x, int status, const char *code, const char *message)
{
    if (!x->streaming) {
        tg_exchange_error(x, status, code, message);
        return;
    }
    tg_exchange_set_error(x, tg_xstrdup(message));
    if (x->att.sse && x->route != TG_ROUTE_PASSTHROUGH) {
        tg_buf_t ev = {0};
        if (x->wire == TG_WIRE_RESPONSES) /* response.failed, numbered after what was sent */
            tg_translate_responses_failed(x->att.f.ts ? tg_translate_stream_seq(x->att.f.ts)
                                                      : x->att.f.next_seq,
                                          x->id, status, code, message, &ev);
        else
            tg_translate_error_event(x->wire, status, code, message, &ev);
        tg_filters_copy_to_log(x, ev.data, ev.len);
        tg_http_stream_write(x->h, ev.data, ev.len);
        tg_buf_free(&ev);
        tg_http_stream_end(x->h);
    } else {
        tg_http_stream_abort(x->h);
    }
    tg_exchange_finish(x);
}

/* ---- settling ---- */

void tg_exchange_policy_headers(tg_exchange_t *x)
{
    tg_rl_headers_t rh;
    if (!tg_limits_policy_headers(x->pw->gw->rl, &x->limits, &rh))
        return;
    tg_http_add_header(x->h, "Helicone-RateLimit-Limit", rh.limit);
    tg_http_add_header(x->h, "Helicone-RateLimit-Remaining", rh.remaining);
    tg_http_add_header(x->h, "Helicone-RateLimit-Policy", rh.policy);
}

/* The model whose price applies: Helicone-Model-Override names it. */
static const char *priced_model(tg_exchange_t *x)
{
    const char *m = tg_http_header(x->h, "Helicone-Model-Override");
    return m && *m ? m : x->target.model;
}

int64_t tg_exchange_price_usage(tg_exchange_t *x, const tg_usage_t *u)
{
    tg_price_t price;
    if (!x->cfg->cost_enabled || !x->target.model || !x->target.provider ||
        !tg_cost_price_at(x->cfg, x->target.provider->name, priced_model(x), &price, NULL))
        return -1;
    return tg_cost_compute(&price, u);
}

/* Cost, then limits charged, then the cache fed with the whole answer. */
void tg_exchange_settle(tg_exchange_t *x)
{
    if (x->cfg->cost_enabled && x->status / 100 == 2 && x->target.model) {
        const char *pm = priced_model(x), *pv = x->target.provider->name;
        x->cost_nusd = tg_exchange_price_usage(x, &x->usage);
        /* A raw call's answer that told no usage (an OpenAI stream without
         * stream_options.include_usage, say) is charged its worst case: the
         * provider charged something, and a budget must not take it as 0. */
        if (x->raw_metered && x->worst_nusd >= 0 && x->usage.prompt_tokens < 0 &&
            x->usage.completion_tokens < 0)
            x->cost_nusd = x->worst_nusd;
        if (x->cost_nusd < 0 && tg_metrics_unpriced(x->pw->metrics, pv, pm))
            tg_warn("model '%s' at provider '%s' has no price: its requests are recorded with "
                    "cost null (price it under cost_tracking.pricing or prices_file)",
                    pm, pv);
    }
    long tokens = (x->usage.prompt_tokens > 0 ? x->usage.prompt_tokens : 0) +
                  (x->usage.completion_tokens > 0 ? x->usage.completion_tokens : 0);
    double usd = x->cost_nusd >= 0 ? tg_cost_usd(x->cost_nusd) : -1;
    tg_limits_settle(x->pw->gw->rl, x->pw->redis, &x->limits, tokens, usd);
    tg_limits_settle(x->pw->gw->rl, x->pw->redis, &x->plimits, tokens, usd);
    if (!x->flight && !x->cache_store_after)
        return;
    const tg_attempt_t *a = &x->att;
    bool whole = x->streaming ? !a->f.stream_copy_full : true;
    tg_cache_answer_t ans = {
        .status = x->status,
        .content_type = a->resp_ctype,
        .body = x->streaming ? a->f.stream_copy.data : a->resp.data,
        .body_len = x->streaming ? a->f.stream_copy.len : a->resp.len,
        .stream = x->streaming,
        .usage = x->usage,
        .cost = x->cost_nusd >= 0 ? tg_cost_usd(x->cost_nusd) : -1,
    };
    if (!ans.body)
        ans.body = "";
    if (x->rcache) {
        tg_rcache_settle(x, &ans, whole);
        x->cache_store_after = false;
        return;
    }
    tg_cache_t *cache = x->pw->gw->cache;
    if (x->flight && whole)
        tg_cache_complete(cache, x->flight, &ans, x->cache_policy.ttl_ms);
    else if (x->flight)
        tg_cache_abandon(cache, x->flight);
    else if (whole)
        tg_cache_store(cache, &x->cache_key, x->cache_policy.bucket_max, &ans,
                       x->cache_policy.ttl_ms);
    x->flight = NULL;
}
