/*
 * usage.h — token usage of one request, as every dialect reports it after
 * normalisation. A count not reported by the provider is -1, never 0, so
 * "unknown" and "none" stay apart.
 */
#ifndef TG_USAGE_H
#define TG_USAGE_H

typedef struct {
    long prompt_tokens;      /* input tokens, including cached and cache-write ones */
    long completion_tokens;  /* output tokens, including reasoning ones */
    long cached_tokens;      /* input tokens read from the provider's prompt cache */
    long cache_write_tokens; /* input tokens written to the provider's prompt cache */
    long reasoning_tokens;   /* output tokens spent on reasoning */
} tg_usage_t;

#define TG_USAGE_UNKNOWN                                                                           \
    {                                                                                              \
        -1, -1, -1, -1, -1                                                                         \
    }

#endif
