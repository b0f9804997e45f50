/*
 * pipeline.h — the request pipeline: route table, provider resolution,
 * upstream call, relay back to the client. The hooks below are what the
 * server calls (see tg_server_hooks_t); they run on the worker thread.
 */
#ifndef TG_PIPELINE_H
#define TG_PIPELINE_H

#include "config/config.h"
#include "server/http.h"

struct event_base;

void *tg_pipeline_worker_init(struct event_base *base, int index, tg_config_t *cfg);
void tg_pipeline_worker_free(void *wctx);
void tg_pipeline_handle(tg_http_t *h, void *wctx);
void tg_pipeline_config_changed(void *wctx, tg_config_t *cfg);

/** OpenAI-shaped error body: {"error":{"message","type","code"}} (malloc'd). */
char *tg_openai_error_json(const char *message, const char *type, const char *code);

#endif
