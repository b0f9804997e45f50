/* Unit tests for the API's reader threads (src/proxy/readers.c): a query
 * runs on another thread and its answer comes back on the submitting
 * loop; a loop that goes forgets its jobs without running their answers. */
#include "proxy/readers.h"
#include "test.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    pthread_t loop_thread;
    atomic_int started, ran_elsewhere, done_on_loop, freed, done_calls;
    struct event_base *base;
    int sleep_ms;
    int want; /* answers to wait for */
} ctx_t;

typedef struct {
    ctx_t *c;
    int n;
} arg_t;

static int fn(void *a, tg_buf_t *out)
{
    arg_t *x = a;
    atomic_fetch_add(&x->c->started, 1);
    if (x->c->sleep_ms)
        usleep((useconds_t)x->c->sleep_ms * 1000);
    if (!pthread_equal(pthread_self(), x->c->loop_thread))
        atomic_fetch_add(&x->c->ran_elsewhere, 1);
    tg_buf_printf(out, "answer %d", x->n);
    return 200 + x->n;
}

static void done(void *a, int status, tg_buf_t *out)
{
    arg_t *x = a;
    char want[32];
    snprintf(want, sizeof want, "answer %d", x->n);
    if (pthread_equal(pthread_self(), x->c->loop_thread) && status == 200 + x->n &&
        !strcmp(out->data, want))
        atomic_fetch_add(&x->c->done_on_loop, 1);
    if (atomic_fetch_add(&x->c->done_calls, 1) + 1 == x->c->want)
        event_base_loopbreak(x->c->base);
}

static void free_arg(void *a)
{
    arg_t *x = a;
    atomic_fetch_add(&x->c->freed, 1);
    free(x);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg); /* the answers never came */
}

TEST(readers_answer_on_the_submitting_loop)
{
    tg_readers_t *r = tg_readers_new(2);
    ctx_t c = {.loop_thread = pthread_self(), .want = 5};
    c.base = event_base_new();
    struct event *guard = evtimer_new(c.base, on_guard, c.base);
    struct timeval tv = {5, 0};
    evtimer_add(guard, &tv);
    for (int i = 0; i < 5; i++) {
        arg_t *a = tg_xcalloc(1, sizeof *a);
        a->c = &c;
        a->n = i;
        tg_readers_submit(r, c.base, fn, done, free_arg, a);
    }
    event_base_dispatch(c.base);
    CHECK_INT(atomic_load(&c.ran_elsewhere), 5);
    CHECK_INT(atomic_load(&c.done_on_loop), 5);
    CHECK_INT(atomic_load(&c.freed), 5);
    CHECK_INT(tg_readers_pending(r), 0);
    event_free(guard);
    event_base_free(c.base);
    tg_readers_free(r);
}

TEST(readers_forget_drops_a_loops_jobs)
{
    tg_readers_t *r = tg_readers_new(1);
    ctx_t c = {.loop_thread = pthread_self(), .sleep_ms = 30, .want = 100};
    c.base = event_base_new();
    for (int i = 0; i < 4; i++) {
        arg_t *a = tg_xcalloc(1, sizeof *a);
        a->c = &c;
        a->n = i;
        tg_readers_submit(r, c.base, fn, done, free_arg, a);
    }
    /* the first is running, the others wait: wait for its start (up to 5 s
     * on a loaded machine), not for a fixed time */
    for (int i = 0; i < 5000 && !atomic_load(&c.started); i++)
        usleep(1000);
    tg_readers_forget(r, c.base);
    CHECK_INT(tg_readers_pending(r), 0);
    CHECK_INT(atomic_load(&c.freed), 4);
    CHECK(atomic_load(&c.ran_elsewhere) >= 1 && atomic_load(&c.ran_elsewhere) < 4);
    event_base_loop(c.base, EVLOOP_NONBLOCK); /* nothing is delivered */
    CHECK_INT(atomic_load(&c.done_calls), 0);
    event_base_free(c.base);
    tg_readers_free(r);
}
