/*
 * stages.h — a request's path as a list of small stages, run in order by
 * one short loop (as nginx runs its phases).
 *
 * A stage does one job and says what became of the request:
 *   TG_STAGE_CONTINUE  go on with the next stage
 *   TG_STAGE_ANSWERED  the request was answered (or failed): stop here
 *   TG_STAGE_PARKED    the stage waits (a cache flight, the provider's
 *                      answer); whatever wakes it either answers the request
 *                      or calls the loop again, which goes on with the next
 *                      stage
 * The loop itself knows nothing of requests: tg_stages_run takes any list and
 * any argument, so it is tested with a fake list (tests/unit/test_stages.c).
 * The lists of the proxy are in stages.c. Worker thread.
 */
#ifndef TG_STAGES_H
#define TG_STAGES_H

#include <stddef.h>

typedef enum {
    TG_STAGE_CONTINUE,
    TG_STAGE_ANSWERED,
    TG_STAGE_PARKED,
} tg_stage_result_t;

typedef struct {
    const char *name; /* for logs and tests */
    tg_stage_result_t (*run)(void *arg);
} tg_stage_t;

/** Run list (ended by an entry whose run is NULL) from *next. *next is
 *  advanced past each stage before it runs, so a parked stage's wake-up
 *  calls this again to go on with the stage after it. Returns what stopped
 *  the loop (TG_STAGE_CONTINUE when the list ran out). */
tg_stage_result_t tg_stages_run(const tg_stage_t *list, size_t *next, void *arg);

/** The stage lists of the proxy: an LLM route's, and a raw pass-through's. */
const tg_stage_t *tg_stages_llm(void);
const tg_stage_t *tg_stages_passthrough(void);

#endif
