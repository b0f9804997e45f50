/* Unit tests for the dashboard's file server (src/dashboard/assets.c):
 * which file a path is, ETag and 304, gzip by Accept-Encoding, and what
 * other methods and paths get. The same through the pipeline, on the
 * dashboard's listener, is in test_loopback.c. */
#include "dashboard/dashboard.h"
#include "test.h"

#include <string.h>

TEST(dashboard_embeds_the_page_and_its_files)
{
    const tg_dashboard_asset_t *index = tg_dashboard_find("/");
    CHECK(index != NULL);
    CHECK(index == tg_dashboard_find("/index.html"));
    CHECK_STR(index->content_type, "text/html; charset=utf-8");
    CHECK(index->len > 0 && memmem(index->data, index->len, "/app.js", 7) != NULL);
    const tg_dashboard_asset_t *app = tg_dashboard_find("/app.js");
    CHECK(app && !strcmp(app->content_type, "text/javascript; charset=utf-8"));
    const tg_dashboard_asset_t *up = tg_dashboard_find("/vendor/uplot/uPlot.esm.js");
    CHECK(up != NULL);
    /* gzip -9n of a large script is much smaller, and starts as gzip does */
    CHECK(up && up->gz_len < up->len / 2 && up->gz[0] == 0x1f && up->gz[1] == 0x8b);
    CHECK(tg_dashboard_find("/vendor/uplot/LICENSE") != NULL);
    CHECK(tg_dashboard_find("/../Makefile") == NULL);
    CHECK(tg_dashboard_find("/app.js/") == NULL);
    /* every ETag is quoted and differs between files */
    size_t total = 0;
    for (size_t i = 0; i < tg_dashboard_n_assets; i++) {
        const char *e = tg_dashboard_assets[i].etag;
        CHECK(e[0] == '"' && e[strlen(e) - 1] == '"' && strlen(e) > 10);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(e, tg_dashboard_assets[k].etag) != 0);
        total += tg_dashboard_assets[i].len;
    }
    CHECK(total < 500 * 1024); /* the page's budget */
}

TEST(dashboard_gzip_follows_accept_encoding)
{
    CHECK(tg_dashboard_accepts_gzip("gzip"));
    CHECK(tg_dashboard_accepts_gzip("gzip, deflate, br, zstd"));
    CHECK(tg_dashboard_accepts_gzip("br;q=1.0, GZIP ; q=0.5"));
    CHECK(tg_dashboard_accepts_gzip("x-gzip"));
    CHECK(tg_dashboard_accepts_gzip("*"));
    CHECK(!tg_dashboard_accepts_gzip(NULL));
    CHECK(!tg_dashboard_accepts_gzip(""));
    CHECK(!tg_dashboard_accepts_gzip("br, deflate"));
    CHECK(!tg_dashboard_accepts_gzip("gzip;q=0"));
    CHECK(!tg_dashboard_accepts_gzip("deflate, gzip;q=0.000"));
    CHECK(!tg_dashboard_accepts_gzip("gzipx, agzip"));
}

TEST(dashboard_etag_and_304)
{
    const tg_dashboard_asset_t *a = tg_dashboard_find("/style.css");
    CHECK(a != NULL);
    if (!a)
        return;
    char weak[64], list[128];
    snprintf(weak, sizeof weak, "W/%s", a->etag);
    snprintf(list, sizeof list, "\"other\", %s", a->etag);
    CHECK(tg_dashboard_etag_matches(a->etag, a->etag));
    CHECK(tg_dashboard_etag_matches(weak, a->etag));
    CHECK(tg_dashboard_etag_matches(list, a->etag));
    CHECK(tg_dashboard_etag_matches("*", a->etag));
    CHECK(!tg_dashboard_etag_matches("\"other\"", a->etag));
    CHECK(!tg_dashboard_etag_matches(NULL, a->etag));

    tg_dashboard_answer_t ans;
    tg_dashboard_answer("GET", "/style.css", "gzip", NULL, &ans);
    CHECK_INT(ans.status, 200);
    CHECK(ans.asset == a && ans.gzip);
    tg_dashboard_answer("GET", "/style.css", "identity", NULL, &ans);
    CHECK(ans.status == 200 && !ans.gzip);
    tg_dashboard_answer("HEAD", "/style.css", NULL, a->etag, &ans);
    CHECK_INT(ans.status, 304);
    tg_dashboard_answer("GET", "/style.css", "gzip", "\"stale\"", &ans);
    CHECK_INT(ans.status, 200);
    tg_dashboard_answer("POST", "/", NULL, NULL, &ans);
    CHECK_INT(ans.status, 405);
    CHECK(ans.asset == NULL && ans.message != NULL);
    tg_dashboard_answer("GET", "/v1/chat/completions", NULL, NULL, &ans);
    CHECK_INT(ans.status, 404);
    CHECK(ans.asset == NULL);
}

TEST(dashboard_csp_allows_no_inline_script_and_no_other_origin)
{
    CHECK(strstr(tg_dashboard_csp, "default-src 'none'") != NULL);
    CHECK(strstr(tg_dashboard_csp, "script-src 'self';") != NULL);
    CHECK(strstr(tg_dashboard_csp, "connect-src 'self';") != NULL);
    CHECK(strstr(tg_dashboard_csp, "unsafe") == NULL);
    CHECK(strstr(tg_dashboard_csp, "http") == NULL);
}
