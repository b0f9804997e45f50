/*
 * assets.c — the dashboard's file server: the embedded files (dashboard.h)
 * by URL path, with an ETag (answered 304 when the browser has it), gzip
 * when the browser takes it (compressed once at build time), and headers
 * that keep the page to itself: a Content-Security-Policy without inline
 * script or any other origin, nosniff, no referrer, no framing.
 *
 * Thread: a worker thread (only const data).
 */
#include "dashboard/dashboard.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Everything from this origin only; no inline script or style; uPlot sets
 * element styles through the CSSOM, which style-src does not govern. */
const char tg_dashboard_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

const tg_dashboard_asset_t *tg_dashboard_find(const char *path)
{
    if (!strcmp(path, "/"))
        path = "/index.html";
    for (size_t i = 0; i < tg_dashboard_n_assets; i++)
        if (!strcmp(tg_dashboard_assets[i].path, path))
            return &tg_dashboard_assets[i];
    return NULL;
}

/* The next comma-separated token of a header list: [*s, end) trimmed;
 * *s moves past it. False at the end. */
static bool next_token(const char **s, const char **tok, size_t *len)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    if (!*p)
        return false;
    const char *e = strchr(p, ',');
    if (!e)
        e = p + strlen(p);
    *s = e;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *tok = p;
    *len = (size_t)(e - p);
    return true;
}

bool tg_dashboard_accepts_gzip(const char *ae)
{
    const char *tok;
    size_t len;
    while (ae && next_token(&ae, &tok, &len)) {
        const char *semi = memchr(tok, ';', len);
        size_t nlen = semi ? (size_t)(semi - tok) : len;
        while (nlen && (tok[nlen - 1] == ' ' || tok[nlen - 1] == '\t'))
            nlen--;
        bool named = (nlen == 4 && !strncasecmp(tok, "gzip", 4)) ||
                     (nlen == 6 && !strncasecmp(tok, "x-gzip", 6)) || (nlen == 1 && tok[0] == '*');
        if (!named)
            continue;
        /* q=0 (0.0, 0.00, ...) refuses it */
        const char *q = semi ? semi + 1 : NULL;
        while (q && q < tok + len && (*q == ' ' || *q == '\t'))
            q++;
        if (q && q + 1 < tok + len && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
            double v = strtod(q + 2, NULL);
            if (v <= 0)
                return false;
        }
        return true;
    }
    return false;
}

bool tg_dashboard_etag_matches(const char *inm, const char *etag)
{
    const char *tok;
    size_t len;
    size_t elen = strlen(etag);
    while (inm && next_token(&inm, &tok, &len)) {
        if (len == 1 && tok[0] == '*')
            return true;
        if (len > 2 && !strncmp(tok, "W/", 2)) { /* weak comparison (RFC 9110 §13.1.2) */
            tok += 2;
            len -= 2;
        }
        if (len == elen && !memcmp(tok, etag, len))
            return true;
    }
    return false;
}

void tg_dashboard_answer(const char *method, const char *path, const char *accept_encoding,
                         const char *if_none_match, tg_dashboard_answer_t *out)
{
    memset(out, 0, sizeof *out);
    const tg_dashboard_asset_t *a = tg_dashboard_find(path);
    if (!a) {
        out->status = 404;
        out->message = "the dashboard's port serves the page, /api/v1 and /health only";
        return;
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        out->status = 405;
        out->message = "the dashboard's files take GET or HEAD";
        return;
    }
    out->asset = a;
    if (tg_dashboard_etag_matches(if_none_match, a->etag)) {
        out->status = 304;
        return;
    }
    out->status = 200;
    out->gzip = tg_dashboard_accepts_gzip(accept_encoding) && a->gz_len < a->len;
}

void tg_dashboard_serve(tg_http_t *h)
{
    tg_dashboard_answer_t ans;
    tg_dashboard_answer(tg_http_method(h), tg_http_path(h), tg_http_header(h, "Accept-Encoding"),
                        tg_http_header(h, "If-None-Match"), &ans);
    tg_http_add_header(h, "Content-Security-Policy", tg_dashboard_csp);
    tg_http_add_header(h, "X-Content-Type-Options", "nosniff");
    tg_http_add_header(h, "Referrer-Policy", "no-referrer");
    tg_http_add_header(h, "X-Frame-Options", "DENY");
    if (!ans.asset) {
        if (ans.status == 405)
            tg_http_add_header(h, "Allow", "GET, HEAD");
        tg_http_reply(h, ans.status, "text/plain; charset=utf-8", ans.message, strlen(ans.message));
        return;
    }
    const tg_dashboard_asset_t *a = ans.asset;
    tg_http_add_header(h, "ETag", a->etag);
    /* The names carry no hash: the browser asks again each time, and an
     * unchanged file costs a 304. */
    tg_http_add_header(h, "Cache-Control", "no-cache");
    tg_http_add_header(h, "Vary", "Accept-Encoding");
    if (ans.status == 304) {
        tg_http_reply(h, 304, NULL, NULL, 0);
        return;
    }
    if (ans.gzip) {
        tg_http_add_header(h, "Content-Encoding", "gzip");
        tg_http_reply(h, 200, a->content_type, a->gz, a->gz_len);
    } else {
        tg_http_reply(h, 200, a->content_type, a->data, a->len);
    }
}
