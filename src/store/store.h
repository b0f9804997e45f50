/*
 * store.h — the request store: where records go (write path) and where the
 * query API reads them (SPEC §8).
 *
 * Write path: workers call tg_store_submit, which never waits: the record
 * goes into a bounded lock-free queue, or, when that is full, is appended to
 * an on-disk spool. One writer thread batches the queue into the database in
 * transactions (up to batch_max records, or what arrived in batch_ms), keeps
 * records in the spool while the database fails, retries with backoff and
 * replays the spool when the database is back. tg_store_close writes
 * everything. Guarantees and bounds: docs/observability.md.
 *
 * Settings: the runtime rate limits of /api/v1/rate-limits are kept in the
 * store too, so they survive a restart. They do not go through the queue: a
 * rule is saved or deleted at once, on the caller's thread, so the API can
 * answer only once it is on disk (tg_store_rule_save and friends).
 *
 * Back-ends (SQLite, PostgreSQL) implement tg_store_ops_t; the
 * writer, the query API and the settings calls only talk to that interface.
 */
#ifndef TG_STORE_H
#define TG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/keys.h"
#include "config/config.h"
#include "ratelimit/ratelimit.h"
#include "store/record.h"

struct tg_query;

/* ---- public API (main, pipeline, metrics, query API) ---- */

typedef struct tg_store tg_store_t;

typedef struct {
    const char *url;               /* "sqlite:PATH" (storage.url) */
    const char *spool_path;        /* NULL: "<database path>-spool.tgj" (frames, journal.h) */
    const char *legacy_spool_path; /* an older version's JSON-lines spool, replayed once at
                                      start then removed; NULL: "<database path>-spool.jsonl"
                                      (tg_store_open) or none (tg_store_open_backend) */
    size_t queue_capacity;         /* records in memory, default 4096 */
    size_t queue_max_bytes;        /* bytes in memory (bodies!), default 4 MiB */
    size_t batch_max;              /* records per transaction at most, default 1024 */
    int batch_ms;                  /* longest a record waits for its batch, default 250 */
    int64_t spool_max_bytes;       /* default 1 GiB; past it records are kept in memory */
    int spool_sync_ms;             /* fsync period of the spool, default 200 */
    size_t backlog_max;      /* records kept in memory when even the spool fails, default 10000 */
    int retry_min_ms;        /* first retry of a failing database, default 100 */
    int retry_max_ms;        /* backoff ceiling, default 5000 */
    int close_timeout_ms;    /* tg_store_close retries a failing database this long, default 5000 */
    const char *journal_dir; /* per-worker crash journals; NULL: "<database path>-journal.d"
                                (tg_store_open) or none (tg_store_open_backend); "": none */
    int64_t journal_max_bytes;     /* all journal files, default 256 MiB; past it: not journaled */
    int64_t journal_segment_bytes; /* a journal file this big is sealed, default 1 MiB */
} tg_store_options_t;

/** The defaults above (url "sqlite:tollgate.db"). */
void tg_store_options_default(tg_store_options_t *o);

/**
 * Open the store named by o->url and start its writer thread. Returns 0, or
 * -1 with a message in err (bad URL, database that cannot be opened or
 * created, schema newer than this binary). A database that opens but cannot
 * be written (read-only file) is not an error: records are spooled until it
 * can. Main thread.
 */
int tg_store_open(const tg_store_options_t *o, tg_store_t **out, char *err, size_t errlen);

/** Hand a record to the store (ownership passes; s NULL frees it). Never
 *  waits on I/O or the writer. Any thread, until tg_store_close starts. */
void tg_store_submit(tg_store_t *s, tg_record_t *r);

/** Wait until every record submitted before the call is in the database.
 *  Returns 0, or -1 after timeout_ms (database failing). Any thread but the
 *  writer. For tests and tooling; shutdown uses tg_store_close. */
int tg_store_flush(tg_store_t *s, int timeout_ms);

/** Write every pending record, stop the writer, close the database. Records
 *  that still cannot be written after close_timeout_ms stay in the fsync'd
 *  spool and are written at the next start. Call after the workers stopped.
 *  NULL is fine. Main thread. */
void tg_store_close(tg_store_t *s);

/* ---- the crash journal (store/journal.h; docs/observability.md) ----
 *
 * Each worker appends the records it submits to its own journal file, once
 * per loop turn and before any client byte of that turn is written, so a
 * kill -9 loses no record of an answered request. */

typedef struct tg_journal tg_journal_t;

/** This worker's journal; NULL (and every call below a no-op but the
 *  submit) when the store is NULL or keeps no journal. Worker thread. */
tg_journal_t *tg_journal_open(tg_store_t *s, int worker);

/** tg_store_submit, with a copy of r kept for the journal's next write.
 *  Returns true when r is the first record waiting for that write (the
 *  caller makes sure tg_journal_write runs this loop turn). Worker thread. */
bool tg_journal_submit(tg_store_t *s, tg_journal_t *j, tg_record_t *r);

/** One write(2) of the records submitted since the last call; no fsync.
 *  Call before writing to clients. Worker thread. */
void tg_journal_write(tg_journal_t *j);

/** Write what waits, let go of the file (it goes once its records are in
 *  the database) and free j. Worker thread, before tg_store_close. */
void tg_journal_close(tg_journal_t *j);

/** Counters for /metrics (tollgate_log_queue_depth,
 *  tollgate_log_records_dropped_total, ...). Any thread. */
typedef struct {
    int64_t queue_depth;     /* records waiting in memory (queue + writer's hands) */
    int64_t written;         /* records committed to the database */
    int64_t dropped;         /* records lost: spool and memory both exhausted, or unwritable */
    int64_t spooled;         /* records that went through the spool */
    int64_t spool_bytes;     /* bytes in the spool files now */
    int64_t write_errors;    /* failed transactions */
    bool failing;            /* the database is failing now */
    int64_t journal_bytes;   /* bytes in the journal files now */
    int64_t journal_skipped; /* records not journaled: the journal was at its bound */
} tg_store_counters_t;

void tg_store_counters(tg_store_t *s, tg_store_counters_t *c);

/* ---- runtime rate limits (POST/GET/DELETE /api/v1/rate-limits) ---- */

/** Save a new rule (its id must not be stored yet), durably, before
 *  returning. Returns 0, or -1 with err (store unavailable, id taken). Any
 *  thread; one single-row transaction, independent of the writer thread. */
int tg_store_rule_save(tg_store_t *s, const tg_rl_rule_t *rule, char *err, size_t errlen);

/** Delete the rule with that id. Returns 0 deleted, 1 no such rule, -1 error
 *  (err). Any thread, like tg_store_rule_save. */
int tg_store_rule_delete(tg_store_t *s, const char *id, char *err, size_t errlen);

/** Every stored rule in the order saved, rebuilt as they were given to
 *  tg_store_rule_save (*out: free() it, also when *n is 0). Returns 0, or -1
 *  with err. Any thread. */
int tg_store_rules_load(tg_store_t *s, tg_rl_rule_t **out, size_t *n, char *err, size_t errlen);

/* ---- the webhook outbox (src/events/; docs/webhooks.md) ----
 *
 * One row per event and receiver, from the moment the events thread takes
 * the event until the receiver has it (or 24 hours have passed): a
 * restart or a receiver that is down loses none. Each call is its own
 * durable transaction, on the caller's thread (the events thread),
 * independent of the writer thread, like the rules calls. */

typedef struct {
    int64_t seq;    /* the store's number; 0 before tg_store_outbox_add */
    char *event_id; /* the event's id (the receiver's dedup key) */
    char *url;      /* where it goes; the secret is never stored */
    char *type;     /* "alert.fired", ... */
    char *body;     /* the JSON POSTed, byte for byte at every attempt */
    size_t body_len;
    int64_t created_at_ms;
    int attempts;       /* failed attempts so far */
    int64_t next_at_ms; /* not before */
    bool done;          /* tg_store_outbox_settle: delete the row */
} tg_outbox_row_t;

void tg_outbox_rows_free(tg_outbox_row_t *rows, size_t n);

/** Add rows (one transaction; a row whose event_id and url are stored
 *  already is skipped). Returns 0, or -1 with err. */
int tg_store_outbox_add(tg_store_t *s, const tg_outbox_row_t *rows, size_t n, char *err,
                        size_t errlen);

/** Up to `max` rows due at now_ms, earliest first (*out: free with
 *  tg_outbox_rows_free), and in *next_ms the earliest next_at_ms of all
 *  rows (-1: none). Returns 0, or -1 with err. */
int tg_store_outbox_due(tg_store_t *s, int64_t now_ms, size_t max, tg_outbox_row_t **out, size_t *n,
                        int64_t *next_ms, char *err, size_t errlen);

/** Make every row due at now_ms (a start tries what waits at once).
 *  Returns 0, or -1 with err. */
int tg_store_outbox_rewind(tg_store_t *s, int64_t now_ms, char *err, size_t errlen);

/** Delete the rows marked done, store attempts and next_at_ms of the
 *  others, by seq (one transaction). Returns 0, or -1 with err. */
int tg_store_outbox_settle(tg_store_t *s, const tg_outbox_row_t *rows, size_t n, char *err,
                           size_t errlen);
/* ---- budgets (SPEC §11; budget/budget.h) ----
 *
 * The spend of a budget is the sum of recorded cost since its period
 * began, read back at start. Runtime budgets (PUT /api/v1/budgets/...) are
 * kept like the runtime rate limits: saved at once, durably. */

/** One (value, nano-USD) of a spend sum. */
typedef void (*tg_store_spend_fn)(void *arg, const char *value, int64_t nusd);
/** Sum recorded cost of records dated [since_ms, until_ms) per value of
 *  `scope`: "global" (one row, value "*"), "key" (key_name), "user"
 *  (user_id), "property:<Name>" (that property's value). Returns 0, or -1
 *  with err. Any thread. */
int tg_store_spend_sums(tg_store_t *s, const char *scope, int64_t since_ms, int64_t until_ms,
                        tg_store_spend_fn fn, void *arg, char *err, size_t errlen);
/** Save (insert or replace) a runtime budget. 0, or -1 with err. */
int tg_store_budget_save(tg_store_t *s, const char *scope, const char *value,
                         const tg_budget_cfg_t *b, char *err, size_t errlen);
/** 0 deleted, 1 none, -1 error. */
int tg_store_budget_delete(tg_store_t *s, const char *scope, const char *value, char *err,
                           size_t errlen);
typedef void (*tg_store_budget_fn)(void *arg, const char *scope, const char *value,
                                   const tg_budget_cfg_t *b);
/** Every runtime budget, in the order saved. 0, or -1 with err. */
int tg_store_budgets_load(tg_store_t *s, tg_store_budget_fn fn, void *arg, char *err,
                          size_t errlen);

/* ---- virtual keys (/api/v1/keys; auth/keys.h) ---- */

/** Save a new key (its name must not be stored yet). 0, or -1 with err. */
int tg_store_key_save(tg_store_t *s, const tg_vkey_t *k, char *err, size_t errlen);
/** 0 deleted, 1 none, -1 error. */
int tg_store_key_delete(tg_store_t *s, const char *name, char *err, size_t errlen);
/** Every stored key, in the order saved (fn gets a key whose strings live
 *  for the call). 0, or -1 with err. */
int tg_store_keys_load(tg_store_t *s, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                       char *err, size_t errlen);

/* ---- back-end interface ---- */

typedef struct tg_store_backend tg_store_backend_t;

enum {
    TG_STORE_OK = 0,
    TG_STORE_ERETRY = -1,  /* nothing written; the store is unavailable: retry later */
    TG_STORE_EREJECT = -2, /* nothing written; a record in the batch can never be written */
};

/** A page of records (no bodies) and how many match in all. */
typedef struct {
    tg_record_t **items;
    size_t n;
    int64_t total;
} tg_record_list_t;

/** One group of a cost report. Sums skip unknown values. */
typedef struct {
    char *group; /* model, provider, user, "YYYY-MM-DD", property value; NULL = none */
    int64_t requests;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens;
    int64_t reasoning_tokens;
    int64_t cost_nusd;        /* sum of known costs */
    int64_t unpriced;         /* requests with tokens but no price */
    int64_t cache_saved_nusd; /* what its cache hits would have cost */
} tg_cost_row_t;

typedef struct {
    tg_cost_row_t *rows;
    size_t n;
} tg_cost_rows_t;

typedef struct {
    int64_t requests, errors, cache_hits, cache_misses;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens;
    int64_t reasoning_tokens;
    int64_t cost_nusd, priced, unpriced;
    int64_t cache_saved_nusd; /* what the cache hits would have cost */
    int64_t latency_ms[3];    /* p50, p95, p99 (nearest rank); -1 when no data */
    int64_t ttft_ms[3];
} tg_stats_t;

/** One time bucket of a series (GET /api/v1/stats/series). */
typedef struct {
    int64_t requests, errors, cache_hits, cache_misses;
    int64_t prompt_tokens, completion_tokens;
    int64_t cost_nusd;
    int64_t latency_ms[3]; /* p50, p95, p99; -1 when no data */
    int64_t ttft_ms[3];
} tg_series_cell_t;

typedef struct {
    char *group; /* NULL: the whole (ungrouped) series, or records without the key */
    int64_t cost_nusd, requests; /* over every bucket */
    tg_series_cell_t *cells;     /* n_buckets of them */
} tg_series_group_t;

/** Buckets [from_ms + i * bucket_ms, + bucket_ms) for i < n_buckets; groups
 *  by cost, at most max_groups of them (groups_total says how many met). */
typedef struct {
    int64_t from_ms, bucket_ms;
    size_t n_buckets;
    tg_series_group_t *groups;
    size_t n_groups, groups_total;
} tg_series_t;

/** One session (GET /api/v1/sessions). */
typedef struct {
    char *session_id, *name;
    int64_t requests, errors, cost_nusd, prompt_tokens, completion_tokens, latency_ms;
    int64_t first_ms, last_ms;
} tg_session_row_t;

typedef struct {
    tg_session_row_t *rows;
    size_t n;
    int64_t total;
} tg_sessions_t;

typedef struct {
    const char *name;
    /* writer thread: one transaction, all or nothing; records already in
     * the store (same id and created_at) are skipped, so replays are safe */
    int (*write)(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                 size_t errlen);
    /* writer thread: drop and re-establish the write connection after a failure */
    int (*reopen)(tg_store_backend_t *b, char *err, size_t errlen);
    /* any thread, concurrently with writes; 0 or -1 with err */
    int (*list)(tg_store_backend_t *b, const struct tg_query *q, tg_record_list_t *out, char *err,
                size_t errlen);
    /* 0 found, 1 not found, -1 error; the newest record with that id, with bodies */
    int (*get)(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err, size_t errlen);
    int (*costs)(tg_store_backend_t *b, const struct tg_query *q, tg_cost_rows_t *out, char *err,
                 size_t errlen);
    int (*stats)(tg_store_backend_t *b, const struct tg_query *q, tg_stats_t *out, char *err,
                 size_t errlen);
    /* any thread; q->bucket_ms, from and to are set (tg_query_parse) */
    int (*series)(tg_store_backend_t *b, const struct tg_query *q, tg_series_t *out, char *err,
                  size_t errlen);
    /* sessions by their last request, newest first (q->limit, q->offset) */
    int (*sessions)(tg_store_backend_t *b, const struct tg_query *q, tg_sessions_t *out, char *err,
                    size_t errlen);
    /* runtime rate limits, any thread, concurrently with writes; each call
     * is its own durable transaction (see tg_store_rule_save, _delete,
     * tg_store_rules_load for the results). A back-end without them keeps
     * no rules: the calls then fail. */
    int (*rule_save)(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen);
    int (*rule_delete)(tg_store_backend_t *b, const char *id, char *err, size_t errlen);
    int (*rules_load)(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err,
                      size_t errlen);
    /* the webhook outbox, any one thread at a time, concurrently with
     * writes; each call its own durable transaction (tg_store_outbox_add
     * and friends for the results). A back-end without them keeps no
     * outbox: the calls then fail. */
    int (*outbox_add)(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                      size_t errlen);
    int (*outbox_due)(tg_store_backend_t *b, int64_t now_ms, size_t max, tg_outbox_row_t **out,
                      size_t *n, int64_t *next_ms, char *err, size_t errlen);
    int (*outbox_settle)(tg_store_backend_t *b, const tg_outbox_row_t *rows, size_t n, char *err,
                         size_t errlen);
    int (*outbox_rewind)(tg_store_backend_t *b, int64_t now_ms, char *err, size_t errlen);
    /* budgets (tg_store_spend_sums and friends); any thread. A back-end
     * without them keeps no budgets: the calls then fail. */
    int (*spend_sums)(tg_store_backend_t *b, const char *scope, int64_t since_ms, int64_t until_ms,
                      tg_store_spend_fn fn, void *arg, char *err, size_t errlen);
    int (*budget_save)(tg_store_backend_t *b, const char *scope, const char *value,
                       const tg_budget_cfg_t *c, char *err, size_t errlen);
    int (*budget_delete)(tg_store_backend_t *b, const char *scope, const char *value, char *err,
                         size_t errlen);
    int (*budgets_load)(tg_store_backend_t *b, tg_store_budget_fn fn, void *arg, char *err,
                        size_t errlen);
    int (*key_save)(tg_store_backend_t *b, const tg_vkey_t *k, char *err, size_t errlen);
    int (*key_delete)(tg_store_backend_t *b, const char *name, char *err, size_t errlen);
    int (*keys_load)(tg_store_backend_t *b, void (*fn)(void *arg, const tg_vkey_t *k), void *arg,
                     char *err, size_t errlen);
    void (*close)(tg_store_backend_t *b);
} tg_store_ops_t;

struct tg_store_backend {
    const tg_store_ops_t *ops; /* first member of every back-end's state */
};

/** Open the store over a back-end the caller made (tests, future stores).
 *  o->spool_path is then required. Takes ownership of b, even on error. */
int tg_store_open_backend(const tg_store_options_t *o, tg_store_backend_t *b, tg_store_t **out,
                          char *err, size_t errlen);

/** The back-end of an open store (the query API reads through it). */
tg_store_backend_t *tg_store_backend(tg_store_t *s);

/** The SQLite back-end on file `path` (created if missing, WAL mode). */
tg_store_backend_t *tg_store_sqlite_open(const char *path, char *err, size_t errlen);

/** The PostgreSQL back-end on `url` (postgresql://... or postgres://...):
 *  connects, brings the schema up to date (under an advisory lock, so that
 *  several gateways starting at once take turns). NULL with err, the URL's
 *  password masked, when the database cannot be reached or migrated. */
tg_store_backend_t *tg_store_pg_open(const char *url, char *err, size_t errlen);

void tg_record_list_free(tg_record_list_t *l);
void tg_cost_rows_free(tg_cost_rows_t *r);
void tg_series_free(tg_series_t *s);
void tg_sessions_free(tg_sessions_t *s);

#endif
