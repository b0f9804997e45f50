/*
 * test_config.c — unit tests of src/config/: YAML loading with every
 * section, the users' fixture files, ${VAR} expansion, sizes and durations,
 * provider inference and base URLs, routing rules, error paths and lines,
 * cross-checks, defaults from the environment, the reference count, and
 * that docs/configuration.md documents exactly the keys of the key tables.
 *
 * The fixtures are read from tests/fixtures, copies of the users' files
 * (the binary runs from the repository root). Tests set and unset TG_TEST_*
 * and provider key variables; they run on one thread, in order.
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "config/config_keys.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

#define FIXTURES "tests/fixtures"

static tg_config_t *load(const char *yaml, tg_config_errors_t *errs)
{
    return tg_config_load_string(yaml, strlen(yaml), "test.yaml", errs);
}

/* The error at `path` whose message contains `msg`, or NULL. */
static const tg_config_error_t *find_error(const tg_config_errors_t *errs, const char *path,
                                           const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (!strcmp(errs->items[i].path, path) && strstr(errs->items[i].message, msg))
            return &errs->items[i];
    return NULL;
}

static void dump_errors(const tg_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        printf("    (error) line %d: %s: %s\n", errs->items[i].line, errs->items[i].path,
               errs->items[i].message);
}

/* Checks that `yaml` fails with an error at path/line mentioning msg. */
#define CHECK_FAILS(yaml_, path_, line_, msg_)                                                     \
    do {                                                                                           \
        tg_config_errors_t e_ = {0};                                                               \
        tg_config_t *c_ = load((yaml_), &e_);                                                      \
        CHECK(c_ == NULL);                                                                         \
        const tg_config_error_t *f_ = find_error(&e_, (path_), (msg_));                            \
        if (!f_)                                                                                   \
            dump_errors(&e_);                                                                      \
        CHECK(f_ != NULL);                                                                         \
        if (f_)                                                                                    \
            CHECK_INT(f_->line, (line_));                                                          \
        tg_config_release(c_);                                                                     \
        tg_config_errors_free(&e_);                                                                \
    } while (0)

/* Loads yaml that must be valid; the caller releases. */
static tg_config_t *load_ok(const char *yaml)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = load(yaml, &errs);
    dump_errors(&errs);
    tg_config_errors_free(&errs);
    return c;
}

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* ---- a file with every section ---- */

static const char full_yaml[] =
    "server:\n"
    "  host: 127.0.0.1\n"
    "  port: 9000\n"
    "  workers: 3\n"
    "  ssl:\n"
    "    enabled: yes\n"
    "    cert_file: /etc/tg/cert.pem\n"
    "    key_file: /etc/tg/key.pem\n"
    "  shutdown_timeout: 10s\n"
    "  idle_timeout: 2m\n"
    "providers:\n"
    "  openai:\n"
    "    api_key: sk-openai\n"
    "    default_model: gpt-4o\n"
    "    timeout: 0.5\n"
    "    retries: 2\n"
    "    models: [gpt-4o, \"gpt-4o-*\"]\n"
    "    weight: 2.5\n"
    "    headers:\n"
    "      OpenAI-Organization: org-1\n"
    "  anthropic: {}\n"
    "  local:\n"
    "    type: anthropic\n"
    "    base_url: http://10.0.0.5:8080/\n"
    "routing:\n"
    "  default_provider: openai\n"
    "  fallback_chain: [openai, anthropic, mock]\n"
    "  rules:\n"
    "    - condition: {model: \"claude-*\"}\n"
    "      provider: anthropic\n"
    "  load_balancing:\n"
    "    strategy: round_robin\n"
    "  model_aliases:\n"
    "    fast: gpt-4o-mini\n"
    "caching:\n"
    "  enabled: true\n"
    "  ttl: 1h\n"
    "  max_size: 500\n"
    "  backend: redis\n"
    "rate_limiting:\n"
    "  enabled: on\n"
    "  providers:\n"
    "    openai: {requests_per_minute: 10, tokens_per_minute: 2000}\n"
    "  per_key: {requests_per_minute: 1}\n"
    "  per_ip: {tokens_per_minute: 2}\n"
    "  per_user: {requests_per_minute: 3, tokens_per_minute: 4}\n"
    "  per_property:\n"
    "    Agent-Name: {requests_per_minute: 5}\n"
    "observability:\n"
    "  request_logging:\n"
    "    enabled: false\n"
    "    log_level: warning\n"
    "    bodies: no\n"
    "    max_body_bytes: 64KB\n"
    "  metrics:\n"
    "    enabled: off\n"
    "  dashboard:\n"
    "    enabled: true\n"
    "    port: 9001\n"
    "    host: 127.0.0.2\n"
    "  otlp:\n"
    "    endpoint: http://otel:4318\n"
    "cost_tracking:\n"
    "  enabled: false\n"
    "  pricing:\n"
    "    my-model:\n"
    "      input: 0.001\n"
    "      output: 0.002\n"
    "      cached_input: 0.0005\n"
    "      cache_write: 0.00125\n"
    "    other: {input: 0, output: 1}\n"
    "  budgets:\n"
    "    daily: 5\n"
    "    monthly: 50.5\n"
    "  alerts:\n"
    "    - threshold: 50%\n"
    "      action: notification\n"
    "    - threshold: 0.9\n"
    "      action: throttle\n"
    "    - threshold: 95\n"
    "  webhook_url: https://hooks.example.com/x\n"
    "security:\n"
    "  require_auth: true\n"
    "  api_keys:\n"
    "    - name: admin\n"
    "      key: tg-admin\n"
    "      permissions: [read, write]\n"
    "    - name: app\n"
    "      key: tg-app\n"
    "  allowed_ips: [127.0.0.1, \"10.0.0.0/8\", \"::1\", \"fd00::/64\"]\n"
    "  max_request_size: 2MB\n"
    "  max_tokens_per_request: 4096\n"
    "  rate_limits:\n"
    "    per_ip: {requests_per_minute: 60, tokens_per_minute: 100000}\n"
    "logging:\n"
    "  level: debug\n"
    "  format: json\n"
    "  output: /var/log/tollgate.log\n"
    "storage:\n"
    "  url: postgresql://tg@db/tollgate\n"
    "redis:\n"
    "  url: redis://cache:6379/0\n";

TEST(config_full_file_every_section)
{
    tg_config_t *c = load_ok(full_yaml);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(c->host, "127.0.0.1");
    CHECK_INT(c->port, 9000);
    CHECK_INT(c->workers, 3);
    CHECK(c->ssl_enabled);
    CHECK_STR(c->ssl_cert_file, "/etc/tg/cert.pem");
    CHECK_STR(c->ssl_key_file, "/etc/tg/key.pem");
    CHECK_INT(c->shutdown_timeout_ms, 10000);
    CHECK_INT(c->idle_timeout_ms, 120000);

    CHECK_INT(c->n_providers, 4);
    const tg_provider_cfg_t *p = &c->providers[0];
    CHECK_STR(p->name, "openai");
    CHECK_INT(p->type, TG_PROVIDER_OPENAI);
    CHECK_STR(p->base_url, "https://api.openai.com/v1");
    CHECK(!p->explicit_base_url);
    CHECK_STR(p->api_key, "sk-openai");
    CHECK_STR(p->default_model, "gpt-4o");
    CHECK_INT(p->timeout_ms, 500);
    CHECK_INT(p->retries, 2);
    CHECK_INT(p->n_models, 2);
    if (p->n_models == 2)
        CHECK_STR(p->models[1], "gpt-4o-*");
    CHECK(near(p->weight, 2.5));
    CHECK_INT(p->n_headers, 1);
    if (p->n_headers == 1) {
        CHECK_STR(p->headers[0].name, "OpenAI-Organization");
        CHECK_STR(p->headers[0].value, "org-1");
    }
    CHECK_INT(p->line, 12);
    p = &c->providers[1];
    CHECK_STR(p->name, "anthropic");
    CHECK_INT(p->type, TG_PROVIDER_ANTHROPIC);
    CHECK_STR(p->base_url, "https://api.anthropic.com/v1");
    CHECK(p->api_key == NULL);
    CHECK_INT(p->timeout_ms, 60000);
    CHECK_INT(p->retries, 0);
    CHECK(near(p->weight, 1));
    p = &c->providers[2];
    CHECK_STR(p->name, "local");
    CHECK_INT(p->type, TG_PROVIDER_ANTHROPIC);
    CHECK_STR(p->base_url, "http://10.0.0.5:8080/v1");
    CHECK(p->explicit_base_url);
    p = &c->providers[3];
    CHECK_STR(p->name, "mock");
    CHECK_INT(p->type, TG_PROVIDER_MOCK);
    CHECK(p->base_url == NULL);
    CHECK_INT(p->line, 0);

    CHECK_STR(c->default_provider, "openai");
    CHECK_INT(c->n_fallback_chain, 3);
    if (c->n_fallback_chain == 3)
        CHECK_STR(c->fallback_chain[2], "mock");
    CHECK_INT(c->n_rules, 1);
    if (c->n_rules == 1) {
        CHECK_INT(c->rules[0].kind, TG_COND_MODEL);
        CHECK_STR(c->rules[0].value, "claude-*");
        CHECK_STR(c->rules[0].provider, "anthropic");
        CHECK_INT(c->rules[0].line, 29);
    }
    CHECK_INT(c->lb_strategy, TG_LB_ROUND_ROBIN);
    CHECK_INT(c->n_model_aliases, 1);
    if (c->n_model_aliases == 1) {
        CHECK_STR(c->model_aliases[0].name, "fast");
        CHECK_STR(c->model_aliases[0].value, "gpt-4o-mini");
    }

    CHECK(c->cache_enabled);
    CHECK_INT(c->cache_ttl_ms, 3600000);
    CHECK_INT(c->cache_max_size, 500);
    CHECK_STR(c->cache_backend, "redis");

    CHECK(c->rl_enabled);
    CHECK_INT(c->n_rl_providers, 1);
    if (c->n_rl_providers == 1) {
        CHECK_STR(c->rl_providers[0].name, "openai");
        CHECK_INT(c->rl_providers[0].limit.requests_per_minute, 10);
        CHECK_INT(c->rl_providers[0].limit.tokens_per_minute, 2000);
    }
    CHECK_INT(c->rl_per_key.requests_per_minute, 1);
    CHECK_INT(c->rl_per_key.tokens_per_minute, 0);
    CHECK_INT(c->rl_per_ip.tokens_per_minute, 2);
    CHECK_INT(c->rl_per_user.requests_per_minute, 3);
    CHECK_INT(c->rl_per_user.tokens_per_minute, 4);
    CHECK_INT(c->n_rl_per_property, 1);
    if (c->n_rl_per_property == 1) {
        CHECK_STR(c->rl_per_property[0].name, "Agent-Name");
        CHECK_INT(c->rl_per_property[0].limit.requests_per_minute, 5);
    }

    CHECK(!c->request_logging_enabled);
    CHECK_STR(c->request_logging_level, "warn");
    CHECK(!c->log_bodies);
    CHECK_INT(c->max_body_bytes, 65536);
    CHECK(!c->metrics_enabled);
    CHECK(c->dashboard_enabled);
    CHECK_INT(c->dashboard_port, 9001);
    CHECK_STR(c->dashboard_host, "127.0.0.2");
    CHECK_STR(c->otlp_endpoint, "http://otel:4318");

    CHECK(!c->cost_enabled);
    CHECK_INT(c->n_pricing, 2);
    if (c->n_pricing == 2) {
        CHECK_STR(c->pricing[0].model, "my-model");
        CHECK(near(c->pricing[0].input, 0.001));
        CHECK(near(c->pricing[0].output, 0.002));
        CHECK(near(c->pricing[0].cached_input, 0.0005));
        CHECK(near(c->pricing[0].cache_write, 0.00125));
        CHECK(near(c->pricing[1].input, 0));
        CHECK(c->pricing[1].cached_input < 0);
        CHECK(c->pricing[1].cache_write < 0);
    }
    CHECK(near(c->budget_daily, 5));
    CHECK(near(c->budget_monthly, 50.5));
    CHECK_INT(c->n_alerts, 3);
    if (c->n_alerts == 3) {
        CHECK(near(c->alerts[0].threshold, 0.5));
        CHECK_STR(c->alerts[0].action, "notification");
        CHECK(near(c->alerts[1].threshold, 0.9));
        CHECK_STR(c->alerts[1].action, "throttle");
        CHECK(near(c->alerts[2].threshold, 0.95));
        CHECK_STR(c->alerts[2].action, "notification");
    }
    CHECK_STR(c->webhook_url, "https://hooks.example.com/x");

    CHECK(c->require_auth);
    CHECK_INT(c->n_api_keys, 2);
    if (c->n_api_keys == 2) {
        CHECK_STR(c->api_keys[0].name, "admin");
        CHECK_STR(c->api_keys[0].key, "tg-admin");
        CHECK(c->api_keys[0].perm_read && c->api_keys[0].perm_write);
        CHECK_STR(c->api_keys[1].name, "app");
        CHECK(!c->api_keys[1].perm_read && !c->api_keys[1].perm_write);
    }
    CHECK_INT(c->n_allowed_ips, 4);
    if (c->n_allowed_ips == 4)
        CHECK_STR(c->allowed_ips[3], "fd00::/64");
    CHECK_INT(c->max_request_size, 2 * 1024 * 1024);
    CHECK_INT(c->max_tokens_per_request, 4096);
    CHECK_INT(c->sec_per_ip.requests_per_minute, 60);
    CHECK_INT(c->sec_per_ip.tokens_per_minute, 100000);

    CHECK_STR(c->log_level, "debug");
    CHECK_STR(c->log_format, "json");
    CHECK_STR(c->log_output, "/var/log/tollgate.log");
    CHECK_STR(c->storage_url, "postgresql://tg@db/tollgate");
    CHECK_STR(c->redis_url, "redis://cache:6379/0");
    CHECK_STR(c->source, "test.yaml");
    CHECK_INT(c->refs, 1);
    tg_config_release(c);
}

TEST(config_empty_file_gives_defaults)
{
    tg_config_t *c = load_ok("# nothing but a comment\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(c->host, "0.0.0.0");
    CHECK_INT(c->port, 8585);
    CHECK(c->workers >= 1);
    CHECK(!c->ssl_enabled);
    CHECK_INT(c->shutdown_timeout_ms, 30000);
    CHECK_INT(c->idle_timeout_ms, 60000);
    CHECK_INT(c->header_timeout_ms, 10000);
    CHECK_INT(c->body_timeout_ms, 30000);
    CHECK_INT(c->body_min_rate, 64 * 1024);
    CHECK_INT(c->max_connections, 0); /* from the descriptor limit at start */
    CHECK_INT(c->n_providers, 1);
    CHECK_STR(c->providers[0].name, "mock");
    CHECK(c->default_provider == NULL);
    CHECK_INT(c->lb_strategy, TG_LB_WEIGHTED);
    CHECK(!c->cache_enabled);
    CHECK_INT(c->cache_ttl_ms, 3600000);
    CHECK_INT(c->cache_max_size, 10000);
    CHECK_STR(c->cache_backend, "memory");
    CHECK(!c->rl_enabled);
    CHECK(c->request_logging_enabled);
    CHECK_STR(c->request_logging_level, "info");
    CHECK(c->log_bodies);
    CHECK_INT(c->max_body_bytes, 1024 * 1024);
    CHECK(c->metrics_enabled);
    CHECK(!c->dashboard_enabled);
    CHECK_INT(c->dashboard_port, 8586);
    CHECK_STR(c->dashboard_host, "0.0.0.0");
    CHECK(c->otlp_endpoint == NULL);
    CHECK(c->cost_enabled);
    CHECK(c->budget_daily < 0 && c->budget_monthly < 0);
    CHECK(!c->require_auth);
    /* a file that says nothing still keeps the records to this machine */
    CHECK_INT(c->n_admin_allowed_ips, 2);
    if (c->n_admin_allowed_ips == 2) {
        CHECK_STR(c->admin_allowed_ips[0], "127.0.0.0/8");
        CHECK_STR(c->admin_allowed_ips[1], "::1");
    }
    CHECK_INT(c->max_request_size, 10 * 1024 * 1024);
    CHECK_INT(c->max_tokens_per_request, 0);
    CHECK_STR(c->log_level, "info");
    CHECK_STR(c->log_format, "text");
    CHECK_STR(c->log_output, "stdout");
    CHECK_STR(c->storage_url, "sqlite:tollgate.db");
    CHECK(c->redis_url == NULL);
    tg_config_release(c);
}

/* ---- the users' files ---- */

TEST(config_fixture_seed_config)
{
    setenv("DEEPSEEK_API_KEY", "sk-deepseek-test", 1);
    unsetenv("OPENAI_API_KEY");
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_file(FIXTURES "/seed-config.yaml", &errs);
    dump_errors(&errs);
    CHECK(c != NULL);
    CHECK_INT(errs.n, 0);
    tg_config_errors_free(&errs);
    unsetenv("DEEPSEEK_API_KEY");
    if (!c)
        return;
    CHECK_STR(c->source, FIXTURES "/seed-config.yaml");
    CHECK_INT(c->port, 8585);
    CHECK_INT(c->workers, 4);
    CHECK_INT(c->n_providers, 5);
    const char *names[] = {"deepseek", "openai", "anthropic", "gemini", "mock"};
    const char *urls[] = {"https://api.deepseek.com/v1", "https://api.openai.com/v1",
                          "https://api.anthropic.com/v1",
                          "https://generativelanguage.googleapis.com/v1beta", NULL};
    tg_provider_type_t types[] = {TG_PROVIDER_OPENAI, TG_PROVIDER_OPENAI, TG_PROVIDER_ANTHROPIC,
                                  TG_PROVIDER_GEMINI, TG_PROVIDER_MOCK};
    for (size_t i = 0; i < 5 && i < c->n_providers; i++) {
        CHECK_STR(c->providers[i].name, names[i]);
        CHECK_INT(c->providers[i].type, types[i]);
        if (urls[i])
            CHECK_STR(c->providers[i].base_url, urls[i]);
        if (i < 4) {
            CHECK(c->providers[i].explicit_base_url);
            CHECK_INT(c->providers[i].timeout_ms, 60000);
            CHECK_INT(c->providers[i].retries, 3);
        }
    }
    CHECK_STR(c->providers[0].api_key, "sk-deepseek-test");
    CHECK(c->providers[1].api_key == NULL);
    CHECK_STR(c->providers[2].default_model, "claude-3-5-sonnet-20241022");
    CHECK_STR(c->default_provider, "deepseek");
    CHECK_INT(c->n_fallback_chain, 4);
    CHECK(c->cache_enabled);
    CHECK_INT(c->cache_ttl_ms, 3600000);
    CHECK(c->rl_enabled);
    CHECK_INT(c->n_rl_providers, 1);
    CHECK(c->dashboard_enabled);
    CHECK_INT(c->dashboard_port, 8586);
    CHECK_INT(c->n_pricing, 3);
    if (c->n_pricing == 3) {
        CHECK_STR(c->pricing[2].model, "claude-3-5-sonnet");
        CHECK(near(c->pricing[2].output, 0.015));
    }
    CHECK(!c->require_auth);
    CHECK_INT(c->max_request_size, 10 * 1024 * 1024);
    CHECK_INT(c->max_tokens_per_request, 8192);
    CHECK_STR(c->log_format, "json");
    tg_config_release(c);
}

TEST(config_fixture_seed_production)
{
    unsetenv("OPENCLAW_DEV_KEY");
    unsetenv("OPENCLAW_PROD_KEY");
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_file(FIXTURES "/seed-production.yaml", &errs);
    dump_errors(&errs);
    CHECK(c != NULL);
    CHECK_INT(errs.n, 0);
    tg_config_errors_free(&errs);
    if (!c)
        return;
    CHECK_INT(c->n_rules, 3);
    if (c->n_rules == 3) {
        CHECK_INT(c->rules[0].kind, TG_COND_TASK);
        CHECK_STR(c->rules[0].value, "coding_task");
        CHECK_STR(c->rules[0].provider, "anthropic");
        CHECK_INT(c->rules[1].kind, TG_COND_TASK);
        CHECK_STR(c->rules[1].value, "creative_task");
        CHECK_STR(c->rules[1].provider, "openai");
        CHECK_INT(c->rules[2].kind, TG_COND_DEFAULT);
        CHECK(c->rules[2].value == NULL && c->rules[2].key == NULL);
        CHECK_STR(c->rules[2].provider, "deepseek");
        CHECK_INT(c->rules[2].line, 52);
    }
    CHECK(near(c->budget_daily, 10));
    CHECK(near(c->budget_monthly, 100));
    CHECK_INT(c->n_alerts, 2);
    if (c->n_alerts == 2) {
        CHECK(near(c->alerts[0].threshold, 0.8));
        CHECK_STR(c->alerts[0].action, "notification");
        CHECK(near(c->alerts[1].threshold, 1.0));
        CHECK_STR(c->alerts[1].action, "throttle");
    }
    CHECK(c->require_auth);
    /* Both keys come from unset variables: skipped, not an error. */
    CHECK_INT(c->n_api_keys, 0);
    CHECK_INT(c->n_allowed_ips, 4);
    if (c->n_allowed_ips == 4) {
        CHECK_STR(c->allowed_ips[0], "127.0.0.1");
        CHECK_STR(c->allowed_ips[3], "10.0.0.0/8");
    }
    CHECK_INT(c->sec_per_ip.requests_per_minute, 60);
    CHECK_INT(c->sec_per_ip.tokens_per_minute, 100000);
    tg_config_release(c);

    setenv("OPENCLAW_DEV_KEY", "tg-dev-secret", 1);
    c = tg_config_load_file(FIXTURES "/seed-production.yaml", &errs);
    dump_errors(&errs);
    CHECK(c != NULL);
    tg_config_errors_free(&errs);
    unsetenv("OPENCLAW_DEV_KEY");
    if (!c)
        return;
    CHECK_INT(c->n_api_keys, 1);
    if (c->n_api_keys == 1) {
        CHECK_STR(c->api_keys[0].name, "openclaw-dev");
        CHECK_STR(c->api_keys[0].key, "tg-dev-secret");
        CHECK(c->api_keys[0].perm_read && c->api_keys[0].perm_write);
    }
    tg_config_release(c);
}

TEST(config_missing_file_is_an_error)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_file("/nonexistent/tollgate.yaml", &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.n, 1);
    if (errs.n == 1)
        CHECK(strstr(errs.items[0].message, "/nonexistent/tollgate.yaml") != NULL);
    tg_config_errors_free(&errs);
}

/* ---- ${VAR} expansion ---- */

TEST(config_env_expansion)
{
    setenv("TG_TEST_HOST", "upstream.local", 1);
    setenv("TG_TEST_PORT", "9090", 1);
    setenv("TG_TEST_EMPTY", "", 1);
    setenv("TG_TEST_WORKERS", "7", 1);
    unsetenv("TG_TEST_UNSET");
    tg_config_t *c = load_ok("server:\n"
                             "  port: ${TG_TEST_PORT}\n"
                             "  workers: ${TG_TEST_WORKERS:-2}\n"
                             "  host: \"${TG_TEST_UNSET:-10.1.2.3}\"\n"
                             "providers:\n"
                             "  a:\n"
                             "    base_url: http://${TG_TEST_HOST}:${TG_TEST_UNSET:-80}/v1\n"
                             "    default_model: x${TG_TEST_UNSET}y\n"
                             "    headers:\n"
                             "      X-One: '${TG_TEST_EMPTY:-fallback}'\n"
                             "      X-Two: pre-${TG_TEST_HOST}-${TG_TEST_HOST}\n"
                             "      X-Lit: $${TG_TEST_HOST} costs $5\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->port, 9090);
        CHECK_INT(c->workers, 7);
        CHECK_STR(c->host, "10.1.2.3");
        CHECK_STR(c->providers[0].base_url, "http://upstream.local:80/v1");
        CHECK_STR(c->providers[0].default_model, "xy");
        CHECK_INT(c->providers[0].n_headers, 3);
        if (c->providers[0].n_headers == 3) {
            CHECK_STR(c->providers[0].headers[0].value, "fallback");
            CHECK_STR(c->providers[0].headers[1].value, "pre-upstream.local-upstream.local");
            CHECK_STR(c->providers[0].headers[2].value, "${TG_TEST_HOST} costs $5");
        }
    }
    tg_config_release(c);

    /* An unset variable for a typed key leaves the default. */
    c = load_ok("server:\n  port: ${TG_TEST_UNSET}\n");
    CHECK(c != NULL);
    if (c)
        CHECK_INT(c->port, 8585);
    tg_config_release(c);

    CHECK_FAILS("server:\n  host: ${TG_TEST_HOST\n", "server.host", 2, "unterminated");
    CHECK_FAILS("server:\n  host: ${1X}\n", "server.host", 2, "variable name");
    CHECK_FAILS("server:\n  host: ${A B}\n", "server.host", 2, "${NAME}");
    unsetenv("TG_TEST_HOST");
    unsetenv("TG_TEST_PORT");
    unsetenv("TG_TEST_EMPTY");
    unsetenv("TG_TEST_WORKERS");
}

TEST(config_expand_env_function)
{
    setenv("TG_TEST_A", "alpha", 1);
    unsetenv("TG_TEST_UNSET");
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"${TG_TEST_A}", "alpha"},
        {"${TG_TEST_A}${TG_TEST_A}", "alphaalpha"},
        {"[${TG_TEST_UNSET}]", "[]"},
        {"${TG_TEST_UNSET:-d e f}", "d e f"},
        {"${TG_TEST_A:-unused}", "alpha"},
        {"${TG_TEST_UNSET:-}", ""},
        {"$HOME $ {x} $$", "$HOME $ {x} $$"},
        {"$${TG_TEST_A}", "${TG_TEST_A}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        const char *why = NULL;
        CHECK_INT(tg_config_expand_env(cases[i].in, &out, &why), 0);
        CHECK_STR(out, cases[i].out);
        free(out);
    }
    char *out = NULL;
    const char *why = NULL;
    CHECK_INT(tg_config_expand_env("${TG_TEST_A", &out, &why), -1);
    CHECK(why != NULL);
    CHECK_INT(tg_config_expand_env("${}", &out, &why), -1);
    CHECK_INT(tg_config_expand_env("${X:-abc", &out, &why), -1);
    unsetenv("TG_TEST_A");
}

TEST(config_empty_api_key_is_null)
{
    setenv("TG_TEST_EMPTY", "", 1);
    unsetenv("TG_TEST_UNSET");
    setenv("TG_TEST_KEY", "sk-123", 1);
    tg_config_t *c = load_ok("providers:\n"
                             "  openai:\n"
                             "    api_key: ${TG_TEST_UNSET}\n"
                             "  anthropic:\n"
                             "    api_key: ${TG_TEST_EMPTY}\n"
                             "  gemini:\n"
                             "    api_key: \"\"\n"
                             "  groq:\n"
                             "    api_key:\n"
                             "  xai:\n"
                             "    api_key: ${TG_TEST_KEY}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_providers, 6);
        for (size_t i = 0; i < 4; i++)
            CHECK(c->providers[i].api_key == NULL);
        CHECK_STR(c->providers[4].api_key, "sk-123");
    }
    tg_config_release(c);
    unsetenv("TG_TEST_EMPTY");
    unsetenv("TG_TEST_KEY");
}

/* ---- sizes and durations ---- */

TEST(config_parse_size_table)
{
    static const struct {
        const char *in;
        int64_t bytes;
    } ok[] = {
        {"512", 512},        {"0", 0},
        {"64KB", 65536},     {"64kb", 65536},
        {"64K", 65536},      {"64k", 65536},
        {"64KiB", 65536},    {"10MB", 10485760},
        {"10M", 10485760},   {"10MiB", 10485760},
        {"10mb", 10485760},  {"1GB", 1073741824},
        {"1G", 1073741824},  {"1gib", 1073741824},
        {"512B", 512},       {"1.5KB", 1536},
        {"10 MB", 10485760},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        if (tg_config_parse_size(ok[i].in, &v) != 0)
            printf("    size \"%s\" rejected\n", ok[i].in);
        CHECK_INT(v, ok[i].bytes);
    }
    static const char *const bad[] = {"",     "MB",  "-1",  "10XB",  "10 M B",          "ten",
                                      "0x10", "1e3", "inf", "10MBs", "99999999999999GB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (tg_config_parse_size(bad[i], &v) == 0)
            printf("    size \"%s\" accepted\n", bad[i]);
        CHECK(tg_config_parse_size(bad[i], &v) == -1);
    }
}

TEST(config_parse_duration_table)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"30", 30000},  {"0.5", 500},    {"500ms", 500},   {"30s", 30000},
        {"5m", 300000}, {"1h", 3600000}, {"1d", 86400000}, {"1.5h", 5400000},
        {"0", 0},       {"250MS", 250},  {"2 s", 2000},    {"60", 60000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        if (tg_config_parse_duration(ok[i].in, &v) != 0)
            printf("    duration \"%s\" rejected\n", ok[i].in);
        CHECK_INT(v, ok[i].ms);
    }
    static const char *const bad[] = {"",   "s",   "-5s",  "5x",    "5 minutes",
                                      "1w", "nan", "5ms5", "1e9999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (tg_config_parse_duration(bad[i], &v) == 0)
            printf("    duration \"%s\" accepted\n", bad[i]);
        CHECK(tg_config_parse_duration(bad[i], &v) == -1);
    }
}

TEST(config_scalar_helpers)
{
    bool b = false;
    CHECK_INT(tg_config_parse_bool("YES", &b), 0);
    CHECK(b);
    CHECK_INT(tg_config_parse_bool("Off", &b), 0);
    CHECK(!b);
    CHECK_INT(tg_config_parse_bool("1", &b), -1);
    int64_t n;
    CHECK_INT(tg_config_parse_int("42", &n), 0);
    CHECK_INT(n, 42);
    CHECK_INT(tg_config_parse_int("42x", &n), -1);
    CHECK_INT(tg_config_parse_int("4.2", &n), -1);
    CHECK_INT(tg_config_parse_int("99999999999999999999", &n), -1);
    double d;
    CHECK_INT(tg_config_parse_number("0.00014", &d), 0);
    CHECK(near(d, 0.00014));
    CHECK_INT(tg_config_parse_number("nan", &d), -1);
    CHECK_INT(tg_config_parse_number("1.2.3", &d), -1);
    CHECK_INT(tg_config_parse_threshold("80%", &d), 0);
    CHECK(near(d, 0.8));
    CHECK_INT(tg_config_parse_threshold("0.8", &d), 0);
    CHECK(near(d, 0.8));
    CHECK_INT(tg_config_parse_threshold("80", &d), 0);
    CHECK(near(d, 0.8));
    CHECK_INT(tg_config_parse_threshold("1", &d), 0);
    CHECK(near(d, 1.0));
    CHECK_INT(tg_config_parse_threshold("0%", &d), -1);
    CHECK_INT(tg_config_parse_threshold("%", &d), -1);
    CHECK_INT(tg_config_check_ip("192.168.1.100"), 0);
    CHECK_INT(tg_config_check_ip("10.0.0.0/8"), 0);
    CHECK_INT(tg_config_check_ip("::1"), 0);
    CHECK_INT(tg_config_check_ip("2001:db8::/32"), 0);
    CHECK_INT(tg_config_check_ip("10.0.0.0/33"), -1);
    CHECK_INT(tg_config_check_ip("2001:db8::/129"), -1);
    CHECK_INT(tg_config_check_ip("10.0.0/8"), -1);
    CHECK_INT(tg_config_check_ip("10.0.0.0/"), -1);
    CHECK_INT(tg_config_check_ip("localhost"), -1);
}

TEST(config_sizes_and_durations_in_yaml)
{
    tg_config_t *c = load_ok("server:\n"
                             "  shutdown_timeout: 1500ms\n"
                             "  idle_timeout: 5\n"
                             "caching:\n"
                             "  ttl: 1d\n"
                             "observability:\n"
                             "  request_logging:\n"
                             "    max_body_bytes: 512\n"
                             "security:\n"
                             "  max_request_size: 1G\n"
                             "providers:\n"
                             "  openai:\n"
                             "    timeout: 5m\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->shutdown_timeout_ms, 1500);
        CHECK_INT(c->idle_timeout_ms, 5000);
        CHECK_INT(c->cache_ttl_ms, 86400000);
        CHECK_INT(c->max_body_bytes, 512);
        CHECK_INT(c->max_request_size, 1073741824);
        CHECK_INT(c->providers[0].timeout_ms, 300000);
    }
    tg_config_release(c);
    CHECK_FAILS("caching:\n  ttl: soon\n", "caching.ttl", 2, "expected a duration");
    CHECK_FAILS("security:\n  max_request_size: huge\n", "security.max_request_size", 2,
                "expected a size");
    CHECK_FAILS("providers:\n  openai:\n    timeout: 0\n", "providers.openai.timeout", 3,
                "at least");
}

/* ---- errors: path, line, collection ---- */

TEST(config_connection_limits_and_deadlines)
{
    tg_config_t *c = load_ok("server:\n"
                             "  header_timeout: 5s\n"
                             "  body_timeout: 1m\n"
                             "  body_min_rate: 16KB\n"
                             "  max_connections: 5000\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->header_timeout_ms, 5000);
        CHECK_INT(c->body_timeout_ms, 60000);
        CHECK_INT(c->body_min_rate, 16 * 1024);
        CHECK_INT(c->max_connections, 5000);
    }
    tg_config_release(c);
    c = load_ok("server:\n  body_min_rate: 0\n"); /* the whole body within body_timeout */
    CHECK(c != NULL);
    if (c)
        CHECK_INT(c->body_min_rate, 0);
    tg_config_release(c);
}

TEST(config_unknown_key_path_and_line)
{
    /* The misspelt key is on line 14. */
    static const char yaml[] = "# tollgate\n"                           /* 1 */
                               "server:\n"                              /* 2 */
                               "  port: 8585\n"                         /* 3 */
                               "\n"                                     /* 4 */
                               "providers:\n"                           /* 5 */
                               "  anthropic:\n"                         /* 6 */
                               "    api_key: x\n"                       /* 7 */
                               "    timeout: 30\n"                      /* 8 */
                               "\n"                                     /* 9 */
                               "  # OpenAI\n"                           /* 10 */
                               "  openai:\n"                            /* 11 */
                               "    api_key: y\n"                       /* 12 */
                               "    retries: 1\n"                       /* 13 */
                               "    base_ur: https://api.openai.com\n"; /* 14 */
    tg_config_errors_t errs = {0};
    tg_config_t *c = load(yaml, &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.n, 1);
    if (errs.n == 1) {
        CHECK_STR(errs.items[0].path, "providers.openai.base_ur");
        CHECK_STR(errs.items[0].message, "unknown key");
        CHECK_INT(errs.items[0].line, 14);
    }
    tg_config_errors_free(&errs);
    CHECK_FAILS("serverr:\n  port: 1\n", "serverr", 1, "unknown key");
    CHECK_FAILS("observability:\n  dashboard:\n    prot: 1\n", "observability.dashboard.prot", 3,
                "unknown key");
    CHECK_FAILS("security:\n  api_keys:\n    - name: a\n      key: b\n      perms: [read]\n",
                "security.api_keys[0].perms", 5, "unknown key");
    CHECK_FAILS("server:\n  port: 1\n  port: 2\n", "server.port", 3, "duplicate key");
}

TEST(config_collects_every_error)
{
    static const char yaml[] = "server:\n"
                               "  port: 0\n"
                               "  workers: many\n"
                               "  colour: blue\n"
                               "providers:\n"
                               "  openai:\n"
                               "    retries: -1\n"
                               "caching:\n"
                               "  enabled: maybe\n"
                               "logging:\n"
                               "  format: xml\n";
    tg_config_errors_t errs = {0};
    tg_config_t *c = load(yaml, &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.n, 6);
    const tg_config_error_t *e = find_error(&errs, "server.port", "");
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->message, "expected an integer from 1 to 65535");
        CHECK_INT(e->line, 2);
    }
    CHECK(find_error(&errs, "server.workers", "expected an integer") != NULL);
    CHECK(find_error(&errs, "server.colour", "unknown key") != NULL);
    CHECK(find_error(&errs, "providers.openai.retries", "expected an integer") != NULL);
    e = find_error(&errs, "caching.enabled", "expected true or false");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 9);
    CHECK(find_error(&errs, "logging.format", "json") != NULL);
    tg_config_errors_free(&errs);

    /* Errors accumulate after those already in the list. */
    tg_config_errors_t two = {0};
    CHECK(load("server:\n  port: x\n", &two) == NULL);
    CHECK(load("server:\n  host: [a]\n", &two) == NULL);
    CHECK_INT(two.n, 2);
    tg_config_errors_free(&two);
    CHECK(load("server:\n  port: x\n", NULL) == NULL);
}

TEST(config_type_errors)
{
    CHECK_FAILS("server: 8585\n", "server", 1, "expected a mapping");
    CHECK_FAILS("server:\n  host: [a, b]\n", "server.host", 2, "expected a string");
    CHECK_FAILS("server:\n  port: 80.5\n", "server.port", 2, "1 to 65535");
    CHECK_FAILS("server:\n  workers: 0\n", "server.workers", 2, "expected an integer");
    CHECK_FAILS("server:\n  max_connections: 0\n", "server.max_connections", 2, "1 to");
    CHECK_FAILS("server:\n  max_connections: -5\n", "server.max_connections", 2, "1 to");
    CHECK_FAILS("server:\n  header_timeout: 0\n", "server.header_timeout", 2, "at least 1 ms");
    CHECK_FAILS("server:\n  header_timeout: -1s\n", "server.header_timeout", 2, "a duration");
    CHECK_FAILS("server:\n  body_timeout: 0s\n", "server.body_timeout", 2, "at least 1 ms");
    CHECK_FAILS("server:\n  body_min_rate: fast\n", "server.body_min_rate", 2, "a size");
    CHECK_FAILS("routing:\n  fallback_chain: openai\n", "routing.fallback_chain", 2,
                "expected a list");
    CHECK_FAILS("routing:\n  load_balancing:\n    strategy: random\n",
                "routing.load_balancing.strategy", 3, "round_robin");
    CHECK_FAILS("providers:\n  openai:\n    weight: 0\n", "providers.openai.weight", 3,
                "expected a number > 0");
    CHECK_FAILS("providers:\n  openai:\n    type: cohere\n", "providers.openai.type", 3,
                "expected one of");
    CHECK_FAILS("providers:\n  openai:\n    headers:\n      \"Bad Header\": x\n",
                "providers.openai.headers.Bad Header", 4, "header name");
    CHECK_FAILS("cost_tracking:\n  pricing:\n    m:\n      input: -1\n      output: 1\n",
                "cost_tracking.pricing.m.input", 4, "expected a number >= 0");
    CHECK_FAILS("cost_tracking:\n  pricing:\n    m:\n      input: 1\n",
                "cost_tracking.pricing.m.output", 3, "required");
    CHECK_FAILS("cost_tracking:\n  alerts:\n    - threshold: lots\n",
                "cost_tracking.alerts[0].threshold", 3, "80%");
    CHECK_FAILS("cost_tracking:\n  alerts:\n    - action: throttle\n",
                "cost_tracking.alerts[0].threshold", 3, "required");
    CHECK_FAILS("cost_tracking:\n  alerts:\n    - threshold: 80%\n      action: email\n",
                "cost_tracking.alerts[0].action", 4, "notification");
    CHECK_FAILS("cost_tracking:\n  webhook_url: ftp://x\n", "cost_tracking.webhook_url", 2, "http");
    CHECK_FAILS("security:\n  allowed_ips: [10.0.0.1, 300.1.1.1]\n", "security.allowed_ips[1]", 2,
                "address");
    CHECK_FAILS("security:\n  allowed_ips:\n    - 10.0.0.0/40\n", "security.allowed_ips[0]", 3,
                "CIDR");
    CHECK_FAILS("security:\n  api_keys:\n    - name: a\n      key: k\n      permissions: [admin]\n",
                "security.api_keys[0].permissions[0]", 5, "read");
    CHECK_FAILS("logging:\n  level: loud\n", "logging.level", 2, "debug");
    CHECK_FAILS("storage:\n  url: mysql://x\n", "storage.url", 2, "sqlite:");
    CHECK_FAILS("redis:\n  url: http://x\n", "redis.url", 2, "redis://");
    CHECK_FAILS("caching:\n  backend: disk\n", "caching.backend", 2, "memory");
    CHECK_FAILS("server:\n  port: [\n", "", 3, "YAML syntax error");
    CHECK_FAILS("- a\n- b\n", "", 1, "expected a mapping");
    CHECK_FAILS("server: {}\n---\nserver: {}\n", "", 3, "one YAML document");

    tg_config_t *c =
        load_ok("storage:\n  url: sqlite:/var/lib/tg.db\nredis:\n  url: unix:/run/r.sock\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(c->storage_url, "sqlite:/var/lib/tg.db");
        CHECK_STR(c->redis_url, "unix:/run/r.sock");
    }
    tg_config_release(c);
}

/* ---- providers ---- */

TEST(config_provider_base_urls)
{
    tg_config_t *c = load_ok("providers:\n"
                             "  openai: {base_url: \"https://api.openai.com\"}\n"
                             "  anthropic: {base_url: \"https://api.anthropic.com/\"}\n"
                             "  gemini: {base_url: \"https://generativelanguage.googleapis.com\"}\n"
                             "  groq: {base_url: \"https://api.groq.com\"}\n"
                             "  openrouter: {base_url: \"https://openrouter.ai\"}\n"
                             "  fireworks: {base_url: \"https://api.fireworks.ai\"}\n"
                             "  deepseek: {base_url: \"https://proxy.example.com/deepseek/\"}\n"
                             "  custom: {base_url: \"http://127.0.0.1:8000\"}\n"
                             "  custom-path: {base_url: \"http://127.0.0.1:8000/api\"}\n"
                             "  claude-proxy: {type: anthropic, base_url: \"https://p.example\"}\n"
                             "  gem-proxy: {type: gemini, base_url: \"https://g.example/\"}\n"
                             "  az: {type: azure, base_url: \"https://r.openai.azure.com\"}\n"
                             "  azure: {base_url: \"https://r2.openai.azure.com/openai/\"}\n"
                             "  ollama: {}\n"
                             "  together: {}\n"
                             "  mistral: {}\n"
                             "  xai: {}\n"
                             "  modelscope: {}\n");
    CHECK(c != NULL);
    if (!c)
        return;
    static const struct {
        const char *name, *url;
        bool explicit_url;
    } want[] = {
        {"openai", "https://api.openai.com/v1", true},
        {"anthropic", "https://api.anthropic.com/v1", true},
        {"gemini", "https://generativelanguage.googleapis.com/v1beta", true},
        {"groq", "https://api.groq.com/openai/v1", true},
        {"openrouter", "https://openrouter.ai/api/v1", true},
        {"fireworks", "https://api.fireworks.ai/inference/v1", true},
        {"deepseek", "https://proxy.example.com/deepseek", true},
        {"custom", "http://127.0.0.1:8000/v1", true},
        {"custom-path", "http://127.0.0.1:8000/api", true},
        {"claude-proxy", "https://p.example/v1", true},
        {"gem-proxy", "https://g.example/v1beta", true},
        {"az", "https://r.openai.azure.com", true},
        {"azure", "https://r2.openai.azure.com/openai", true},
        {"ollama", "http://localhost:11434/v1", false},
        {"together", "https://api.together.xyz/v1", false},
        {"mistral", "https://api.mistral.ai/v1", false},
        {"xai", "https://api.x.ai/v1", false},
        {"modelscope", "https://api-inference.modelscope.cn/v1", false},
    };
    size_t n = sizeof want / sizeof want[0];
    CHECK_INT(c->n_providers, n + 1);
    for (size_t i = 0; i < n && i < c->n_providers; i++) {
        CHECK_STR(c->providers[i].name, want[i].name);
        CHECK_STR(c->providers[i].base_url, want[i].url);
        CHECK_INT(c->providers[i].explicit_base_url, want[i].explicit_url);
    }
    tg_config_release(c);

    CHECK_FAILS("providers:\n  openai:\n    base_url: api.openai.com\n",
                "providers.openai.base_url", 3, "http:// or https://");
    CHECK_FAILS("providers:\n  foo:\n    base_url: https://\n", "providers.foo.base_url", 3,
                "no host");
    CHECK_FAILS("providers:\n  foo:\n    base_url: https://x.example/v1?k=1\n",
                "providers.foo.base_url", 3, "query");
}

TEST(config_provider_types)
{
    tg_config_t *c = load_ok("providers:\n"
                             "  google: {}\n"
                             "  Anthropic: {}\n"
                             "  deepseek:\n"
                             "  openrouter:\n"
                             "    type: anthropic\n"
                             "    base_url: https://openrouter.ai/api\n"
                             "  self-hosted:\n"
                             "    base_url: http://vllm:8000\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_INT(c->n_providers, 6);
    CHECK_INT(c->providers[0].type, TG_PROVIDER_GEMINI);
    CHECK_STR(c->providers[0].base_url, "https://generativelanguage.googleapis.com/v1beta");
    CHECK_STR(c->providers[1].name, "Anthropic");
    CHECK_INT(c->providers[1].type, TG_PROVIDER_ANTHROPIC);
    CHECK_INT(c->providers[2].type, TG_PROVIDER_OPENAI);
    CHECK_STR(c->providers[2].base_url, "https://api.deepseek.com/v1");
    CHECK_INT(c->providers[3].type, TG_PROVIDER_ANTHROPIC); /* explicit type wins */
    CHECK_STR(c->providers[3].base_url, "https://openrouter.ai/api");
    CHECK_INT(c->providers[4].type, TG_PROVIDER_OPENAI);
    CHECK_INT(c->providers[5].type, TG_PROVIDER_MOCK);

    /* Lookup is case-insensitive and exact in length. */
    CHECK(tg_config_provider(c, "ANTHROPIC", 9) == &c->providers[1]);
    CHECK(tg_config_provider(c, "anthropic/claude", 9) == &c->providers[1]);
    CHECK(tg_config_provider(c, "anthro", 6) == NULL);
    CHECK(tg_config_provider(c, "Mock", 4) == &c->providers[5]);
    CHECK(tg_config_provider(c, "nope", 4) == NULL);
    tg_config_release(c);

    CHECK_STR(tg_provider_type_name(TG_PROVIDER_OPENAI), "openai");
    CHECK_STR(tg_provider_type_name(TG_PROVIDER_ANTHROPIC), "anthropic");
    CHECK_STR(tg_provider_type_name(TG_PROVIDER_GEMINI), "gemini");
    CHECK_STR(tg_provider_type_name(TG_PROVIDER_AZURE), "azure");
    CHECK_STR(tg_provider_type_name(TG_PROVIDER_MOCK), "mock");
}

TEST(config_unknown_provider_needs_base_url)
{
    CHECK_FAILS("providers:\n  foo:\n    api_key: x\n", "providers.foo.base_url", 2,
                "required for a provider that is not well known");
    CHECK_FAILS("providers:\n  bar: {}\n", "providers.bar.base_url", 2, "not well known");
    CHECK_FAILS("providers:\n  azure: {}\n", "providers.azure.base_url", 2, "azure");
    CHECK_FAILS("providers:\n  groq: {type: gemini}\n", "providers.groq.base_url", 2, "required");
    CHECK_FAILS("providers:\n  openai: {}\n  OpenAI: {}\n", "providers.OpenAI", 3,
                "duplicate provider");
    CHECK_FAILS("providers:\n  v1: {base_url: \"http://x\"}\n", "providers.v1", 2, "reserved");
    CHECK_FAILS("providers:\n  \"my provider\": {base_url: \"http://x\"}\n",
                "providers.my provider", 2, "letters, digits");
}

TEST(config_mock_provider)
{
    /* Built in: appended last. */
    tg_config_t *c = load_ok("providers:\n  openai: {}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_providers, 2);
        CHECK_STR(c->providers[1].name, "mock");
        CHECK_INT(c->providers[1].type, TG_PROVIDER_MOCK);
    }
    tg_config_release(c);
    /* The file's own mock replaces it, as written. */
    c = load_ok("providers:\n  mock:\n    base_url: http://127.0.0.1:9999\n  openai: {}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_providers, 2);
        CHECK_STR(c->providers[0].name, "mock");
        CHECK_INT(c->providers[0].type, TG_PROVIDER_OPENAI);
        CHECK_STR(c->providers[0].base_url, "http://127.0.0.1:9999/v1");
        CHECK_STR(c->providers[1].name, "openai");
    }
    tg_config_release(c);
    c = load_ok("providers:\n  mock:\n    models: [demo-*]\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_providers, 1);
        CHECK_INT(c->providers[0].type, TG_PROVIDER_MOCK);
        CHECK_INT(c->providers[0].n_models, 1);
        CHECK(c->providers[0].base_url == NULL);
    }
    tg_config_release(c);
}

/* ---- routing ---- */

TEST(config_rules_all_forms)
{
    tg_config_t *c = load_ok("providers:\n"
                             "  openai: {}\n"
                             "  anthropic: {}\n"
                             "routing:\n"
                             "  rules:\n"
                             "    - condition: coding_task\n" /* 6 */
                             "      provider: anthropic\n"
                             "    - condition: {model: \"gpt-4*\"}\n" /* 8 */
                             "      provider: openai\n"
                             "    - condition:\n" /* 10 */
                             "        header: X-Team\n"
                             "        equals: research\n"
                             "      provider: anthropic\n"
                             "    - condition: {property: Environment, equals: prod}\n"
                             "      provider: openai\n"
                             "    - default:\n" /* 16 */
                             "      provider: mock\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_INT(c->n_rules, 5);
    if (c->n_rules == 5) {
        CHECK_INT(c->rules[0].kind, TG_COND_TASK);
        CHECK(c->rules[0].key == NULL);
        CHECK_STR(c->rules[0].value, "coding_task");
        CHECK_STR(c->rules[0].provider, "anthropic");
        CHECK_INT(c->rules[0].line, 6);
        CHECK_INT(c->rules[1].kind, TG_COND_MODEL);
        CHECK(c->rules[1].key == NULL);
        CHECK_STR(c->rules[1].value, "gpt-4*");
        CHECK_INT(c->rules[1].line, 8);
        CHECK_INT(c->rules[2].kind, TG_COND_HEADER);
        CHECK_STR(c->rules[2].key, "X-Team");
        CHECK_STR(c->rules[2].value, "research");
        CHECK_INT(c->rules[3].kind, TG_COND_PROPERTY);
        CHECK_STR(c->rules[3].key, "Environment");
        CHECK_STR(c->rules[3].value, "prod");
        CHECK_STR(c->rules[3].provider, "openai");
        CHECK_INT(c->rules[4].kind, TG_COND_DEFAULT);
        CHECK_STR(c->rules[4].provider, "mock");
        CHECK_INT(c->rules[4].line, 16);
    }
    tg_config_release(c);

    c = load_ok("providers:\n  openai: {}\nrouting:\n  rules:\n    - default: openai\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_rules, 1);
        if (c->n_rules == 1) {
            CHECK_INT(c->rules[0].kind, TG_COND_DEFAULT);
            CHECK_STR(c->rules[0].provider, "openai");
        }
    }
    tg_config_release(c);
}

TEST(config_rule_errors)
{
    CHECK_FAILS("routing:\n  rules:\n    - condition: x\n", "routing.rules[0].provider", 3,
                "required");
    CHECK_FAILS("routing:\n  rules:\n    - provider: mock\n", "routing.rules[0]", 3, "condition");
    CHECK_FAILS("routing:\n  rules:\n    - condition: {header: X-A}\n      provider: mock\n",
                "routing.rules[0].condition.equals", 3, "required");
    CHECK_FAILS("routing:\n  rules:\n    - condition: {model: a, header: b, equals: c}\n"
                "      provider: mock\n",
                "routing.rules[0].condition.header", 3, "only one");
    CHECK_FAILS("routing:\n  rules:\n    - condition: {modle: a}\n      provider: mock\n",
                "routing.rules[0].condition.modle", 3, "unknown key");
    CHECK_FAILS("routing:\n  rules:\n    - condition: [a]\n      provider: mock\n",
                "routing.rules[0].condition", 3, "task name");
    /* A header or property that is not a string is reported, not dereferenced. */
    CHECK_FAILS("routing:\n  rules:\n    - condition: {header: [a], equals: b}\n"
                "      provider: mock\n",
                "routing.rules[0].condition.header", 3, "expected a string");
    CHECK_FAILS("routing:\n  rules:\n    - default: mock\n    - condition: x\n"
                "      provider: mock\n",
                "routing.rules[1]", 4, "never match");
    CHECK_FAILS("routing:\n  rules:\n    - default: mock\n    - default: mock\n",
                "routing.rules[1].default", 4, "only one default");
    CHECK_FAILS("routing:\n  rules:\n    - default: mock\n      condition: x\n", "routing.rules[0]",
                3, "not both");
    CHECK_FAILS("routing:\n  rules:\n    - coding_task\n", "routing.rules[0]", 3,
                "expected a mapping");
    CHECK_FAILS("routing:\n  rules:\n    - condition: x\n      provider: mock\n      when: y\n",
                "routing.rules[0].when", 5, "unknown key");
}

TEST(config_cross_checks)
{
    static const char yaml[] = "providers:\n"
                               "  openai: {}\n"
                               "routing:\n"
                               "  default_provider: nope\n" /* 4 */
                               "  fallback_chain:\n"
                               "    - OpenAI\n"
                               "    - mock\n"
                               "    - ghost\n" /* 8 */
                               "  rules:\n"
                               "    - condition: x\n" /* 10 */
                               "      provider: phantom\n"
                               "rate_limiting:\n"
                               "  providers:\n"
                               "    spectre: {requests_per_minute: 1}\n" /* 14 */
                               "    openai: {requests_per_minute: 1}\n"
                               "security:\n"
                               "  api_keys:\n"
                               "    - {name: a, key: k1}\n"
                               "    - {name: a, key: k2}\n"  /* 19 */
                               "    - {name: b, key: k1}\n"; /* 20 */
    tg_config_errors_t errs = {0};
    tg_config_t *c = load(yaml, &errs);
    CHECK(c == NULL);
    CHECK_INT(errs.n, 6);
    const tg_config_error_t *e = find_error(&errs, "routing.default_provider", "nope");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 4);
    e = find_error(&errs, "routing.fallback_chain[2]", "\"ghost\" is not a configured provider");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 8);
    e = find_error(&errs, "routing.rules[0].provider", "phantom");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 10);
    e = find_error(&errs, "rate_limiting.providers.spectre", "not a configured provider");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 14);
    e = find_error(&errs, "security.api_keys[1].name", "duplicate");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 19);
    e = find_error(&errs, "security.api_keys[2].key", "same key");
    CHECK(e != NULL);
    if (e)
        CHECK_INT(e->line, 20);
    tg_config_errors_free(&errs);

    /* Provider references may come before the providers section. */
    tg_config_t *ok = load_ok("routing:\n  default_provider: groq\nproviders:\n  groq: {}\n");
    CHECK(ok != NULL);
    tg_config_release(ok);

    CHECK_FAILS("caching:\n  backend: redis\n", "caching.backend", 2, "redis.url");
    CHECK_FAILS("server:\n  ssl:\n    enabled: true\n    key_file: k.pem\n", "server.ssl.cert_file",
                2, "required when ssl is enabled");
    CHECK_FAILS("server:\n  port: 8586\nobservability:\n  dashboard:\n    enabled: true\n",
                "observability.dashboard.port", 4, "server.port");
}

TEST(config_api_keys)
{
    unsetenv("TG_TEST_UNSET");
    tg_config_t *c = load_ok("security:\n"
                             "  require_auth: true\n"
                             "  api_keys:\n"
                             "    - name: skipped\n"
                             "      key: ${TG_TEST_UNSET}\n"
                             "    - name: reader\n"
                             "      key: tg-r\n"
                             "      permissions: [read]\n"
                             "    - name: writer\n"
                             "      key: tg-w\n"
                             "      permissions:\n"
                             "        - write\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_api_keys, 2);
        if (c->n_api_keys == 2) {
            CHECK_STR(c->api_keys[0].name, "reader");
            CHECK(c->api_keys[0].perm_read && !c->api_keys[0].perm_write);
            CHECK_STR(c->api_keys[1].name, "writer");
            CHECK(!c->api_keys[1].perm_read && c->api_keys[1].perm_write);
        }
    }
    tg_config_release(c);
    CHECK_FAILS("security:\n  api_keys:\n    - key: abc\n", "security.api_keys[0].name", 3,
                "required");
    /* A skipped entry's name still counts for uniqueness. */
    CHECK_FAILS("security:\n  api_keys:\n    - {name: a, key: \"\"}\n    - {name: a, key: x}\n",
                "security.api_keys[1].name", 4, "duplicate");
}

/* ---- defaults and lifetime ---- */

static const char *const provider_env[] = {
    "OPENAI_API_KEY",     "ANTHROPIC_API_KEY",  "GEMINI_API_KEY",  "GOOGLE_GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",   "GROQ_API_KEY",       "MISTRAL_API_KEY", "XAI_API_KEY",
    "OPENROUTER_API_KEY", "MODELSCOPE_API_KEY",
};

static void clear_provider_env(void)
{
    for (size_t i = 0; i < sizeof provider_env / sizeof provider_env[0]; i++)
        unsetenv(provider_env[i]);
}

TEST(config_defaults_from_env)
{
    clear_provider_env();
    tg_config_t *c = tg_config_defaults();
    CHECK(c != NULL);
    CHECK_INT(c->n_providers, 1);
    CHECK_STR(c->providers[0].name, "mock");
    CHECK_INT(c->providers[0].type, TG_PROVIDER_MOCK);
    CHECK(c->source == NULL);
    CHECK_INT(c->refs, 1);
    CHECK_INT(c->port, 8585);
    /* no file: nobody chose to open the gateway to the network */
    CHECK_STR(c->host, "127.0.0.1");
    CHECK_STR(c->dashboard_host, "127.0.0.1");
    CHECK_INT(c->n_admin_allowed_ips, 2);
    CHECK_STR(c->storage_url, "sqlite:tollgate.db");
    tg_config_release(c);

    setenv("OPENAI_API_KEY", "sk-o", 1);
    setenv("ANTHROPIC_API_KEY", "sk-a", 1);
    setenv("GEMINI_API_KEY", "", 1); /* empty: falls back to the second name */
    setenv("GOOGLE_GEMINI_API_KEY", "g-key", 1);
    setenv("DEEPSEEK_API_KEY", "", 1); /* empty: not configured */
    setenv("GROQ_API_KEY", "gq", 1);
    setenv("MISTRAL_API_KEY", "mi", 1);
    setenv("XAI_API_KEY", "xa", 1);
    setenv("OPENROUTER_API_KEY", "or", 1);
    setenv("MODELSCOPE_API_KEY", "ms", 1);
    c = tg_config_defaults();
    static const struct {
        const char *name, *url, *key;
        tg_provider_type_t type;
    } want[] = {
        {"openai", "https://api.openai.com/v1", "sk-o", TG_PROVIDER_OPENAI},
        {"anthropic", "https://api.anthropic.com/v1", "sk-a", TG_PROVIDER_ANTHROPIC},
        {"gemini", "https://generativelanguage.googleapis.com/v1beta", "g-key", TG_PROVIDER_GEMINI},
        {"groq", "https://api.groq.com/openai/v1", "gq", TG_PROVIDER_OPENAI},
        {"mistral", "https://api.mistral.ai/v1", "mi", TG_PROVIDER_OPENAI},
        {"xai", "https://api.x.ai/v1", "xa", TG_PROVIDER_OPENAI},
        {"openrouter", "https://openrouter.ai/api/v1", "or", TG_PROVIDER_OPENAI},
        {"modelscope", "https://api-inference.modelscope.cn/v1", "ms", TG_PROVIDER_OPENAI},
        {"mock", NULL, NULL, TG_PROVIDER_MOCK},
    };
    size_t n = sizeof want / sizeof want[0];
    CHECK_INT(c->n_providers, n);
    for (size_t i = 0; i < n && i < c->n_providers; i++) {
        CHECK_STR(c->providers[i].name, want[i].name);
        CHECK_INT(c->providers[i].type, want[i].type);
        if (want[i].url) {
            CHECK_STR(c->providers[i].base_url, want[i].url);
            CHECK_STR(c->providers[i].api_key, want[i].key);
        } else {
            CHECK(c->providers[i].base_url == NULL);
            CHECK(c->providers[i].api_key == NULL);
        }
        CHECK_INT(c->providers[i].timeout_ms, 60000);
        CHECK(near(c->providers[i].weight, 1));
    }
    tg_config_release(c);

    /* GEMINI_API_KEY wins over GOOGLE_GEMINI_API_KEY. */
    clear_provider_env();
    setenv("GEMINI_API_KEY", "first", 1);
    setenv("GOOGLE_GEMINI_API_KEY", "second", 1);
    c = tg_config_defaults();
    CHECK_INT(c->n_providers, 2);
    CHECK_STR(c->providers[0].api_key, "first");
    tg_config_release(c);
    clear_provider_env();
}

TEST(config_refcount)
{
    tg_config_t *c = tg_config_defaults();
    CHECK_INT(c->refs, 1);
    CHECK(tg_config_acquire(c) == c);
    CHECK_INT(c->refs, 2);
    tg_config_acquire(c);
    CHECK_INT(c->refs, 3);
    tg_config_release(c);
    tg_config_release(c);
    CHECK_INT(c->refs, 1);
    CHECK_STR(c->host, "127.0.0.1"); /* still alive */
    tg_config_release(c);            /* freed: ASan reports a leak or use otherwise */
    tg_config_release(NULL);
    CHECK(tg_config_acquire(NULL) == NULL);

    tg_config_t *f = load_ok(full_yaml);
    CHECK(f != NULL);
    if (f) {
        CHECK_INT(f->refs, 1);
        tg_config_acquire(f);
        tg_config_release(f);
        CHECK_INT(f->refs, 1);
        tg_config_release(f);
    }
}

TEST(config_admin_allowed_ips)
{
    tg_config_t *c = load_ok("security:\n  admin_allowed_ips: [10.0.0.0/8, \"fd00::/64\"]\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_admin_allowed_ips, 2);
        CHECK_STR(c->admin_allowed_ips[0], "10.0.0.0/8");
        CHECK_STR(c->admin_allowed_ips[1], "fd00::/64");
        CHECK_INT(c->n_allowed_ips, 0); /* a list of its own */
        tg_config_release(c);
    }
    c = load_ok("security:\n  admin_allowed_ips: []\n"); /* empty: the default, not everyone */
    CHECK(c && c->n_admin_allowed_ips == 2);
    tg_config_release(c);

    tg_config_errors_t errs = {0};
    c = load("security:\n  admin_allowed_ips: [10.0.0.0/8, nowhere]\n", &errs);
    CHECK(c == NULL);
    CHECK(find_error(&errs, "security.admin_allowed_ips[1]", "IPv4 or IPv6") != NULL);
    tg_config_errors_free(&errs);
}

/* ---- docs/configuration.md and the key tables agree ---- */

#define MAX_NAMES 256

typedef struct {
    char v[MAX_NAMES][96];
    size_t n;
} names_t;

static void add_name(names_t *ns, const char *prefix, const char *name, size_t len)
{
    if (ns->n < MAX_NAMES)
        snprintf(ns->v[ns->n++], sizeof ns->v[0], "%s%.*s", prefix, (int)len, name);
}

/* Every key a table declares, dotted as the doc writes it: a nested section
 * row by row ("ssl.enabled"), unless it is documented as one ("per_ip"). */
static void table_names(const tg_conf_key_t *t, const char *prefix, names_t *ns)
{
    for (; t->name; t++) {
        if (t->type == TG_CONF_SECTION && !(t->flags & TG_CONF_DOC_WHOLE)) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s%s.", prefix, t->name);
            table_names(t->sub, sub, ns);
        } else {
            add_name(ns, prefix, t->name, strlen(t->name));
        }
    }
}

/* The first column of every "| key |" table under a "## `section`"
 * heading; a placeholder tail ("providers.<name>") is dropped. */
static void doc_names(const char *md, names_t *ns)
{
    char section[64] = "";
    bool in_table = false;
    for (const char *line = md; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!strncmp(line, "## ", 3)) {
            section[0] = '\0';
            if (line[3] == '`') {
                const char *close = memchr(line + 4, '`', len - 4);
                if (close && (size_t)(close - line - 4) < sizeof section - 1)
                    snprintf(section, sizeof section, "%.*s.", (int)(close - line - 4), line + 4);
            }
        }
        if (line[0] != '|')
            in_table = false;
        else if (!strncmp(line, "| key |", 7))
            in_table = true;
        else if (in_table && section[0] && !strncmp(line, "| `", 3)) {
            const char *name = line + 3;
            size_t n = strcspn(name, "`\n");
            const char *ph = strstr(name, ".<");
            if (ph && ph < name + n)
                n = (size_t)(ph - name);
            add_name(ns, section, name, n);
        }
        line += len + (end ? 1 : 0);
    }
}

static bool has_name(const names_t *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (!strcmp(ns->v[i], name))
            return true;
    return false;
}

/* Differences between the doc `md` and the tables, each printed. */
static int doc_table_differences(const char *md, bool quiet)
{
    static names_t in_doc, in_tables;
    memset(&in_doc, 0, sizeof in_doc);
    memset(&in_tables, 0, sizeof in_tables);
    doc_names(md, &in_doc);
    for (const tg_conf_key_t *s = tg_config_sections; s->name; s++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s.", s->name);
        /* providers: the section's table documents each entry's keys. */
        table_names(s->sub, prefix, &in_tables);
    }
    int diffs = 0;
    for (size_t i = 0; i < in_tables.n; i++) {
        if (!has_name(&in_doc, in_tables.v[i])) {
            if (!quiet)
                printf("    %s: in the tables, not in docs/configuration.md\n", in_tables.v[i]);
            diffs++;
        }
    }
    for (size_t i = 0; i < in_doc.n; i++) {
        if (!has_name(&in_tables, in_doc.v[i])) {
            if (!quiet)
                printf("    %s: in docs/configuration.md, not in the tables\n", in_doc.v[i]);
            diffs++;
        }
    }
    return diffs;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[256 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

TEST(config_doc_and_tables_agree)
{
    char *md = read_text("docs/configuration.md");
    CHECK(md != NULL);
    if (!md)
        return;
    CHECK_INT(doc_table_differences(md, false), 0);

    /* The check sees a row missing from the doc, and a row the tables lack. */
    char *row = strstr(md, "| `body_min_rate` |");
    CHECK(row != NULL);
    if (row) {
        char *copy = strdup(md);
        char *r = copy + (row - md);
        memmove(r, strchr(r, '\n') + 1, strlen(strchr(r, '\n') + 1) + 1);
        CHECK_INT(doc_table_differences(copy, true), 1);
        free(copy);
        copy = strdup(md);
        r = copy + (row - md);
        memcpy(r, "| `body_max_rate` |", 19);
        CHECK_INT(doc_table_differences(copy, true), 2);
        free(copy);
    }
    free(md);
}

/* Rows the loader relies on: a section has keys, a custom row a reader, an
 * enum its names; no name twice in one table (the second could never be
 * reached). Defaults are checked by every load: a bad one aborts. */
static void check_table(const tg_conf_key_t *t, const char *where)
{
    for (const tg_conf_key_t *k = t; k->name; k++) {
        for (const tg_conf_key_t *o = t; o < k; o++)
            if (!strcmp(o->name, k->name))
                tg_test_fail(__FILE__, __LINE__, "%s.%s declared twice", where, k->name);
        bool ok = true;
        if (k->type == TG_CONF_SECTION)
            ok = k->sub != NULL;
        else if (k->type == TG_CONF_CUSTOM)
            ok = k->read != NULL;
        else if (k->type == TG_CONF_ENUM || k->type == TG_CONF_ENUM_NAME || k->type == TG_CONF_URL)
            ok = k->names != NULL;
        if (!ok)
            tg_test_fail(__FILE__, __LINE__, "%s.%s: incomplete row", where, k->name);
        if (k->sub) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.%s", where, k->name);
            check_table(k->sub, sub);
        }
    }
}

TEST(config_tables_well_formed)
{
    check_table(tg_config_sections, "(top)");
}

/* ---- webhooks and observability alerts ---- */

TEST(config_webhooks_and_observability_alerts)
{
    tg_config_t *c = load_ok("cost_tracking:\n"
                             "  webhook_url: https://hooks.example.com/ops\n"
                             "  webhook_secret: s1\n"
                             "webhooks:\n"
                             "  - url: http://127.0.0.1:9000/req\n"
                             "    events: [request.completed, alert.fired]\n"
                             "    secret: s2\n"
                             "  - url: https://other.example.com/x\n"
                             "observability:\n"
                             "  alerts:\n"
                             "    - { metric: error_rate, above: 5%, window: 5m }\n"
                             "    - { metric: request_rate, above: 6000/m, window: 1m }\n"
                             "    - { metric: cache_hit_rate, below: 0.2, window: 1h }\n"
                             "    - { metric: latency_avg, above: 500ms, name: slow }\n"
                             "    - { metric: cost, above: $5.50, window: 1h }\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(c->webhook_secret, "s1");
    CHECK_INT(c->n_webhooks, 2);
    CHECK_STR(c->webhooks[0].url, "http://127.0.0.1:9000/req");
    CHECK_STR(c->webhooks[0].secret, "s2");
    CHECK_INT(c->webhooks[0].events,
              (1u << TG_EVENT_REQUEST_COMPLETED) | (1u << TG_EVENT_ALERT_FIRED));
    CHECK_INT(c->webhooks[1].events, TG_EVENT_MASK_DEFAULT); /* all but request.completed */
    CHECK(c->webhooks[1].secret == NULL);
    CHECK_INT(c->n_obs_alerts, 5);
    const tg_obs_alert_cfg_t *a = c->obs_alerts;
    CHECK_INT(a[0].metric, TG_ALERT_ERROR_RATE);
    CHECK(near(a[0].threshold, 0.05) && !a[0].below);
    CHECK_INT(a[0].window_ms, 300000);
    CHECK_STR(a[0].name, "error_rate above 5% over 5m");
    CHECK(near(a[1].threshold, 100)); /* per second */
    CHECK(near(a[2].threshold, 0.2) && a[2].below);
    CHECK_STR(a[2].name, "cache_hit_rate below 0.2 over 1h");
    CHECK(near(a[3].threshold, 0.5));
    CHECK_INT(a[3].window_ms, 300000); /* default window */
    CHECK_STR(a[3].name, "slow");
    CHECK(near(a[4].threshold, 5.5));
    tg_config_release(c);
}

TEST(config_webhooks_and_alerts_refused)
{
    CHECK_FAILS("webhooks:\n  - url: http://h/x\n    events: [alert.fired, request.done]\n",
                "webhooks[0].events[1]", 3, "unknown event \"request.done\"");
    CHECK_FAILS("webhooks:\n  - url: http://h/x\n    events: []\n", "webhooks[0].events", 3,
                "at least one event");
    CHECK_FAILS("webhooks:\n  - url: ftp://h/x\n", "webhooks[0].url", 2, "http");
    CHECK_FAILS("webhooks:\n  - url: http:///x\n", "webhooks[0].url", 2, "host");
    CHECK_FAILS("webhooks:\n  - secret: s\n", "webhooks[0].url", 2, "required");
    CHECK_FAILS("webhooks:\n  - url: http://h/x\n  - url: http://h/x\n", "webhooks[1].url", 3,
                "same URL");
    CHECK_FAILS("webhooks:\n  - url: http://h/x\n    colour: red\n", "webhooks[0].colour", 3,
                "unknown key");
    CHECK_FAILS("webhooks: http://h/x\n", "webhooks", 1, "list");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: p99, above: 1 }\n",
                "observability.alerts[0].metric", 3, "error_rate");
    CHECK_FAILS("observability:\n  alerts:\n    - { above: 1 }\n", "observability.alerts[0].metric",
                3, "required");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: cost }\n",
                "observability.alerts[0].above", 3, "required");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: cost, above: 1, below: 2 }\n",
                "observability.alerts[0].below", 3, "not both");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: error_rate, above: 5s }\n",
                "observability.alerts[0].above", 3, "share");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: error_rate, above: 150% }\n",
                "observability.alerts[0].above", 3, "share");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: latency_avg, above: fast }\n",
                "observability.alerts[0].above", 3, "duration");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: request_rate, above: 5/week }\n",
                "observability.alerts[0].above", 3, "per second");
    CHECK_FAILS("observability:\n  alerts:\n    - { metric: cost, above: 5, window: 10ms }\n",
                "observability.alerts[0].window", 3, "");
    CHECK_FAILS("observability:\n  alerts:\n"
                "    - { metric: cost, above: 5, name: a }\n"
                "    - { metric: cost, above: 6, name: a }\n",
                "observability.alerts[1].name", 4, "two alerts");
    /* the budget alerts of cost_tracking keep their own form */
    tg_config_t *c = load_ok("cost_tracking:\n  alerts:\n    - { threshold: 80%, action: "
                             "notification }\n");
    CHECK(c && c->n_alerts == 1 && c->n_obs_alerts == 0);
    tg_config_release(c);
}

/* ---- cost_tracking.budgets ---- */

TEST(config_budgets_every_scope)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = load("cost_tracking:\n"
                          "  budgets:\n"
                          "    daily: 10\n"
                          "    action: warn\n"
                          "    per_property:\n"
                          "      Agent-Name: { daily: 2, monthly: 20, action: block, "
                          "warning_threshold: 0.5 }\n"
                          "      Team: { monthly: 500 }\n"
                          "    per_user: { daily: 1, action: none }\n"
                          "    per_key: { monthly: 50 }\n"
                          "    timezone: Europe/Paris\n"
                          "    allow_unpriced: true\n",
                          &errs);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(near(c->budget_daily, 10) && c->budget_monthly < 0);
    CHECK_INT(c->budget_action, TG_BUDGET_WARN);
    CHECK(near(c->budget_warning_threshold, 0.8));
    CHECK_INT(c->n_budget_per_property, 2);
    CHECK_STR(c->budget_per_property[0].name, "Agent-Name");
    CHECK(near(c->budget_per_property[0].b.daily, 2) &&
          near(c->budget_per_property[0].b.monthly, 20));
    CHECK(near(c->budget_per_property[0].b.warning_threshold, 0.5));
    CHECK_INT(c->budget_per_property[1].b.action, TG_BUDGET_BLOCK);
    CHECK(c->budget_per_property[1].b.daily < 0);
    CHECK(near(c->budget_per_property[1].b.warning_threshold, 0.8));
    CHECK(near(c->budget_per_user.daily, 1) && c->budget_per_user.action == TG_BUDGET_NONE);
    CHECK(near(c->budget_per_key.monthly, 50) && c->budget_per_key.daily < 0);
    CHECK_STR(c->budget_timezone, "Europe/Paris");
    CHECK(c->budget_allow_unpriced);
    tg_config_release(c);
    /* without budgets: none anywhere, UTC */
    c = load("server:\n  port: 9000\n", &errs);
    CHECK(c && c->budget_per_user.daily < 0 && c->budget_per_key.monthly < 0 &&
          !c->n_budget_per_property && !strcmp(c->budget_timezone, "UTC"));
    tg_config_release(c);
    tg_config_errors_free(&errs);
}

TEST(config_budgets_errors_name_the_key)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = load("cost_tracking:\n"
                          "  budgets:\n"
                          "    per_user: { daily: -1, action: explode }\n"
                          "    per_property:\n"
                          "      'bad name': { daily: 1 }\n"
                          "    timezone: Mars/Olympus_Mons\n",
                          &errs);
    CHECK(c == NULL);
    CHECK(find_error(&errs, "cost_tracking.budgets.per_user.daily", "") != NULL);
    CHECK(find_error(&errs, "cost_tracking.budgets.per_user.action", "") != NULL);
    CHECK(find_error(&errs, "cost_tracking.budgets.timezone", "unknown time zone") != NULL);
    CHECK(errs.n >= 4);
    tg_config_errors_free(&errs);
}

TEST(config_otlp_keys)
{
    tg_config_t *c = load_ok("observability:\n"
                             "  otlp:\n"
                             "    endpoint: https://collector.example:4318\n"
                             "    service_name: edge-gw\n"
                             "    headers: { Authorization: Bearer abc }\n"
                             "    timeout: 2s\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(c->otlp_endpoint, "https://collector.example:4318");
        CHECK_STR(c->otlp_service_name, "edge-gw");
        CHECK_INT(c->n_otlp_headers, 1);
        CHECK_STR(c->otlp_headers[0].name, "Authorization");
        CHECK_STR(c->otlp_headers[0].value, "Bearer abc");
        CHECK_INT(c->otlp_timeout_ms, 2000);
    }
    tg_config_release(c);
    c = load_ok("observability: { otlp: { endpoint: http://c:4318 } }\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_STR(c->otlp_service_name, "tollgate");
        CHECK_INT(c->otlp_timeout_ms, 10000);
        CHECK_INT(c->n_otlp_headers, 0);
    }
    tg_config_release(c);
    CHECK_FAILS("observability:\n  otlp:\n    endpoint: ftp://c:21\n",
                "observability.otlp.endpoint", 3, "expected http://... or https://...");
    CHECK_FAILS("observability:\n  otlp:\n    endpoint: \"http://\"\n",
                "observability.otlp.endpoint", 3, "expected http://");
    CHECK_FAILS("observability:\n  otlp:\n    timeout: 0s\n", "observability.otlp.timeout", 3, "");
    CHECK_FAILS("observability:\n  otlp:\n    headers: { \"bad name\": x }\n",
                "observability.otlp.headers.bad name", 3, "not a valid HTTP header name");
    CHECK_FAILS("observability:\n  otlp:\n    headers: { Host: x }\n",
                "observability.otlp.headers.Host", 3, "set by the gateway");
}
