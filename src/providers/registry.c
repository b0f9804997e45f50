/*
 * registry.c — the provider records (provider.h): one const record per
 * provider type and per well-known OpenAI-compatible service, the look-ups
 * from a type, a name or a configured provider to its record, and the
 * default hooks (URL building). Adding a type or a service is adding a
 * record here; the unit test provider_records_contract checks each one.
 * Pure, const data; any thread.
 */
#include "providers/provider.h"

#include "core/urlpath.h"
#include "core/util.h"

#include <string.h>
#include <strings.h>

/* ---- the records ---- */

static const char *const openai_credentials[] = {"Authorization", NULL};
static const char *const anthropic_credentials[] = {"x-api-key", NULL};
static const char *const gemini_credentials[] = {"x-goog-api-key", NULL};
static const char *const azure_credentials[] = {"api-key", NULL};

/* Anthropic's API refuses a request without a version. */
static const tg_provider_header_t anthropic_headers[] = {{"anthropic-version", "2023-06-01"},
                                                         {NULL, NULL}};
/* anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access */
static const char *const anthropic_own_headers[] = {"anthropic-", NULL};

static const char *const openai_families[] = {
    "gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", NULL};
static const char *const anthropic_families[] = {"claude-", NULL};
static const char *const gemini_families[] = {"gemini-", NULL};
static const char *const gemini_aliases[] = {"google", NULL};

/* Everything an OpenAI-compatible service shares with OpenAI: a record then
 * names only its URL, key variable and families. */
#define OPENAI_COMPATIBLE                                                                          \
    .type = TG_PROVIDER_OPENAI, .wire = TG_WIRE_OPENAI, .dialect = &tg_dialect_openai,             \
    .auth_header = "Authorization", .auth_prefix = "Bearer ",                                      \
    .credential_headers = openai_credentials, .gateway_key_header = true,                          \
    .url = tg_provider_url_default

/* The types' own records first, at their enum value (tg_provider_rec_for_type). */
static const tg_provider_rec_t records[] = {
    [TG_PROVIDER_OPENAI] =
        {
            .name = "openai",
            OPENAI_COMPATIBLE,
            .default_base_url = "https://api.openai.com/v1",
            .path_prefix = "/v1",
            .key_env = "OPENAI_API_KEY",
            .families = openai_families,
        },
    [TG_PROVIDER_ANTHROPIC] =
        {
            .name = "anthropic",
            .type = TG_PROVIDER_ANTHROPIC,
            .wire = TG_WIRE_ANTHROPIC,
            .dialect = &tg_dialect_anthropic,
            .default_base_url = "https://api.anthropic.com/v1",
            .path_prefix = "/v1",
            .key_env = "ANTHROPIC_API_KEY",
            .auth_header = "x-api-key",
            .auth_prefix = "",
            .credential_headers = anthropic_credentials,
            .gateway_key_header = true,
            .default_headers = anthropic_headers,
            .own_header_prefixes = anthropic_own_headers,
            .url = tg_provider_url_default,
            .families = anthropic_families,
            .families_any_name = true,
        },
    [TG_PROVIDER_GEMINI] =
        {
            .name = "gemini",
            .aliases = gemini_aliases,
            .type = TG_PROVIDER_GEMINI,
            .wire = TG_WIRE_GEMINI,
            .dialect = &tg_dialect_gemini,
            .default_base_url = "https://generativelanguage.googleapis.com/v1beta",
            .path_prefix = "/v1beta",
            .key_env = "GEMINI_API_KEY",
            .key_env_alt = "GOOGLE_GEMINI_API_KEY",
            .auth_header = "x-goog-api-key",
            .auth_prefix = "",
            .credential_headers = gemini_credentials,
            .credential_query = "key", /* Gemini clients may carry the key as ?key= */
            .gateway_key_header = true,
            .url = tg_provider_url_default,
            .families = gemini_families,
            .families_any_name = true,
        },
    [TG_PROVIDER_AZURE] =
        {
            /* OpenAI's bodies at Azure's addresses (azure.c). Its SDK's api-key
             * header is not taken as a gateway key: it never was. */
            .name = "azure",
            .type = TG_PROVIDER_AZURE,
            .wire = TG_WIRE_OPENAI,
            .dialect = &tg_dialect_openai,
            .path_prefix = "",
            .base_url_hint = "https://RESOURCE.openai.azure.com",
            .auth_header = "api-key",
            .auth_prefix = "",
            .credential_headers = azure_credentials,
            .url = tg_azure_provider_url,
        },
    [TG_PROVIDER_MOCK] =
        {
            .name = "mock",
            .type = TG_PROVIDER_MOCK,
            .wire = TG_WIRE_OPENAI,
            .dialect = &tg_dialect_openai,
            .path_prefix = "",
            .credential_headers = (const char *const[]){NULL},
            .url = tg_provider_url_default,
            .local = true,
        },
    /* Well-known OpenAI-compatible services (SPEC §2, §4). */
    {.name = "deepseek",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.deepseek.com/v1",
     .path_prefix = "/v1",
     .key_env = "DEEPSEEK_API_KEY",
     .families = (const char *const[]){"deepseek-", NULL}},
    {.name = "groq",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.groq.com/openai/v1",
     .path_prefix = "/openai/v1",
     .key_env = "GROQ_API_KEY"},
    {.name = "mistral",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.mistral.ai/v1",
     .path_prefix = "/v1",
     .key_env = "MISTRAL_API_KEY",
     .rejects_stream_options = true,
     .families = (const char *const[]){"mistral-", "codestral-", NULL}},
    {.name = "xai",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.x.ai/v1",
     .path_prefix = "/v1",
     .key_env = "XAI_API_KEY",
     .families = (const char *const[]){"grok-", NULL}},
    {.name = "openrouter",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://openrouter.ai/api/v1",
     .path_prefix = "/api/v1",
     .key_env = "OPENROUTER_API_KEY"},
    {.name = "modelscope",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api-inference.modelscope.cn/v1",
     .path_prefix = "/v1",
     .key_env = "MODELSCOPE_API_KEY"},
    {.name = "together",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.together.xyz/v1",
     .path_prefix = "/v1"},
    {.name = "fireworks",
     OPENAI_COMPATIBLE,
     .default_base_url = "https://api.fireworks.ai/inference/v1",
     .path_prefix = "/inference/v1"},
    {.name = "ollama",
     OPENAI_COMPATIBLE,
     .default_base_url = "http://localhost:11434/v1",
     .path_prefix = "/v1"},
};

#define N_RECORDS (sizeof records / sizeof records[0])

/* ---- look-ups ---- */

const tg_provider_rec_t *tg_provider_rec_at(size_t i)
{
    return i < N_RECORDS ? &records[i] : NULL;
}

const tg_provider_rec_t *tg_provider_rec_for_type(tg_provider_type_t type)
{
    return (unsigned)type < TG_PROVIDER_TYPES ? &records[type] : &records[TG_PROVIDER_OPENAI];
}

const tg_provider_rec_t *tg_provider_rec_fallback(void)
{
    return &records[TG_PROVIDER_OPENAI];
}

const tg_provider_rec_t *tg_provider_rec_named(const char *name)
{
    for (size_t i = 0; name && i < N_RECORDS; i++) {
        if (!strcasecmp(records[i].name, name))
            return &records[i];
        for (const char *const *a = records[i].aliases; a && *a; a++)
            if (!strcasecmp(*a, name))
                return &records[i];
    }
    return NULL;
}

/* The host of an http(s) URL, as a pointer into it and a length. */
static const char *url_host(const char *url, size_t *len)
{
    const char *h = strstr(url, "://");
    if (!h)
        return NULL;
    h += 3;
    *len = strcspn(h, "/:?#");
    return h;
}

const tg_provider_rec_t *tg_provider_rec_find(const char *name, tg_provider_type_t type,
                                              const char *base_url)
{
    const tg_provider_rec_t *r = tg_provider_rec_named(name);
    if (r && r->type == type)
        return r;
    size_t hl = 0, rl = 0;
    const char *host = base_url ? url_host(base_url, &hl) : NULL;
    for (size_t i = TG_PROVIDER_TYPES; host && i < N_RECORDS; i++) {
        const char *rh = url_host(records[i].default_base_url, &rl);
        if (records[i].type == type && rh && rl == hl && !strncasecmp(rh, host, hl))
            return &records[i];
    }
    return tg_provider_rec_for_type(type);
}

const tg_provider_rec_t *tg_provider_rec_of(const tg_provider_cfg_t *p)
{
    return p->rec ? p->rec : tg_provider_rec_find(p->name, p->type, p->base_url);
}

const tg_dialect_t *tg_dialect_for(tg_provider_type_t type)
{
    return tg_provider_rec_for_type(type)->dialect;
}

bool tg_provider_accepts_stream_options(const tg_provider_cfg_t *p)
{
    const tg_provider_rec_t *r = tg_provider_rec_of(p);
    return r->wire == TG_WIRE_OPENAI && !r->local && !r->rejects_stream_options;
}

/* ---- URLs ---- */

char *tg_provider_url(const tg_provider_cfg_t *p, const char *suffix, const char *query)
{
    if (tg_urlpath_check(suffix, strlen(suffix), 0) < 0 || tg_urlquery_check(query) < 0)
        return NULL;
    tg_buf_t b = {0};
    tg_buf_puts(&b, p->base_url ? p->base_url : "");
    tg_buf_puts(&b, suffix);
    if (query && *query) {
        tg_buf_puts(&b, strchr(b.data, '?') ? "&" : "?");
        tg_buf_puts(&b, query);
    }
    return b.data;
}

char *tg_provider_query_without(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nlen = strlen(name);
    tg_buf_t out = {0};
    for (const char *p = query; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!(len >= nlen && !memcmp(p, name, nlen) && (len == nlen || p[nlen] == '='))) {
            if (out.len)
                tg_buf_puts(&out, "&");
            tg_buf_append(&out, p, len);
        }
        p += len + (end ? 1 : 0);
    }
    if (!out.len) {
        tg_buf_free(&out);
        return tg_xstrdup("");
    }
    return out.data;
}

char *tg_provider_url_default(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq)
{
    const char *cq = tg_provider_rec_of(p)->credential_query;
    if (!cq || !p->api_key)
        return tg_provider_url(p, rq->suffix, rq->query);
    /* A configured key replaces the client's, in the query too. */
    char *q = tg_provider_query_without(rq->query, cq);
    char *u = tg_provider_url(p, rq->suffix, q);
    free(q);
    return u;
}

char *tg_provider_url_for(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq)
{
    return tg_provider_rec_of(p)->url(p, rq);
}
