/*
 * pg_write.c — the PostgreSQL store's write side: the writer's connection
 * and a batch of records in one transaction. The batch goes to the server
 * as COPY data into two temporary tables (records, properties), then one
 * prepared statement moves it into the store: INSERT ... SELECT ... ON
 * CONFLICT (id, created_at) DO NOTHING, and the properties and bodies of
 * the rows it inserted. A record already stored (a spool or journal
 * replay, the same record written by an earlier attempt whose commit
 * answer was lost) is skipped with everything attached to it, so replays
 * are safe. Row numbers (seq) come from the table's identity, so several
 * gateways write to one database at once.
 *
 * Threads: the store's writer thread only.
 */
#include "store/pg_internal.h"

#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_TIMEOUT_MS 60000 /* statement_timeout of the writer's statements */

static const char batch_tables[] =
    "CREATE TEMP TABLE tg_batch ("
    " k integer, id text, created_at bigint, provider text, model text, model_requested text,"
    " route text, status integer, latency_ms bigint, ttft_ms bigint, prompt_tokens bigint,"
    " completion_tokens bigint, cached_tokens bigint, cache_write_tokens bigint,"
    " reasoning_tokens bigint, cost_nusd bigint, cache integer, user_id text, session_id text,"
    " session_name text, session_path text, properties text, key_name text, client_ip text,"
    " retries integer, fallback_index integer, error text, has_error integer,"
    " cache_saved_nusd bigint, request_body bytea, response_body bytea) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE tg_batch_props (k integer, name text, value text) ON COMMIT DELETE ROWS";

#define REQ_COLS                                                                                   \
    "id, created_at, provider, model, model_requested, route, status, latency_ms, ttft_ms,"        \
    " prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,"      \
    " cost_nusd, cache, user_id, session_id, session_name, session_path, properties, key_name,"    \
    " client_ip, retries, fallback_index, error, has_error, cache_saved_nusd"

/* The batch's records in order (their seq follows it); of several copies of
 * one record in a batch the first counts, like a replay of a stored one. */
static const char move_batch[] =
    "WITH ins AS ("
    " INSERT INTO requests (" REQ_COLS ")"
    " SELECT " REQ_COLS " FROM tg_batch ORDER BY k"
    " ON CONFLICT (id, created_at) DO NOTHING RETURNING seq, id, created_at),"
    " src AS ("
    " SELECT DISTINCT ON (ins.seq) ins.seq, b.k, b.created_at, b.request_body, b.response_body"
    " FROM ins JOIN tg_batch b ON b.id = ins.id AND b.created_at = ins.created_at"
    " ORDER BY ins.seq, b.k),"
    " props AS ("
    " INSERT INTO request_properties (seq, name, value, created_at)"
    " SELECT src.seq, lower(p.name COLLATE \"C\"), p.value, src.created_at"
    " FROM src JOIN tg_batch_props p ON p.k = src.k"
    " ON CONFLICT DO NOTHING)"
    " INSERT INTO request_bodies (seq, request_body, response_body)"
    " SELECT seq, request_body, response_body FROM src"
    " WHERE request_body IS NOT NULL OR response_body IS NOT NULL"
    " ON CONFLICT DO NOTHING";

int tg_pg_writer_connect(pg_t *p, char *err, size_t errlen)
{
    PQfinish(p->w);
    p->w = tg_pg_connect(p, WRITE_TIMEOUT_MS, err, errlen);
    if (!p->w)
        return -1;
    char msg[256];
    PGresult *r = NULL;
    if (tg_pg_migrate(p->w, msg, sizeof msg) != 0 ||
        tg_pg_exec(p->w, batch_tables, msg, sizeof msg) != 0 ||
        (r = PQprepare(p->w, "tg_move_batch", move_batch, 0, NULL)) == NULL ||
        PQresultStatus(r) != PGRES_COMMAND_OK) {
        if (r)
            tg_pg_set_err(msg, sizeof msg, "prepare", p->w, r);
        snprintf(err, errlen, "%s: %s", p->display, msg);
        PQclear(r);
        PQfinish(p->w);
        p->w = NULL;
        return -1;
    }
    PQclear(r);
    return 0;
}

/* ---- COPY text format: tab-separated, \N for NULL, backslash escapes ---- */

static void copy_null(tg_buf_t *b)
{
    tg_buf_append(b, "\\N", 2);
}

/* A text value: valid UTF-8 (a bad byte becomes U+FFFD, as in the API's
 * JSON: the server would refuse the whole batch), COPY's escapes. */
static void copy_text(tg_buf_t *b, const char *s)
{
    if (!s) {
        copy_null(b);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), run = 0;
    for (size_t i = 0; i < n;) {
        const char *esc = NULL;
        size_t seq = 1;
        switch (u[i]) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (u[i] >= 0x80 && !(seq = tg_utf8_seq(u + i, n - i))) {
                esc = "\xEF\xBF\xBD";
                seq = 1;
            }
        }
        if (esc) {
            tg_buf_append(b, s + run, i - run);
            tg_buf_puts(b, esc);
            run = i + seq;
        }
        i += seq;
    }
    tg_buf_append(b, s + run, n - run);
}

static void copy_num(tg_buf_t *b, int64_t v)
{
    if (v < 0)
        copy_null(b);
    else
        tg_buf_put_i64(b, v);
}

/* A bytea value: its hex form "\x...", the backslash escaped for COPY. */
static void copy_bytes(tg_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        copy_null(b);
        return;
    }
    char *o = tg_buf_extend(b, 3 + 2 * len);
    memcpy(o, "\\\\x", 3);
    o += 3;
    for (size_t i = 0; i < len; i++) {
        *o++ = hex[(unsigned char)s[i] >> 4];
        *o++ = hex[(unsigned char)s[i] & 15];
    }
}

#define TAB(b) tg_buf_append((b), "\t", 1)

static void copy_record(tg_buf_t *b, tg_buf_t *props, int k, const tg_record_t *r)
{
    tg_buf_put_i64(b, k);
    TAB(b);
    copy_text(b, r->id);
    TAB(b);
    tg_buf_put_i64(b, r->created_at_ms);
    const char *texts[] = {r->provider, r->model, r->model_requested, r->route};
    for (size_t i = 0; i < 4; i++) {
        TAB(b);
        copy_text(b, texts[i]);
    }
    TAB(b);
    tg_buf_put_i64(b, r->status);
    int64_t nums[] = {r->latency_ms,
                      r->ttft_ms,
                      r->usage.prompt_tokens,
                      r->usage.completion_tokens,
                      r->usage.cached_tokens,
                      r->usage.cache_write_tokens,
                      r->usage.reasoning_tokens,
                      r->cost_nusd};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        TAB(b);
        copy_num(b, nums[i]);
    }
    TAB(b);
    tg_buf_put_i64(b, (int64_t)r->cache);
    const char *who[] = {r->user_id, r->session_id, r->session_name, r->session_path};
    for (size_t i = 0; i < 4; i++) {
        TAB(b);
        copy_text(b, who[i]);
    }
    /* the properties as the SQLite store keeps them: a JSON object */
    tg_buf_t json = {0};
    tg_buf_append(&json, "{", 1);
    for (size_t i = 0; i < r->n_props; i++) {
        if (i)
            tg_buf_append(&json, ",", 1);
        tg_record_json_str(&json, r->props[i].name, strlen(r->props[i].name));
        tg_buf_append(&json, ":", 1);
        tg_record_json_str(&json, r->props[i].value, strlen(r->props[i].value));
        tg_buf_put_i64(props, k);
        TAB(props);
        copy_text(props, r->props[i].name);
        TAB(props);
        copy_text(props, r->props[i].value);
        tg_buf_append(props, "\n", 1);
    }
    tg_buf_append(&json, "}", 1);
    TAB(b);
    copy_text(b, json.data);
    tg_buf_free(&json);
    TAB(b);
    copy_text(b, r->key_name);
    TAB(b);
    copy_text(b, r->client_ip);
    TAB(b);
    tg_buf_put_i64(b, r->retries);
    TAB(b);
    copy_num(b, r->fallback_index);
    TAB(b);
    copy_text(b, r->error);
    TAB(b);
    tg_buf_put_i64(b, r->error != NULL);
    TAB(b);
    copy_num(b, r->cache_saved_nusd);
    TAB(b);
    copy_bytes(b, r->request_body, r->request_body_len);
    TAB(b);
    copy_bytes(b, r->response_body, r->response_body_len);
    tg_buf_append(b, "\n", 1);
}

/* The SQLSTATE of a failed result into state[6] ("" when none). */
static void keep_state(const PGresult *r, char state[6])
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(state, 6, "%s", st ? st : "");
}

/* COPY data by `sql`: 0, or -1 with err and the SQLSTATE in state. */
static int copy_in(PGconn *c, const char *sql, const tg_buf_t *data, char state[6], char *err,
                   size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        keep_state(r, state);
        tg_pg_set_err(err, errlen, "copy", c, r);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    int ok = (!data->len || PQputCopyData(c, data->data, (int)data->len) == 1) &&
             PQputCopyEnd(c, NULL) == 1;
    int ret = ok ? 0 : -1;
    if (!ok)
        tg_pg_set_err(err, errlen, "copy", c, NULL);
    while ((r = PQgetResult(c)) != NULL) {
        if (ret == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
            keep_state(r, state);
            tg_pg_set_err(err, errlen, "copy", c, r);
            ret = -1;
        }
        PQclear(r);
    }
    return ret;
}

/* A failed batch: the connection's loss or the server's trouble is for a
 * retry; a value the server refuses (data exception, constraint, limit:
 * SQLSTATE classes 22, 23, 54) is the record's, never to be written. */
static int classify(pg_t *p, const char *sqlstate)
{
    if (tg_pg_conn_lost(p->w)) {
        PQfinish(p->w);
        p->w = NULL;
        return TG_STORE_ERETRY;
    }
    if (sqlstate &&
        (!strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2) || !strncmp(sqlstate, "54", 2)))
        return TG_STORE_EREJECT;
    return TG_STORE_ERETRY;
}

/*
 * The planner's statistics of a young store: autovacuum analyzes a table
 * about a minute after a tenth of it changed, and until then a table that
 * grew from nothing is planned as nearly empty (nested loops over what are
 * by then thousands of rows: seconds for a dashboard's report). The writer
 * analyzes the record tables itself each time its records reach a power of
 * ten, from 1,000 on: a handful of times in a store's life. Failures (a
 * user that does not own the tables) only go to the debug log.
 */
static void analyze_young_store(pg_t *p, size_t n)
{
    int64_t before = p->written;
    p->written += (int64_t)n;
    for (int64_t mark = 1000; mark > 0 && mark <= p->written; mark *= 10) {
        if (before < mark) {
            char msg[256];
            if (tg_pg_exec(p->w, "ANALYZE requests, request_properties", msg, sizeof msg) != 0)
                tg_debug("store: %s", msg);
            return;
        }
    }
}

int tg_pg_write(tg_store_backend_t *b, tg_record_t *const *recs, size_t n, char *err, size_t errlen)
{
    pg_t *p = (pg_t *)b;
    if (!p->w && tg_pg_writer_connect(p, err, errlen) != 0)
        return TG_STORE_ERETRY;
    tg_buf_t rows = {0}, props = {0};
    for (size_t i = 0; i < n; i++)
        copy_record(&rows, &props, (int)i, recs[i]);
    char state[6] = "";
    int ret = TG_STORE_OK;
    PGresult *r = NULL;
    if (tg_pg_exec(p->w, "BEGIN", err, errlen) != 0 ||
        copy_in(p->w, "COPY tg_batch FROM STDIN", &rows, state, err, errlen) != 0 ||
        copy_in(p->w, "COPY tg_batch_props FROM STDIN", &props, state, err, errlen) != 0) {
        ret = -1;
    } else {
        r = PQexecPrepared(p->w, "tg_move_batch", 0, NULL, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            keep_state(r, state);
            tg_pg_set_err(err, errlen, "insert", p->w, r);
            ret = -1;
        } else if (tg_pg_exec(p->w, "COMMIT", err, errlen) != 0) {
            ret = -1;
        }
        PQclear(r);
    }
    tg_buf_free(&rows);
    tg_buf_free(&props);
    if (ret == TG_STORE_OK) {
        analyze_young_store(p, n);
        return TG_STORE_OK;
    }
    char msg[128];
    if (!tg_pg_conn_lost(p->w))
        tg_pg_exec(p->w, "ROLLBACK", msg, sizeof msg);
    return classify(p, state[0] ? state : NULL);
}

int tg_pg_reopen(tg_store_backend_t *b, char *err, size_t errlen)
{
    return tg_pg_writer_connect((pg_t *)b, err, errlen);
}
