/*
 * pipeline.h — the proxy as the server sees it: the route table that turns a
 * request into an exchange and its stages (stages.c), the process-wide state,
 * and the worker hooks (see tg_server_hooks_t); they run on the worker thread.
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

#include "config/config.h"
#include "server/http.h"

struct event_base;

/** Process-wide state (the response cache, the rate limiter, the runtime
 *  rate limits): before the workers start, and after they have all
 *  stopped. caching.max_size is read here only: changing it needs a
 *  restart. store: where request records and runtime rate limits go (NULL:
 *  request logging off, runtime limits in memory only); the limits it holds
 *  are loaded here. Returns 0, or -1 with err when they cannot be read. */
struct tg_store;
int tg_pipeline_init(const tg_config_t *cfg, struct tg_store *store, char *err, size_t errlen);
void tg_pipeline_shutdown(void);

void *tg_pipeline_worker_init(struct event_base *base, int index, tg_config_t *cfg);
void tg_pipeline_worker_free(void *wctx);
void tg_pipeline_handle(tg_http_t *h, void *wctx);
void tg_pipeline_config_changed(void *wctx, tg_config_t *cfg);
/** The worker is about to write to a client: the records of this loop
 *  turn go to the store's journal first. */
void tg_pipeline_before_write(void *wctx);

#endif
