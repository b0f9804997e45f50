/*
 * config.c — YAML → tg_config_t: the walk over the document, paths and
 * errors with line numbers, scalar conversion after ${VAR} expansion, and
 * the reading of key tables.
 *
 * Where the keys are declared: each module declares the keys of its section
 * in a small const table beside its code (src/server/server_conf.c,
 * src/providers/provider_conf.c, src/router/router_conf.c,
 * src/cache/cache_conf.c, src/ratelimit/ratelimit_conf.c,
 * src/cost/cost_conf.c, src/auth/auth_conf.c, src/store/store_conf.c), the
 * way nginx modules declare their directives (ngx_command_t with offsetof
 * slots). Those files include only config/config.h and config/config_keys.h,
 * so no include cycle arises: config never includes a higher module's
 * header; it names the tables through extern declarations in
 * config_keys.h, resolved at link time. The sections no single module owns
 * (observability, logging — core/log.c sits below config — and redis) and
 * the top-level list of sections are in config_sections.c. Shapes a row
 * cannot describe (provider maps, rules, lists of keys, alerts, ...) are
 * custom rows whose readers are in config_shapes.c; the object's lifecycle
 * is in config_object.c.
 *
 * A load is one pass over a libyaml document: every key is matched against
 * its table, every scalar is ${VAR}-expanded then converted, and every
 * problem is appended to the caller's error list with its dotted path and
 * 1-based line (the walk never stops at the first one). Names that refer to
 * providers are checked once the whole file is read, since sections may
 * come in any order. Any error: the partial object is freed and NULL
 * returned. The process is never exited and nothing printed.
 *
 * Invariants of a returned object: it is never modified again; the built-in
 * "mock" provider is last (unless the file defines its own "mock"); every
 * provider but a mock one has a base_url without trailing '/'; `refs` is 1.
 * Loads run on the thread that asks (main: start-up, SIGHUP).
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Guard against alias bombs: a config file has a few hundred nodes. */
#define MAX_VISITS 200000
/* Keys in one mapping (pricing tables are the largest: hundreds). */
#define MAX_KEYS 10000
/* Config files are small; anything bigger is a mistake. */
#define MAX_FILE_BYTES (16 * 1024 * 1024)

/* ---- the loader: path tracking, errors, tree walking ---- */

size_t tg_config_path_push(loader_t *L, const char *seg, bool index)
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

void tg_config_path_pop(loader_t *L, size_t mark)
{
    L->path_len = mark;
    L->path[mark] = '\0';
}

int tg_config_line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

static void add_error(tg_config_errors_t *errs, const char *path, int line, const char *fmt,
                      va_list ap)
{
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    tg_config_error_t *e = TG_PUSH(errs->items, errs->n);
    e->path = tg_config_strdup(path ? path : "");
    e->line = line;
    e->message = msg;
}

/* An error at the current path. */
void tg_config_fail(loader_t *L, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(L->errs, L->path ? L->path : "", line, fmt, ap);
    va_end(ap);
}

/* An error at the current path plus `sub` (a key that is missing, say). */
void tg_config_fail_sub(loader_t *L, const char *sub, int line, const char *fmt, ...)
{
    size_t mark = tg_config_path_push(L, sub, false);
    va_list ap;
    va_start(ap, fmt);
    add_error(L->errs, L->path, line, fmt, ap);
    va_end(ap);
    tg_config_path_pop(L, mark);
}

static bool too_big(loader_t *L, const yaml_node_t *n)
{
    if (++L->visits == MAX_VISITS)
        tg_config_fail(L, tg_config_line_of(n), "too many nodes (alias expansion?)");
    return L->visits >= MAX_VISITS;
}

bool tg_config_is_null(const yaml_node_t *n)
{
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/*
 * Calls fn for each key of a mapping with the path extended by the key; fn
 * returns false for a key it does not know. A null node is an empty mapping.
 */
void tg_config_walk_map(loader_t *L, yaml_node_t *node, tg_config_key_fn fn, void *ctx)
{
    if (tg_config_is_null(node))
        return;
    if (node->type != YAML_MAPPING_NODE) {
        tg_config_fail(L, tg_config_line_of(node), "expected a mapping");
        return;
    }
    yaml_node_pair_t *start = node->data.mapping.pairs.start;
    yaml_node_pair_t *top = node->data.mapping.pairs.top;
    if (top - start > MAX_KEYS) {
        /* Also keeps the quadratic duplicate check below cheap. */
        tg_config_fail(L, tg_config_line_of(node), "more than %d keys", MAX_KEYS);
        return;
    }
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pair->value);
        if (too_big(L, k))
            return;
        if (!k || k->type != YAML_SCALAR_NODE || tg_config_is_null(k) ||
            strlen((char *)k->data.scalar.value) != k->data.scalar.length) {
            tg_config_fail(L, tg_config_line_of(k ? k : node), "a key must be a non-empty string");
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool dup = false;
        for (yaml_node_pair_t *q = start; q < pair && !dup; q++) {
            yaml_node_t *qk = yaml_document_get_node(L->doc, q->key);
            dup = qk && qk->type == YAML_SCALAR_NODE &&
                  !strcmp((const char *)qk->data.scalar.value, key);
        }
        size_t mark = tg_config_path_push(L, key, false);
        if (dup)
            tg_config_fail(L, tg_config_line_of(k), "duplicate key");
        else if (!fn(L, &(entry_t){key, k, v, ctx}))
            tg_config_fail(L, tg_config_line_of(k), "unknown key");
        tg_config_path_pop(L, mark);
    }
}

/* Calls fn for each item of a sequence, path extended by "[i]" (0-based). */
void tg_config_walk_list(loader_t *L, yaml_node_t *node, tg_config_item_fn fn, void *ctx)
{
    if (tg_config_is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        tg_config_fail(L, tg_config_line_of(node), "expected a list");
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
        size_t mark = tg_config_path_push(L, idx, true);
        fn(L, &(entry_t){NULL, NULL, v, ctx});
        tg_config_path_pop(L, mark);
    }
}

/* ---- scalar values ---- */

/*
 * The text of a scalar after ${VAR} expansion ("" for a YAML null), or NULL
 * after reporting "expected <what>" (not a scalar) or a bad ${...}.
 */
static char *scalar_text(loader_t *L, yaml_node_t *v, const char *what)
{
    if (tg_config_is_null(v))
        return tg_config_strdup("");
    if (v->type != YAML_SCALAR_NODE) {
        tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
        return NULL;
    }
    const char *raw = (const char *)v->data.scalar.value;
    if (strlen(raw) != v->data.scalar.length) {
        tg_config_fail(L, tg_config_line_of(v), "must not contain a NUL character");
        return NULL;
    }
    char *out;
    const char *why;
    if (tg_config_expand_env(raw, &out, &why) < 0) {
        tg_config_fail(L, tg_config_line_of(v), "%s", why);
        return NULL;
    }
    return out;
}

/*
 * Text of a scalar that sets a value, or NULL when it is empty (after
 * expansion) — which means "not set": the default stays — or invalid.
 */
char *tg_config_value_text(loader_t *L, yaml_node_t *v, const char *what)
{
    char *s = scalar_text(L, v, what);
    if (s && !*s) {
        free(s);
        return NULL;
    }
    return s;
}

void tg_config_get_string(loader_t *L, yaml_node_t *v, char **dst)
{
    char *s = tg_config_value_text(L, v, "a string");
    if (s) {
        free(*dst);
        *dst = s;
    }
}

static void get_bool(loader_t *L, yaml_node_t *v, bool *dst)
{
    char *s = tg_config_value_text(L, v, "true or false");
    if (s && tg_config_parse_bool(s, dst) < 0)
        tg_config_fail(L, tg_config_line_of(v), "expected true or false");
    free(s);
}

static void get_int64(loader_t *L, yaml_node_t *v, int64_t min, int64_t max, int64_t *dst)
{
    char what[80];
    if (max == INT64_MAX)
        snprintf(what, sizeof what, "an integer >= %lld", (long long)min);
    else
        snprintf(what, sizeof what, "an integer from %lld to %lld", (long long)min, (long long)max);
    char *s = tg_config_value_text(L, v, what);
    int64_t n;
    if (s && (tg_config_parse_int(s, &n) < 0 || n < min || n > max))
        tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
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
    char *s = tg_config_value_text(L, v, what);
    double d;
    if (s && (tg_config_parse_number(s, &d) < 0 || d < min || (exclusive && d == min)))
        tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
    else if (s)
        *dst = d;
    free(s);
}

/* A duration of at least min_ms. */
static void get_duration(loader_t *L, yaml_node_t *v, int64_t min_ms, int64_t *dst)
{
    static const char what[] = "a duration such as 30 (seconds), 500ms, 30s, 5m, 1h or 1d";
    char *s = tg_config_value_text(L, v, what);
    int64_t ms;
    if (s && tg_config_parse_duration(s, &ms) < 0)
        tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
    else if (s && ms < min_ms)
        tg_config_fail(L, tg_config_line_of(v), "must be at least %lld ms", (long long)min_ms);
    else if (s)
        *dst = ms;
    free(s);
}

/* A size of at least min bytes. */
static void get_size(loader_t *L, yaml_node_t *v, int64_t min, int64_t *dst)
{
    static const char what[] = "a size such as 512 (bytes), 64KB, 10MB or 1GB";
    char *s = tg_config_value_text(L, v, what);
    int64_t n;
    if (s && tg_config_parse_size(s, &n) < 0)
        tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
    else if (s && n < min)
        tg_config_fail(L, tg_config_line_of(v), "must be at least %lld bytes", (long long)min);
    else if (s)
        *dst = n;
    free(s);
}

/* One of `names` (NULL-terminated), case-insensitive; *dst gets the index. */
bool tg_config_get_enum(loader_t *L, yaml_node_t *v, const char *const *names, int *dst)
{
    char what[160] = "one of";
    for (size_t i = 0; names[i]; i++) {
        size_t n = strlen(what);
        snprintf(what + n, sizeof what - n, "%s %s", i ? "," : ":", names[i]);
    }
    char *s = tg_config_value_text(L, v, what);
    if (!s)
        return false;
    for (int i = 0; names[i]; i++) {
        if (!strcasecmp(s, names[i])) {
            *dst = i;
            free(s);
            return true;
        }
    }
    tg_config_fail(L, tg_config_line_of(v), "expected %s", what);
    free(s);
    return false;
}

/* As get_enum, storing the canonical name as a string. */
void tg_config_get_enum_name(loader_t *L, yaml_node_t *v, const char *const *names, char **dst)
{
    int i;
    if (tg_config_get_enum(L, v, names, &i)) {
        free(*dst);
        *dst = tg_config_strdup(names[i]);
    }
}

/* An HTTP header name or Helicone property name: an RFC 9110 token. */
bool tg_config_is_token(const char *s)
{
    return *s && strspn(s, "!#$%&'*+-.^_`|~0123456789"
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(s);
}

bool tg_config_has_prefix_ci(const char *s, const char *prefix)
{
    return !strncasecmp(s, prefix, strlen(prefix));
}

/* A URL that starts with one of `schemes`, with no blank or control byte. */
static void get_url(loader_t *L, yaml_node_t *v, const char *const *schemes, const char *expect,
                    char **dst)
{
    char *s = tg_config_value_text(L, v, "a URL");
    if (!s)
        return;
    bool ok = false;
    for (size_t i = 0; schemes[i] && !ok; i++)
        ok = tg_config_has_prefix_ci(s, schemes[i]) && s[strlen(schemes[i])];
    for (const char *p = s; *p && ok; p++)
        ok = !isspace((unsigned char)*p) && !iscntrl((unsigned char)*p);
    if (!ok) {
        tg_config_fail(L, tg_config_line_of(v), "expected %s", expect);
        free(s);
        return;
    }
    free(*dst);
    *dst = s;
}

/* A log level, "warning" stored as "warn". */
static void get_log_level(loader_t *L, yaml_node_t *v, char **dst)
{
    static const char *const log_levels[] = {"debug", "info", "warn", "warning", "error", NULL};
    int i;
    if (tg_config_get_enum(L, v, log_levels, &i)) {
        free(*dst);
        *dst = tg_config_strdup(!strcmp(log_levels[i], "warning") ? "warn" : log_levels[i]);
    }
}

/* Where strings_item puts a string: a list slot, its count, and whether
 * each item must be an address or CIDR. */
typedef struct {
    char ***items;
    size_t *n;
    bool addresses;
} strings_t;

/* A list item: a non-empty string; empty ones (unset ${VAR}) are skipped. */
static void strings_item(loader_t *L, const entry_t *e)
{
    const strings_t *sl = e->ctx;
    char *s = tg_config_value_text(L, e->v, sl->addresses ? "an IP address or CIDR" : "a string");
    if (!s)
        return;
    if (sl->addresses && tg_config_check_ip(s) < 0) {
        tg_config_fail(L, tg_config_line_of(e->v),
                       "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8)");
        free(s);
        return;
    }
    *TG_PUSH(*sl->items, *sl->n) = s;
}

/* ---- key tables ---- */

static const tg_conf_key_t *find_key(const tg_conf_key_t *table, const char *name)
{
    for (; table->name; table++)
        if (!strcmp(table->name, name))
            return table;
    return NULL;
}

/* Remembers the line of the key at the current path, for checks made
 * after the walk (which name a key that may sit anywhere in the file). */
static void remember_line(loader_t *L, int line)
{
    size_t n = L->n_seen;
    *TG_PUSH(L->seen_paths, L->n_seen) = tg_config_strdup(L->path);
    *TG_PUSH(L->seen_lines, n) = line;
}

int tg_config_seen_line(const loader_t *L, const char *sub)
{
    size_t len = L->path_len;
    for (size_t i = L->n_seen; i-- > 0;) {
        const char *p = L->seen_paths[i];
        if (strncmp(p, L->path, len))
            continue;
        if (!*sub ? !p[len] : (p[len] == '.' || !len) && !strcmp(p + len + (len ? 1 : 0), sub))
            return L->seen_lines[i];
    }
    return 0;
}

typedef struct {
    const tg_conf_key_t *table;
    void *base;
    void *ctx;
} table_ctx_t;

/* One key of a mapping read through a table: the row's type says how. */
static bool table_key(loader_t *L, const entry_t *e)
{
    const table_ctx_t *t = e->ctx;
    const tg_conf_key_t *k = find_key(t->table, e->key);
    if (!k)
        return false;
    bool nested = k->type == TG_CONF_SECTION || k->type == TG_CONF_CUSTOM;
    remember_line(L, tg_config_line_of(nested ? e->k : e->v));
    void *slot = (char *)t->base + k->off;
    int64_t max = k->max ? k->max : INT64_MAX;
    int i;
    switch (k->type) {
    case TG_CONF_STRING: tg_config_get_string(L, e->v, slot); break;
    case TG_CONF_BOOL: get_bool(L, e->v, slot); break;
    case TG_CONF_INT: get_int(L, e->v, (int)k->min, (int)max, slot); break;
    case TG_CONF_INT64: get_int64(L, e->v, k->min, max, slot); break;
    case TG_CONF_NUMBER:
        get_number(L, e->v, (double)k->min, k->flags & TG_CONF_EXCLUSIVE, slot);
        break;
    case TG_CONF_DURATION: get_duration(L, e->v, k->min, slot); break;
    case TG_CONF_SIZE: get_size(L, e->v, k->min, slot); break;
    case TG_CONF_ENUM:
        /* memcpy: the slot is an enum type, the same size as int. */
        if (tg_config_get_enum(L, e->v, k->names, &i))
            memcpy(slot, &i, sizeof i);
        break;
    case TG_CONF_ENUM_NAME: tg_config_get_enum_name(L, e->v, k->names, slot); break;
    case TG_CONF_LOG_LEVEL: get_log_level(L, e->v, slot); break;
    case TG_CONF_URL: get_url(L, e->v, k->names, k->expect, slot); break;
    case TG_CONF_STRINGS:
    case TG_CONF_ADDRESSES:
        tg_config_walk_list(L, e->v, strings_item,
                            &(strings_t){slot, (size_t *)((char *)t->base + k->count_off),
                                         k->type == TG_CONF_ADDRESSES});
        break;
    case TG_CONF_SECTION: tg_config_read_table(L, e->v, k->sub, slot, t->ctx); break;
    case TG_CONF_CUSTOM: k->read(L, k, &(entry_t){e->key, e->k, e->v, t->ctx}, t->base); break;
    }
    return true;
}

void tg_config_read_table(loader_t *L, yaml_node_t *node, const tg_conf_key_t *table, void *base,
                          void *ctx)
{
    tg_config_walk_map(L, node, table_key, &(table_ctx_t){table, base, ctx});
}

/* A table's default must convert: a broken one is a programming error. */
static void apply_default(const tg_conf_key_t *k, void *slot)
{
    const char *d = k->def;
    int rc = 0;
    int64_t n = 0;
    switch (k->type) {
    case TG_CONF_STRING:
    case TG_CONF_ENUM_NAME:
    case TG_CONF_LOG_LEVEL:
    case TG_CONF_URL:
        free(*(char **)slot);
        *(char **)slot = tg_config_strdup(d);
        break;
    case TG_CONF_BOOL: rc = tg_config_parse_bool(d, slot); break;
    case TG_CONF_INT:
        rc = tg_config_parse_int(d, &n);
        *(int *)slot = (int)n;
        break;
    case TG_CONF_INT64: rc = tg_config_parse_int(d, slot); break;
    case TG_CONF_NUMBER: rc = tg_config_parse_number(d, slot); break;
    case TG_CONF_DURATION: rc = tg_config_parse_duration(d, slot); break;
    case TG_CONF_SIZE: rc = tg_config_parse_size(d, slot); break;
    case TG_CONF_ENUM:
        rc = -1;
        for (int i = 0; k->names[i]; i++)
            if (!strcasecmp(k->names[i], d)) {
                memcpy(slot, &i, sizeof i);
                rc = 0;
            }
        break;
    default: rc = -1; break;
    }
    if (rc < 0)
        abort();
}

void tg_config_apply_defaults(const tg_conf_key_t *table, void *base)
{
    for (const tg_conf_key_t *k = table; k->name; k++) {
        void *slot = (char *)base + k->off;
        if (k->type == TG_CONF_SECTION)
            tg_config_apply_defaults(k->sub, slot);
        else if (k->def)
            apply_default(k, slot);
    }
}

void tg_config_free_slots(const tg_conf_key_t *table, void *base)
{
    for (const tg_conf_key_t *k = table; k->name; k++) {
        void *slot = (char *)base + k->off;
        switch (k->type) {
        case TG_CONF_STRING:
        case TG_CONF_ENUM_NAME:
        case TG_CONF_LOG_LEVEL:
        case TG_CONF_URL: free(*(char **)slot); break;
        case TG_CONF_STRINGS:
        case TG_CONF_ADDRESSES: {
            char **v = *(char ***)slot;
            size_t n = *(size_t *)((char *)base + k->count_off);
            for (size_t i = 0; i < n; i++)
                free(v[i]);
            free(v);
            break;
        }
        case TG_CONF_SECTION: tg_config_free_slots(k->sub, slot); break;
        default: break; /* custom rows: config_object.c frees what they built */
        }
    }
}

/* ---- checks across sections ---- */

static void check_provider_ref(loader_t *L, const char *path, int line, const char *name)
{
    if (tg_config_provider(L->cfg, name, strlen(name)))
        return;
    size_t mark = tg_config_path_push(L, path, false);
    tg_config_fail(L, line, "\"%s\" is not a configured provider", name);
    tg_config_path_pop(L, mark);
}

static void cross_check(loader_t *L)
{
    tg_config_t *c = L->cfg;
    if (c->default_provider)
        check_provider_ref(L, "routing.default_provider",
                           tg_config_seen_line(L, "routing.default_provider"), c->default_provider);
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
    if (c->prices_file) {
        /* a broken file fails the load: at start the gateway does not
         * start, on SIGHUP the running configuration (and prices) stays */
        char err[512];
        c->price_list = tg_cost_price_hooks.load(c->prices_file, err, sizeof err);
        if (!c->price_list)
            tg_config_fail_sub(L, "cost_tracking.prices_file",
                               tg_config_seen_line(L, "cost_tracking.prices_file"), "%s", err);
    }
    if (c->budget_timezone && !tg_tz_name_valid(c->budget_timezone))
        tg_config_fail_sub(L, "cost_tracking.budgets.timezone",
                           tg_config_seen_line(L, "cost_tracking.budgets.timezone"),
                           "unknown time zone '%s' (an IANA name such as UTC, Europe/Paris, "
                           "America/New_York)",
                           c->budget_timezone);
    if (!strcmp(c->cache_backend, "redis") && !c->redis_url)
        tg_config_fail_sub(L, "caching.backend", tg_config_seen_line(L, "caching.backend"),
                           "redis needs redis.url");
    int ssl_line = tg_config_seen_line(L, "server.ssl");
    if (c->ssl_enabled && !c->ssl_cert_file)
        tg_config_fail_sub(L, "server.ssl.cert_file", ssl_line, "required when ssl is enabled");
    if (c->ssl_enabled && !c->ssl_key_file)
        tg_config_fail_sub(L, "server.ssl.key_file", ssl_line, "required when ssl is enabled");
    /* The port's line, else the dashboard section's. */
    int port_line = tg_config_seen_line(L, "observability.dashboard.port");
    if (!port_line)
        port_line = tg_config_seen_line(L, "observability.dashboard");
    if (c->dashboard_enabled && c->dashboard_port == c->port)
        tg_config_fail_sub(L, "observability.dashboard.port", port_line,
                           "must differ from server.port");
}

/* ---- entry points ---- */

static void loader_free(loader_t *L)
{
    free(L->path);
    free(L->fallback_lines);
    free(L->rl_provider_lines);
    for (size_t i = 0; i < L->n_key_names; i++)
        free(L->key_names[i]);
    free(L->key_names);
    for (size_t i = 0; i < L->n_seen; i++)
        free(L->seen_paths[i]);
    free(L->seen_paths);
    free(L->seen_lines);
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

    tg_config_t *c = tg_config_new();
    c->source = tg_config_strdup(name ? name : "<string>");
    loader_t L = {.doc = &doc, .cfg = c, .errs = errs};
    tg_config_path_push(&L, "", false);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !tg_config_is_null(root) && root->type != YAML_MAPPING_NODE)
        doc_error(errs, tg_config_line_of(root),
                  "expected a mapping of sections (server, providers, ...)");
    else if (root)
        tg_config_read_table(&L, root, tg_config_sections, c, NULL);

    /* One document per file: a second one is almost surely a mistake. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        doc_error(errs, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
                  parser.problem ? parser.problem : "unknown problem");
    } else {
        yaml_node_t *r2 = yaml_document_get_root_node(&extra);
        if (r2)
            doc_error(errs, tg_config_line_of(r2), "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }

    tg_config_finish(c); /* the built-in mock can be referred to */
    cross_check(&L);
    loader_free(&L);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);

    if (errs->n != n_before) {
        tg_config_free(c);
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
