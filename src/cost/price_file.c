/*
 * price_file.c — a price list in LiteLLM's model_prices_and_context_window
 * format (`cost_tracking.prices_file`), so that prices can be refreshed
 * without a new release (see cost.h, docs/observability.md).
 *
 * The file is one JSON object: model key → entry. Of an entry we read
 * input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
 * cache_creation_input_token_cost (USD per token), their long-context forms
 * `<name>_above_<N>k_tokens`, max_output_tokens and litellm_provider; every
 * other key (mode, supports_*, batch and priority prices, ...) is ignored.
 * `sample_spec` (the format's own description) and entries without a
 * per-token input price (image, audio, rerank models) are skipped. A price
 * that is not a non-negative number, an entry that is not an object, or a
 * file that is not a JSON object is an error naming the file and the model,
 * so that a broken download is refused at start or reload rather than
 * pricing requests wrongly.
 *
 * Loaded on the config loader's thread (main); the list is immutable after
 * that and read by any thread.
 */
#include "cost/cost.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *key;        /* as written in the file: error messages, *matched */
    const char *bare; /* key without its "<litellm_provider>/" prefix (points into key) */
    char *provider;   /* litellm_provider, may be NULL */
    tg_price_t price;
} price_row_t;

struct tg_price_list {
    price_row_t *rows;
    size_t n;
};

/* Model keys longer than this are not model names. */
#define MAX_KEY 256
/* USD per token above this is a broken file ($1000 per token). */
#define MAX_USD_PER_TOKEN 1000.0

__attribute__((format(printf, 3, 4))) static void say(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

/* USD per token -> femto-USD per token. false: not a price. */
static bool femto(const json_t *v, int64_t *out)
{
    if (!json_is_number(v))
        return false;
    double usd = json_number_value(v);
    if (!(usd >= 0) || usd > MAX_USD_PER_TOKEN)
        return false;
    *out = (int64_t)llround(usd * 1e15);
    return true;
}

/* The four price names and where each goes, base and long tier. */
static const struct {
    const char *name;
    size_t base, lng;
} price_keys[] = {
    {"input_cost_per_token", offsetof(tg_price_t, input), offsetof(tg_price_t, long_input)},
    {"output_cost_per_token", offsetof(tg_price_t, output), offsetof(tg_price_t, long_output)},
    {"cache_read_input_token_cost", offsetof(tg_price_t, cached_input),
     offsetof(tg_price_t, long_cached_input)},
    {"cache_creation_input_token_cost", offsetof(tg_price_t, cache_write),
     offsetof(tg_price_t, long_cache_write)},
};
#define N_PRICE_KEYS (sizeof price_keys / sizeof price_keys[0])

static int64_t *slot(tg_price_t *p, size_t off)
{
    return (int64_t *)(void *)((char *)p + off);
}

/* "<name>_above_<N>k_tokens" -> N * 1000; 0 when `k` is not that form of name. */
static int64_t tier_of(const char *k, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(k, name, n) || strncmp(k + n, "_above_", 7))
        return 0;
    const char *d = k + n + 7;
    int64_t v = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)d[digits]) && digits < 7)
        v = v * 10 + (d[digits++] - '0');
    if (!digits || strcmp(d + digits, "k_tokens"))
        return 0;
    return v * 1000;
}

/* Reads one entry into *row. 1: priced, 0: skipped, -1: error (in err). */
static int read_entry(const char *name, const char *key, json_t *e, price_row_t *row, char *err,
                      size_t errlen)
{
    if (!json_is_object(e)) {
        say(err, errlen, "%s: model \"%s\": expected an object", name, key);
        return -1;
    }
    if (!json_object_get(e, "input_cost_per_token"))
        return 0; /* priced per image, second, query ...: not ours */
    tg_price_t p = {0};
    bool given[N_PRICE_KEYS] = {false}, long_given[N_PRICE_KEYS] = {false};
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        for (size_t i = 0; i < N_PRICE_KEYS; i++) {
            int64_t above = 0;
            bool base = !strcmp(k, price_keys[i].name);
            if (!base && !(above = tier_of(k, price_keys[i].name)))
                continue;
            int64_t f;
            if (!femto(v, &f)) {
                say(err, errlen,
                    "%s: model \"%s\": %s is not a price (a number >= 0, USD per token)", name, key,
                    k);
                return -1;
            }
            if (base) {
                *slot(&p, price_keys[i].base) = f;
                given[i] = true;
            } else if (!p.long_above || p.long_above == above) {
                /* one tier per model: the first threshold the file names */
                p.long_above = above;
                *slot(&p, price_keys[i].lng) = f;
                long_given[i] = true;
            }
        }
    }
    /* Not given: no cache discount, no cache-write charge (prices.c's rules). */
    if (!given[2])
        p.cached_input = p.input;
    if (!given[3])
        p.cache_write = p.input;
    if (p.long_above) {
        /* a long price not given is the long input's for the input kinds, the
         * base price otherwise */
        if (!long_given[0])
            p.long_input = p.input;
        if (!long_given[1])
            p.long_output = p.output;
        if (!long_given[2])
            p.long_cached_input = given[2] ? p.cached_input : p.long_input;
        if (!long_given[3])
            p.long_cache_write = given[3] ? p.cache_write : p.long_input;
    }
    json_t *mo = json_object_get(e, "max_output_tokens");
    if (json_is_integer(mo) && json_integer_value(mo) > 0)
        p.max_output = json_integer_value(mo);
    else if (json_is_real(mo) && json_real_value(mo) >= 1 && json_real_value(mo) < 1e12)
        p.max_output = (int64_t)json_real_value(mo);
    json_t *pv = json_object_get(e, "litellm_provider");
    row->key = xstrdup(key);
    row->provider = json_is_string(pv) ? xstrdup(json_string_value(pv)) : NULL;
    row->bare = row->key;
    size_t pl = row->provider ? strlen(row->provider) : 0;
    if (pl && !strncasecmp(row->key, row->provider, pl) && row->key[pl] == '/' && row->key[pl + 1])
        row->bare = row->key + pl + 1;
    row->price = p;
    return 1;
}

tg_price_list_t *tg_price_list_parse(const char *json, size_t len, const char *name, char *err,
                                     size_t errlen)
{
    if (len > TG_PRICE_FILE_MAX) {
        say(err, errlen, "%s: larger than %u MiB", name, TG_PRICE_FILE_MAX >> 20);
        return NULL;
    }
    json_error_t je;
    /* a key written twice keeps its last entry, as Python's json (LiteLLM's
     * own reader) does: a refresh must not fail on what upstream accepts */
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        say(err, errlen, "%s: not JSON: %s (line %d, column %d)", name, je.text, je.line,
            je.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        say(err, errlen, "%s: expected a JSON object of model names", name);
        json_decref(root);
        return NULL;
    }
    tg_price_list_t *list = calloc(1, sizeof *list);
    if (!list)
        abort();
    size_t cap = json_object_size(root);
    list->rows = calloc(cap ? cap : 1, sizeof *list->rows);
    if (!list->rows)
        abort();
    const char *key;
    json_t *e;
    json_object_foreach(root, key, e)
    {
        if (!strcmp(key, "sample_spec") || !*key || strlen(key) > MAX_KEY)
            continue;
        int r = read_entry(name, key, e, &list->rows[list->n], err, errlen);
        if (r < 0) {
            json_decref(root);
            tg_price_list_free(list);
            return NULL;
        }
        list->n += (size_t)r;
    }
    json_decref(root);
    return list;
}

tg_price_list_t *tg_price_list_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        say(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len == cap) {
            if (cap > TG_PRICE_FILE_MAX)
                break;
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    tg_price_list_t *list = NULL;
    if (bad)
        say(err, errlen, "cannot read %s", path);
    else
        list = tg_price_list_parse(buf, len, path, err, errlen);
    free(buf);
    return list;
}

void tg_price_list_free(tg_price_list_t *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free(list->rows[i].key);
        free(list->rows[i].provider);
    }
    free(list->rows);
    free(list);
}

size_t tg_price_list_count(const tg_price_list_t *list)
{
    return list ? list->n : 0;
}

bool tg_price_list_find(const tg_price_list_t *list, const char *provider, const char *model,
                        tg_price_t *out, const char **matched)
{
    if (!list || !model)
        return false;
    const price_row_t *best = NULL;
    size_t best_len = 0;
    int best_rank = -1;
    for (size_t i = 0; i < list->n; i++) {
        const price_row_t *r = &list->rows[i];
        if (!tg_cost_key_matches(r->bare, model))
            continue;
        size_t len = strlen(r->bare);
        /* rank: 2 the provider's own entry, 1 an unprefixed key, 0 else */
        int rank = provider && r->provider && !strcasecmp(r->provider, provider) ? 2
                   : r->bare == r->key                                           ? 1
                                                                                 : 0;
        if (len > best_len || (len == best_len && rank > best_rank)) {
            best = r;
            best_len = len;
            best_rank = rank;
        }
    }
    if (!best)
        return false;
    *out = best->price;
    if (matched)
        *matched = best->key;
    return true;
}
