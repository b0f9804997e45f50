/*
 * budget_redis.c — budget spend and open reservations shared in Redis
 * (SPEC §11, §13; docs/fleet.md). Pure here: the Lua scripts, their keys
 * and arguments, and the reading of the reservation's answer; the sending
 * and the deciding are the proxy's (spend.c).
 *
 * A budget period is one hash, "tollgate:budget:<period>:<start>:<scope>:<value>"
 * (start: the period's first second, so a new day is a new key), holding
 * `s` (spend, nano-USD) and `o` (open reservations). It expires a day after
 * its period ends. Reserving checks every block budget of the request
 * (s + o + amount > limit refuses, as budget.c does in one instance) and
 * adds the amount to every `o`, in one script: atomic across instances, so
 * however many reserve at once the sum of what they may spend stays within
 * every block limit. Settling moves the reservation from `o` to `s` as the
 * actual cost. Seeding sets `s` from the store's sum with HSETNX: the first
 * instance to start seeds, the others (and a restart) do not add it again.
 *
 * Lua numbers are doubles: exact up to 2^53 nano-USD (9 million USD).
 *
 * Thread: any (pure).
 */
#include "budget/budget.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* KEYS: the budget periods; ARGV[1] the amount; then per key: limit (-1:
 * none), block (1/0), expire-at (UNIX s). Answers {refused (0-based, -1),
 * then s, o per key looked at}. */
static const char reserve_lua[] =
    "local amt = tonumber(ARGV[1])\n"
    "local out = {-1}\n"
    "for i = 1, #KEYS do\n"
    "  local lim, block = tonumber(ARGV[3*i-1]), ARGV[3*i] == '1'\n"
    "  local v = redis.call('HMGET', KEYS[i], 's', 'o')\n"
    "  local s, o = tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"
    "  out[#out+1] = s\n"
    "  out[#out+1] = o\n"
    "  if block and lim >= 0 and s + o + amt > lim then out[1] = i - 1 return out end\n"
    "end\n"
    "for i = 1, #KEYS do\n"
    "  redis.call('HINCRBY', KEYS[i], 'o', ARGV[1])\n"
    "  redis.call('EXPIREAT', KEYS[i], ARGV[3*i+1])\n"
    "end\n"
    "return out\n";

/* KEYS as above; ARGV[1] what was reserved, ARGV[2] the actual cost, then
 * per key the expire-at. */
static const char settle_lua[] =
    "for i = 1, #KEYS do\n"
    "  local o = redis.call('HINCRBY', KEYS[i], 'o', -tonumber(ARGV[1]))\n"
    "  if o < 0 then redis.call('HSET', KEYS[i], 'o', 0) end\n"
    "  redis.call('HINCRBY', KEYS[i], 's', ARGV[2])\n"
    "  redis.call('EXPIREAT', KEYS[i], ARGV[2+i])\n"
    "end\n"
    "return 0\n";

/* KEYS as above; ARGV per key: spend, expire-at. */
static const char seed_lua[] = "for i = 1, #KEYS do\n"
                               "  redis.call('HSETNX', KEYS[i], 's', ARGV[2*i-1])\n"
                               "  redis.call('EXPIREAT', KEYS[i], ARGV[2*i])\n"
                               "end\n"
                               "return 0\n";

const tg_redis_script_t tg_budget_redis_reserve = {"budget_reserve", reserve_lua};
const tg_redis_script_t tg_budget_redis_settle = {"budget_settle", settle_lua};
const tg_redis_script_t tg_budget_redis_seed = {"budget_seed", seed_lua};

/* Expired a day after the period ends: a late settlement still finds it. */
#define KEEP_AFTER_S 86400

void tg_budget_redis_key(const char *scope, const char *value, int period, int64_t start,
                         tg_buf_t *out)
{
    tg_buf_printf(out, "tollgate:budget:%s:%" PRId64 ":%s:%s", tg_budget_period_name(period), start,
                  scope, value);
}

int tg_budget_redis_slots(const tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t now,
                          tg_budget_redis_slot_t *out)
{
    int ns = 0;
    for (int i = 0; i < n && i < TG_BUDGET_MAX_APPLY; i++)
        for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
            double usd = p == TG_BUDGET_DAY ? apply[i].cfg.daily : apply[i].cfg.monthly;
            if (usd < 0)
                continue;
            tg_budget_redis_slot_t *s = &out[ns++];
            s->apply = i;
            s->period = p;
            s->limit = tg_budget_nusd(usd);
            s->block = apply[i].cfg.action == TG_BUDGET_BLOCK;
            tg_budget_period(tg_budgets_calendar(b), p, now, &s->start, &s->end);
        }
    return ns;
}

/* The keys of the slots, first. */
static void put_keys(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                     const tg_budget_redis_slot_t *sl, int ns)
{
    tg_redis_args_reset(a);
    tg_buf_t k = {0};
    for (int i = 0; i < ns; i++) {
        tg_buf_reset(&k);
        tg_budget_redis_key(apply[sl[i].apply].scope, apply[sl[i].apply].value, sl[i].period,
                            sl[i].start, &k);
        tg_redis_args_push(a, k.data, k.len);
    }
    tg_buf_free(&k);
    tg_redis_args_keys_done(a);
}

void tg_budget_redis_reserve_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                  const tg_budget_redis_slot_t *sl, int ns, int64_t amount)
{
    put_keys(a, apply, sl, ns);
    tg_redis_args_push_i64(a, amount < 0 ? 0 : amount);
    for (int i = 0; i < ns; i++) {
        tg_redis_args_push_i64(a, sl[i].limit);
        tg_redis_args_push(a, sl[i].block ? "1" : "0", 1);
        tg_redis_args_push_i64(a, sl[i].end + KEEP_AFTER_S);
    }
    tg_redis_args_done(a);
}

void tg_budget_redis_settle_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                 const tg_budget_redis_slot_t *sl, int ns, int64_t reserved,
                                 int64_t actual)
{
    put_keys(a, apply, sl, ns);
    tg_redis_args_push_i64(a, reserved < 0 ? 0 : reserved);
    tg_redis_args_push_i64(a, actual < 0 ? 0 : actual);
    for (int i = 0; i < ns; i++)
        tg_redis_args_push_i64(a, sl[i].end + KEEP_AFTER_S);
    tg_redis_args_done(a);
}

void tg_budget_redis_seed_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                               const tg_budget_redis_slot_t *sl, int ns, const int64_t *spend)
{
    put_keys(a, apply, sl, ns);
    for (int i = 0; i < ns; i++) {
        tg_redis_args_push_i64(a, spend[i]);
        tg_redis_args_push_i64(a, sl[i].end + KEEP_AFTER_S);
    }
    tg_redis_args_done(a);
}

int tg_budget_redis_result(const int64_t *v, int nv, int ns, int64_t *spend, int64_t *open)
{
    if (nv < 1 || v[0] < -1 || v[0] >= ns)
        return -2;
    int looked = v[0] < 0 ? ns : (int)v[0] + 1;
    if (nv != 1 + 2 * looked)
        return -2;
    for (int i = 0; i < looked; i++) {
        spend[i] = v[1 + 2 * i] > 0 ? v[1 + 2 * i] : 0;
        open[i] = v[2 + 2 * i] > 0 ? v[2 + 2 * i] : 0;
    }
    return (int)v[0];
}
