/*
 * dashboard.h — the dashboard's page (SPEC §12), served by the gateway on
 * its own listener (observability.dashboard). The page's files live in
 * src/dashboard/www and are built into the binary (scripts/embed-assets.sh
 * makes the table below, each file with its gzip'd copy and an ETag); the
 * page reads only /api/v1, which the pipeline answers as on the main port.
 *
 * Thread: a worker thread (the table is const, so any thread may read it).
 */
#ifndef TG_DASHBOARD_H
#define TG_DASHBOARD_H

#include "server/http.h"

#include <stdbool.h>
#include <stddef.h>

/** One embedded file. `path` is its URL path ("/app.js"); `etag` is quoted. */
typedef struct {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* gzip -9n of data */
    size_t gz_len;
    const char *etag;
} tg_dashboard_asset_t;

/* The generated table (build/gen/dashboard_assets.c). */
extern const tg_dashboard_asset_t tg_dashboard_assets[];
extern const size_t tg_dashboard_n_assets;

/** What the asset server answers, decided without I/O. */
typedef struct {
    int status;                        /* 200, 304, 404, 405 */
    const tg_dashboard_asset_t *asset; /* 200 and 304 */
    bool gzip;                         /* 200: send asset->gz with Content-Encoding: gzip */
    const char *message;               /* 404 and 405: why */
} tg_dashboard_answer_t;

/** The answer to METHOD PATH with the request's Accept-Encoding and
 *  If-None-Match (either may be NULL). "/" is index.html. */
void tg_dashboard_answer(const char *method, const char *path, const char *accept_encoding,
                         const char *if_none_match, tg_dashboard_answer_t *out);

/** The asset with that URL path, or NULL. */
const tg_dashboard_asset_t *tg_dashboard_find(const char *path);

/** True when Accept-Encoding allows gzip (a "gzip" or "*" token whose q is
 *  not 0). */
bool tg_dashboard_accepts_gzip(const char *accept_encoding);

/** True when If-None-Match names etag (or is "*"). */
bool tg_dashboard_etag_matches(const char *if_none_match, const char *etag);

/** Answer a request on the dashboard's listener that is not /api/v1 or
 *  /health: the page's files, with their security headers. Ends the
 *  exchange. */
void tg_dashboard_serve(tg_http_t *h);

/** The Content-Security-Policy every dashboard answer carries. */
extern const char tg_dashboard_csp[];

#endif
