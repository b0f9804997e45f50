/*
 * queue.h — a bounded multi-producer, single-consumer queue of pointers
 * (Vyukov's bounded queue). Producers never block and never take a lock:
 * tg_queue_push fails at once when the queue is full. Any number of threads
 * may push; exactly one thread pops.
 */
#ifndef TG_QUEUE_H
#define TG_QUEUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    atomic_size_t seq;
    void *item;
} tg_queue_cell_t;

typedef struct {
    tg_queue_cell_t *cells;
    size_t mask;                    /* capacity - 1 (capacity is a power of two) */
    alignas(64) atomic_size_t head; /* next slot to push (producers) */
    alignas(64) atomic_size_t tail; /* next slot to pop (the consumer) */
} tg_queue_t;

/** Capacity is rounded up to a power of two (at least 2). */
void tg_queue_init(tg_queue_t *q, size_t capacity);
void tg_queue_destroy(tg_queue_t *q);

/** Any thread. False when full (the item is not queued). */
bool tg_queue_push(tg_queue_t *q, void *item);

/** The consumer thread only. NULL when empty. */
void *tg_queue_pop(tg_queue_t *q);

/** Items queued now (approximate while producers run). Any thread. */
size_t tg_queue_depth(tg_queue_t *q);

size_t tg_queue_capacity(const tg_queue_t *q);

#endif
