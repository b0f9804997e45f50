/*
 * writer_bench.c — the SQLite store's write side alone: fills a store with
 * PREFILL gateway-like records, then writes N more in batches of BATCH
 * straight into the back-end (tg_sqlite_write: one transaction per batch),
 * the call bench/writer.sh counts instructions in. No queue, no writer
 * thread, no timing: the same records and batches every run, so two builds
 * compare exactly. Built and run by bench/writer.sh.
 *
 *   writer_bench DB_PATH N BATCH BODY_BYTES
 *
 * Each record is what bench/callgrind-threads.sh's requests leave: provider
 * "bench", model gpt-4o-mini, status 200, usage, no user, session or
 * properties, the 186-byte request of bench/request.json and a response
 * body of BODY_BYTES (597: a chat completion; ~10,000: a streamed answer
 * of 50 chunks). Ids are UUIDv7-like, rising with time as the gateway's.
 */
#include "store/record.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char request[] =
    "{\"model\":\"bench/gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
    "helpful assistant.\"},{\"role\":\"user\",\"content\":\"Say hello in five words.\"}],"
    "\"max_tokens\":32,\"temperature\":0}";

static tg_record_t *make(int64_t ms, long i, const char *body, size_t body_len)
{
    tg_record_t *r = tg_record_new();
    char id[64];
    snprintf(id, sizeof id, "%08llx-%04llx-7%03lx-8000-%012lx",
             (unsigned long long)(ms >> 16) & 0xffffffffu, (unsigned long long)ms & 0xffff,
             (unsigned long)i >> 16 & 0xfff, (unsigned long)i & 0xffffff);
    tg_record_set_str(&r->id, id);
    r->created_at_ms = ms;
    tg_record_set_str(&r->provider, "bench");
    tg_record_set_str(&r->model, "gpt-4o-mini");
    tg_record_set_str(&r->model_requested, "bench/gpt-4o-mini");
    tg_record_set_str(&r->route, "/v1/chat/completions");
    tg_record_set_str(&r->client_ip, "127.0.0.1");
    r->status = 200;
    r->latency_ms = 4;
    r->ttft_ms = 4;
    r->usage.prompt_tokens = 24;
    r->usage.completion_tokens = 7;
    r->usage.cached_tokens = 0;
    r->usage.reasoning_tokens = 0;
    r->cost_nusd = 7800;
    tg_record_set_body(r, false, request, sizeof request - 1, -1);
    tg_record_set_body(r, true, body, body_len, -1);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DB N BATCH BODY_BYTES\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    int batch = atoi(argv[3]);
    size_t body_len = (size_t)atol(argv[4]);
    if (n < 1 || batch < 1 || batch > 100000 || body_len > 100000000) {
        fprintf(stderr, "writer_bench: bad arguments\n");
        return 2;
    }
    char err[512];
    tg_store_backend_t *b = tg_store_sqlite_open(argv[1], err, sizeof err);
    if (!b) {
        fprintf(stderr, "writer_bench: %s\n", err);
        return 1;
    }
    static const char chunk[] = "data: {\"choices\":[{\"delta\":{\"content\":\"tok \"}}]}\n\n";
    char *body = malloc(body_len + 1);
    tg_record_t **recs = calloc((size_t)batch, sizeof *recs);
    if (!body || !recs) {
        fprintf(stderr, "writer_bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < body_len; i++)
        body[i] = chunk[i % (sizeof chunk - 1)];
    /* one record per ms after the newest the database holds (now for an
     * empty one), so that times and ids rise as a gateway's do: every index
     * of the requests table is appended to at its right-most leaf */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t t0 = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    sqlite3 *h;
    sqlite3_stmt *st;
    if (sqlite3_open_v2(argv[1], &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT max(created_at) + 1 FROM requests", -1, &st, NULL) ==
            SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
            t0 = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    int rc = 0;
    for (long i = 0; i < n && !rc; i += batch) {
        int k = (int)(n - i < batch ? n - i : batch);
        for (int j = 0; j < k; j++)
            recs[j] = make(t0 + i + j, i + j, body, body_len);
        if (b->ops->write(b, recs, (size_t)k, err, sizeof err) != TG_STORE_OK) {
            fprintf(stderr, "writer_bench: write: %s\n", err);
            rc = 1;
        }
        for (int j = 0; j < k; j++)
            tg_record_free(recs[j]);
    }
    b->ops->close(b);
    free(recs);
    free(body);
    return rc;
}
