/* The response cache: key canonicalisation, policy headers, buckets, LRU,
 * TTL, byte bound and single flight (src/cache/cache.h). */
#include "test.h"

#include "cache/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

typedef struct {
    _Atomic int64_t now;
} sim_clock_t;

static int64_t sim_now(void *arg)
{
    return atomic_load(&((sim_clock_t *)arg)->now);
}

/* Headers as a NULL-terminated list of name, value pairs. */
static const char *hdr(void *ctx, const char *name)
{
    const char **h = ctx;
    for (; h && h[0]; h += 2)
        if (!strcasecmp(h[0], name))
            return h[1];
    return NULL;
}

static tg_cache_answer_t answer(const char *body)
{
    tg_cache_answer_t a = {200,   "application/json", body, strlen(body),
                           false, TG_USAGE_UNKNOWN,   -1};
    return a;
}

static void key_of(const char *body, tg_cache_key_t *k)
{
    tg_cache_key(NULL, NULL, "POST /v1/chat/completions", body, strlen(body), k);
}

static bool same_key(const tg_cache_key_t *a, const tg_cache_key_t *b)
{
    return !memcmp(a->digest, b->digest, sizeof a->digest);
}

/* A hit's body as a string (NULL on a miss); releases the entry. */
static char *peek(tg_cache_t *c, const tg_cache_key_t *k, int buckets)
{
    tg_cache_result_t r;
    tg_cache_lookup(c, k, buckets, false, NULL, NULL, &r);
    if (r.status != TG_CACHE_HIT)
        return NULL;
    char *s = tg_xstrdup(r.entry->body);
    tg_cache_entry_release(r.entry);
    return s;
}

static bool has(tg_cache_t *c, const char *body_key)
{
    tg_cache_key_t k;
    key_of(body_key, &k);
    char *s = peek(c, &k, 1);
    free(s);
    return s != NULL;
}

static void put(tg_cache_t *c, const char *body_key, const char *answer_body, int64_t ttl)
{
    tg_cache_key_t k;
    key_of(body_key, &k);
    tg_cache_answer_t a = answer(answer_body);
    CHECK(tg_cache_store(c, &k, 1, &a, ttl) == 0);
}

/* A waiter that records its wake-up, as the pipeline's hand-off would. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    tg_cache_entry_t *entry;
} waiter_t;

static void waiter_init(waiter_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_destroy(waiter_t *w)
{
    tg_cache_entry_release(w->entry);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_wake(void *arg, tg_cache_entry_t *e)
{
    waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->entry = e;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ----------------------------------------------------------- key & policy */

TEST(cache_canonical_ignores_order_and_space)
{
    tg_buf_t a = {0}, b = {0};
    const char *one = "{\"b\":1, \"a\":{\"d\":[1, 2],\"c\":\"x\"}}";
    CHECK(tg_cache_canonical(one, strlen(one), NULL, 0, &a));
    const char *other = " {\n \"a\" : { \"c\":\"x\", \"d\" : [1,2] },\t\"b\" : 1 } ";
    CHECK(tg_cache_canonical(other, strlen(other), NULL, 0, &b));
    CHECK_STR(a.data, "{\"a\":{\"c\":\"x\",\"d\":[1,2]},\"b\":1}");
    CHECK_STR(b.data, a.data);
    tg_buf_free(&a);
    tg_buf_free(&b);

    tg_cache_key_t k1, k2;
    key_of("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &k1);
    key_of("{ \"messages\": [ {\"content\":\"hi\", \"role\":\"user\"} ], \"model\": \"m\" }", &k2);
    CHECK(same_key(&k1, &k2));
    /* escapes are decoded first: "\u0068i" is "hi" */
    key_of("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u0068i\"}]}", &k2);
    CHECK(same_key(&k1, &k2));
    /* but a different message is a different key */
    key_of("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"ho\"}]}", &k2);
    CHECK(!same_key(&k1, &k2));
}

TEST(cache_canonical_drops_ignored_top_level_keys)
{
    const char *h[] = {"Helicone-Cache-Ignore-Keys", " user , metadata,,", NULL};
    tg_cache_policy_t p;
    CHECK_INT(tg_cache_policy_parse(&p, true, 1000, hdr, h, NULL, 0), 0);
    CHECK_INT(p.n_ignore, 2);
    CHECK_STR(p.ignore[0], "user");
    CHECK_STR(p.ignore[1], "metadata");

    tg_buf_t out = {0};
    const char *body = "{\"model\":\"m\",\"user\":\"u1\",\"metadata\":{\"t\":1},"
                       "\"x\":{\"user\":\"nested stays\"}}";
    tg_cache_canonical(body, strlen(body), p.ignore, p.n_ignore, &out);
    CHECK_STR(out.data, "{\"model\":\"m\",\"x\":{\"user\":\"nested stays\"}}");
    tg_buf_free(&out);

    tg_cache_key_t k1, k2, k3;
    const char *b1 = "{\"model\":\"m\",\"user\":\"alice\"}";
    const char *b2 = "{\"user\":\"bob\",\"model\":\"m\",\"metadata\":{\"run\":7}}";
    tg_cache_key(&p, NULL, "r", b1, strlen(b1), &k1);
    tg_cache_key(&p, NULL, "r", b2, strlen(b2), &k2);
    CHECK(same_key(&k1, &k2));
    tg_cache_key(NULL, NULL, "r", b1, strlen(b1), &k3); /* without the policy they differ */
    tg_cache_key(NULL, NULL, "r", b2, strlen(b2), &k2);
    CHECK(!same_key(&k3, &k2));
    tg_cache_policy_free(&p);

    /* the JSON-list spelling works too */
    const char *h2[] = {"Helicone-Cache-Ignore-Keys", "[\"user\", \"metadata\"]", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, true, 1000, hdr, h2, NULL, 0), 0);
    CHECK_INT(p.n_ignore, 2);
    CHECK_STR(p.ignore[1], "metadata");
    tg_cache_policy_free(&p);
}

TEST(cache_key_separates_seed_route_scope_and_raw_bodies)
{
    const char *body = "{\"model\":\"m\"}";
    tg_cache_policy_t p1 = {0}, p2 = {0};
    p1.seed = "one";
    p2.seed = "two";
    tg_cache_key_t a, b, c, d, e, f;
    tg_cache_key(&p1, NULL, "POST /v1/chat/completions", body, strlen(body), &a);
    tg_cache_key(&p2, NULL, "POST /v1/chat/completions", body, strlen(body), &b);
    tg_cache_key(&p1, NULL, "POST /v1/completions", body, strlen(body), &c);
    tg_cache_key(&p1, "team-a", "POST /v1/chat/completions", body, strlen(body), &d);
    CHECK(!same_key(&a, &b));
    CHECK(!same_key(&a, &c));
    CHECK(!same_key(&a, &d));
    /* fields are length-prefixed: seed "ab"+route "c" != seed "a"+route "bc" */
    p1.seed = "ab";
    tg_cache_key(&p1, NULL, "c", body, strlen(body), &e);
    p1.seed = "a";
    tg_cache_key(&p1, NULL, "bc", body, strlen(body), &f);
    CHECK(!same_key(&e, &f));
    /* a non-JSON body is hashed as it is, and kept apart from JSON */
    tg_cache_key(NULL, NULL, "r", "not json", 8, &e);
    tg_cache_key(NULL, NULL, "r", "not  json", 9, &f);
    CHECK(!same_key(&e, &f));
    tg_buf_t out = {0};
    CHECK(!tg_cache_canonical("not json", 8, NULL, 0, &out));
    CHECK_STR(out.data, "not json");
    tg_buf_free(&out);
    tg_cache_key(NULL, NULL, "r", "", 0, &e); /* GET with no body */
    tg_cache_key(NULL, NULL, "r", NULL, 0, &f);
    CHECK(same_key(&e, &f));
}

TEST(cache_policy_headers)
{
    tg_cache_policy_t p;
    char err[128];
    /* defaults come from the config */
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, NULL, err, sizeof err), 0);
    CHECK(!p.read && !p.save);
    CHECK_INT(p.bucket_max, 1);
    CHECK_INT(p.ttl_ms, 5000);
    tg_cache_policy_free(&p);
    CHECK_INT(tg_cache_policy_parse(&p, true, 5000, hdr, NULL, err, sizeof err), 0);
    CHECK(p.read && p.save);
    tg_cache_policy_free(&p);

    const char *on[] = {"helicone-cache-enabled",
                        "TRUE",
                        "Helicone-Cache-Seed",
                        "s1",
                        "Helicone-Cache-Bucket-Max-Size",
                        "5",
                        "Cache-Control",
                        "public, max-age=60",
                        NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, on, err, sizeof err), 0);
    CHECK(p.read && p.save);
    CHECK_STR(p.seed, "s1");
    CHECK_INT(p.bucket_max, 5);
    CHECK_INT(p.ttl_ms, 60000);
    tg_cache_policy_free(&p);

    const char *off[] = {"Helicone-Cache-Enabled", "false", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, true, 5000, hdr, off, err, sizeof err), 0);
    CHECK(!p.read && !p.save);
    tg_cache_policy_free(&p);

    const char *save_only[] = {"Helicone-Cache-Save", "true", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, save_only, err, sizeof err), 0);
    CHECK(!p.read && p.save);
    tg_cache_policy_free(&p);
    const char *no_read[] = {"Helicone-Cache-Enabled", "true", "Helicone-Cache-Read", "false",
                             NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, no_read, err, sizeof err), 0);
    CHECK(!p.read && p.save);
    tg_cache_policy_free(&p);

    const char *smax[] = {"Helicone-Cache-Enabled", "true", "Cache-Control",
                          "max-age=10, s-maxage=20", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, smax, err, sizeof err), 0);
    CHECK_INT(p.ttl_ms, 20000);
    tg_cache_policy_free(&p);
    const char *huge[] = {"Helicone-Cache-Enabled", "true", "Cache-Control", "max-age=999999999999",
                          NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, huge, err, sizeof err), 0);
    CHECK_INT(p.ttl_ms, TG_CACHE_MAX_TTL_MS);
    tg_cache_policy_free(&p);
    const char *zero[] = {"Helicone-Cache-Enabled", "true", "Cache-Control", "max-age=0", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, zero, err, sizeof err), 0);
    CHECK(p.read && !p.save); /* nothing lives for 0 s */
    tg_cache_policy_free(&p);
    const char *junk_cc[] = {"Helicone-Cache-Enabled", "true", "Cache-Control", "no-cache", NULL};
    CHECK_INT(tg_cache_policy_parse(&p, false, 5000, hdr, junk_cc, err, sizeof err), 0);
    CHECK_INT(p.ttl_ms, 5000);
    tg_cache_policy_free(&p);

    static const char *bad[][2] = {
        {"Helicone-Cache-Enabled", "yes"},
        {"Helicone-Cache-Save", "1"},
        {"Helicone-Cache-Read", ""},
        {"Helicone-Cache-Bucket-Max-Size", "21"},
        {"Helicone-Cache-Bucket-Max-Size", "0"},
        {"Helicone-Cache-Bucket-Max-Size", "3x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *h[] = {"Helicone-Cache-Enabled", "true", bad[i][0], bad[i][1], NULL};
        const char **hh = strcmp(bad[i][0], "Helicone-Cache-Enabled") ? h : h + 2;
        err[0] = 0;
        CHECK_INT(tg_cache_policy_parse(&p, true, 5000, hdr, hh, err, sizeof err), -1);
        CHECK(!p.read && !p.save);
        CHECK(strstr(err, bad[i][0]) != NULL);
        tg_cache_policy_free(&p);
    }
}

/* ----------------------------------------------------------- store/lookup */

TEST(cache_leader_then_hit)
{
    sim_clock_t clk = {1000};
    tg_cache_t *c = tg_cache_new(100, 0, sim_now, &clk);
    tg_cache_key_t k;
    key_of("{\"q\":1}", &k);
    tg_cache_result_t r;
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(r.bucket, 0);
    tg_cache_answer_t a = answer("{\"answer\":42}");
    a.usage.prompt_tokens = 10;
    a.usage.completion_tokens = 3;
    a.cost = 0.0012;
    CHECK(tg_cache_complete(c, r.flight, &a, 60000));

    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_HIT);
    CHECK_INT(r.bucket, 0);
    CHECK_INT(r.entry->status, 200);
    CHECK_STR(r.entry->body, "{\"answer\":42}");
    CHECK_INT(r.entry->body_len, 13);
    CHECK_STR(r.entry->content_type, "application/json");
    CHECK_INT(r.entry->usage.prompt_tokens, 10);
    CHECK_INT(r.entry->usage.completion_tokens, 3);
    CHECK_INT(r.entry->usage.cached_tokens, -1);
    CHECK(r.entry->cost == 0.0012);
    CHECK_INT(r.entry->created_ms, 1000);
    CHECK_INT(r.entry->expires_ms, 61000);
    CHECK(!r.entry->stream);
    tg_cache_entry_release(r.entry);

    tg_cache_stats_t st;
    tg_cache_stats(c, &st);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.misses, 1);
    tg_cache_free(c);
}

TEST(cache_stream_answer_replayed_whole)
{
    tg_cache_t *c = tg_cache_new(10, 0, NULL, NULL);
    tg_cache_key_t k;
    key_of("{\"stream\":true}", &k);
    tg_cache_result_t r;
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    const char *sse = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
                      "data: [DONE]\n\n";
    tg_cache_answer_t a = {200, "text/event-stream", sse, strlen(sse), true, TG_USAGE_UNKNOWN, -1};
    CHECK(tg_cache_complete(c, r.flight, &a, 60000));
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_HIT);
    CHECK(r.entry->stream);
    CHECK_STR(r.entry->content_type, "text/event-stream");
    CHECK_STR(r.entry->body, sse);
    tg_cache_entry_release(r.entry);
    tg_cache_free(c);
}

TEST(cache_only_2xx_is_stored)
{
    tg_cache_t *c = tg_cache_new(10, 0, NULL, NULL);
    tg_cache_key_t k;
    key_of("{\"q\":\"err\"}", &k);
    tg_cache_result_t r;
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    tg_cache_answer_t a = answer("{\"error\":{}}");
    a.status = 500;
    CHECK(!tg_cache_complete(c, r.flight, &a, 60000));
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_MISS_LEADER); /* nothing kept; a new leader */
    a.status = 429;
    CHECK(!tg_cache_complete(c, r.flight, &a, 60000));
    CHECK_INT(tg_cache_store(c, &k, 1, &a, 60000), -1);
    a.status = 204;
    CHECK_INT(tg_cache_store(c, &k, 1, &a, 60000), 0);
    tg_cache_free(c);
}

TEST(cache_seeds_and_buckets_separate_entries)
{
    tg_cache_t *c = tg_cache_new(100, 0, NULL, NULL);
    const char *body = "{\"q\":\"joke\"}";
    tg_cache_policy_t p = {0};
    tg_cache_key_t s1, s2;
    p.seed = "s1";
    tg_cache_key(&p, NULL, "r", body, strlen(body), &s1);
    p.seed = "s2";
    tg_cache_key(&p, NULL, "r", body, strlen(body), &s2);
    tg_cache_answer_t a1 = answer("one"), a2 = answer("two");
    CHECK_INT(tg_cache_store(c, &s1, 1, &a1, 60000), 0);
    char *got = peek(c, &s2, 1);
    CHECK(got == NULL);
    CHECK_INT(tg_cache_store(c, &s2, 1, &a2, 60000), 0);
    got = peek(c, &s1, 1);
    CHECK_STR(got, "one");
    free(got);
    got = peek(c, &s2, 1);
    CHECK_STR(got, "two");
    free(got);

    /* buckets: with 3, the first three misses fill 0, 1, 2; then hits pick
     * among them at random. */
    tg_cache_key_t k;
    key_of(body, &k);
    const char *answers[] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++) {
        tg_cache_result_t r;
        tg_cache_lookup(c, &k, 3, true, NULL, NULL, &r);
        CHECK_INT(r.status, TG_CACHE_MISS_LEADER);
        CHECK_INT(r.bucket, i);
        tg_cache_answer_t a = answer(answers[i]);
        CHECK(tg_cache_complete(c, r.flight, &a, 60000));
    }
    int seen[3] = {0};
    for (int i = 0; i < 300; i++) {
        tg_cache_result_t r;
        tg_cache_lookup(c, &k, 3, true, NULL, NULL, &r);
        CHECK_INT(r.status, TG_CACHE_HIT);
        if (r.status != TG_CACHE_HIT)
            break;
        CHECK(r.bucket >= 0 && r.bucket < 3);
        CHECK_INT(r.entry->body[0], 'A' + r.bucket);
        CHECK_INT(r.entry->bucket, r.bucket);
        seen[r.bucket]++;
        tg_cache_entry_release(r.entry);
    }
    CHECK(seen[0] > 30 && seen[1] > 30 && seen[2] > 30);
    /* asking for 4 buckets: three filled, the fourth is the next to fill */
    tg_cache_result_t r;
    tg_cache_lookup(c, &k, 4, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(r.bucket, 3);
    tg_cache_abandon(c, r.flight);
    /* asking for 1: bucket 0 is there */
    got = peek(c, &k, 1);
    CHECK_STR(got, "A");
    free(got);
    /* store (save without read) takes the first free bucket, none when full */
    tg_cache_answer_t d = answer("D");
    CHECK_INT(tg_cache_store(c, &k, 4, &d, 60000), 3);
    CHECK_INT(tg_cache_store(c, &k, 4, &d, 60000), -1);
    tg_cache_free(c);
}

TEST(cache_lru_evicts_least_recently_used)
{
    tg_cache_t *c = tg_cache_new(3, 0, NULL, NULL);
    put(c, "{\"k\":\"a\"}", "A", 60000);
    put(c, "{\"k\":\"b\"}", "B", 60000);
    put(c, "{\"k\":\"c\"}", "C", 60000);
    CHECK(has(c, "{\"k\":\"a\"}")); /* a is now the most recently used */
    put(c, "{\"k\":\"d\"}", "D", 60000);
    CHECK(!has(c, "{\"k\":\"b\"}"));
    CHECK(has(c, "{\"k\":\"c\"}"));
    CHECK(has(c, "{\"k\":\"a\"}"));
    CHECK(has(c, "{\"k\":\"d\"}"));
    /* order now (old → new): c, a, d */
    put(c, "{\"k\":\"e\"}", "E", 60000);
    CHECK(!has(c, "{\"k\":\"c\"}"));
    put(c, "{\"k\":\"f\"}", "F", 60000);
    CHECK(!has(c, "{\"k\":\"a\"}"));
    CHECK(has(c, "{\"k\":\"d\"}"));
    CHECK(has(c, "{\"k\":\"e\"}"));
    CHECK(has(c, "{\"k\":\"f\"}"));
    tg_cache_stats_t st;
    tg_cache_stats(c, &st);
    CHECK_INT(st.entries, 3);
    CHECK_INT(st.evictions, 3);
    tg_cache_free(c);
}

TEST(cache_ttl_expiry_on_simulated_clock)
{
    sim_clock_t clk = {50000};
    tg_cache_t *c = tg_cache_new(10, 0, sim_now, &clk);
    put(c, "{\"t\":1}", "short", 1000);
    put(c, "{\"t\":2}", "long", 10000);
    clk.now = 50999;
    CHECK(has(c, "{\"t\":1}"));
    clk.now = 51000; /* expiry is exclusive: created + ttl is already too old */
    CHECK(!has(c, "{\"t\":1}"));
    CHECK(has(c, "{\"t\":2}"));
    tg_cache_stats_t st;
    tg_cache_stats(c, &st);
    CHECK_INT(st.entries, 1);
    CHECK_INT(st.expirations, 1);
    /* an expired bucket is free again: a new leader fills it */
    clk.now = 70000;
    tg_cache_key_t k;
    key_of("{\"t\":2}", &k);
    tg_cache_result_t r;
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &r);
    CHECK_INT(r.status, TG_CACHE_MISS_LEADER);
    tg_cache_answer_t a = answer("fresh");
    CHECK(tg_cache_complete(c, r.flight, &a, 1000));
    char *got = peek(c, &k, 1);
    CHECK_STR(got, "fresh");
    free(got);
    /* a ttl of 0 stores nothing */
    CHECK_INT(tg_cache_store(c, &k, 2, &a, 0), -1);
    tg_cache_free(c);
}

TEST(cache_byte_bound)
{
    size_t max = 64 * 1024;
    tg_cache_t *c = tg_cache_new(1000, max, NULL, NULL);
    char *big = tg_xmalloc(20001);
    memset(big, 'x', 20000);
    big[20000] = 0;
    for (int i = 0; i < 10; i++) {
        char kb[32];
        snprintf(kb, sizeof kb, "{\"n\":%d}", i);
        put(c, kb, big, 60000);
        tg_cache_stats_t st;
        tg_cache_stats(c, &st);
        CHECK(st.bytes <= max);
    }
    tg_cache_stats_t st;
    tg_cache_stats(c, &st);
    CHECK_INT(st.entries, 3);
    CHECK(has(c, "{\"n\":9}") && has(c, "{\"n\":8}") && has(c, "{\"n\":7}"));
    CHECK(!has(c, "{\"n\":6}"));

    /* an answer larger than the whole budget is not kept — but the waiters
     * of its flight still get it */
    char *huge = tg_xmalloc(max + 1);
    memset(huge, 'y', max);
    huge[max] = 0;
    tg_cache_key_t k;
    key_of("{\"huge\":1}", &k);
    tg_cache_answer_t a = answer(huge);
    CHECK_INT(tg_cache_store(c, &k, 1, &a, 60000), -1);
    tg_cache_result_t lead, wait;
    waiter_t w;
    waiter_init(&w);
    tg_cache_lookup(c, &k, 1, true, on_wake, &w, &lead);
    tg_cache_lookup(c, &k, 1, true, on_wake, &w, &wait);
    CHECK_INT(lead.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(wait.status, TG_CACHE_MISS_WAIT);
    CHECK(!tg_cache_complete(c, lead.flight, &a, 60000));
    CHECK_INT(w.calls, 1);
    CHECK(w.entry && w.entry->body_len == max);
    CHECK(tg_cache_unwait(c, wait.waiter));
    tg_cache_stats(c, &st);
    CHECK_INT(st.entries, 3); /* untouched */
    CHECK(!has(c, "{\"huge\":1}"));
    waiter_destroy(&w);
    free(huge);
    free(big);
    tg_cache_free(c);
}

TEST(cache_sharded_large_cache_works)
{
    tg_cache_t *c = tg_cache_new(20000, 0, NULL, NULL);
    for (int i = 0; i < 5000; i++) {
        char kb[32];
        snprintf(kb, sizeof kb, "{\"n\":%d}", i);
        put(c, kb, kb, 60000);
    }
    int found = 0;
    for (int i = 0; i < 5000; i++) {
        char kb[32];
        snprintf(kb, sizeof kb, "{\"n\":%d}", i);
        tg_cache_key_t k;
        key_of(kb, &k);
        char *got = peek(c, &k, 1);
        found += got && !strcmp(got, kb);
        free(got);
    }
    CHECK_INT(found, 5000);
    tg_cache_free(c);
}

/* ----------------------------------------------------------- single flight */

TEST(cache_waiters_get_the_leaders_answer)
{
    tg_cache_t *c = tg_cache_new(10, 0, NULL, NULL);
    tg_cache_key_t k;
    key_of("{\"sf\":1}", &k);
    waiter_t w1, w2;
    waiter_init(&w1);
    waiter_init(&w2);
    tg_cache_result_t lead, r1, r2, plain;
    tg_cache_lookup(c, &k, 1, true, on_wake, &w1, &lead);
    tg_cache_lookup(c, &k, 1, true, on_wake, &w1, &r1);
    tg_cache_lookup(c, &k, 1, false, on_wake, &w2, &r2); /* read-only requests wait too */
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &plain); /* no wake function: plain miss */
    CHECK_INT(lead.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(r1.status, TG_CACHE_MISS_WAIT);
    CHECK_INT(r2.status, TG_CACHE_MISS_WAIT);
    CHECK_INT(plain.status, TG_CACHE_MISS);
    CHECK_INT(plain.bucket, -1);
    CHECK_INT(w1.calls + w2.calls, 0);
    tg_cache_answer_t a = answer("shared");
    CHECK(tg_cache_complete(c, lead.flight, &a, 60000));
    CHECK_INT(w1.calls, 1);
    CHECK_INT(w2.calls, 1);
    CHECK_STR(w1.entry->body, "shared");
    CHECK(w1.entry == w2.entry); /* one immutable copy, shared */
    CHECK(tg_cache_unwait(c, r1.waiter));
    CHECK(tg_cache_unwait(c, r2.waiter));
    waiter_destroy(&w1);
    waiter_destroy(&w2);
    tg_cache_free(c);
}

TEST(cache_abandon_tells_waiters)
{
    tg_cache_t *c = tg_cache_new(10, 0, NULL, NULL);
    tg_cache_key_t k;
    key_of("{\"sf\":2}", &k);
    waiter_t w[3];
    tg_cache_result_t lead, r[3];
    tg_cache_lookup(c, &k, 1, true, NULL, NULL, &lead);
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i]);
        tg_cache_lookup(c, &k, 1, true, on_wake, &w[i], &r[i]);
        CHECK_INT(r[i].status, TG_CACHE_MISS_WAIT);
    }
    /* the middle one's client leaves first */
    CHECK(!tg_cache_unwait(c, r[1].waiter));
    tg_cache_abandon(c, lead.flight);
    CHECK_INT(w[0].calls, 1);
    CHECK_INT(w[1].calls, 0); /* never called after unwait */
    CHECK_INT(w[2].calls, 1);
    CHECK(w[0].entry == NULL && w[2].entry == NULL);
    CHECK(tg_cache_unwait(c, r[0].waiter));
    CHECK(tg_cache_unwait(c, r[2].waiter));
    /* the abandoned waiter calls the provider itself and may store */
    tg_cache_answer_t a = answer("late");
    CHECK_INT(tg_cache_store(c, &k, 1, &a, 60000), 0);
    char *got = peek(c, &k, 1);
    CHECK_STR(got, "late");
    free(got);
    for (int i = 0; i < 3; i++)
        waiter_destroy(&w[i]);
    tg_cache_free(c);
}

TEST(cache_flights_fill_different_buckets)
{
    /* With N buckets, concurrent misses fill different buckets (each wants a
     * different answer); only when every free bucket is being fetched do
     * they wait. A save without read skips buckets in flight. */
    tg_cache_t *c = tg_cache_new(10, 0, NULL, NULL);
    tg_cache_key_t k;
    key_of("{\"sf\":3}", &k);
    tg_cache_result_t a, b, w;
    waiter_t wt;
    waiter_init(&wt);
    tg_cache_lookup(c, &k, 2, true, on_wake, &wt, &a);
    tg_cache_lookup(c, &k, 2, true, on_wake, &wt, &b);
    tg_cache_lookup(c, &k, 2, true, on_wake, &wt, &w);
    CHECK_INT(a.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(a.bucket, 0);
    CHECK_INT(b.status, TG_CACHE_MISS_LEADER);
    CHECK_INT(b.bucket, 1);
    CHECK_INT(w.status, TG_CACHE_MISS_WAIT);
    tg_cache_answer_t x = answer("x");
    CHECK_INT(tg_cache_store(c, &k, 2, &x, 60000), -1); /* both in flight */
    tg_cache_abandon(c, b.flight);
    CHECK_INT(tg_cache_store(c, &k, 2, &x, 60000), 1);
    CHECK(tg_cache_complete(c, a.flight, &x, 60000));
    CHECK_INT(wt.calls, 1);
    tg_cache_unwait(c, w.waiter);
    waiter_destroy(&wt);
    tg_cache_free(c);
}

typedef struct {
    tg_cache_t *c;
    tg_cache_key_t key;
    pthread_barrier_t *start;
    atomic_int *leaders, *waiting, *hits;
    int got_body; /* 1 when this thread ended with the shared answer */
    int calls;
} sf_arg_t;

#define SF_THREADS 20

static void *single_flight_thread(void *p)
{
    sf_arg_t *a = p;
    waiter_t w;
    waiter_init(&w);
    pthread_barrier_wait(a->start);
    tg_cache_result_t r;
    tg_cache_lookup(a->c, &a->key, 1, true, on_wake, &w, &r);
    if (r.status == TG_CACHE_MISS_LEADER) {
        atomic_fetch_add(a->leaders, 1);
        /* "call the provider": wait until everyone else has parked */
        while (atomic_load(a->waiting) + atomic_load(a->hits) < SF_THREADS - 1)
            usleep(100);
        tg_cache_answer_t ans = answer("the one answer");
        tg_cache_complete(a->c, r.flight, &ans, 60000);
        a->got_body = 1;
    } else if (r.status == TG_CACHE_MISS_WAIT) {
        atomic_fetch_add(a->waiting, 1);
        pthread_mutex_lock(&w.mu);
        while (!w.calls)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        a->calls = w.calls;
        a->got_body = w.entry && !strcmp(w.entry->body, "the one answer");
        if (!tg_cache_unwait(a->c, r.waiter))
            a->got_body = 0;
    } else if (r.status == TG_CACHE_HIT) {
        atomic_fetch_add(a->hits, 1);
        a->got_body = !strcmp(r.entry->body, "the one answer");
        tg_cache_entry_release(r.entry);
    }
    waiter_destroy(&w);
    return NULL;
}

TEST(cache_single_flight_20_threads_one_leader)
{
    for (int round = 0; round < 5; round++) {
        tg_cache_t *c = tg_cache_new(round % 2 ? 4096 : 16, 0, NULL, NULL);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, SF_THREADS);
        atomic_int leaders = 0, waiting = 0, hits = 0;
        sf_arg_t args[SF_THREADS];
        pthread_t th[SF_THREADS];
        for (int i = 0; i < SF_THREADS; i++) {
            args[i] = (sf_arg_t){
                .c = c, .start = &start, .leaders = &leaders, .waiting = &waiting, .hits = &hits};
            char body[64];
            snprintf(body, sizeof body, "{\"round\":%d}", round);
            key_of(body, &args[i].key);
            pthread_create(&th[i], NULL, single_flight_thread, &args[i]);
        }
        int ok = 0;
        for (int i = 0; i < SF_THREADS; i++) {
            pthread_join(th[i], NULL);
            ok += args[i].got_body;
            CHECK(args[i].calls <= 1);
        }
        CHECK_INT(leaders, 1);
        CHECK_INT(waiting + hits, SF_THREADS - 1);
        CHECK_INT(ok, SF_THREADS);
        pthread_barrier_destroy(&start);
        tg_cache_free(c);
    }
}

/* Many threads, few keys, a tiny cache: lookups, completions, abandons,
 * unwaits and evictions all at once (for the sanitizers). */
typedef struct {
    tg_cache_t *c;
    unsigned seed;
} stress_arg_t;

static void *stress_thread(void *p)
{
    stress_arg_t *a = p;
    for (int i = 0; i < 3000; i++) {
        a->seed = a->seed * 1103515245u + 12345u;
        unsigned r = a->seed >> 8;
        char body[32];
        snprintf(body, sizeof body, "{\"k\":%u}", r % 24);
        tg_cache_key_t k;
        key_of(body, &k);
        waiter_t w;
        waiter_init(&w);
        tg_cache_result_t res;
        tg_cache_lookup(a->c, &k, 1 + (int)(r % 3), true, on_wake, &w, &res);
        if (res.status == TG_CACHE_HIT) {
            CHECK(res.entry->body_len > 0);
            tg_cache_entry_release(res.entry);
        } else if (res.status == TG_CACHE_MISS_LEADER) {
            if (r % 5 == 0)
                tg_cache_abandon(a->c, res.flight);
            else {
                tg_cache_answer_t ans = answer(body);
                tg_cache_complete(a->c, res.flight, &ans, 1 + r % 50);
            }
        } else if (res.status == TG_CACHE_MISS_WAIT) {
            if (r % 2) {
                tg_cache_unwait(a->c, res.waiter); /* client left */
            } else {
                pthread_mutex_lock(&w.mu);
                while (!w.calls)
                    pthread_cond_wait(&w.cv, &w.mu);
                pthread_mutex_unlock(&w.mu);
                CHECK(tg_cache_unwait(a->c, res.waiter));
            }
        }
        waiter_destroy(&w);
    }
    return NULL;
}

TEST(cache_threads_stress)
{
    tg_cache_t *c = tg_cache_new(8, 4096, NULL, NULL);
    pthread_t th[8];
    stress_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (stress_arg_t){c, (unsigned)i * 7919u + 1};
        pthread_create(&th[i], NULL, stress_thread, &args[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    tg_cache_stats_t st;
    tg_cache_stats(c, &st);
    CHECK(st.entries <= 8);
    CHECK(st.bytes <= 4096);
    CHECK(st.hits + st.misses == 8 * 3000);
    tg_cache_free(c);
}
