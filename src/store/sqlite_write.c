/*
 * sqlite_write.c — the SQLite store's write side: the write connection
 * (its pragmas and prepared multi-row INSERTs), a batch of records in one
 * transaction, the write turn it shares with the rule changes, and the
 * checkpointer thread that keeps the WAL bounded. Separate from the reads
 * and the rules because it is the writer thread's own code and holds the
 * store's one hot path.
 *
 * Threads: the store's writer thread (tg_sqlite_write, tg_sqlite_reopen);
 * the checkpointer thread (tg_sqlite_ckpt_main); tg_sqlite_turn_take/give
 * also on the API's worker threads (rule changes).
 */
#include "store/sqlite_internal.h"

#include "core/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_SIZE  8192     /* of a new database */
#define WAL_BYTES  67108864 /* checkpoint when the WAL reaches 64 MiB */
#define INS_ROWS   16       /* rows per multi-row INSERT (write_batch) */
#define INS_WIDE   64       /* and per wide one, for the bulk of a large batch */
#define REQ_PARAMS 29       /* bound values per requests row */

void tg_sqlite_writer_disconnect(sq_t *q)
{
    sqlite3_stmt **stmts[] = {&q->ins_req,    &q->ins_req_n, &q->ins_req_w,
                              &q->ins_prop,   &q->ins_body,  &q->ins_body_n,
                              &q->ins_body_w, &q->max_seq,   &q->has_seq};
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
        tg_sqlite_exec(db, "SELECT count(*) FROM sqlite_schema", msg, sizeof msg) != SQLITE_OK) {
        tg_debug("store: checkpoint: %s", db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return NULL;
    }
    return db;
}

/* PASSIVE checkpoints: they copy what the WAL holds without taking the
 * write lock, so the writer goes on committing meanwhile; the writer's
 * next transaction after one that caught up starts the WAL over. */
void *tg_sqlite_ckpt_main(void *arg)
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
static int prepare_rows(sqlite3 *db, const char *head, const char *row, int n, sqlite3_stmt **st)
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

int tg_sqlite_writer_connect(sq_t *q, bool first, char *err, size_t errlen)
{
    tg_sqlite_writer_disconnect(q);
    create_private(q->path);
    repair_wal_modes(q->path);
    int rc = sqlite3_open_v2(
        q->path, &q->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        tg_sqlite_set_err(err, errlen, q->path, q->w);
        tg_sqlite_writer_disconnect(q);
        return -1;
    }
    /* short: a locked database is a reason to spool, not to stall the writer */
    sqlite3_busy_timeout(q->w, 100);
    char msg[256];
    /* A new database gets 8 KiB pages (a no-op on an existing one, which
     * keeps its size): fewer page writes, WAL frames and B-tree splits than
     * 4 KiB pages for the same records. Not 16 KiB: a body row of 8-16 KB
     * (a streamed answer) fits whole in a 16 KiB page, so every such record
     * took a fresh page of its own, a third of it empty, zeroed, checksummed
     * into the WAL and later checkpointed; in 8 KiB pages it spills into
     * full overflow pages. Small records cost the same in both sizes
     * (docs/observability.md, "The writer's work per record"). Must come
     * before WAL mode, which fixes the page size. */
    tg_sqlite_exec(q->w, "PRAGMA page_size=" TG_STR(PAGE_SIZE), msg, sizeof msg);
    /* WAL needs a writable file the first time; a read-only database that is
     * already in WAL mode still reads. Failures here are not fatal. */
    tg_sqlite_exec(q->w, "PRAGMA journal_mode=WAL", msg, sizeof msg);
    tg_sqlite_exec(q->w, "PRAGMA synchronous=NORMAL", msg, sizeof msg);
    tg_sqlite_exec(q->w, "PRAGMA journal_size_limit=" TG_STR(WAL_BYTES), msg, sizeof msg);
    /* a 64 MiB WAL between checkpoints, whatever the page size: index pages
     * dirtied by many transactions reach the database file once per
     * checkpoint; the checkpointer thread runs them (this replaces SQLite's
     * own checkpoint after a commit, which would run on this thread) */
    q->wal_frames = WAL_BYTES / tg_sqlite_pragma_int(q->w, "PRAGMA page_size", 4096);
    sqlite3_wal_hook(q->w, on_wal_commit, q);
    /* The database is read through mmap (below), so a clean page evicted
     * from this cache costs a copy, not a disk read: the cache mostly holds
     * the pages a transaction dirties. A gateway's records append to the
     * right-most pages of every index, a few dozen pages per transaction;
     * 4 MiB holds them and keeps the gateway under its 30 MB at full load
     * (16 MiB before: ~43 MB). Random inserts (many users and sessions)
     * fill ~17% slower than with 16 MiB (docs/observability.md, "Memory"). */
    tg_sqlite_exec(q->w, "PRAGMA cache_size=-4096", msg, sizeof msg);
    tg_sqlite_exec(q->w, "PRAGMA mmap_size=268435456", msg, sizeof msg);
    /* Debian's SQLite is built with SECURE_DELETE on: every page a B-tree
     * takes anew and every cell a page split moves is overwritten with
     * zeros, a page-sized memset per new page. This connection only ever
     * adds records (a replay's REPLACE of a body writes the same bytes
     * again; the schema steps it runs drop only indexes, whose contents
     * the table rows still hold); what a split moves stays in the database
     * anyway. So nothing it frees held data that is gone elsewhere: the
     * zeroing is pure cost here (15% of the writer's instructions for a
     * 10 KB body in 16 KiB pages). The other connections, which delete
     * settings rows, keep the build's default. */
    tg_sqlite_exec(q->w, "PRAGMA secure_delete=OFF", msg, sizeof msg);
    if (tg_sqlite_migrate(q->w, q->path, err, errlen) != 0) {
        tg_sqlite_writer_disconnect(q);
        return -1;
    }
    if (first && sqlite3_db_readonly(q->w, "main") == 1)
        tg_warn("store: %s is read-only: records are spooled until it can be written", q->path);
    static const char ins_req[] =
        "INSERT OR IGNORE INTO requests(seq, id, created_at, provider, model, model_requested,"
        " route, status, latency_ms, ttft_ms, prompt_tokens, completion_tokens, cached_tokens,"
        " cache_write_tokens, reasoning_tokens, cost_nusd, cache, user_id, session_id,"
        " session_name, session_path, properties, key_name, client_ip, retries,"
        " fallback_index, error, has_error, cache_saved_nusd) VALUES ";
    static const char req_row[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    static const char ins_prop[] = "INSERT OR IGNORE INTO request_properties(seq, name, value,"
                                   " created_at) VALUES ";
    static const char prop_row[] = "(?,?,?,?)";
    static const char ins_body[] =
        "INSERT OR REPLACE INTO request_bodies(seq, request_body, response_body) VALUES ";
    static const char body_row[] = "(?,?,?)";
    if (prepare_rows(q->w, ins_req, req_row, 1, &q->ins_req) ||
        prepare_rows(q->w, ins_req, req_row, INS_ROWS, &q->ins_req_n) ||
        prepare_rows(q->w, ins_req, req_row, INS_WIDE, &q->ins_req_w) ||
        prepare_rows(q->w, ins_prop, prop_row, 1, &q->ins_prop) ||
        prepare_rows(q->w, ins_body, body_row, 1, &q->ins_body) ||
        prepare_rows(q->w, ins_body, body_row, INS_ROWS, &q->ins_body_n) ||
        prepare_rows(q->w, ins_body, body_row, INS_WIDE, &q->ins_body_w) ||
        sqlite3_prepare_v3(q->w, "SELECT coalesce(max(seq), 0) FROM requests", -1,
                           SQLITE_PREPARE_PERSISTENT, &q->max_seq, NULL) ||
        sqlite3_prepare_v3(q->w, "SELECT 1 FROM requests WHERE seq = ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &q->has_seq, NULL)) {
        tg_sqlite_set_err(err, errlen, q->path, q->w);
        tg_sqlite_writer_disconnect(q);
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

void tg_sqlite_bind_str(sqlite3_stmt *st, int i, const char *s)
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
    /* most records have no properties: "{}" then, nothing to build */
    const char *pjson = "{}";
    size_t pjson_len = 2;
    if (r->n_props) {
        tg_buf_reset(props);
        tg_record_props_json(r, props);
        pjson = props->data;
        pjson_len = props->len;
    }
    sqlite3_bind_int64(st, base + 1, seq);
    tg_sqlite_bind_str(st, base + 2, r->id);
    sqlite3_bind_int64(st, base + 3, r->created_at_ms);
    tg_sqlite_bind_str(st, base + 4, r->provider);
    tg_sqlite_bind_str(st, base + 5, r->model);
    tg_sqlite_bind_str(st, base + 6, r->model_requested);
    tg_sqlite_bind_str(st, base + 7, r->route);
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
    tg_sqlite_bind_str(st, base + 18, r->user_id);
    tg_sqlite_bind_str(st, base + 19, r->session_id);
    tg_sqlite_bind_str(st, base + 20, r->session_name);
    tg_sqlite_bind_str(st, base + 21, r->session_path);
    sqlite3_bind_text(st, base + 22, pjson, (int)pjson_len, SQLITE_STATIC);
    tg_sqlite_bind_str(st, base + 23, r->key_name);
    tg_sqlite_bind_str(st, base + 24, r->client_ip);
    sqlite3_bind_int(st, base + 25, r->retries);
    bind_num(st, base + 26, r->fallback_index);
    tg_sqlite_bind_str(st, base + 27, r->error);
    sqlite3_bind_int(st, base + 28, r->error != NULL);
    bind_num(st, base + 29, r->cache_saved_nusd);
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
 * Stores k records (1, INS_ROWS or INS_WIDE) as rows seq0, seq0 + 1, ...: one INSERT
 * for their requests rows, then each stored one's properties and bodies
 * (again one INSERT for the bodies when all k have them). The rows are
 * numbered here, not by SQLite, so that a multi-row INSERT still tells
 * which number each record got. A record already stored (a replay: same
 * id and time) is ignored; when fewer than k rows went in, each number is
 * looked up so nothing is attached to a row that was not written.
 */
static int insert_records(sq_t *q, tg_record_t *const *recs, int k, int64_t seq0, tg_buf_t *props)
{
    sqlite3_stmt *st = k == 1 ? q->ins_req : k == INS_ROWS ? q->ins_req_n : q->ins_req_w;
    sqlite3_stmt *body_st = k == INS_ROWS ? q->ins_body_n : q->ins_body_w;
    for (int j = 0; j < k; j++)
        bind_request(st, j * REQ_PARAMS, recs[j], seq0 + j, &props[j]);
    int rc = step_reset(st);
    if (rc != SQLITE_OK)
        return rc;
    bool all = sqlite3_changes(q->w) == k, bodies = all && k > 1, stored[INS_WIDE];
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
            bind_body(body_st, j * 3, recs[j], seq0 + j);
        return step_reset(body_st);
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

/* Wait for this thread's turn to write (see the top of sqlite.c). */
void tg_sqlite_turn_take(sq_t *q)
{
    pthread_mutex_lock(&q->turn_mu);
    uint64_t mine = q->turn_next++;
    while (q->turn_now != mine)
        pthread_cond_wait(&q->turn_cv, &q->turn_mu);
    pthread_mutex_unlock(&q->turn_mu);
}

void tg_sqlite_turn_give(sq_t *q)
{
    pthread_mutex_lock(&q->turn_mu);
    q->turn_now++;
    pthread_cond_broadcast(&q->turn_cv);
    pthread_mutex_unlock(&q->turn_mu);
}

static int write_batch(sq_t *q, tg_record_t *const *recs, size_t n, char *err, size_t errlen)
{
    if (!q->w && tg_sqlite_writer_connect(q, false, err, errlen) != 0)
        return TG_STORE_ERETRY;
    char msg[256];
    int rc = tg_sqlite_exec(q->w, "BEGIN IMMEDIATE", msg, sizeof msg);
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
    tg_buf_t props[INS_WIDE] = {{0}};
    for (size_t i = 0; i < n && rc == SQLITE_OK;) {
        /* 64 rows to an INSERT: ~2% fewer instructions a record than 16
         * (fewer statement starts, each of which seeks every index anew);
         * 16 and then 1 for what is left */
        int k = n - i >= INS_WIDE ? INS_WIDE : n - i >= INS_ROWS ? INS_ROWS : 1;
        rc = insert_records(q, recs + i, k, seq, props);
        i += (size_t)k;
        seq += k;
    }
    for (int j = 0; j < INS_WIDE; j++)
        tg_buf_free(&props[j]);
    if (rc == SQLITE_OK)
        rc = tg_sqlite_exec(q->w, "COMMIT", msg, sizeof msg);
    else
        snprintf(msg, sizeof msg, "%s", sqlite3_errmsg(q->w));
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg);
        if (!sqlite3_get_autocommit(q->w))
            tg_sqlite_exec(q->w, "ROLLBACK", msg, sizeof msg);
        return classify(rc);
    }
    return TG_STORE_OK;
}

int tg_sqlite_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err,
                    size_t errlen)
{
    sq_t *q = (sq_t *)b;
    tg_sqlite_turn_take(q);
    int rc = write_batch(q, recs, n, err, errlen);
    tg_sqlite_turn_give(q);
    return rc;
}

int tg_sqlite_reopen(tg_store_backend_t *b, char *err, size_t errlen)
{
    return tg_sqlite_writer_connect((sq_t *)b, false, err, errlen);
}
