/* Cost arithmetic and price matching (SPEC §7). */
#include "test.h"

#include "config/config.h"
#include "cost/cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static tg_config_t *cost_cfg(const char *yaml)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
    for (size_t i = 0; i < errs.n; i++)
        printf("    config: %s: %s (line %d)\n", errs.items[i].path, errs.items[i].message,
               errs.items[i].line);
    tg_config_errors_free(&errs);
    return c;
}

static tg_usage_t usage(long prompt, long completion, long cached, long written)
{
    tg_usage_t u = {prompt, completion, cached, written, -1};
    return u;
}

TEST(cost_key_matching)
{
    /* exact, and the dated forms of SPEC §7 */
    CHECK(tg_cost_key_matches("claude-3-5-sonnet", "claude-3-5-sonnet"));
    CHECK(tg_cost_key_matches("claude-3-5-sonnet", "claude-3-5-sonnet-20241022"));
    CHECK(tg_cost_key_matches("claude-3-5-sonnet", "claude-3-5-sonnet-latest"));
    CHECK(tg_cost_key_matches("claude-3-5-sonnet", "claude-3-5-sonnet@20240620"));
    CHECK(tg_cost_key_matches("gpt-4o", "gpt-4o-2024-08-06"));
    CHECK(tg_cost_key_matches("gpt-4", "gpt-4-0613"));
    CHECK(tg_cost_key_matches("mistral-large", "mistral-large-2411"));
    CHECK(tg_cost_key_matches("gemini-2.0-flash", "gemini-2.0-flash-001"));
    CHECK(tg_cost_key_matches("gemini-2.0-flash", "models/gemini-2.0-flash"));
    CHECK(tg_cost_key_matches("GPT-4o", "gpt-4o"));
    /* other models that merely share a prefix do not match */
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4o-mini"));
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4o-mini-2024-07-18"));
    CHECK(!tg_cost_key_matches("gpt-4", "gpt-4o"));
    CHECK(!tg_cost_key_matches("gpt-4", "gpt-4-1106-preview"));
    CHECK(!tg_cost_key_matches("claude-opus-4", "claude-opus-4-5"));
    CHECK(!tg_cost_key_matches("claude-opus-4", "claude-opus-4-5-20251101"));
    CHECK(!tg_cost_key_matches("o1", "o1-mini"));
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4o-12345"));
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4o-2024-8-06"));
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4o@"));
    CHECK(!tg_cost_key_matches("gpt-4o", "gpt-4"));
    CHECK(!tg_cost_key_matches("", "gpt-4"));
    CHECK(!tg_cost_key_matches("gpt-4o", NULL));
}

TEST(cost_builtin_lookup)
{
    tg_price_t p;
    const char *key = NULL;
    CHECK(tg_cost_price(NULL, "claude-3-5-sonnet-20241022", &p, &key));
    CHECK_STR(key, "claude-3-5-sonnet");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(3.00));
    CHECK_INT(p.output, TG_PRICE_PER_MTOK(15.00));
    CHECK_INT(p.cached_input, TG_PRICE_PER_MTOK(0.30));
    CHECK_INT(p.cache_write, TG_PRICE_PER_MTOK(3.75));
    /* the longest key wins: a dated version with its own price */
    CHECK(tg_cost_price(NULL, "gpt-4o-2024-05-13", &p, &key));
    CHECK_STR(key, "gpt-4o-2024-05-13");
    CHECK(tg_cost_price(NULL, "gpt-4o-2024-08-06", &p, &key));
    CHECK_STR(key, "gpt-4o");
    CHECK(tg_cost_price(NULL, "gpt-4o-mini-2024-07-18", &p, &key));
    CHECK_STR(key, "gpt-4o-mini");
    CHECK(tg_cost_price(NULL, "claude-sonnet-4-5-20250929", &p, &key));
    CHECK_STR(key, "claude-sonnet-4-5");
    CHECK(tg_cost_price(NULL, "claude-opus-4-5-20251101", &p, &key));
    CHECK_STR(key, "claude-opus-4-5");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(5.00));
    CHECK(tg_cost_price(NULL, "claude-opus-4-20250514", &p, &key));
    CHECK_STR(key, "claude-opus-4");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(15.00));
    /* unknown models are unpriced, not free */
    CHECK(!tg_cost_price(NULL, "my-local-llama", &p, &key));
    CHECK(!tg_cost_price(NULL, "", &p, &key));
    tg_usage_t u = usage(100, 100, 0, 0);
    CHECK_INT(tg_cost_for(NULL, "my-local-llama", &u), -1);
}

TEST(cost_builtin_table_sane)
{
    for (unsigned i = 0; i < tg_cost_builtin_count; i++) {
        const tg_price_entry_t *e = &tg_cost_builtin[i];
        const tg_price_t *p = &e->price;
        if (p->input <= 0 || p->output < 0 || p->cached_input <= 0 || p->cache_write <= 0 ||
            p->cached_input > p->input)
            tg_test_fail(__FILE__, __LINE__, "price of %s looks wrong", e->key);
        if (p->long_above && (p->long_input < p->input || p->long_output < p->output))
            tg_test_fail(__FILE__, __LINE__, "long tier of %s below the base price", e->key);
        for (unsigned j = i + 1; j < tg_cost_builtin_count; j++)
            if (!strcasecmp(e->key, tg_cost_builtin[j].key))
                tg_test_fail(__FILE__, __LINE__, "key %s twice", e->key);
        /* every key prices itself and its dated versions */
        tg_price_t got;
        const char *key;
        char dated[160];
        snprintf(dated, sizeof dated, "%s-20260101", e->key);
        if (!tg_cost_price(NULL, e->key, &got, &key) || strcmp(key, e->key))
            tg_test_fail(__FILE__, __LINE__, "%s does not price itself", e->key);
        if (!tg_cost_price(NULL, dated, &got, &key) || strcmp(key, e->key))
            tg_test_fail(__FILE__, __LINE__, "%s does not price %s", e->key, dated);
    }
    CHECK(tg_cost_builtin_count > 60);
}

TEST(cost_arithmetic_exact)
{
    tg_price_t p;
    /* OpenAI: prompt_tokens include the cached ones */
    CHECK(tg_cost_price(NULL, "gpt-4o", &p, NULL));
    tg_usage_t u = usage(1000, 500, 400, -1);
    /* 600 * 2.50 + 400 * 1.25 + 500 * 10.00 = 7000 USD per million = 0.007 */
    CHECK_INT(tg_cost_compute(&p, &u), 7000000);
    /* Anthropic after normalisation: prompt includes cache reads and writes */
    CHECK(tg_cost_price(NULL, "claude-3-5-sonnet-20241022", &p, NULL));
    u = usage(10000, 1000, 6000, 2000);
    /* 2000*3 + 6000*0.30 + 2000*3.75 + 1000*15 = 30300 per million */
    CHECK_INT(tg_cost_compute(&p, &u), 30300000);
    /* unknown cache counts count as 0 */
    u = usage(1000, 1000, -1, -1);
    CHECK_INT(tg_cost_compute(&p, &u), 18000000);
    /* nothing known, nothing claimed */
    u = usage(-1, 10, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), -1);
    u = usage(10, -1, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), -1);
    CHECK_INT(tg_cost_compute(NULL, &u), -1);
    /* zero tokens cost zero */
    u = usage(0, 0, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 0);
    /* more cache tokens than prompt tokens: no negative uncached input */
    u = usage(100, 0, 150, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 45000); /* 150 * 0.30 / 1e6 USD */
    /* sub-nano-dollar prices round half up, once per request */
    CHECK(tg_cost_price(NULL, "gemini-2.0-flash-lite", &p, NULL));
    u = usage(1, 0, 1, 0); /* $0.01875 per million = 18.75 nano-USD */
    CHECK_INT(tg_cost_compute(&p, &u), 19);
    u = usage(4, 0, 4, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 75);
    /* embeddings: no completion price */
    CHECK(tg_cost_price(NULL, "text-embedding-3-small", &p, NULL));
    u = usage(1000000, 0, -1, -1);
    CHECK_INT(tg_cost_compute(&p, &u), 20000000);
    u = usage(1000000, -1, -1, -1); /* embeddings report no completion count */
    CHECK_INT(tg_cost_compute(&p, &u), 20000000);
    /* large counts stay exact */
    CHECK(tg_cost_price(NULL, "o1-pro", &p, NULL));
    u = usage(100000000, 100000000, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), (int64_t)75000 * 1000000000);
}

TEST(cost_long_context_tier)
{
    tg_price_t p;
    CHECK(tg_cost_price(NULL, "claude-sonnet-4-20250514", &p, NULL));
    tg_usage_t u = usage(200000, 1000, 0, 0); /* at the threshold: base prices */
    CHECK_INT(tg_cost_compute(&p, &u), 600000000 + 15000000);
    u = usage(200001, 1000, 100000, 1); /* above: every token at the long prices */
    /* 100000*6 + 100000*0.60 + 1*7.50 + 1000*22.50 per million */
    CHECK_INT(tg_cost_compute(&p, &u), 600000000 + 60000000 + 7500 + 22500000);
    CHECK(tg_cost_price(NULL, "gemini-2.5-pro", &p, NULL));
    u = usage(300000, 0, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 750000000); /* 300000 * 2.50 */
}

TEST(cost_config_overrides)
{
    tg_config_t *c = cost_cfg("cost_tracking:\n"
                              "  pricing:\n"
                              "    deepseek-chat: {input: 0.00014, output: 0.00028}\n"
                              "    gpt-4o: {input: 0.0025, output: 0.01}\n"
                              "    claude-3-5-sonnet: {input: 0.003, output: 0.015}\n"
                              "    claude-3-5-sonnet-20241022:\n"
                              "      {input: 0.001, output: 0.002, cached_input: 0.0001,"
                              " cache_write: 0.00125}\n"
                              "    my-local-model: {input: 0.000001, output: 0.000002}\n");
    CHECK(c != NULL);
    if (!c)
        return;
    tg_price_t p;
    const char *key;
    /* USD per 1,000 tokens, exactly */
    CHECK(tg_cost_price(c, "deepseek-chat", &p, &key));
    CHECK_STR(key, "deepseek-chat");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(0.14));
    CHECK_INT(p.output, TG_PRICE_PER_MTOK(0.28));
    /* not given: cached input and cache write cost the input price */
    CHECK_INT(p.cached_input, p.input);
    CHECK_INT(p.cache_write, p.input);
    /* the seed's per-agent arithmetic: tokens x configured prices */
    tg_usage_t u = usage(1234, 567, -1, -1);
    /* 1234 * 0.00014/1000 + 567 * 0.00028/1000 = 0.00033152 USD */
    CHECK_INT(tg_cost_for(c, "deepseek-chat", &u), 331520);
    u = usage(1234, 567, 1000, -1); /* cached at the input price: same cost */
    CHECK_INT(tg_cost_for(c, "deepseek-chat", &u), 331520);
    /* a configured key beats the built-in one, and prices dated versions */
    CHECK(tg_cost_price(c, "claude-3-5-sonnet-20240620", &p, &key));
    CHECK_STR(key, "claude-3-5-sonnet");
    CHECK_INT(p.cached_input, p.input);
    /* the longest configured key wins, with its own cache prices */
    CHECK(tg_cost_price(c, "claude-3-5-sonnet-20241022", &p, &key));
    CHECK_STR(key, "claude-3-5-sonnet-20241022");
    CHECK_INT(p.cached_input, TG_PRICE_PER_MTOK(0.1));
    CHECK_INT(p.cache_write, TG_PRICE_PER_MTOK(1.25));
    /* models the config does not name fall back to the built-in table */
    CHECK(tg_cost_price(c, "gpt-4o-mini", &p, &key));
    CHECK_STR(key, "gpt-4o-mini");
    CHECK(tg_cost_price(c, "my-local-model", &p, &key));
    u = usage(1000000, 1000000, 0, 0);
    CHECK_INT(tg_cost_for(c, "my-local-model", &u), 3000000); /* $0.003 */
    tg_config_release(c);
}

TEST(cost_format_exact_decimal)
{
    char b[32];
    tg_cost_format(0, b);
    CHECK_STR(b, "0");
    tg_cost_format(350000, b);
    CHECK_STR(b, "0.00035");
    tg_cost_format(1, b);
    CHECK_STR(b, "0.000000001");
    tg_cost_format(1500000000, b);
    CHECK_STR(b, "1.5");
    tg_cost_format(12000000000, b);
    CHECK_STR(b, "12");
    tg_cost_format(-250000000, b);
    CHECK_STR(b, "-0.25");
    tg_cost_format(INT64_MAX, b);
    CHECK_STR(b, "9223372036.854775807");
    tg_cost_format(INT64_MIN, b);
    CHECK_STR(b, "-9223372036.854775808");
    tg_cost_format(1000000001, b);
    CHECK_STR(b, "1.000000001");
    CHECK(tg_cost_usd(-1) == -1);
    CHECK(tg_cost_usd(331520) == 0.00033152);
}

TEST(cost_prices_keyed_per_provider)
{
    tg_config_t *c = cost_cfg("cost_tracking:\n"
                              "  pricing:\n"
                              "    gpt-4o: {input: 0.002, output: 0.008}\n"
                              "    cheap/gpt-4o: {input: 0.001, output: 0.004}\n"
                              "    cheap/gpt: {input: 0.5, output: 0.5}\n"
                              "    openai/gpt-4o-mini: {input: 0.0001, output: 0.0002}\n"
                              "    free/llama: {input: 0, output: 0}\n");
    CHECK(c != NULL);
    if (!c)
        return;
    tg_price_t p;
    const char *key;
    /* at its provider (any case), dated versions too, a provider key wins */
    CHECK(tg_cost_price_at(c, "Cheap", "gpt-4o-2024-08-06", &p, &key));
    CHECK_STR(key, "cheap/gpt-4o");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(1.00));
    CHECK_INT(p.cached_input, p.input);
    /* elsewhere, and without a provider, the plain key */
    CHECK(tg_cost_price_at(c, "other", "gpt-4o", &p, &key));
    CHECK_STR(key, "gpt-4o");
    CHECK(tg_cost_price(c, "gpt-4o", &p, &key));
    CHECK_STR(key, "gpt-4o");
    /* a provider key matches like any key: cheap/gpt does not price gpt-4o-mini */
    CHECK(tg_cost_price_at(c, "cheap", "gpt-4o-mini", &p, &key));
    CHECK_STR(key, "gpt-4o-mini");
    /* a key with a slash still prices the model of that whole name */
    CHECK(tg_cost_price_at(c, "openrouter", "openai/gpt-4o-mini", &p, &key));
    CHECK_STR(key, "openai/gpt-4o-mini");
    CHECK(tg_cost_price_at(c, "openai", "gpt-4o-mini", &p, &key));
    CHECK_STR(key, "openai/gpt-4o-mini");
    tg_usage_t u = usage(1000, 1000, -1, -1);
    CHECK_INT(tg_cost_for_provider(c, "cheap", "gpt-4o", &u), 5000000);
    CHECK_INT(tg_cost_for_provider(c, NULL, "gpt-4o", &u), 10000000);
    CHECK_INT(tg_cost_for(c, "gpt-4o", &u), 10000000);

    /* the comparable price: 3 x input + output, femto-USD per token */
    CHECK_INT(tg_cost_rank_price(c, "cheap", "gpt-4o"),
              3 * TG_PRICE_PER_MTOK(1.00) + TG_PRICE_PER_MTOK(4.00));
    CHECK_INT(tg_cost_rank_price(NULL, "x", "gpt-4o"),
              3 * TG_PRICE_PER_MTOK(2.50) + TG_PRICE_PER_MTOK(10.00));
    CHECK_INT(tg_cost_rank_price(c, "free", "llama"), 0);   /* free, and priced */
    CHECK_INT(tg_cost_rank_price(c, "other", "llama"), -1); /* unpriced */
    tg_config_release(c);

    /* absurd prices saturate rather than wrap */
    c = cost_cfg("cost_tracking:\n  pricing:\n    big: {input: 1e300, output: 1e300}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(tg_cost_rank_price(c, NULL, "big"), INT64_MAX);
        tg_config_release(c);
    }
}

/* Look-ups are remembered per thread: a reloaded config (a new generation,
 * perhaps at the same address) must get its own prices, and a repeated
 * look-up the same answer as the first. */
TEST(cost_price_memo_follows_reloads)
{
    tg_usage_t u = usage(1000, 1000, 0, 0);
    for (int round = 1; round <= 3; round++) {
        char yaml[160];
        snprintf(yaml, sizeof yaml,
                 "cost_tracking:\n  pricing:\n    memo-model: {input: %d, output: 0}\n", round);
        tg_config_t *c = cost_cfg(yaml);
        CHECK(c != NULL);
        if (!c)
            return;
        for (int again = 0; again < 3; again++) {
            CHECK_INT(tg_cost_for(c, "memo-model", &u), (int64_t)round * 1000000000);
            CHECK_INT(tg_cost_for_provider(c, "p", "memo-model", &u), (int64_t)round * 1000000000);
            CHECK_INT(tg_cost_for(c, "memo-unpriced-xyz", &u), -1);
        }
        tg_config_release(c);
    }
}

/* Today's default models of the clients (Claude Code's Opus with its [1m]
 * suffix) are priced and carry their output limit. */
TEST(cost_current_models_and_limits)
{
    tg_price_t p;
    const char *key;
    CHECK(tg_cost_price(NULL, "claude-opus-4-8", &p, &key));
    CHECK_STR(key, "claude-opus-4-8");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(5.00));
    CHECK_INT(p.cache_write, TG_PRICE_PER_MTOK(6.25));
    CHECK_INT(p.max_output, 128000);
    /* the 1M-context name is the base model */
    CHECK(tg_cost_price(NULL, "claude-opus-4-8[1m]", &p, &key));
    CHECK_STR(key, "claude-opus-4-8");
    CHECK(tg_cost_key_matches("claude-sonnet-4-5", "claude-sonnet-4-5-20250929[1m]"));
    CHECK(!tg_cost_key_matches("claude-opus-4", "claude-opus-4-8[1m]"));
    CHECK(!tg_cost_key_matches("claude-opus-4-8", "claude-opus-4-8[2m]"));
    /* ... and its long-context tier applies where the provider has one */
    CHECK(tg_cost_price(NULL, "claude-sonnet-4-5[1m]", &p, NULL));
    tg_usage_t u = usage(300000, 0, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 1800000000); /* 300000 * 6.00 per million */
    CHECK_INT(tg_cost_max_output(NULL, NULL, "deepseek-chat"), 8192);
    CHECK_INT(tg_cost_max_output(NULL, NULL, "gpt-4o-2024-08-06"), 16384);
    CHECK_INT(tg_cost_max_output(NULL, NULL, "gemini-2.5-pro"), 65535);
    CHECK_INT(tg_cost_max_output(NULL, NULL, "no-such-model"), 0);
    const char *current[] = {"claude-sonnet-4-6",
                             "claude-haiku-4-5-20251001",
                             "claude-opus-5",
                             "claude-sonnet-5",
                             "gpt-5.5",
                             "gpt-5.6",
                             "gpt-4.1-mini",
                             "gpt-4o-mini",
                             "o3",
                             "o4-mini",
                             "gemini-2.5-flash",
                             "gemini-3.1-pro-preview",
                             "gemini-3.5-flash"};
    for (size_t i = 0; i < sizeof current / sizeof current[0]; i++) {
        if (!tg_cost_price(NULL, current[i], &p, NULL) || p.max_output <= 0)
            tg_test_fail(__FILE__, __LINE__, "%s unpriced or without an output limit", current[i]);
    }
}

static const char price_file_good[] =
    "{\"sample_spec\": {\"input_cost_per_token\": \"USD\", \"max_output_tokens\": \"n\"},\n"
    " \"acme-chat-1\": {\"input_cost_per_token\": 2e-06, \"output_cost_per_token\": 8e-06,\n"
    "   \"cache_read_input_token_cost\": 2e-07, \"cache_creation_input_token_cost\": 2.5e-06,\n"
    "   \"max_output_tokens\": 8192, \"litellm_provider\": \"acme\", \"mode\": \"chat\",\n"
    "   \"supports_vision\": true, \"input_cost_per_token_batches\": 1e-06},\n"
    " \"acme/acme-chat-2\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 2e-06,\n"
    "   \"litellm_provider\": \"acme\", \"max_output_tokens\": 4096},\n"
    " \"acme-long\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 4e-06,\n"
    "   \"cache_read_input_token_cost\": 1e-07,\n"
    "   \"input_cost_per_token_above_200k_tokens\": 2e-06,\n"
    "   \"output_cost_per_token_above_200k_tokens\": 6e-06,\n"
    "   \"input_cost_per_token_above_200k_tokens_priority\": 9e-06},\n"
    " \"gpt-4o\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 1e-06,\n"
    "   \"litellm_provider\": \"openai\", \"max_output_tokens\": 1000},\n"
    " \"dall-e-9\": {\"output_cost_per_image\": 0.04, \"mode\": \"image_generation\"}}\n";

TEST(cost_price_file_reads_litellm_format)
{
    char err[256] = "";
    tg_price_list_t *l =
        tg_price_list_parse(price_file_good, sizeof price_file_good - 1, "p.json", err, sizeof err);
    CHECK(l != NULL);
    if (!l) {
        printf("    %s\n", err);
        return;
    }
    CHECK_INT(tg_price_list_count(l), 4); /* sample_spec and the image model skipped */
    tg_price_t p;
    const char *key;
    CHECK(tg_price_list_find(l, NULL, "acme-chat-1-20260101", &p, &key));
    CHECK_STR(key, "acme-chat-1");
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(2.00));
    CHECK_INT(p.output, TG_PRICE_PER_MTOK(8.00));
    CHECK_INT(p.cached_input, TG_PRICE_PER_MTOK(0.20));
    CHECK_INT(p.cache_write, TG_PRICE_PER_MTOK(2.50));
    CHECK_INT(p.max_output, 8192);
    CHECK_INT(p.long_above, 0);
    /* provider/model keys price the bare model name */
    CHECK(tg_price_list_find(l, "acme", "acme-chat-2", &p, &key));
    CHECK_STR(key, "acme/acme-chat-2");
    CHECK_INT(p.cached_input, p.input); /* not given: the input price */
    CHECK_INT(p.cache_write, p.input);
    /* tiers */
    CHECK(tg_price_list_find(l, NULL, "acme-long", &p, NULL));
    CHECK_INT(p.long_above, 200000);
    CHECK_INT(p.long_input, TG_PRICE_PER_MTOK(2.00));
    CHECK_INT(p.long_output, TG_PRICE_PER_MTOK(6.00));
    CHECK_INT(p.long_cached_input, TG_PRICE_PER_MTOK(0.10)); /* not given: the base one */
    tg_usage_t u = usage(300000, 1000, 0, 0);
    CHECK_INT(tg_cost_compute(&p, &u), 600000000 + 6000000);
    CHECK(!tg_price_list_find(l, NULL, "acme-chat", &p, NULL));
    CHECK(!tg_price_list_find(l, NULL, "dall-e-9", &p, NULL));
    tg_price_list_free(l);
    /* a key written twice: the last entry, as LiteLLM's own reader takes it */
    static const char twice[] = "{\"m\": {\"input_cost_per_token\": 1e-6},"
                                " \"m\": {\"input_cost_per_token\": 3e-6}}";
    l = tg_price_list_parse(twice, sizeof twice - 1, "twice.json", err, sizeof err);
    CHECK(l && tg_price_list_find(l, NULL, "m", &p, NULL));
    CHECK_INT(p.input, TG_PRICE_PER_MTOK(3.00));
    tg_price_list_free(l);
}

TEST(cost_price_file_refuses_malformed)
{
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"m\": {\"input_cost_per_token\": 1e-6,", "not JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"m\": 3}", "model \"m\": expected an object"},
        {"{\"m\": {\"input_cost_per_token\": \"0.1\"}}", "input_cost_per_token is not a price"},
        {"{\"m\": {\"input_cost_per_token\": -1e-6}}", "is not a price"},
        {"{\"m\": {\"input_cost_per_token\": 1e-6, \"output_cost_per_token\": 1e9}}",
         "output_cost_per_token is not a price"},
        {"{\"m\": {\"input_cost_per_token\": 1e-6,"
         " \"cache_read_input_token_cost_above_200k_tokens\": null}}",
         "cache_read_input_token_cost_above_200k_tokens is not a price"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        tg_price_list_t *l =
            tg_price_list_parse(bad[i].json, strlen(bad[i].json), "bad.json", err, sizeof err);
        if (l || !strstr(err, "bad.json") || !strstr(err, bad[i].says))
            tg_test_fail(__FILE__, __LINE__, "case %zu: %s", i, err);
        tg_price_list_free(l);
    }
    /* too large, before any parsing */
    char err[256] = "";
    CHECK(!tg_price_list_parse("{}", TG_PRICE_FILE_MAX + 1, "big.json", err, sizeof err));
    CHECK(strstr(err, "big.json: larger than 32 MiB") != NULL);
    CHECK(!tg_price_list_load("/nonexistent/prices.json", err, sizeof err));
    CHECK(strstr(err, "/nonexistent/prices.json") != NULL);
}

/* pricing > prices_file > built-in; a broken file is a config error. */
TEST(cost_price_file_precedence)
{
    char path[] = "/tmp/tg-prices-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, price_file_good, sizeof price_file_good - 1) ==
          (ssize_t)(sizeof price_file_good - 1));
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "cost_tracking:\n  prices_file: %s\n  pricing:\n"
             "    acme-chat-1: {input: 0.001, output: 0.001}\n",
             path);
    tg_config_t *c = cost_cfg(yaml);
    CHECK(c != NULL);
    if (c) {
        tg_price_t p;
        const char *key;
        CHECK(tg_cost_price(c, "acme-chat-1", &p, &key)); /* pricing wins */
        CHECK_INT(p.input, TG_PRICE_PER_MTOK(1.00));
        CHECK_INT(tg_cost_max_output(c, NULL, "acme-chat-1"), 8192); /* limit from the file */
        CHECK(tg_cost_price(c, "gpt-4o", &p, &key)); /* the file beats the built-in table */
        CHECK_INT(p.input, TG_PRICE_PER_MTOK(1.00));
        CHECK_INT(tg_cost_max_output(c, "openai", "gpt-4o"), 1000);
        CHECK(tg_cost_price(c, "gpt-4o-mini", &p, &key)); /* built-in for the rest */
        CHECK_STR(key, "gpt-4o-mini");
        CHECK(tg_cost_price(c, "acme-long", &p, NULL));
        CHECK(!tg_cost_price(NULL, "acme-long", &p, NULL));
        tg_config_release(c);
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"m\": {\"input_cost_per_token\": \"free\"}}", f);
        fclose(f);
    }
    snprintf(yaml, sizeof yaml, "cost_tracking:\n  prices_file: %s\n", path);
    tg_config_errors_t errs = {0};
    c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.n, 1);
    if (errs.n) {
        CHECK_STR(errs.items[0].path, "cost_tracking.prices_file");
        CHECK(strstr(errs.items[0].message, path) != NULL);
        CHECK_INT(errs.items[0].line, 2);
    }
    tg_config_errors_free(&errs);
    tg_config_release(c);
    unlink(path);
}

/* OpenRouter's vendor/model names of first-party models take the vendor's
 * prices; open models (several hosts, several prices) stay unpriced. */
TEST(cost_openrouter_vendor_names)
{
    tg_price_t p;
    const char *key;
    CHECK(tg_cost_price(NULL, "anthropic/claude-sonnet-4.5", &p, &key));
    CHECK_STR(key, "claude-sonnet-4-5");
    CHECK(tg_cost_price(NULL, "anthropic/claude-3.7-sonnet", &p, &key));
    CHECK_STR(key, "claude-3-7-sonnet");
    CHECK(tg_cost_price(NULL, "openai/gpt-4o-mini", &p, &key));
    CHECK_STR(key, "gpt-4o-mini");
    CHECK(tg_cost_price(NULL, "google/gemini-2.5-pro", &p, &key));
    CHECK_STR(key, "gemini-2.5-pro");
    CHECK(tg_cost_price(NULL, "x-ai/grok-4", &p, &key));
    CHECK_STR(key, "grok-4");
    CHECK_INT(tg_cost_max_output(NULL, "openrouter", "anthropic/claude-opus-4.8"), 128000);
    CHECK(!tg_cost_price(NULL, "meta-llama/llama-3.3-70b-instruct", &p, &key));
    CHECK(!tg_cost_price(NULL, "anthropic/claude-3.7-sonnet:thinking", &p, &key));
    CHECK(!tg_cost_price(NULL, "openai/", &p, &key));
    /* the Groq row named openai/gpt-oss-120b is still that row */
    CHECK(tg_cost_price(NULL, "openai/gpt-oss-120b", &p, &key));
    CHECK_STR(key, "openai/gpt-oss-120b");
}
