/*
 * redis.h — the gateway's connection to Redis (SPEC §13, docs/fleet.md):
 * the shared state several instances behind a load balancer keep exact
 * (rate-limit counters, budget spend and reservations, cached answers),
 * changed atomically by Lua scripts, and the channel on which they tell
 * each other of changes made through /api/v1 (proxy/bus.h).
 *
 * Two objects:
 *   tg_redis_shared_t  one per gateway (a member of tg_gateway_t): the
 *                      parsed redis.url, what to do on failure, the
 *                      counters behind tollgate_redis_up and
 *                      tollgate_redis_errors_total. Any thread (atomics).
 *   tg_redis_t         one per worker: a hiredis async context on that
 *                      worker's event_base (hiredis's libevent adapter).
 *                      Commands are pipelined: many in flight on one
 *                      connection, answered in order. Worker thread only.
 *
 * A connection is ready once connected and, if the URL asks, AUTH and
 * SELECT are answered. Connecting has a deadline (connect_timeout), and so
 * has every command (redis.timeout): a reply that does not come in time
 * ends the connection, which fails every command in flight. A lost
 * connection is made again with backoff (100 ms doubling to 5 s). While a
 * connection is not ready, commands are refused at once (tg_redis_eval
 * returns NULL), so the caller falls back without waiting.
 *
 * Scripts are sent as EVALSHA with the SHA-1 of their text (computed per
 * worker); each is loaded with SCRIPT LOAD when the connection becomes
 * ready, and a NOSCRIPT answer (Redis restarted, SCRIPT FLUSH) sends the
 * same call as EVAL, which loads it again.
 *
 * The password never reaches a log line: URLs are logged through
 * tg_redis_url_redact.
 */
#ifndef TG_REDIS_H
#define TG_REDIS_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redisReply;

/* ---- URLs (pure) ---- */

typedef struct {
    bool unix_socket; /* unix:PATH */
    char host[256];   /* or the socket's path */
    int port;
    char user[128]; /* empty: AUTH with the password alone (or none) */
    char pass[256]; /* empty: no AUTH */
    int db;         /* SELECT when > 0 */
} tg_redis_url_t;

/** Parse redis://[user:pass@]host[:port][/N] (port 6379, db 0 by default;
 *  [v6] hosts; user and password percent-decoded) or unix:PATH. rediss://
 *  is refused: this build's hiredis (0.14) has no TLS. Returns 0, or -1
 *  with a message (which never contains the password). */
int tg_redis_url_parse(const char *url, tg_redis_url_t *out, char *err, size_t errlen);

/** url with its password replaced by "***", for logs (always terminated). */
void tg_redis_url_redact(const char *url, char *out, size_t len);

/* ---- the gateway's part ---- */

typedef enum { TG_REDIS_OPEN = 0, TG_REDIS_CLOSED = 1 } tg_redis_failure_t;

typedef struct tg_redis_shared tg_redis_shared_t;

/** For cfg's redis.url (NULL: none, returns NULL without error). NULL with
 *  err when the URL cannot be used. */
tg_redis_shared_t *tg_redis_shared_new(const char *url, int on_failure, int64_t timeout_ms,
                                       int64_t connect_timeout_ms, char *err, size_t errlen);
void tg_redis_shared_free(tg_redis_shared_t *sh);
tg_redis_failure_t tg_redis_on_failure(const tg_redis_shared_t *sh);
/** Every worker's connection is ready. */
bool tg_redis_up(const tg_redis_shared_t *sh);
/** tollgate_redis_up and tollgate_redis_errors_total, for /metrics. */
void tg_redis_render_metrics(void *sh, tg_buf_t *out);

/* ---- a worker's connection ---- */

typedef struct tg_redis tg_redis_t;

/** A worker's client, connecting at once (NULL sh: NULL). */
tg_redis_t *tg_redis_new(tg_redis_shared_t *sh, struct event_base *base);
/** A message published on a subscriber's channel (not NUL-ended). */
typedef void (*tg_redis_message_fn)(void *arg, const char *msg, size_t len);
/** A connection that only listens: SUBSCRIBE channel (again after each
 *  reconnection); fn gets every message, on base's loop. NULL sh: NULL. */
tg_redis_t *tg_redis_subscribe(tg_redis_shared_t *sh, struct event_base *base, const char *channel,
                               tg_redis_message_fn fn, void *arg);
/** PUBLISH msg on channel, without waiting for the answer; false when the
 *  connection is not ready (or is a subscriber). */
bool tg_redis_publish(tg_redis_t *r, const char *channel, const char *msg, size_t len);
/** Close it: commands in flight fail (their callbacks run with NULL). */
void tg_redis_free(tg_redis_t *r);
bool tg_redis_ready(const tg_redis_t *r);
/** fn runs each time the connection becomes ready (after a reconnection
 *  too), on the worker's loop: state to put back into Redis. */
void tg_redis_set_on_ready(tg_redis_t *r, void (*fn)(void *arg, tg_redis_t *r), void *arg);

/* A Lua script: its text, const; the worker keeps its SHA-1. */
typedef struct {
    const char *name; /* for logs */
    const char *body;
} tg_redis_script_t;

/** The answer to a command: the reply, or NULL on failure (not connected
 *  any more, the deadline passed, an error reply — counted and logged). */
typedef void (*tg_redis_reply_fn)(void *arg, const struct redisReply *reply);

typedef struct tg_redis_req tg_redis_req_t;

/**
 * Run script s with nkeys keys then args (argv[0..argc), lengths lens;
 * copied). cb runs exactly once, later, from the loop — unless the request
 * is cancelled first. cb NULL: fire and forget. Returns NULL, and never
 * calls cb, when the connection is not ready.
 */
tg_redis_req_t *tg_redis_eval(tg_redis_t *r, const tg_redis_script_t *s, int nkeys, int argc,
                              const char *const *argv, const size_t *lens, tg_redis_reply_fn cb,
                              void *arg);

/** Forget a request's callback (its owner goes away): the reply, when it
 *  comes, is dropped. Only before cb ran. */
void tg_redis_cancel(tg_redis_req_t *q);

/* A script call's keys and arguments as text, built in one buffer. */
#define TG_REDIS_MAX_ARGS 128
typedef struct {
    tg_buf_t buf; /* the strings, NUL-separated */
    size_t off[TG_REDIS_MAX_ARGS], lens[TG_REDIS_MAX_ARGS];
    const char *argv[TG_REDIS_MAX_ARGS]; /* into buf, set by tg_redis_args_done */
    int argc, nkeys;
} tg_redis_args_t;

/** Start again (a is zeroed or was used before). */
void tg_redis_args_reset(tg_redis_args_t *a);
/** Append one argument (past TG_REDIS_MAX_ARGS: dropped), or a number. */
void tg_redis_args_push(tg_redis_args_t *a, const char *s, size_t len);
void tg_redis_args_push_i64(tg_redis_args_t *a, int64_t v);
/** Those pushed so far are the keys. */
void tg_redis_args_keys_done(tg_redis_args_t *a);
/** Point argv into the buffer: after the last push. */
void tg_redis_args_done(tg_redis_args_t *a);
void tg_redis_args_free(tg_redis_args_t *a);

/** The integers of an array reply, at most max, into out; -1 when reply
 *  is not an array of integers. Pure. */
int tg_redis_reply_ints(const struct redisReply *reply, int64_t *out, int max);

#endif
