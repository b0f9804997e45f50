/*
 * prices.c — the built-in price table: public list prices per million
 * tokens, standard (non-batch, non-priority) tier, text tokens.
 *
 * Sources: each provider's public pricing page and model pages, as of
 * 2026-12 (cross-checked against the LiteLLM community price table,
 * model_prices_and_context_window.json, synced 2026-07-24; Anthropic's
 * Opus 4.8 / Opus 5 / Opus 5.5 / Sonnet 5 from their model pages):
 *   OpenAI     https://openai.com/api/pricing
 *   Anthropic  https://docs.anthropic.com/en/docs/about-claude/pricing
 *   Gemini     https://ai.google.dev/gemini-api/docs/pricing
 *   DeepSeek   https://api-docs.deepseek.com/quick_start/pricing
 *   Groq       https://groq.com/pricing
 *   Mistral    https://mistral.ai/pricing#api-pricing
 *   xAI        https://docs.x.ai/docs/models
 *
 * Rules of this table (see docs/observability.md):
 *   - A model whose price we could not confirm is left out: it is then
 *     recorded with cost null and counted as unpriced, never as free.
 *   - Keys are undated model names; tg_cost_key_matches makes a key price its
 *     dated versions (-YYYYMMDD, -YYYY-MM-DD, -NNNN, -NNN, -latest, @...). A
 *     dated version priced differently gets its own, longer key.
 *   - Cached input = the provider's prompt-cache read price; cache write =
 *     its cache write price (Anthropic: the 5-minute write, 1.25x input).
 *     Providers that do not charge for cache writes (OpenAI, Gemini,
 *     DeepSeek, xAI) have cache write = input: their prompt_tokens then cost
 *     the same whether or not the provider reports cache-write tokens.
 *     Providers without a cache discount have cached input = input.
 *   - Long-context tiers: above the threshold (prompt tokens, cache
 *     included) every token of the request is billed at the long prices.
 *   - Audio/image tokens, batch and priority tiers and Anthropic's 1-hour
 *     cache writes are not modelled: text prices apply.
 *   - Maximum output tokens: the model's own limit (LiteLLM's
 *     max_output_tokens, checked against the provider's model page), used
 *     to clamp max_tokens on translated requests; 0 where not confirmed,
 *     and then a request's max_tokens is left as sent.
 *   - A 1M-context name (`claude-opus-4-8[1m]`, as Claude Code sends it)
 *     is its base model: tg_cost_key_matches ignores the suffix, and the
 *     long-context tier, where the provider has one, prices it by its
 *     prompt size. Anthropic's Opus 4.6+ and Sonnet 4.6+ have none: their
 *     1M context costs the base prices.
 *
 * Immutable data: any thread.
 */
#include "cost/cost.h"

#define M(usd) TG_PRICE_PER_MTOK(usd)

/* key, input, output, cached input, cache write (USD per million tokens),
 * maximum output tokens (0: not confirmed) */
#define P(k, in, out, cr, cw, maxout)                                                              \
    {                                                                                              \
        k,                                                                                         \
        {                                                                                          \
            M(in), M(out), M(cr), M(cw), 0, 0, 0, 0, 0, maxout                                     \
        }                                                                                          \
    }
/* ... plus a long-context tier: above `above` prompt tokens, these prices */
#define PL(k, in, out, cr, cw, above, lin, lout, lcr, lcw, maxout)                                 \
    {                                                                                              \
        k,                                                                                         \
        {                                                                                          \
            M(in), M(out), M(cr), M(cw), above, M(lin), M(lout), M(lcr), M(lcw), maxout            \
        }                                                                                          \
    }

const tg_price_entry_t tg_cost_builtin[] = {
    /* ---- OpenAI (cache writes are free: cache write = input) ---- */
    P("gpt-4o", 2.50, 10.00, 1.25, 2.50, 16384),
    P("gpt-4o-2024-05-13", 5.00, 15.00, 5.00, 5.00, 4096),
    P("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15, 16384),
    P("gpt-4.1", 2.00, 8.00, 0.50, 2.00, 32768),
    P("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40, 32768),
    P("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10, 32768),
    P("gpt-4-turbo", 10.00, 30.00, 10.00, 10.00, 4096),
    P("gpt-4", 30.00, 60.00, 30.00, 30.00, 4096),
    P("gpt-3.5-turbo", 0.50, 1.50, 0.50, 0.50, 4096),
    P("gpt-5", 1.25, 10.00, 0.125, 1.25, 128000),
    P("gpt-5-chat", 1.25, 10.00, 0.125, 1.25, 16384),
    P("gpt-5-codex", 1.25, 10.00, 0.125, 1.25, 128000),
    P("gpt-5-mini", 0.25, 2.00, 0.025, 0.25, 128000),
    P("gpt-5-nano", 0.05, 0.40, 0.005, 0.05, 128000),
    P("gpt-5-pro", 15.00, 120.00, 15.00, 15.00, 128000),
    P("gpt-5.1", 1.25, 10.00, 0.125, 1.25, 128000),
    P("gpt-5.1-chat", 1.25, 10.00, 0.125, 1.25, 16384),
    P("gpt-5.1-codex", 1.25, 10.00, 0.125, 1.25, 128000),
    P("gpt-5.1-codex-mini", 0.25, 2.00, 0.025, 0.25, 128000),
    P("gpt-5.1-codex-max", 1.25, 10.00, 0.125, 1.25, 128000),
    P("gpt-5.2", 1.75, 14.00, 0.175, 1.75, 128000),
    P("gpt-5.2-chat", 1.75, 14.00, 0.175, 1.75, 16384),
    P("gpt-5.2-codex", 1.75, 14.00, 0.175, 1.75, 128000),
    P("gpt-5.2-pro", 21.00, 168.00, 21.00, 21.00, 128000),
    P("gpt-5.3-chat", 1.75, 14.00, 0.175, 1.75, 16384),
    P("gpt-5.3-codex", 1.75, 14.00, 0.175, 1.75, 128000),
    PL("gpt-5.4", 2.50, 15.00, 0.25, 2.50, 272000, 5.00, 22.50, 0.50, 5.00, 128000),
    P("gpt-5.4-mini", 0.75, 4.50, 0.075, 0.75, 128000),
    P("gpt-5.4-nano", 0.20, 1.25, 0.02, 0.20, 128000),
    PL("gpt-5.4-pro", 30.00, 180.00, 3.00, 30.00, 272000, 60.00, 270.00, 6.00, 60.00, 128000),
    PL("gpt-5.5", 5.00, 30.00, 0.50, 5.00, 272000, 10.00, 45.00, 1.00, 10.00, 128000),
    PL("gpt-5.5-pro", 30.00, 180.00, 3.00, 30.00, 272000, 60.00, 270.00, 6.00, 60.00, 128000),
    /* gpt-5.6 is the first OpenAI model with a cache write price */
    PL("gpt-5.6", 5.00, 30.00, 0.50, 6.25, 272000, 10.00, 45.00, 1.00, 12.50, 128000),
    P("o1", 15.00, 60.00, 7.50, 15.00, 100000),
    P("o1-pro", 150.00, 600.00, 150.00, 150.00, 100000),
    P("o3", 2.00, 8.00, 0.50, 2.00, 100000),
    P("o3-mini", 1.10, 4.40, 0.55, 1.10, 100000),
    P("o3-pro", 20.00, 80.00, 20.00, 20.00, 100000),
    P("o3-deep-research", 10.00, 40.00, 2.50, 10.00, 100000),
    P("o4-mini", 1.10, 4.40, 0.275, 1.10, 100000),
    P("o4-mini-deep-research", 2.00, 8.00, 0.50, 2.00, 100000),
    P("codex-mini", 1.50, 6.00, 0.375, 1.50, 0),
    P("text-embedding-3-small", 0.02, 0, 0.02, 0.02, 0),
    P("text-embedding-3-large", 0.13, 0, 0.13, 0.13, 0),
    P("text-embedding-ada-002", 0.10, 0, 0.10, 0.10, 0),

    /* ---- Anthropic (cache read 0.1x input, 5-minute cache write 1.25x) ---- */
    P("claude-3-haiku", 0.25, 1.25, 0.03, 0.30, 4096),
    P("claude-3-opus", 15.00, 75.00, 1.50, 18.75, 4096),
    P("claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00, 8192),
    P("claude-3-5-sonnet", 3.00, 15.00, 0.30, 3.75, 8192),
    P("claude-3-7-sonnet", 3.00, 15.00, 0.30, 3.75, 64000),
    PL("claude-sonnet-4", 3.00, 15.00, 0.30, 3.75, 200000, 6.00, 22.50, 0.60, 7.50, 64000),
    PL("claude-sonnet-4-0", 3.00, 15.00, 0.30, 3.75, 200000, 6.00, 22.50, 0.60, 7.50, 64000),
    PL("claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75, 200000, 6.00, 22.50, 0.60, 7.50, 64000),
    P("claude-sonnet-4-6", 3.00, 15.00, 0.30, 3.75, 64000),
    P("claude-opus-4", 15.00, 75.00, 1.50, 18.75, 32000),
    P("claude-opus-4-0", 15.00, 75.00, 1.50, 18.75, 32000),
    P("claude-opus-4-1", 15.00, 75.00, 1.50, 18.75, 32000),
    P("claude-opus-4-5", 5.00, 25.00, 0.50, 6.25, 64000),
    P("claude-opus-4-6", 5.00, 25.00, 0.50, 6.25, 128000),
    P("claude-opus-4-7", 5.00, 25.00, 0.50, 6.25, 128000),
    P("claude-opus-4-8", 5.00, 25.00, 0.50, 6.25, 128000),
    P("claude-opus-5", 5.00, 25.00, 0.50, 6.25, 128000),
    P("claude-opus-5-5", 4.00, 20.00, 0.40, 5.00, 128000),
    P("claude-sonnet-5", 2.00, 10.00, 0.20, 2.50, 128000),
    P("claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25, 64000),

    /* ---- Google Gemini (cache storage is billed per hour, not per token:
     *      cache write = input) ---- */
    PL("gemini-1.5-flash", 0.075, 0.30, 0.01875, 0.075, 128000, 0.15, 0.60, 0.0375, 0.15, 8192),
    PL("gemini-1.5-pro", 1.25, 5.00, 0.3125, 1.25, 128000, 2.50, 10.00, 0.625, 2.50, 8192),
    P("gemini-2.0-flash", 0.10, 0.40, 0.025, 0.10, 8192),
    P("gemini-2.0-flash-lite", 0.075, 0.30, 0.01875, 0.075, 8192),
    P("gemini-2.5-flash", 0.30, 2.50, 0.03, 0.30, 65535),
    P("gemini-2.5-flash-lite", 0.10, 0.40, 0.01, 0.10, 65535),
    PL("gemini-2.5-pro", 1.25, 10.00, 0.125, 1.25, 200000, 2.50, 15.00, 0.25, 2.50, 65535),
    P("gemini-3-flash-preview", 0.50, 3.00, 0.05, 0.50, 65535),
    PL("gemini-3-pro-preview", 2.00, 12.00, 0.20, 2.00, 200000, 4.00, 18.00, 0.40, 4.00, 65535),
    PL("gemini-3.1-pro-preview", 2.00, 12.00, 0.20, 2.00, 200000, 4.00, 18.00, 0.40, 4.00, 65536),
    P("gemini-3.1-flash-lite", 0.25, 1.50, 0.025, 0.25, 65536),
    P("gemini-3.1-flash-lite-preview", 0.25, 1.50, 0.025, 0.25, 65536),
    P("gemini-3.5-flash", 1.50, 9.00, 0.15, 1.50, 65535),
    P("gemini-3.5-flash-lite", 0.30, 2.50, 0.03, 0.30, 65536),
    P("gemini-3.6-flash", 1.50, 7.50, 0.15, 1.50, 65536),
    P("gemini-embedding-001", 0.15, 0, 0.15, 0.15, 0),
    P("gemini-embedding-2", 0.20, 0, 0.20, 0.20, 0),

    /* ---- DeepSeek (V3.2 prices; cache hit = cached input) ---- */
    P("deepseek-chat", 0.28, 0.42, 0.028, 0.28, 8192),
    P("deepseek-reasoner", 0.28, 0.42, 0.028, 0.28, 65536),

    /* ---- Groq (no prompt-cache discount except gpt-oss) ---- */
    P("llama-3.3-70b-versatile", 0.59, 0.79, 0.59, 0.59, 0),
    P("llama-3.1-8b-instant", 0.05, 0.08, 0.05, 0.05, 0),
    P("meta-llama/llama-4-scout-17b-16e-instruct", 0.11, 0.34, 0.11, 0.11, 0),
    P("meta-llama/llama-4-maverick-17b-128e-instruct", 0.20, 0.60, 0.20, 0.20, 0),
    P("openai/gpt-oss-120b", 0.15, 0.60, 0.075, 0.15, 0),
    P("openai/gpt-oss-20b", 0.075, 0.30, 0.0375, 0.075, 0),
    P("qwen/qwen3-32b", 0.29, 0.59, 0.29, 0.29, 0),

    /* ---- Mistral (no cache discount). Only dated names: the -latest
     *      aliases move between generations with different prices, and
     *      published figures for mistral-small disagree, so they are left
     *      out (configure them under cost_tracking.pricing). ---- */
    P("mistral-large-2411", 2.00, 6.00, 2.00, 2.00, 0),
    P("mistral-large-2512", 0.50, 1.50, 0.50, 0.50, 0),
    P("mistral-medium-2505", 0.40, 2.00, 0.40, 0.40, 0),
    P("mistral-medium-2508", 0.40, 2.00, 0.40, 0.40, 0),
    P("codestral-2508", 0.30, 0.90, 0.30, 0.30, 0),
    P("mistral-embed", 0.10, 0, 0.10, 0.10, 0),

    /* ---- xAI (every rate doubles above 128k prompt tokens) ---- */
    P("grok-3", 3.00, 15.00, 0.75, 3.00, 0),
    P("grok-3-mini", 0.30, 0.50, 0.075, 0.30, 0),
    PL("grok-4", 3.00, 15.00, 0.75, 3.00, 128000, 6.00, 30.00, 1.50, 6.00, 0),
    PL("grok-4-1-fast-reasoning", 0.20, 0.50, 0.05, 0.20, 128000, 0.40, 1.00, 0.10, 0.40, 0),
    PL("grok-4-1-fast-non-reasoning", 0.20, 0.50, 0.05, 0.20, 128000, 0.40, 1.00, 0.10, 0.40, 0),
    P("grok-code-fast-1", 0.20, 1.50, 0.02, 0.20, 0),
};

const unsigned tg_cost_builtin_count = sizeof tg_cost_builtin / sizeof tg_cost_builtin[0];
