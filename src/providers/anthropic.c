/*
 * anthropic.c — the Anthropic Messages dialect.
 */
#include "providers/provider.h"

const tg_dialect_t tg_dialect_anthropic = {
    .name = "anthropic",
    .auth_header = "x-api-key",
    .auth_prefix = "",
};
