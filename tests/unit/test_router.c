/* Model → provider resolution (SPEC §4). */
#include "test.h"

#include "config/config.h"
#include "core/util.h"
#include "router/balance.h"
#include "router/fallbacks.h"
#include "router/router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static tg_config_t *cfg_from(const char *yaml)
{
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
    for (size_t i = 0; i < errs.n; i++)
        printf("    config: %s: %s (line %d)\n", errs.items[i].path, errs.items[i].message,
               errs.items[i].line);
    tg_config_errors_free(&errs);
    return c;
}

typedef struct {
    const char *name, *value;
} hdr_t;

static const char *hdr_get(void *ctx, const char *name)
{
    for (hdr_t *h = ctx; h && h->name; h++)
        if (!strcasecmp(h->name, name))
            return h->value;
    return NULL;
}

/* The provider health the tests share (a gateway owns one); renewed by
 * the tests that change it. */
static tg_health_registry_t *hr;

static tg_health_registry_t *registry(void)
{
    if (!hr)
        hr = tg_health_registry_new();
    return hr;
}

static void reset_health(void)
{
    tg_health_registry_free(hr);
    hr = tg_health_registry_new();
}

/* Resolves and checks "provider model", or "ERR" for no route. */
static void expect(tg_config_t *c, const char *model, hdr_t *hdrs, const char *want_provider,
                   const char *want_model, int line)
{
    tg_route_t r;
    char err[512];
    int rc = tg_router_resolve(c, registry(), model, hdr_get, hdrs, &r, err, sizeof err);
    if (!want_provider) {
        if (rc == 0)
            tg_test_fail(__FILE__, line, "'%s' resolved to %s/%s, expected no route", model,
                         r.provider->name, r.model);
    } else if (rc != 0) {
        tg_test_fail(__FILE__, line, "'%s' did not resolve: %s", model ? model : "(null)", err);
    } else if (strcmp(r.provider->name, want_provider) || strcmp(r.model, want_model)) {
        tg_test_fail(__FILE__, line, "'%s' -> %s / %s, expected %s / %s", model ? model : "(null)",
                     r.provider->name, r.model, want_provider, want_model);
    }
    tg_route_clear(&r);
}
#define EXPECT(c, m, h, p, mm) expect(c, m, h, p, mm, __LINE__)

static const char *base_yaml =
    "providers:\n"
    "  openai: {api_key: k1}\n"
    "  anthropic: {api_key: k2, default_model: claude-3-5-haiku-latest}\n"
    "  deepseek: {default_model: deepseek-chat}\n"
    "  local: {base_url: 'http://127.0.0.1:9/v1', models: ['llama-*', 'qwen2.5']}\n"
    "routing:\n"
    "  model_aliases: {fast: 'deepseek/deepseek-chat', smart: claude-3-7-sonnet-latest}\n";

TEST(router_prefix_picks_configured_provider)
{
    tg_config_t *c = cfg_from(base_yaml);
    CHECK(c != NULL);
    if (!c)
        return;
    EXPECT(c, "openai/gpt-4o", NULL, "openai", "gpt-4o");
    EXPECT(c, "local/meta/llama-3-70b", NULL, "local", "meta/llama-3-70b");
    EXPECT(c, "mock/anything", NULL, "mock", "anything");
    EXPECT(c, "OpenAI/gpt-4o", NULL, "openai", "gpt-4o"); /* provider names are case-insensitive */
    tg_config_release(c);
}

TEST(router_slash_in_model_is_not_a_prefix_unless_configured)
{
    tg_config_t *c = cfg_from(base_yaml);
    if (!c)
        return;
    /* "meta-llama/..." is not a provider: no family, no default → no route */
    EXPECT(c, "meta-llama/Llama-3-8b", NULL, NULL, NULL);
    tg_config_release(c);
}

TEST(router_aliases_then_models_lists_then_families)
{
    tg_config_t *c = cfg_from(base_yaml);
    if (!c)
        return;
    EXPECT(c, "fast", NULL, "deepseek", "deepseek-chat");
    EXPECT(c, "smart", NULL, "anthropic", "claude-3-7-sonnet-latest");
    EXPECT(c, "llama-3.1-8b", NULL, "local", "llama-3.1-8b");
    EXPECT(c, "qwen2.5", NULL, "local", "qwen2.5");
    EXPECT(c, "gpt-4o-mini", NULL, "openai", "gpt-4o-mini");
    EXPECT(c, "o3-mini", NULL, "openai", "o3-mini");
    EXPECT(c, "text-embedding-3-small", NULL, "openai", "text-embedding-3-small");
    EXPECT(c, "claude-3-5-sonnet-20241022", NULL, "anthropic", "claude-3-5-sonnet-20241022");
    EXPECT(c, "deepseek-reasoner", NULL, "deepseek", "deepseek-reasoner");
    /* grok-* → xai, which is not configured, and there is no default */
    EXPECT(c, "grok-2", NULL, NULL, NULL);
    tg_config_release(c);
}

TEST(router_default_provider_and_missing_model)
{
    tg_config_t *c = cfg_from("providers:\n  deepseek: {default_model: deepseek-chat}\n"
                              "routing: {default_provider: deepseek}\n");
    if (!c)
        return;
    EXPECT(c, "some-unknown-model", NULL, "deepseek", "some-unknown-model");
    EXPECT(c, NULL, NULL, "deepseek", "deepseek-chat");
    EXPECT(c, "", NULL, "deepseek", "deepseek-chat");
    tg_config_release(c);
}

TEST(router_family_falls_back_to_provider_type)
{
    tg_config_t *c = cfg_from("providers:\n  claude-proxy: {type: anthropic, base_url: "
                              "'https://example.invalid'}\n");
    if (!c)
        return;
    EXPECT(c, "claude-3-5-haiku-latest", NULL, "claude-proxy", "claude-3-5-haiku-latest");
    tg_config_release(c);
}

TEST(router_rules_first_match_and_default_rule)
{
    tg_config_t *c = cfg_from("providers:\n"
                              "  deepseek: {default_model: deepseek-chat}\n"
                              "  openai: {default_model: gpt-4o}\n"
                              "  anthropic: {default_model: claude-3-5-sonnet-20241022}\n"
                              "routing:\n"
                              "  default_provider: openai\n"
                              "  rules:\n"
                              "    - condition: coding_task\n"
                              "      provider: anthropic\n"
                              "    - condition: {model: 'gpt-4o-mini*'}\n"
                              "      provider: deepseek\n"
                              "    - condition: {header: X-Team, equals: research}\n"
                              "      provider: openai\n"
                              "    - condition: {property: Tier, equals: free}\n"
                              "      provider: deepseek\n"
                              "    - default:\n"
                              "      provider: deepseek\n");
    if (!c)
        return;
    hdr_t coding[] = {{"Helicone-Property-Task", "coding_task"}, {NULL, NULL}};
    hdr_t team[] = {{"x-team", "research"}, {NULL, NULL}};
    hdr_t free_tier[] = {{"Helicone-Property-Tier", "free"}, {NULL, NULL}};
    /* The task rule picks anthropic; gpt-4o is not its model, so its default model is used. */
    EXPECT(c, "gpt-4o", coding, "anthropic", "claude-3-5-sonnet-20241022");
    EXPECT(c, "claude-3-opus-20240229", coding, "anthropic", "claude-3-opus-20240229");
    EXPECT(c, "gpt-4o-mini-2024-07-18", NULL, "deepseek", "deepseek-chat");
    EXPECT(c, "my-model", team, "openai", "my-model");
    EXPECT(c, "my-model", free_tier, "deepseek", "my-model");
    /* The default rule stands in for default_provider, after the families. */
    EXPECT(c, "claude-3-5-haiku-latest", NULL, "anthropic", "claude-3-5-haiku-latest");
    EXPECT(c, "unknown-model", NULL, "deepseek", "unknown-model");
    /* A prefix beats every rule. */
    EXPECT(c, "openai/gpt-4o", coding, "openai", "gpt-4o");
    tg_config_release(c);
}

TEST(router_error_names_configured_providers)
{
    tg_config_t *c = cfg_from(base_yaml);
    if (!c)
        return;
    tg_route_t r;
    char err[512];
    tg_health_registry_t *health = tg_health_registry_new();
    CHECK(tg_router_resolve(c, health, "nope/x", NULL, NULL, &r, err, sizeof err) == -1);
    CHECK(strstr(err, "openai") && strstr(err, "anthropic") && strstr(err, "local") &&
          strstr(err, "mock"));
    CHECK(strstr(err, "nope/x") != NULL);
    /* no model and no default: a different error (400, not 404, at the route) */
    CHECK(tg_router_resolve(c, health, NULL, NULL, NULL, &r, err, sizeof err) == -2);
    CHECK(strstr(err, "no model") != NULL);
    tg_health_registry_free(health);
    tg_config_release(c);
}

TEST(router_family_table)
{
    CHECK_STR(tg_router_family("gpt-4.1"), "openai");
    CHECK_STR(tg_router_family("chatgpt-4o-latest"), "openai");
    CHECK_STR(tg_router_family("o1-preview"), "openai");
    CHECK_STR(tg_router_family("codestral-latest"), "mistral");
    CHECK_STR(tg_router_family("gemini-2.0-flash"), "gemini");
    CHECK_STR(tg_router_family("grok-3"), "xai");
    CHECK(tg_router_family("llama-3") == NULL);
}

TEST(router_cost_strategy_prices_each_provider)
{
    tg_config_t *c = cfg_from("providers:\n"
                              "  pricey: {base_url: 'http://127.0.0.1:9/v1', weight: 50,\n"
                              "           models: [gpt-4o, house-model, own-model]}\n"
                              "  cheap: {base_url: 'http://127.0.0.1:9/v1',\n"
                              "          models: [gpt-4o, house-model, own-model]}\n"
                              "routing:\n"
                              "  load_balancing: {strategy: cost}\n"
                              "  model_aliases: {house: house-model}\n"
                              "cost_tracking:\n"
                              "  pricing:\n"
                              "    cheap/gpt-4o: {input: 0.001, output: 0.004}\n"
                              "    pricey/house-model: {input: 0.01, output: 0.03}\n"
                              "    own-model: {input: 0.002, output: 0.002}\n"
                              "    PRICEY/own-model: {input: 0.001, output: 0.001}\n");
    CHECK(c != NULL);
    if (!c)
        return;
    reset_health();
    for (int i = 0; i < 200; i++) {
        /* its own price beats the built-in gpt-4o price pricey pays */
        EXPECT(c, "gpt-4o", NULL, "cheap", "gpt-4o");
        /* priced at pricey only: unpriced cheap is not taken as free */
        EXPECT(c, "house", NULL, "pricey", "house-model");
        /* a provider key (any case) beats the plain one */
        EXPECT(c, "own-model", NULL, "pricey", "own-model");
    }
    /* the cheaper one rests after a 429: the other serves */
    int64_t now = tg_mono_ms();
    tg_health_report(tg_health_for(registry(), "cheap"), TG_OUTCOME_RATE_LIMITED, 0, 60000, 30000,
                     now);
    for (int i = 0; i < 50; i++)
        EXPECT(c, "gpt-4o", NULL, "pricey", "gpt-4o");
    reset_health();
    tg_config_release(c);
}

/* Resolves a model list: want "p1 m1|p2 m2" or an error code. */
static void expect_list(tg_config_t *c, const char *model, int want_rc, const char *want, int line)
{
    tg_route_t r[TG_ROUTER_MAX_LIST];
    size_t n = 99;
    char err[512] = "";
    int rc = tg_router_resolve_list(c, registry(), model, NULL, NULL, r, TG_ROUTER_MAX_LIST, &n,
                                    err, sizeof err);
    char got[512] = "";
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t l = strlen(got);
        snprintf(got + l, sizeof got - l, "%s%s %s", i ? "|" : "", r[i].provider->name, r[i].model);
        tg_route_clear(&r[i]);
    }
    if (rc != want_rc)
        tg_test_fail(__FILE__, line, "'%s': rc %d (%s), expected %d", model, rc, err, want_rc);
    else if (rc == 0 && strcmp(got, want))
        tg_test_fail(__FILE__, line, "'%s' -> %s, expected %s", model, got, want);
    else if (rc != 0 && (n != 0 || !strstr(err, want)))
        tg_test_fail(__FILE__, line, "'%s': n %zu, error '%s', expected it to say '%s'", model, n,
                     err, want);
}
#define EXPECT_LIST(c, m, rc, want) expect_list(c, m, rc, want, __LINE__)

/* Helicone's AI-gateway model strings: `model/provider`, and lists. */
TEST(router_model_suffix_and_lists)
{
    tg_config_t *c = cfg_from(base_yaml);
    if (!c)
        return;
    static const struct {
        const char *model;
        int rc;
        const char *want; /* "provider model|..." or a part of the error */
    } cases[] = {
        {"gpt-4o-mini/openai", 0, "openai gpt-4o-mini"},
        {"claude-sonnet-4-5/Anthropic", 0, "anthropic claude-sonnet-4-5"},
        {"meta/llama-3-70b/local", 0, "local meta/llama-3-70b"},
        {"openai/deepseek", 0, "openai deepseek"},              /* both ends: the prefix wins */
        {"gpt-4o-mini/nosuch", 0, "openai gpt-4o-mini/nosuch"}, /* no provider: part of the name */
        {"/openai", -1, "no provider serves"},
        {"gpt-4o-mini/openai,claude-sonnet-4-5/anthropic", 0,
         "openai gpt-4o-mini|anthropic claude-sonnet-4-5"},
        {"gpt-4o-mini/openai, deepseek/deepseek-chat ,fast", 0,
         "openai gpt-4o-mini|deepseek deepseek-chat|deepseek deepseek-chat"},
        /* malformed lists: 400 (-3) */
        {"gpt-4o-mini/openai,", -3, "entry 2 of the model list is empty"},
        {",gpt-4o-mini/openai", -3, "entry 1 of the model list is empty"},
        {"a/openai, ,b/openai", -3, "entry 2 of the model list is empty"},
        {",", -3, "empty"},
        {"a/openai,a/openai,a/openai,a/openai,a/openai,a/openai,a/openai,a/openai,a/openai,"
         "a/openai,a/openai",
         -3, "11 entries; at most 10"},
        /* entries nothing serves: 404 (-1) */
        {"gpt-4o-mini/openai,claude-x/nosuch", -1,
         "'claude-x/nosuch', names no configured provider"},
        {"gpt-4o-mini/openai,grok-2", -1, "no provider serves model 'grok-2'"},
        {"meta-llama/Llama-3-8b", -1, "no provider serves"}, /* one model: as before */
        {NULL, -2, "names no model"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        EXPECT_LIST(c, cases[i].model, cases[i].rc, cases[i].want);
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "a/openai,", 9);
    EXPECT_LIST(c, big, -3, "longer than");
    tg_config_release(c);
}

/* Helicone-Fallbacks: want "provider model [codes] [headers]|..." (the
 * form's marker "H:" first for Helicone's own form), or a part of the error. */
static void expect_fb(tg_config_t *c, const char *hv, int want_rc, const char *want, int line)
{
    tg_route_t cur = {.provider = tg_config_provider(c, "openai", 6), .model = (char *)"gpt-4o"};
    tg_fallback_t fb[TG_FALLBACKS_MAX];
    size_t n = 99;
    bool rep = true;
    char err[1024] = "";
    int rc = tg_fallbacks_parse(c, registry(), hv, &cur, NULL, NULL, fb, TG_FALLBACKS_MAX, &n, &rep,
                                err, sizeof err);
    tg_buf_t got = {0};
    if (rc == 0 && rep)
        tg_buf_puts(&got, "H:");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tg_buf_printf(&got, "%s%s %s", i ? "|" : "", fb[i].route.provider->name, fb[i].route.model);
        for (size_t k = 0; k < fb[i].opts.n_codes; k++)
            tg_buf_printf(&got, " %d-%d", fb[i].opts.codes[k].from, fb[i].opts.codes[k].to);
        const char *name;
        json_t *v;
        json_object_foreach(fb[i].opts.headers, name, v)
        {
            tg_buf_printf(&got, " %s=%s", name, json_string_value(v));
        }
        tg_fallback_clear(&fb[i]);
    }
    const char *g = got.data ? got.data : "";
    if (rc != want_rc)
        tg_test_fail(__FILE__, line, "%s: rc %d (%s), expected %d", hv, rc, err, want_rc);
    else if (rc == 0 && strcmp(g, want))
        tg_test_fail(__FILE__, line, "%s -> %s, expected %s", hv, g, want);
    else if (rc != 0 && (n != 0 || rep || !strstr(err, want)))
        tg_test_fail(__FILE__, line, "%s: error '%s', expected it to say '%s'", hv, err, want);
    tg_buf_free(&got);
}
#define EXPECT_FB(c, hv, rc, want) expect_fb(c, hv, rc, want, __LINE__)

TEST(fallbacks_header_forms_and_refusals)
{
    tg_config_t *c = cfg_from("providers:\n"
                              "  openai: {api_key: k1}\n"
                              "  azure2: {base_url: 'https://api.openai.com/other', api_key: k3}\n"
                              "  anthropic: {api_key: k2, default_model: claude-3-5-haiku-latest}\n"
                              "  local: {base_url: 'http://127.0.0.1:8000/v1'}\n"
                              "  v6: {base_url: 'http://[::1]:9000/v1'}\n");
    if (!c)
        return;
    static const struct {
        const char *hv;
        int rc;
        const char *want;
    } cases[] = {
        /* tollgate's form: after the current target */
        {"[\"anthropic/claude-x\", {\"provider\": \"local\", \"model\": \"m\"}]", 0,
         "anthropic claude-x|local m"},
        {"[{\"provider\": \"anthropic\"}]", 0, "anthropic claude-3-5-haiku-latest"},
        /* Helicone's: the whole chain, the request's model, origin picks the provider */
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": [{\"from\": 400, \"to\": "
         "599}]}, {\"target-url\": \"http://127.0.0.1:8000\", \"headers\": {\"X-Team\": \"a\"}}]",
         0, "H:openai gpt-4o 400-599|local gpt-4o X-Team=a"},
        {"[{\"target-url\": \"HTTPS://API.OPENAI.COM:443/other/x\"}]", 0, "H:azure2 gpt-4o"},
        {"[{\"target-url\": \"https://api.openai.com/v1\"}]", 0, "H:openai gpt-4o"},
        {"[{\"target-url\": \"http://[::1]:9000\"}]", 0, "H:v6 gpt-4o"},
        /* credential and hop-by-hop headers are left out, never a replacement key */
        {"[{\"target-url\": \"https://api.openai.com\", \"headers\": {\"Authorization\": \"Bearer "
         "x\", \"api-key\": \"y\", \"Host\": \"evil\", \"Helicone-Auth\": \"z\", "
         "\"OpenAI-Organization\": "
         "\"org\"}}]",
         0, "H:openai gpt-4o OpenAI-Organization=org"},
        /* refusals: 400 (-3) */
        {"not json", -3, "must be a JSON list"},
        {"{\"target-url\": \"https://api.openai.com\"}", -3, "must be a JSON list"},
        {"[]", -3, "must be a JSON list of 1 to 10"},
        {"[\"a/openai\",\"a/openai\",\"a/openai\",\"a/openai\",\"a/openai\",\"a/openai\","
         "\"a/openai\",\"a/openai\",\"a/openai\",\"a/openai\",\"a/openai\"]",
         -3, "1 to 10"},
        {"[42]", -3, "entry 1 must be a string or an object"},
        {"[\"\"]", -3, "entry 1 must be a non-empty model name"},
        {"[{\"model\": \"x\"}]", -3, "needs \"provider\""},
        {"[{\"provider\": 7}]", -3, "needs \"provider\""},
        {"[{\"target-url\": \"https://api.openai.com\"}, \"anthropic/x\"]", -3,
         "entry 2: the entries must all be"},
        {"[\"anthropic/x\", {\"target-url\": \"https://api.openai.com\"}]", -3,
         "entry 2: the entries must all be"},
        {"[{\"target-url\": 5}]", -3, "\"target-url\" must be a string"},
        {"[{\"target-url\": \"https://evil.example.com\"}]", -3,
         "matches no configured provider's base_url"},
        {"[{\"target-url\": \"http://api.openai.com\"}]", -3, "matches no configured"},
        {"[{\"target-url\": \"https://api.openai.com:444\"}]", -3, "matches no configured"},
        {"[{\"target-url\": \"https://user@api.openai.com\"}]", -3, "matches no configured"},
        {"[{\"target-url\": \"ftp://api.openai.com\"}]", -3, "matches no configured"},
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": []}]", -3, "\"onCodes\""},
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": [{\"from\": 500}]}]", -3,
         "\"onCodes\""},
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": [{\"from\": 500, \"to\": "
         "400}]}]",
         -3, "\"onCodes\""},
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": [{\"from\": \"400\", \"to\": "
         "599}]}]",
         -3, "\"onCodes\""},
        {"[{\"target-url\": \"https://api.openai.com\", \"onCodes\": {\"from\": 400, \"to\": "
         "599}}]",
         -3, "\"onCodes\""},
        {"[{\"target-url\": \"https://api.openai.com\", \"headers\": [\"a\"]}]", -3,
         "\"headers\" must be an object"},
        {"[{\"target-url\": \"https://api.openai.com\", \"headers\": {\"X-A\": 1}}]", -3,
         "header 'X-A'"},
        {"[{\"target-url\": \"https://api.openai.com\", \"headers\": {\"X A\": \"v\"}}]", -3,
         "header 'X A'"},
        {"[{\"target-url\": \"https://api.openai.com\", \"headers\": {\"X-A\": \"v\\r\\nX-B: "
         "w\"}}]",
         -3, "header 'X-A'"},
        /* targets nothing serves: 404 (-1) */
        {"[\"meta-llama/Llama-3-8b\"]", -1, "entry 1: no provider serves"},
        {"[{\"provider\": \"nosuch\", \"model\": \"m\"}]", -1, "no configured provider 'nosuch'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        EXPECT_FB(c, cases[i].hv, cases[i].rc, cases[i].want);
    tg_config_release(c);
}

TEST(fallbacks_on_codes_decide_what_goes_on)
{
    tg_target_opts_t o = {.codes = {{400, 404}, {500, 599}}, .n_codes = 2};
    CHECK(tg_target_opts_match(&o, 400));
    CHECK(tg_target_opts_match(&o, 503));
    CHECK(!tg_target_opts_match(&o, 429));
    CHECK(!tg_target_opts_match(&o, 200));
    tg_target_opts_t none = {0};
    CHECK(!tg_target_opts_match(&none, 500));
}
