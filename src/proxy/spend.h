/*
 * spend.h — the proxy's side of budgets (budget/budget.h) and of
 * Helicone-Max-Cost (SPEC §6, §11): which budgets a request falls under,
 * its worst-case cost, the reservation before the call, the refusal in the
 * client's dialect, the headers, and the settling when the exchange ends.
 *
 * Thread: the worker thread of the exchange.
 */
#ifndef TG_SPEND_H
#define TG_SPEND_H

#include "budget/budget.h"
#include "proxy/exchange.h"

/** The budget stage: Helicone-Max-Cost (402), then the reservation against
 *  every budget that applies (429 budget_exceeded or unpriced_model). With
 *  redis.url the reservation is first made in Redis (one script, atomic
 *  across the instances sharing it) and the stage parks until it answers;
 *  redis.on_failure says what happens when it cannot. */
tg_stage_result_t tg_spend_stage(tg_exchange_t *x);
/** The budget headers of an answer that reserves nothing (a cache hit):
 *  Tollgate-Budget-Remaining and, past a threshold, -Warning. */
void tg_spend_headers(tg_exchange_t *x);
/** A fallback changed the target: reserve for the one that serves now.
 *  False when the exchange was answered (refused). */
bool tg_spend_retarget(tg_exchange_t *x);
/** The exchange ends: its reservation becomes its actual cost. */
void tg_spend_settle(tg_exchange_t *x);

/** The worst-case cost of the request at the current target in nano-USD:
 *  prompt bytes (a bound on any tokenizer's count) at the highest input
 *  price, plus the output cap asked for (else the model's maximum output)
 *  at the output price. -1 when it cannot be known (no price, or no output
 *  bound for a model with an output price). */
int64_t tg_spend_worst_case(tg_exchange_t *x);

/** The settings of budget (scope, value) under cfg and the runtime budgets
 *  of b: the runtime one, else the configuration's for that scope. False
 *  when neither gives a limit. */
bool tg_spend_budget_cfg(const tg_config_t *cfg, tg_budgets_t *b, const char *scope,
                         const char *value, tg_budget_cfg_t *out);

/** The budgets (scope, value) a request falls under (at most max). */
int tg_spend_applies(const tg_config_t *cfg, tg_budgets_t *b, const char *key_name,
                     const char *(*header)(void *h, const char *name), void *h,
                     tg_budget_apply_t *out, int max);

#endif
