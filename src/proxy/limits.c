/*
 * limits.c — see limits.h. Each configured pair (requests_per_minute,
 * tokens_per_minute) becomes up to two checks: "req|<scope>" acquired with
 * 1 unit before the call, "tok|<scope>" acquired with 0 units (admitted
 * while not in debt) and charged with the real tokens after it.
 */
#include "proxy/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void add(tg_limits_t *L, const char *key, tg_rl_limit_t lim, int64_t n,
                const tg_rl_policy_t *pol)
{
    if (L->n == TG_LIMITS_MAX || lim.quota <= 0)
        return;
    if (!L->checks) {
        L->checks = tg_xcalloc(TG_LIMITS_MAX, sizeof *L->checks);
        L->policies = tg_xcalloc(TG_LIMITS_MAX, sizeof *L->policies);
        L->keys = tg_xcalloc(TG_LIMITS_MAX, sizeof *L->keys);
    }
    L->keys[L->n] = tg_xstrdup(key);
    L->checks[L->n] = (tg_rl_check_t){.key = L->keys[L->n], .limit = lim, .n = n};
    L->policies[L->n] = *pol;
    L->n++;
}

/* A per-minute pair under a scope like "ip:1.2.3.4". */
static void add_pair(tg_limits_t *L, const tg_rate_pair_t *pair, const char *scope)
{
    char key[600];
    tg_rl_policy_t pol = {.window_s = 60, .unit = TG_RL_UNIT_REQUEST};
    if (pair->requests_per_minute > 0) {
        snprintf(key, sizeof key, "req|%s", scope);
        pol.quota = pair->requests_per_minute;
        add(L, key, tg_rl_policy_limit(&pol), 1, &pol);
    }
    if (pair->tokens_per_minute > 0) {
        snprintf(key, sizeof key, "tok|%s", scope);
        pol.quota = pair->tokens_per_minute;
        pol.unit = TG_RL_UNIT_TOKEN;
        add(L, key, tg_rl_policy_limit(&pol), 0, &pol);
    }
}

void tg_limits_add_key(tg_limits_t *L, const char *name, const tg_rate_pair_t *pair)
{
    char scope[600];
    snprintf(scope, sizeof scope, "vkey:%.500s", name);
    add_pair(L, pair, scope);
}

typedef struct {
    tg_limits_header_fn get;
    void *ctx;
} prop_ctx_t;

static const char *property(void *arg, const char *name)
{
    prop_ctx_t *p = arg;
    char h[128];
    snprintf(h, sizeof h, "Helicone-Property-%s", name);
    return p->get(p->ctx, h);
}

int tg_limits_for_client(tg_limits_t *L, const tg_config_t *cfg, tg_rl_registry_t *rules,
                         tg_limits_header_fn get, void *ctx, const char *ip, const char *key_name,
                         char *err, size_t errlen)
{
    tg_limits_free(L); /* L is zeroed or was used before */
    L->header_policy = -1;
    char scope[600];
    /* formatted only when some per-address pair may use it: most set-ups
     * have none, and this runs for every request */
    if (cfg->rl_enabled || cfg->sec_per_ip.requests_per_minute > 0 ||
        cfg->sec_per_ip.tokens_per_minute > 0)
        snprintf(scope, sizeof scope, "ip:%.100s", ip ? ip : "");
    add_pair(L, &cfg->sec_per_ip, scope);
    if (cfg->rl_enabled) {
        char sec_scope[610];
        snprintf(sec_scope, sizeof sec_scope, "rl-%s", scope); /* apart from the security one */
        add_pair(L, &cfg->rl_per_ip, sec_scope);
        if (key_name) {
            snprintf(scope, sizeof scope, "key:%.500s", key_name);
            add_pair(L, &cfg->rl_per_key, scope);
        }
        const char *user = get(ctx, "Helicone-User-Id");
        if (user) {
            snprintf(scope, sizeof scope, "user:%.500s", user);
            add_pair(L, &cfg->rl_per_user, scope);
        }
        prop_ctx_t pc = {get, ctx};
        for (size_t i = 0; i < cfg->n_rl_per_property; i++) {
            const char *v = property(&pc, cfg->rl_per_property[i].name);
            if (!v)
                continue;
            snprintf(scope, sizeof scope, "prop:%.100s=%.400s", cfg->rl_per_property[i].name, v);
            add_pair(L, &cfg->rl_per_property[i].limit, scope);
        }
    }
    /* runtime limits, whether or not rate_limiting is enabled: someone set them on purpose */
    if (rules) {
        tg_rl_rule_t matched[8];
        prop_ctx_t pc = {get, ctx};
        size_t m = tg_rl_registry_match(rules, property, &pc, matched, 8);
        for (size_t i = 0; i < m && i < 8; i++) {
            snprintf(scope, sizeof scope, "rule:%.40s", matched[i].id);
            add(L, scope, tg_rl_policy_limit(&matched[i].policy),
                matched[i].policy.unit == TG_RL_UNIT_REQUEST ? 1 : 0, &matched[i].policy);
        }
    }
    /* Helicone-RateLimit-Policy */
    const char *hv = get(ctx, "Helicone-RateLimit-Policy");
    if (hv) {
        tg_rl_policy_t pol;
        if (tg_rl_policy_parse(hv, &pol, err, errlen) < 0)
            return -1;
        prop_ctx_t pc = {get, ctx};
        const char *seg = pol.segment == TG_RL_SEGMENT_USER       ? get(ctx, "Helicone-User-Id")
                          : pol.segment == TG_RL_SEGMENT_PROPERTY ? property(&pc, pol.property)
                                                                  : NULL;
        tg_buf_t k = {0};
        /* a segment with no value on this request: the policy does not apply */
        if (tg_rl_policy_key(&pol, key_name, seg, &k) == 0 && L->n < TG_LIMITS_MAX) {
            L->header_policy = (int)L->n;
            add(L, k.data, tg_rl_policy_limit(&pol), pol.unit == TG_RL_UNIT_REQUEST ? 1 : 0, &pol);
        }
        tg_buf_free(&k);
    }
    return 0;
}

void tg_limits_for_provider(tg_limits_t *L, const tg_config_t *cfg, const char *provider)
{
    if (!cfg->rl_enabled)
        return;
    char scope[300];
    for (size_t i = 0; i < cfg->n_rl_providers; i++)
        if (!strcasecmp(cfg->rl_providers[i].name, provider)) {
            snprintf(scope, sizeof scope, "provider:%.200s", provider);
            add_pair(L, &cfg->rl_providers[i].limit, scope);
        }
}

bool tg_limits_acquire(tg_rl_t *rl, tg_limits_t *L, tg_rl_headers_t *hdr)
{
    if (!L->n)
        return true;
    tg_rl_result_t res[TG_LIMITS_MAX];
    memset(res, 0, sizeof res);
    int denied = tg_rl_acquire_all(rl, L->checks, L->n, res);
    if (denied < 0)
        return true;
    tg_rl_headers(&L->policies[denied], &res[denied], hdr);
    return false;
}

int tg_limits_shared_result(tg_limits_t *L, const int64_t *v, int nv, tg_rl_headers_t *hdr)
{
    tg_rl_result_t res[TG_LIMITS_MAX];
    memset(res, 0, sizeof res);
    int r = tg_rl_redis_result(v, nv, L->checks, L->n, res);
    if (r >= 0)
        tg_rl_headers(&L->policies[r], &res[r], hdr);
    else if (r == -1 && L->header_policy >= 0 && (size_t)L->header_policy < L->n) {
        L->hp = res[L->header_policy];
        L->hp_shared = true;
    }
    return r;
}

bool tg_limits_policy_headers(tg_rl_t *rl, const tg_limits_t *L, tg_rl_headers_t *hdr)
{
    if (L->header_policy < 0 || (size_t)L->header_policy >= L->n)
        return false;
    const tg_rl_check_t *c = &L->checks[L->header_policy];
    tg_rl_result_t r = L->hp;
    if (!L->hp_shared)
        tg_rl_peek(rl, c->key, &c->limit, &r);
    tg_rl_headers(&L->policies[L->header_policy], &r, hdr);
    return true;
}

void tg_limits_settle(tg_rl_t *rl, struct tg_redis *redis, const tg_limits_t *L, long tokens,
                      double cost_usd)
{
    tg_rl_check_t sel[TG_LIMITS_MAX];
    int64_t units[TG_LIMITS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < L->n; i++) {
        const tg_rl_policy_t *p = &L->policies[i];
        int64_t u = 0;
        if (p->unit == TG_RL_UNIT_TOKEN && tokens > 0)
            u = tokens;
        else if (p->unit == TG_RL_UNIT_CENTS && cost_usd > 0)
            u = tg_rl_usd_units(cost_usd);
        if (u) {
            sel[n] = L->checks[i];
            units[n++] = u;
        }
    }
    if (!n)
        return;
    if (redis) {
        tg_redis_args_t a = {0};
        tg_rl_redis_args(&a, sel, units, n);
        tg_redis_req_t *q =
            tg_redis_eval(redis, &tg_rl_redis_charge, a.nkeys, a.argc, a.argv, a.lens, NULL, NULL);
        tg_redis_args_free(&a);
        if (q)
            return;
    }
    for (size_t i = 0; i < n; i++)
        tg_rl_charge(rl, sel[i].key, &sel[i].limit, units[i]);
}

void tg_limits_free(tg_limits_t *L)
{
    if (L->checks) { /* the three arrays come together (add); most sets never had one */
        for (size_t i = 0; i < L->n; i++)
            free(L->keys[i]);
        free(L->checks);
        free(L->policies);
        free(L->keys);
    }
    memset(L, 0, sizeof *L);
}
