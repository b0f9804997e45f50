/*
 * libFuzzer target: the provider URL builders (core/urlpath.c,
 * providers/registry.c, azure.c, gemini.c) on any path, model or query.
 * The first byte picks what the rest is: a pass-through path (then, after a
 * NUL, a query), a Gemini model, an Azure deployment, or a path after an
 * Azure v1 base. Properties checked, for every URL a builder yields:
 *   - libcurl (with the relay's flags) either refuses it or sends it to the
 *     base's host, at a path equal to the base path or below it, with no
 *     fragment;
 *   - decoded once, with '\' taken for '/' and ';' parameters cut, as the
 *     most lenient server in front of a provider might, its path has no
 *     "." or ".." segment, and removing dot segments leaves it below the
 *     base path;
 *   - a model or deployment stays one segment: nothing but the route's own
 *     fixed text follows it;
 *   - a path the strict check takes, the plain check takes too.
 * Any violation aborts. See run.sh.
 */
#include "core/urlpath.h"
#include "providers/provider.h"
#include "providers/translate.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HOST      "h.example"
#define BASE      "http://" HOST "/base/v1"
#define BASE_PATH "/base/v1"

static bool under(const char *path, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !memcmp(path, prefix, k) && (n == k || path[k] == '/');
}

/* What libcurl makes of the URL: refused, or the base's host and a path
 * under the base path. */
static void check_with_curl(const char *url)
{
    CURLU *u = curl_url();
    if (!u)
        abort();
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
        CURLUE_OK) {
        char *host = NULL, *path = NULL, *frag = NULL;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || strcmp(host, HOST))
            abort();
        if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
            !under(path, strlen(path), BASE_PATH))
            abort();
        if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK)
            abort();
        curl_free(host);
        curl_free(path);
        curl_free(frag);
    }
    curl_url_cleanup(u);
}

/* The path of the URL decoded once, '\' as '/', each segment cut at ';'
 * (decoded or not): the most a lenient server does before normalising. */
static size_t lenient(const char *path, size_t n, char *out)
{
    size_t o = 0;
    bool cut = false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)path[i];
        if (c == '%' && i + 2 < n && tg_hexval(path[i + 1]) >= 0 && tg_hexval(path[i + 2]) >= 0) {
            c = tg_hexval(path[i + 1]) * 16 + tg_hexval(path[i + 2]);
            i += 2;
        }
        if (c == '\\')
            c = '/';
        if (c == '/')
            cut = false;
        else if (c == ';')
            cut = true;
        if (!cut)
            out[o++] = (char)c;
    }
    return o;
}

/* RFC 3986 5.2.4, on a path starting with '/': whether the result stays
 * under prefix, and whether the input had a dot-segment at all. */
static bool climbs_out(const char *path, size_t n, const char *prefix, bool *had_dots)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    *had_dots = false;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && path[j] != '/')
            j++;
        size_t seg = j - i - 1; /* the segment after path[i] == '/' */
        const char *s = path + i + 1;
        if ((seg == 1 && s[0] == '.') || (seg == 2 && s[0] == '.' && s[1] == '.')) {
            *had_dots = true;
            if (seg == 2)
                while (o > 0 && out[--o] != '/')
                    ;
            if (j == n)
                out[o++] = '/';
        } else {
            memcpy(out + o, path + i, j - i);
            o += j - i;
        }
        i = j;
    }
    bool bad = !under(out, o, prefix);
    free(out);
    return bad;
}

/* The checks above, on a URL built under BASE (or another base with the same
 * host whose path is base_path). */
static void check_url(const char *url, const char *base_path)
{
    check_with_curl(url);
    const char *path = url + strlen("http://" HOST);
    size_t n = strcspn(path, "?#");
    if (path[n] == '#')
        abort();
    char *dec = malloc(n + 1);
    size_t m = lenient(path, n, dec);
    bool had_dots;
    if (climbs_out(dec, m, base_path, &had_dots) || had_dots)
        abort();
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = s[size] = 0;
    const char *query = s + strlen(s) + 1;
    if (query > s + size - 1)
        query = NULL;
    tg_provider_cfg_t p = {.name = "p", .type = TG_PROVIDER_OPENAI, .base_url = BASE};
    char *url = NULL;
    switch (data[0] % 4) {
    case 0: /* a client's pass-through path and query */
        if (tg_urlpath_check(s, strlen(s), TG_URLPATH_STRICT) == 0 &&
            tg_urlpath_check(s, strlen(s), 0) != 0)
            abort();
        url = tg_provider_url(&p, s, query);
        if (url) {
            check_url(url, BASE_PATH);
            if (strncmp(url + strlen(BASE), s, strlen(s)))
                abort(); /* the path goes as the client wrote it */
        }
        break;
    case 1: { /* a Gemini model */
        static const char *const actions[] = {"generateContent", "streamGenerateContent"};
        const char *action = actions[data[0] / 4 % 2];
        char *suffix = tg_gemini_model_path(s, action);
        url = tg_provider_url(&p, suffix, query);
        if (url) {
            check_url(url, BASE_PATH "/models");
            const char *seg = url + strlen(BASE "/models/");
            size_t n = strcspn(seg, "/?");
            if (seg[n] != (query && *query ? '?' : 0) || n < strlen(action) + 1 ||
                strncmp(seg + n - strlen(action) - 1, ":", 1) ||
                strncmp(seg + n - strlen(action), action, strlen(action)))
                abort();
        }
        free(suffix);
        break;
    }
    case 2: /* an Azure deployment */
        p.type = TG_PROVIDER_AZURE;
        url = tg_azure_url(&p, s, "/chat/completions", query);
        if (url) {
            check_url(url, BASE_PATH "/openai/deployments");
            const char *seg = url + strlen(BASE "/openai/deployments/");
            size_t n = strcspn(seg, "/?");
            if (!n || strncmp(seg + n, "/chat/completions?api-version=", 30))
                abort();
        }
        break;
    default: /* a path after Azure's v1 base */
        p.type = TG_PROVIDER_AZURE;
        p.base_url = BASE "/openai/v1";
        url = tg_azure_url(&p, "d", s, query);
        if (url)
            check_url(url, BASE_PATH "/openai/v1");
        break;
    }
    free(url);
    free(s);
    return 0;
}
