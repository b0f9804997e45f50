/*
 * budget_redis.c — budget spend and open reservations shared in Redis
 * (SPEC §11, §13; docs/fleet.md). Pure here: the Lua scripts, their keys
 * and arguments, and the reading of the reservation's answer; the sending
 * and the deciding are the proxy's (spend.c).
 *
 * A budget period is one hash, "tollgate:budget:<period>:<start>:<scope>:<value>"
 * (start: the period's first second, so a new day is a new key), holding
 * `s` (spend, nano-USD), `o` (the sum of the open holds) and one field
 * `h:<id>` per open hold (its amount), beside a sorted set "<key>:z" of the
 * holds' ids by deadline (Redis's clock, seconds). It expires a day after
 * its period ends. Reserving first drops the holds past their deadline from
 * `o` (an instance killed, a settle lost: the money comes back by itself),
 * then checks every block budget of the request (s + o + amount > limit
 * refuses, as budget.c does in one instance) and adds a hold of the amount
 * to every budget, in one script: atomic across instances, so however many
 * reserve at once the sum of what they may spend stays within every block
 * limit. Settling removes the hold by its id and adds the actual cost to
 * `s`, and marks the id settled (`h:<id>` = "d", for an hour): settling
 * twice (a retry whose first try did run) or after the hold expired adds
 * the cost once. Moving a hold (a fallback to another target) sets its
 * amount and deadline. Seeding sets `s` from the store's sum with HSETNX:
 * the first instance to start seeds, the others (and a restart) do not add
 * it again.
 *
 * Lua numbers are doubles: exact up to 2^53 nano-USD (9 million USD).
 *
 * Thread: any (pure).
 */
#include "budget/budget.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Shared by the scripts: n, the number of budget periods (KEYS[1..n]
 * the hashes, KEYS[n+1..2n] their holds' sorted sets), now (Redis's
 * clock) and sweep(i): drop up to 64 holds of key i past their deadline
 * (settled marks past their hour too). */
#define LUA_COMMON                                                                                 \
    "local n = #KEYS / 2\n"                                                                        \
    "local now = tonumber(redis.call('TIME')[1])\n"                                                \
    "local function sweep(i)\n"                                                                    \
    "  local k, z = KEYS[i], KEYS[n+i]\n"                                                          \
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 64)) do\n"      \
    "    local v = tonumber(redis.call('HGET', k, 'h:'..id))\n"                                    \
    "    if v then redis.call('HINCRBY', k, 'o', -v) end\n"                                        \
    "    redis.call('HDEL', k, 'h:'..id)\n"                                                        \
    "    redis.call('ZREM', z, id)\n"                                                              \
    "  end\n"                                                                                      \
    "  if (tonumber(redis.call('HGET', k, 'o')) or 0) < 0 then redis.call('HSET', k, 'o', 0) "     \
    "end\n"                                                                                        \
    "end\n"                                                                                        \
    "local function expire(i, at)\n"                                                               \
    "  redis.call('EXPIREAT', KEYS[i], at)\n"                                                      \
    "  redis.call('EXPIREAT', KEYS[n+i], at)\n"                                                    \
    "end\n"

/* ARGV[1] the amount, ARGV[2] the hold's id, ARGV[3] its lifetime (s);
 * then per budget: limit (-1: none), block (1/0), expire-at (UNIX s).
 * Answers {refused (0-based, -1), then s, o per budget looked at}. */
static const char reserve_lua[] =
    LUA_COMMON "local amt, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])\n"
               "local out = {-1}\n"
               "for i = 1, n do\n"
               "  sweep(i)\n"
               "  local lim, block = tonumber(ARGV[3*i+1]), ARGV[3*i+2] == '1'\n"
               "  local v = redis.call('HMGET', KEYS[i], 's', 'o')\n"
               "  local s, o = tonumber(v[1]) or 0, tonumber(v[2]) or 0\n"
               "  out[#out+1] = s\n"
               "  out[#out+1] = o\n"
               "  if block and lim >= 0 and s + o + amt > lim then out[1] = i - 1 return out end\n"
               "end\n"
               "for i = 1, n do\n"
               "  if not redis.call('HGET', KEYS[i], 'h:'..id) then\n"
               "    redis.call('HSET', KEYS[i], 'h:'..id, amt)\n"
               "    redis.call('HINCRBY', KEYS[i], 'o', amt)\n"
               "    redis.call('ZADD', KEYS[n+i], now + ttl, id)\n"
               "  end\n"
               "  expire(i, ARGV[3*i+3])\n"
               "end\n"
               "return out\n";

/* ARGV[1] the hold's id, ARGV[2] the actual cost, then per budget the
 * expire-at. */
static const char settle_lua[] =
    LUA_COMMON "local id, cost = ARGV[1], tonumber(ARGV[2])\n"
               "for i = 1, n do\n"
               "  local k = KEYS[i]\n"
               "  local v = redis.call('HGET', k, 'h:'..id)\n"
               "  if v ~= 'd' then\n"
               "    if tonumber(v) then redis.call('HINCRBY', k, 'o', -tonumber(v)) end\n"
               "    redis.call('HINCRBY', k, 's', cost)\n"
               "    redis.call('HSET', k, 'h:'..id, 'd')\n"
               "    redis.call('ZADD', KEYS[n+i], now + 3600, id)\n"
               "  end\n"
               "  sweep(i)\n"
               "  expire(i, ARGV[2+i])\n"
               "end\n"
               "return 0\n";

/* ARGV[1] the hold's id, ARGV[2] its new amount, ARGV[3] its new
 * lifetime (s), then per budget the expire-at. A hold settled or gone
 * stays so. */
static const char move_lua[] =
    LUA_COMMON "local id, amt, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
               "for i = 1, n do\n"
               "  local k = KEYS[i]\n"
               "  local v = tonumber(redis.call('HGET', k, 'h:'..id))\n"
               "  if v then\n"
               "    redis.call('HINCRBY', k, 'o', amt - v)\n"
               "    redis.call('HSET', k, 'h:'..id, amt)\n"
               "    redis.call('ZADD', KEYS[n+i], now + ttl, id)\n"
               "    expire(i, ARGV[3+i])\n"
               "  end\n"
               "end\n"
               "return 0\n";

/* No ARGV. Answers {s, o} per budget, after dropping expired holds. */
static const char read_lua[] = LUA_COMMON "local out = {}\n"
                                          "for i = 1, n do\n"
                                          "  sweep(i)\n"
                                          "  local v = redis.call('HMGET', KEYS[i], 's', 'o')\n"
                                          "  out[#out+1] = tonumber(v[1]) or 0\n"
                                          "  out[#out+1] = tonumber(v[2]) or 0\n"
                                          "end\n"
                                          "return out\n";

/* KEYS as above; ARGV per key: spend, expire-at. */
static const char seed_lua[] = "for i = 1, #KEYS do\n"
                               "  redis.call('HSETNX', KEYS[i], 's', ARGV[2*i-1])\n"
                               "  redis.call('EXPIREAT', KEYS[i], ARGV[2*i])\n"
                               "end\n"
                               "return 0\n";

const tg_redis_script_t tg_budget_redis_reserve = {"budget_reserve", reserve_lua};
const tg_redis_script_t tg_budget_redis_settle = {"budget_settle", settle_lua};
const tg_redis_script_t tg_budget_redis_seed = {"budget_seed", seed_lua};
const tg_redis_script_t tg_budget_redis_move = {"budget_move", move_lua};
const tg_redis_script_t tg_budget_redis_read = {"budget_read", read_lua};

/* The reserve script's keys (two per slot) and arguments (3 + 3 per slot). */
_Static_assert(2 * TG_BUDGET_REDIS_SLOTS + 3 + 3 * TG_BUDGET_REDIS_SLOTS <= TG_REDIS_MAX_ARGS,
               "a reservation's arguments fit");

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

/* The keys of the slots, first: the hashes, then (holds) their holds'
 * sorted sets. */
static void put_keys(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                     const tg_budget_redis_slot_t *sl, int ns, bool holds)
{
    tg_redis_args_reset(a);
    tg_buf_t k = {0};
    for (int z = 0; z <= (int)holds; z++)
        for (int i = 0; i < ns; i++) {
            tg_buf_reset(&k);
            tg_budget_redis_key(apply[sl[i].apply].scope, apply[sl[i].apply].value, sl[i].period,
                                sl[i].start, &k);
            if (z)
                tg_buf_puts(&k, ":z");
            tg_redis_args_push(a, k.data, k.len);
        }
    tg_buf_free(&k);
    tg_redis_args_keys_done(a);
}

static void push_expiries(tg_redis_args_t *a, const tg_budget_redis_slot_t *sl, int ns)
{
    for (int i = 0; i < ns; i++)
        tg_redis_args_push_i64(a, sl[i].end + KEEP_AFTER_S);
    tg_redis_args_done(a);
}

void tg_budget_redis_reserve_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                  const tg_budget_redis_slot_t *sl, int ns, const char *hold,
                                  int64_t ttl_s, int64_t amount)
{
    put_keys(a, apply, sl, ns, true);
    tg_redis_args_push_i64(a, amount < 0 ? 0 : amount);
    tg_redis_args_push(a, hold, strlen(hold));
    tg_redis_args_push_i64(a, ttl_s);
    for (int i = 0; i < ns; i++) {
        tg_redis_args_push_i64(a, sl[i].limit);
        tg_redis_args_push(a, sl[i].block ? "1" : "0", 1);
        tg_redis_args_push_i64(a, sl[i].end + KEEP_AFTER_S);
    }
    tg_redis_args_done(a);
}

void tg_budget_redis_settle_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                 const tg_budget_redis_slot_t *sl, int ns, const char *hold,
                                 int64_t actual)
{
    put_keys(a, apply, sl, ns, true);
    tg_redis_args_push(a, hold, strlen(hold));
    tg_redis_args_push_i64(a, actual < 0 ? 0 : actual);
    push_expiries(a, sl, ns);
}

void tg_budget_redis_move_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                               const tg_budget_redis_slot_t *sl, int ns, const char *hold,
                               int64_t ttl_s, int64_t amount)
{
    put_keys(a, apply, sl, ns, true);
    tg_redis_args_push(a, hold, strlen(hold));
    tg_redis_args_push_i64(a, amount < 0 ? 0 : amount);
    tg_redis_args_push_i64(a, ttl_s);
    push_expiries(a, sl, ns);
}

void tg_budget_redis_read_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                               const tg_budget_redis_slot_t *sl, int ns)
{
    put_keys(a, apply, sl, ns, true);
    tg_redis_args_done(a);
}

void tg_budget_redis_seed_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                               const tg_budget_redis_slot_t *sl, int ns, const int64_t *spend)
{
    put_keys(a, apply, sl, ns, false);
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
