/*
 * sqlite.c — the SQLite back-end of the request store (see store.h).
 *
 * Owns one write connection (used only by the store's writer thread), a
 * small pool of read-only connections (taken by whichever thread runs a
 * query), and one connection for the runtime rate-limit rules (used by the
 * API's worker threads, one at a time). WAL mode, synchronous=NORMAL for
 * records: a commit survives a process crash at once and an OS crash from
 * the next WAL sync on; readers never block the writer and the writer never
 * blocks readers. Rule changes are single-row transactions with
 * synchronous=FULL (on disk when the API answers) and never checkpoint.
 * Checkpoints (copying the WAL into the database file) run on a thread of
 * their own with its own connection, woken when the writer's commits have
 * grown the WAL past 64 MiB: run on the writer's thread, as SQLite does by
 * default, each one stalled the writer long enough under load for the
 * record queue to overflow into the spool.
 *
 * WAL has one writer at a time. The writer's batches and the rule changes
 * take turns in arrival order (the `turn` ticket) instead of meeting in
 * SQLite's busy handler, which polls: a writer committing batch after batch
 * would starve a rule change there. So a rule change waits for the batch
 * being written at most, and the rules connection needs no other lock.
 *
 * Schema (version 3, PRAGMA user_version):
 *   requests            one row per record, no bodies; UNIQUE(id, created_at)
 *                       makes replays idempotent; one index per filter
 *                       column (col, created_at) — partial for user_id and
 *                       session_id (version 3: no entries for NULL) — and
 *                       requests_time, which
 *                       covers every column the time-range reports read
 *   request_properties  (seq, name, value, created_at), names NOCASE,
 *                       indexed on (name, value, created_at) for filters
 *   request_bodies      bodies by seq, read only for a single record
 *   rate_limit_rules    (version 2) the runtime limits of /api/v1/rate-limits:
 *                       id, property, value, quota, window_s, unit
 *                       ("request", "cents", "token"), created_at; read
 *                       back in rowid (insertion) order
 * Times are ms since the epoch (UTC); cost is nano-USD (INTEGER, exact);
 * unknown numbers are NULL.
 *
 * Invariants: every value reaches SQL through a bound parameter; the SQL
 * text is built only from fixed fragments. A later schema version is added
 * as one more step in `migrations`.
 */
#include "store/store.h"

#include "core/log.h"
#include "store/query.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 3
#define POOL_MAX       8
#define PAGE_SIZE      16384    /* of a new database */
#define WAL_BYTES      67108864 /* checkpoint when the WAL reaches 64 MiB */
#define INS_ROWS       16       /* rows per multi-row INSERT (write_batch) */
#define REQ_PARAMS     28       /* bound values per requests row */

typedef struct {
    tg_store_backend_t base;
    char *path;
    sqlite3 *w;
    /* ins_req_n and ins_body_n insert INS_ROWS rows in one statement;
     * max_seq and has_seq serve write_batch's seq numbering */
    sqlite3_stmt *ins_req, *ins_req_n, *ins_prop, *ins_body, *ins_body_n, *max_seq, *has_seq;
    pthread_mutex_t pool_mu;
    sqlite3 *pool[POOL_MAX];
    int n_pool;
    pthread_mutex_t turn_mu; /* the write turn: a FIFO ticket lock */
    pthread_cond_t turn_cv;
    uint64_t turn_next, turn_now;
    sqlite3 *rules; /* rate-limit rule changes; with the turn; opened on first use */
    /* The checkpointer: a thread with a connection of its own that copies
     * the WAL into the database file once the writer's commits have grown
     * it past WAL_BYTES (on_wal_commit), so that the writer never stalls on
     * a checkpoint (see the top of the file). */
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_want, ckpt_stop;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    int wal_frames; /* WAL_BYTES in frames of this database's page size */
} sq_t;

static const char *migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE requests ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " provider TEXT, model TEXT, model_requested TEXT, route TEXT,"
    " status INTEGER NOT NULL,"
    " latency_ms INTEGER, ttft_ms INTEGER,"
    " prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,"
    " cache_write_tokens INTEGER, reasoning_tokens INTEGER,"
    " cost_nusd INTEGER,"
    " cache INTEGER NOT NULL DEFAULT 0,"
    " user_id TEXT, session_id TEXT, session_name TEXT, session_path TEXT,"
    " properties TEXT NOT NULL DEFAULT '{}',"
    " key_name TEXT, client_ip TEXT,"
    " retries INTEGER NOT NULL DEFAULT 0, fallback_index INTEGER,"
    " error TEXT,"
    " has_error INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX requests_id ON requests(id, created_at);"
    /* time-range reports (stats, costs) read only this index */
    "CREATE INDEX requests_time ON requests(created_at, seq, model, provider, user_id, status,"
    " has_error, cache, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_nusd, latency_ms, ttft_ms);"
    "CREATE INDEX requests_model ON requests(model, created_at);"
    "CREATE INDEX requests_provider ON requests(provider, created_at);"
    "CREATE INDEX requests_status ON requests(status, created_at);"
    "CREATE INDEX requests_user ON requests(user_id, created_at);"
    "CREATE INDEX requests_session ON requests(session_id, created_at);"
    "CREATE TABLE request_properties ("
    " seq INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " value TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (seq, name)) WITHOUT ROWID;"
    "CREATE INDEX request_properties_value ON request_properties(name, value, created_at);"
    "CREATE TABLE request_bodies ("
    " seq INTEGER PRIMARY KEY,"
    " request_body BLOB,"
    " response_body BLOB);",
    /* 1 -> 2 */
    "CREATE TABLE rate_limit_rules ("
    " id TEXT PRIMARY KEY,"
    " property TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " quota INTEGER NOT NULL,"
    " window_s INTEGER NOT NULL,"
    " unit TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);",
    /* 2 -> 3: records without a user or a session (most, for many teams)
     * take no entry in those indexes: two B-tree inserts fewer per record
     * for the writer; a filter on the column (=, IN) implies NOT NULL, so
     * the planner still uses them */
    "DROP INDEX requests_user;"
    "CREATE INDEX requests_user ON requests(user_id, created_at) WHERE user_id IS NOT NULL;"
    "DROP INDEX requests_session;"
    "CREATE INDEX requests_session ON requests(session_id, created_at)"
    " WHERE session_id IS NOT NULL;",
};

#define REC_COLS                                                                                   \
    "r.id, r.created_at, r.provider, r.model, r.model_requested, r.route, r.status,"               \
    " r.latency_ms, r.ttft_ms, r.prompt_tokens, r.completion_tokens, r.cached_tokens,"             \
    " r.cache_write_tokens, r.reasoning_tokens, r.cost_nusd, r.cache, r.user_id, r.session_id,"    \
    " r.session_name, r.session_path, r.properties, r.key_name, r.client_ip, r.retries,"           \
    " r.fallback_index, r.error"
#define REC_NCOLS 26

static void set_err(char *err, size_t errlen, const char *what, sqlite3 *db)
{
    snprintf(err, errlen, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

/* An integer PRAGMA's value (`sql` is "PRAGMA name"), or dflt when it
 * cannot be read. */
static int pragma_int(sqlite3 *db, const char *sql, int dflt)
{
    sqlite3_stmt *st;
    int v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Bring the schema to SCHEMA_VERSION. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int v = pragma_int(db, "PRAGMA user_version", -1);
    if (v < 0) {
        set_err(err, errlen, path, db);
        return -1;
    }
    if (v > SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: schema version %d is newer than this tollgate understands (%d)",
                 path, v, SCHEMA_VERSION);
        return -1;
    }
    if (v == SCHEMA_VERSION)
        return 0;
    if (sqlite3_db_readonly(db, "main") == 1) {
        snprintf(err, errlen, "%s: read-only, cannot create the schema", path);
        return -1;
    }
    char msg[256];
    if (exec(db, "BEGIN IMMEDIATE", msg, sizeof msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if (exec(db, migrations[v], msg, sizeof msg) != SQLITE_OK) {
            snprintf(err, errlen, "%s: schema step %d: %s", path, v + 1, msg);
            exec(db, "ROLLBACK", msg, sizeof msg);
            return -1;
        }
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (exec(db, sql, msg, sizeof msg) != SQLITE_OK || exec(db, "COMMIT", msg, sizeof msg)) {
        snprintf(err, errlen, "%s: %s", path, msg);
        exec(db, "ROLLBACK", msg, sizeof msg);
        return -1;
    }
    return 0;
}

static void writer_disconnect(sq_t *q)
{
    sqlite3_stmt **stmts[] = {&q->ins_req,    &q->ins_req_n, &q->ins_prop, &q->ins_body,
                              &q->ins_body_n, &q->max_seq,   &q->has_seq};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        sqlite3_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
    if (q->w)
        sqlite3_close_v2(q->w);
    q->w = NULL;
}

/*
 * SQLite creates -wal and -shm with the database file's mode. After a spell
 * as a read-only file (chmod 0444) they stay read-only when the database is
 * made writable again, and every write keeps failing: give them the
 * database's mode back. Only adds permissions, only on files we own.
 */
static void repair_wal_modes(const char *path)
{
    struct stat db, aux;
    if (stat(path, &db) != 0 || access(path, W_OK) != 0)
        return;
    static const char *suffix[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        if (stat(p, &aux) == 0 && access(p, W_OK) != 0 && aux.st_uid == geteuid() &&
            chmod(p, (aux.st_mode | db.st_mode) & 0777) == 0)
            tg_info("store: %s made writable again, like the database", p);
    }
}

/* After each of the writer's commits, with the WAL's size in frames. Past
 * WAL_BYTES the checkpointer is woken. Past four times that (it cannot keep
 * up, or it has failed), or without a checkpointer thread, the writer
 * checkpoints itself, as SQLite would, so the WAL stays bounded. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    sq_t *q = arg;
    if (frames < q->wal_frames)
        return SQLITE_OK;
    if (frames >= 4 * q->wal_frames || !q->ckpt_started) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&q->ckpt_mu);
    if (!q->ckpt_want) {
        q->ckpt_want = true;
        pthread_cond_signal(&q->ckpt_cv);
    }
    pthread_mutex_unlock(&q->ckpt_mu);
    return SQLITE_OK;
}

/* The checkpointer's connection, or NULL. A connection learns that the
 * database is in WAL mode (and only then checkpoints it) on its first read. */
static sqlite3 *ckpt_connect(const char *path)
{
    sqlite3 *db = NULL;
    char msg[128];
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        exec(db, "SELECT count(*) FROM sqlite_schema", msg, sizeof msg) != SQLITE_OK) {
        tg_debug("store: checkpoint: %s", db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return NULL;
    }
    return db;
}

/* PASSIVE checkpoints: they copy what the WAL holds without taking the
 * write lock, so the writer goes on committing meanwhile; the writer's
 * next transaction after one that caught up starts the WAL over. */
static void *ckpt_main(void *arg)
{
    sq_t *q = arg;
    sqlite3 *db = NULL;
    pthread_mutex_lock(&q->ckpt_mu);
    for (;;) {
        while (!q->ckpt_want && !q->ckpt_stop)
            pthread_cond_wait(&q->ckpt_cv, &q->ckpt_mu);
        if (q->ckpt_stop)
            break;
        q->ckpt_want = false;
        pthread_mutex_unlock(&q->ckpt_mu);
        if (!db)
            db = ckpt_connect(q->path);
        int rc = db ? sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL)
                    : SQLITE_OK;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) { /* the writer copes; try anew next time */
            tg_debug("store: checkpoint: %s", sqlite3_errmsg(db));
            sqlite3_close_v2(db);
            db = NULL;
        }
        pthread_mutex_lock(&q->ckpt_mu);
    }
    pthread_mutex_unlock(&q->ckpt_mu);
    sqlite3_close_v2(db);
    return NULL;
}

/* Prepares `head` followed by n copies of `row`, comma-separated: an
 * INSERT of n rows. */
static int prepare_rows(sqlite3 *db, const char *head, const char *row, int n,
                        sqlite3_stmt **st)
{
    tg_buf_t sql = {0};
    tg_buf_puts(&sql, head);
    for (int i = 0; i < n; i++) {
        if (i)
            tg_buf_append(&sql, ",", 1);
        tg_buf_puts(&sql, row);
    }
    int rc = sqlite3_prepare_v3(db, sql.data, (int)sql.len, SQLITE_PREPARE_PERSISTENT, st, NULL);
    tg_buf_free(&sql);
    return rc;
}

/* A new database file is made readable by its owner only: it holds every
 * prompt and answer. SQLite gives its -wal and -shm files the database
 * file's mode, so they follow. An existing file keeps the mode it has (the
 * operator may have chosen it). */
static void create_private(const char *path)
{
    if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

static int writer_connect(sq_t *q, bool first, char *err, size_t errlen)
{
    writer_disconnect(q);
    create_private(q->path);
    repair_wal_modes(q->path);
    int rc = sqlite3_open_v2(
        q->path, &q->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, q->path, q->w);
        writer_disconnect(q);
        return -1;
    }
    /* short: a locked database is a reason to spool, not to stall the writer */
    sqlite3_busy_timeout(q->w, 100);
    char msg[256];
    /* A new database gets 16 KiB pages (a no-op on an existing one, which
     * keeps its size): a quarter of the page writes, WAL frames and B-tree
     * splits of 4 KiB pages for the same records, ~15% less writer CPU per
     * record under load (docs/observability.md). Must come before WAL mode,
     * which fixes the page size. */
    exec(q->w, "PRAGMA page_size=" TG_STR(PAGE_SIZE), msg, sizeof msg);
    /* WAL needs a writable file the first time; a read-only database that is
     * already in WAL mode still reads. Failures here are not fatal. */
    exec(q->w, "PRAGMA journal_mode=WAL", msg, sizeof msg);
    exec(q->w, "PRAGMA synchronous=NORMAL", msg, sizeof msg);
    exec(q->w, "PRAGMA journal_size_limit=" TG_STR(WAL_BYTES), msg, sizeof msg);
    /* a 64 MiB WAL between checkpoints, whatever the page size: index pages
     * dirtied by many transactions reach the database file once per
     * checkpoint; the checkpointer thread runs them (this replaces SQLite's
     * own checkpoint after a commit, which would run on this thread) */
    q->wal_frames = WAL_BYTES / pragma_int(q->w, "PRAGMA page_size", 4096);
    sqlite3_wal_hook(q->w, on_wal_commit, q);
    /* Most index inserts land on the right-most pages (times, UUIDv7 ids);
     * the user, session and property indexes take random ones. 16 MiB
     * holds the former and much of the latter: against 64 MiB, a 1M-record
     * store with random users, sessions and properties fills ~6% slower
     * and the gateway's RSS under load is ~65 MB smaller
     * (docs/observability.md, "Memory"). */
    exec(q->w, "PRAGMA cache_size=-16384", msg, sizeof msg);
    exec(q->w, "PRAGMA mmap_size=268435456", msg, sizeof msg);
    if (migrate(q->w, q->path, err, errlen) != 0) {
        writer_disconnect(q);
        return -1;
    }
    if (first && sqlite3_db_readonly(q->w, "main") == 1)
        tg_warn("store: %s is read-only: records are spooled until it can be written", q->path);
    static const char ins_req[] =
        "INSERT OR IGNORE INTO requests(seq, id, created_at, provider, model, model_requested,"
        " route, status, latency_ms, ttft_ms, prompt_tokens, completion_tokens, cached_tokens,"
        " cache_write_tokens, reasoning_tokens, cost_nusd, cache, user_id, session_id,"
        " session_name, session_path, properties, key_name, client_ip, retries,"
        " fallback_index, error, has_error) VALUES ";
    static const char req_row[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    static const char ins_prop[] = "INSERT OR IGNORE INTO request_properties(seq, name, value,"
                                   " created_at) VALUES ";
    static const char prop_row[] = "(?,?,?,?)";
    static const char ins_body[] =
        "INSERT OR REPLACE INTO request_bodies(seq, request_body, response_body) VALUES ";
    static const char body_row[] = "(?,?,?)";
    if (prepare_rows(q->w, ins_req, req_row, 1, &q->ins_req) ||
        prepare_rows(q->w, ins_req, req_row, INS_ROWS, &q->ins_req_n) ||
        prepare_rows(q->w, ins_prop, prop_row, 1, &q->ins_prop) ||
        prepare_rows(q->w, ins_body, body_row, 1, &q->ins_body) ||
        prepare_rows(q->w, ins_body, body_row, INS_ROWS, &q->ins_body_n) ||
        sqlite3_prepare_v3(q->w, "SELECT coalesce(max(seq), 0) FROM requests", -1,
                           SQLITE_PREPARE_PERSISTENT, &q->max_seq, NULL) ||
        sqlite3_prepare_v3(q->w, "SELECT 1 FROM requests WHERE seq = ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &q->has_seq, NULL)) {
        set_err(err, errlen, q->path, q->w);
        writer_disconnect(q);
        return -1;
    }
    return 0;
}

/* ---- writing ---- */

static int classify(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return TG_STORE_EREJECT;
    default: return TG_STORE_ERETRY;
    }
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_num(sqlite3_stmt *st, int i, int64_t v)
{
    if (v < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

static void bind_blob(sqlite3_stmt *st, int i, const char *s, size_t len)
{
    if (s)
        sqlite3_bind_blob64(st, i, s, len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st); /* the next record binds every parameter again */
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Binds one requests row: REQ_PARAMS values from parameter base + 1 on.
 * `props` holds the properties' JSON until the statement has run. */
static void bind_request(sqlite3_stmt *st, int base, const tg_record_t *r, int64_t seq,
                         tg_buf_t *props)
{
    tg_buf_reset(props);
    tg_buf_append(props, "{", 1);
    for (size_t i = 0; i < r->n_props; i++) {
        if (i)
            tg_buf_append(props, ",", 1);
        tg_record_json_str(props, r->props[i].name, strlen(r->props[i].name));
        tg_buf_append(props, ":", 1);
        tg_record_json_str(props, r->props[i].value, strlen(r->props[i].value));
    }
    tg_buf_append(props, "}", 1);
    sqlite3_bind_int64(st, base + 1, seq);
    bind_str(st, base + 2, r->id);
    sqlite3_bind_int64(st, base + 3, r->created_at_ms);
    bind_str(st, base + 4, r->provider);
    bind_str(st, base + 5, r->model);
    bind_str(st, base + 6, r->model_requested);
    bind_str(st, base + 7, r->route);
    sqlite3_bind_int(st, base + 8, r->status);
    bind_num(st, base + 9, r->latency_ms);
    bind_num(st, base + 10, r->ttft_ms);
    bind_num(st, base + 11, r->usage.prompt_tokens);
    bind_num(st, base + 12, r->usage.completion_tokens);
    bind_num(st, base + 13, r->usage.cached_tokens);
    bind_num(st, base + 14, r->usage.cache_write_tokens);
    bind_num(st, base + 15, r->usage.reasoning_tokens);
    bind_num(st, base + 16, r->cost_nusd);
    sqlite3_bind_int(st, base + 17, (int)r->cache);
    bind_str(st, base + 18, r->user_id);
    bind_str(st, base + 19, r->session_id);
    bind_str(st, base + 20, r->session_name);
    bind_str(st, base + 21, r->session_path);
    sqlite3_bind_text(st, base + 22, props->data, (int)props->len, SQLITE_STATIC);
    bind_str(st, base + 23, r->key_name);
    bind_str(st, base + 24, r->client_ip);
    sqlite3_bind_int(st, base + 25, r->retries);
    bind_num(st, base + 26, r->fallback_index);
    bind_str(st, base + 27, r->error);
    sqlite3_bind_int(st, base + 28, r->error != NULL);
}

static void bind_body(sqlite3_stmt *st, int base, const tg_record_t *r, int64_t seq)
{
    sqlite3_bind_int64(st, base + 1, seq);
    bind_blob(st, base + 2, r->request_body, r->request_body_len);
    bind_blob(st, base + 3, r->response_body, r->response_body_len);
}

/* Whether the row numbered seq was stored (not ignored as a replay). */
static int row_stored(sq_t *q, int64_t seq, bool *stored)
{
    sqlite3_bind_int64(q->has_seq, 1, seq);
    int rc = sqlite3_step(q->has_seq);
    *stored = rc == SQLITE_ROW;
    sqlite3_reset(q->has_seq);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Stores k records (1 or INS_ROWS) as rows seq0, seq0 + 1, ...: one INSERT
 * for their requests rows, then each stored one's properties and bodies
 * (again one INSERT for the bodies when all k have them). The rows are
 * numbered here, not by SQLite, so that a multi-row INSERT still tells
 * which number each record got. A record already stored (a replay: same
 * id and time) is ignored; when fewer than k rows went in, each number is
 * looked up so nothing is attached to a row that was not written.
 */
static int insert_records(sq_t *q, tg_record_t *const *recs, int k, int64_t seq0, tg_buf_t *props)
{
    sqlite3_stmt *st = k == 1 ? q->ins_req : q->ins_req_n;
    for (int j = 0; j < k; j++)
        bind_request(st, j * REQ_PARAMS, recs[j], seq0 + j, &props[j]);
    int rc = step_reset(st);
    if (rc != SQLITE_OK)
        return rc;
    bool all = sqlite3_changes(q->w) == k, bodies = all && k > 1, stored[INS_ROWS];
    for (int j = 0; j < k; j++) {
        const tg_record_t *r = recs[j];
        stored[j] = true;
        if (!all && (rc = row_stored(q, seq0 + j, &stored[j])) != SQLITE_OK)
            return rc;
        if (!stored[j])
            continue;
        for (size_t i = 0; i < r->n_props; i++) {
            sqlite3_bind_int64(q->ins_prop, 1, seq0 + j);
            sqlite3_bind_text(q->ins_prop, 2, r->props[i].name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q->ins_prop, 3, r->props[i].value, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q->ins_prop, 4, r->created_at_ms);
            if ((rc = step_reset(q->ins_prop)) != SQLITE_OK)
                return rc;
        }
        bodies = bodies && (r->request_body || r->response_body);
    }
    if (bodies) {
        for (int j = 0; j < k; j++)
            bind_body(q->ins_body_n, j * 3, recs[j], seq0 + j);
        return step_reset(q->ins_body_n);
    }
    for (int j = 0; j < k; j++) {
        if (!stored[j] || (!recs[j]->request_body && !recs[j]->response_body))
            continue;
        bind_body(q->ins_body, 0, recs[j], seq0 + j);
        if ((rc = step_reset(q->ins_body)) != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Wait for this thread's turn to write (see the top of the file). */
static void turn_take(sq_t *q)
{
    pthread_mutex_lock(&q->turn_mu);
    uint64_t mine = q->turn_next++;
    while (q->turn_now != mine)
        pthread_cond_wait(&q->turn_cv, &q->turn_mu);
    pthread_mutex_unlock(&q->turn_mu);
}

static void turn_give(sq_t *q)
{
    pthread_mutex_lock(&q->turn_mu);
    q->turn_now++;
    pthread_cond_broadcast(&q->turn_cv);
    pthread_mutex_unlock(&q->turn_mu);
}

static int write_batch(sq_t *q, tg_record_t *const *recs, size_t n, char *err, size_t errlen)
{
    if (!q->w && writer_connect(q, false, err, errlen) != 0)
        return TG_STORE_ERETRY;
    char msg[256];
    int rc = exec(q->w, "BEGIN IMMEDIATE", msg, sizeof msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "begin: %s", msg);
        return classify(rc);
    }
    /* the next free row number: the records take the next n */
    int64_t seq = 0;
    if ((rc = sqlite3_step(q->max_seq)) == SQLITE_ROW) {
        seq = sqlite3_column_int64(q->max_seq, 0) + 1;
        rc = SQLITE_OK;
    }
    sqlite3_reset(q->max_seq);
    tg_buf_t props[INS_ROWS] = {{0}};
    for (size_t i = 0; i < n && rc == SQLITE_OK;) {
        int k = n - i >= INS_ROWS ? INS_ROWS : 1;
        rc = insert_records(q, recs + i, k, seq, props);
        i += (size_t)k;
        seq += k;
    }
    for (int j = 0; j < INS_ROWS; j++)
        tg_buf_free(&props[j]);
    if (rc == SQLITE_OK)
        rc = exec(q->w, "COMMIT", msg, sizeof msg);
    else
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(q->w));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg);
        if (!sqlite3_get_autocommit(q->w))
            exec(q->w, "ROLLBACK", msg, sizeof msg);
        return classify(rc);
    }
    return TG_STORE_OK;
}

static int sq_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                    size_t errlen)
{
    sq_t *q = (sq_t *)b;
    turn_take(q);
    int rc = write_batch(q, recs, n, err, errlen);
    turn_give(q);
    return rc;
}

static int sq_reopen(tg_store_backend_t *b, char *err, size_t errlen)
{
    return writer_connect((sq_t *)b, false, err, errlen);
}

/* ---- reading ---- */

static sqlite3 *reader_get(sq_t *q, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    pthread_mutex_lock(&q->pool_mu);
    if (q->n_pool)
        db = q->pool[--q->n_pool];
    pthread_mutex_unlock(&q->pool_mu);
    if (db)
        return db;
    if (sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, q->path, db);
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 2000);
    char msg[128];
    exec(db, "PRAGMA mmap_size=268435456", msg, sizeof msg);
    exec(db, "PRAGMA cache_size=-16000", msg, sizeof msg);
    return db;
}

static void reader_put(sq_t *q, sqlite3 *db)
{
    pthread_mutex_lock(&q->pool_mu);
    if (q->n_pool < POOL_MAX) {
        q->pool[q->n_pool++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&q->pool_mu);
    if (db)
        sqlite3_close_v2(db);
}

/* SQL text plus the values to bind to its '?'s, in order. */
typedef struct {
    bool is_text;
    int64_t i;
    const char *s;
} bval_t;

typedef struct {
    tg_buf_t sql;
    bval_t *v;
    size_t n, cap;
} sqlb_t;

static void sb(sqlb_t *b, const char *s)
{
    tg_buf_puts(&b->sql, s);
}

static bval_t *sb_val(sqlb_t *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = tg_xrealloc(b->v, b->cap * sizeof *b->v);
    }
    tg_buf_puts(&b->sql, "?");
    bval_t *v = &b->v[b->n++];
    memset(v, 0, sizeof *v);
    return v;
}

static void sb_int(sqlb_t *b, int64_t x)
{
    sb_val(b)->i = x;
}

static void sb_text(sqlb_t *b, const char *s)
{
    bval_t *v = sb_val(b);
    v->is_text = true;
    v->s = s;
}

static void sb_in(sqlb_t *b, const char *col, const tg_strlist_t *l)
{
    if (!l->n)
        return;
    sb(b, " AND ");
    sb(b, col);
    sb(b, " IN (");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            sb(b, ",");
        sb_text(b, l->v[i]);
    }
    sb(b, ")");
}

static void sb_free(sqlb_t *b)
{
    tg_buf_free(&b->sql);
    free(b->v);
}

static int sb_prepare(sqlite3 *db, sqlb_t *b, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db, b->sql.data, (int)b->sql.len, st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "query", db);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].is_text)
            sqlite3_bind_text(*st, (int)i + 1, b->v[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*st, (int)i + 1, b->v[i].i);
    }
    return 0;
}

static bool has_record_filters(const tg_query_t *q)
{
    return q->models.n || q->providers.n || q->user_ids.n || q->session_ids.n || q->n_status ||
           q->status_error || q->status_success;
}

/*
 * " FROM ... WHERE ..." for the filters of q. With a property filter the
 * first property drives the query through its (name, value, created_at)
 * index; then `need_r` false (a count with only property and time filters)
 * leaves the requests table out altogether. `group_prop` adds "pg", the
 * grouping property (LEFT JOIN: records without it form the null group).
 */
static void from_where(sqlb_t *b, const tg_query_t *q, const char *group_prop, bool need_r)
{
    const char *tcol, *seq = "r.seq";
    size_t first_prop = 0;
    if (q->n_props && !need_r && !group_prop && !has_record_filters(q)) {
        sb(b, " FROM request_properties p0");
        tcol = "p0.created_at";
        seq = "p0.seq";
        first_prop = 1;
    } else if (q->n_props) {
        sb(b, " FROM request_properties p0 JOIN requests r ON r.seq = p0.seq");
        tcol = "p0.created_at";
        first_prop = 1;
    } else {
        sb(b, " FROM requests r");
        tcol = "r.created_at";
    }
    if (group_prop) {
        sb(b, " LEFT JOIN request_properties pg ON pg.seq = r.seq AND pg.name = ");
        sb_text(b, group_prop);
    }
    sb(b, " WHERE 1");
    if (q->n_props) {
        sb(b, " AND p0.name = ");
        sb_text(b, q->props[0].name);
        sb_in(b, "p0.value", &q->props[0].values);
    }
    if (q->has_from) {
        sb(b, " AND ");
        sb(b, tcol);
        sb(b, " >= ");
        sb_int(b, q->from_ms);
    }
    if (q->has_to) {
        sb(b, " AND ");
        sb(b, tcol);
        sb(b, " < ");
        sb_int(b, q->to_ms);
    }
    sb_in(b, "r.model", &q->models);
    sb_in(b, "r.provider", &q->providers);
    sb_in(b, "r.user_id", &q->user_ids);
    sb_in(b, "r.session_id", &q->session_ids);
    if (q->n_status || q->status_error || q->status_success) {
        sb(b, " AND (0");
        for (size_t i = 0; i < q->n_status; i++) {
            sb(b, " OR r.status BETWEEN ");
            sb_int(b, q->status[i].lo);
            sb(b, " AND ");
            sb_int(b, q->status[i].hi);
        }
        if (q->status_error)
            sb(b, " OR r.status >= 400 OR r.has_error");
        if (q->status_success)
            sb(b, " OR (r.status < 400 AND NOT r.has_error)");
        sb(b, ")");
    }
    for (size_t i = first_prop; i < q->n_props; i++) {
        sb(b, " AND EXISTS (SELECT 1 FROM request_properties px WHERE px.seq = ");
        sb(b, seq);
        sb(b, " AND px.name = ");
        sb_text(b, q->props[i].name);
        sb_in(b, "px.value", &q->props[i].values);
        sb(b, ")");
    }
}

static char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? tg_xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

static int64_t col_num(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static tg_record_t *row_record(sqlite3_stmt *st)
{
    tg_record_t *r = tg_xcalloc(1, sizeof *r);
    r->id = col_str(st, 0);
    r->created_at_ms = sqlite3_column_int64(st, 1);
    r->provider = col_str(st, 2);
    r->model = col_str(st, 3);
    r->model_requested = col_str(st, 4);
    r->route = col_str(st, 5);
    r->status = sqlite3_column_int(st, 6);
    r->latency_ms = col_num(st, 7);
    r->ttft_ms = col_num(st, 8);
    r->usage.prompt_tokens = (long)col_num(st, 9);
    r->usage.completion_tokens = (long)col_num(st, 10);
    r->usage.cached_tokens = (long)col_num(st, 11);
    r->usage.cache_write_tokens = (long)col_num(st, 12);
    r->usage.reasoning_tokens = (long)col_num(st, 13);
    r->cost_nusd = col_num(st, 14);
    int c = sqlite3_column_int(st, 15);
    r->cache = c == TG_RECORD_CACHE_HIT || c == TG_RECORD_CACHE_MISS ? (tg_record_cache_t)c
                                                                     : TG_RECORD_CACHE_NONE;
    r->user_id = col_str(st, 16);
    r->session_id = col_str(st, 17);
    r->session_name = col_str(st, 18);
    r->session_path = col_str(st, 19);
    const char *props = (const char *)sqlite3_column_text(st, 20);
    if (props && strcmp(props, "{}") != 0) {
        json_t *o = json_loadb(props, (size_t)sqlite3_column_bytes(st, 20), 0, NULL);
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            if (json_is_string(v))
                tg_record_set_property(r, k, json_string_value(v));
        }
        json_decref(o);
    }
    r->key_name = col_str(st, 21);
    r->client_ip = col_str(st, 22);
    r->retries = sqlite3_column_int(st, 23);
    r->fallback_index = (int)col_num(st, 24);
    r->error = col_str(st, 25);
    return r;
}

static int sq_list(tg_store_backend_t *b, const tg_query_t *q, tg_record_list_t *out, char *err,
                   size_t errlen)
{
    sq_t *s = (sq_t *)b;
    memset(out, 0, sizeof *out);
    sqlite3 *db = reader_get(s, err, errlen);
    if (!db)
        return -1;
    int ret = -1;
    sqlite3_stmt *st = NULL;
    sqlb_t c = {0}, l = {0};
    /* the total */
    sb(&c, "SELECT count(*)");
    from_where(&c, q, NULL, false);
    if (sb_prepare(db, &c, &st, err, errlen) != 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        set_err(err, errlen, "count", db);
        goto out;
    }
    out->total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    /* the page, newest first: the page's seqs from an index alone (a deep
     * offset skips index entries, not table rows), then their rows */
    sb(&l, "SELECT " REC_COLS " FROM requests r WHERE r.seq IN (SELECT ");
    sb(&l, q->n_props ? "p0.seq" : "r.seq");
    from_where(&l, q, NULL, false);
    sb(&l, q->n_props ? " ORDER BY p0.created_at DESC, p0.seq DESC"
                      : " ORDER BY r.created_at DESC, r.seq DESC");
    sb(&l, " LIMIT ");
    sb_int(&l, q->limit);
    sb(&l, " OFFSET ");
    sb_int(&l, q->offset);
    sb(&l, ") ORDER BY r.created_at DESC, r.seq DESC");
    if (sb_prepare(db, &l, &st, err, errlen) != 0)
        goto out;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->items = tg_xrealloc(out->items, cap * sizeof *out->items);
        }
        out->items[out->n++] = row_record(st);
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "list", db);
        tg_record_list_free(out);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    sb_free(&c);
    sb_free(&l);
    reader_put(s, db);
    return ret;
}

static int sq_get(tg_store_backend_t *b, const char *id, tg_record_t **out, char *err,
                  size_t errlen)
{
    sq_t *s = (sq_t *)b;
    *out = NULL;
    sqlite3 *db = reader_get(s, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    static const char sql[] = "SELECT " REC_COLS ", b.request_body, b.response_body"
                              " FROM requests r LEFT JOIN request_bodies b ON b.seq = r.seq"
                              " WHERE r.id = ? ORDER BY r.created_at DESC LIMIT 1";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "get", db);
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = 1;
    } else if (rc == SQLITE_ROW) {
        tg_record_t *r = row_record(st);
        for (int i = 0; i < 2; i++) {
            if (sqlite3_column_type(st, REC_NCOLS + i) == SQLITE_NULL)
                continue;
            const void *p = sqlite3_column_blob(st, REC_NCOLS + i);
            size_t n = (size_t)sqlite3_column_bytes(st, REC_NCOLS + i);
            tg_record_set_body(r, i == 1, p ? p : "", n, -1);
        }
        *out = r;
        ret = 0;
    } else {
        set_err(err, errlen, "get", db);
    }
out:
    sqlite3_finalize(st);
    reader_put(s, db);
    return ret;
}

/* Cost groups, aggregated in C: SQLite's GROUP BY sorts every row of the
 * range through a temporary b-tree, a hash table over a few hundred groups
 * is several times faster. */
typedef struct {
    tg_cost_row_t *rows;
    size_t n, cap;
    uint32_t *slots; /* index + 1 into rows; 0 = empty */
    size_t n_slots;
    ssize_t null_row; /* the group of records without the key, -1 none yet */
} groups_t;

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Keep the hash table at most half full (the null group is not in it). */
static void group_grow(groups_t *g)
{
    if (g->n * 2 < g->n_slots)
        return;
    size_t ns = g->n_slots ? g->n_slots * 2 : 64;
    uint32_t *sl = tg_xcalloc(ns, sizeof *sl);
    for (size_t i = 0; i < g->n; i++) {
        const char *k = g->rows[i].group;
        if (!k)
            continue;
        size_t j = fnv1a(k, strlen(k)) & (ns - 1);
        while (sl[j])
            j = (j + 1) & (ns - 1);
        sl[j] = (uint32_t)i + 1;
    }
    free(g->slots);
    g->slots = sl;
    g->n_slots = ns;
}

static tg_cost_row_t *group_new(groups_t *g, const char *key, size_t len)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->rows = tg_xrealloc(g->rows, g->cap * sizeof *g->rows);
    }
    tg_cost_row_t *row = &g->rows[g->n++];
    memset(row, 0, sizeof *row);
    row->group = key ? tg_xstrndup(key, len) : NULL;
    return row;
}

/* The row of group `key` (NULL: records without it), created on first use. */
static tg_cost_row_t *group_find(groups_t *g, const char *key, size_t len)
{
    if (!key) {
        if (g->null_row < 0) {
            g->null_row = (ssize_t)g->n;
            group_new(g, NULL, 0);
        }
        return &g->rows[g->null_row];
    }
    group_grow(g);
    size_t mask = g->n_slots - 1, j = fnv1a(key, len) & mask;
    while (g->slots[j]) {
        tg_cost_row_t *row = &g->rows[g->slots[j] - 1];
        if (row->group && strlen(row->group) == len && !memcmp(row->group, key, len))
            return row;
        j = (j + 1) & mask;
    }
    g->slots[j] = (uint32_t)g->n + 1;
    return group_new(g, key, len);
}

static int cmp_by_cost(const void *a, const void *b)
{
    const tg_cost_row_t *x = a, *y = b;
    if (x->cost_nusd != y->cost_nusd)
        return x->cost_nusd > y->cost_nusd ? -1 : 1;
    if (x->requests != y->requests)
        return x->requests > y->requests ? -1 : 1;
    if (!x->group || !y->group)
        return !x->group - !y->group; /* the null group last */
    return strcmp(x->group, y->group);
}

static int cmp_by_key(const void *a, const void *b)
{
    const tg_cost_row_t *x = a, *y = b;
    if (!x->group || !y->group)
        return !x->group - !y->group;
    return strcmp(x->group, y->group);
}

static int sq_costs(tg_store_backend_t *b, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                    size_t errlen)
{
    sq_t *s = (sq_t *)b;
    memset(out, 0, sizeof *out);
    sqlite3 *db = reader_get(s, err, errlen);
    if (!db)
        return -1;
    const char *g;
    switch (q->group_by) {
    case TG_GROUP_MODEL: g = "r.model"; break;
    case TG_GROUP_PROVIDER: g = "r.provider"; break;
    case TG_GROUP_USER: g = "r.user_id"; break;
    case TG_GROUP_DAY: g = "r.created_at / 86400000"; break;
    case TG_GROUP_PROPERTY: g = "pg.value"; break;
    default: g = NULL; break;
    }
    sqlb_t x = {0};
    if (g) {
        sb(&x, "SELECT ");
        sb(&x, g);
        sb(&x, ", r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,"
               " r.reasoning_tokens, r.cost_nusd");
    } else {
        sb(&x, "SELECT NULL, count(*), sum(r.prompt_tokens), sum(r.completion_tokens),"
               " sum(r.cached_tokens), sum(r.cache_write_tokens), sum(r.reasoning_tokens),"
               " sum(r.cost_nusd), sum(r.cost_nusd IS NULL AND r.prompt_tokens IS NOT NULL)");
    }
    from_where(&x, q, q->group_by == TG_GROUP_PROPERTY ? q->group_prop : NULL, true);
    sqlite3_stmt *st = NULL;
    int ret = -1, rc;
    groups_t gs = {.null_row = -1};
    if (sb_prepare(db, &x, &st, err, errlen) != 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!g) { /* one row of sums */
            tg_cost_row_t *row = group_new(&gs, NULL, 0);
            row->requests = sqlite3_column_int64(st, 1);
            row->prompt_tokens = sqlite3_column_int64(st, 2);
            row->completion_tokens = sqlite3_column_int64(st, 3);
            row->cached_tokens = sqlite3_column_int64(st, 4);
            row->cache_write_tokens = sqlite3_column_int64(st, 5);
            row->reasoning_tokens = sqlite3_column_int64(st, 6);
            row->cost_nusd = sqlite3_column_int64(st, 7);
            row->unpriced = sqlite3_column_int64(st, 8);
            continue;
        }
        tg_cost_row_t *row;
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
            row = group_find(&gs, NULL, 0);
        } else if (q->group_by == TG_GROUP_DAY) {
            char day[24];
            int n = snprintf(day, sizeof day, "%lld", (long long)sqlite3_column_int64(st, 0));
            row = group_find(&gs, day, (size_t)n);
        } else {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            row = group_find(&gs, k, (size_t)sqlite3_column_bytes(st, 0));
        }
        int64_t v, prompt = col_num(st, 1);
        row->requests++;
        row->prompt_tokens += prompt > 0 ? prompt : 0;
        row->completion_tokens += (v = col_num(st, 2)) > 0 ? v : 0;
        row->cached_tokens += (v = col_num(st, 3)) > 0 ? v : 0;
        row->cache_write_tokens += (v = col_num(st, 4)) > 0 ? v : 0;
        row->reasoning_tokens += (v = col_num(st, 5)) > 0 ? v : 0;
        if ((v = col_num(st, 6)) >= 0)
            row->cost_nusd += v;
        else if (prompt >= 0)
            row->unpriced++;
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "costs", db);
        for (size_t i = 0; i < gs.n; i++)
            free(gs.rows[i].group);
        free(gs.rows);
        goto out;
    }
    if (q->group_by == TG_GROUP_DAY) {
        for (size_t i = 0; i < gs.n; i++) {
            if (!gs.rows[i].group)
                continue;
            int64_t y;
            unsigned m, d;
            tg_record_civil_from_days(strtoll(gs.rows[i].group, NULL, 10), &y, &m, &d);
            char day[32];
            snprintf(day, sizeof day, "%04lld-%02u-%02u", (long long)y, m, d);
            free(gs.rows[i].group);
            gs.rows[i].group = tg_xstrdup(day);
        }
        qsort(gs.rows, gs.n, sizeof *gs.rows, cmp_by_key);
    } else if (g) {
        qsort(gs.rows, gs.n, sizeof *gs.rows, cmp_by_cost);
    }
    out->rows = gs.rows;
    out->n = gs.n;
    ret = 0;
out:
    free(gs.slots);
    sqlite3_finalize(st);
    sb_free(&x);
    reader_put(s, db);
    return ret;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentiles p50, p95, p99 of v[0..n). */
static void percentiles(int64_t *v, size_t n, int64_t out[3])
{
    static const int ps[3] = {50, 95, 99};
    if (!n) {
        out[0] = out[1] = out[2] = -1;
        return;
    }
    qsort(v, n, sizeof *v, cmp_i64);
    for (int i = 0; i < 3; i++) {
        size_t rank = (ps[i] * n + 99) / 100; /* ceil(p/100 * n), 1-based */
        out[i] = v[rank ? rank - 1 : 0];
    }
}

static int sq_stats(tg_store_backend_t *b, const tg_query_t *q, tg_stats_t *out, char *err,
                    size_t errlen)
{
    sq_t *s = (sq_t *)b;
    memset(out, 0, sizeof *out);
    sqlite3 *db = reader_get(s, err, errlen);
    if (!db)
        return -1;
    sqlb_t x = {0};
    sb(&x, "SELECT r.status, r.has_error, r.cache, r.latency_ms, r.ttft_ms,"
           " r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,"
           " r.reasoning_tokens, r.cost_nusd");
    from_where(&x, q, NULL, true);
    sqlite3_stmt *st = NULL;
    int64_t *lat = NULL, *ttft = NULL;
    size_t n_lat = 0, n_ttft = 0, cap = 0;
    int ret = -1, rc;
    if (sb_prepare(db, &x, &st, err, errlen) != 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->requests++;
        if (sqlite3_column_int(st, 0) >= 400 || sqlite3_column_int(st, 1))
            out->errors++;
        int cache = sqlite3_column_int(st, 2);
        out->cache_hits += cache == TG_RECORD_CACHE_HIT;
        out->cache_misses += cache == TG_RECORD_CACHE_MISS;
        if (out->requests > (int64_t)cap) {
            cap = cap ? cap * 2 : 1024;
            lat = tg_xrealloc(lat, cap * sizeof *lat);
            ttft = tg_xrealloc(ttft, cap * sizeof *ttft);
        }
        int64_t v;
        if ((v = col_num(st, 3)) >= 0)
            lat[n_lat++] = v;
        if ((v = col_num(st, 4)) >= 0)
            ttft[n_ttft++] = v;
        int64_t prompt = col_num(st, 5);
        out->prompt_tokens += prompt > 0 ? prompt : 0;
        out->completion_tokens += (v = col_num(st, 6)) > 0 ? v : 0;
        out->cached_tokens += (v = col_num(st, 7)) > 0 ? v : 0;
        out->cache_write_tokens += (v = col_num(st, 8)) > 0 ? v : 0;
        out->reasoning_tokens += (v = col_num(st, 9)) > 0 ? v : 0;
        if ((v = col_num(st, 10)) >= 0) {
            out->cost_nusd += v;
            out->priced++;
        } else if (prompt >= 0) {
            out->unpriced++;
        }
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "stats", db);
        goto out;
    }
    percentiles(lat, n_lat, out->latency_ms);
    percentiles(ttft, n_ttft, out->ttft_ms);
    ret = 0;
out:
    free(lat);
    free(ttft);
    sqlite3_finalize(st);
    sb_free(&x);
    reader_put(s, db);
    return ret;
}

/* ---- runtime rate-limit rules ---- */

/* The rules connection, opened on first use. With the turn. */
static sqlite3 *rules_db(sq_t *q, char *err, size_t errlen)
{
    if (q->rules)
        return q->rules;
    if (sqlite3_open_v2(q->path, &q->rules, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, q->path, q->rules);
        sqlite3_close_v2(q->rules);
        q->rules = NULL;
        return NULL;
    }
    /* only another process can hold the lock now: wait a little, not forever */
    sqlite3_busy_timeout(q->rules, 2000);
    char msg[128];
    exec(q->rules, "PRAGMA synchronous=FULL", msg, sizeof msg);
    exec(q->rules, "PRAGMA wal_autocheckpoint=0", msg, sizeof msg);
    return q->rules;
}

/* Run one statement on the rules connection: 0 and *changes, or -1 with err.
 * A failed connection is dropped, so the next call starts afresh (as the
 * writer does after a spell of a read-only or locked database). */
static int rules_exec(sq_t *q, const char *sql, const tg_rl_rule_t *r, const char *id, int *changes,
                      char *err, size_t errlen)
{
    turn_take(q);
    int ret = -1;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = rules_db(q, err, errlen);
    if (!db)
        goto out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "rate_limit_rules", db);
        goto out;
    }
    if (r) {
        bind_str(st, 1, r->id);
        bind_str(st, 2, r->property);
        bind_str(st, 3, r->value);
        sqlite3_bind_int64(st, 4, r->policy.quota);
        sqlite3_bind_int64(st, 5, r->policy.window_s);
        bind_str(st, 6, tg_rl_unit_name(r->policy.unit));
        sqlite3_bind_int64(st, 7, tg_wall_ms());
    } else {
        bind_str(st, 1, id);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        set_err(err, errlen, "rate_limit_rules", db);
        goto out;
    }
    *changes = sqlite3_changes(db);
    ret = 0;
out:
    sqlite3_finalize(st);
    if (ret != 0 && q->rules) {
        sqlite3_close_v2(q->rules);
        q->rules = NULL;
    }
    turn_give(q);
    return ret;
}

static int sq_rule_save(tg_store_backend_t *b, const tg_rl_rule_t *rule, char *err, size_t errlen)
{
    int changes = 0;
    return rules_exec((sq_t *)b,
                      "INSERT INTO rate_limit_rules(id, property, value, quota, window_s, unit,"
                      " created_at) VALUES (?,?,?,?,?,?,?)",
                      rule, NULL, &changes, err, errlen);
}

static int sq_rule_delete(tg_store_backend_t *b, const char *id, char *err, size_t errlen)
{
    int changes = 0;
    if (rules_exec((sq_t *)b, "DELETE FROM rate_limit_rules WHERE id = ?", NULL, id, &changes, err,
                   errlen) != 0)
        return -1;
    return changes ? 0 : 1;
}

/* Column i as text into dst[cap]: false when NULL, empty or too long. */
static bool col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!v || !n || n >= cap || memchr(v, 0, n))
        return false;
    memcpy(dst, v, n + 1);
    return true;
}

static int sq_rules_load(tg_store_backend_t *b, tg_rl_rule_t **out, size_t *n, char *err,
                         size_t errlen)
{
    sq_t *q = (sq_t *)b;
    *out = NULL;
    *n = 0;
    sqlite3 *db = reader_get(q, err, errlen);
    if (!db)
        return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1, rc;
    size_t cap = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, property, value, quota, window_s, unit"
                           " FROM rate_limit_rules ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errlen, "rate_limit_rules", db);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tg_rl_rule_t r;
        memset(&r, 0, sizeof r);
        const char *unit = (const char *)sqlite3_column_text(st, 5);
        r.policy.quota = sqlite3_column_int64(st, 3);
        r.policy.window_s = sqlite3_column_int64(st, 4);
        if (!col_copy(st, 0, r.id, sizeof r.id) ||
            !col_copy(st, 1, r.property, sizeof r.property) ||
            !col_copy(st, 2, r.value, sizeof r.value) || r.policy.quota < 1 ||
            r.policy.window_s < 1 || !unit ||
            tg_rl_unit_parse(unit, (size_t)sqlite3_column_bytes(st, 5), &r.policy.unit) < 0) {
            /* only a hand-edited row can look like this */
            tg_warn("store: rate_limit_rules row %.40s is not a valid rule; skipped",
                    sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "?");
            continue;
        }
        tg_rl_rule_normalize(&r);
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = tg_xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = r;
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errlen, "rate_limit_rules", db);
        free(*out);
        *out = NULL;
        *n = 0;
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    reader_put(q, db);
    return ret;
}

static void sq_close(tg_store_backend_t *b)
{
    sq_t *q = (sq_t *)b;
    if (q->ckpt_started) {
        pthread_mutex_lock(&q->ckpt_mu);
        q->ckpt_stop = true;
        pthread_cond_signal(&q->ckpt_cv);
        pthread_mutex_unlock(&q->ckpt_mu);
        pthread_join(q->ckpt_thread, NULL);
    }
    if (q->w) {
        char msg[128];
        exec(q->w, "PRAGMA optimize", msg, sizeof msg); /* keeps the planner's statistics fresh */
    }
    writer_disconnect(q);
    for (int i = 0; i < q->n_pool; i++)
        sqlite3_close_v2(q->pool[i]);
    if (q->rules)
        sqlite3_close_v2(q->rules);
    pthread_mutex_destroy(&q->pool_mu);
    pthread_mutex_destroy(&q->turn_mu);
    pthread_cond_destroy(&q->turn_cv);
    pthread_mutex_destroy(&q->ckpt_mu);
    pthread_cond_destroy(&q->ckpt_cv);
    free(q->path);
    free(q);
}

static const tg_store_ops_t sqlite_ops = {
    .name = "sqlite",
    .write = sq_write,
    .reopen = sq_reopen,
    .list = sq_list,
    .get = sq_get,
    .costs = sq_costs,
    .stats = sq_stats,
    .rule_save = sq_rule_save,
    .rule_delete = sq_rule_delete,
    .rules_load = sq_rules_load,
    .close = sq_close,
};

/* SQLite keeps memory statistics (sqlite3_status) behind a global mutex it
 * takes on every allocation; nothing here reads them. Only possible before
 * SQLite initializes, so on the first open (later: SQLITE_MISUSE, no harm). */
static void sqlite_global_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

tg_store_backend_t *tg_store_sqlite_open(const char *path, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_config);
    sq_t *q = tg_xcalloc(1, sizeof *q);
    q->base.ops = &sqlite_ops;
    q->path = tg_xstrdup(path);
    pthread_mutex_init(&q->pool_mu, NULL);
    pthread_mutex_init(&q->turn_mu, NULL);
    pthread_cond_init(&q->turn_cv, NULL);
    pthread_mutex_init(&q->ckpt_mu, NULL);
    pthread_cond_init(&q->ckpt_cv, NULL);
    if (writer_connect(q, true, err, errlen) != 0) {
        sq_close(&q->base);
        return NULL;
    }
    q->ckpt_started = pthread_create(&q->ckpt_thread, NULL, ckpt_main, q) == 0;
    return &q->base;
}
