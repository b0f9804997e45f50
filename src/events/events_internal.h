/*
 * events_internal.h — what events.c (the emitter, the object) and
 * sender.c (the events thread) share; nothing outside src/events/
 * includes it.
 */
#ifndef TG_EVENTS_INTERNAL_H
#define TG_EVENTS_INTERNAL_H

#include "events/alerts.h"
#include "events/events.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

/* An event waiting in memory for the events thread. */
typedef struct {
    tg_event_type_t type;
    char id[37];
    int64_t created_at_ms;
    char *json; /* the whole event, as POSTed */
    size_t len;
} ev_item_t;

/* A receiver: cost_tracking.webhook_url or a `webhooks` entry. */
typedef struct {
    char *url;
    char *secret;    /* NULL: deliveries unsigned */
    char *shown;     /* the URL for logs: no query, no user info */
    unsigned events; /* bit per tg_event_type_t */
} ev_dest_t;

/* Delivery results, the label of tollgate_webhook_deliveries_total. */
enum { R_SUCCESS, R_FAILURE, R_EXPIRED, R_ABANDONED, N_RESULTS };

/* Rows kept in memory: the outbox without a store, or while the store
 * fails to take them. seq < 0 tells them from the store's. */
typedef struct {
    tg_outbox_row_t *rows;
    size_t n, cap;
    int64_t next_seq; /* counts down from -1 */
} mem_outbox_t;

#define MEM_OUTBOX_MAX 10000

struct tg_events {
    tg_events_options_t o;
    tg_store_t *store;
    tg_metrics_t *metrics;
    ev_dest_t *dests;
    size_t n_dests;
    unsigned wanted; /* union of the receivers' event bits */

    /* the queue from emitters to the events thread */
    pthread_mutex_t mu;
    ev_item_t *q;
    size_t q_len;
    bool stop;

    /* the events thread's own */
    pthread_t thread;
    bool started;
    CURLM *multi; /* made before the thread starts; emitters wake it */
    tg_alerts_t *alerts;
    mem_outbox_t mem;

    /* series for /metrics, read by scrapes on any thread */
    atomic_llong n_events[TG_EVENT_TYPES];
    atomic_llong n_results[N_RESULTS];
    atomic_llong n_dropped;
    atomic_int *firing; /* per rule: 0 or 1 */
    char **rule_names;
    size_t n_rules;
};

/* events.c: count a dropped event (tollgate_events_dropped_total), with a
 * log line now and then */
void tg_events_dropped(tg_events_t *ev, const char *type, const char *id, const char *why);

/* sender.c: the events thread's body */
void *tg_events_thread_main(void *arg);

#endif
