/*
 * cost.h — what a request cost, in exact integer arithmetic (SPEC §7).
 *
 * Prices come from the built-in table (prices.c, USD per million tokens),
 * overridden by a price list in LiteLLM's format (`cost_tracking.prices_file`,
 * USD per token; price_file.c), overridden in turn by `cost_tracking.pricing`
 * (USD per 1,000 tokens). Internally a
 * price is an integer number of femto-dollars (1e-15 USD) per token, so every
 * published price (down to $0.0001 per million tokens) and every configured
 * one (down to 1e-12 USD per 1,000 tokens) is exact; a request's cost is
 * summed exactly and rounded once, half up, to the nano-dollar (1e-9 USD).
 *
 * Pure functions over immutable data: any thread.
 */
#ifndef TG_COST_H
#define TG_COST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/usage.h"

struct tg_config;

/** Femto-dollars per token from USD per million tokens (2.50 -> 2500000000). */
#define TG_PRICE_PER_MTOK(usd) ((int64_t)((usd)*1e9 + 0.5))

/** One model's prices, femto-USD per token. */
typedef struct {
    int64_t input;        /* uncached input tokens */
    int64_t output;       /* output tokens, reasoning included */
    int64_t cached_input; /* input tokens read from the provider's prompt cache */
    int64_t cache_write;  /* input tokens written to the provider's prompt cache */
    /* Long-context tier: when prompt_tokens > long_above, every token of the
     * request is charged at the long_* prices instead (Anthropic 1M-context,
     * Gemini >200k, OpenAI >272k). long_above == 0: no tier. */
    int64_t long_above;
    int64_t long_input, long_output, long_cached_input, long_cache_write;
    int64_t max_output; /* the model's maximum output tokens; 0 when unknown */
} tg_price_t;

/** A row of the built-in table (prices.c). */
typedef struct {
    const char *key; /* model name or prefix of a dated version */
    tg_price_t price;
} tg_price_entry_t;

extern const tg_price_entry_t tg_cost_builtin[];
extern const unsigned tg_cost_builtin_count;

/**
 * A price list read from a file in LiteLLM's model_prices_and_context_window
 * format (price_file.c): immutable once loaded, owned by the configuration
 * that named it (freed with it), read by any thread.
 */
typedef struct tg_price_list tg_price_list_t;

/** Largest prices file read, in bytes. */
#define TG_PRICE_FILE_MAX (32u << 20)

/**
 * Reads `path`. Returns the list, or NULL with a message naming the file in
 * err (what is wrong: too large, not JSON and where, a price that is not a
 * number). Entries without a per-token input price (images, audio) and
 * `sample_spec` are skipped; unknown keys are ignored.
 */
tg_price_list_t *tg_price_list_load(const char *path, char *err, size_t errlen);
/** Same from memory (tests); `name` stands for the file in messages. */
tg_price_list_t *tg_price_list_parse(const char *json, size_t len, const char *name, char *err,
                                     size_t errlen);
void tg_price_list_free(tg_price_list_t *list);
/** Number of priced models in the list. */
size_t tg_price_list_count(const tg_price_list_t *list);
/**
 * The list's price for `model` at `provider` (may be NULL): the longest key
 * that tg_cost_key_matches; a key written `<litellm_provider>/<model>` counts
 * as <model>; among equal keys the entry whose litellm_provider is
 * `provider`, then one written without a prefix. *matched gets the key as
 * written in the file (lives as long as the list).
 */
bool tg_price_list_find(const tg_price_list_t *list, const char *provider, const char *model,
                        tg_price_t *out, const char **matched);

/**
 * True when pricing key `key` prices model `model` (case-insensitive):
 * `model` equals `key`, or is `key` followed by one version suffix:
 *   -YYYYMMDD  -YYYY-MM-DD  -NNNN (e.g. -0613, -2411)  -NNN (e.g. -001)
 *   -latest    @anything (Vertex style, e.g. @20241022)
 * So `claude-3-5-sonnet` prices `claude-3-5-sonnet-20241022` but `gpt-4o`
 * does not price `gpt-4o-mini` and `claude-opus-4` does not price
 * `claude-opus-4-5`. A leading "models/" (Gemini's spelling) and a trailing
 * "[1m]" (Claude Code's name for the 1M-token context) are ignored.
 */
bool tg_cost_key_matches(const char *key, const char *model);

/**
 * The price for `model`: the longest matching key among the configured
 * overrides (cfg may be NULL), else the configured prices file's
 * (cfg->price_list), else the longest matching key of the built-in table.
 * A configured price always wins over the file, the file over the table.
 * Returns false when the model has no price. *matched (may be NULL) gets the
 * key that matched.
 */
bool tg_cost_price(const struct tg_config *cfg, const char *model, tg_price_t *out,
                   const char **matched);

/**
 * tg_cost_price for `model` as sent to `provider` (may be NULL): a
 * configured key `<provider>/<key>` (provider name case-insensitive, <key>
 * matched as above) prices it there, before every other key, so two
 * providers of one model can be priced apart. Every other key still counts
 * as a whole model name (`openai/gpt-4o` also prices the model of that name
 * at OpenRouter).
 */
bool tg_cost_price_at(const struct tg_config *cfg, const char *provider, const char *model,
                      tg_price_t *out, const char **matched);

/**
 * The maximum output tokens of `model` at `provider`: from the prices file,
 * else the built-in table (`cost_tracking.pricing` entries carry none).
 * 0 when unknown.
 */
int64_t tg_cost_max_output(const struct tg_config *cfg, const char *provider, const char *model);

/**
 * One number to compare what `model` costs at `provider` (the `cost`
 * load-balancing strategy): the price of a request with three input tokens
 * for each output token, 3 x input + output, in femto-USD (saturated at
 * INT64_MAX). Uncached, below any long-context tier. -1 when unpriced, so
 * that an unpriced model is never taken for a free one.
 */
int64_t tg_cost_rank_price(const struct tg_config *cfg, const char *provider, const char *model);

/**
 * Cost of `u` at `p`, in nano-USD, rounded half up:
 *   (prompt - cached - cache_write) * input + cached * cached_input
 *   + cache_write * cache_write_price + completion * output
 * (prompt_tokens includes cached and cache-write tokens, see usage.h; an
 * unknown cached or cache-write count is taken as 0). Returns -1 when
 * prompt_tokens or completion_tokens is unknown (-1): an unknown cost is
 * never reported as free. (A model with no output price, an embedding
 * model, needs no completion count.)
 */
int64_t tg_cost_compute(const tg_price_t *p, const tg_usage_t *u);

/** tg_cost_price + tg_cost_compute: nano-USD, or -1 when unpriced or unknown. */
int64_t tg_cost_for(const struct tg_config *cfg, const char *model, const tg_usage_t *u);

/** tg_cost_price_at + tg_cost_compute: the same, with prices keyed per provider. */
int64_t tg_cost_for_provider(const struct tg_config *cfg, const char *provider, const char *model,
                             const tg_usage_t *u);

/** nano-USD -> USD as a double (for metrics); -1 stays -1. */
double tg_cost_usd(int64_t nusd);

/** nano-USD as an exact decimal ("0.00035", "12", "0") into out (>= 32 bytes). */
void tg_cost_format(int64_t nusd, char out[32]);

#endif
