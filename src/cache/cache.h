/*
 * cache.h — the in-memory response cache (SPEC §6, §7; docs/traffic.md).
 *
 * A request is cached under a key: SHA-256 over (scope, seed, route, the
 * request body canonicalised minus the ignored keys) plus a bucket index
 * 0..N-1 (Helicone-Cache-Bucket-Max-Size). The cache keeps whole answers
 * (a streamed answer as its whole SSE text), bounded by entry count (LRU),
 * total bytes and each entry's TTL. Concurrent identical misses are folded
 * into one provider call ("single flight"): the first becomes the leader,
 * the others wait for its answer.
 *
 * Every function is thread-safe (sharded locks) unless said otherwise.
 * Entries are immutable and reference-counted, so a hit can be written to
 * a client without holding any lock.
 *
 * Pipeline, per request:
 *   1. tg_cache_policy_parse()  — headers + config → policy (400 on error).
 *   2. if read or save: tg_cache_key().
 *   3. if read: tg_cache_lookup() →
 *        HIT     send entry (Helicone-Cache: HIT, -Bucket-Idx), release it;
 *        LEADER  call the provider, then tg_cache_complete() or, on any
 *                ending without a whole answer, tg_cache_abandon();
 *        WAIT    park; the wake function runs later (see tg_cache_wake_fn);
 *                tg_cache_unwait() exactly once in every case;
 *        MISS    call the provider; nothing to report back.
 *   4. if save but not read: call the provider, then tg_cache_store().
 */
#ifndef TG_CACHE_H
#define TG_CACHE_H

#include "core/usage.h"
#include "core/util.h"
#include "redis/redis.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_CACHE_MAX_BUCKETS       20
#define TG_CACHE_MAX_TTL_MS        (365LL * 24 * 3600 * 1000) /* as Helicone: at most 365 days */
#define TG_CACHE_DEFAULT_MAX_BYTES ((size_t)256 << 20)

typedef struct tg_cache tg_cache_t;
typedef struct tg_cache_flight tg_cache_flight_t; /* a leader's ticket */
typedef struct tg_cache_waiter tg_cache_waiter_t; /* a parked request's ticket */

/** Milliseconds on a monotonic clock. */
typedef int64_t (*tg_cache_clock_fn)(void *arg);
/** Request header by name (case-insensitive) or NULL; same shape as the router's. */
typedef const char *(*tg_cache_header_fn)(void *ctx, const char *name);

/* ---------------------------------------------------------------- policy */

/** What the Helicone-Cache-* headers (and the config) ask of one request. */
typedef struct {
    bool read;      /* look the answer up */
    bool save;      /* store the answer */
    int bucket_max; /* 1..TG_CACHE_MAX_BUCKETS */
    int64_t ttl_ms; /* for a saved answer; Cache-Control max-age or the config's ttl */
    char *seed;     /* Helicone-Cache-Seed, or NULL */
    char **ignore;  /* Helicone-Cache-Ignore-Keys: top-level body keys left out */
    size_t n_ignore;
} tg_cache_policy_t;

/**
 * Read Helicone-Cache-Enabled/-Save/-Read/-Seed/-Bucket-Max-Size/-Ignore-Keys
 * and Cache-Control. cfg_enabled and cfg_ttl_ms are caching.enabled and
 * caching.ttl. Returns 0, or -1 with a message naming the header (a bad
 * boolean or bucket size): the policy is then read = save = false and the
 * pipeline should answer 400. Always call tg_cache_policy_free afterwards.
 */
int tg_cache_policy_parse(tg_cache_policy_t *p, bool cfg_enabled, int64_t cfg_ttl_ms,
                          tg_cache_header_fn get, void *ctx, char *err, size_t errlen);
void tg_cache_policy_free(tg_cache_policy_t *p);

/* ------------------------------------------------------------------- key */

typedef struct {
    unsigned char digest[32];
} tg_cache_key_t;

/**
 * The body as the key sees it: parsed with jansson, the top-level members
 * named in `ignore` dropped (nested ones are kept), written with sorted keys
 * and no white space. A body that is not JSON is taken byte for byte.
 * Appends to out; returns true when the body was JSON.
 */
bool tg_cache_canonical(const char *body, size_t len, char *const *ignore, size_t n_ignore,
                        tg_buf_t *out);

/**
 * The key of a request (the bucket index is added by the lookup). scope
 * separates tenants that must not share answers (the gateway key's name,
 * or a hash of the client's own provider credential; NULL = shared); route
 * is e.g. "POST /v1/chat/completions" (the provider name too for a
 * pass-through route). Never fails.
 */
void tg_cache_key(const tg_cache_policy_t *p, const char *scope, const char *route,
                  const char *body, size_t len, tg_cache_key_t *out);

/* ---------------------------------------------------------------- entries */

/** A stored answer. Immutable; shared by reference count. */
typedef struct tg_cache_entry {
    int status;               /* always 2xx */
    const char *content_type; /* never NULL ("" when unknown) */
    const char *body;         /* whole body, or whole SSE text when stream */
    size_t body_len;
    bool stream;        /* replay as text/event-stream */
    tg_usage_t usage;   /* -1 where unknown */
    double cost;        /* USD the original call cost, -1 unknown */
    int64_t created_ms; /* cache clock */
    int64_t expires_ms;
    int bucket; /* bucket index it was stored in */
    int refs_;  /* private */
} tg_cache_entry_t;

void tg_cache_entry_retain(tg_cache_entry_t *e);
void tg_cache_entry_release(tg_cache_entry_t *e); /* NULL is fine */

/** An answer to store; the cache copies what it keeps. */
typedef struct {
    int status;
    const char *content_type; /* may be NULL */
    const char *body;
    size_t body_len;
    bool stream;
    tg_usage_t usage;
    double cost;
} tg_cache_answer_t;

/* ------------------------------------------------------------------ cache */

/**
 * A cache of at most max_entries answers and max_bytes bytes (0 = the
 * 256 MiB default). clock NULL = tg_mono_ms. Below 1024 entries there is
 * one LRU; above, 16 shards each hold max/16 entries and bytes (LRU within
 * a shard).
 */
tg_cache_t *tg_cache_new(size_t max_entries, size_t max_bytes, tg_cache_clock_fn clock,
                         void *clock_arg);
/** Only once nothing else uses the cache: no flight or waiter outstanding. */
void tg_cache_free(tg_cache_t *c);

typedef enum {
    TG_CACHE_HIT = 0,     /* entry set: send it */
    TG_CACHE_MISS,        /* call the provider; do not report back */
    TG_CACHE_MISS_LEADER, /* flight set: call the provider, then complete or abandon */
    TG_CACHE_MISS_WAIT,   /* waiter set: wait for the wake function */
} tg_cache_status_t;

/**
 * Called once for a parked request when its leader finishes: entry is a
 * reference for the waiter to send (Helicone-Cache: HIT) and release, or
 * NULL when the leader abandoned (the waiter then calls the provider itself,
 * and may tg_cache_store the answer).
 *
 * It runs on the LEADER's thread with a cache lock held: it must only hand
 * the result over — keep `entry` in the waiter's request and
 * event_active() an event of the waiter's own loop — and must not call any
 * tg_cache_* function. It is never called after tg_cache_unwait returned.
 */
typedef void (*tg_cache_wake_fn)(void *arg, tg_cache_entry_t *entry);

typedef struct {
    tg_cache_status_t status;
    int bucket;                /* HIT: served; LEADER: to fill; WAIT: awaited; MISS: -1 */
    tg_cache_entry_t *entry;   /* HIT: a reference to release */
    tg_cache_flight_t *flight; /* LEADER */
    tg_cache_waiter_t *waiter; /* WAIT */
} tg_cache_result_t;

/**
 * Look key up across buckets 0..bucket_max-1. All filled → HIT with one at
 * random. Otherwise, if will_save and some bucket is neither filled nor
 * being fetched → LEADER for the first such bucket. Otherwise, if wake is
 * given and some bucket is being fetched → WAIT (wake registered
 * atomically with the lookup). Otherwise MISS. Expired entries count as
 * empty and are removed.
 */
void tg_cache_lookup(tg_cache_t *c, const tg_cache_key_t *key, int bucket_max, bool will_save,
                     tg_cache_wake_fn wake, void *wake_arg, tg_cache_result_t *out);

/**
 * The leader's answer: stored (when 2xx, ttl_ms > 0 and it fits the byte
 * bound) and handed to every waiter; a non-2xx answer is the same as
 * tg_cache_abandon. Consumes the flight. Returns true when stored.
 */
bool tg_cache_complete(tg_cache_t *c, tg_cache_flight_t *f, const tg_cache_answer_t *a,
                       int64_t ttl_ms);
/** The leader ends without a whole 2xx answer (error, client gone, timeout):
 *  waiters are woken with NULL. Consumes the flight. */
void tg_cache_abandon(tg_cache_t *c, tg_cache_flight_t *f);

/**
 * A parked request is done with its ticket — after its wake ran, or when its
 * client left first. Exactly once per WAIT. After it returns the wake
 * function is not running and never will; returns true when it had already
 * been called (its entry, if any, is then the caller's to release).
 */
bool tg_cache_unwait(tg_cache_t *c, tg_cache_waiter_t *w);

/**
 * Store an answer outside single flight (save without read, or a waiter
 * whose leader abandoned): into the first bucket neither filled nor being
 * fetched; nothing when every bucket is taken (as Helicone). Returns the
 * bucket index, or -1 when not stored.
 */
int tg_cache_store(tg_cache_t *c, const tg_cache_key_t *key, int bucket_max,
                   const tg_cache_answer_t *a, int64_t ttl_ms);

typedef struct {
    size_t entries, bytes;
    uint64_t hits, misses, evictions, expirations;
} tg_cache_stats_t;

void tg_cache_stats(tg_cache_t *c, tg_cache_stats_t *out);

/** A new entry holding a copy of a (one reference, for tg_cache_entry_release):
 *  an answer read from elsewhere (Redis) served like one of ours. */
tg_cache_entry_t *tg_cache_entry_make(const tg_cache_answer_t *a, int bucket);

/* ---- kept in Redis (cache_redis.c; caching.backend: redis) ---- */

/** Look up every bucket (locking one to lead, when saving), and store an
 *  answer (dropping our lock). */
extern const tg_redis_script_t tg_cache_redis_lookup;
extern const tg_redis_script_t tg_cache_redis_store;

/** The Redis key of a request key's bucket (lock: its flight's lock). */
void tg_cache_redis_key(const tg_cache_key_t *key, int bucket, bool lock, tg_buf_t *out);
/** An answer in its stored form, appended to out. */
void tg_cache_redis_encode(const tg_cache_answer_t *a, tg_buf_t *out);
/** The stored form read back into *out (body pointing into v, content
 *  type copied into ct); false when it is not one (or its status is not
 *  2xx). */
bool tg_cache_redis_decode(const char *v, size_t len, tg_cache_answer_t *out, char *ct,
                           size_t ct_cap);

#endif
