/*
 * rcache.h — the cache stage's side of caching.backend: redis (cache.h's
 * cache_redis.c; docs/fleet.md): one lookup script per request, a hit
 * served as from memory, one instance of the fleet leading a flight while
 * the others' identical requests wait for its answer, the answer stored
 * with its TTL. Without a ready connection the memory cache serves.
 *
 * Thread: the worker thread of the exchange.
 */
#ifndef TG_RCACHE_H
#define TG_RCACHE_H

#include "proxy/exchange.h"

/** Whether this exchange's cache is Redis (caching.backend: redis, and a
 *  ready connection). */
bool tg_rcache_on(tg_exchange_t *x);
/** Look the request up (x->cache_key, x->cache_policy set): parks until
 *  Redis answers, then serves a hit, goes on to lead or to a miss, or
 *  waits for another instance's flight. */
tg_stage_result_t tg_rcache_lookup(tg_exchange_t *x);
/** The answer is in (tg_exchange_settle): stored when whole and 2xx, and
 *  our lock dropped. */
void tg_rcache_settle(tg_exchange_t *x, const tg_cache_answer_t *a, bool whole);
/** The exchange ends: a lock still ours is dropped; a poll stops. */
void tg_rcache_finish(tg_exchange_t *x);

#endif
