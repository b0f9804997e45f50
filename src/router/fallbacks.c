/*
 * fallbacks.c — the Helicone-Fallbacks header into targets (fallbacks.h).
 * Strict: whatever is not one of the two documented forms is refused with
 * a message naming the entry, so that a client never believes it has a
 * fallback it does not have. Pure; any thread.
 */
#include "router/fallbacks.h"

#include "core/util.h"
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- origins ---- */

typedef struct {
    bool https;
    char host[256]; /* lower case; an IPv6 literal keeps its brackets */
    long port;
    const char *path; /* up to '?' or '#' */
    size_t path_len;
} origin_t;

/* scheme://host[:port][/path]: http or https, no user info. */
static bool parse_origin(const char *url, origin_t *o)
{
    const char *p;
    if (!strncasecmp(url, "https://", 8)) {
        o->https = true, o->port = 443, p = url + 8;
    } else if (!strncasecmp(url, "http://", 7)) {
        o->https = false, o->port = 80, p = url + 7;
    } else {
        return false;
    }
    size_t alen = strcspn(p, "/?#");
    if (!alen || alen >= sizeof o->host || memchr(p, '@', alen))
        return false;
    size_t hlen = alen;
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', alen);
        if (!rb)
            return false;
        hlen = (size_t)(rb - p) + 1;
    } else {
        const char *colon = memchr(p, ':', alen);
        if (colon)
            hlen = (size_t)(colon - p);
    }
    if (!hlen)
        return false;
    if (hlen < alen) {
        if (p[hlen] != ':' || hlen + 1 == alen || alen - hlen > 6)
            return false;
        long port = 0;
        for (size_t i = hlen + 1; i < alen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return false;
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return false;
        o->port = port;
    }
    for (size_t i = 0; i < hlen; i++)
        o->host[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    o->host[hlen] = 0;
    o->path = p + alen;
    o->path_len = strcspn(o->path, "?#");
    return true;
}

/* The configured provider a target-url names (fallbacks.h). */
static const tg_provider_cfg_t *provider_at(const tg_config_t *cfg, const char *url)
{
    origin_t t, b;
    if (!parse_origin(url, &t))
        return NULL;
    const tg_provider_cfg_t *first = NULL, *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const tg_provider_cfg_t *p = &cfg->providers[i];
        if (!p->base_url || !parse_origin(p->base_url, &b) || b.https != t.https ||
            b.port != t.port || strcmp(b.host, t.host))
            continue;
        if (!first)
            first = p;
        size_t bl = b.path_len;
        while (bl && b.path[bl - 1] == '/')
            bl--;
        if (bl && bl <= t.path_len && !memcmp(b.path, t.path, bl) &&
            (t.path_len == bl || t.path[bl] == '/') && bl > best_len) {
            best = p;
            best_len = bl;
        }
    }
    return best ? best : first;
}

/* ---- entries ---- */

/* Credentials (the configured key is never replaced), hop-by-hop
 * headers, and those the gateway sets or owns. */
static bool header_dropped(const char *name)
{
    static const tg_name_t names[] = {TG_NAME("host"), TG_NAME("expect"), TG_NAME("cookie"),
                                      TG_NAME("proxy-authorization")};
    size_t n = strlen(name);
    return tg_is_credential_header(name) || tg_has_prefix_ci(name, "helicone-") ||
           tg_hop_by_hop(name, n) || tg_name_in(name, n, names, sizeof names / sizeof names[0]);
}

static bool token(const char *s)
{
    if (!*s || strlen(s) > 100)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool plain_value(const char *s, size_t len)
{
    if (len > 1024 || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return false;
    return true;
}

/* "headers" into o->headers, without the ones a client may not set. */
static int parse_headers(json_t *hs, tg_target_opts_t *o, size_t k, char *err, size_t errlen)
{
    if (!json_is_object(hs) || json_object_size(hs) > TG_FALLBACK_MAX_HEADERS) {
        snprintf(
            err, errlen,
            "Helicone-Fallbacks entry %zu: \"headers\" must be an object of at most %d strings",
            k + 1, TG_FALLBACK_MAX_HEADERS);
        return -3;
    }
    const char *name;
    json_t *v;
    json_object_foreach(hs, name, v)
    {
        if (!token(name) || !json_is_string(v) ||
            !plain_value(json_string_value(v), json_string_length(v))) {
            snprintf(err, errlen,
                     "Helicone-Fallbacks entry %zu: header '%.100s' must be a token with a string "
                     "value of at most 1024 bytes and no control characters",
                     k + 1, name);
            return -3;
        }
        if (header_dropped(name))
            continue;
        if (!o->headers)
            o->headers = json_object();
        json_object_set(o->headers, name, v);
    }
    return 0;
}

static int parse_codes(json_t *oc, tg_target_opts_t *o, size_t k, char *err, size_t errlen)
{
    size_t i;
    json_t *r;
    if (!json_is_array(oc) || !json_array_size(oc) || json_array_size(oc) > TG_FALLBACK_MAX_CODES)
        goto bad;
    json_array_foreach(oc, i, r)
    {
        json_t *f = json_object_get(r, "from"), *t = json_object_get(r, "to");
        if (!json_is_integer(f) || !json_is_integer(t))
            goto bad;
        json_int_t from = json_integer_value(f), to = json_integer_value(t);
        if (from < 100 || to > 599 || from > to)
            goto bad;
        o->codes[o->n_codes++] = (tg_code_range_t){(int)from, (int)to};
    }
    return 0;
bad:
    snprintf(err, errlen,
             "Helicone-Fallbacks entry %zu: \"onCodes\" must be a list of 1 to %d "
             "{\"from\": N, \"to\": M} with 100 <= N <= M <= 599",
             k + 1, TG_FALLBACK_MAX_CODES);
    return -3;
}

/* {"target-url", "headers"?, "onCodes"?} */
static int helicone_entry(const tg_config_t *cfg, json_t *e, const tg_route_t *current,
                          tg_fallback_t *f, size_t k, char *err, size_t errlen)
{
    json_t *url = json_object_get(e, "target-url");
    if (!json_is_string(url)) {
        snprintf(err, errlen, "Helicone-Fallbacks entry %zu: \"target-url\" must be a string",
                 k + 1);
        return -3;
    }
    const tg_provider_cfg_t *p = provider_at(cfg, json_string_value(url));
    if (!p || tg_provider_rec_of(p)->local) {
        snprintf(err, errlen,
                 "Helicone-Fallbacks entry %zu: target-url '%.200s' matches no configured "
                 "provider's base_url (scheme, host and port); this gateway sends requests only "
                 "to its configured providers",
                 k + 1, json_string_value(url));
        return -3;
    }
    const char *model = current && current->model ? current->model : p->default_model;
    if (!model) {
        snprintf(err, errlen, "Helicone-Fallbacks entry %zu: the request names no model", k + 1);
        return -3;
    }
    json_t *hs = json_object_get(e, "headers"), *oc = json_object_get(e, "onCodes");
    int rc = 0;
    if (hs && !json_is_null(hs))
        rc = parse_headers(hs, &f->opts, k, err, errlen);
    if (rc == 0 && oc && !json_is_null(oc))
        rc = parse_codes(oc, &f->opts, k, err, errlen);
    if (rc < 0) {
        tg_target_opts_clear(&f->opts);
        return rc;
    }
    f->route = (tg_route_t){.provider = p, .model = tg_xstrdup(model), .how = "fallback"};
    return 0;
}

/* "provider/model" or {"provider", "model"?} */
static int tollgate_entry(const tg_config_t *cfg, tg_health_registry_t *health, json_t *e,
                          const tg_route_t *current, tg_header_fn get, void *hctx, tg_fallback_t *f,
                          size_t k, char *err, size_t errlen)
{
    char target[600];
    if (json_is_string(e)) {
        if (!json_string_length(e) || json_string_length(e) >= 512 ||
            strlen(json_string_value(e)) != json_string_length(e)) {
            snprintf(err, errlen,
                     "Helicone-Fallbacks entry %zu must be a non-empty model name of at most 511 "
                     "bytes",
                     k + 1);
            return -3;
        }
        snprintf(target, sizeof target, "%s", json_string_value(e));
    } else {
        json_t *jp = json_object_get(e, "provider"), *jm = json_object_get(e, "model");
        if (!json_is_string(jp) || (jm && !json_is_string(jm))) {
            snprintf(err, errlen,
                     "Helicone-Fallbacks entry %zu: an object needs \"provider\" (and may have "
                     "\"model\") as strings, or \"target-url\"",
                     k + 1);
            return -3;
        }
        const char *pn = json_string_value(jp);
        const tg_provider_cfg_t *p = tg_config_provider(cfg, pn, strlen(pn));
        const char *m = jm ? json_string_value(jm) : p ? p->default_model : NULL;
        if (!m && p && current)
            m = current->model;
        if (!p || !m || !*m || strlen(pn) > 100 || strlen(m) > 400) {
            snprintf(err, errlen,
                     "Helicone-Fallbacks entry %zu: no configured provider '%.100s' with a model",
                     k + 1, pn);
            return -1;
        }
        snprintf(target, sizeof target, "%s/%s", p->name, m);
    }
    char why[512];
    if (tg_router_resolve(cfg, health, target, get, hctx, &f->route, why, sizeof why) < 0) {
        snprintf(err, errlen, "Helicone-Fallbacks entry %zu: %s", k + 1, why);
        return -1;
    }
    f->route.how = "fallback";
    return 0;
}

int tg_fallbacks_parse(const tg_config_t *cfg, tg_health_registry_t *health, const char *hv,
                       const tg_route_t *current, tg_header_fn get_header, void *hctx,
                       tg_fallback_t *out, size_t max, size_t *n, bool *replaces, char *err,
                       size_t errlen)
{
    *n = 0;
    *replaces = false;
    json_t *list = json_loads(hv, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > max) {
        json_decref(list);
        snprintf(err, errlen,
                 "Helicone-Fallbacks must be a JSON list of 1 to %zu targets: \"provider/model\" "
                 "strings, {\"provider\",\"model\"} objects, or {\"target-url\",\"headers\","
                 "\"onCodes\"} objects",
                 max);
        return -3;
    }
    json_t *e0 = json_array_get(list, 0);
    *replaces = json_is_object(e0) && json_object_get(e0, "target-url");
    size_t k;
    json_t *e;
    int rc = 0;
    json_array_foreach(list, k, e)
    {
        tg_fallback_t *f = &out[k];
        memset(f, 0, sizeof *f);
        bool helicone = json_is_object(e) && json_object_get(e, "target-url");
        if (helicone != *replaces) {
            snprintf(err, errlen,
                     "Helicone-Fallbacks entry %zu: the entries must all be target-url objects "
                     "or all provider/model targets",
                     k + 1);
            rc = -3;
        } else if (helicone) {
            rc = helicone_entry(cfg, e, current, f, k, err, errlen);
        } else if (json_is_string(e) || json_is_object(e)) {
            rc = tollgate_entry(cfg, health, e, current, get_header, hctx, f, k, err, errlen);
        } else {
            snprintf(err, errlen, "Helicone-Fallbacks entry %zu must be a string or an object",
                     k + 1);
            rc = -3;
        }
        if (rc < 0)
            break;
        *n = k + 1;
    }
    json_decref(list);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            tg_fallback_clear(&out[i]);
        *n = 0;
        *replaces = false;
    }
    return rc;
}

bool tg_fallbacks_helicone_form(const char *hv)
{
    json_t *list = json_loads(hv, 0, NULL);
    json_t *e0 = json_array_get(list, 0);
    bool yes = json_is_object(e0) && json_object_get(e0, "target-url");
    json_decref(list);
    return yes;
}

bool tg_target_opts_match(const tg_target_opts_t *opts, int status)
{
    for (size_t i = 0; i < opts->n_codes; i++)
        if (status >= opts->codes[i].from && status <= opts->codes[i].to)
            return true;
    return false;
}

void tg_target_opts_clear(tg_target_opts_t *o)
{
    json_decref(o->headers);
    memset(o, 0, sizeof *o);
}

void tg_fallback_clear(tg_fallback_t *f)
{
    tg_route_clear(&f->route);
    tg_target_opts_clear(&f->opts);
}
