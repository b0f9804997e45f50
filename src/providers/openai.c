/*
 * openai.c — the OpenAI dialect, spoken by OpenAI and every
 * OpenAI-compatible provider (DeepSeek, Groq, Mistral, xAI, OpenRouter,
 * ModelScope, Together, Fireworks, Ollama, any named endpoint).
 */
#include "providers/provider.h"

#include <string.h>
#include <strings.h>

bool tg_provider_accepts_stream_options(const tg_provider_cfg_t *p)
{
    if (p->type != TG_PROVIDER_OPENAI && p->type != TG_PROVIDER_AZURE)
        return false;
    return strcasecmp(p->name, "mistral") != 0 &&
           !(p->base_url && strstr(p->base_url, "api.mistral.ai"));
}

const tg_dialect_t tg_dialect_openai = {
    .name = "openai",
    .auth_header = "Authorization",
    .auth_prefix = "Bearer ",
};

/* Azure OpenAI: same bodies, its own key header. */
const tg_dialect_t tg_dialect_azure = {
    .name = "azure",
    .auth_header = "api-key",
    .auth_prefix = "",
};
