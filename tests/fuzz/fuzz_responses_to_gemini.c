/* libFuzzer target: the responses -> gemini translator (requests, answers,
 * errors, streams). See fuzz_translate.h and run.sh. */
#define FUZZ_CLIENT   TG_WIRE_RESPONSES
#define FUZZ_PROVIDER TG_PROVIDER_GEMINI
#include "fuzz_translate.h"
