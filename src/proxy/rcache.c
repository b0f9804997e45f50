/*
 * rcache.c — see rcache.h.
 *
 * An exchange using Redis for its cache has x->rcache set. Leading, it
 * holds x->rcache_lock (its bucket's lock, with x->rcache_token as value)
 * until the answer is stored or the exchange ends. Waiting, it asks again
 * every RETRY_MS from a timer (x->cache_ev, reused: a waiter of the memory
 * cache never uses it at the same time).
 *
 * Thread: the worker thread of the exchange.
 */
#include "proxy/rcache.h"

#include "core/log.h"
#include "gateway.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 50
#define LOCK_MS  30000 /* a leader that died frees its flight after this */

bool tg_rcache_on(tg_exchange_t *x)
{
    const char *b = x->cfg->cache_backend;
    return b && !strcmp(b, "redis") && tg_redis_ready(x->pw->redis);
}

static void send_lookup(tg_exchange_t *x);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    send_lookup(arg);
}

/* Redis did not answer: the memory cache's answer is as good as none; the
 * request goes to the provider (and saves as it asked). */
static void failed(tg_exchange_t *x)
{
    tg_metrics_cache(x->pw->metrics, "miss");
    x->rcache_lead = false;
    x->cache_store_after = x->cache_policy.save;
    tg_exchange_resume(x);
}

static void on_lookup(void *arg, const struct redisReply *reply)
{
    tg_exchange_t *x = arg;
    x->redis_req = NULL;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        failed(x);
        return;
    }
    const char *what = reply->element[0]->str;
    int bucket = (int)reply->element[1]->integer;
    if (!strcmp(what, "hit") && reply->elements == 3 &&
        reply->element[2]->type == REDIS_REPLY_STRING) {
        tg_cache_answer_t a;
        char ct[256];
        if (tg_cache_redis_decode(reply->element[2]->str, reply->element[2]->len, &a, ct,
                                  sizeof ct)) {
            tg_exchange_serve_cached(x, tg_cache_entry_make(&a, bucket));
            return;
        }
        tg_warn("cache: an answer in Redis could not be read; asking the provider");
        failed(x);
        return;
    }
    if (!strcmp(what, "wait")) {
        struct timeval tv = {0, RETRY_MS * 1000};
        event_add(x->cache_ev, &tv);
        return;
    }
    tg_metrics_cache(x->pw->metrics, "miss");
    if (!strcmp(what, "lead") && bucket >= 0) {
        x->rcache_lead = true;
        x->rcache_bucket = bucket;
        x->cache_store_after = true;
    }
    tg_exchange_resume(x);
}

static void send_lookup(tg_exchange_t *x)
{
    tg_redis_args_t a = {0};
    tg_buf_t k = {0};
    int n = x->cache_policy.bucket_max;
    for (int lock = 0; lock < 2; lock++)
        for (int i = 0; i < n; i++) {
            tg_buf_reset(&k);
            tg_cache_redis_key(&x->cache_key, i, lock, &k);
            tg_redis_args_push(&a, k.data, k.len);
        }
    tg_redis_args_keys_done(&a);
    tg_redis_args_push(&a, x->cache_policy.save ? "1" : "0", 1);
    tg_redis_args_push_i64(&a, LOCK_MS);
    tg_redis_args_push_i64(&a, (int64_t)(tg_random_u64() % 1000000));
    tg_redis_args_push(&a, x->rcache_token, strlen(x->rcache_token));
    tg_redis_args_done(&a);
    x->redis_req = tg_redis_eval(x->pw->redis, &tg_cache_redis_lookup, a.nkeys, a.argc, a.argv,
                                 a.lens, on_lookup, x);
    tg_redis_args_free(&a);
    tg_buf_free(&k);
    if (!x->redis_req)
        failed(x);
}

tg_stage_result_t tg_rcache_lookup(tg_exchange_t *x)
{
    x->rcache = true;
    x->cache_result = "miss";
    snprintf(x->rcache_token, sizeof x->rcache_token, "%.36s/%s", x->pw->gw->instance, x->id);
    x->cache_ev = event_new(x->pw->base, -1, 0, on_retry, x);
    tg_attempt_watch_client(x); /* a client that leaves while parked */
    send_lookup(x);
    return TG_STAGE_PARKED;
}

/* Store value (NULL: nothing) into our bucket and drop our lock. */
static void store(tg_exchange_t *x, const tg_buf_t *value, int64_t ttl_ms)
{
    tg_redis_args_t a = {0};
    tg_buf_t k = {0};
    for (int lock = 0; lock < 2; lock++) {
        tg_buf_reset(&k);
        tg_cache_redis_key(&x->cache_key, x->rcache_bucket, lock, &k);
        tg_redis_args_push(&a, k.data, k.len);
    }
    tg_redis_args_keys_done(&a);
    tg_redis_args_push(&a, value ? value->data : "", value ? value->len : 0);
    tg_redis_args_push_i64(&a, ttl_ms > 0 ? ttl_ms : 1);
    tg_redis_args_push(&a, x->rcache_token, strlen(x->rcache_token));
    tg_redis_args_done(&a);
    tg_redis_eval(x->pw->redis, &tg_cache_redis_store, a.nkeys, a.argc, a.argv, a.lens, NULL, NULL);
    tg_redis_args_free(&a);
    tg_buf_free(&k);
}

void tg_rcache_settle(tg_exchange_t *x, const tg_cache_answer_t *a, bool whole)
{
    bool keep = whole && a->status / 100 == 2 && x->cache_policy.ttl_ms > 0;
    tg_buf_t v = {0};
    if (keep)
        tg_cache_redis_encode(a, &v);
    /* a save without a flight of ours goes into bucket 0 unless taken */
    store(x, keep ? &v : NULL, x->cache_policy.ttl_ms);
    tg_buf_free(&v);
    x->rcache_lead = false;
}

void tg_rcache_finish(tg_exchange_t *x)
{
    if (x->rcache_lead) /* no whole answer: the others may try */
        store(x, NULL, 0);
    x->rcache_lead = false;
}
