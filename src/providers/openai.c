/*
 * openai.c — the OpenAI dialect, spoken by OpenAI and every
 * OpenAI-compatible provider (DeepSeek, Groq, Mistral, xAI, OpenRouter,
 * ModelScope, Together, Fireworks, Ollama, any named endpoint).
 */
#include "providers/provider.h"

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
