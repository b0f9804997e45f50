/*
 * server.h — listeners and worker threads.
 *
 * `server.workers` threads, each with its own event loop, its own client
 * connections and its own SO_REUSEPORT listening socket: the kernel spreads connections over
 * them and the threads share nothing on the request path. The main thread
 * only starts, reloads and stops them.
 */
#ifndef TG_SERVER_H
#define TG_SERVER_H

#include "config/config.h"
#include "server/http.h"

#include <stdint.h>

typedef struct tg_server tg_server_t;

/** What the server calls; every hook except none runs on the worker thread. */
typedef struct {
    /** Make the per-worker state (upstream relay, ...). arg: the hooks'
     *  `arg`. Returns NULL on failure. */
    void *(*worker_init)(struct event_base *base, int index, tg_config_t *cfg, void *arg);
    /** Free it when the worker stops (no exchange is alive then). */
    void (*worker_free)(void *wctx);
    /** A new request. The handler owns `h` until it ends the exchange. */
    void (*handle)(tg_http_t *h, void *wctx);
    /** A new configuration now applies to this worker (the old one stays
     *  valid for exchanges that took a reference to it). */
    void (*config_changed)(void *wctx, tg_config_t *cfg);
    /** Bytes are about to be written to a client socket (optional). Runs
     *  before every such write, so work of this loop turn that must reach
     *  the kernel before a client can see its answer (the store's journal)
     *  does; it must be cheap when there is nothing to do. */
    void (*before_write)(void *wctx);
    /** Given to worker_init: the gateway object, which outlives the server. */
    void *arg;
    /** Where the server counts connections it drops and pauses in
     *  accepting (worker i in shard i), and the open-connections gauge it
     *  sets from start to join. Outlives the server. */
    struct tg_metrics *metrics;
} tg_server_hooks_t;

/** Open the listening sockets (reporting bind errors at once) and start the
 *  workers. Takes a reference to cfg. Returns NULL with a logged error. */
tg_server_t *tg_server_start(tg_config_t *cfg, const tg_server_hooks_t *hooks);

/** Apply a new configuration to every worker without dropping connections.
 *  Listener address, port and worker count changes need a restart. */
void tg_server_reload(tg_server_t *s, tg_config_t *cfg);

/** Stop accepting; let in-flight exchanges finish for up to
 *  server.shutdown_timeout, then end the rest. Returns at once. */
void tg_server_shutdown(tg_server_t *s);

/** Wait for every worker to finish, then free the server. */
void tg_server_join(tg_server_t *s);

/** Number of exchanges in flight over all workers (approximate, any thread). */
long tg_server_inflight(tg_server_t *s);

/** server.max_connections when not configured, for a descriptor limit of
 *  `nofile`: half of what is left after 32 + 8 per worker descriptors (the
 *  other half is for the provider connection each client may need). At
 *  least 1. */
long tg_server_default_max_connections(long nofile, int workers);

/** When a request body whose head was read at start_ms must be whole, once
 *  `received` bytes of it came: server.body_timeout, plus one second per
 *  server.body_min_rate bytes (none when min_rate is 0). */
int64_t tg_server_body_deadline_ms(int64_t start_ms, int64_t timeout_ms, int64_t min_rate,
                                   uint64_t received);

#endif
