/*
 * router.c — model → provider resolution (SPEC §4). Pure; any thread.
 *
 * Order: `provider/` prefix; a `/provider` suffix (Helicone's AI-gateway
 * form, `gpt-4o-mini/openai`; the prefix wins when both name a configured
 * provider); routing.rules (first match; a `default` rule
 * acts as routing.default_provider, after the family step, so that
 * `claude-*` still reaches anthropic); model_aliases; providers' `models`
 * lists; well-known families (the provider records'); the default
 * provider; else an error naming the configured providers. Where several providers' `models` lists
 * match, routing.load_balancing picks one (balance.c); for `cost` this file looks up each
 * candidate's price (cost.c) and hands the prices over.
 */
#include "router/router.h"

#include "core/util.h"
#include "cost/cost.h"
#include "providers/provider.h"
#include "router/balance.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The well-known families (SPEC §4 step 3) are the provider records'
 * `families` (providers/registry.c). */
static const tg_provider_rec_t *family_record(const char *model)
{
    const tg_provider_rec_t *r;
    for (size_t i = 0; (r = tg_provider_rec_at(i)); i++)
        for (const char *const *f = r->families; f && *f; f++)
            if (tg_has_prefix_ci(model, *f))
                return r;
    return NULL;
}

const char *tg_router_family(const char *model)
{
    const tg_provider_rec_t *r = family_record(model);
    return r ? r->name : NULL;
}

/* The configured provider for a family: the one with the well-known name,
 * else, where the record says a type is one service's own API (Anthropic,
 * Gemini), the first of that type. */
static const tg_provider_cfg_t *family_provider(const tg_config_t *cfg, const char *model)
{
    const tg_provider_rec_t *r = family_record(model);
    if (!r)
        return NULL;
    const tg_provider_cfg_t *p = tg_config_provider(cfg, r->name, strlen(r->name));
    if (p)
        return p;
    if (r->families_any_name)
        for (size_t j = 0; j < cfg->n_providers; j++)
            if (cfg->providers[j].type == r->type)
                return &cfg->providers[j];
    return NULL;
}

static bool provider_lists(const tg_provider_cfg_t *p, const char *model)
{
    for (size_t i = 0; i < p->n_models; i++)
        if (fnmatch(p->models[i], model, 0) == 0)
            return true;
    return false;
}

/* Can p serve `model` as named, as far as we can tell? */
static bool provider_serves(const tg_config_t *cfg, const tg_provider_cfg_t *p, const char *model)
{
    if (p->n_models)
        return provider_lists(p, model);
    const char *fam = tg_router_family(model);
    if (!fam)
        return true; /* unknown family: let the provider decide */
    return family_provider(cfg, model) == p;
}

static bool rule_matches(const tg_rule_t *r, const char *model, tg_header_fn get, void *hctx)
{
    char name[300];
    const char *v;
    switch (r->kind) {
    case TG_COND_TASK:
        v = get ? get(hctx, "Helicone-Property-Task") : NULL;
        return v && !strcmp(v, r->value);
    case TG_COND_MODEL: return model && fnmatch(r->value, model, 0) == 0;
    case TG_COND_HEADER: v = get ? get(hctx, r->key) : NULL; return v && !strcmp(v, r->value);
    case TG_COND_PROPERTY:
        snprintf(name, sizeof name, "Helicone-Property-%s", r->key);
        v = get ? get(hctx, name) : NULL;
        return v && !strcmp(v, r->value);
    case TG_COND_DEFAULT: return false; /* applied at the default-provider step */
    }
    return false;
}

static void set_route(tg_route_t *out, const tg_provider_cfg_t *p, const char *model, size_t len,
                      const char *how)
{
    out->provider = p;
    out->model = tg_xstrndup(model, len);
    out->how = how;
}

void tg_router_explain(const tg_config_t *cfg, const char *model, char *err, size_t errlen)
{
    tg_buf_t names = {0};
    for (size_t i = 0; i < cfg->n_providers; i++) {
        if (i)
            tg_buf_puts(&names, ", ");
        tg_buf_puts(&names, cfg->providers[i].name);
    }
    if (model && *model)
        snprintf(err, errlen,
                 "no provider serves model '%s'; configured providers: %s (use "
                 "'<provider>/<model>' to choose one)",
                 model, names.data ? names.data : "none");
    else
        snprintf(err, errlen,
                 "the request names no model and no default provider is set; configured "
                 "providers: %s",
                 names.data ? names.data : "none");
    tg_buf_free(&names);
}

static const tg_provider_cfg_t *default_provider(const tg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_rules; i++)
        if (cfg->rules[i].kind == TG_COND_DEFAULT)
            return tg_config_provider(cfg, cfg->rules[i].provider, strlen(cfg->rules[i].provider));
    if (cfg->default_provider)
        return tg_config_provider(cfg, cfg->default_provider, strlen(cfg->default_provider));
    return NULL;
}

static int resolve(const tg_config_t *cfg, tg_health_registry_t *health, const char *model,
                   tg_header_fn get, void *hctx, tg_route_t *out, int depth)
{
    /* 1. provider/model */
    const char *slash = strchr(model, '/');
    if (slash && slash > model && slash[1]) {
        const tg_provider_cfg_t *p = tg_config_provider(cfg, model, (size_t)(slash - model));
        if (p) {
            set_route(out, p, slash + 1, strlen(slash + 1), "prefix");
            return 0;
        }
    }
    /* 1b. model/provider (Helicone's AI gateway) */
    const char *last = strrchr(model, '/');
    if (last && last > model && last[1]) {
        const tg_provider_cfg_t *p = tg_config_provider(cfg, last + 1, strlen(last + 1));
        if (p) {
            set_route(out, p, model, (size_t)(last - model), "suffix");
            return 0;
        }
    }
    /* rules, first match wins */
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const tg_rule_t *r = &cfg->rules[i];
        if (!rule_matches(r, model, get, hctx))
            continue;
        const tg_provider_cfg_t *p = tg_config_provider(cfg, r->provider, strlen(r->provider));
        if (!p)
            continue;
        /* The rule picks the provider; a model it cannot serve becomes its default model. */
        const char *m = model;
        if (p->default_model && !provider_serves(cfg, p, model))
            m = p->default_model;
        set_route(out, p, m, strlen(m), "rule");
        return 0;
    }
    /* 2. aliases, then models lists */
    for (size_t i = 0; i < cfg->n_model_aliases && depth < 4; i++)
        if (!strcmp(cfg->model_aliases[i].name, model)) {
            int rc = resolve(cfg, health, cfg->model_aliases[i].value, get, hctx, out, depth + 1);
            if (rc == 0)
                out->how = "alias";
            return rc;
        }
    /* Several providers may list the model: load_balancing.strategy picks. */
    const tg_provider_cfg_t *cands[64];
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_providers && n < 64; i++)
        if (provider_lists(&cfg->providers[i], model))
            cands[n++] = &cfg->providers[i];
    if (n) {
        /* `cost`: what the model each candidate would be sent (here the same
         * name for all) costs at that provider (cost.c: configured prices,
         * `<provider>/<model>` keys first, then the built-in table). */
        int64_t prices[64];
        bool priced = cfg->lb_strategy == TG_LB_COST && n > 1;
        for (size_t i = 0; priced && i < n; i++)
            prices[i] = tg_cost_rank_price(cfg, cands[i]->name, model);
        size_t k = tg_balance_pick(health, cfg->lb_strategy, cands, priced ? prices : NULL, n,
                                   tg_random_u64(), tg_mono_ms());
        set_route(out, cands[k], model, strlen(model), n > 1 ? "balanced" : "models");
        return 0;
    }
    /* 3. families */
    const tg_provider_cfg_t *p = family_provider(cfg, model);
    if (p) {
        set_route(out, p, model, strlen(model), "family");
        return 0;
    }
    /* 4. default */
    p = default_provider(cfg);
    if (p) {
        set_route(out, p, model, strlen(model), "default");
        return 0;
    }
    return -1;
}

int tg_router_resolve(const tg_config_t *cfg, tg_health_registry_t *health, const char *model,
                      tg_header_fn get_header, void *hctx, tg_route_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!model || !*model) {
        const tg_provider_cfg_t *p = default_provider(cfg);
        if (p && p->default_model) {
            set_route(out, p, p->default_model, strlen(p->default_model), "default");
            return 0;
        }
        tg_router_explain(cfg, model, err, errlen);
        return -2;
    }
    if (resolve(cfg, health, model, get_header, hctx, out, 0) == 0)
        return 0;
    tg_router_explain(cfg, model, err, errlen);
    return -1;
}

/* Does an entry with a '/' name a configured provider at either end? */
static bool names_provider(const tg_config_t *cfg, const char *e)
{
    const char *first = strchr(e, '/'), *last = strrchr(e, '/');
    return (first > e && tg_config_provider(cfg, e, (size_t)(first - e))) ||
           (last[1] && tg_config_provider(cfg, last + 1, strlen(last + 1)));
}

int tg_router_resolve_list(const tg_config_t *cfg, tg_health_registry_t *health, const char *model,
                           tg_header_fn get_header, void *hctx, tg_route_t *out, size_t max,
                           size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (!model || !strchr(model, ',')) {
        int rc = tg_router_resolve(cfg, health, model, get_header, hctx, out, err, errlen);
        *n = rc == 0;
        return rc;
    }
    size_t count = 1;
    for (const char *c = model; *c; c++)
        count += *c == ',';
    if (count > max) {
        snprintf(err, errlen, "the model list has %zu entries; at most %zu are allowed", count,
                 max);
        return -3;
    }
    const char *s = model;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        char entry[256];
        int rc = -3;
        if (!len)
            snprintf(err, errlen, "entry %zu of the model list is empty", i + 1);
        else if (len >= sizeof entry)
            snprintf(err, errlen, "entry %zu of the model list is longer than %zu bytes", i + 1,
                     sizeof entry - 1);
        else {
            memcpy(entry, s, len);
            entry[len] = 0;
            rc = -1;
            if (strchr(entry, '/') && !names_provider(cfg, entry))
                snprintf(err, errlen,
                         "entry %zu of the model list, '%s', names no configured provider "
                         "(write model/provider or provider/model)",
                         i + 1, entry);
            else if (tg_router_resolve(cfg, health, entry, get_header, hctx, &out[i], err,
                                       errlen) == 0)
                rc = 0;
        }
        if (rc < 0) {
            for (size_t k = 0; k < i; k++)
                tg_route_clear(&out[k]);
            return rc;
        }
        s = end ? end + 1 : s + len;
    }
    *n = count;
    return 0;
}

void tg_route_clear(tg_route_t *r)
{
    free(r->model);
    memset(r, 0, sizeof *r);
}
