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
 *  every budget that applies (429 budget_exceeded or unpriced_model). False
 *  when the exchange was answered. This instance's table only (raw
 *  pass-through); LLM routes go through tg_spend_stage. */
bool tg_spend_reserve(tg_exchange_t *x);
/** The budget stage of LLM routes: tg_spend_reserve, but with redis.url the
 *  reservation is first made in Redis (one script, atomic across the
 *  instances sharing it) and the stage parks until it answers;
 *  redis.on_failure says what happens when it cannot. */
tg_stage_result_t tg_spend_stage(tg_exchange_t *x);
/** The budget stage of raw pass-through (/{provider}/...): a call to an
 *  LLM route of the provider's type (tg_spend_raw_route) has its model and
 *  output cap read from its JSON body (Gemini: the model from the path)
 *  and goes through tg_spend_reserve like any other; a body that is not a
 *  JSON object is refused (400 invalid_json) while a block budget applies,
 *  since it cannot be costed. Any other call costs nothing and passes.
 *  False when the exchange was answered. */
bool tg_spend_reserve_raw(tg_exchange_t *x);
/** The LLM route a raw call is, by the wire of its provider's type, its
 *  method and its path below base_url: OpenAI's chat completions,
 *  completions, responses and embeddings; Anthropic's messages; Gemini's
 *  models/{model}:generateContent and :streamGenerateContent. Anything
 *  else: TG_ROUTE_PASSTHROUGH (not costed). */
tg_route_kind_t tg_spend_raw_route(tg_wire_t wire, const char *method, const char *path);
/** The model of a Gemini path ("/v1beta/models/{model}:action") into out;
 *  false when there is none. */
bool tg_spend_gemini_path_model(const char *path, char *out, size_t outlen);
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
