/* libFuzzer target: what the dashboard reads from a request — the path,
 * Accept-Encoding and If-None-Match of its file server, and a series
 * query string (bucket, group_by, range, filters). Whatever goes in: an
 * answer the server can send (a file only with 200/304, gzip only when
 * the header allows it) and a parse that either fails with a message or
 * yields a bounded range of buckets. See run.sh. */
#include "dashboard/dashboard.h"
#include "store/query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void must(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* three NUL-separated strings: path, Accept-Encoding, If-None-Match */
    char *buf = malloc(size + 3);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = 0;
    const char *path = buf;
    const char *ae = path + strlen(path) + 1;
    const char *inm = ae + strlen(ae) + 1;
    if (ae > buf + size)
        ae = NULL;
    if (inm > buf + size)
        inm = NULL;
    tg_dashboard_answer_t a;
    tg_dashboard_answer(size & 1 ? "GET" : "HEAD", path, ae, inm, &a);
    must(a.status == 200 || a.status == 304 || a.status == 404 || a.status == 405);
    must((a.asset != NULL) == (a.status == 200 || a.status == 304));
    must(!a.gzip || (a.status == 200 && tg_dashboard_accepts_gzip(ae)));
    must(a.asset || a.message);

    tg_query_t q;
    char err[300] = "";
    if (tg_query_parse(TG_QUERY_SERIES, buf, 1765000000000LL, &q, err, sizeof err) == 0) {
        must(q.has_from && q.has_to && q.from_ms < q.to_ms && q.bucket_ms > 0);
        must((q.to_ms - q.from_ms + q.bucket_ms - 1) / q.bucket_ms <= 2000);
    } else {
        must(err[0] != 0);
    }
    tg_query_free(&q);
    free(buf);
    return 0;
}
