/* libFuzzer target: the anthropic -> openai translator (requests, answers, errors,
 * streams). See fuzz_translate.h and run.sh. */
#define FUZZ_CLIENT   TG_WIRE_ANTHROPIC
#define FUZZ_PROVIDER TG_PROVIDER_OPENAI
#include "fuzz_translate.h"
