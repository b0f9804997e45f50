/* libFuzzer target: the prices file reader (cost_tracking.prices_file,
 * LiteLLM's format). Whatever goes in: a list whose every price is a
 * non-negative integer of femto-USD and whose look-ups answer, or a
 * refusal that names the file. See run.sh. */
#include "cost/cost.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void must(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    tg_price_list_t *l =
        tg_price_list_parse((const char *)data, size, "fuzz.json", err, sizeof err);
    if (!l) {
        must(strstr(err, "fuzz.json") != NULL);
        return 0;
    }
    static const char *models[] = {"gpt-4o", "m", "a/b", "claude-opus-4-8[1m]", "x-20250101", ""};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        tg_price_t p;
        const char *key = NULL;
        if (tg_price_list_find(l, i & 1 ? "openai" : NULL, models[i], &p, &key)) {
            must(key != NULL && p.input >= 0 && p.output >= 0 && p.cached_input >= 0 &&
                 p.cache_write >= 0 && p.long_above >= 0 && p.max_output >= 0);
            tg_usage_t u = {1000, 1000, 10, 10, -1};
            must(tg_cost_compute(&p, &u) >= 0);
        }
    }
    must(tg_price_list_count(l) <= size);
    tg_price_list_free(l);
    return 0;
}
