/*
 * config_shapes.c — the readers of the shapes a key table cannot describe:
 * the map of providers (name checks, the inferred type, the effective base
 * URL), extra headers, routing rules and the fallback chain, model aliases,
 * the named rate limits, pricing entries, budget alerts, gateway keys, webhooks and
 * observability alerts. Each is a TG_CONF_CUSTOM
 * row in a module's table (config/config_keys.h); the keys inside each entry are read with the
 * row's `sub` table where they fit one.
 *
 * Runs on the thread that loads the config (main: start-up, SIGHUP).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

/* ---- providers ---- */

typedef struct {
    tg_provider_cfg_t *p;
    bool type_given;
} provider_ctx_t;

void tg_config_read_provider_type(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                  void *base)
{
    /* The type names are their records' (providers/registry.c). */
    const char *types[TG_PROVIDER_TYPES + 1];
    for (int i = 0; i < TG_PROVIDER_TYPES; i++)
        types[i] = tg_provider_type_name((tg_provider_type_t)i);
    types[TG_PROVIDER_TYPES] = NULL;
    provider_ctx_t *pc = e->ctx;
    int t;
    if (tg_config_get_enum(L, e->v, types, &t)) {
        pc->p->type = (tg_provider_type_t)t;
        pc->type_given = true;
    }
}

/* Where a map of headers goes: a provider's, the OTLP exporter's. */
typedef struct {
    tg_kv_t **kv;
    size_t *n;
} headers_ctx_t;

static bool header_key(loader_t *L, const entry_t *e)
{
    headers_ctx_t *h = e->ctx;
    if (!tg_config_is_token(e->key)) {
        tg_config_fail(L, tg_config_line_of(e->k), "not a valid HTTP header name");
        return true;
    }
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection", NULL};
    for (size_t i = 0; reserved[i]; i++) {
        if (!strcasecmp(e->key, reserved[i])) {
            tg_config_fail(L, tg_config_line_of(e->k), "this header is set by the gateway");
            return true;
        }
    }
    char *val = tg_config_value_text(L, e->v, "a string");
    if (!val)
        return true; /* empty (unset ${VAR}): the header is not sent */
    if (strpbrk(val, "\r\n")) {
        tg_config_fail(L, tg_config_line_of(e->v), "a header value must not contain a line break");
        free(val);
        return true;
    }
    tg_kv_t *kv = TG_PUSH(*h->kv, *h->n);
    kv->name = tg_config_strdup(e->key);
    kv->value = val;
    return true;
}

void tg_config_read_headers(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_provider_cfg_t *p = base;
    tg_config_walk_map(L, e->v, header_key, &(headers_ctx_t){&p->headers, &p->n_headers});
}

void tg_config_read_otlp_headers(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                 void *base)
{
    tg_config_t *c = base;
    tg_config_walk_map(L, e->v, header_key, &(headers_ctx_t){&c->otlp_headers, &c->n_otlp_headers});
}

/*
 * The effective base URL: scheme checked, trailing '/' removed, and for a
 * bare origin (no path) `prefix` appended. NULL after an error.
 */
static char *normalize_base_url(loader_t *L, const char *raw, int line, const char *prefix)
{
    const char *scheme_end = NULL;
    if (tg_config_has_prefix_ci(raw, "http://"))
        scheme_end = raw + 7;
    else if (tg_config_has_prefix_ci(raw, "https://"))
        scheme_end = raw + 8;
    if (!scheme_end) {
        tg_config_fail_sub(L, "base_url", line, "must start with http:// or https://");
        return NULL;
    }
    if (!*scheme_end || *scheme_end == '/') {
        tg_config_fail_sub(L, "base_url", line, "has no host");
        return NULL;
    }
    for (const char *p = raw; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '?' || *p == '#') {
            tg_config_fail_sub(L, "base_url", line,
                               "must be a plain URL (no blanks, query string or fragment)");
            return NULL;
        }
    }
    size_t n = strlen(raw);
    while (n > (size_t)(scheme_end - raw) && raw[n - 1] == '/')
        n--;
    bool bare_origin = !memchr(scheme_end, '/', n - (size_t)(scheme_end - raw));
    char *out;
    if (asprintf(&out, "%.*s%s", (int)n, raw, bare_origin ? prefix : "") < 0)
        abort();
    return out;
}

/*
 * Settles type and base_url once the provider's keys have been read; the
 * table left base_url as written.
 */
static void provider_finish(loader_t *L, provider_ctx_t *pc, int line)
{
    tg_provider_cfg_t *p = pc->p;
    char *raw = p->base_url;
    int raw_line = tg_config_seen_line(L, "base_url");
    p->base_url = NULL;
    /* The records as the loader sees them (tg_provider_conf_kinds). */
    tg_config_provider_kind_t wkv, tr;
    const tg_config_provider_kind_t *wk = tg_provider_conf_kinds.named(p->name, &wkv) ? &wkv : NULL;
    if (!pc->type_given) {
        /* A user's own "mock" with a base_url is an OpenAI-compatible endpoint;
         * a name that is not well known is OpenAI-compatible too. */
        if (wk && !(wk->local && raw))
            p->type = wk->type;
        else
            p->type = TG_PROVIDER_OPENAI;
    }
    /* The name's own defaults hold unless `type:` says something else. A
     * type's own record is at its value. */
    bool name_rules = wk && wk->type == p->type;
    if (!tg_provider_conf_kinds.at(p->type, &tr))
        abort();
    if (tr.local) {
        if (raw)
            tg_config_fail_sub(L, "base_url", raw_line,
                               "a %s provider answers locally and takes no base_url", tr.name);
    } else if (raw) {
        p->base_url =
            normalize_base_url(L, raw, raw_line, name_rules ? wk->path_prefix : tr.path_prefix);
        p->explicit_base_url = true;
    } else if (name_rules && wk->default_base_url) {
        p->base_url = tg_config_strdup(wk->default_base_url);
    } else if (tr.base_url_hint) {
        tg_config_fail_sub(L, "base_url", line, "required for an %s provider (%s)", tr.name,
                           tr.base_url_hint);
    } else if (wk) {
        tg_config_fail_sub(L, "base_url", line,
                           "required when type differs from the usual type of %s", wk->name);
    } else {
        tg_config_fail_sub(L, "base_url", line, "required for a provider that is not well known");
    }
    free(raw);
}

static bool provider_entry(loader_t *L, const entry_t *e)
{
    const tg_conf_key_t *table = e->ctx;
    tg_config_t *c = L->cfg;
    const char *name = e->key;
    /* The name appears in URLs (/NAME/path) and model prefixes (NAME/model). */
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
            strlen(name) ||
        !strcmp(name, ".") || !strcmp(name, "..")) {
        tg_config_fail(L, tg_config_line_of(e->k),
                       "a provider name may contain only letters, digits, '-', '_', '.'");
        return true;
    }
    static const char *const reserved[] = {"v1",      "v1beta",      "api", "health",
                                           "metrics", "passthrough", NULL};
    for (size_t i = 0; reserved[i]; i++) {
        if (!strcasecmp(name, reserved[i])) {
            tg_config_fail(L, tg_config_line_of(e->k),
                           "\"%s\" is reserved for the gateway's own routes", name);
            return true;
        }
    }
    if (tg_config_provider(c, name, strlen(name))) {
        tg_config_fail(L, tg_config_line_of(e->k),
                       "duplicate provider (names are case-insensitive)");
        return true;
    }
    provider_ctx_t pc = {tg_config_add_provider(c, name), false};
    pc.p->line = tg_config_line_of(e->k);
    tg_config_read_table(L, e->v, table, pc.p, &pc);
    provider_finish(L, &pc, tg_config_line_of(e->k));
    return true;
}

void tg_config_read_providers(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_map(L, e->v, provider_entry, tg_conf_table_ctx(key->sub));
}

/* ---- routing ---- */

typedef struct {
    tg_rule_kind_t kind;
    bool has_kind;
    char *subject; /* the model glob, or the header or property name */
    char *equals;
    int equals_line;
} cond_ctx_t;

static bool cond_key(loader_t *L, const entry_t *e)
{
    cond_ctx_t *cc = e->ctx;
    tg_rule_kind_t kind;
    if (!strcmp(e->key, "equals")) {
        tg_config_get_string(L, e->v, &cc->equals);
        cc->equals_line = tg_config_line_of(e->k);
        return true;
    }
    if (!strcmp(e->key, "model"))
        kind = TG_COND_MODEL;
    else if (!strcmp(e->key, "header"))
        kind = TG_COND_HEADER;
    else if (!strcmp(e->key, "property"))
        kind = TG_COND_PROPERTY;
    else
        return false;
    if (cc->has_kind) {
        tg_config_fail(L, tg_config_line_of(e->k),
                       "a condition has only one of model, header or property");
        return true;
    }
    cc->has_kind = true;
    cc->kind = kind;
    size_t n_errs = L->errs->n;
    tg_config_get_string(L, e->v, &cc->subject);
    if (!cc->subject && L->errs->n == n_errs)
        tg_config_fail(L, tg_config_line_of(e->v), "must not be empty");
    else if (cc->subject && kind != TG_COND_MODEL && !tg_config_is_token(cc->subject))
        tg_config_fail(L, tg_config_line_of(e->v), "not a valid %s name", e->key);
    return true;
}

/* Reads a condition mapping into r; errors are reported at the current path. */
static void read_condition_map(loader_t *L, yaml_node_t *v, tg_rule_t *r)
{
    cond_ctx_t cc = {0};
    tg_config_walk_map(L, v, cond_key, &cc);
    if (!cc.has_kind) {
        tg_config_fail(L, tg_config_line_of(v), "expected one of model, header or property");
    } else if (cc.kind == TG_COND_MODEL && cc.equals) {
        tg_config_fail_sub(L, "equals", cc.equals_line, "not used with model");
    } else if (cc.kind != TG_COND_MODEL && !cc.equals) {
        tg_config_fail_sub(L, "equals", tg_config_line_of(v), "required with %s",
                           cc.kind == TG_COND_HEADER ? "header" : "property");
    } else {
        r->kind = cc.kind;
        if (cc.kind == TG_COND_MODEL) {
            r->value = cc.subject;
        } else {
            r->key = cc.subject;
            r->value = cc.equals;
        }
        return;
    }
    free(cc.subject);
    free(cc.equals);
}

typedef struct {
    yaml_node_t *condition, *default_node;
    bool has_default;
    char *provider;
} rule_ctx_t;

static bool rule_key(loader_t *L, const entry_t *e)
{
    rule_ctx_t *rc = e->ctx;
    if (!strcmp(e->key, "condition"))
        rc->condition = e->v;
    else if (!strcmp(e->key, "default")) {
        rc->has_default = true;
        rc->default_node = e->v;
    } else if (!strcmp(e->key, "provider"))
        tg_config_get_string(L, e->v, &rc->provider);
    else
        return false;
    return true;
}

static void rule_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (tg_config_is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "expected a mapping with condition (or default) and provider");
        return;
    }
    rule_ctx_t rc = {0};
    tg_rule_t r = {.kind = TG_COND_DEFAULT, .line = tg_config_line_of(e->v)};
    size_t n_errs = L->errs->n;
    tg_config_walk_map(L, e->v, rule_key, &rc);
    if (rc.has_default && rc.condition) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "a rule has either condition or default, not both");
    } else if (rc.has_default) {
        /* `- default: NAME` names the provider; `- default:` + `provider:` too. */
        char *p = NULL;
        size_t mark = tg_config_path_push(L, "default", false);
        tg_config_get_string(L, rc.default_node, &p);
        if (p && rc.provider)
            tg_config_fail(L, tg_config_line_of(rc.default_node),
                           "give the provider once: here or in provider");
        if (L->seen_default_rule)
            tg_config_fail(L, tg_config_line_of(e->v), "only one default rule is allowed");
        tg_config_path_pop(L, mark);
        if (p && !rc.provider)
            rc.provider = p;
        else
            free(p);
        L->seen_default_rule = true;
    } else if (!rc.condition) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "a rule needs a condition (or default) and a provider");
    } else {
        size_t mark = tg_config_path_push(L, "condition", false);
        if (rc.condition->type == YAML_MAPPING_NODE) {
            read_condition_map(L, rc.condition, &r);
        } else if (rc.condition->type == YAML_SCALAR_NODE && !tg_config_is_null(rc.condition)) {
            size_t n_before = L->errs->n;
            tg_config_get_string(L, rc.condition, &r.value);
            r.kind = TG_COND_TASK;
            if (!r.value && L->errs->n == n_before)
                tg_config_fail(L, tg_config_line_of(rc.condition), "must not be empty");
        } else {
            tg_config_fail(L, tg_config_line_of(rc.condition),
                           "expected a task name or a mapping (model, header or property)");
        }
        tg_config_path_pop(L, mark);
        if (L->seen_default_rule)
            tg_config_fail(L, tg_config_line_of(e->v),
                           "comes after the default rule and would never match");
    }
    if ((rc.condition || rc.has_default) && !rc.provider && L->errs->n == n_errs)
        tg_config_fail_sub(L, "provider", tg_config_line_of(e->v), "required");
    if (L->errs->n != n_errs) {
        free(r.key);
        free(r.value);
        free(rc.provider);
        return;
    }
    r.provider = rc.provider;
    *TG_PUSH(c->rules, c->n_rules) = r;
}

void tg_config_read_rules(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, rule_item, NULL);
}

/* A provider name; empty ones (unset ${VAR}) are skipped. Lines are kept
 * for the check that each names a configured provider. */
static void fallback_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    char *s = tg_config_value_text(L, e->v, "a string");
    if (!s)
        return;
    size_t n_lines = c->n_fallback_chain;
    *TG_PUSH(c->fallback_chain, c->n_fallback_chain) = s;
    *TG_PUSH(L->fallback_lines, n_lines) = tg_config_line_of(e->v);
}

void tg_config_read_fallback_chain(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                   void *base)
{
    tg_config_walk_list(L, e->v, fallback_item, NULL);
}

static bool alias_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    char *target = tg_config_value_text(L, e->v, "a model name");
    if (!target)
        return true;
    tg_kv_t *kv = TG_PUSH(c->model_aliases, c->n_model_aliases);
    kv->name = tg_config_strdup(e->key);
    kv->value = target;
    return true;
}

void tg_config_read_aliases(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_map(L, e->v, alias_key, NULL);
}

/* ---- rate limits ---- */

/* Where named_limit_key puts a pair: the provider map (names checked
 * after the walk, so their lines are kept) or the property map. */
typedef struct {
    const tg_conf_key_t *pair;
    bool providers;
} named_limits_t;

static bool named_limit_key(loader_t *L, const entry_t *e)
{
    const named_limits_t *nl = e->ctx;
    tg_config_t *c = L->cfg;
    tg_named_rate_t *r;
    if (nl->providers) {
        size_t n_lines = c->n_rl_providers;
        r = TG_PUSH(c->rl_providers, c->n_rl_providers);
        *TG_PUSH(L->rl_provider_lines, n_lines) = tg_config_line_of(e->k);
    } else if (!tg_config_is_token(e->key)) {
        tg_config_fail(L, tg_config_line_of(e->k), "not a valid property name");
        return true;
    } else {
        r = TG_PUSH(c->rl_per_property, c->n_rl_per_property);
    }
    r->name = tg_config_strdup(e->key);
    tg_config_read_table(L, e->v, nl->pair, &r->limit, NULL);
    return true;
}

void tg_config_read_provider_limits(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                    void *base)
{
    tg_config_walk_map(L, e->v, named_limit_key, &(named_limits_t){key->sub, true});
}

void tg_config_read_property_limits(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                    void *base)
{
    tg_config_walk_map(L, e->v, named_limit_key, &(named_limits_t){key->sub, false});
}

/* ---- cost tracking ---- */

static bool pricing_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    tg_price_cfg_t pr = {NULL, -1, -1, -1, -1};
    size_t n_errs = L->errs->n;
    tg_config_read_table(L, e->v, e->ctx, &pr, NULL);
    if (pr.input < 0)
        tg_config_fail_sub(L, "input", tg_config_line_of(e->k), "required");
    if (pr.output < 0)
        tg_config_fail_sub(L, "output", tg_config_line_of(e->k), "required");
    if (L->errs->n != n_errs)
        return true;
    pr.model = tg_config_strdup(e->key);
    *TG_PUSH(c->pricing, c->n_pricing) = pr;
    return true;
}

void tg_config_read_pricing(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_map(L, e->v, pricing_key, tg_conf_table_ctx(key->sub));
}

static bool budget_property_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!tg_config_is_token(e->key) || strlen(e->key) > 64) {
        tg_config_fail(L, tg_config_line_of(e->k), "not a valid property name");
        return true;
    }
    tg_named_budget_t nb = {NULL, {-1, -1, TG_BUDGET_BLOCK, 0.8}};
    tg_config_read_table(L, e->v, e->ctx, &nb.b, NULL);
    nb.name = tg_config_strdup(e->key);
    *TG_PUSH(c->budget_per_property, c->n_budget_per_property) = nb;
    return true;
}

void tg_config_read_budget_properties(loader_t *L, const tg_conf_key_t *key, const entry_t *e,
                                      void *base)
{
    tg_config_walk_map(L, e->v, budget_property_key, tg_conf_table_ctx(key->sub));
}

void tg_config_read_threshold(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_alert_cfg_t *a = base;
    char *s = tg_config_value_text(L, e->v, "a threshold such as 80% or 0.8");
    if (s && tg_config_parse_threshold(s, &a->threshold) < 0)
        tg_config_fail(L, tg_config_line_of(e->v), "expected a threshold such as 80%% or 0.8");
    free(s);
}

static void alert_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    tg_alert_cfg_t a = {-1, NULL};
    size_t n_errs = L->errs->n;
    if (tg_config_is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(e->v), "expected a mapping with threshold and action");
        return;
    }
    tg_config_read_table(L, e->v, e->ctx, &a, NULL);
    if (a.threshold < 0 && L->errs->n == n_errs)
        tg_config_fail_sub(L, "threshold", tg_config_line_of(e->v), "required");
    if (L->errs->n != n_errs) {
        free(a.action);
        return;
    }
    if (!a.action)
        a.action = tg_config_strdup("notification");
    *TG_PUSH(c->alerts, c->n_alerts) = a;
}

void tg_config_read_alerts(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, alert_item, tg_conf_table_ctx(key->sub));
}

/* ---- security ---- */

static void permission_item(loader_t *L, const entry_t *e)
{
    static const char *const perms[] = {"read", "write", NULL};
    tg_api_key_cfg_t *ak = e->ctx;
    int p;
    if (tg_config_get_enum(L, e->v, perms, &p)) {
        if (p == 0)
            ak->perm_read = true;
        else
            ak->perm_write = true;
    }
}

void tg_config_read_permissions(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, permission_item, base);
}

static void api_key_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (tg_config_is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "expected a mapping with name, key and permissions");
        return;
    }
    tg_api_key_cfg_t ak = {0};
    size_t n_errs = L->errs->n;
    tg_config_read_table(L, e->v, e->ctx, &ak, NULL);
    if (!ak.name) {
        tg_config_fail_sub(L, "name", tg_config_line_of(e->v), "required");
    } else {
        for (size_t j = 0; j < L->n_key_names; j++) {
            if (!strcmp(L->key_names[j], ak.name)) {
                tg_config_fail_sub(L, "name", tg_config_line_of(e->v), "duplicate key name \"%s\"",
                                   ak.name);
                break;
            }
        }
        *TG_PUSH(L->key_names, L->n_key_names) = tg_config_strdup(ak.name);
    }
    for (size_t j = 0; ak.key && j < c->n_api_keys; j++) {
        if (!strcmp(c->api_keys[j].key, ak.key)) {
            tg_config_fail_sub(L, "key", tg_config_line_of(e->v), "same key as \"%s\"",
                               c->api_keys[j].name);
            break;
        }
    }
    /* No key (an unset ${VAR}): the entry is skipped, so that one file can
     * serve environments that define only some of the keys. */
    if (L->errs->n != n_errs || !ak.key) {
        free(ak.name);
        free(ak.key);
        return;
    }
    *TG_PUSH(c->api_keys, c->n_api_keys) = ak;
}

void tg_config_read_api_keys(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, api_key_item, tg_conf_table_ctx(key->sub));
}

/* ---- webhooks ---- */

static void event_name_item(loader_t *L, const entry_t *e)
{
    tg_webhook_cfg_t *w = e->ctx;
    char *s = tg_config_value_text(L, e->v, "an event name");
    if (!s)
        return;
    size_t i = 0;
    while (tg_event_type_names[i] && strcmp(tg_event_type_names[i], s))
        i++;
    if (tg_event_type_names[i])
        w->events |= 1u << i;
    else
        tg_config_fail(L, tg_config_line_of(e->v),
                       "unknown event \"%s\" (expected budget.warning, budget.exceeded, "
                       "alert.fired, alert.resolved or request.completed)",
                       s);
    free(s);
}

void tg_config_read_event_names(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_webhook_cfg_t *w = base;
    size_t n_errs = L->errs->n;
    w->events = 0;
    tg_config_walk_list(L, e->v, event_name_item, w);
    if (!w->events && L->errs->n == n_errs)
        tg_config_fail(L, tg_config_line_of(e->v), "expected a list of at least one event");
}

static void webhook_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (tg_config_is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "expected a mapping with url, events and secret");
        return;
    }
    tg_webhook_cfg_t w = {.events = TG_EVENT_MASK_DEFAULT, .line = tg_config_line_of(e->v)};
    size_t n_errs = L->errs->n;
    tg_config_read_table(L, e->v, e->ctx, &w, NULL);
    const char *host = w.url ? strstr(w.url, "://") + 3 : NULL;
    if (!w.url && L->errs->n == n_errs)
        tg_config_fail_sub(L, "url", w.line, "required");
    else if (host && (*host == '/' || *host == '?' || *host == '#' || *host == ':'))
        tg_config_fail_sub(L, "url", w.line, "expected a host after the scheme");
    for (size_t j = 0; w.url && j < c->n_webhooks; j++) {
        if (!strcmp(c->webhooks[j].url, w.url)) {
            tg_config_fail_sub(L, "url", w.line,
                               "same URL as the entry on line %d (list its "
                               "events in one entry)",
                               c->webhooks[j].line);
            break;
        }
    }
    if (L->errs->n != n_errs) {
        tg_config_free_slots(tg_webhook_conf_keys, &w);
        return;
    }
    *TG_PUSH(c->webhooks, c->n_webhooks) = w;
}

void tg_config_read_webhooks(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, webhook_item, tg_conf_table_ctx(key->sub));
}

/* ---- observability.alerts ---- */

/* `above` or `below` of a rule watching `m`, into the metric's unit:
 * rates 5% or 0.05, request_rate per second (100, 100/s, 6000/m, /h),
 * latency a duration (5s, 500ms; bare = seconds), cost USD (5.00, $5,
 * 5 USD). Returns 0 or -1. */
static int alert_value(tg_alert_metric_t m, const char *s, double *out)
{
    char num[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n + 1);
    switch (m) {
    case TG_ALERT_ERROR_RATE:
    case TG_ALERT_CACHE_HIT_RATE:
        return tg_config_parse_threshold(num, out) < 0 || *out > 1 ? -1 : 0;
    case TG_ALERT_REQUEST_RATE: {
        double per = 1;
        char *slash = strchr(num, '/');
        if (slash) {
            const char *u = slash + 1;
            per = !strcmp(u, "s")                        ? 1
                  : !strcmp(u, "m") || !strcmp(u, "min") ? 60
                  : !strcmp(u, "h")                      ? 3600
                                                         : 0;
            *slash = '\0';
            if (!per)
                return -1;
        }
        if (tg_config_parse_number(num, out) < 0 || *out < 0)
            return -1;
        *out /= per;
        return 0;
    }
    case TG_ALERT_LATENCY_AVG: {
        int64_t ms;
        if (tg_config_parse_duration(num, &ms) < 0 || ms < 0)
            return -1;
        *out = (double)ms / 1000.0;
        return 0;
    }
    case TG_ALERT_COST: {
        char *p = num[0] == '$' ? num + 1 : num;
        size_t len = strlen(p);
        if (len > 3 && !strcasecmp(p + len - 3, "USD")) {
            p[len - 3] = '\0';
            while (len > 3 && p[len - 4] == ' ')
                p[--len - 3] = '\0';
        }
        return tg_config_parse_number(p, out) < 0 || *out < 0 ? -1 : 0;
    }
    }
    return -1;
}

static const char *const alert_value_forms[] = {
    [TG_ALERT_ERROR_RATE] = "a share such as 5% or 0.05",
    [TG_ALERT_REQUEST_RATE] = "requests per second such as 100, or 6000/m",
    [TG_ALERT_CACHE_HIT_RATE] = "a share such as 20% or 0.2",
    [TG_ALERT_LATENCY_AVG] = "a duration such as 5s or 500ms",
    [TG_ALERT_COST] = "USD such as 5.00",
};

static void obs_alert_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (tg_config_is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "expected a mapping with metric, above or below, and window");
        return;
    }
    tg_obs_alert_entry_t r = {.a = {.metric = (tg_alert_metric_t)-1, .window_ms = 300000}};
    int line = tg_config_line_of(e->v);
    size_t n_errs = L->errs->n;
    tg_config_read_table(L, e->v, e->ctx, &r, NULL);
    if ((int)r.a.metric < 0 && L->errs->n == n_errs)
        tg_config_fail_sub(L, "metric", line, "required");
    if (!r.above == !r.below && L->errs->n == n_errs)
        tg_config_fail_sub(L, r.above ? "below" : "above", line,
                           r.above ? "give above or below, not both" : "required (or below)");
    const char *v = r.above ? r.above : r.below;
    if (L->errs->n == n_errs && alert_value(r.a.metric, v, &r.a.threshold) < 0)
        tg_config_fail_sub(L, r.above ? "above" : "below",
                           tg_config_seen_line(L, r.above ? "above" : "below"), "expected %s",
                           alert_value_forms[r.a.metric]);
    r.a.below = r.below != NULL;
    if (L->errs->n == n_errs && !r.a.name) {
        char name[160];
        int64_t w = r.a.window_ms;
        const char *unit = w % 3600000 == 0 ? "h" : w % 60000 == 0 ? "m" : "s";
        int64_t div = *unit == 'h' ? 3600000 : *unit == 'm' ? 60000 : 1000;
        snprintf(name, sizeof name, "%s %s %s over %lld%s", tg_alert_metric_names[r.a.metric],
                 r.a.below ? "below" : "above", v, (long long)(w / div), unit);
        r.a.name = tg_config_strdup(name);
    }
    free(r.above);
    free(r.below);
    for (size_t j = 0; r.a.name && j < c->n_obs_alerts && L->errs->n == n_errs; j++)
        if (!strcmp(c->obs_alerts[j].name, r.a.name))
            tg_config_fail_sub(L, "name", line, "two alerts named \"%s\"", r.a.name);
    if (L->errs->n != n_errs) {
        free(r.a.name);
        return;
    }
    *TG_PUSH(c->obs_alerts, c->n_obs_alerts) = r.a;
}

void tg_config_read_obs_alerts(loader_t *L, const tg_conf_key_t *key, const entry_t *e, void *base)
{
    tg_config_walk_list(L, e->v, obs_alert_item, tg_conf_table_ctx(key->sub));
}
