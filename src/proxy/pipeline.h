/*
 * pipeline.h — the proxy as the server sees it: the route table that turns a
 * request into an exchange and its stages (stages.c), and the worker hooks
 * (see tg_server_hooks_t); they run on the worker thread.
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

#include "config/config.h"
#include "server/http.h"

struct event_base;

/** arg: the gateway object (gateway.h), which outlives the worker. */
void *tg_pipeline_worker_init(struct event_base *base, int index, tg_config_t *cfg, void *arg);
void tg_pipeline_worker_free(void *wctx);
void tg_pipeline_handle(tg_http_t *h, void *wctx);
void tg_pipeline_config_changed(void *wctx, tg_config_t *cfg);
/** The worker is about to write to a client: the records of this loop
 *  turn go to the store's journal first. */
void tg_pipeline_before_write(void *wctx);

#endif
