/* Prometheus exposition of SPEC §10. */
#include "test.h"

#include "metrics/metrics.h"

static long depth(void *arg)
{
    return 7;
}
static long dropped(void *arg)
{
    return 0;
}
static long open_conns(void *arg)
{
    return *(long *)arg;
}

TEST(metrics_render_counters_histograms_escaping)
{
    tg_metrics_t *m = tg_metrics_new(1);
    tg_metrics_shard_t *sh = tg_metrics_shard(m, 0);
    tg_usage_t u = {10, 5, 2, -1, 0};
    tg_metrics_request(sh, "openai", "gpt-4o", 200, 0.3, 0.05, &u, 0.0125);
    tg_metrics_request(sh, "openai", "gpt-4o", 200, 2.0, -1, &u, 0.0125);
    tg_metrics_request(sh, "openai", "we\"ird\\model\n", 502, 0.001, -1, NULL, -1);
    tg_metrics_upstream_error(sh, "openai", "timeout");
    tg_metrics_cache(sh, "hit");
    tg_metrics_rate_limited(sh);
    tg_metrics_store_t st = {depth, dropped, NULL};
    tg_metrics_set_store(m, &st);
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    const char *o = out.data;
    CHECK(strstr(
        o, "tollgate_requests_total{provider=\"openai\",model=\"gpt-4o\",status=\"200\"} 2\n"));
    CHECK(strstr(o, "model=\"we\\\"ird\\\\model\\n\",status=\"502\"} 1\n"));
    CHECK(strstr(
        o, "tollgate_tokens_total{provider=\"openai\",model=\"gpt-4o\",type=\"prompt\"} 20\n"));
    CHECK(strstr(o, "type=\"cached\"} 4\n"));
    CHECK(!strstr(o, "type=\"cache_write\""));
    CHECK(strstr(o, "tollgate_cost_usd_total{provider=\"openai\",model=\"gpt-4o\"} 0.025\n"));
    /* durations 0.3, 2.0, 0.001: cumulative buckets */
    CHECK(strstr(o,
                 "tollgate_request_duration_seconds_bucket{provider=\"openai\",le=\"0.005\"} 1\n"));
    CHECK(
        strstr(o, "tollgate_request_duration_seconds_bucket{provider=\"openai\",le=\"0.5\"} 2\n"));
    CHECK(
        strstr(o, "tollgate_request_duration_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 3\n"));
    CHECK(strstr(o, "tollgate_request_duration_seconds_count{provider=\"openai\"} 3\n"));
    CHECK(strstr(o, "tollgate_time_to_first_token_seconds_count{provider=\"openai\"} 1\n"));
    CHECK(strstr(o, "tollgate_upstream_errors_total{provider=\"openai\",kind=\"timeout\"} 1\n"));
    CHECK(strstr(o, "tollgate_cache_total{result=\"hit\"} 1\n"));
    CHECK(strstr(o, "tollgate_rate_limited_total 1\n"));
    CHECK(strstr(o, "tollgate_budget_blocked_total{scope=\"global\"} 0\n"));
    CHECK(strstr(o, "tollgate_log_queue_depth 7\n"));
    CHECK(strstr(o, "tollgate_log_records_dropped_total 0\n"));
    CHECK(strstr(o, "# TYPE tollgate_request_duration_seconds histogram\n"));
    tg_buf_free(&out);
    tg_metrics_free(m);
}

TEST(metrics_connection_pressure)
{
    tg_metrics_t *m = tg_metrics_new(1);
    tg_metrics_shard_t *sh = tg_metrics_shard(m, 0);
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    CHECK(strstr(out.data, "tollgate_connections_open 0\n"));
    CHECK(strstr(out.data, "# TYPE tollgate_accept_paused_total counter\n"));
    tg_buf_free(&out);

    long n = 42;
    tg_metrics_set_connections(m, open_conns, &n);
    tg_metrics_accept_paused(sh, "limit");
    tg_metrics_accept_paused(sh, "limit");
    tg_metrics_accept_paused(sh, "descriptors");
    tg_metrics_connection_dropped(sh, "evicted");
    tg_metrics_connection_dropped(sh, "header_timeout");
    tg_metrics_render(m, &out);
    const char *o = out.data;
    CHECK(strstr(o, "tollgate_connections_open 42\n"));
    CHECK(strstr(o, "tollgate_accept_paused_total{reason=\"limit\"} 2\n"));
    CHECK(strstr(o, "tollgate_accept_paused_total{reason=\"descriptors\"} 1\n"));
    CHECK(strstr(o, "tollgate_connections_dropped_total{reason=\"evicted\"} 1\n"));
    CHECK(strstr(o, "tollgate_connections_dropped_total{reason=\"header_timeout\"} 1\n"));
    tg_buf_free(&out);
    tg_metrics_set_connections(m, NULL, NULL);
    tg_metrics_free(m);
}

TEST(metrics_series_are_capped)
{
    tg_metrics_t *m = tg_metrics_new(1);
    tg_metrics_shard_t *sh = tg_metrics_shard(m, 0);
    char model[32];
    for (int i = 0; i < TG_METRICS_MAX_SERIES + 50; i++) {
        snprintf(model, sizeof model, "m-%d", i);
        tg_metrics_request(sh, "p", model, 200, 0.1, -1, NULL, -1);
    }
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    CHECK(strstr(out.data, "model=\"other\",status=\"200\"} 50\n") != NULL);
    tg_buf_free(&out);
    tg_metrics_free(m);
}

/* Unpriced models: counted per provider and model, first sight reported
 * once gateway-wide (whichever shard sees it), bounded by the series cap. */
TEST(metrics_unpriced_models_named_once)
{
    tg_metrics_t *m = tg_metrics_new(2);
    tg_metrics_shard_t *a = tg_metrics_shard(m, 0), *b = tg_metrics_shard(m, 1);
    CHECK(tg_metrics_unpriced(a, "local", "my-llama"));
    CHECK(!tg_metrics_unpriced(a, "local", "my-llama"));
    CHECK(!tg_metrics_unpriced(b, "local", "my-llama")); /* already met on the other shard */
    CHECK(tg_metrics_unpriced(b, "other-provider", "my-llama"));
    char model[32];
    int firsts = 0;
    for (int i = 0; i < TG_METRICS_MAX_SERIES + 20; i++) {
        snprintf(model, sizeof model, "u-%d", i);
        firsts += tg_metrics_unpriced(a, "p", model);
    }
    CHECK_INT(firsts, TG_METRICS_MAX_SERIES - 2); /* the cap holds; "other" is never named */
    tg_buf_t out = {0};
    tg_metrics_render(m, &out);
    CHECK(strstr(out.data, "# TYPE tollgate_unpriced_requests_total counter\n") != NULL);
    CHECK(strstr(out.data, "tollgate_unpriced_requests_total{provider=\"local\","
                           "model=\"my-llama\"} 3\n") != NULL);
    CHECK(strstr(out.data,
                 "tollgate_unpriced_requests_total{provider=\"p\",model=\"other\"} 22\n") != NULL);
    tg_buf_free(&out);
    tg_metrics_free(m);
}
