/*
 * azure.c — Azure OpenAI URLs. Bodies are OpenAI's (openai.c); what differs
 * is the address: a deployment in the path and a dated api-version in the
 * query, or, for a base_url ending in /openai/v1, Azure's v1 API, which is
 * addressed like OpenAI's. The model name is the deployment name. Pure; any
 * thread.
 */
#include "core/urlpath.h"
#include "providers/provider.h"
#include "providers/translate.h"

#include <string.h>
#include <strings.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* The value of `api-version` in a query string ("a=b&api-version=V"), as
 * written, or NULL. */
static const char *query_version(const char *q, size_t *len)
{
    for (const char *p = q; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n > 12 && !strncmp(p, "api-version=", 12)) {
            *len = n - 12;
            return p + 12;
        }
        p = p[n] ? p + n + 1 : NULL;
    }
    return NULL;
}

static bool is_v1_base(const char *base)
{
    size_t n = strlen(base);
    return n >= 10 && !strcmp(base + n - 10, "/openai/v1");
}

char *tg_azure_url(const tg_provider_cfg_t *p, const char *model, const char *suffix,
                   const char *client_query)
{
    const char *base = p->base_url ? p->base_url : "";
    if (is_v1_base(base))
        return tg_provider_url(p, suffix, NULL);
    /* The deployment is one segment; the path after the base must pass the
     * check every provider URL passes (an empty name or ".." would not). */
    tg_buf_t b = {0};
    tg_buf_puts(&b, base);
    size_t path_at = b.len;
    tg_buf_puts(&b, "/openai/deployments/");
    tg_urlpath_put_segment(&b, model, strlen(model));
    tg_buf_puts(&b, suffix);
    if (!*model || tg_urlpath_check(b.data + path_at, b.len - path_at, 0) < 0) {
        tg_buf_free(&b);
        return NULL;
    }
    tg_buf_puts(&b, "?api-version=");
    size_t n = 0;
    const char *v = query_version(client_query, &n);
    bool clean = v != NULL; /* as the client wrote it: already query-encoded */
    for (size_t i = 0; clean && i < n; i++)
        clean = unreserved((unsigned char)v[i]) || v[i] == '%';
    if (clean) {
        tg_buf_append(&b, v, n);
        return b.data;
    }
    for (size_t i = 0; i < p->n_headers; i++) {
        if (!strcasecmp(p->headers[i].name, "api-version") && p->headers[i].value) {
            /* a query value: the same encoding as a segment's */
            tg_urlpath_put_segment(&b, p->headers[i].value, strlen(p->headers[i].value));
            return b.data;
        }
    }
    tg_buf_puts(&b, TG_AZURE_DEFAULT_API_VERSION);
    return b.data;
}

char *tg_azure_provider_url(const tg_provider_cfg_t *p, const tg_provider_url_req_t *rq)
{
    /* Pass-through appends the path as configured; a model call names the
     * deployment, and the api-version comes from the client's own query. */
    if (rq->raw)
        return tg_provider_url_default(p, rq);
    return tg_azure_url(p, rq->model, rq->suffix, rq->client_query);
}
