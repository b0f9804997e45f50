/*
 * cache.c — the in-memory response cache: request policy, key, entries,
 * LRU/TTL/byte bounds and single flight. See cache.h for the contract and
 * docs/traffic.md for the user-visible behaviour.
 *
 * Owns: every node, entry reference held by a node, flight and waiter.
 *
 * Layout: the key space is split over 1 or 16 shards by the first byte of
 * the request digest, so all buckets of one request live in one shard and
 * a lookup over them is atomic under that shard's mutex. A shard is a
 * chained hash table of nodes keyed by (digest, bucket), plus a circular
 * LRU list of the nodes that hold an entry (head = most recently used).
 *
 * Invariants (under the shard lock):
 *   - a node exists iff it holds an entry or a flight (or both);
 *   - a node is on the LRU list iff it holds an entry;
 *   - shard->n_entries and shard->bytes are the count and summed cost of the
 *     entries on the LRU list, and never exceed the shard's bounds;
 *   - a flight's waiters are on its list until delivered; a delivered waiter
 *     is off every list and only its owner (tg_cache_unwait) frees it;
 *   - wake functions are called with the shard lock held, so unwait (which
 *     takes it) can never overlap one.
 * Entries are immutable once built; their reference count is atomic, so a
 * hit is sent without any lock held.
 *
 * Threads: any worker thread; all state is behind the shard mutexes.
 */
#include "cache/cache.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BIG_CACHE 1024 /* from this many entries on, shard */
#define N_SHARDS  16
#define KEY_TAG   "tollgate-cache-v1"

typedef struct node node_t;

struct tg_cache_waiter {
    tg_cache_waiter_t *prev, *next;
    tg_cache_wake_fn fn;
    void *arg;
    struct shard *shard;
    tg_cache_flight_t *flight; /* valid while !delivered */
    bool delivered;
};

struct tg_cache_flight {
    node_t *node;
    struct shard *shard;
    tg_cache_waiter_t *waiters; /* doubly linked, NULL-terminated */
};

struct node {
    unsigned char digest[32];
    int bucket;
    uint64_t hash;
    node_t *hnext;
    node_t *lru_prev, *lru_next;
    tg_cache_entry_t *entry; /* one reference, or NULL */
    size_t cost;             /* bytes charged for entry */
    tg_cache_flight_t *flight;
};

typedef struct shard {
    pthread_mutex_t mu;
    node_t **table;
    size_t mask; /* table size - 1 */
    size_t n_nodes;
    node_t lru; /* sentinel */
    size_t n_entries, bytes;
    size_t max_entries, max_bytes;
    uint64_t hits, misses, evictions, expirations;
} shard_t;

struct tg_cache {
    shard_t *shards;
    unsigned n_shards;
    tg_cache_clock_fn clock;
    void *clock_arg;
};

/* ------------------------------------------------------------- policy */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* "true"/"false" (any case, surrounding blanks allowed). */
static bool parse_bool(const char *v, bool *out)
{
    v = skip_ws(v);
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 4 && !strncasecmp(v, "true", 4))
        *out = true;
    else if (n == 5 && !strncasecmp(v, "false", 5))
        *out = false;
    else
        return false;
    return true;
}

/* A whole non-negative decimal number (blanks around allowed), saturating. */
static bool parse_count(const char *v, int64_t *out)
{
    v = skip_ws(v);
    if (!isdigit((unsigned char)*v))
        return false;
    int64_t n = 0;
    while (isdigit((unsigned char)*v)) {
        if (n < INT64_MAX / 10 - 10)
            n = n * 10 + (*v - '0');
        v++;
    }
    if (*skip_ws(v))
        return false;
    *out = n;
    return true;
}

/* max-age / s-maxage of a Cache-Control value, in seconds (s-maxage wins),
 * or -1 when there is neither. Other directives are ignored. */
static int64_t cache_control_max_age(const char *v)
{
    int64_t max_age = -1, s_maxage = -1;
    while (*v) {
        v = skip_ws(v);
        const char *end = strchr(v, ',');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        int64_t *dst = NULL;
        size_t plen = 0;
        if (n > 8 && !strncasecmp(v, "max-age=", 8))
            dst = &max_age, plen = 8;
        else if (n > 9 && !strncasecmp(v, "s-maxage=", 9))
            dst = &s_maxage, plen = 9;
        if (dst) {
            char num[24];
            size_t m = n - plen;
            const char *p = v + plen;
            if (m >= 2 && p[0] == '"' && p[m - 1] == '"')
                p++, m -= 2;
            int64_t x;
            if (m < sizeof num) {
                memcpy(num, p, m);
                num[m] = 0;
                if (parse_count(num, &x))
                    *dst = x;
            }
        }
        if (!end)
            break;
        v = end + 1;
    }
    return s_maxage >= 0 ? s_maxage : max_age;
}

static void add_ignore(tg_cache_policy_t *p, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '"'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"'))
        n--;
    if (!n)
        return;
    p->ignore = tg_xrealloc(p->ignore, (p->n_ignore + 1) * sizeof *p->ignore);
    p->ignore[p->n_ignore++] = tg_xstrndup(s, n);
}

/* "a, b,c" — or, leniently, a JSON list of strings ["a","b"]. */
static void parse_ignore_keys(tg_cache_policy_t *p, const char *v)
{
    v = skip_ws(v);
    if (*v == '[') {
        json_t *arr = json_loads(v, 0, NULL);
        if (json_is_array(arr)) {
            size_t i;
            json_t *it;
            json_array_foreach(arr, i, it)
            {
                if (json_is_string(it))
                    add_ignore(p, json_string_value(it), json_string_length(it));
            }
            json_decref(arr);
            return;
        }
        json_decref(arr);
    }
    while (*v) {
        const char *end = strchr(v, ',');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        add_ignore(p, v, n);
        if (!end)
            break;
        v = end + 1;
    }
}

static int policy_error(tg_cache_policy_t *p, char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    p->read = p->save = false;
    return -1;
}

int tg_cache_policy_parse(tg_cache_policy_t *p, bool cfg_enabled, int64_t cfg_ttl_ms,
                          tg_cache_header_fn get, void *ctx, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->bucket_max = 1;
    p->ttl_ms = cfg_ttl_ms;
    if (err && errlen)
        err[0] = 0;

    /* Helicone: Enabled opts in both directions; Save and Read one each.
     * Here the config's caching.enabled is the default for Enabled, and an
     * explicit Read/Save header wins over it for its own direction. */
    bool enabled = cfg_enabled, b;
    const char *v;
    if ((v = get(ctx, "Helicone-Cache-Enabled"))) {
        if (!parse_bool(v, &enabled))
            return policy_error(p, err, errlen, "Helicone-Cache-Enabled must be true or false");
    }
    p->read = p->save = enabled;
    if ((v = get(ctx, "Helicone-Cache-Read"))) {
        if (!parse_bool(v, &b))
            return policy_error(p, err, errlen, "Helicone-Cache-Read must be true or false");
        p->read = b;
    }
    if ((v = get(ctx, "Helicone-Cache-Save"))) {
        if (!parse_bool(v, &b))
            return policy_error(p, err, errlen, "Helicone-Cache-Save must be true or false");
        p->save = b;
    }
    if ((v = get(ctx, "Helicone-Cache-Bucket-Max-Size"))) {
        int64_t n;
        if (!parse_count(v, &n) || n < 1 || n > TG_CACHE_MAX_BUCKETS)
            return policy_error(p, err, errlen,
                                "Helicone-Cache-Bucket-Max-Size must be a number from 1 to 20");
        p->bucket_max = (int)n;
    }
    if ((v = get(ctx, "Cache-Control"))) {
        int64_t s = cache_control_max_age(v);
        if (s >= 0)
            p->ttl_ms = s > TG_CACHE_MAX_TTL_MS / 1000 ? TG_CACHE_MAX_TTL_MS : s * 1000;
    }
    if (p->ttl_ms > TG_CACHE_MAX_TTL_MS)
        p->ttl_ms = TG_CACHE_MAX_TTL_MS;
    if (p->ttl_ms <= 0)
        p->save = false; /* an answer that expires at once is not worth storing */
    if ((v = get(ctx, "Helicone-Cache-Seed")) && *v)
        p->seed = tg_xstrdup(v);
    if ((v = get(ctx, "Helicone-Cache-Ignore-Keys")))
        parse_ignore_keys(p, v);
    return 0;
}

void tg_cache_policy_free(tg_cache_policy_t *p)
{
    for (size_t i = 0; i < p->n_ignore; i++)
        free(p->ignore[i]);
    free(p->ignore);
    free(p->seed);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- key */

/* The body parsed, minus the ignored top-level members; NULL when it is
 * not JSON (or empty). */
static json_t *parse_body(const char *body, size_t len, char *const *ignore, size_t n_ignore)
{
    /* Duplicate keys: the last one counts, as in the providers' parsers. */
    json_t *j = len ? json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    if (j && json_is_object(j))
        for (size_t i = 0; i < n_ignore; i++)
            json_object_del(j, ignore[i]);
    return j;
}

#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

static int buf_sink(const char *buf, size_t len, void *arg)
{
    tg_buf_append(arg, buf, len);
    return 0;
}

static int digest_sink(const char *buf, size_t len, void *arg)
{
    return EVP_DigestUpdate(arg, buf, len) == 1 ? 0 : -1;
}

bool tg_cache_canonical(const char *body, size_t len, char *const *ignore, size_t n_ignore,
                        tg_buf_t *out)
{
    json_t *j = parse_body(body, len, ignore, n_ignore);
    if (!j) {
        if (len)
            tg_buf_append(out, body, len);
        return false;
    }
    json_dump_callback(j, buf_sink, out, CANON_FLAGS);
    json_decref(j);
    return true;
}

/* A length-prefixed field, so ("ab","c") and ("a","bc") differ. */
static void digest_field(EVP_MD_CTX *md, const char *s)
{
    uint64_t n = s ? strlen(s) : 0;
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    EVP_DigestUpdate(md, len, sizeof len);
    if (n)
        EVP_DigestUpdate(md, s, n);
}

/* Hash the request; j is its parsed body, or NULL to take the bytes as
 * they are. Returns false when the JSON could not be written out. */
static bool digest_request(const char *scope, const char *seed, const char *route, const char *body,
                           size_t len, json_t *j, unsigned char digest[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        abort();
    EVP_DigestUpdate(md, KEY_TAG, sizeof KEY_TAG); /* with its NUL */
    digest_field(md, scope);
    digest_field(md, seed);
    digest_field(md, route);
    /* The body goes last, so it needs no length prefix; a marker keeps a
     * JSON body apart from raw bytes that happen to spell its canonical form. */
    EVP_DigestUpdate(md, j ? "J" : "R", 1);
    bool ok = true;
    if (j)
        ok = json_dump_callback(j, digest_sink, md, CANON_FLAGS) == 0;
    else if (len)
        EVP_DigestUpdate(md, body, len);
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(md, digest, &n) != 1 || n != 32)
        abort();
    EVP_MD_CTX_free(md);
    return ok;
}

void tg_cache_key(const tg_cache_policy_t *p, const char *scope, const char *route,
                  const char *body, size_t len, tg_cache_key_t *out)
{
    const char *seed = p ? p->seed : NULL;
    json_t *j = parse_body(body, len, p ? p->ignore : NULL, p ? p->n_ignore : 0);
    if (!digest_request(scope, seed, route, body, len, j, out->digest))
        digest_request(scope, seed, route, body, len, NULL, out->digest);
    json_decref(j);
}

/* ------------------------------------------------------------ entries */

void tg_cache_entry_retain(tg_cache_entry_t *e)
{
    __atomic_add_fetch(&e->refs_, 1, __ATOMIC_RELAXED);
}

void tg_cache_entry_release(tg_cache_entry_t *e)
{
    if (e && __atomic_sub_fetch(&e->refs_, 1, __ATOMIC_ACQ_REL) == 0)
        free(e);
}

/* One allocation: the struct, then content type and body, each NUL-ended. */
static tg_cache_entry_t *entry_new(const tg_cache_answer_t *a, int64_t now, int64_t ttl_ms,
                                   int bucket, size_t *cost)
{
    const char *ct = a->content_type ? a->content_type : "";
    size_t ct_len = strlen(ct);
    size_t size = sizeof(tg_cache_entry_t) + ct_len + 1 + a->body_len + 1;
    tg_cache_entry_t *e = tg_xmalloc(size);
    char *p = (char *)(e + 1);
    memcpy(p, ct, ct_len + 1);
    e->content_type = p;
    p += ct_len + 1;
    if (a->body_len)
        memcpy(p, a->body, a->body_len);
    p[a->body_len] = 0;
    e->body = p;
    e->body_len = a->body_len;
    e->status = a->status;
    e->stream = a->stream;
    e->usage = a->usage;
    e->cost = a->cost;
    e->created_ms = now;
    if (ttl_ms > TG_CACHE_MAX_TTL_MS)
        ttl_ms = TG_CACHE_MAX_TTL_MS;
    e->expires_ms = now + (ttl_ms > 0 ? ttl_ms : 0);
    e->bucket = bucket;
    e->refs_ = 1;
    *cost = size + sizeof(node_t);
    return e;
}

tg_cache_entry_t *tg_cache_entry_make(const tg_cache_answer_t *a, int bucket)
{
    size_t cost;
    return entry_new(a, tg_mono_ms(), 0, bucket, &cost);
}

static bool is_2xx(int status)
{
    return status >= 200 && status <= 299;
}

/* ------------------------------------------------------------- shards */

static int64_t default_clock(void *arg)
{
    (void)arg;
    return tg_mono_ms();
}

static void shard_init(shard_t *s, size_t max_entries, size_t max_bytes)
{
    pthread_mutex_init(&s->mu, NULL);
    s->mask = 63;
    s->table = tg_xcalloc(s->mask + 1, sizeof *s->table);
    s->lru.lru_prev = s->lru.lru_next = &s->lru;
    s->max_entries = max_entries;
    s->max_bytes = max_bytes;
}

tg_cache_t *tg_cache_new(size_t max_entries, size_t max_bytes, tg_cache_clock_fn clock,
                         void *clock_arg)
{
    tg_cache_t *c = tg_xcalloc(1, sizeof *c);
    if (!max_bytes)
        max_bytes = TG_CACHE_DEFAULT_MAX_BYTES;
    c->n_shards = max_entries >= BIG_CACHE ? N_SHARDS : 1;
    c->shards = tg_xcalloc(c->n_shards, sizeof *c->shards);
    for (unsigned i = 0; i < c->n_shards; i++)
        shard_init(&c->shards[i], (max_entries + c->n_shards - 1) / c->n_shards,
                   max_bytes / c->n_shards);
    c->clock = clock ? clock : default_clock;
    c->clock_arg = clock_arg;
    return c;
}

void tg_cache_free(tg_cache_t *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < c->n_shards; i++) {
        shard_t *s = &c->shards[i];
        for (size_t b = 0; b <= s->mask; b++) {
            node_t *n = s->table[b];
            while (n) {
                node_t *next = n->hnext;
                tg_cache_entry_release(n->entry);
                if (n->flight) {
                    /* Broken precondition; free what we own, never a waiter. */
                    free(n->flight);
                }
                free(n);
                n = next;
            }
        }
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(c->shards);
    free(c);
}

static shard_t *shard_for(tg_cache_t *c, const tg_cache_key_t *k)
{
    return &c->shards[k->digest[0] & (c->n_shards - 1)];
}

static uint64_t node_hash(const unsigned char *digest, int bucket)
{
    uint64_t h;
    memcpy(&h, digest + 8, sizeof h); /* uniform: it is SHA-256 output */
    return h ^ ((uint64_t)(bucket + 1) * 0x9E3779B97F4A7C15ull);
}

static node_t *node_find(shard_t *s, const unsigned char *digest, int bucket, uint64_t h)
{
    for (node_t *n = s->table[h & s->mask]; n; n = n->hnext)
        if (n->hash == h && n->bucket == bucket && !memcmp(n->digest, digest, 32))
            return n;
    return NULL;
}

static void table_grow(shard_t *s)
{
    size_t size = (s->mask + 1) * 2;
    node_t **t = tg_xcalloc(size, sizeof *t);
    for (size_t b = 0; b <= s->mask; b++) {
        node_t *n = s->table[b];
        while (n) {
            node_t *next = n->hnext;
            n->hnext = t[n->hash & (size - 1)];
            t[n->hash & (size - 1)] = n;
            n = next;
        }
    }
    free(s->table);
    s->table = t;
    s->mask = size - 1;
}

static node_t *node_add(shard_t *s, const unsigned char *digest, int bucket, uint64_t h)
{
    if (s->n_nodes >= s->mask + 1)
        table_grow(s);
    node_t *n = tg_xcalloc(1, sizeof *n);
    memcpy(n->digest, digest, 32);
    n->bucket = bucket;
    n->hash = h;
    n->hnext = s->table[h & s->mask];
    s->table[h & s->mask] = n;
    s->n_nodes++;
    return n;
}

/* Unlink and free a node that holds neither entry nor flight. */
static void node_drop(shard_t *s, node_t *n)
{
    node_t **pp = &s->table[n->hash & s->mask];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    s->n_nodes--;
    free(n);
}

static void lru_unlink(node_t *n)
{
    n->lru_prev->lru_next = n->lru_next;
    n->lru_next->lru_prev = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
}

static void lru_push_head(shard_t *s, node_t *n)
{
    n->lru_next = s->lru.lru_next;
    n->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = n;
    s->lru.lru_next = n;
}

/* Take a node's entry off the LRU and the counts; the node stays. */
static void entry_detach(shard_t *s, node_t *n)
{
    lru_unlink(n);
    s->n_entries--;
    s->bytes -= n->cost;
    tg_cache_entry_release(n->entry);
    n->entry = NULL;
    n->cost = 0;
}

/* Remove a node's entry; the node goes too unless a flight still needs it.
 * Returns false when the node was freed. */
static bool entry_remove(shard_t *s, node_t *n)
{
    entry_detach(s, n);
    if (!n->flight) {
        node_drop(s, n);
        return false;
    }
    return true;
}

/* Put entry e (a reference now owned by the node) into n, evicting from the
 * LRU tail until the bounds hold. The caller checked that e fits at all. */
static void entry_insert(shard_t *s, node_t *n, tg_cache_entry_t *e, size_t cost)
{
    if (n->entry)
        entry_detach(s, n);
    /* n is off the LRU list now, so it is never its own victim. */
    while (s->n_entries && (s->n_entries + 1 > s->max_entries || s->bytes + cost > s->max_bytes)) {
        s->evictions++;
        entry_remove(s, s->lru.lru_prev);
    }
    n->entry = e;
    n->cost = cost;
    s->n_entries++;
    s->bytes += cost;
    lru_push_head(s, n);
}

static bool fits(const shard_t *s, size_t cost)
{
    return s->max_entries > 0 && cost <= s->max_bytes;
}

/* The node of (key, bucket) with a live entry, else NULL; an expired entry
 * is removed on the way (and so is its node when nothing else needs it). */
static node_t *live_node(shard_t *s, const tg_cache_key_t *k, int bucket, int64_t now)
{
    uint64_t h = node_hash(k->digest, bucket);
    node_t *n = node_find(s, k->digest, bucket, h);
    if (n && n->entry && n->entry->expires_ms <= now) {
        s->expirations++;
        if (!entry_remove(s, n))
            n = NULL;
    }
    return n;
}

/* ------------------------------------------------------------- lookup */

static int clamp_buckets(int bucket_max)
{
    if (bucket_max < 1)
        return 1;
    return bucket_max > TG_CACHE_MAX_BUCKETS ? TG_CACHE_MAX_BUCKETS : bucket_max;
}

void tg_cache_lookup(tg_cache_t *c, const tg_cache_key_t *key, int bucket_max, bool will_save,
                     tg_cache_wake_fn wake, void *wake_arg, tg_cache_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->status = TG_CACHE_MISS;
    out->bucket = -1;
    bucket_max = clamp_buckets(bucket_max);
    shard_t *s = shard_for(c, key);
    int64_t now = c->clock(c->clock_arg);
    node_t *filled[TG_CACHE_MAX_BUCKETS];
    int n_filled = 0, first_free = -1;
    node_t *fetching = NULL;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < bucket_max; i++) {
        node_t *n = live_node(s, key, i, now);
        if (n && n->entry)
            filled[n_filled++] = n;
        else if (n && n->flight) {
            if (!fetching)
                fetching = n;
        } else if (first_free < 0)
            first_free = i;
    }
    if (n_filled == bucket_max) {
        /* Every bucket answered: serve one at random (Helicone). */
        node_t *n = filled[bucket_max > 1 ? tg_random_u64() % (uint64_t)bucket_max : 0];
        lru_unlink(n);
        lru_push_head(s, n);
        tg_cache_entry_retain(n->entry);
        out->status = TG_CACHE_HIT;
        out->entry = n->entry;
        out->bucket = n->bucket;
        s->hits++;
    } else if (will_save && first_free >= 0) {
        node_t *n = node_add(s, key->digest, first_free, node_hash(key->digest, first_free));
        tg_cache_flight_t *f = tg_xcalloc(1, sizeof *f);
        f->node = n;
        f->shard = s;
        n->flight = f;
        out->status = TG_CACHE_MISS_LEADER;
        out->flight = f;
        out->bucket = first_free;
        s->misses++;
    } else if (wake && fetching) {
        tg_cache_waiter_t *w = tg_xcalloc(1, sizeof *w);
        w->fn = wake;
        w->arg = wake_arg;
        w->shard = s;
        tg_cache_flight_t *f = fetching->flight;
        w->flight = f;
        w->next = f->waiters;
        if (f->waiters)
            f->waiters->prev = w;
        f->waiters = w;
        out->status = TG_CACHE_MISS_WAIT;
        out->waiter = w;
        out->bucket = fetching->bucket;
        s->misses++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* End a flight under the shard lock: wake its waiters with e (each gets
 * its own reference) and drop the node if nothing is left in it. */
static void flight_end(shard_t *s, tg_cache_flight_t *f, tg_cache_entry_t *e)
{
    node_t *n = f->node;
    n->flight = NULL;
    tg_cache_waiter_t *w = f->waiters;
    while (w) {
        tg_cache_waiter_t *next = w->next;
        w->prev = w->next = NULL;
        w->flight = NULL;
        w->delivered = true;
        if (e)
            tg_cache_entry_retain(e);
        /* Lock held: tg_cache_unwait cannot run concurrently, and w stays
         * valid until its owner unwaits (after we unlock). */
        w->fn(w->arg, e);
        w = next;
    }
    f->waiters = NULL;
    if (!n->entry)
        node_drop(s, n);
    free(f);
}

bool tg_cache_complete(tg_cache_t *c, tg_cache_flight_t *f, const tg_cache_answer_t *a,
                       int64_t ttl_ms)
{
    if (!a || !is_2xx(a->status)) {
        tg_cache_abandon(c, f);
        return false;
    }
    shard_t *s = f->shard;
    size_t cost;
    tg_cache_entry_t *e = entry_new(a, c->clock(c->clock_arg), ttl_ms, f->node->bucket, &cost);
    bool stored = false;
    pthread_mutex_lock(&s->mu);
    if (ttl_ms > 0 && fits(s, cost)) {
        tg_cache_entry_retain(e);
        entry_insert(s, f->node, e, cost);
        stored = true;
    }
    flight_end(s, f, e); /* waiters get the answer even when it was too big to keep */
    pthread_mutex_unlock(&s->mu);
    tg_cache_entry_release(e);
    return stored;
}

void tg_cache_abandon(tg_cache_t *c, tg_cache_flight_t *f)
{
    (void)c;
    shard_t *s = f->shard;
    pthread_mutex_lock(&s->mu);
    flight_end(s, f, NULL);
    pthread_mutex_unlock(&s->mu);
}

bool tg_cache_unwait(tg_cache_t *c, tg_cache_waiter_t *w)
{
    (void)c;
    shard_t *s = w->shard;
    pthread_mutex_lock(&s->mu);
    bool delivered = w->delivered;
    if (!delivered) {
        if (w->prev)
            w->prev->next = w->next;
        else
            w->flight->waiters = w->next;
        if (w->next)
            w->next->prev = w->prev;
    }
    pthread_mutex_unlock(&s->mu);
    free(w);
    return delivered;
}

int tg_cache_store(tg_cache_t *c, const tg_cache_key_t *key, int bucket_max,
                   const tg_cache_answer_t *a, int64_t ttl_ms)
{
    if (!a || !is_2xx(a->status) || ttl_ms <= 0)
        return -1;
    bucket_max = clamp_buckets(bucket_max);
    shard_t *s = shard_for(c, key);
    int64_t now = c->clock(c->clock_arg);
    int bucket = -1;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < bucket_max && bucket < 0; i++) {
        node_t *n = live_node(s, key, i, now);
        if (!n)
            bucket = i;
    }
    pthread_mutex_unlock(&s->mu);
    if (bucket < 0)
        return -1;

    /* Build the copy outside the lock, then re-check the bucket is free. */
    size_t cost;
    tg_cache_entry_t *e = entry_new(a, now, ttl_ms, bucket, &cost);
    int result = -1;
    pthread_mutex_lock(&s->mu);
    uint64_t h = node_hash(key->digest, bucket);
    if (!node_find(s, key->digest, bucket, h) && fits(s, cost)) {
        entry_insert(s, node_add(s, key->digest, bucket, h), e, cost);
        e = NULL;
        result = bucket;
    }
    pthread_mutex_unlock(&s->mu);
    tg_cache_entry_release(e);
    return result;
}

void tg_cache_stats(tg_cache_t *c, tg_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < c->n_shards; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->entries += s->n_entries;
        out->bytes += s->bytes;
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        pthread_mutex_unlock(&s->mu);
    }
}
