/*
 * queue.c — see queue.h. Each cell carries a sequence number: a producer
 * may fill cell i when seq == position, the consumer may empty it when
 * seq == position + 1; the consumer then hands it to the producer of the
 * next lap (seq = position + capacity). Producers race only on `head`, with
 * a compare-and-swap; the item is published by the release store of seq.
 *
 * Push: any thread. Pop: the single consumer (the store's writer thread).
 */
#include "store/queue.h"

#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>

void tg_queue_init(tg_queue_t *q, size_t capacity)
{
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    q->cells = tg_xcalloc(cap, sizeof *q->cells);
    for (size_t i = 0; i < cap; i++)
        atomic_init(&q->cells[i].seq, i);
    q->mask = cap - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
}

void tg_queue_destroy(tg_queue_t *q)
{
    free(q->cells);
    q->cells = NULL;
}

bool tg_queue_push(tg_queue_t *q, void *item)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    tg_queue_cell_t *c;
    for (;;) {
        c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
            /* pos reloaded by the failed CAS */
        } else if (dif < 0) {
            return false; /* full: the consumer has not emptied this cell yet */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
    c->item = item;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return true;
}

void *tg_queue_pop(tg_queue_t *q)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    tg_queue_cell_t *c = &q->cells[pos & q->mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((intptr_t)seq - (intptr_t)(pos + 1) < 0)
        return NULL; /* empty, or a producer is still filling this cell */
    void *item = c->item;
    atomic_store_explicit(&q->tail, pos + 1, memory_order_relaxed);
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    return item;
}

size_t tg_queue_depth(tg_queue_t *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return h >= t ? h - t : 0;
}

size_t tg_queue_capacity(const tg_queue_t *q)
{
    return q->mask + 1;
}
