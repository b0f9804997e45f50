/*
 * balance.h — choosing among several providers that serve one model
 * (routing.load_balancing), and what the gateway remembers of each
 * provider's health: a 429 makes it rest for its Retry-After; a high recent
 * error ratio ejects it for routing.load_balancing.ejection_time, after
 * which one request probes it back.
 *
 * Health lives in a registry that belongs to the gateway object
 * (gateway.h), keyed by provider name, so a reload keeps it and two
 * gateways in one process keep theirs apart. Any thread: the registry's
 * list has its mutex, each record its own.
 */
#ifndef TG_BALANCE_H
#define TG_BALANCE_H

#include "config/config.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_health tg_health_t;
typedef struct tg_health_registry tg_health_registry_t;

/** An empty registry, and its end with every record (no thread may use
 *  it then; NULL is fine). */
tg_health_registry_t *tg_health_registry_new(void);
void tg_health_registry_free(tg_health_registry_t *r);

typedef enum {
    TG_OUTCOME_OK,           /* an answer (2xx, or a 4xx that is the client's doing) */
    TG_OUTCOME_FAILED,       /* connect error, timeout, broken answer, 5xx */
    TG_OUTCOME_RATE_LIMITED, /* 429 */
} tg_outcome_t;

/** The health record of a provider in r (made on first use; lives as long
 *  as r). */
tg_health_t *tg_health_for(tg_health_registry_t *r, const char *provider);
/** The provider name the record was made for (as tg_health_for was first
 *  given it); constant for the record's life, read without the lock. */
const char *tg_health_name(const tg_health_t *h);

/** One attempt's outcome. latency_us: time to the first byte (0 if none);
 *  retry_after_ms: from a 429 (0 if none). */
void tg_health_report(tg_health_t *h, tg_outcome_t o, int64_t latency_us, int64_t retry_after_ms,
                      int64_t ejection_ms, int64_t now_ms);

/** May a request go there now? Resting and ejected providers may not; once
 *  an ejection has run out, one request at a time (the probe) may. */
bool tg_health_usable(tg_health_t *h, int64_t now_ms);

/** A request is going there: if the provider is due a probe, this is it,
 *  and others wait for its outcome (tg_balance_pick calls this). */
void tg_health_claim(tg_health_t *h, int64_t now_ms);

/** The latency estimate in microseconds (0 while unknown). */
int64_t tg_health_latency_us(tg_health_t *h);

/** True while the provider is ejected (for status and tests). */
bool tg_health_ejected(tg_health_t *h, int64_t now_ms);

/**
 * Pick one of n candidates by strategy. Candidates that are not usable are
 * passed over unless none is. prices: for `cost`, each candidate's
 * comparable price (tg_cost_rank_price; -1 when unpriced), or NULL for the
 * other strategies. `cost` keeps the cheapest usable candidates (the
 * unpriced ones only when none is priced) and picks among them by weight.
 * rnd: random bits from the caller. Health (and the round-robin turn) is
 * read from and claimed in r.
 */
size_t tg_balance_pick(tg_health_registry_t *r, tg_lb_strategy_t strategy,
                       const tg_provider_cfg_t *const *cands, const int64_t *prices, size_t n,
                       uint64_t rnd, int64_t now_ms);

#endif
