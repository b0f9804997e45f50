/*
 * config.c — YAML → tg_config_t, and the config object's lifecycle.
 *
 * A load is one pass over a libyaml document: every key is matched against
 * the shape of docs/configuration.md, every scalar is ${VAR}-expanded then
 * converted, and every problem is appended to the caller's error list with
 * its dotted path and 1-based line (the walk never stops at the first one).
 * Names that refer to providers are checked once the whole file is read,
 * since sections may come in any order. Any error: the partial object is
 * freed and NULL returned. The process is never exited and nothing printed.
 *
 * Invariants of a returned object: it is never modified again; the built-in
 * "mock" provider is last (unless the file defines its own "mock"); every
 * provider but a mock one has a base_url without trailing '/'; `refs` is 1.
 * Loads run on the thread that asks (main: start-up, SIGHUP); acquire and
 * release run on any thread (atomic reference count).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* Guard against alias bombs: a config file has a few hundred nodes. */
#define MAX_VISITS 200000
/* Keys in one mapping (pricing tables are the largest: hundreds). */
#define MAX_KEYS 10000
/* Config files are small; anything bigger is a mistake. */
#define MAX_FILE_BYTES (16 * 1024 * 1024)

/* ---- small allocation helpers (out of memory aborts) ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

/* Grows `arr` (of n elements) by one zeroed element. */
static void *grow(void *arr, size_t n, size_t size)
{
    char *p = realloc(arr, (n + 1) * size);
    if (!p)
        abort();
    memset(p + n * size, 0, size);
    return p;
}

#define PUSH(arr, n) ((arr) = grow((arr), (n), sizeof *(arr)), &(arr)[(n)++])

/* ---- well-known providers ---- */

typedef struct {
    const char *name;
    tg_provider_type_t type;
    const char *base_url; /* NULL: must be configured */
    const char *prefix;   /* path added to a bare-origin base_url */
} known_provider_t;

static const known_provider_t known_providers[] = {
    {"openai", TG_PROVIDER_OPENAI, "https://api.openai.com/v1", "/v1"},
    {"anthropic", TG_PROVIDER_ANTHROPIC, "https://api.anthropic.com/v1", "/v1"},
    {"gemini", TG_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com/v1beta", "/v1beta"},
    {"google", TG_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com/v1beta", "/v1beta"},
    {"deepseek", TG_PROVIDER_OPENAI, "https://api.deepseek.com/v1", "/v1"},
    {"groq", TG_PROVIDER_OPENAI, "https://api.groq.com/openai/v1", "/openai/v1"},
    {"mistral", TG_PROVIDER_OPENAI, "https://api.mistral.ai/v1", "/v1"},
    {"xai", TG_PROVIDER_OPENAI, "https://api.x.ai/v1", "/v1"},
    {"openrouter", TG_PROVIDER_OPENAI, "https://openrouter.ai/api/v1", "/api/v1"},
    {"modelscope", TG_PROVIDER_OPENAI, "https://api-inference.modelscope.cn/v1", "/v1"},
    {"together", TG_PROVIDER_OPENAI, "https://api.together.xyz/v1", "/v1"},
    {"fireworks", TG_PROVIDER_OPENAI, "https://api.fireworks.ai/inference/v1", "/inference/v1"},
    {"ollama", TG_PROVIDER_OPENAI, "http://localhost:11434/v1", "/v1"},
    {"azure", TG_PROVIDER_AZURE, NULL, ""},
    {"mock", TG_PROVIDER_MOCK, NULL, ""},
};

static const known_provider_t *find_known(const char *name)
{
    for (size_t i = 0; i < sizeof known_providers / sizeof known_providers[0]; i++)
        if (!strcasecmp(known_providers[i].name, name))
            return &known_providers[i];
    return NULL;
}

/* Path prefix for a bare-origin base_url of a provider that is not well known. */
static const char *type_prefix(tg_provider_type_t t)
{
    switch (t) {
    case TG_PROVIDER_OPENAI:
    case TG_PROVIDER_ANTHROPIC: return "/v1";
    case TG_PROVIDER_GEMINI: return "/v1beta";
    default: return "";
    }
}

const char *tg_provider_type_name(tg_provider_type_t t)
{
    switch (t) {
    case TG_PROVIDER_OPENAI: return "openai";
    case TG_PROVIDER_ANTHROPIC: return "anthropic";
    case TG_PROVIDER_GEMINI: return "gemini";
    case TG_PROVIDER_AZURE: return "azure";
    case TG_PROVIDER_MOCK: return "mock";
    }
    return "unknown";
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

static void free_provider(tg_provider_cfg_t *p)
{
    free(p->name);
    free(p->base_url);
    free(p->api_key);
    free(p->default_model);
    free_strings(p->models, p->n_models);
    free_kvs(p->headers, p->n_headers);
}

/* Frees a complete or partly built object. */
static void config_free(tg_config_t *c)
{
    free(c->host);
    free(c->ssl_cert_file);
    free(c->ssl_key_file);
    for (size_t i = 0; i < c->n_providers; i++)
        free_provider(&c->providers[i]);
    free(c->providers);
    free(c->default_provider);
    free_strings(c->fallback_chain, c->n_fallback_chain);
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].key);
        free(c->rules[i].value);
        free(c->rules[i].provider);
    }
    free(c->rules);
    free_kvs(c->model_aliases, c->n_model_aliases);
    free(c->cache_backend);
    free_named_rates(c->rl_providers, c->n_rl_providers);
    free_named_rates(c->rl_per_property, c->n_rl_per_property);
    free(c->request_logging_level);
    free(c->dashboard_host);
    free(c->otlp_endpoint);
    for (size_t i = 0; i < c->n_pricing; i++)
        free(c->pricing[i].model);
    free(c->pricing);
    for (size_t i = 0; i < c->n_alerts; i++)
        free(c->alerts[i].action);
    free(c->alerts);
    free(c->webhook_url);
    for (size_t i = 0; i < c->n_api_keys; i++) {
        free(c->api_keys[i].name);
        free(c->api_keys[i].key);
    }
    free(c->api_keys);
    free_strings(c->allowed_ips, c->n_allowed_ips);
    free_strings(c->admin_allowed_ips, c->n_admin_allowed_ips);
    free(c->log_level);
    free(c->log_format);
    free(c->log_output);
    free(c->storage_url);
    free(c->redis_url);
    free(c->source);
    free(c);
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

/* Every default except providers and dashboard_host (set from host last). */
static tg_config_t *config_new(void)
{
    tg_config_t *c = xcalloc(1, sizeof *c);
    c->host = xstrdup("0.0.0.0");
    c->port = 8585;
    c->workers = online_cpus();
    c->shutdown_timeout_ms = 30000;
    c->idle_timeout_ms = 60000;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 30000;
    c->body_min_rate = 64 * 1024;
    c->lb_strategy = TG_LB_WEIGHTED;
    c->lb_ejection_ms = 30000;
    c->cache_enabled = false;
    c->cache_ttl_ms = 3600 * 1000;
    c->cache_max_size = 10000;
    c->cache_backend = xstrdup("memory");
    c->request_logging_enabled = true;
    c->request_logging_level = xstrdup("info");
    c->log_bodies = true;
    c->max_body_bytes = 1024 * 1024;
    c->metrics_enabled = true;
    c->dashboard_enabled = false;
    c->dashboard_port = 8586;
    c->cost_enabled = true;
    c->budget_daily = -1;
    c->budget_monthly = -1;
    c->max_request_size = 10 * 1024 * 1024;
    c->log_level = xstrdup("info");
    c->log_format = xstrdup("text");
    c->log_output = xstrdup("stdout");
    c->storage_url = xstrdup("sqlite:tollgate.db");
    c->refs = 1;
    static uint64_t generations;
    c->generation = __atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
    return c;
}

static tg_provider_cfg_t *add_provider(tg_config_t *c, const char *name)
{
    tg_provider_cfg_t *p = PUSH(c->providers, c->n_providers);
    p->name = xstrdup(name);
    p->timeout_ms = 60000;
    p->weight = 1;
    return p;
}

static void add_mock_if_missing(tg_config_t *c)
{
    for (size_t i = 0; i < c->n_providers; i++)
        if (!strcasecmp(c->providers[i].name, "mock"))
            return;
    add_provider(c, "mock")->type = TG_PROVIDER_MOCK;
}

/* Last defaults that depend on other settings. */
static void config_finish(tg_config_t *c)
{
    if (!c->dashboard_host)
        c->dashboard_host = xstrdup(c->host);
    /* The API and the metrics show every stored prompt: without keys, only
     * this machine may read them unless the file names who else may. */
    if (!c->n_admin_allowed_ips) {
        *PUSH(c->admin_allowed_ips, c->n_admin_allowed_ips) = xstrdup("127.0.0.0/8");
        *PUSH(c->admin_allowed_ips, c->n_admin_allowed_ips) = xstrdup("::1");
    }
    add_mock_if_missing(c);
}

tg_config_t *tg_config_defaults(void)
{
    static const struct {
        const char *env, *env2, *name;
    } from_env[] = {
        {"OPENAI_API_KEY", NULL, "openai"},
        {"ANTHROPIC_API_KEY", NULL, "anthropic"},
        {"GEMINI_API_KEY", "GOOGLE_GEMINI_API_KEY", "gemini"},
        {"DEEPSEEK_API_KEY", NULL, "deepseek"},
        {"GROQ_API_KEY", NULL, "groq"},
        {"MISTRAL_API_KEY", NULL, "mistral"},
        {"XAI_API_KEY", NULL, "xai"},
        {"OPENROUTER_API_KEY", NULL, "openrouter"},
        {"MODELSCOPE_API_KEY", NULL, "modelscope"},
    };
    tg_config_t *c = config_new();
    /* No file: nobody chose to expose the gateway, so it serves this
     * machine only (README: how to open it). */
    free(c->host);
    c->host = xstrdup("127.0.0.1");
    for (size_t i = 0; i < sizeof from_env / sizeof from_env[0]; i++) {
        const char *key = getenv(from_env[i].env);
        if ((!key || !*key) && from_env[i].env2)
            key = getenv(from_env[i].env2);
        if (!key || !*key)
            continue;
        const known_provider_t *k = find_known(from_env[i].name);
        tg_provider_cfg_t *p = add_provider(c, k->name);
        p->type = k->type;
        p->base_url = xstrdup(k->base_url);
        p->api_key = xstrdup(key);
    }
    config_finish(c);
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
        config_free(cfg);
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

/* ---- the loader: path tracking, errors, tree walking ---- */

typedef struct {
    yaml_document_t *doc;
    tg_config_t *cfg;
    tg_config_errors_t *errs;
    char *path; /* dotted path of the node being read */
    size_t path_len, path_cap;
    size_t visits;
    /* Lines of settings checked after the walk (0 = not in the file). */
    int default_provider_line;
    int *fallback_lines;    /* parallel to cfg->fallback_chain */
    int *rl_provider_lines; /* parallel to cfg->rl_providers */
    int cache_backend_line;
    int ssl_line;
    int dashboard_port_line;
    bool seen_default_rule;
    char **key_names; /* every security.api_keys name, also of skipped entries */
    size_t n_key_names;
} loader_t;

static size_t path_push(loader_t *L, const char *seg, bool index)
{
    size_t mark = L->path_len, n = strlen(seg);
    if (L->path_len + n + 4 > L->path_cap) {
        size_t cap = L->path_cap ? L->path_cap : 128;
        while (cap < L->path_len + n + 4)
            cap *= 2;
        char *p = realloc(L->path, cap);
        if (!p)
            abort();
        L->path = p;
        L->path_cap = cap;
    }
    if (index)
        L->path[L->path_len++] = '[';
    else if (L->path_len)
        L->path[L->path_len++] = '.';
    memcpy(L->path + L->path_len, seg, n);
    L->path_len += n;
    if (index)
        L->path[L->path_len++] = ']';
    L->path[L->path_len] = '\0';
    return mark;
}

static void path_pop(loader_t *L, size_t mark)
{
    L->path_len = mark;
    L->path[mark] = '\0';
}

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

static void add_error(tg_config_errors_t *errs, const char *path, int line, const char *fmt,
                      va_list ap)
{
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    tg_config_error_t *e = PUSH(errs->items, errs->n);
    e->path = xstrdup(path ? path : "");
    e->line = line;
    e->message = msg;
}

/* An error at the current path. */
__attribute__((format(printf, 3, 4))) static void fail(loader_t *L, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(L->errs, L->path ? L->path : "", line, fmt, ap);
    va_end(ap);
}

/* An error at the current path plus `sub` (a key that is missing, say). */
__attribute__((format(printf, 4, 5))) static void fail_sub(loader_t *L, const char *sub, int line,
                                                           const char *fmt, ...)
{
    size_t mark = path_push(L, sub, false);
    va_list ap;
    va_start(ap, fmt);
    add_error(L->errs, L->path, line, fmt, ap);
    va_end(ap);
    path_pop(L, mark);
}

static bool too_big(loader_t *L, const yaml_node_t *n)
{
    if (++L->visits == MAX_VISITS)
        fail(L, line_of(n), "too many nodes (alias expansion?)");
    return L->visits >= MAX_VISITS;
}

static bool is_null(const yaml_node_t *n)
{
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* What a walk hands to its callback: one key and value of a mapping (k is
 * the key's node, for its line), or one item of a list (key and k NULL). */
typedef struct {
    const char *key;
    yaml_node_t *k, *v;
    void *ctx; /* the walk's caller's */
} entry_t;

/* Returns false for a key it does not know (walk_map then reports it). */
typedef bool (*key_fn)(loader_t *L, const entry_t *e);
typedef void (*item_fn)(loader_t *L, const entry_t *e);

/*
 * Calls fn for each key of a mapping with the path extended by the key; fn
 * returns false for a key it does not know. A null node is an empty mapping.
 */
static void walk_map(loader_t *L, yaml_node_t *node, key_fn fn, void *ctx)
{
    if (is_null(node))
        return;
    if (node->type != YAML_MAPPING_NODE) {
        fail(L, line_of(node), "expected a mapping");
        return;
    }
    yaml_node_pair_t *start = node->data.mapping.pairs.start;
    yaml_node_pair_t *top = node->data.mapping.pairs.top;
    if (top - start > MAX_KEYS) {
        /* Also keeps the quadratic duplicate check below cheap. */
        fail(L, line_of(node), "more than %d keys", MAX_KEYS);
        return;
    }
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pair->value);
        if (too_big(L, k))
            return;
        if (!k || k->type != YAML_SCALAR_NODE || is_null(k) ||
            strlen((char *)k->data.scalar.value) != k->data.scalar.length) {
            fail(L, line_of(k ? k : node), "a key must be a non-empty string");
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool dup = false;
        for (yaml_node_pair_t *q = start; q < pair && !dup; q++) {
            yaml_node_t *qk = yaml_document_get_node(L->doc, q->key);
            dup = qk && qk->type == YAML_SCALAR_NODE &&
                  !strcmp((const char *)qk->data.scalar.value, key);
        }
        size_t mark = path_push(L, key, false);
        if (dup)
            fail(L, line_of(k), "duplicate key");
        else if (!fn(L, &(entry_t){key, k, v, ctx}))
            fail(L, line_of(k), "unknown key");
        path_pop(L, mark);
    }
}

/* Calls fn for each item of a sequence, path extended by "[i]" (0-based). */
static void walk_list(loader_t *L, yaml_node_t *node, item_fn fn, void *ctx)
{
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        fail(L, line_of(node), "expected a list");
        return;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *v = yaml_document_get_node(L->doc, *it);
        if (too_big(L, v))
            return;
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        size_t mark = path_push(L, idx, true);
        fn(L, &(entry_t){NULL, NULL, v, ctx});
        path_pop(L, mark);
    }
}

/* ---- scalar values ---- */

/*
 * The text of a scalar after ${VAR} expansion ("" for a YAML null), or NULL
 * after reporting "expected <what>" (not a scalar) or a bad ${...}.
 */
static char *scalar_text(loader_t *L, yaml_node_t *v, const char *what)
{
    if (is_null(v))
        return xstrdup("");
    if (v->type != YAML_SCALAR_NODE) {
        fail(L, line_of(v), "expected %s", what);
        return NULL;
    }
    const char *raw = (const char *)v->data.scalar.value;
    if (strlen(raw) != v->data.scalar.length) {
        fail(L, line_of(v), "must not contain a NUL character");
        return NULL;
    }
    char *out;
    const char *why;
    if (tg_config_expand_env(raw, &out, &why) < 0) {
        fail(L, line_of(v), "%s", why);
        return NULL;
    }
    return out;
}

/*
 * Text of a scalar that sets a value, or NULL when it is empty (after
 * expansion) — which means "not set": the default stays — or invalid.
 */
static char *value_text(loader_t *L, yaml_node_t *v, const char *what)
{
    char *s = scalar_text(L, v, what);
    if (s && !*s) {
        free(s);
        return NULL;
    }
    return s;
}

static void get_string(loader_t *L, yaml_node_t *v, char **dst)
{
    char *s = value_text(L, v, "a string");
    if (s) {
        free(*dst);
        *dst = s;
    }
}

static void get_bool(loader_t *L, yaml_node_t *v, bool *dst)
{
    char *s = value_text(L, v, "true or false");
    if (s && tg_config_parse_bool(s, dst) < 0)
        fail(L, line_of(v), "expected true or false");
    free(s);
}

static void get_int64(loader_t *L, yaml_node_t *v, int64_t min, int64_t max, int64_t *dst)
{
    char what[80];
    if (max == INT64_MAX)
        snprintf(what, sizeof what, "an integer >= %lld", (long long)min);
    else
        snprintf(what, sizeof what, "an integer from %lld to %lld", (long long)min, (long long)max);
    char *s = value_text(L, v, what);
    int64_t n;
    if (s && (tg_config_parse_int(s, &n) < 0 || n < min || n > max))
        fail(L, line_of(v), "expected %s", what);
    else if (s)
        *dst = n;
    free(s);
}

static void get_int(loader_t *L, yaml_node_t *v, int min, int max, int *dst)
{
    int64_t n = *dst;
    get_int64(L, v, min, max, &n);
    *dst = (int)n;
}

/* A number >= min (> min when `exclusive`). */
static void get_number(loader_t *L, yaml_node_t *v, double min, bool exclusive, double *dst)
{
    char what[64];
    snprintf(what, sizeof what, "a number %s %g", exclusive ? ">" : ">=", min);
    char *s = value_text(L, v, what);
    double d;
    if (s && (tg_config_parse_number(s, &d) < 0 || d < min || (exclusive && d == min)))
        fail(L, line_of(v), "expected %s", what);
    else if (s)
        *dst = d;
    free(s);
}

/* A duration of at least min_ms. */
static void get_duration(loader_t *L, yaml_node_t *v, int64_t min_ms, int64_t *dst)
{
    static const char what[] = "a duration such as 30 (seconds), 500ms, 30s, 5m, 1h or 1d";
    char *s = value_text(L, v, what);
    int64_t ms;
    if (s && tg_config_parse_duration(s, &ms) < 0)
        fail(L, line_of(v), "expected %s", what);
    else if (s && ms < min_ms)
        fail(L, line_of(v), "must be at least %lld ms", (long long)min_ms);
    else if (s)
        *dst = ms;
    free(s);
}

/* A size of at least min bytes. */
static void get_size(loader_t *L, yaml_node_t *v, int64_t min, int64_t *dst)
{
    static const char what[] = "a size such as 512 (bytes), 64KB, 10MB or 1GB";
    char *s = value_text(L, v, what);
    int64_t n;
    if (s && tg_config_parse_size(s, &n) < 0)
        fail(L, line_of(v), "expected %s", what);
    else if (s && n < min)
        fail(L, line_of(v), "must be at least %lld bytes", (long long)min);
    else if (s)
        *dst = n;
    free(s);
}

/* One of `names` (NULL-terminated), case-insensitive; *dst gets the index. */
static bool get_enum(loader_t *L, yaml_node_t *v, const char *const *names, int *dst)
{
    char what[160] = "one of";
    for (size_t i = 0; names[i]; i++) {
        size_t n = strlen(what);
        snprintf(what + n, sizeof what - n, "%s %s", i ? "," : ":", names[i]);
    }
    char *s = value_text(L, v, what);
    if (!s)
        return false;
    for (int i = 0; names[i]; i++) {
        if (!strcasecmp(s, names[i])) {
            *dst = i;
            free(s);
            return true;
        }
    }
    fail(L, line_of(v), "expected %s", what);
    free(s);
    return false;
}

/* As get_enum, storing the canonical name as a string. */
static void get_enum_string(loader_t *L, yaml_node_t *v, const char *const *names, char **dst)
{
    int i;
    if (get_enum(L, v, names, &i)) {
        free(*dst);
        *dst = xstrdup(names[i]);
    }
}

typedef struct {
    char ***items;
    size_t *n;
    int **lines; /* optional: line of each item */
    size_t *n_lines;
} strlist_t;

/* A list item: a non-empty string; empty ones (unset ${VAR}) are skipped. */
static void strlist_item(loader_t *L, const entry_t *e)
{
    strlist_t *sl = e->ctx;
    char *s = value_text(L, e->v, "a string");
    if (!s)
        return;
    *PUSH(*sl->items, *sl->n) = s;
    if (sl->lines)
        *PUSH(*sl->lines, *sl->n_lines) = line_of(e->v);
}

static void get_string_list(loader_t *L, yaml_node_t *v, char ***items, size_t *n)
{
    strlist_t sl = {items, n, NULL, NULL};
    walk_list(L, v, strlist_item, &sl);
}

/* An HTTP header name or Helicone property name: an RFC 9110 token. */
static bool is_token(const char *s)
{
    return *s && strspn(s, "!#$%&'*+-.^_`|~0123456789"
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(s);
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return !strncasecmp(s, prefix, strlen(prefix));
}

/* A URL that starts with one of `schemes`, with no blank or control byte. */
static void get_url(loader_t *L, yaml_node_t *v, const char *const *schemes, const char *expect,
                    char **dst)
{
    char *s = value_text(L, v, "a URL");
    if (!s)
        return;
    bool ok = false;
    for (size_t i = 0; schemes[i] && !ok; i++)
        ok = has_prefix_ci(s, schemes[i]) && s[strlen(schemes[i])];
    for (const char *p = s; *p && ok; p++)
        ok = !isspace((unsigned char)*p) && !iscntrl((unsigned char)*p);
    if (!ok) {
        fail(L, line_of(v), "expected %s", expect);
        free(s);
        return;
    }
    free(*dst);
    *dst = s;
}

static const char *const http_schemes[] = {"http://", "https://", NULL};

/* ---- server ---- */

static bool ssl_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled"))
        get_bool(L, e->v, &c->ssl_enabled);
    else if (!strcmp(e->key, "cert_file"))
        get_string(L, e->v, &c->ssl_cert_file);
    else if (!strcmp(e->key, "key_file"))
        get_string(L, e->v, &c->ssl_key_file);
    else
        return false;
    return true;
}

static bool server_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "host")) {
        get_string(L, e->v, &c->host);
    } else if (!strcmp(e->key, "port")) {
        get_int(L, e->v, 1, 65535, &c->port);
    } else if (!strcmp(e->key, "workers")) {
        get_int(L, e->v, 1, 1024, &c->workers);
    } else if (!strcmp(e->key, "ssl")) {
        L->ssl_line = line_of(e->k);
        walk_map(L, e->v, ssl_key, NULL);
    } else if (!strcmp(e->key, "shutdown_timeout")) {
        get_duration(L, e->v, 0, &c->shutdown_timeout_ms);
    } else if (!strcmp(e->key, "idle_timeout")) {
        get_duration(L, e->v, 1, &c->idle_timeout_ms);
    } else if (!strcmp(e->key, "header_timeout")) {
        get_duration(L, e->v, 1, &c->header_timeout_ms);
    } else if (!strcmp(e->key, "body_timeout")) {
        get_duration(L, e->v, 1, &c->body_timeout_ms);
    } else if (!strcmp(e->key, "body_min_rate")) {
        get_size(L, e->v, 0, &c->body_min_rate); /* bytes per second; 0: no allowance */
    } else if (!strcmp(e->key, "max_connections")) {
        get_int64(L, e->v, 1, INT32_MAX, &c->max_connections);
    } else {
        return false;
    }
    return true;
}

/* ---- providers ---- */

typedef struct {
    tg_provider_cfg_t *p;
    bool type_given;
    char *base_url; /* as written, expanded */
    int base_url_line;
} provider_ctx_t;

static bool header_key(loader_t *L, const entry_t *e)
{
    tg_provider_cfg_t *p = e->ctx;
    if (!is_token(e->key)) {
        fail(L, line_of(e->k), "not a valid HTTP header name");
        return true;
    }
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection", NULL};
    for (size_t i = 0; reserved[i]; i++) {
        if (!strcasecmp(e->key, reserved[i])) {
            fail(L, line_of(e->k), "this header is set by the gateway");
            return true;
        }
    }
    char *val = value_text(L, e->v, "a string");
    if (!val)
        return true; /* empty (unset ${VAR}): the header is not sent */
    if (strpbrk(val, "\r\n")) {
        fail(L, line_of(e->v), "a header value must not contain a line break");
        free(val);
        return true;
    }
    tg_kv_t *kv = PUSH(p->headers, p->n_headers);
    kv->name = xstrdup(e->key);
    kv->value = val;
    return true;
}

static bool provider_key(loader_t *L, const entry_t *e)
{
    static const char *const types[] = {"openai", "anthropic", "gemini", "azure", "mock", NULL};
    provider_ctx_t *pc = e->ctx;
    tg_provider_cfg_t *p = pc->p;
    if (!strcmp(e->key, "base_url")) {
        get_string(L, e->v, &pc->base_url);
        pc->base_url_line = line_of(e->v);
    } else if (!strcmp(e->key, "api_key")) {
        get_string(L, e->v, &p->api_key);
    } else if (!strcmp(e->key, "default_model")) {
        get_string(L, e->v, &p->default_model);
    } else if (!strcmp(e->key, "timeout")) {
        get_duration(L, e->v, 1, &p->timeout_ms);
    } else if (!strcmp(e->key, "retries")) {
        get_int(L, e->v, 0, 100, &p->retries);
    } else if (!strcmp(e->key, "type")) {
        int t;
        if (get_enum(L, e->v, types, &t)) {
            p->type = (tg_provider_type_t)t;
            pc->type_given = true;
        }
    } else if (!strcmp(e->key, "models")) {
        get_string_list(L, e->v, &p->models, &p->n_models);
    } else if (!strcmp(e->key, "weight")) {
        get_number(L, e->v, 0, true, &p->weight);
    } else if (!strcmp(e->key, "headers")) {
        walk_map(L, e->v, header_key, p);
    } else {
        return false;
    }
    return true;
}

/*
 * The effective base URL: scheme checked, trailing '/' removed, and for a
 * bare origin (no path) `prefix` appended. NULL after an error.
 */
static char *normalize_base_url(loader_t *L, const char *raw, int line, const char *prefix)
{
    const char *scheme_end = NULL;
    if (has_prefix_ci(raw, "http://"))
        scheme_end = raw + 7;
    else if (has_prefix_ci(raw, "https://"))
        scheme_end = raw + 8;
    if (!scheme_end) {
        fail_sub(L, "base_url", line, "must start with http:// or https://");
        return NULL;
    }
    if (!*scheme_end || *scheme_end == '/') {
        fail_sub(L, "base_url", line, "has no host");
        return NULL;
    }
    for (const char *p = raw; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '?' || *p == '#') {
            fail_sub(L, "base_url", line,
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

/* Settles type and base_url once the provider's keys have been read. */
static void provider_finish(loader_t *L, provider_ctx_t *pc, int line)
{
    tg_provider_cfg_t *p = pc->p;
    const known_provider_t *wk = find_known(p->name);
    if (!pc->type_given) {
        /* A user's own "mock" with a base_url is an OpenAI-compatible endpoint. */
        if (wk && !(wk->type == TG_PROVIDER_MOCK && pc->base_url))
            p->type = wk->type;
        else
            p->type = TG_PROVIDER_OPENAI;
    }
    /* The name's own defaults hold unless `type:` says something else. */
    bool name_rules = wk && wk->type == p->type;
    if (p->type == TG_PROVIDER_MOCK) {
        if (pc->base_url)
            fail_sub(L, "base_url", pc->base_url_line,
                     "a mock provider answers locally and takes no base_url");
        return;
    }
    if (pc->base_url) {
        p->base_url = normalize_base_url(L, pc->base_url, pc->base_url_line,
                                         name_rules ? wk->prefix : type_prefix(p->type));
        p->explicit_base_url = true;
    } else if (name_rules && wk->base_url) {
        p->base_url = xstrdup(wk->base_url);
    } else if (p->type == TG_PROVIDER_AZURE) {
        fail_sub(L, "base_url", line,
                 "required for an azure provider (https://RESOURCE.openai.azure.com)");
    } else if (wk) {
        fail_sub(L, "base_url", line, "required when type differs from the usual type of %s",
                 wk->name);
    } else {
        fail_sub(L, "base_url", line, "required for a provider that is not well known");
    }
}

static bool provider_entry(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    const char *name = e->key;
    /* The name appears in URLs (/NAME/path) and model prefixes (NAME/model). */
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
            strlen(name) ||
        !strcmp(name, ".") || !strcmp(name, "..")) {
        fail(L, line_of(e->k), "a provider name may contain only letters, digits, '-', '_', '.'");
        return true;
    }
    static const char *const reserved[] = {"v1",      "v1beta",      "api", "health",
                                           "metrics", "passthrough", NULL};
    for (size_t i = 0; reserved[i]; i++) {
        if (!strcasecmp(name, reserved[i])) {
            fail(L, line_of(e->k), "\"%s\" is reserved for the gateway's own routes", name);
            return true;
        }
    }
    if (tg_config_provider(c, name, strlen(name))) {
        fail(L, line_of(e->k), "duplicate provider (names are case-insensitive)");
        return true;
    }
    provider_ctx_t pc = {add_provider(c, name), false, NULL, 0};
    pc.p->line = line_of(e->k);
    walk_map(L, e->v, provider_key, &pc);
    provider_finish(L, &pc, line_of(e->k));
    free(pc.base_url);
    return true;
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
        get_string(L, e->v, &cc->equals);
        cc->equals_line = line_of(e->k);
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
        fail(L, line_of(e->k), "a condition has only one of model, header or property");
        return true;
    }
    cc->has_kind = true;
    cc->kind = kind;
    size_t n_errs = L->errs->n;
    get_string(L, e->v, &cc->subject);
    if (!cc->subject && L->errs->n == n_errs)
        fail(L, line_of(e->v), "must not be empty");
    else if (kind != TG_COND_MODEL && !is_token(cc->subject))
        fail(L, line_of(e->v), "not a valid %s name", e->key);
    return true;
}

/* Reads a condition mapping into r; errors are reported at the current path. */
static void read_condition_map(loader_t *L, yaml_node_t *v, tg_rule_t *r)
{
    cond_ctx_t cc = {0};
    walk_map(L, v, cond_key, &cc);
    if (!cc.has_kind) {
        fail(L, line_of(v), "expected one of model, header or property");
    } else if (cc.kind == TG_COND_MODEL && cc.equals) {
        fail_sub(L, "equals", cc.equals_line, "not used with model");
    } else if (cc.kind != TG_COND_MODEL && !cc.equals) {
        fail_sub(L, "equals", line_of(v), "required with %s",
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
        get_string(L, e->v, &rc->provider);
    else
        return false;
    return true;
}

static void rule_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        fail(L, line_of(e->v), "expected a mapping with condition (or default) and provider");
        return;
    }
    rule_ctx_t rc = {0};
    tg_rule_t r = {.kind = TG_COND_DEFAULT, .line = line_of(e->v)};
    size_t n_errs = L->errs->n;
    walk_map(L, e->v, rule_key, &rc);
    if (rc.has_default && rc.condition) {
        fail(L, line_of(e->v), "a rule has either condition or default, not both");
    } else if (rc.has_default) {
        /* `- default: NAME` names the provider; `- default:` + `provider:` too. */
        char *p = NULL;
        size_t mark = path_push(L, "default", false);
        get_string(L, rc.default_node, &p);
        if (p && rc.provider)
            fail(L, line_of(rc.default_node), "give the provider once: here or in provider");
        if (L->seen_default_rule)
            fail(L, line_of(e->v), "only one default rule is allowed");
        path_pop(L, mark);
        if (p && !rc.provider)
            rc.provider = p;
        else
            free(p);
        L->seen_default_rule = true;
    } else if (!rc.condition) {
        fail(L, line_of(e->v), "a rule needs a condition (or default) and a provider");
    } else {
        size_t mark = path_push(L, "condition", false);
        if (rc.condition->type == YAML_MAPPING_NODE) {
            read_condition_map(L, rc.condition, &r);
        } else if (rc.condition->type == YAML_SCALAR_NODE && !is_null(rc.condition)) {
            size_t n_before = L->errs->n;
            get_string(L, rc.condition, &r.value);
            r.kind = TG_COND_TASK;
            if (!r.value && L->errs->n == n_before)
                fail(L, line_of(rc.condition), "must not be empty");
        } else {
            fail(L, line_of(rc.condition),
                 "expected a task name or a mapping (model, header or property)");
        }
        path_pop(L, mark);
        if (L->seen_default_rule)
            fail(L, line_of(e->v), "comes after the default rule and would never match");
    }
    if ((rc.condition || rc.has_default) && !rc.provider && L->errs->n == n_errs)
        fail_sub(L, "provider", line_of(e->v), "required");
    if (L->errs->n != n_errs) {
        free(r.key);
        free(r.value);
        free(rc.provider);
        return;
    }
    r.provider = rc.provider;
    *PUSH(c->rules, c->n_rules) = r;
}

static bool lb_key(loader_t *L, const entry_t *e)
{
    static const char *const strategies[] = {"weighted", "round_robin", "latency", "cost", NULL};
    if (!strcmp(e->key, "ejection_time")) {
        get_duration(L, e->v, 1, &L->cfg->lb_ejection_ms);
        return true;
    }
    if (strcmp(e->key, "strategy"))
        return false;
    int s;
    if (get_enum(L, e->v, strategies, &s))
        L->cfg->lb_strategy = (tg_lb_strategy_t)s;
    return true;
}

static bool alias_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    char *target = value_text(L, e->v, "a model name");
    if (!target)
        return true;
    tg_kv_t *kv = PUSH(c->model_aliases, c->n_model_aliases);
    kv->name = xstrdup(e->key);
    kv->value = target;
    return true;
}

static bool routing_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "default_provider")) {
        get_string(L, e->v, &c->default_provider);
        L->default_provider_line = line_of(e->v);
    } else if (!strcmp(e->key, "fallback_chain")) {
        size_t n_lines = 0;
        strlist_t sl = {&c->fallback_chain, &c->n_fallback_chain, &L->fallback_lines, &n_lines};
        walk_list(L, e->v, strlist_item, &sl);
    } else if (!strcmp(e->key, "rules")) {
        walk_list(L, e->v, rule_item, NULL);
    } else if (!strcmp(e->key, "load_balancing")) {
        walk_map(L, e->v, lb_key, NULL);
    } else if (!strcmp(e->key, "model_aliases")) {
        walk_map(L, e->v, alias_key, NULL);
    } else {
        return false;
    }
    return true;
}

/* ---- caching ---- */

static bool caching_key(loader_t *L, const entry_t *e)
{
    static const char *const backends[] = {"memory", "redis", NULL};
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled")) {
        get_bool(L, e->v, &c->cache_enabled);
    } else if (!strcmp(e->key, "ttl")) {
        get_duration(L, e->v, 1, &c->cache_ttl_ms);
    } else if (!strcmp(e->key, "max_size")) {
        get_int64(L, e->v, 1, INT64_MAX, &c->cache_max_size);
    } else if (!strcmp(e->key, "backend")) {
        get_enum_string(L, e->v, backends, &c->cache_backend);
        L->cache_backend_line = line_of(e->v);
    } else {
        return false;
    }
    return true;
}

/* ---- rate limits ---- */

static bool pair_key(loader_t *L, const entry_t *e)
{
    tg_rate_pair_t *rp = e->ctx;
    if (!strcmp(e->key, "requests_per_minute"))
        get_int64(L, e->v, 0, INT64_MAX, &rp->requests_per_minute);
    else if (!strcmp(e->key, "tokens_per_minute"))
        get_int64(L, e->v, 0, INT64_MAX, &rp->tokens_per_minute);
    else
        return false;
    return true;
}

static bool rl_provider_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    size_t n_lines = c->n_rl_providers;
    tg_named_rate_t *r = PUSH(c->rl_providers, c->n_rl_providers);
    r->name = xstrdup(e->key);
    *PUSH(L->rl_provider_lines, n_lines) = line_of(e->k);
    walk_map(L, e->v, pair_key, &r->limit);
    return true;
}

static bool rl_property_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!is_token(e->key)) {
        fail(L, line_of(e->k), "not a valid property name");
        return true;
    }
    tg_named_rate_t *r = PUSH(c->rl_per_property, c->n_rl_per_property);
    r->name = xstrdup(e->key);
    walk_map(L, e->v, pair_key, &r->limit);
    return true;
}

static bool rate_limiting_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled"))
        get_bool(L, e->v, &c->rl_enabled);
    else if (!strcmp(e->key, "providers"))
        walk_map(L, e->v, rl_provider_key, NULL);
    else if (!strcmp(e->key, "per_key"))
        walk_map(L, e->v, pair_key, &c->rl_per_key);
    else if (!strcmp(e->key, "per_ip"))
        walk_map(L, e->v, pair_key, &c->rl_per_ip);
    else if (!strcmp(e->key, "per_user"))
        walk_map(L, e->v, pair_key, &c->rl_per_user);
    else if (!strcmp(e->key, "per_property"))
        walk_map(L, e->v, rl_property_key, NULL);
    else
        return false;
    return true;
}

/* ---- observability ---- */

static const char *const log_levels[] = {"debug", "info", "warn", "warning", "error", NULL};

/* A log level, "warning" stored as "warn". */
static void get_log_level(loader_t *L, yaml_node_t *v, char **dst)
{
    int i;
    if (get_enum(L, v, log_levels, &i)) {
        free(*dst);
        *dst = xstrdup(!strcmp(log_levels[i], "warning") ? "warn" : log_levels[i]);
    }
}

static bool request_logging_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled"))
        get_bool(L, e->v, &c->request_logging_enabled);
    else if (!strcmp(e->key, "log_level"))
        get_log_level(L, e->v, &c->request_logging_level);
    else if (!strcmp(e->key, "bodies"))
        get_bool(L, e->v, &c->log_bodies);
    else if (!strcmp(e->key, "max_body_bytes"))
        get_size(L, e->v, 0, &c->max_body_bytes);
    else
        return false;
    return true;
}

static bool enabled_key(loader_t *L, const entry_t *e)
{
    if (strcmp(e->key, "enabled"))
        return false;
    get_bool(L, e->v, e->ctx);
    return true;
}

static bool dashboard_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled")) {
        get_bool(L, e->v, &c->dashboard_enabled);
    } else if (!strcmp(e->key, "port")) {
        get_int(L, e->v, 1, 65535, &c->dashboard_port);
        L->dashboard_port_line = line_of(e->v);
    } else if (!strcmp(e->key, "host")) {
        get_string(L, e->v, &c->dashboard_host);
    } else {
        return false;
    }
    return true;
}

static bool otlp_key(loader_t *L, const entry_t *e)
{
    if (strcmp(e->key, "endpoint"))
        return false;
    get_string(L, e->v, &L->cfg->otlp_endpoint);
    return true;
}

static bool observability_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "request_logging"))
        walk_map(L, e->v, request_logging_key, NULL);
    else if (!strcmp(e->key, "metrics"))
        walk_map(L, e->v, enabled_key, &c->metrics_enabled);
    else if (!strcmp(e->key, "dashboard")) {
        L->dashboard_port_line = line_of(e->k); /* until a port is given */
        walk_map(L, e->v, dashboard_key, NULL);
    } else if (!strcmp(e->key, "otlp"))
        walk_map(L, e->v, otlp_key, NULL);
    else
        return false;
    return true;
}

/* ---- cost tracking ---- */

static bool price_key(loader_t *L, const entry_t *e)
{
    tg_price_cfg_t *pr = e->ctx;
    if (!strcmp(e->key, "input"))
        get_number(L, e->v, 0, false, &pr->input);
    else if (!strcmp(e->key, "output"))
        get_number(L, e->v, 0, false, &pr->output);
    else if (!strcmp(e->key, "cached_input"))
        get_number(L, e->v, 0, false, &pr->cached_input);
    else if (!strcmp(e->key, "cache_write"))
        get_number(L, e->v, 0, false, &pr->cache_write);
    else
        return false;
    return true;
}

static bool pricing_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    tg_price_cfg_t pr = {NULL, -1, -1, -1, -1};
    size_t n_errs = L->errs->n;
    walk_map(L, e->v, price_key, &pr);
    if (pr.input < 0)
        fail_sub(L, "input", line_of(e->k), "required");
    if (pr.output < 0)
        fail_sub(L, "output", line_of(e->k), "required");
    if (L->errs->n != n_errs)
        return true;
    pr.model = xstrdup(e->key);
    *PUSH(c->pricing, c->n_pricing) = pr;
    return true;
}

static bool budgets_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "daily"))
        get_number(L, e->v, 0, false, &c->budget_daily);
    else if (!strcmp(e->key, "monthly"))
        get_number(L, e->v, 0, false, &c->budget_monthly);
    else
        return false;
    return true;
}

static bool alert_key(loader_t *L, const entry_t *e)
{
    static const char *const actions[] = {"notification", "throttle", NULL};
    tg_alert_cfg_t *a = e->ctx;
    if (!strcmp(e->key, "threshold")) {
        char *s = value_text(L, e->v, "a threshold such as 80% or 0.8");
        if (s && tg_config_parse_threshold(s, &a->threshold) < 0)
            fail(L, line_of(e->v), "expected a threshold such as 80%% or 0.8");
        free(s);
    } else if (!strcmp(e->key, "action")) {
        get_enum_string(L, e->v, actions, &a->action);
    } else {
        return false;
    }
    return true;
}

static void alert_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    tg_alert_cfg_t a = {-1, NULL};
    size_t n_errs = L->errs->n;
    if (is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        fail(L, line_of(e->v), "expected a mapping with threshold and action");
        return;
    }
    walk_map(L, e->v, alert_key, &a);
    if (a.threshold < 0 && L->errs->n == n_errs)
        fail_sub(L, "threshold", line_of(e->v), "required");
    if (L->errs->n != n_errs) {
        free(a.action);
        return;
    }
    if (!a.action)
        a.action = xstrdup("notification");
    *PUSH(c->alerts, c->n_alerts) = a;
}

static bool cost_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "enabled"))
        get_bool(L, e->v, &c->cost_enabled);
    else if (!strcmp(e->key, "pricing"))
        walk_map(L, e->v, pricing_key, NULL);
    else if (!strcmp(e->key, "budgets"))
        walk_map(L, e->v, budgets_key, NULL);
    else if (!strcmp(e->key, "alerts"))
        walk_list(L, e->v, alert_item, NULL);
    else if (!strcmp(e->key, "webhook_url"))
        get_url(L, e->v, http_schemes, "an http:// or https:// URL", &c->webhook_url);
    else
        return false;
    return true;
}

/* ---- security ---- */

static void permission_item(loader_t *L, const entry_t *e)
{
    static const char *const perms[] = {"read", "write", NULL};
    tg_api_key_cfg_t *ak = e->ctx;
    int p;
    if (get_enum(L, e->v, perms, &p)) {
        if (p == 0)
            ak->perm_read = true;
        else
            ak->perm_write = true;
    }
}

static bool api_key_key(loader_t *L, const entry_t *e)
{
    tg_api_key_cfg_t *ak = e->ctx;
    if (!strcmp(e->key, "name"))
        get_string(L, e->v, &ak->name);
    else if (!strcmp(e->key, "key"))
        get_string(L, e->v, &ak->key);
    else if (!strcmp(e->key, "permissions"))
        walk_list(L, e->v, permission_item, ak);
    else
        return false;
    return true;
}

static void api_key_item(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (is_null(e->v) || e->v->type != YAML_MAPPING_NODE) {
        fail(L, line_of(e->v), "expected a mapping with name, key and permissions");
        return;
    }
    tg_api_key_cfg_t ak = {0};
    size_t n_errs = L->errs->n;
    walk_map(L, e->v, api_key_key, &ak);
    if (!ak.name) {
        fail_sub(L, "name", line_of(e->v), "required");
    } else {
        for (size_t j = 0; j < L->n_key_names; j++) {
            if (!strcmp(L->key_names[j], ak.name)) {
                fail_sub(L, "name", line_of(e->v), "duplicate key name \"%s\"", ak.name);
                break;
            }
        }
        *PUSH(L->key_names, L->n_key_names) = xstrdup(ak.name);
    }
    for (size_t j = 0; ak.key && j < c->n_api_keys; j++) {
        if (!strcmp(c->api_keys[j].key, ak.key)) {
            fail_sub(L, "key", line_of(e->v), "same key as \"%s\"", c->api_keys[j].name);
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
    *PUSH(c->api_keys, c->n_api_keys) = ak;
}

/* Where allowed_ip_item puts an address: a list of the config and its count. */
typedef struct {
    char ***items;
    size_t *n;
} ip_list_t;

static void allowed_ip_item(loader_t *L, const entry_t *e)
{
    const ip_list_t *list = e->ctx;
    char *s = value_text(L, e->v, "an IP address or CIDR");
    if (!s)
        return;
    if (tg_config_check_ip(s) < 0) {
        fail(L, line_of(e->v), "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8)");
        free(s);
        return;
    }
    *PUSH(*list->items, *list->n) = s;
}

static bool sec_rate_limits_key(loader_t *L, const entry_t *e)
{
    if (strcmp(e->key, "per_ip"))
        return false;
    walk_map(L, e->v, pair_key, &L->cfg->sec_per_ip);
    return true;
}

static bool security_key(loader_t *L, const entry_t *e)
{
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "require_auth"))
        get_bool(L, e->v, &c->require_auth);
    else if (!strcmp(e->key, "api_keys"))
        walk_list(L, e->v, api_key_item, NULL);
    else if (!strcmp(e->key, "allowed_ips"))
        walk_list(L, e->v, allowed_ip_item, &(ip_list_t){&c->allowed_ips, &c->n_allowed_ips});
    else if (!strcmp(e->key, "admin_allowed_ips"))
        walk_list(L, e->v, allowed_ip_item,
                  &(ip_list_t){&c->admin_allowed_ips, &c->n_admin_allowed_ips});
    else if (!strcmp(e->key, "max_request_size"))
        get_size(L, e->v, 1, &c->max_request_size);
    else if (!strcmp(e->key, "max_tokens_per_request"))
        get_int64(L, e->v, 0, INT64_MAX, &c->max_tokens_per_request);
    else if (!strcmp(e->key, "rate_limits"))
        walk_map(L, e->v, sec_rate_limits_key, NULL);
    else
        return false;
    return true;
}

/* ---- logging, storage, redis ---- */

static bool logging_key(loader_t *L, const entry_t *e)
{
    static const char *const formats[] = {"text", "json", NULL};
    tg_config_t *c = L->cfg;
    if (!strcmp(e->key, "level"))
        get_log_level(L, e->v, &c->log_level);
    else if (!strcmp(e->key, "format"))
        get_enum_string(L, e->v, formats, &c->log_format);
    else if (!strcmp(e->key, "output"))
        get_string(L, e->v, &c->log_output);
    else
        return false;
    return true;
}

static bool storage_key(loader_t *L, const entry_t *e)
{
    static const char *const schemes[] = {"sqlite:", "postgresql://", "postgres://", NULL};
    if (strcmp(e->key, "url"))
        return false;
    get_url(L, e->v, schemes, "sqlite:PATH, postgresql://... or postgres://...",
            &L->cfg->storage_url);
    return true;
}

static bool redis_key(loader_t *L, const entry_t *e)
{
    static const char *const schemes[] = {"redis://", "rediss://", "unix:", NULL};
    if (strcmp(e->key, "url"))
        return false;
    get_url(L, e->v, schemes, "redis://..., rediss://... or unix:PATH", &L->cfg->redis_url);
    return true;
}

static bool root_key(loader_t *L, const entry_t *e)
{
    static const struct {
        const char *name;
        key_fn fn;
    } sections[] = {
        {"server", server_key},
        {"providers", provider_entry},
        {"routing", routing_key},
        {"caching", caching_key},
        {"rate_limiting", rate_limiting_key},
        {"observability", observability_key},
        {"cost_tracking", cost_key},
        {"security", security_key},
        {"logging", logging_key},
        {"storage", storage_key},
        {"redis", redis_key},
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (!strcmp(e->key, sections[i].name)) {
            walk_map(L, e->v, sections[i].fn, NULL);
            return true;
        }
    }
    return false;
}

/* ---- checks across sections ---- */

static void check_provider_ref(loader_t *L, const char *path, int line, const char *name)
{
    if (tg_config_provider(L->cfg, name, strlen(name)))
        return;
    size_t mark = path_push(L, path, false);
    fail(L, line, "\"%s\" is not a configured provider", name);
    path_pop(L, mark);
}

static void cross_check(loader_t *L)
{
    tg_config_t *c = L->cfg;
    if (c->default_provider)
        check_provider_ref(L, "routing.default_provider", L->default_provider_line,
                           c->default_provider);
    for (size_t i = 0; i < c->n_fallback_chain; i++) {
        char path[64];
        snprintf(path, sizeof path, "routing.fallback_chain[%zu]", i);
        check_provider_ref(L, path, L->fallback_lines[i], c->fallback_chain[i]);
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        char path[64];
        snprintf(path, sizeof path, "routing.rules[%zu].provider", i);
        check_provider_ref(L, path, c->rules[i].line, c->rules[i].provider);
    }
    for (size_t i = 0; i < c->n_rl_providers; i++) {
        char *path;
        if (asprintf(&path, "rate_limiting.providers.%s", c->rl_providers[i].name) < 0)
            abort();
        check_provider_ref(L, path, L->rl_provider_lines[i], c->rl_providers[i].name);
        free(path);
    }
    if (!strcmp(c->cache_backend, "redis") && !c->redis_url)
        fail_sub(L, "caching.backend", L->cache_backend_line, "redis needs redis.url");
    if (c->ssl_enabled && !c->ssl_cert_file)
        fail_sub(L, "server.ssl.cert_file", L->ssl_line, "required when ssl is enabled");
    if (c->ssl_enabled && !c->ssl_key_file)
        fail_sub(L, "server.ssl.key_file", L->ssl_line, "required when ssl is enabled");
    if (c->dashboard_enabled && c->dashboard_port == c->port)
        fail_sub(L, "observability.dashboard.port", L->dashboard_port_line,
                 "must differ from server.port");
}

/* ---- entry points ---- */

static void loader_free(loader_t *L)
{
    free(L->path);
    free(L->fallback_lines);
    free(L->rl_provider_lines);
    free_strings(L->key_names, L->n_key_names);
}

__attribute__((format(printf, 3, 4))) static void doc_error(tg_config_errors_t *errs, int line,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(errs, "", line, fmt, ap);
    va_end(ap);
}

tg_config_t *tg_config_load_string(const char *yaml, size_t len, const char *name,
                                   tg_config_errors_t *errs)
{
    tg_config_errors_t local = {0};
    if (!errs)
        errs = &local;
    size_t n_before = errs->n;

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        doc_error(errs, (int)parser.problem_mark.line + 1, "YAML syntax error: %s%s%s",
                  parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
                  parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        tg_config_errors_free(&local);
        return NULL;
    }

    tg_config_t *c = config_new();
    c->source = xstrdup(name ? name : "<string>");
    loader_t L = {.doc = &doc, .cfg = c, .errs = errs};
    path_push(&L, "", false);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root) && root->type != YAML_MAPPING_NODE)
        doc_error(errs, line_of(root), "expected a mapping of sections (server, providers, ...)");
    else if (root)
        walk_map(&L, root, root_key, NULL);

    /* One document per file: a second one is almost surely a mistake. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        doc_error(errs, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
                  parser.problem ? parser.problem : "unknown problem");
    } else {
        yaml_node_t *r2 = yaml_document_get_root_node(&extra);
        if (r2)
            doc_error(errs, line_of(r2), "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }

    config_finish(c); /* the built-in mock can be referred to */
    cross_check(&L);
    loader_free(&L);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);

    if (errs->n != n_before) {
        config_free(c);
        tg_config_errors_free(&local);
        return NULL;
    }
    return c;
}

tg_config_t *tg_config_load_file(const char *path, tg_config_errors_t *errs)
{
    tg_config_errors_t local = {0};
    if (!errs)
        errs = &local;
    FILE *f = fopen(path, "rb");
    if (!f) {
        doc_error(errs, 0, "cannot open %s: %s", path, strerror(errno));
        tg_config_errors_free(&local);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0 || len > MAX_FILE_BYTES)
            break;
    }
    bool bad = ferror(f) || len > MAX_FILE_BYTES;
    fclose(f);
    if (bad) {
        doc_error(errs, 0, len > MAX_FILE_BYTES ? "%s is larger than 16 MiB" : "cannot read %s",
                  path);
        free(buf);
        tg_config_errors_free(&local);
        return NULL;
    }
    tg_config_t *c = tg_config_load_string(buf, len, path, errs);
    free(buf);
    tg_config_errors_free(&local);
    return c;
}
