/*
 * readers.c — the API's reader threads (readers.h): a queue under one
 * mutex, n threads that take jobs from it, and one event per job on the
 * submitting worker's loop that delivers the answer there.
 *
 * Lock order: the pool's mutex, then an event base's own lock (event_active
 * and event_free take it): a reader thread activates a job's event under
 * the mutex, so that tg_readers_forget, which frees events under the same
 * mutex, never frees one a thread is about to activate.
 *
 * Threads: see readers.h.
 */
#include "proxy/readers.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state_t;

typedef struct job {
    tg_readers_t *pool;
    struct event_base *base;
    struct event *ev;
    tg_readers_fn fn;
    tg_readers_done done;
    void (*free_arg)(void *);
    void *arg;
    job_state_t state;
    int status;
    tg_buf_t out;
    struct job *next_queued;         /* the queue, oldest first */
    struct job *prev_all, *next_all; /* every job not yet delivered */
} job_t;

struct tg_readers {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stop */
    pthread_cond_t idle; /* a job finished */
    job_t *head, *tail;
    job_t *all;
    long pending;
    bool stop;
    pthread_t *threads;
    int n;
};

static void unlink_all(tg_readers_t *r, job_t *j)
{
    if (j->prev_all)
        j->prev_all->next_all = j->next_all;
    else
        r->all = j->next_all;
    if (j->next_all)
        j->next_all->prev_all = j->prev_all;
    r->pending--;
}

static void job_free(job_t *j)
{
    if (j->ev)
        event_free(j->ev);
    tg_buf_free(&j->out);
    if (j->free_arg)
        j->free_arg(j->arg);
    free(j);
}

static void *reader_main(void *arg)
{
    tg_readers_t *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stop)
            pthread_cond_wait(&r->work, &r->mu);
        if (!r->head)
            break; /* stop, and nothing left */
        job_t *j = r->head;
        r->head = j->next_queued;
        if (!r->head)
            r->tail = NULL;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&r->mu);
        int status = j->fn(j->arg, &j->out);
        pthread_mutex_lock(&r->mu);
        j->status = status;
        j->state = JOB_DONE;
        event_active(j->ev, EV_READ, 0);
        pthread_cond_broadcast(&r->idle);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* A job's event waits as a timer this long: a pending event keeps the
 * loop running until the answer is in (a loop with nothing pending would
 * return, as a unit test's loop does); when it fires first, it waits again. */
static const struct timeval job_wait = {3600, 0};

/* On the submitting worker's loop: the answer is in. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    job_t *j = arg;
    tg_readers_t *r = j->pool;
    pthread_mutex_lock(&r->mu);
    if (j->state != JOB_DONE) { /* the timer, not the answer */
        event_add(j->ev, &job_wait);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    unlink_all(r, j);
    pthread_mutex_unlock(&r->mu);
    j->done(j->arg, j->status, &j->out);
    job_free(j);
}

tg_readers_t *tg_readers_new(int n)
{
    /* the threads wake worker loops: libevent must lock its bases */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    tg_readers_t *r = tg_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->idle, NULL);
    r->n = n > 0 ? n : 1;
    r->threads = tg_xcalloc((size_t)r->n, sizeof *r->threads);
    for (int i = 0; i < r->n; i++) {
        if (pthread_create(&r->threads[i], NULL, reader_main, r) != 0)
            abort();
        pthread_setname_np(r->threads[i], "tg-reader");
    }
    return r;
}

void tg_readers_free(tg_readers_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n; i++)
        pthread_join(r->threads[i], NULL);
    /* a job nobody forgot (a worker that never ran its loop to the end) */
    while (r->all) {
        job_t *j = r->all;
        unlink_all(r, j);
        job_free(j);
    }
    free(r->threads);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void tg_readers_submit(tg_readers_t *r, struct event_base *base, tg_readers_fn fn,
                       tg_readers_done done, void (*free_arg)(void *), void *arg)
{
    job_t *j = tg_xcalloc(1, sizeof *j);
    j->pool = r;
    j->base = base;
    j->fn = fn;
    j->done = done;
    j->free_arg = free_arg;
    j->arg = arg;
    j->ev = event_new(base, -1, 0, on_ready, j);
    if (!j->ev || event_add(j->ev, &job_wait) != 0)
        abort(); /* out of memory */
    pthread_mutex_lock(&r->mu);
    j->next_all = r->all;
    if (r->all)
        r->all->prev_all = j;
    r->all = j;
    r->pending++;
    if (r->tail)
        r->tail->next_queued = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->mu);
}

void tg_readers_forget(tg_readers_t *r, struct event_base *base)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    /* queued ones leave the queue first (no thread may start one), then
     * the running ones end; none is delivered */
    job_t **pp = &r->head;
    r->tail = NULL;
    while (*pp) {
        if ((*pp)->base == base) {
            *pp = (*pp)->next_queued;
        } else {
            r->tail = *pp;
            pp = &(*pp)->next_queued;
        }
    }
    for (;;) {
        bool running = false;
        for (job_t *j = r->all; j; j = j->next_all)
            running = running || (j->base == base && j->state == JOB_RUNNING);
        if (!running)
            break;
        pthread_cond_wait(&r->idle, &r->mu);
    }
    for (job_t *j = r->all, *next; j; j = next) {
        next = j->next_all;
        if (j->base != base)
            continue;
        unlink_all(r, j);
        job_free(j);
    }
    pthread_mutex_unlock(&r->mu);
}

long tg_readers_pending(tg_readers_t *r)
{
    pthread_mutex_lock(&r->mu);
    long n = r->pending;
    pthread_mutex_unlock(&r->mu);
    return n;
}
