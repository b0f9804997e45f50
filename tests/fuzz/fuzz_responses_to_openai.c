/* libFuzzer target: the responses -> openai translator (requests, answers,
 * errors, streams; the mock answers Chat Completions). See fuzz_translate.h and run.sh. */
#define FUZZ_CLIENT   TG_WIRE_RESPONSES
#define FUZZ_PROVIDER TG_PROVIDER_MOCK
#include "fuzz_translate.h"
