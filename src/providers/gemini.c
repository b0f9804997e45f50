/*
 * gemini.c — Google's Gemini (generativelanguage) dialect.
 */
#include "providers/provider.h"

const tg_dialect_t tg_dialect_gemini = {
    .name = "gemini",
    .auth_header = "x-goog-api-key",
    .auth_prefix = "",
};
