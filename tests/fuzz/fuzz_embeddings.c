/* libFuzzer target: OpenAI embeddings -> Gemini batchEmbedContents
 * (requests, answers, errors; bit 2 of the first byte picks the base64
 * answer). See fuzz_translate.h and run.sh. */
#define FUZZ_CLIENT        TG_WIRE_OPENAI
#define FUZZ_PROVIDER      TG_PROVIDER_GEMINI
#define FUZZ_TRANSLATOR(b) tg_translate_embeddings_for(TG_PROVIDER_GEMINI, ((b) >> 2) & 1)
#include "fuzz_translate.h"
