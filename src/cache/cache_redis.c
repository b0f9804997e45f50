/*
 * cache_redis.c — the response cache kept in Redis (caching.backend:
 * redis; docs/fleet.md), so every instance sharing it reads what any one
 * stored. Pure here: the scripts, their keys, and the stored form of an
 * answer; the sending is the proxy's (proxy/rcache.c).
 *
 * Per request key and bucket, two Redis keys: the answer,
 * "tollgate:cache:<digest hex>:<bucket>", stored with the answer's TTL
 * (PX), and the flight's lock, the same with ":lock", set NX with a short
 * TTL by the one instance that calls the provider. The lookup script does
 * in one round trip what tg_cache_lookup does in memory: every bucket
 * filled → a hit at random; else, when the request will save, the first
 * bucket neither filled nor locked is locked for us (we lead); else, when
 * some bucket is locked, wait (the waiter asks again every 50 ms until the
 * answer is there or the lock is gone); else a miss. A lock whose leader
 * died expires by itself.
 *
 * The stored form: "TGC1 status stream prompt completion cached
 * cache_write reasoning content_type_length\n", the content type, then the
 * body — parsed back strictly and bounded by the value's length.
 *
 * Thread: any (pure).
 */
#include "cache/cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: answers 1..n, then locks 1..n; ARGV: will save (1/0), lock ms,
 * a random number, our lock token. Answers {"hit", bucket, value},
 * {"lead", bucket}, {"wait", -1} or {"miss", -1}. */
static const char lookup_lua[] =
    "local n = #KEYS / 2\n"
    "local filled, all = {}, true\n"
    "for i = 1, n do\n"
    "  filled[i] = redis.call('EXISTS', KEYS[i]) == 1\n"
    "  if not filled[i] then all = false end\n"
    "end\n"
    "if all then\n"
    "  local i = tonumber(ARGV[3]) % n + 1\n"
    "  return {'hit', i - 1, redis.call('GET', KEYS[i])}\n"
    "end\n"
    "local waiting = false\n"
    "for i = 1, n do\n"
    "  if not filled[i] then\n"
    "    if ARGV[1] == '1' and redis.call('SET', KEYS[n+i], ARGV[4], 'NX', 'PX', ARGV[2]) then\n"
    "      return {'lead', i - 1}\n"
    "    end\n"
    "    if redis.call('EXISTS', KEYS[n+i]) == 1 then waiting = true end\n"
    "  end\n"
    "end\n"
    "if waiting then return {'wait', -1} end\n"
    "return {'miss', -1}\n";

/* KEYS: the answer, its lock; ARGV: the value ('' to store nothing), TTL
 * ms, our lock token. Stores (unless another answer is there) and drops
 * the lock if it is still ours. */
static const char store_lua[] =
    "if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) end\n"
    "if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end\n"
    "return 0\n";

const tg_redis_script_t tg_cache_redis_lookup = {"cache_lookup", lookup_lua};
const tg_redis_script_t tg_cache_redis_store = {"cache_store", store_lua};

void tg_cache_redis_key(const tg_cache_key_t *key, int bucket, bool lock, tg_buf_t *out)
{
    static const char hex[] = "0123456789abcdef";
    tg_buf_puts(out, "tollgate:cache:");
    for (int i = 0; i < 32; i++) {
        char two[2] = {hex[key->digest[i] >> 4], hex[key->digest[i] & 15]};
        tg_buf_append(out, two, 2);
    }
    tg_buf_printf(out, ":%d%s", bucket, lock ? ":lock" : "");
}

void tg_cache_redis_encode(const tg_cache_answer_t *a, tg_buf_t *out)
{
    const char *ct = a->content_type ? a->content_type : "";
    const tg_usage_t *u = &a->usage;
    tg_buf_printf(out, "TGC1 %d %d %ld %ld %ld %ld %ld %zu\n", a->status, a->stream ? 1 : 0,
                  u->prompt_tokens, u->completion_tokens, u->cached_tokens, u->cache_write_tokens,
                  u->reasoning_tokens, strlen(ct));
    tg_buf_puts(out, ct);
    tg_buf_append(out, a->body ? a->body : "", a->body_len);
}

/* One decimal number (a leading '-' allowed) and the space or newline
 * after it; false otherwise. */
static bool number(const char **p, const char *end, char sep, long long *v)
{
    const char *s = *p;
    bool neg = s < end && *s == '-';
    s += neg;
    long long n = 0;
    const char *digits = s;
    while (s < end && *s >= '0' && *s <= '9' && s - digits < 18)
        n = n * 10 + (*s++ - '0');
    if (s == digits || s >= end || *s != sep)
        return false;
    *v = neg ? -n : n;
    *p = s + 1;
    return true;
}

bool tg_cache_redis_decode(const char *v, size_t len, tg_cache_answer_t *out, char *ct,
                           size_t ct_cap)
{
    const char *p = v, *end = v + len;
    if (len < 5 || memcmp(v, "TGC1 ", 5))
        return false;
    p += 5;
    long long f[8];
    for (int i = 0; i < 8; i++)
        if (!number(&p, end, i == 7 ? '\n' : ' ', &f[i]))
            return false;
    if (f[0] < 200 || f[0] > 299 || (f[1] != 0 && f[1] != 1) || f[7] < 0 ||
        (size_t)f[7] >= ct_cap || (size_t)f[7] > (size_t)(end - p))
        return false;
    memcpy(ct, p, (size_t)f[7]);
    ct[f[7]] = 0;
    p += f[7];
    *out = (tg_cache_answer_t){
        .status = (int)f[0],
        .stream = f[1] == 1,
        .usage = {(long)f[2], (long)f[3], (long)f[4], (long)f[5], (long)f[6]},
        .content_type = ct,
        .body = p,
        .body_len = (size_t)(end - p),
        .cost = -1,
    };
    return true;
}
