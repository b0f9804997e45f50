/*
 * spend.c — budgets and Helicone-Max-Cost on the request path (spend.h).
 *
 * The budget stage runs once the target is known and the cache has had its
 * say (a hit costs nothing and is never refused): it refuses a request
 * whose worst case is above Helicone-Max-Cost (402), then reserves the
 * worst case against every budget the request falls under (budget.h): the
 * global one, its gateway key's, its user's (Helicone-User-Id), and one per
 * budgeted property it carries (Helicone-Property-<Name>). A refusal is a
 * 429 in the client's dialect with the budget in the body and Retry-After
 * until the period resets. The reservation is settled to the recorded cost
 * when the exchange ends, whatever the ending (tg_exchange_finish).
 *
 * Thread: the worker thread of the exchange.
 */
#include "proxy/spend.h"

#include "core/log.h"
#include "cost/cost.h"
#include "gateway.h"
#include "proxy/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- which budgets ---- */

/* The global budgets: budgets.daily/monthly with budgets.action, unless the
 * fixtures' `alerts` list says otherwise: a notification entry sets the
 * warning threshold; a throttle entry makes them block at its share of the
 * limit; alerts without a throttle only warn. */
static tg_budget_cfg_t global_cfg(const tg_config_t *c)
{
    tg_budget_cfg_t g = {c->budget_daily, c->budget_monthly, c->budget_action,
                         c->budget_warning_threshold};
    if (!c->n_alerts)
        return g;
    double notify = -1, throttle = -1;
    for (size_t i = 0; i < c->n_alerts; i++) {
        double t = c->alerts[i].threshold;
        bool thr = c->alerts[i].action && !strcmp(c->alerts[i].action, "throttle");
        double *slot = thr ? &throttle : &notify;
        if (*slot < 0 || t < *slot)
            *slot = t;
    }
    if (notify >= 0)
        g.warning_threshold = notify;
    if (throttle < 0) {
        g.action = TG_BUDGET_WARN;
        return g;
    }
    g.action = TG_BUDGET_BLOCK;
    if (g.daily >= 0)
        g.daily *= throttle;
    if (g.monthly >= 0)
        g.monthly *= throttle;
    return g;
}

static bool has_limit(const tg_budget_cfg_t *b)
{
    return b->daily >= 0 || b->monthly >= 0;
}

bool tg_spend_budget_cfg(const tg_config_t *cfg, tg_budgets_t *b, const char *scope,
                         const char *value, tg_budget_cfg_t *out)
{
    if (tg_budget_rule_get(b, scope, value, out))
        return has_limit(out);
    if (!strcmp(scope, "global"))
        *out = global_cfg(cfg);
    else if (!strcmp(scope, "key"))
        *out = cfg->budget_per_key;
    else if (!strcmp(scope, "user"))
        *out = cfg->budget_per_user;
    else {
        out->daily = out->monthly = -1;
        for (size_t i = 0; i < cfg->n_budget_per_property; i++)
            if (!strncmp(scope, "property:", 9) &&
                !strcasecmp(cfg->budget_per_property[i].name, scope + 9))
                *out = cfg->budget_per_property[i].b;
    }
    return has_limit(out);
}

/* a + b into a fixed field, cut to fit (no formatting on the request path) */
static void join2(char *dst, size_t size, const char *a, const char *b)
{
    size_t na = strnlen(a, size - 1), nb = strnlen(b, size - 1 - na);
    memcpy(dst, a, na);
    memcpy(dst + na, b, nb);
    dst[na + nb] = 0;
}

/* Add (scope, value) when a budget with a limit applies to it. */
static int add_apply(const tg_config_t *cfg, tg_budgets_t *b, const char *scope, const char *value,
                     tg_budget_apply_t *out, int n, int max)
{
    if (n >= max || !value || !*value)
        return n;
    for (int i = 0; i < n; i++) /* a property named twice (config and runtime) */
        if (!strcasecmp(out[i].scope, scope) && !strcmp(out[i].value, value))
            return n;
    tg_budget_apply_t *a = &out[n];
    join2(a->scope, sizeof a->scope, scope, "");
    /* a longer value is cut: the budget then covers the values sharing
     * those first 127 bytes (documented) */
    join2(a->value, sizeof a->value, value, "");
    if (!tg_spend_budget_cfg(cfg, b, a->scope, a->value, &a->cfg))
        return n;
    return n + 1;
}

int tg_spend_applies(const tg_config_t *cfg, tg_budgets_t *b, const char *key_name,
                     const char *(*header)(void *h, const char *name), void *h,
                     tg_budget_apply_t *out, int max)
{
    int n = add_apply(cfg, b, "global", "*", out, 0, max);
    n = add_apply(cfg, b, "key", key_name, out, n, max);
    n = add_apply(cfg, b, "user", header(h, "Helicone-User-Id"), out, n, max);
    char hname[TG_BUDGET_SCOPE_MAX + 32], scope[TG_BUDGET_SCOPE_MAX];
    for (size_t i = 0; i < cfg->n_budget_per_property; i++) {
        const char *name = cfg->budget_per_property[i].name;
        join2(hname, sizeof hname, "Helicone-Property-", name);
        join2(scope, sizeof scope, "property:", name);
        n = add_apply(cfg, b, scope, header(h, hname), out, n, max);
    }
    char names[8][TG_BUDGET_SCOPE_MAX];
    size_t nn = tg_budget_rule_properties(b, names, 8);
    for (size_t i = 0; i < nn; i++) {
        join2(hname, sizeof hname, "Helicone-Property-", names[i]);
        join2(scope, sizeof scope, "property:", names[i]);
        n = add_apply(cfg, b, scope, header(h, hname), out, n, max);
    }
    return n;
}

/* ---- the worst case ---- */

/* The largest output cap the body asks for; -1 when none. */
static long asked_output(tg_exchange_t *x)
{
    const char *doc = x->in_body;
    enum { N = TG_IN_NKEYS - TG_IN_MAX_TOKENS };
    const tg_json_span_t *found = x->in_keys + TG_IN_MAX_TOKENS;
    tg_json_span_t gen[N];
    if (!doc)
        return -1;
    if (x->route == TG_ROUTE_GEMINI || (x->raw_metered && x->raw_kind == TG_ROUTE_GEMINI)) {
        size_t a, b;
        if (!tg_json_member(doc, x->in_len, "generationConfig", &a, &b) || doc[a] != '{')
            return -1;
        doc += a;
        tg_json_members(doc, b - a, tg_in_keys_names + TG_IN_MAX_TOKENS, N, gen);
        found = gen;
    }
    long best = -1;
    for (size_t i = 0; i < N; i++) {
        long v = tg_json_span_long(doc, found[i]);
        if (v > best)
            best = v;
    }
    return best;
}

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

int64_t tg_spend_worst_case(tg_exchange_t *x)
{
    if (!x->target.provider || !x->target.model)
        return -1;
    const char *m = tg_http_header(x->h, "Helicone-Model-Override");
    const char *pm = m && *m ? m : x->target.model;
    const char *pv = x->target.provider->name;
    tg_price_t p;
    if (!tg_cost_price_at(x->cfg, pv, pm, &p, NULL))
        return -1;
    int64_t in_price = max3(p.input, p.cached_input, p.cache_write);
    int64_t out_price = p.output;
    if (p.long_above > 0) { /* the long-context tier may apply: take its prices if higher */
        in_price = max3(in_price, p.long_input, max3(p.long_cached_input, p.long_cache_write, 0));
        out_price = out_price > p.long_output ? out_price : p.long_output;
    }
    int64_t limit = tg_cost_max_output(x->cfg, pv, x->target.model);
    long asked = asked_output(x);
    int64_t out_tokens = asked > 0 ? asked : limit;
    if (asked > 0 && limit > 0 && limit < asked) /* the attempt lowers the cap to the limit */
        out_tokens = limit;
    if (out_tokens <= 0) {
        if (out_price > 0)
            return -1;
        out_tokens = 0;
    }
    /* femto-USD, at most ~1e7 bytes x 1e12 + 1e7 x 1e12: within 128 bits */
    __int128 femto = (__int128)x->in_len * in_price + (__int128)out_tokens * out_price;
    __int128 nano = (femto + 999999) / 1000000; /* rounded up: a bound */
    return nano > (__int128)INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)nano;
}

/* ---- refusals ---- */

/* A USD amount from Helicone-Max-Cost: a plain decimal >= 0. */
static bool parse_usd(const char *s, int64_t *nusd)
{
    char *end;
    if (!s || !*s || strspn(s, "0123456789.") != strlen(s))
        return false;
    double v = strtod(s, &end);
    if (*end || v < 0 || v > 1e9)
        return false;
    *nusd = (int64_t)(v * 1e9 + 0.5);
    return true;
}

static void fmt_usd(int64_t nusd, char out[32])
{
    tg_cost_format(nusd < 0 ? 0 : nusd, out);
}

/* 429 budget_exceeded (or unpriced_model) with the budget in the body. */
static void refuse(tg_exchange_t *x, const tg_budget_outcome_t *o)
{
    int64_t now = (int64_t)time(NULL);
    char spend[32], limit[32], retry[32], msg[512], ts[32];
    fmt_usd(o->spend, spend);
    fmt_usd(o->limit, limit);
    snprintf(retry, sizeof retry, "%lld", (long long)(o->resets_at > now ? o->resets_at - now : 1));
    time_t r = (time_t)o->resets_at;
    struct tm tm;
    gmtime_r(&r, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *period = tg_budget_period_name(o->period);
    const char *code = o->unpriced ? "unpriced_model" : "budget_exceeded";
    if (o->unpriced)
        snprintf(msg, sizeof msg,
                 "model '%s' has no price, so its cost cannot be reserved against the %s %s "
                 "budget of %s '%s' (price it, or set cost_tracking.budgets.allow_unpriced)",
                 x->target.model ? x->target.model : "", period, tg_budget_action_name(0), o->scope,
                 o->value);
    else {
        char worst[32];
        fmt_usd(x->worst_nusd, worst);
        snprintf(msg, sizeof msg,
                 "%s budget exceeded for %s '%s': spent %s USD of %s USD, and this request "
                 "could cost up to %s USD; resets at %s",
                 period, o->scope, o->value, spend, limit, worst, ts);
    }
    tg_buf_t extra = {0}, body = {0};
    tg_buf_puts(&extra, "\"budget\":{\"scope\":");
    tg_buf_puts(&extra, "\"");
    tg_buf_json_escape(&extra, o->scope, strlen(o->scope));
    tg_buf_puts(&extra, "\",\"value\":\"");
    tg_buf_json_escape(&extra, o->value, strlen(o->value));
    tg_buf_printf(&extra, "\",\"period\":\"%s\",\"spend\":%s,\"limit\":%s,\"resets_at\":\"%s\"}",
                  period, spend, limit, ts);
    tg_reply_error_with(&body, x->wire, o->unpriced ? 400 : 429, code, code, msg, extra.data);
    if (!o->unpriced)
        tg_http_add_header(x->h, "Retry-After", retry);
    tg_metrics_budget_blocked(x->pw->metrics,
                              strncmp(o->scope, "property:", 9) ? o->scope : "property");
    x->status = o->unpriced ? 400 : 429;
    tg_exchange_set_error(x, tg_xstrdup(msg));
    tg_http_reply(x->h, x->status, "application/json", body.data, body.len);
    tg_buf_free(&extra);
    tg_buf_free(&body);
    tg_exchange_finish(x);
}

/* The headers of an answer budgets apply to. */
static void budget_headers(tg_exchange_t *x, const tg_budget_outcome_t *o)
{
    if (!o->has_limit)
        return;
    char v[32];
    fmt_usd(o->remaining, v);
    tg_http_add_own_header(x->h, "Tollgate-Budget-Remaining", v);
    if (o->warning) {
        snprintf(v, sizeof v, "%.0f", o->percent);
        tg_http_add_own_header(x->h, "Tollgate-Budget-Warning", v);
    }
}

/* Reserve the worst case at the current target; false when refused
 * (answered). The worst case is computed here only when a budget applies
 * (known: already computed for Helicone-Max-Cost). */
/* The budgets that apply (apply has TG_BUDGET_MAX_APPLY slots), and, when
 * some do, the worst case unless known. */
static int applies(tg_exchange_t *x, tg_budget_apply_t *apply, bool known)
{
    int n = tg_spend_applies(x->cfg, x->pw->gw->budgets, x->caller.key_name, tg_exchange_header,
                             x->h, apply, TG_BUDGET_MAX_APPLY);
    if (n && !known)
        x->worst_nusd = tg_spend_worst_case(x);
    return n;
}

static bool reserve(tg_exchange_t *x, bool headers, bool known)
{
    tg_budget_apply_t apply[TG_BUDGET_MAX_APPLY];
    tg_budgets_t *b = x->pw->gw->budgets;
    int n = applies(x, apply, known);
    if (!n)
        return true;
    tg_budget_outcome_t o;
    x->budget_hold.started_ms = x->t0_wall_ms; /* the record's date */
    tg_budget_reserve(b, apply, n, x->worst_nusd, x->cfg->budget_allow_unpriced,
                      (int64_t)time(NULL), &x->budget_hold, &o);
    if (o.refused) {
        refuse(x, &o);
        return false;
    }
    if (headers)
        budget_headers(x, &o);
    return true;
}

/* Helicone-Max-Cost (402); false when the exchange was answered. */
static bool reserve_checks(tg_exchange_t *x)
{
    x->worst_nusd = -1;
    x->worst_known = false;
    if (x->route == TG_ROUTE_COUNT_TOKENS)
        return true;
    const char *mc = tg_http_header(x->h, "Helicone-Max-Cost");
    if (mc) {
        x->worst_nusd = tg_spend_worst_case(x);
        int64_t max;
        if (!parse_usd(mc, &max)) {
            tg_exchange_error(x, 400, "invalid_max_cost",
                              "Helicone-Max-Cost must be a number of USD such as 0.50");
            return false;
        }
        if (x->worst_nusd < 0 || x->worst_nusd > max) {
            char msg[400], w[32], m[32];
            fmt_usd(x->worst_nusd, w);
            fmt_usd(max, m);
            if (x->worst_nusd < 0)
                snprintf(msg, sizeof msg,
                         "the worst-case cost of this request cannot be known (model '%s' has "
                         "no price or no output limit), so it cannot be kept under "
                         "Helicone-Max-Cost %s USD",
                         x->target.model, m);
            else
                snprintf(msg, sizeof msg,
                         "the worst-case cost of this request is %s USD, above Helicone-Max-Cost "
                         "%s USD (lower max_tokens or the prompt)",
                         w, m);
            tg_exchange_error(x, 402, "max_cost_exceeded", msg);
            return false;
        }
        x->worst_known = true;
    }
    x->budget_ran = true;
    x->budget_target = x->fallback_index;
    return true;
}

bool tg_spend_reserve(tg_exchange_t *x)
{
    if (!reserve_checks(x))
        return false;
    if (x->route == TG_ROUTE_COUNT_TOKENS) /* counting tokens costs nothing */
        return true;
    return reserve(x, true, x->worst_known);
}

/* ---- shared in Redis (budget/budget.h, budget_redis.c) ---- */

/* Redis could not answer: redis.on_failure says whether this instance's
 * own table decides (open) or the request is refused (closed). */
static tg_stage_result_t shared_failed(tg_exchange_t *x)
{
    if (tg_redis_on_failure(x->pw->gw->redis) == TG_REDIS_OPEN)
        return reserve(x, true, true) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    tg_exchange_error(x, 503, "shared_state_unavailable",
                      "the gateway's shared budget state (Redis) is unavailable and "
                      "redis.on_failure is closed; try again shortly");
    return TG_STAGE_ANSWERED;
}

static void shared_forget(tg_exchange_t *x)
{
    free(x->shared_apply);
    free(x->shared_slots);
    x->shared_apply = NULL;
    x->shared_slots = NULL;
    x->n_shared_slots = 0;
}

/* This instance's table takes the fleet's spend of the first n slots. */
static void mirror_spend(tg_exchange_t *x, const int64_t *spend, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        const tg_budget_apply_t *a = &x->shared_apply[x->shared_slots[i].apply];
        tg_budget_set_spend(x->pw->gw->budgets, a->scope, a->value, x->shared_slots[i].period,
                            spend[i], now);
    }
}

/* Redis's answer: refused (the budget that refused, with the fleet's
 * spend), or reserved: this instance's table takes the fleet's spend of
 * each budget, then reserves as without Redis (the headers, the events,
 * GET /api/v1/budgets read it). */
static void on_shared_budget(void *arg, const struct redisReply *reply)
{
    tg_exchange_t *x = arg;
    x->redis_req = NULL;
    int ns = x->n_shared_slots;
    int64_t v[1 + 2 * TG_BUDGET_REDIS_SLOTS], spend[TG_BUDGET_REDIS_SLOTS],
        open[TG_BUDGET_REDIS_SLOTS];
    int nv = reply ? tg_redis_reply_ints(reply, v, 1 + 2 * TG_BUDGET_REDIS_SLOTS) : -1;
    int r = nv < 0 ? -2 : tg_budget_redis_result(v, nv, ns, spend, open);
    tg_stage_result_t next;
    if (r == -2) {
        shared_forget(x); /* nothing was reserved there */
        next = shared_failed(x);
    } else if (r >= 0) {
        /* This instance's table takes the fleet's spend and decides first:
         * its refusal raises the exceeded event, as without Redis. When it
         * would let the request through (others' open reservations filled
         * the budget, not spend), its reservation is given back and the
         * fleet's refusal stands. Redis reserved nothing: nothing to settle
         * there. */
        const tg_budget_redis_slot_t *sl = &x->shared_slots[r];
        const tg_budget_apply_t *a = &x->shared_apply[sl->apply];
        tg_budget_outcome_t o = {.refused = true,
                                 .period = sl->period,
                                 .spend = spend[r],
                                 .limit = sl->limit,
                                 .resets_at = sl->end};
        snprintf(o.scope, sizeof o.scope, "%s", a->scope);
        snprintf(o.value, sizeof o.value, "%s", a->value);
        int64_t now = (int64_t)time(NULL);
        mirror_spend(x, spend, r + 1, now);
        shared_forget(x);
        if (!reserve(x, false, true))
            return;
        tg_budget_settle(x->pw->gw->budgets, &x->budget_hold, 0, now);
        refuse(x, &o);
        return;
    } else {
        mirror_spend(x, spend, ns, (int64_t)time(NULL));
        next = reserve(x, true, true) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    }
    if (next == TG_STAGE_CONTINUE)
        tg_exchange_resume(x);
}

tg_stage_result_t tg_spend_stage(tg_exchange_t *x)
{
    if (!reserve_checks(x))
        return TG_STAGE_ANSWERED;
    if (x->route == TG_ROUTE_COUNT_TOKENS) /* counting tokens costs nothing */
        return TG_STAGE_CONTINUE;
    if (!x->pw->redis)
        return reserve(x, true, x->worst_known) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    tg_budget_apply_t apply[TG_BUDGET_MAX_APPLY];
    tg_budgets_t *b = x->pw->gw->budgets;
    int n = applies(x, apply, x->worst_known);
    if (!n)
        return TG_STAGE_CONTINUE;
    x->worst_known = true;
    tg_budget_redis_slot_t sl[TG_BUDGET_REDIS_SLOTS];
    int64_t now = (int64_t)time(NULL);
    int ns = tg_budget_redis_slots(b, apply, n, now, sl);
    /* an unknown cost reserves nothing: this instance refuses it under a
     * block budget (unpriced_model), or lets it through and settles it */
    if (!ns || x->worst_nusd < 0)
        return reserve(x, true, true) ? TG_STAGE_CONTINUE : TG_STAGE_ANSWERED;
    tg_redis_args_t ra = {0};
    tg_budget_redis_reserve_args(&ra, apply, sl, ns, x->worst_nusd);
    x->redis_req = tg_redis_eval(x->pw->redis, &tg_budget_redis_reserve, ra.nkeys, ra.argc, ra.argv,
                                 ra.lens, on_shared_budget, x);
    tg_redis_args_free(&ra);
    if (!x->redis_req)
        return shared_failed(x);
    x->shared_apply = tg_xmalloc((size_t)n * sizeof *apply);
    memcpy(x->shared_apply, apply, (size_t)n * sizeof *apply);
    x->shared_slots = tg_xmalloc((size_t)ns * sizeof *sl);
    memcpy(x->shared_slots, sl, (size_t)ns * sizeof *sl);
    x->n_shared_slots = ns;
    x->shared_amount = x->worst_nusd;
    tg_attempt_watch_client(x); /* a client that leaves while parked */
    return TG_STAGE_PARKED;
}

/* The shared reservation becomes the actual cost (sent without waiting). */
static void shared_settle(tg_exchange_t *x)
{
    if (!x->n_shared_slots)
        return;
    tg_redis_args_t ra = {0};
    tg_budget_redis_settle_args(&ra, x->shared_apply, x->shared_slots, x->n_shared_slots,
                                x->shared_amount, x->cost_nusd);
    if (!tg_redis_eval(x->pw->redis, &tg_budget_redis_settle, ra.nkeys, ra.argc, ra.argv, ra.lens,
                       NULL, NULL))
        tg_warn("budgets: a reservation of %lld nano-USD could not be settled in Redis (it is "
                "not connected); it holds until the period ends",
                (long long)x->shared_amount);
    tg_redis_args_free(&ra);
    shared_forget(x);
}

void tg_spend_headers(tg_exchange_t *x)
{
    tg_budget_apply_t apply[TG_BUDGET_MAX_APPLY];
    tg_budgets_t *b = x->pw->gw->budgets;
    int n = tg_spend_applies(x->cfg, b, x->caller.key_name, tg_exchange_header, x->h, apply,
                             TG_BUDGET_MAX_APPLY);
    if (!n)
        return;
    /* a reservation of nothing, given back at once: the figures, no change */
    int64_t now = (int64_t)time(NULL);
    tg_budget_hold_t hold = {0};
    tg_budget_outcome_t o;
    tg_budget_reserve(b, apply, n, 0, true, now, &hold, &o);
    tg_budget_settle(b, &hold, 0, now);
    if (o.refused) { /* already at or past a block limit */
        o.has_limit = o.warning = true;
        o.remaining = 0;
        o.percent = o.limit > 0 ? 100.0 * (double)o.spend / (double)o.limit : 100.0;
    }
    budget_headers(x, &o);
}

bool tg_spend_retarget(tg_exchange_t *x)
{
    if (!x->budget_ran || x->budget_target == x->fallback_index)
        return true; /* no budget stage (pass-through), or the same target (a retry) */
    tg_budget_settle(x->pw->gw->budgets, &x->budget_hold, 0, (int64_t)time(NULL));
    x->budget_target = x->fallback_index;
    return reserve(x, false, false);
}

/* ---- raw pass-through ---- */

static bool ends_with(const char *s, size_t n, const char *tail)
{
    size_t t = strlen(tail);
    return n >= t && !memcmp(s + n - t, tail, t);
}

bool tg_spend_gemini_path_model(const char *path, char *out, size_t outlen)
{
    const char *m = NULL;
    for (const char *p = strstr(path, "/models/"); p; p = strstr(p + 1, "/models/"))
        m = p + 8;
    if (!m)
        return false;
    const char *colon = strchr(m, ':');
    size_t n = colon ? (size_t)(colon - m) : 0;
    if (!n || n >= outlen || memchr(m, '/', n))
        return false;
    memcpy(out, m, n);
    out[n] = 0;
    return true;
}

tg_route_kind_t tg_spend_raw_route(tg_wire_t wire, const char *method, const char *path)
{
    if (!method || strcmp(method, "POST") || !path)
        return TG_ROUTE_PASSTHROUGH;
    size_t n = strlen(path);
    while (n && path[n - 1] == '/') /* a trailing slash reaches the same endpoint */
        n--;
    switch (wire) {
    case TG_WIRE_OPENAI:
    case TG_WIRE_RESPONSES:
        if (ends_with(path, n, "/chat/completions"))
            return TG_ROUTE_CHAT;
        if (ends_with(path, n, "/completions"))
            return TG_ROUTE_COMPLETIONS;
        if (ends_with(path, n, "/responses"))
            return TG_ROUTE_RESPONSES;
        if (ends_with(path, n, "/embeddings"))
            return TG_ROUTE_EMBEDDINGS;
        return TG_ROUTE_PASSTHROUGH;
    case TG_WIRE_ANTHROPIC:
        return ends_with(path, n, "/messages") ? TG_ROUTE_MESSAGES : TG_ROUTE_PASSTHROUGH;
    case TG_WIRE_GEMINI: {
        char model[256];
        if ((ends_with(path, n, ":generateContent") ||
             ends_with(path, n, ":streamGenerateContent")) &&
            tg_spend_gemini_path_model(path, model, sizeof model))
            return TG_ROUTE_GEMINI;
        return TG_ROUTE_PASSTHROUGH;
    }
    }
    return TG_ROUTE_PASSTHROUGH;
}

/* The model a raw call names: Gemini's in the path, the others' in the
 * body's "model" (a string; escapes decoded by jansson). NULL when none. */
static char *raw_model(tg_exchange_t *x)
{
    char buf[256];
    if (x->raw_kind == TG_ROUTE_GEMINI)
        return tg_spend_gemini_path_model(x->suffix, buf, sizeof buf) ? tg_xstrdup(buf) : NULL;
    int r = tg_json_span_plain_string(x->in_body, x->in_keys[TG_IN_MODEL], buf, sizeof buf);
    if (r == 1)
        return tg_xstrdup(buf);
    if (r == 0)
        return NULL;
    json_t *jm = json_object_get(tg_exchange_in_root(x), "model");
    if (!json_is_string(jm) || strlen(json_string_value(jm)) != json_string_length(jm))
        return NULL;
    return tg_xstrdup(json_string_value(jm));
}

/* Whether a block budget applies to the request (with a limit). */
static bool block_applies(tg_exchange_t *x)
{
    tg_budget_apply_t apply[TG_BUDGET_MAX_APPLY];
    int n = tg_spend_applies(x->cfg, x->pw->gw->budgets, x->caller.key_name, tg_exchange_header,
                             x->h, apply, TG_BUDGET_MAX_APPLY);
    for (int i = 0; i < n; i++)
        if (apply[i].cfg.action == TG_BUDGET_BLOCK)
            return true;
    return false;
}

bool tg_spend_reserve_raw(tg_exchange_t *x)
{
    const tg_provider_cfg_t *p = x->target.provider;
    tg_wire_t wire = tg_wire_of(p->type);
    tg_route_kind_t k = tg_spend_raw_route(wire, tg_http_method(x->h), x->suffix);
    if (k == TG_ROUTE_PASSTHROUGH) /* files, model lists, ...: they cost nothing */
        return true;
    /* errors from here on in the route's dialect */
    x->wire = k == TG_ROUTE_RESPONSES ? TG_WIRE_RESPONSES : wire;
    bool json = x->in_body && tg_json_valid(x->in_body, x->in_len, NULL, NULL) &&
                tg_json_object_start(x->in_body, x->in_len);
    if (!json) {
        if (block_applies(x)) {
            tg_exchange_error(
                x, 400, "invalid_json",
                "this pass-through call reaches an LLM route under a block budget, and its body "
                "is not a JSON object, so its cost cannot be known: send the request's JSON");
            return false;
        }
        if (!tg_http_header(x->h, "Helicone-Max-Cost"))
            return true;            /* not costed, as nothing holds it to a cost */
        return tg_spend_reserve(x); /* the worst case is unknown: 402 */
    }
    x->raw_metered = true;
    x->raw_kind = k;
    if (k != TG_ROUTE_GEMINI)
        tg_json_members(x->in_body, x->in_len, tg_in_keys_names, TG_IN_NKEYS, x->in_keys);
    x->target.model = raw_model(x);
    if (x->target.model)
        x->model_requested = tg_xstrdup(x->target.model);
    return tg_spend_reserve(x);
}

void tg_spend_settle(tg_exchange_t *x)
{
    shared_settle(x);
    if (x->budget_hold.reserved) {
        int64_t now = (int64_t)time(NULL);
        tg_budgets_t *b = x->pw->gw->budgets;
        tg_budget_settle(b, &x->budget_hold, x->cost_nusd, now); /* and its events */
    }
}
