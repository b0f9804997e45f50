/*
 * test_stages.c — the stage loop (proxy/stages.c) driven with fake stage
 * lists, no sockets: order, stopping on answered and parked, resuming at the
 * stage after the parked one; and the proxy's own lists' order.
 */
#include "proxy/stages.h"
#include "test.h"

#include <string.h>

typedef struct {
    char trace[64];
    int park_at; /* the call number that parks (1-based), 0 none */
    int answer_at;
    int calls;
} fake_t;

static tg_stage_result_t step(fake_t *f, char c)
{
    size_t n = strlen(f->trace);
    f->trace[n] = c;
    f->trace[n + 1] = 0;
    f->calls++;
    if (f->calls == f->park_at)
        return TG_STAGE_PARKED;
    if (f->calls == f->answer_at)
        return TG_STAGE_ANSWERED;
    return TG_STAGE_CONTINUE;
}

static tg_stage_result_t sa(void *arg)
{
    return step(arg, 'a');
}
static tg_stage_result_t sb(void *arg)
{
    return step(arg, 'b');
}
static tg_stage_result_t sc(void *arg)
{
    return step(arg, 'c');
}
static tg_stage_result_t sd(void *arg)
{
    return step(arg, 'd');
}

static const tg_stage_t fake_list[] = {
    {"a", sa}, {"b", sb}, {"c", sc}, {"d", sd}, {NULL, NULL},
};

TEST(stages_run_in_order_to_the_end)
{
    fake_t f = {0};
    size_t next = 0;
    CHECK_INT(tg_stages_run(fake_list, &next, &f), TG_STAGE_CONTINUE);
    CHECK_STR(f.trace, "abcd");
    CHECK_INT(next, 4);
}

TEST(stages_stop_when_answered)
{
    fake_t f = {.answer_at = 2};
    size_t next = 0;
    CHECK_INT(tg_stages_run(fake_list, &next, &f), TG_STAGE_ANSWERED);
    CHECK_STR(f.trace, "ab");
}

TEST(stages_resume_after_the_parked_stage)
{
    fake_t f = {.park_at = 2};
    size_t next = 0;
    CHECK_INT(tg_stages_run(fake_list, &next, &f), TG_STAGE_PARKED);
    CHECK_STR(f.trace, "ab");
    CHECK_INT(next, 2); /* the wake-up goes on with c, not b again */
    CHECK_INT(tg_stages_run(fake_list, &next, &f), TG_STAGE_CONTINUE);
    CHECK_STR(f.trace, "abcd");
}

static const char *names_of(const tg_stage_t *list, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; list[i].run; i++) {
        if (i)
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, list[i].name, cap - strlen(out) - 1);
    }
    return out;
}

TEST(stages_proxy_lists)
{
    char buf[256];
    CHECK_STR(names_of(tg_stages_llm(), buf, sizeof buf),
              "read_body resolve token_cap caller_limits local_answer plan cache budget "
              "provider_limits attempt");
    CHECK_STR(names_of(tg_stages_passthrough(), buf, sizeof buf),
              "read_raw_body caller_limits raw_budget provider_limits attempt");
}
