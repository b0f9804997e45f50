/* The gateway object (gateway.h): two gateways in one process keep their
 * state apart, and its metrics are per-worker shards summed when read. */
#include "test.h"

#include "config/config.h"
#include "gateway.h"
#include "proxy/exchange.h"
#include "proxy/pipeline.h"
#include "router/router.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static tg_config_t *config(const char *yaml)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
    CHECK_INT(errs.n, 0); /* the test's YAML is valid */
    tg_config_errors_free(&errs);
    return c;
}

static char *render(tg_gateway_t *gw)
{
    tg_buf_t out = {0};
    tg_metrics_render(gw->metrics, &out);
    return out.data;
}

static const char two_providers[] = "providers:\n"
                                    "  pa: {base_url: 'http://127.0.0.1:9/v1', models: [m1]}\n"
                                    "  pb: {base_url: 'http://127.0.0.1:9/v1', models: [m1]}\n";

TEST(gateway_two_in_one_process)
{
    char yaml1[512], yaml2[512];
    snprintf(yaml1, sizeof yaml1,
             "server: {workers: 2}\nobservability:\n  request_logging: "
             "{enabled: false}\n%s",
             two_providers);
    snprintf(yaml2, sizeof yaml2,
             "server: {workers: 3}\nobservability:\n  request_logging: "
             "{enabled: false}\ncaching: {max_size: 5}\n%s",
             two_providers);
    tg_config_t *c1 = config(yaml1), *c2 = config(yaml2);
    CHECK(c1 && c2);
    if (!c1 || !c2)
        return;
    char err[256] = "";
    tg_gateway_t *g1 = tg_gateway_new(c1, NULL, err, sizeof err);
    tg_gateway_t *g2 = tg_gateway_new(c2, NULL, err, sizeof err);
    CHECK(g1 && g2);
    if (!g1 || !g2)
        return;
    CHECK(g1->cache != g2->cache && g1->metrics != g2->metrics && g1->health != g2->health &&
          g1->rl != g2->rl && g1->rules != g2->rules);

    /* metrics recorded through one do not appear in the other */
    tg_metrics_request(tg_metrics_shard(g1->metrics, 1), "pa", "m1", 200, 0.1, 0.05, NULL, -1);
    tg_metrics_cache(tg_metrics_shard(g1->metrics, 0), "hit");
    char *o1 = render(g1), *o2 = render(g2);
    CHECK(strstr(o1, "tollgate_requests_total{provider=\"pa\",model=\"m1\",status=\"200\"} 1\n"));
    CHECK(strstr(o1, "tollgate_cache_total{result=\"hit\"} 1\n"));
    CHECK(!strstr(o2, "tollgate_requests_total{"));
    CHECK(!strstr(o2, "tollgate_cache_total{"));
    CHECK(strstr(o2, "# TYPE tollgate_requests_total counter\n"));
    free(o1);
    free(o2);

    /* an answer cached in one is not in the other */
    tg_cache_policy_t p = {0};
    tg_cache_key_t k;
    const char *body = "{\"model\":\"pa/m1\"}";
    tg_cache_key(&p, NULL, "r", body, strlen(body), &k);
    tg_cache_answer_t a = {200, "application/json", "{}", 2, false, TG_USAGE_UNKNOWN, -1};
    CHECK_INT(tg_cache_store(g1->cache, &k, 1, &a, 60000), 0);
    tg_cache_result_t r1, r2;
    tg_cache_lookup(g1->cache, &k, 1, false, NULL, NULL, &r1);
    tg_cache_lookup(g2->cache, &k, 1, false, NULL, NULL, &r2);
    CHECK_INT(r1.status, TG_CACHE_HIT);
    CHECK(r2.status != TG_CACHE_HIT);
    tg_cache_entry_release(r1.entry);

    /* a provider resting in one is usable in the other, and routing sees it */
    int64_t now = tg_mono_ms();
    tg_health_report(tg_health_for(g1->health, "pa"), TG_OUTCOME_RATE_LIMITED, 0, 60000, 30000,
                     now);
    CHECK(!tg_health_usable(tg_health_for(g1->health, "pa"), now + 1));
    CHECK(tg_health_usable(tg_health_for(g2->health, "pa"), now + 1));
    for (int i = 0; i < 20; i++) {
        tg_route_t r;
        CHECK_INT(tg_router_resolve(c1, g1->health, "m1", NULL, NULL, &r, err, sizeof err), 0);
        CHECK_STR(r.provider->name, "pb");
        tg_route_clear(&r);
    }

    /* the worker hooks hand each worker its gateway and its shard */
    struct event_base *base = event_base_new();
    tg_pworker_t *w1 = tg_pipeline_worker_init(base, 1, c1, g1);
    tg_pworker_t *w2 = tg_pipeline_worker_init(base, 1, c2, g2);
    CHECK(w1 && w2);
    if (w1 && w2) {
        CHECK(w1->gw == g1 && w2->gw == g2);
        CHECK(w1->metrics == tg_metrics_shard(g1->metrics, 1));
        CHECK(w2->metrics == tg_metrics_shard(g2->metrics, 1));
        CHECK(w1->metrics != tg_metrics_shard(g1->metrics, 0));
    }
    tg_pipeline_worker_free(w1);
    tg_pipeline_worker_free(w2);
    event_base_free(base);

    tg_gateway_free(g1);
    tg_gateway_free(g2);
    tg_config_release(c1);
    tg_config_release(c2);
}

static int refs(const tg_config_t *c)
{
    return __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
}

/* A worker's exchanges hold its config without touching the shared
 * reference count; a reload keeps the old config alive until the last of
 * them lets go, and frees nothing any of them still reads. */
TEST(gateway_worker_config_lease_outlives_reloads)
{
    static const char yaml[] = "observability:\n  request_logging: {enabled: false}\n"
                               "providers:\n  pa: {base_url: 'http://127.0.0.1:9/v1'}\n";
    tg_config_t *c1 = config(yaml), *c2 = config(yaml), *c3 = config(yaml);
    CHECK(c1 && c2 && c3);
    if (!c1 || !c2 || !c3)
        return;
    char err[256] = "";
    tg_gateway_t *gw = tg_gateway_new(c1, NULL, err, sizeof err);
    struct event_base *base = event_base_new();
    tg_pworker_t *pw = gw ? tg_pipeline_worker_init(base, 0, c1, gw) : NULL;
    CHECK(pw != NULL);
    if (!pw)
        return;
    int base1 = refs(c1), base2 = refs(c2);

    /* exchanges on c1: counted by the worker, not in c1's count */
    tg_config_t *a = tg_pworker_cfg_hold(pw), *b = tg_pworker_cfg_hold(pw);
    CHECK(a == c1 && b == c1);
    CHECK_INT(refs(c1), base1);

    /* reload: new exchanges get c2; c1 stays held for a and b */
    tg_pipeline_config_changed(pw, c2);
    tg_config_t *c = tg_pworker_cfg_hold(pw);
    CHECK(c == c2 && pw->cfg == c2);
    CHECK_INT(refs(c1), base1);
    CHECK_INT(refs(c2), base2 + 1);
    tg_pworker_cfg_drop(pw, a);
    CHECK_INT(refs(c1), base1); /* b still reads it */
    tg_pworker_cfg_drop(pw, b);
    CHECK_INT(refs(c1), base1 - 1); /* the worker let go of it */
    CHECK(pw->old_cfgs == NULL);

    /* a reload with no exchange on the current config lets go at once;
     * a config that comes back takes its exchanges with it */
    tg_pipeline_config_changed(pw, c3);
    CHECK_INT(refs(c2), base2 + 1); /* c still holds c2 */
    tg_pipeline_config_changed(pw, c2);
    CHECK(pw->old_cfgs == NULL); /* c3 had no exchange */
    CHECK_INT(refs(c2), base2 + 1);
    tg_pworker_cfg_drop(pw, c);
    CHECK_INT(pw->cfg_users, 0);
    CHECK_INT(refs(c2), base2 + 1); /* current: the worker's own reference */

    /* a replaced config goes when its last exchange lets go */
    tg_config_t *d = tg_pworker_cfg_hold(pw);
    tg_pipeline_config_changed(pw, c3);
    tg_pworker_cfg_drop(pw, d);
    CHECK_INT(refs(c2), base2);

    /* the health record a worker remembers is the registry's */
    tg_health_t *h = tg_pworker_health(pw, "pa");
    CHECK(h == tg_health_for(gw->health, "pa"));
    CHECK(tg_pworker_health(pw, "PA") == h);
    CHECK_STR(tg_health_name(h), "pa");
    CHECK(tg_pworker_health(pw, "pb") != h);

    tg_pipeline_worker_free(pw);
    event_base_free(base);
    tg_gateway_free(gw);
    tg_config_release(c1);
    tg_config_release(c2);
    tg_config_release(c3);
}

TEST(gateway_metrics_shards_sum_and_share_the_cap)
{
    tg_metrics_t *m = tg_metrics_new(3);
    tg_metrics_shard_t *s0 = tg_metrics_shard(m, 0), *s1 = tg_metrics_shard(m, 1);
    tg_usage_t u = {10, 5, 0, -1, 0};
    tg_metrics_request(s0, "p", "x", 200, 0.3, 0.05, &u, 0.5);
    tg_metrics_request(s1, "p", "x", 200, 2.0, -1, &u, 0.25);
    tg_metrics_rate_limited(s0);
    tg_metrics_rate_limited(s1);
    tg_metrics_upstream_error(tg_metrics_shard(m, 2), "p", "timeout");
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    const char *o = out.data;
    CHECK(strstr(o, "tollgate_requests_total{provider=\"p\",model=\"x\",status=\"200\"} 2\n"));
    CHECK(strstr(o, "tollgate_tokens_total{provider=\"p\",model=\"x\",type=\"prompt\"} 20\n"));
    CHECK(strstr(o, "tollgate_cost_usd_total{provider=\"p\",model=\"x\"} 0.75\n"));
    CHECK(strstr(o, "tollgate_request_duration_seconds_bucket{provider=\"p\",le=\"0.5\"} 1\n"));
    CHECK(strstr(o, "tollgate_request_duration_seconds_count{provider=\"p\"} 2\n"));
    CHECK(strstr(o, "tollgate_time_to_first_token_seconds_count{provider=\"p\"} 1\n"));
    CHECK(strstr(o, "tollgate_rate_limited_total 2\n"));
    CHECK(strstr(o, "tollgate_upstream_errors_total{provider=\"p\",kind=\"timeout\"} 1\n"));
    /* one line per label set, not one per shard */
    const char *first = strstr(o, "model=\"x\",status=\"200\"");
    CHECK(first && !strstr(first + 1, "model=\"x\",status=\"200\""));
    tg_buf_free(&out);

    /* the cap counts label sets over all shards: 600 new models in each of
     * two shards make 999 more (x is one), and the rest are "other" */
    char model[32];
    for (int i = 0; i < 1200; i++) {
        snprintf(model, sizeof model, "m-%d", i);
        tg_metrics_request(i < 600 ? s0 : s1, "p", model, 200, 0.1, -1, NULL, -1);
    }
    tg_metrics_render(m, &out);
    size_t lines = 0;
    for (const char *s = out.data; (s = strstr(s, "\ntollgate_requests_total{")); s++)
        lines++;
    CHECK_INT((long)lines, TG_METRICS_MAX_SERIES + 1); /* 1000 and model="other" */
    CHECK(strstr(out.data, "model=\"other\",status=\"200\"} 201\n") != NULL);
    CHECK(strstr(out.data, "model=\"m-998\",status=\"200\"} 1\n") != NULL);
    CHECK(strstr(out.data, "model=\"m-999\",") == NULL);
    tg_buf_free(&out);
    tg_metrics_free(m);
}

/* Workers record into their own shards while a scrape reads them all
 * (TSan checks the hand-off). */
typedef struct {
    tg_metrics_t *m;
    int index;
} recorder_t;

static void *record_many(void *arg)
{
    recorder_t *r = arg;
    tg_metrics_shard_t *sh = tg_metrics_shard(r->m, r->index);
    char model[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(model, sizeof model, "m%d", i % 7);
        tg_metrics_request(sh, "p", model, 200, 0.01, 0.001, NULL, 0.001);
        tg_metrics_cache(sh, i % 2 ? "hit" : "miss");
    }
    return NULL;
}

TEST(gateway_metrics_shards_under_threads)
{
    tg_metrics_t *m = tg_metrics_new(4);
    pthread_t t[4];
    recorder_t r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (recorder_t){m, i};
        pthread_create(&t[i], NULL, record_many, &r[i]);
    }
    for (int i = 0; i < 20; i++) {
        tg_buf_t out = {0};
        tg_metrics_render(m, &out);
        tg_buf_free(&out);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    CHECK(strstr(out.data, "tollgate_request_duration_seconds_count{provider=\"p\"} 8000\n"));
    CHECK(strstr(out.data, "tollgate_cache_total{result=\"hit\"} 4000\n"));
    tg_buf_free(&out);
    tg_metrics_free(m);
}
