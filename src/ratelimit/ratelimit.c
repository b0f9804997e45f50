/*
 * ratelimit.c — GCRA rate limits per key, the Helicone-RateLimit-Policy
 * parser and the registry of runtime limits. See ratelimit.h.
 *
 * Owns: the per-key states (sharded hash tables with an LRU list each) and
 * the registry's rules.
 *
 * The algorithm: GCRA in its equivalent "continuous-state leaky bucket"
 * form, in exact integer arithmetic. For a limit of Q units per W ms a key
 * keeps `level` = (units in the bucket) x W, in unit-milliseconds, and the
 * time it was last brought up to date. The bucket drains Q unit-ms per ms
 * (one unit per W/Q ms) and holds at most Q x W. n units fit when
 * level + n x W <= Q x W; a denied request may retry after
 * ceil((level + n x W - Q x W) / Q) ms, exactly when they fit. In GCRA's own
 * terms level / Q is TAT - now, the emission interval is W/Q and the burst
 * tolerance W - W/Q. 128-bit arithmetic: Q x W overflows 64 bits for a
 * spend limit over a year counted in micro-dollars.
 *
 * Invariants (under the shard lock): every node is on its shard's table and
 * LRU list (head = most recently used); n_nodes <= max_nodes; level >= 0.
 * A node whose level has drained to 0 is the same as no node, so dropping
 * it loses nothing; dropping a live one (table full) forgives its debt.
 *
 * Threads: any; the per-key state is behind the shard mutexes, the
 * registry behind a read-write lock.
 */
#include "ratelimit/ratelimit.h"

#include "config/config.h" /* tg_config_parse_duration */

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef __int128 i128;

#define DEFAULT_MAX_KEYS 100000
#define BIG_LIMITER      1024 /* from this many keys on, shard */
#define N_SHARDS         16
/* Bounds that keep every product below 2^127: quota <= 2^53, window <=
 * 2^36 ms (about two years), so the capacity is below 2^89; a debt is
 * capped at 2^90 unit-ms. */
#define MAX_QUOTA_UNITS ((int64_t)1 << 53)
#define MAX_WINDOW_MS   ((int64_t)1 << 36)
#define MAX_CHARGE      ((int64_t)1 << 52)
#define MAX_LEVEL       ((i128)1 << 90)
#define MAX_RULES       10000

typedef struct rl_node {
    uint64_t hash;
    struct rl_node *hnext;
    struct rl_node *lru_prev, *lru_next;
    int64_t quota, window_ms; /* the limit level was measured against */
    int64_t t_ms;             /* level is as of this time */
    i128 level;               /* unit-ms still in the bucket */
    size_t key_len;
    char key[];
} rl_node_t;

typedef struct {
    pthread_mutex_t mu;
    rl_node_t **table;
    size_t mask;
    size_t n_nodes, max_nodes;
    rl_node_t lru; /* sentinel */
} rl_shard_t;

struct tg_rl {
    rl_shard_t *shards;
    unsigned n_shards;
    uint64_t k0, k1; /* SipHash key: keys come from clients */
    tg_rl_clock_fn clock;
    void *clock_arg;
};

/* ------------------------------------------------------------ hashing */

/* SipHash-2-4 (Aumasson and Bernstein), so clients choosing IPs, user ids
 * or property values cannot pile their keys into one chain. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    uint64_t b = (uint64_t)len << 56;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int j = 0; j < 8; j++)
            m |= (uint64_t)in[i + j] << (8 * j);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (int j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------- limiter */

static int64_t default_clock(void *arg)
{
    (void)arg;
    return tg_mono_ms();
}

tg_rl_t *tg_rl_new(size_t max_keys, tg_rl_clock_fn clock, void *clock_arg)
{
    tg_rl_t *rl = tg_xcalloc(1, sizeof *rl);
    if (!max_keys)
        max_keys = DEFAULT_MAX_KEYS;
    rl->n_shards = max_keys >= BIG_LIMITER ? N_SHARDS : 1;
    rl->shards = tg_xcalloc(rl->n_shards, sizeof *rl->shards);
    for (unsigned i = 0; i < rl->n_shards; i++) {
        rl_shard_t *s = &rl->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->mask = 63;
        s->table = tg_xcalloc(s->mask + 1, sizeof *s->table);
        s->lru.lru_prev = s->lru.lru_next = &s->lru;
        s->max_nodes = (max_keys + rl->n_shards - 1) / rl->n_shards;
    }
    rl->k0 = tg_random_u64();
    rl->k1 = tg_random_u64();
    rl->clock = clock ? clock : default_clock;
    rl->clock_arg = clock_arg;
    return rl;
}

void tg_rl_free(tg_rl_t *rl)
{
    if (!rl)
        return;
    for (unsigned i = 0; i < rl->n_shards; i++) {
        rl_shard_t *s = &rl->shards[i];
        rl_node_t *n = s->lru.lru_next;
        while (n != &s->lru) {
            rl_node_t *next = n->lru_next;
            free(n);
            n = next;
        }
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(rl->shards);
    free(rl);
}

static void lru_unlink(rl_node_t *n)
{
    n->lru_prev->lru_next = n->lru_next;
    n->lru_next->lru_prev = n->lru_prev;
}

static void lru_push_head(rl_shard_t *s, rl_node_t *n)
{
    n->lru_next = s->lru.lru_next;
    n->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = n;
    s->lru.lru_next = n;
}

static void node_drop(rl_shard_t *s, rl_node_t *n)
{
    rl_node_t **pp = &s->table[n->hash & s->mask];
    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    lru_unlink(n);
    s->n_nodes--;
    free(n);
}

static void table_grow(rl_shard_t *s)
{
    size_t size = (s->mask + 1) * 2;
    rl_node_t **t = tg_xcalloc(size, sizeof *t);
    for (size_t b = 0; b <= s->mask; b++) {
        rl_node_t *n = s->table[b];
        while (n) {
            rl_node_t *next = n->hnext;
            n->hnext = t[n->hash & (size - 1)];
            t[n->hash & (size - 1)] = n;
            n = next;
        }
    }
    free(s->table);
    s->table = t;
    s->mask = size - 1;
}

static rl_node_t *node_find(rl_shard_t *s, const char *key, size_t len, uint64_t h)
{
    for (rl_node_t *n = s->table[h & s->mask]; n; n = n->hnext)
        if (n->hash == h && n->key_len == len && !memcmp(n->key, key, len))
            return n;
    return NULL;
}

/* Bring n's level up to `now` under `lim`: drain, then rescale if the limit
 * changed (config reload, another policy quota), keeping the units held. */
static void node_update(rl_node_t *n, const tg_rl_limit_t *lim, int64_t now)
{
    int64_t elapsed = now - n->t_ms;
    if (elapsed > 0) {
        i128 drained = (i128)n->quota * elapsed;
        n->level = n->level > drained ? n->level - drained : 0;
        n->t_ms = now;
    }
    if (n->quota != lim->quota || n->window_ms != lim->window_ms) {
        /* Same units held, measured against the new window; split so the
         * product stays in range. */
        i128 w0 = n->window_ms, w1 = lim->window_ms;
        n->level = n->level / w0 * w1 + n->level % w0 * w1 / w0;
        if (n->level > MAX_LEVEL)
            n->level = MAX_LEVEL;
        n->quota = lim->quota;
        n->window_ms = lim->window_ms;
    }
}

static bool node_idle(const rl_node_t *n, int64_t now)
{
    int64_t elapsed = now - n->t_ms;
    return n->level <= (elapsed > 0 ? (i128)n->quota * elapsed : 0);
}

/* Drop idle nodes from the LRU tail (at most two a call, so O(1)). */
static void sweep(rl_shard_t *s, int64_t now)
{
    for (int i = 0; i < 2; i++) {
        rl_node_t *n = s->lru.lru_prev;
        if (n == &s->lru || !node_idle(n, now))
            return;
        node_drop(s, n);
    }
}

static rl_node_t *node_add(rl_shard_t *s, const char *key, size_t len, uint64_t h,
                           const tg_rl_limit_t *lim, int64_t now)
{
    if (s->n_nodes >= s->max_nodes)
        node_drop(s, s->lru.lru_prev); /* full: the least recently used goes */
    if (s->n_nodes >= s->mask + 1)
        table_grow(s);
    rl_node_t *n = tg_xcalloc(1, sizeof *n + len + 1);
    n->hash = h;
    n->quota = lim->quota;
    n->window_ms = lim->window_ms;
    n->t_ms = now;
    n->key_len = len;
    memcpy(n->key, key, len);
    n->hnext = s->table[h & s->mask];
    s->table[h & s->mask] = n;
    lru_push_head(s, n);
    s->n_nodes++;
    return n;
}

static i128 ceil_div(i128 a, i128 b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

static int64_t clamp64(i128 v)
{
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

/* The decision for `need` units against `level`, filling out. */
static bool decide(const tg_rl_limit_t *lim, i128 level, int64_t n, tg_rl_result_t *out)
{
    i128 w = lim->window_ms, cap = (i128)lim->quota * w;
    int64_t need = n > 1 ? n : 1;
    bool ok = need <= lim->quota && level + (i128)need * w <= cap;
    out->allowed = ok;
    out->limit = lim->quota;
    i128 after = ok ? level + (i128)(n > 0 ? n : 0) * w : level;
    out->remaining = after >= cap ? 0 : clamp64((cap - after) / w);
    out->reset_ms = clamp64(ceil_div(after, lim->quota));
    if (ok)
        out->retry_after_ms = 0;
    else if (need > lim->quota)
        out->retry_after_ms = -1;
    else
        out->retry_after_ms = clamp64(ceil_div(level + (i128)need * w - cap, lim->quota));
    return ok;
}

/* False for "no limit"; otherwise *out is lim within the bounds above. */
static bool norm_limit(const tg_rl_limit_t *lim, tg_rl_limit_t *out)
{
    if (lim->quota <= 0 || lim->window_ms <= 0)
        return false;
    out->quota = lim->quota < MAX_QUOTA_UNITS ? lim->quota : MAX_QUOTA_UNITS;
    out->window_ms = lim->window_ms < MAX_WINDOW_MS ? lim->window_ms : MAX_WINDOW_MS;
    return true;
}

static int64_t clamp_n(int64_t n)
{
    return n > MAX_CHARGE ? MAX_CHARGE : n < -MAX_CHARGE ? -MAX_CHARGE : n;
}

static void unlimited(tg_rl_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->allowed = true;
}

/* The shard of key, its hash, and (when present) its node brought up to now.
 * Returns with the shard locked. */
static rl_node_t *locate(tg_rl_t *rl, const char *key, const tg_rl_limit_t *lim, int64_t now,
                         rl_shard_t **sp, uint64_t *hp)
{
    size_t len = strlen(key);
    uint64_t h = siphash(rl->k0, rl->k1, (const unsigned char *)key, len);
    rl_shard_t *s = &rl->shards[(h >> 60) & (rl->n_shards - 1)];
    pthread_mutex_lock(&s->mu);
    rl_node_t *n = node_find(s, key, len, h);
    if (n) {
        node_update(n, lim, now);
        lru_unlink(n);
        lru_push_head(s, n);
    }
    *sp = s;
    *hp = h;
    return n;
}

void tg_rl_acquire(tg_rl_t *rl, const char *key, const tg_rl_limit_t *limit, int64_t n,
                   tg_rl_result_t *out)
{
    tg_rl_limit_t l, *lim = &l;
    if (!norm_limit(limit, &l)) {
        unlimited(out);
        return;
    }
    n = clamp_n(n);
    int64_t now = rl->clock(rl->clock_arg);
    rl_shard_t *s;
    uint64_t h;
    rl_node_t *node = locate(rl, key, lim, now, &s, &h);
    bool ok = decide(lim, node ? node->level : 0, n, out);
    if (ok && n > 0) {
        if (!node)
            node = node_add(s, key, strlen(key), h, lim, now);
        node->level += (i128)n * lim->window_ms;
    }
    sweep(s, now);
    pthread_mutex_unlock(&s->mu);
}

void tg_rl_charge(tg_rl_t *rl, const char *key, const tg_rl_limit_t *limit, int64_t n)
{
    tg_rl_limit_t l, *lim = &l;
    if (!norm_limit(limit, &l) || n == 0)
        return;
    n = clamp_n(n);
    int64_t now = rl->clock(rl->clock_arg);
    rl_shard_t *s;
    uint64_t h;
    rl_node_t *node = locate(rl, key, lim, now, &s, &h);
    if (!node && n > 0)
        node = node_add(s, key, strlen(key), h, lim, now);
    if (node) {
        node->level += (i128)n * lim->window_ms;
        if (node->level < 0)
            node->level = 0;
        if (node->level > MAX_LEVEL)
            node->level = MAX_LEVEL;
    }
    sweep(s, now);
    pthread_mutex_unlock(&s->mu);
}

void tg_rl_peek(tg_rl_t *rl, const char *key, const tg_rl_limit_t *lim, tg_rl_result_t *out)
{
    tg_rl_acquire(rl, key, lim, 0, out);
}

int tg_rl_acquire_all(tg_rl_t *rl, const tg_rl_check_t *checks, size_t n_checks,
                      tg_rl_result_t *results)
{
    memset(results, 0, n_checks * sizeof *results);
    for (size_t i = 0; i < n_checks; i++) {
        tg_rl_acquire(rl, checks[i].key, &checks[i].limit, checks[i].n, &results[i]);
        if (!results[i].allowed) {
            for (size_t j = 0; j < i; j++)
                tg_rl_charge(rl, checks[j].key, &checks[j].limit, -checks[j].n);
            return (int)i;
        }
    }
    return -1;
}

size_t tg_rl_size(tg_rl_t *rl)
{
    size_t n = 0;
    for (unsigned i = 0; i < rl->n_shards; i++) {
        pthread_mutex_lock(&rl->shards[i].mu);
        n += rl->shards[i].n_nodes;
        pthread_mutex_unlock(&rl->shards[i].mu);
    }
    return n;
}

/* -------------------------------------------------------------- policy */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* [s, e) without surrounding blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* A whole decimal number in [s, e), at most `max`. */
static bool whole(const char *s, const char *e, int64_t max, int64_t *out)
{
    if (s == e)
        return false;
    int64_t v = 0;
    for (; s < e; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
        v = v * 10 + (*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static bool span_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - s) == n && !strncasecmp(s, word, n);
}

#define MAX_QUOTA 1000000000000LL /* 1e12 of anything per window */

int tg_rl_policy_parse(const char *str, tg_rl_policy_t *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!str)
        return fail(err, errlen, "empty rate-limit policy");
    const char *s = str, *end = str + strlen(str);
    const char *semi = memchr(s, ';', (size_t)(end - s));
    const char *qe = semi ? semi : end;
    trim(&s, &qe);
    if (!whole(s, qe, MAX_QUOTA, &p->quota) || p->quota < 1)
        return fail(err, errlen,
                    "rate-limit policy must start with a whole quota of at least 1 "
                    "(e.g. \"100;w=60\")");
    bool have_w = false, have_u = false, have_s = false;
    while (semi) {
        const char *ps = semi + 1;
        semi = memchr(ps, ';', (size_t)(end - ps));
        const char *pe = semi ? semi : end;
        trim(&ps, &pe);
        if (ps == pe)
            continue; /* tolerate "100;w=60;" */
        const char *eq = memchr(ps, '=', (size_t)(pe - ps));
        if (!eq) {
            char bad[32];
            snprintf(bad, sizeof bad, "%.*s", (int)(pe - ps), ps);
            return fail(err, errlen, "rate-limit policy parameter \"%s\" is not name=value", bad);
        }
        const char *ns = ps, *ne = eq, *vs = eq + 1, *ve = pe;
        trim(&ns, &ne);
        trim(&vs, &ve);
        if (span_is(ns, ne, "w")) {
            if (have_w)
                return fail(err, errlen, "rate-limit policy gives w= twice");
            have_w = true;
            if (!whole(vs, ve, TG_RL_POLICY_MAX_WINDOW_S, &p->window_s) ||
                p->window_s < TG_RL_POLICY_MIN_WINDOW_S)
                return fail(err, errlen,
                            "rate-limit policy w= must be a whole number of seconds from 60 "
                            "to 31536000");
        } else if (span_is(ns, ne, "u")) {
            if (have_u)
                return fail(err, errlen, "rate-limit policy gives u= twice");
            have_u = true;
            if (tg_rl_unit_parse(vs, (size_t)(ve - vs), &p->unit) < 0)
                return fail(err, errlen,
                            "rate-limit policy u= must be request or cents (or token)");
        } else if (span_is(ns, ne, "s")) {
            if (have_s)
                return fail(err, errlen, "rate-limit policy gives s= twice");
            have_s = true;
            if (span_is(vs, ve, "user")) {
                p->segment = TG_RL_SEGMENT_USER;
            } else {
                size_t n = (size_t)(ve - vs);
                if (n == 0 || n >= sizeof p->property)
                    return fail(err, errlen,
                                "rate-limit policy s= must be user or a property name (1 to 63 "
                                "characters)");
                for (size_t i = 0; i < n; i++) {
                    unsigned char c = (unsigned char)vs[i];
                    if (!isalnum(c) && c != '-' && c != '_' && c != '.')
                        return fail(err, errlen,
                                    "rate-limit policy s= property name may hold letters, "
                                    "digits, '-', '_' and '.'");
                    p->property[i] = (char)tolower(c);
                }
                p->property[n] = 0;
                p->segment = TG_RL_SEGMENT_PROPERTY;
            }
        } else {
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(ne - ns), ns);
            return fail(err, errlen,
                        "rate-limit policy has an unknown parameter \"%s\" (expected w=, u=, s=)",
                        name);
        }
    }
    if (!have_w)
        return fail(err, errlen, "rate-limit policy needs a window: \"Q;w=SECONDS\"");
    return 0;
}

const char *tg_rl_unit_name(tg_rl_unit_t unit)
{
    static const char *names[] = {"request", "cents", "token"};
    return (unsigned)unit < 3 ? names[unit] : "request";
}

int tg_rl_unit_parse(const char *s, size_t len, tg_rl_unit_t *out)
{
    const char *e = s + len;
    if (span_is(s, e, "request") || span_is(s, e, "requests"))
        *out = TG_RL_UNIT_REQUEST;
    else if (span_is(s, e, "cents"))
        *out = TG_RL_UNIT_CENTS;
    else if (span_is(s, e, "token") || span_is(s, e, "tokens"))
        *out = TG_RL_UNIT_TOKEN;
    else
        return -1;
    return 0;
}

void tg_rl_policy_format(const tg_rl_policy_t *p, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%lld;w=%lld", (long long)p->quota, (long long)p->window_s);
    if (n < 0 || (size_t)n >= len)
        return;
    if (p->unit != TG_RL_UNIT_REQUEST)
        n += snprintf(buf + n, len - (size_t)n, ";u=%s", tg_rl_unit_name(p->unit));
    if (n < 0 || (size_t)n >= len)
        return;
    if (p->segment == TG_RL_SEGMENT_USER)
        snprintf(buf + n, len - (size_t)n, ";s=user");
    else if (p->segment == TG_RL_SEGMENT_PROPERTY)
        snprintf(buf + n, len - (size_t)n, ";s=%s", p->property);
}

tg_rl_limit_t tg_rl_policy_limit(const tg_rl_policy_t *p)
{
    tg_rl_limit_t lim = {p->quota, p->window_s * 1000};
    if (p->unit == TG_RL_UNIT_CENTS)
        lim.quota = p->quota * TG_RL_MICROS_PER_CENT;
    return lim;
}

int64_t tg_rl_usd_units(double usd)
{
    if (!(usd > 0))
        return 0;
    double u = usd * 1e6;
    return u >= 9e18 ? INT64_MAX : (int64_t)llround(u);
}

int tg_rl_policy_key(const tg_rl_policy_t *p, const char *scope, const char *segment_value,
                     tg_buf_t *out)
{
    if (p->segment != TG_RL_SEGMENT_GLOBAL && (!segment_value || !*segment_value))
        return -1;
    char pol[128];
    tg_rl_policy_format(p, pol, sizeof pol);
    /* The canonical policy holds no '|'; the scope is length-prefixed and the
     * segment value comes last, so no two inputs share a key. */
    tg_buf_printf(out, "pol|%s|%zu:%s|", pol, scope ? strlen(scope) : 0, scope ? scope : "");
    if (p->segment == TG_RL_SEGMENT_GLOBAL)
        tg_buf_puts(out, "global");
    else {
        tg_buf_puts(out, p->segment == TG_RL_SEGMENT_USER ? "user" : p->property);
        tg_buf_puts(out, "=");
        tg_buf_puts(out, segment_value);
    }
    return 0;
}

void tg_rl_headers(const tg_rl_policy_t *p, const tg_rl_result_t *r, tg_rl_headers_t *out)
{
    int64_t scale = p->unit == TG_RL_UNIT_CENTS ? TG_RL_MICROS_PER_CENT : 1;
    snprintf(out->limit, sizeof out->limit, "%lld", (long long)p->quota);
    snprintf(out->remaining, sizeof out->remaining, "%lld", (long long)(r->remaining / scale));
    tg_rl_policy_format(p, out->policy, sizeof out->policy);
    int64_t ms = r->retry_after_ms < 0 ? p->window_s * 1000 : r->retry_after_ms;
    int64_t secs = (ms + 999) / 1000;
    snprintf(out->retry_after, sizeof out->retry_after, "%lld", (long long)(secs < 1 ? 1 : secs));
}

/* ------------------------------------------------------------ registry */

struct tg_rl_registry {
    pthread_rwlock_t lock;
    tg_rl_rule_t *rules;
    size_t n, cap;
};

tg_rl_registry_t *tg_rl_registry_new(void)
{
    tg_rl_registry_t *reg = tg_xcalloc(1, sizeof *reg);
    pthread_rwlock_init(&reg->lock, NULL);
    return reg;
}

void tg_rl_registry_free(tg_rl_registry_t *reg)
{
    if (!reg)
        return;
    pthread_rwlock_destroy(&reg->lock);
    free(reg->rules);
    free(reg);
}

static bool copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

int tg_rl_rule_parse_json(const char *json, size_t len, tg_rl_rule_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return fail(err, errlen, "the body must be a JSON object");
    }
    int rc = -1;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "property") && strcmp(k, "value") && strcmp(k, "limit") &&
            strcmp(k, "window") && strcmp(k, "unit")) {
            fail(err, errlen,
                 "unknown member \"%s\" (expected property, value, limit, window, unit)", k);
            goto done;
        }
    }
    v = json_object_get(o, "property");
    if (!json_is_string(v) ||
        !copy_text(out->property, sizeof out->property, json_string_value(v))) {
        fail(err, errlen, "\"property\" must be a property name of 1 to 63 characters");
        goto done;
    }
    for (const char *c = out->property; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') {
            fail(err, errlen, "\"property\" may hold letters, digits, '-', '_' and '.'");
            goto done;
        }
    v = json_object_get(o, "value");
    if (!json_is_string(v) || !copy_text(out->value, sizeof out->value, json_string_value(v))) {
        fail(err, errlen, "\"value\" must be a string of 1 to 255 bytes");
        goto done;
    }
    v = json_object_get(o, "limit");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_QUOTA) {
        fail(err, errlen, "\"limit\" must be a whole number of at least 1");
        goto done;
    }
    out->policy.quota = json_integer_value(v);
    v = json_object_get(o, "window");
    int64_t ms = -1;
    if (json_is_integer(v)) {
        json_int_t secs = json_integer_value(v);
        ms = secs >= 1 && secs <= TG_RL_POLICY_MAX_WINDOW_S ? (int64_t)secs * 1000 : -1;
    } else if (json_is_string(v) && tg_config_parse_duration(json_string_value(v), &ms) < 0)
        ms = -1;
    if (ms < 1000 || ms > (int64_t)TG_RL_POLICY_MAX_WINDOW_S * 1000 || ms % 1000) {
        fail(err, errlen,
             "\"window\" must be whole seconds from 1s to 365d: 60, \"30s\", \"1m\", \"1h\", "
             "\"1d\"");
        goto done;
    }
    out->policy.window_s = ms / 1000;
    v = json_object_get(o, "unit");
    if (v && (!json_is_string(v) || tg_rl_unit_parse(json_string_value(v), json_string_length(v),
                                                     &out->policy.unit) < 0)) {
        fail(err, errlen, "\"unit\" must be request, cents or token");
        goto done;
    }
    tg_rl_rule_normalize(out);
    rc = 0;
done:
    json_decref(o);
    return rc;
}

void tg_rl_rule_normalize(tg_rl_rule_t *rule)
{
    rule->policy.segment = TG_RL_SEGMENT_PROPERTY;
    /* property and policy.property are both 64 bytes */
    for (size_t i = 0; i < sizeof rule->policy.property; i++) {
        rule->policy.property[i] = (char)tolower((unsigned char)rule->property[i]);
        if (!rule->property[i])
            break;
    }
}

static bool rule_ok(const tg_rl_rule_t *r)
{
    return r->property[0] && r->value[0] && r->policy.quota >= 1 && r->policy.window_s >= 1 &&
           memchr(r->id, 0, sizeof r->id) && memchr(r->property, 0, sizeof r->property) &&
           memchr(r->value, 0, sizeof r->value);
}

int tg_rl_registry_add(tg_rl_registry_t *reg, tg_rl_rule_t *rule)
{
    if (!rule_ok(rule))
        return -1;
    if (!rule->id[0])
        tg_uuid4(rule->id);
    tg_rl_rule_normalize(rule);
    int rc = 0;
    pthread_rwlock_wrlock(&reg->lock);
    for (size_t i = 0; i < reg->n; i++)
        if (!strcmp(reg->rules[i].id, rule->id))
            rc = -1;
    if (rc == 0 && reg->n >= MAX_RULES)
        rc = -1;
    if (rc == 0) {
        if (reg->n == reg->cap) {
            reg->cap = reg->cap ? reg->cap * 2 : 8;
            reg->rules = tg_xrealloc(reg->rules, reg->cap * sizeof *reg->rules);
        }
        reg->rules[reg->n++] = *rule;
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

bool tg_rl_registry_remove(tg_rl_registry_t *reg, const char *id)
{
    bool found = false;
    pthread_rwlock_wrlock(&reg->lock);
    for (size_t i = 0; i < reg->n; i++)
        if (!strcmp(reg->rules[i].id, id)) {
            memmove(&reg->rules[i], &reg->rules[i + 1], (reg->n - i - 1) * sizeof *reg->rules);
            reg->n--;
            found = true;
            break;
        }
    pthread_rwlock_unlock(&reg->lock);
    return found;
}

size_t tg_rl_registry_list(tg_rl_registry_t *reg, tg_rl_rule_t **out)
{
    pthread_rwlock_rdlock(&reg->lock);
    size_t n = reg->n;
    *out = tg_xmalloc((n ? n : 1) * sizeof **out);
    if (n)
        memcpy(*out, reg->rules, n * sizeof **out);
    pthread_rwlock_unlock(&reg->lock);
    return n;
}

size_t tg_rl_registry_match(tg_rl_registry_t *reg, tg_rl_property_fn prop, void *ctx,
                            tg_rl_rule_t *out, size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->n; i++) {
        const char *v = prop(ctx, reg->rules[i].property);
        if (v && !strcmp(v, reg->rules[i].value)) {
            if (n < max)
                out[n] = reg->rules[i];
            n++;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return n;
}
