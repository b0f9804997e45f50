/*
 * registry.c — provider type → dialect, and what all dialects share (URL
 * building, credential headers). Pure; any thread.
 */
#include "providers/provider.h"

#include "core/urlpath.h"
#include "core/util.h"

#include <string.h>
#include <strings.h>

const tg_dialect_t *tg_dialect_for(tg_provider_type_t type)
{
    switch (type) {
    case TG_PROVIDER_ANTHROPIC:
        return &tg_dialect_anthropic;
    case TG_PROVIDER_GEMINI:
        return &tg_dialect_gemini;
    case TG_PROVIDER_AZURE:
        return &tg_dialect_azure;
    case TG_PROVIDER_OPENAI:
    case TG_PROVIDER_MOCK:
        break;
    }
    return &tg_dialect_openai;
}

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

bool tg_is_credential_header(const char *name)
{
    static const tg_name_t names[] = {TG_NAME("authorization"), TG_NAME("x-api-key"),
                                      TG_NAME("x-goog-api-key"), TG_NAME("api-key")};
    return tg_name_in(name, strlen(name), names, sizeof names / sizeof names[0]);
}
