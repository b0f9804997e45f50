/*
 * ratelimit_redis.c — the GCRA of ratelimit.c as Lua scripts run in Redis,
 * so that every instance sharing a Redis enforces one limit exactly as one
 * instance would (SPEC §13, docs/fleet.md). Pure here: the scripts' text,
 * the arguments they take and the reading of their answer; the sending is
 * redis/redis.c's, the deciding the proxy's (stages.c, limits.c).
 *
 * Same arithmetic as ratelimit.c: a key keeps `l`, the units in its bucket
 * times the window (unit-ms), as of time `t`, with the limit (`q`, `w`) it
 * was measured against; it drains q unit-ms per ms. n units fit when
 * l + max(n,1) x w <= q x w. The time is Redis's (TIME), so instances whose
 * clocks differ still share one bucket. Lua numbers are doubles: exact for
 * every product below 2^53 (a million requests a minute is 6e10), within a
 * part in 10^16 beyond.
 *
 * A key expires once its bucket has drained (PEXPIRE ceil(l / q) ms, plus a
 * second), so idle keys cost Redis nothing.
 *
 * Thread: any (pure).
 */
#include "ratelimit/ratelimit.h"

#include <stdio.h>
#include <string.h>

/* Shared by both scripts: bring key i's state up to now under (q, w). */
#define RL_LUA_STATE                                                                               \
    "local tm = redis.call('TIME')\n"                                                              \
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"                    \
    "local function state(k, q, w)\n"                                                              \
    "  local s = redis.call('HMGET', k, 'l', 't', 'q', 'w')\n"                                     \
    "  local l = tonumber(s[1]) or 0\n"                                                            \
    "  local t = tonumber(s[2]) or now\n"                                                          \
    "  local q0 = tonumber(s[3]) or q\n"                                                           \
    "  local w0 = tonumber(s[4]) or w\n"                                                           \
    "  if now > t then l = math.max(0, l - q0 * (now - t)) end\n"                                  \
    "  if q0 ~= q or w0 ~= w then l = math.floor(l * w / w0) end\n"                                \
    "  return l\n"                                                                                 \
    "end\n"                                                                                        \
    "local function save(k, l, q, w)\n"                                                            \
    "  redis.call('HSET', k, 'l', string.format('%.17g', l), 't', string.format('%d', now),"       \
    " 'q', string.format('%d', q), 'w', string.format('%d', w))\n"                                 \
    "  redis.call('PEXPIRE', k, string.format('%d', math.min(math.ceil(l / q), 1e12) + 1000))\n"   \
    "end\n"

/* KEYS: one state per check; ARGV: quota, window_ms, n per check. All or
 * nothing: the first check that does not fit stops it and nothing is
 * consumed. Answers {denied (0-based, -1 for none), then per check looked
 * at: allowed, remaining, retry_after_ms, reset_ms}. */
static const char acquire_lua[] = RL_LUA_STATE
    "local out = {-1}\n"
    "local lv = {}\n"
    "for i = 1, #KEYS do\n"
    "  local q, w, n = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  local l = state(KEYS[i], q, w)\n"
    "  lv[i] = l\n"
    "  local need = math.max(n, 1)\n"
    "  local cap = q * w\n"
    "  local ok = need <= q and l + need * w <= cap\n"
    "  local after = l\n"
    "  if ok and n > 0 then after = l + n * w end\n"
    "  local rem = 0\n"
    "  if after < cap then rem = math.floor((cap - after) / w) end\n"
    "  local retry = 0\n"
    "  if not ok then\n"
    "    if need > q then retry = -1 else retry = math.ceil((l + need * w - cap) / q) end\n"
    "  end\n"
    "  out[#out+1] = ok and 1 or 0\n"
    "  out[#out+1] = rem\n"
    "  out[#out+1] = retry\n"
    "  out[#out+1] = math.ceil(after / q)\n"
    "  if not ok then out[1] = i - 1 return out end\n"
    "end\n"
    "for i = 1, #KEYS do\n"
    "  local q, w, n = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  if n > 0 then save(KEYS[i], lv[i] + n * w, q, w) end\n"
    "end\n"
    "return out\n";

/* KEYS, ARGV as above, n the units charged (tokens, micro-dollars; < 0
 * refunds): unconditional, the bucket may go over its capacity. */
static const char charge_lua[] = RL_LUA_STATE
    "for i = 1, #KEYS do\n"
    "  local q, w, n = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  local l = math.max(0, state(KEYS[i], q, w) + n * w)\n"
    "  save(KEYS[i], l, q, w)\n"
    "end\n"
    "return 0\n";

const tg_redis_script_t tg_rl_redis_acquire = {"rl_acquire", acquire_lua};
const tg_redis_script_t tg_rl_redis_charge = {"rl_charge", charge_lua};

void tg_rl_redis_args(tg_redis_args_t *a, const tg_rl_check_t *checks, const int64_t *units,
                      size_t n)
{
    tg_redis_args_reset(a);
    if (n > TG_REDIS_MAX_ARGS / 4)
        n = TG_REDIS_MAX_ARGS / 4;
    char key[700];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(key, sizeof key, "tollgate:rl:%s", checks[i].key);
        tg_redis_args_push(a, key, len < (int)sizeof key ? (size_t)len : sizeof key - 1);
    }
    tg_redis_args_keys_done(a);
    for (size_t i = 0; i < n; i++) {
        tg_redis_args_push_i64(a, checks[i].limit.quota);
        tg_redis_args_push_i64(a, checks[i].limit.window_ms);
        tg_redis_args_push_i64(a, units ? units[i] : checks[i].n);
    }
    tg_redis_args_done(a);
}

int tg_rl_redis_result(const int64_t *v, int nv, const tg_rl_check_t *checks, size_t n,
                       tg_rl_result_t *res)
{
    if (nv < 1)
        return -2;
    int64_t denied = v[0];
    size_t looked = denied < 0 ? n : (size_t)denied + 1;
    if (denied >= (int64_t)n || denied < -1 || nv != 1 + 4 * (int)looked)
        return -2;
    for (size_t i = 0; i < looked; i++) {
        const int64_t *e = v + 1 + 4 * i;
        res[i] = (tg_rl_result_t){.allowed = e[0] == 1,
                                  .limit = checks[i].limit.quota,
                                  .remaining = e[1] > 0 ? e[1] : 0,
                                  .retry_after_ms = e[2],
                                  .reset_ms = e[3] > 0 ? e[3] : 0};
        /* every check before the denied one passed; the denied one did not */
        if (res[i].allowed != (i != (size_t)denied || denied < 0))
            return -2;
    }
    return (int)denied;
}
