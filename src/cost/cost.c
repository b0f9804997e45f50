/*
 * cost.c — price look-up and cost arithmetic (see cost.h).
 *
 * Owns nothing at run time: it reads the immutable built-in table
 * (prices.c) and the caller's immutable configuration (with the prices
 * file it loaded, price_file.c). Invariants: prices and costs are integers
 * (femto-USD per token, nano-USD per request), a configured price beats
 * the prices file's, which beats a built-in one, a configured `<provider>/<key>`
 * beats a plain configured key for that provider, the longest matching key
 * wins, and an unknown token count or an unpriced model gives -1, never 0.
 *
 * Pure functions: any thread.
 */
#include "cost/cost.h"

#include "config/config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* The part of a model name after a pricing key: "" or one version suffix. */
static bool version_suffix(const char *s)
{
    if (!*s)
        return true;
    if (*s == '@')
        return s[1] != 0; /* Vertex: claude-3-5-sonnet@20240620 */
    if (*s != '-')
        return false;
    s++;
    size_t n = strlen(s);
    if (!strcasecmp(s, "latest"))
        return true;
    if ((n == 8 || n == 4 || n == 3) && all_digits(s, n))
        return true; /* -20241022, -0613 / -2411, -001 */
    if (n == 10 && all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) && s[7] == '-' &&
        all_digits(s + 8, 2))
        return true; /* -2024-08-06 */
    return false;
}

static const char *strip_models_prefix(const char *model)
{
    return strncmp(model, "models/", 7) == 0 ? model + 7 : model;
}

/* Claude Code's name for a model's 1M-token context: "claude-opus-4-8[1m]". */
static const char long_context_suffix[] = "[1m]";

bool tg_cost_key_matches(const char *key, const char *model)
{
    if (!key || !model || !*key)
        return false;
    model = strip_models_prefix(model);
    size_t k = strlen(key), m = strlen(model), s = sizeof long_context_suffix - 1;
    char base[256];
    if (m > s && m - s < sizeof base && !strcasecmp(model + m - s, long_context_suffix)) {
        memcpy(base, model, m - s);
        base[m - s] = 0;
        model = base;
    }
    if (strncasecmp(model, key, k) != 0)
        return false;
    return version_suffix(model + k);
}

/* USD per 1,000 tokens (config units) -> femto-USD per token. */
static int64_t from_per_1k(double usd_per_1k)
{
    if (!(usd_per_1k > 0))
        return 0;
    if (usd_per_1k > 9e6) /* absurd; keeps llround in range */
        usd_per_1k = 9e6;
    return (int64_t)llround(usd_per_1k * 1e12);
}

/* A configured entry in femto-USD per token. */
static void from_cfg(const tg_price_cfg_t *pc, tg_price_t *out)
{
    memset(out, 0, sizeof *out);
    out->input = from_per_1k(pc->input);
    out->output = from_per_1k(pc->output);
    /* not given: the input price (documented in docs/observability.md) */
    out->cached_input = pc->cached_input >= 0 ? from_per_1k(pc->cached_input) : out->input;
    out->cache_write = pc->cache_write >= 0 ? from_per_1k(pc->cache_write) : out->input;
}

/* The model part of `key` when it reads `<provider>/<model key>`, else NULL. */
static const char *provider_key_rest(const char *key, const char *provider)
{
    size_t n = provider ? strlen(provider) : 0;
    if (!n || strncasecmp(key, provider, n) != 0 || key[n] != '/')
        return NULL;
    return key + n + 1;
}

/* Every request looks its price up, and a gateway sees few distinct models:
 * each thread keeps its last answers, keyed by the config's generation (a
 * reloaded config is another key), the provider and the model. */
#define PRICE_MEMO 8
typedef struct {
    uint64_t generation; /* 0: empty */
    char provider[64];
    char model[128];
    bool found;
    tg_price_t price;
    const char *matched; /* in the config or the built-in table: lives as long */
    int64_t max_output;  /* tg_cost_max_output's answer */
} price_memo_t;
static _Thread_local price_memo_t memo[PRICE_MEMO];
static _Thread_local unsigned memo_next;

static bool price_lookup(const tg_config_t *cfg, const char *provider, const char *model,
                         tg_price_t *out, const char **matched);
static bool builtin_lookup(const char *model, tg_price_t *out, const char **matched);

static int64_t max_output_lookup(const tg_config_t *cfg, const char *provider, const char *model);

/* This thread's memo of (cfg, provider, model), filled on a miss; NULL when
 * the names are too long to keep (then the caller looks up directly). */
static const price_memo_t *memo_get(const tg_config_t *cfg, const char *provider, const char *model)
{
    const char *pv = provider ? provider : "";
    if (!cfg || strlen(pv) >= sizeof memo[0].provider || strlen(model) >= sizeof memo[0].model)
        return NULL;
    for (unsigned i = 0; i < PRICE_MEMO; i++)
        if (memo[i].generation == cfg->generation && !strcmp(memo[i].model, model) &&
            !strcmp(memo[i].provider, pv))
            return &memo[i];
    price_memo_t *e = &memo[memo_next++ % PRICE_MEMO];
    e->found = price_lookup(cfg, provider, model, &e->price, &e->matched);
    e->max_output = max_output_lookup(cfg, provider, model);
    e->generation = cfg->generation;
    snprintf(e->provider, sizeof e->provider, "%s", pv);
    snprintf(e->model, sizeof e->model, "%s", model);
    return e;
}

bool tg_cost_price_at(const tg_config_t *cfg, const char *provider, const char *model,
                      tg_price_t *out, const char **matched)
{
    if (!model || !*model)
        return false;
    const price_memo_t *m = memo_get(cfg, provider, model);
    if (!m)
        return price_lookup(cfg, provider, model, out, matched);
    if (m->found) {
        *out = m->price;
        if (matched)
            *matched = m->matched;
    }
    return m->found;
}

static bool price_lookup(const tg_config_t *cfg, const char *provider, const char *model,
                         tg_price_t *out, const char **matched)
{
    /* Configured overrides first: they always win; among them a key for
     * this provider beats a plain model key, then the longest key wins. */
    const tg_price_cfg_t *best_cfg = NULL;
    size_t best_len = 0;
    bool best_at_provider = false;
    for (size_t i = 0; cfg && i < cfg->n_pricing; i++) {
        const tg_price_cfg_t *pc = &cfg->pricing[i];
        const char *rest = provider_key_rest(pc->model, provider);
        if (rest && tg_cost_key_matches(rest, model)) {
            size_t len = strlen(rest);
            if (!best_at_provider || len > best_len) {
                best_cfg = pc;
                best_len = len;
                best_at_provider = true;
            }
            continue;
        }
        size_t len = strlen(pc->model);
        if (!best_at_provider && len > best_len && tg_cost_key_matches(pc->model, model)) {
            best_cfg = pc;
            best_len = len;
        }
    }
    if (best_cfg) {
        from_cfg(best_cfg, out);
        if (matched)
            *matched = best_cfg->model;
        return true;
    }
    return cfg && tg_price_list_find(cfg->price_list, provider, model, out, matched)
               ? true
               : builtin_lookup(model, out, matched);
}

static bool builtin_key_lookup(const char *model, tg_price_t *out, const char **matched)
{
    size_t best_len = 0;
    const tg_price_entry_t *best = NULL;
    for (unsigned i = 0; i < tg_cost_builtin_count; i++) {
        const tg_price_entry_t *e = &tg_cost_builtin[i];
        size_t len = strlen(e->key);
        if (len > best_len && tg_cost_key_matches(e->key, model)) {
            best = e;
            best_len = len;
        }
    }
    if (!best)
        return false;
    *out = best->price;
    if (matched)
        *matched = best->key;
    return true;
}

/* OpenRouter's names of first-party models, `<vendor>/<model>`: OpenRouter
 * passes the vendor's own prices through, so the vendor's row prices them.
 * Anthropic's are written with dots there (anthropic/claude-sonnet-4.5). Only
 * vendors that alone serve their models: an open model's price depends on
 * who hosts it. */
static const struct {
    const char *prefix;
    bool dots;
} vendors[] = {{"openai/", false}, {"anthropic/", true}, {"google/", false}, {"x-ai/", false}};

static bool builtin_lookup(const char *model, tg_price_t *out, const char **matched)
{
    if (builtin_key_lookup(model, out, matched))
        return true;
    for (size_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++) {
        size_t n = strlen(vendors[i].prefix);
        if (strncasecmp(model, vendors[i].prefix, n) != 0)
            continue;
        char bare[160];
        if (snprintf(bare, sizeof bare, "%s", model + n) >= (int)sizeof bare)
            return false;
        for (char *c = bare; vendors[i].dots && *c; c++)
            if (*c == '.')
                *c = '-';
        return builtin_key_lookup(bare, out, matched);
    }
    return false;
}

bool tg_cost_price(const tg_config_t *cfg, const char *model, tg_price_t *out, const char **matched)
{
    return tg_cost_price_at(cfg, NULL, model, out, matched);
}

int64_t tg_cost_max_output(const tg_config_t *cfg, const char *provider, const char *model)
{
    if (!model || !*model)
        return 0;
    const price_memo_t *m = memo_get(cfg, provider, model);
    return m ? m->max_output : max_output_lookup(cfg, provider, model);
}

static int64_t max_output_lookup(const tg_config_t *cfg, const char *provider, const char *model)
{
    tg_price_t p;
    if (cfg && tg_price_list_find(cfg->price_list, provider, model, &p, NULL) && p.max_output > 0)
        return p.max_output;
    return builtin_lookup(model, &p, NULL) ? p.max_output : 0;
}

int64_t tg_cost_rank_price(const tg_config_t *cfg, const char *provider, const char *model)
{
    tg_price_t p;
    if (!tg_cost_price_at(cfg, provider, model, &p, NULL))
        return -1;
    /* 3:1 input:output, the usual shape of chat traffic (a prompt with its
     * history, a shorter answer); computed wide, then saturated. */
    __int128 v = (__int128)3 * p.input + p.output;
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

int64_t tg_cost_compute(const tg_price_t *p, const tg_usage_t *u)
{
    /* embeddings: no output price, and providers report no completion count */
    bool no_output = p && p->output == 0 && p->long_output == 0;
    if (!p || !u || u->prompt_tokens < 0 || (u->completion_tokens < 0 && !no_output))
        return -1;
    __int128 prompt = u->prompt_tokens;
    __int128 cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
    __int128 written = u->cache_write_tokens > 0 ? u->cache_write_tokens : 0;
    /* A provider reporting more cache tokens than prompt tokens: trust the
     * cache counts, charge no uncached input. */
    __int128 uncached = prompt - cached - written;
    if (uncached < 0)
        uncached = 0;
    bool lng = p->long_above > 0 && u->prompt_tokens > p->long_above;
    __int128 in = lng ? p->long_input : p->input;
    __int128 out = lng ? p->long_output : p->output;
    __int128 cr = lng ? p->long_cached_input : p->cached_input;
    __int128 cw = lng ? p->long_cache_write : p->cache_write;
    __int128 completion = u->completion_tokens > 0 ? u->completion_tokens : 0;
    __int128 femto = uncached * in + cached * cr + written * cw + completion * out;
    __int128 nano = (femto + 500000) / 1000000; /* half up; femto >= 0 */
    if (nano > INT64_MAX)
        nano = INT64_MAX;
    return (int64_t)nano;
}

int64_t tg_cost_for(const tg_config_t *cfg, const char *model, const tg_usage_t *u)
{
    return tg_cost_for_provider(cfg, NULL, model, u);
}

int64_t tg_cost_for_provider(const tg_config_t *cfg, const char *provider, const char *model,
                             const tg_usage_t *u)
{
    tg_price_t p;
    if (!tg_cost_price_at(cfg, provider, model, &p, NULL))
        return -1;
    return tg_cost_compute(&p, u);
}

double tg_cost_usd(int64_t nusd)
{
    if (nusd < 0)
        return -1;
    return (double)(nusd / 1000000000) + (double)(nusd % 1000000000) / 1e9;
}

void tg_cost_format(int64_t nusd, char out[32])
{
    /* by hand: it runs for every answer a budget applies to (its header) */
    bool neg = nusd < 0;
    uint64_t v = neg ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
    uint64_t whole = v / 1000000000u, frac = v % 1000000000u;
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    while (nd)
        out[o++] = digits[--nd];
    if (frac) {
        char f[9];
        for (int i = 8; i >= 0; i--, frac /= 10)
            f[i] = (char)('0' + frac % 10);
        int n = 9;
        while (f[n - 1] == '0') /* frac != 0: some digit is not 0 */
            n--;
        out[o++] = '.';
        memcpy(out + o, f, (size_t)n);
        o += (size_t)n;
    }
    out[o] = 0;
}
