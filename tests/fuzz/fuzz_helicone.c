/*
 * fuzz_helicone.c — the parsers of Helicone's conventions, on any bytes:
 * the Helicone-Fallbacks header (router/fallbacks.h), a model string that
 * may be a list (tg_router_resolve_list), and a manual log document
 * (proxy/manual_log.h). Properties: no crash or leak; an accepted header
 * gives 1..max targets, each with a configured provider and a model, none
 * with a credential header or bad onCodes; a refused one gives none and a
 * message; an accepted log has a status in 100..599 and a latency >= 0.
 */
#include "config/config.h"
#include "core/util.h"
#include "providers/provider.h"
#include "proxy/manual_log.h"
#include "router/fallbacks.h"
#include "router/router.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static tg_config_t *cfg;
static tg_health_registry_t *health;

static const char yaml[] = "providers:\n"
                           "  openai: {api_key: k1}\n"
                           "  anthropic: {api_key: k2, default_model: claude-x}\n"
                           "  local: {base_url: 'http://127.0.0.1:8000/v1', models: ['l*']}\n"
                           "  v6: {base_url: 'http://[::1]:9000/v1'}\n"
                           "routing:\n"
                           "  model_aliases: {fast: 'openai/gpt-4o-mini'}\n";

static void fallbacks(const char *hv)
{
    tg_route_t cur = {.provider = tg_config_provider(cfg, "openai", 6), .model = (char *)"gpt-4o"};
    tg_fallback_t fb[TG_FALLBACKS_MAX];
    size_t n = 99;
    bool rep;
    char err[1024] = "";
    int rc = tg_fallbacks_parse(cfg, health, hv, &cur, NULL, NULL, fb, TG_FALLBACKS_MAX, &n, &rep,
                                err, sizeof err);
    if (rc < 0 && (n != 0 || !*err))
        abort();
    if (rc == 0 && (n < 1 || n > TG_FALLBACKS_MAX))
        abort();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!fb[i].route.provider || !fb[i].route.model)
            abort();
        const char *name;
        json_t *v;
        json_object_foreach(fb[i].opts.headers, name, v)
        {
            if (tg_is_credential_header(name) || !json_is_string(v))
                abort();
        }
        for (size_t k = 0; k < fb[i].opts.n_codes; k++)
            if (fb[i].opts.codes[k].from < 100 || fb[i].opts.codes[k].to > 599 ||
                fb[i].opts.codes[k].from > fb[i].opts.codes[k].to)
                abort();
        tg_fallback_clear(&fb[i]);
    }
}

static void model_list(const char *model)
{
    tg_route_t r[TG_ROUTER_MAX_LIST];
    size_t n = 99;
    char err[1024] = "";
    int rc = tg_router_resolve_list(cfg, health, model, NULL, NULL, r, TG_ROUTER_MAX_LIST, &n, err,
                                    sizeof err);
    if (rc < 0 && n != 0)
        abort();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!r[i].provider || !r[i].model)
            abort();
        tg_route_clear(&r[i]);
    }
}

static void manual_log(const char *doc, size_t len)
{
    json_t *root = json_loadb(doc, len, 0, NULL);
    tg_manual_log_t l;
    char err[300] = "";
    static const char *const dialects[] = {"openai", "anthropic", "gemini"};
    int rc = tg_manual_log_read(root, dialects[len % 3], &l, err, sizeof err);
    if (rc < 0 && !*err)
        abort();
    if (rc == 0 && (l.status < 100 || l.status > 599 || l.latency_ms < 0 || !l.request))
        abort();
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        tg_config_errors_t errs = {0};
        cfg = tg_config_load_string(yaml, strlen(yaml), "fuzz", &errs);
        tg_config_errors_free(&errs);
        health = tg_health_registry_new();
        if (!cfg)
            abort();
    }
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = 0;
    fallbacks(in);
    model_list(in);
    manual_log(in, size);
    free(in);
    return 0;
}
