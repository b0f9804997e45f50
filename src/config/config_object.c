/*
 * config_object.c — the config object's lifecycle: the defaults (from the
 * key tables, plus the few that depend on the machine or on other
 * settings), the providers the records imply (read through
 * tg_provider_conf_kinds, config_keys.h),
 * freeing, the reference count, and tg_config_defaults() for a start
 * without a file.
 *
 * Objects are built on the thread that loads them (main); acquire, release
 * and the look-ups run on any thread (atomic reference count, immutable
 * object).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <strings.h>
#include <unistd.h>

/* ---- provider types ---- */

/* The names, default URLs and key variables of the types and the
 * well-known providers are their records (providers/registry.c), seen
 * through tg_provider_conf_kinds; a type's own record is at its value. */
const char *tg_provider_type_name(tg_provider_type_t t)
{
    tg_config_provider_kind_t k;
    return (unsigned)t < TG_PROVIDER_TYPES && tg_provider_conf_kinds.at(t, &k) ? k.name : "unknown";
}

/* ---- the object ---- */

static void free_kvs(tg_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_named_rates(tg_named_rate_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].name);
    free(r);
}

/* The table's slots (strings, lists) first; then what custom readers built. */
void tg_config_free(tg_config_t *c)
{
    tg_config_free_slots(tg_config_sections, c);
    for (size_t i = 0; i < c->n_providers; i++) {
        tg_provider_cfg_t *p = &c->providers[i];
        tg_config_free_slots(tg_provider_conf_keys, p);
        free(p->name);
        free_kvs(p->headers, p->n_headers);
    }
    free(c->providers);
    free_strings(c->fallback_chain, c->n_fallback_chain);
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].key);
        free(c->rules[i].value);
        free(c->rules[i].provider);
    }
    free(c->rules);
    free_kvs(c->model_aliases, c->n_model_aliases);
    free_kvs(c->otlp_headers, c->n_otlp_headers);
    free_named_rates(c->rl_providers, c->n_rl_providers);
    free_named_rates(c->rl_per_property, c->n_rl_per_property);
    for (size_t i = 0; i < c->n_pricing; i++)
        free(c->pricing[i].model);
    free(c->pricing);
    tg_cost_price_hooks.free(c->price_list);
    for (size_t i = 0; i < c->n_budget_per_property; i++)
        free(c->budget_per_property[i].name);
    free(c->budget_per_property);
    for (size_t i = 0; i < c->n_alerts; i++)
        free(c->alerts[i].action);
    free(c->alerts);
    for (size_t i = 0; i < c->n_obs_alerts; i++)
        free(c->obs_alerts[i].name);
    free(c->obs_alerts);
    for (size_t i = 0; i < c->n_webhooks; i++)
        tg_config_free_slots(tg_webhook_conf_keys, &c->webhooks[i]);
    free(c->webhooks);
    for (size_t i = 0; i < c->n_api_keys; i++) {
        free(c->api_keys[i].name);
        free(c->api_keys[i].key);
    }
    free(c->api_keys);
    free(c->source);
    free(c);
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

tg_config_t *tg_config_new(void)
{
    tg_config_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    tg_config_apply_defaults(tg_config_sections, c);
    /* Defaults a table row cannot write as YAML: the machine's, and "not set". */
    c->workers = online_cpus();
    c->budget_daily = -1;
    c->budget_monthly = -1;
    c->budget_per_user.daily = c->budget_per_user.monthly = -1;
    c->budget_per_key.daily = c->budget_per_key.monthly = -1;
    c->refs = 1;
    static uint64_t generations;
    c->generation = __atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
    return c;
}

tg_provider_cfg_t *tg_config_add_provider(tg_config_t *c, const char *name)
{
    tg_provider_cfg_t *p = TG_PUSH(c->providers, c->n_providers);
    p->name = tg_config_strdup(name);
    tg_config_apply_defaults(tg_provider_conf_keys, p);
    return p;
}

/* The built-in providers (the mock): those whose record answers locally. */
static void add_local_if_missing(tg_config_t *c)
{
    tg_config_provider_kind_t r;
    for (size_t k = 0; tg_provider_conf_kinds.at(k, &r); k++) {
        if (!r.local || tg_config_provider(c, r.name, strlen(r.name)))
            continue;
        tg_config_add_provider(c, r.name)->type = r.type;
    }
}

void tg_config_finish(tg_config_t *c)
{
    if (!c->dashboard_host)
        c->dashboard_host = tg_config_strdup(c->host);
    /* The API and the metrics show every stored prompt: without keys, only
     * this machine may read them unless the file names who else may. */
    if (!c->n_admin_allowed_ips) {
        *TG_PUSH(c->admin_allowed_ips, c->n_admin_allowed_ips) = tg_config_strdup("127.0.0.0/8");
        *TG_PUSH(c->admin_allowed_ips, c->n_admin_allowed_ips) = tg_config_strdup("::1");
    }
    add_local_if_missing(c);
    for (size_t i = 0; i < c->n_providers; i++) {
        tg_provider_cfg_t *p = &c->providers[i];
        p->rec = tg_provider_conf_kinds.find(p->name, p->type, p->base_url);
    }
}

tg_config_t *tg_config_defaults(void)
{
    tg_config_t *c = tg_config_new();
    /* No file: nobody chose to expose the gateway, so it serves this
     * machine only (README: how to open it). */
    free(c->host);
    c->host = tg_config_strdup("127.0.0.1");
    tg_config_provider_kind_t r;
    for (size_t i = 0; tg_provider_conf_kinds.at(i, &r); i++) {
        const char *key = r.key_env ? getenv(r.key_env) : NULL;
        if ((!key || !*key) && r.key_env_alt)
            key = getenv(r.key_env_alt);
        if (!key || !*key)
            continue;
        tg_provider_cfg_t *p = tg_config_add_provider(c, r.name);
        p->type = r.type;
        p->base_url = tg_config_strdup(r.default_base_url);
        p->api_key = tg_config_strdup(key);
    }
    tg_config_finish(c);
    return c;
}

tg_config_t *tg_config_acquire(tg_config_t *cfg)
{
    if (cfg)
        __atomic_fetch_add(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void tg_config_release(tg_config_t *cfg)
{
    /* acq_rel: the freeing thread must see every other holder's reads done. */
    if (cfg && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        tg_config_free(cfg);
}

const tg_provider_cfg_t *tg_config_provider(const tg_config_t *cfg, const char *name,
                                            size_t name_len)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const char *n = cfg->providers[i].name;
        if (strlen(n) == name_len && !strncasecmp(n, name, name_len))
            return &cfg->providers[i];
    }
    return NULL;
}

void tg_config_errors_free(tg_config_errors_t *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->items[i].path);
        free(errs->items[i].message);
    }
    free(errs->items);
    errs->items = NULL;
    errs->n = 0;
}
