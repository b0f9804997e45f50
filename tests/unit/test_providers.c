/* Unit tests for the provider records (providers/registry.c): every record
 * keeps its contract, and every credential header of every record is
 * dropped, moved and digested by the credential code and the cache scope,
 * so a type added with a header of its own cannot leak a key (as Azure's
 * api-key once did from the cache scope). */
#include "test.h"

#include "config/config.h"
#include "providers/provider.h"
#include "router/router.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

/* One header, as a request with only that header shows it. */
typedef struct {
    const char *name, *value;
} one_header_t;

static const char *get_one(void *ctx, const char *name)
{
    one_header_t *h = ctx;
    return h->name && !strcasecmp(h->name, name) ? h->value : NULL;
}

static bool listed(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (!strcasecmp(*list, name))
            return true;
    return false;
}

/* A plain http(s) URL: a host, no trailing '/', no query, fragment or blank. */
static bool plain_url(const char *u)
{
    const char *h = !strncmp(u, "https://", 8) ? u + 8 : !strncmp(u, "http://", 7) ? u + 7 : NULL;
    if (!h || !*h || *h == '/' || u[strlen(u) - 1] == '/')
        return false;
    for (const char *p = u; *p; p++)
        if (isspace((unsigned char)*p) || *p == '?' || *p == '#')
            return false;
    return true;
}

static void check_record(const tg_provider_rec_t *r, size_t i)
{
    CHECK(r->name != NULL);
    if (!r->name)
        return;
    CHECK(tg_provider_rec_named(r->name) == r); /* names are unique */
    for (const char *const *a = r->aliases; a && *a; a++)
        CHECK(tg_provider_rec_named(*a) == r);
    CHECK((unsigned)r->type < TG_PROVIDER_TYPES);
    if (i < TG_PROVIDER_TYPES) { /* the types' own records, at their enum value */
        CHECK_INT(r->type, i);
        CHECK(tg_provider_rec_for_type(r->type) == r);
        CHECK_STR(tg_provider_type_name(r->type), r->name);
    }
    CHECK_INT(r->wire, tg_wire_of(r->type));
    CHECK(r->dialect && r->dialect->answer_usage && r->dialect->event_usage);
    CHECK(r->url != NULL);
    CHECK(r->credential_headers != NULL);
    CHECK(r->path_prefix != NULL);
    if (r->path_prefix && *r->path_prefix)
        CHECK(r->path_prefix[0] == '/' && r->path_prefix[strlen(r->path_prefix) - 1] != '/');
    for (const tg_provider_header_t *d = r->default_headers; d && d->name; d++)
        CHECK(d->value && *d->value && !tg_is_credential_header(d->name));

    if (r->local) { /* the mock: nothing to reach, nothing to authenticate */
        CHECK(!r->default_base_url && !r->auth_header && !r->gateway_key_header);
        CHECK(r->credential_headers && !r->credential_headers[0]);
        return;
    }
    /* Its auth header is one of its credential headers, so a configured key
     * drops the client's and the cache scope digests it. */
    CHECK(r->auth_header && r->auth_prefix);
    if (r->auth_header)
        CHECK(listed(r->credential_headers, r->auth_header));
    /* Services that share a type share its credential headers. */
    for (const char *const *h = r->credential_headers; h && *h; h++)
        CHECK(listed(tg_provider_rec_for_type(r->type)->credential_headers, *h));

    if (r->default_base_url) {
        CHECK(plain_url(r->default_base_url));
        size_t bl = strlen(r->default_base_url), pl = strlen(r->path_prefix);
        CHECK(bl > pl && !strcmp(r->default_base_url + bl - pl, r->path_prefix));
        CHECK(tg_provider_rec_find(r->name, r->type, r->default_base_url) == r);
        /* The config loader gives the same URL for the bare origin. */
        const char *host = strstr(r->default_base_url, "://") + 3;
        size_t origin = (size_t)(host - r->default_base_url) + strcspn(host, "/");
        char yaml[512];
        snprintf(yaml, sizeof yaml, "providers:\n  %s: {base_url: \"%.*s\"}\n", r->name,
                 (int)origin, r->default_base_url);
        tg_config_errors_t errs = {0};
        tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
        CHECK_INT(errs.n, 0);
        tg_config_errors_free(&errs);
        const tg_provider_cfg_t *p = c ? tg_config_provider(c, r->name, strlen(r->name)) : NULL;
        CHECK(p != NULL);
        if (p) {
            CHECK_STR(p->base_url, r->default_base_url);
            CHECK(tg_provider_rec_of(p) == r);
            /* The URL hook builds under the base URL; pass-through as given. */
            char *u = tg_provider_url_for(
                p, &(tg_provider_url_req_t){.model = "m", .suffix = "/chat/completions"});
            CHECK(u && !strncmp(u, r->default_base_url, bl));
            free(u);
            u = tg_provider_url_for(
                p, &(tg_provider_url_req_t){.model = "m", .suffix = "/x", .raw = true});
            char want[300];
            snprintf(want, sizeof want, "%s/x", r->default_base_url);
            CHECK_STR(u, want);
            free(u);
        }
        tg_config_release(c);
    } else {
        CHECK(r->base_url_hint && plain_url(r->base_url_hint));
    }

    /* Its families route to it; no prefix is claimed twice. */
    const tg_provider_rec_t *o;
    for (const char *const *f = r->families; f && *f; f++) {
        CHECK(**f != 0);
        char model[128];
        snprintf(model, sizeof model, "%s-test", *f);
        CHECK_STR(tg_router_family(model), r->name);
        for (size_t k = 0; (o = tg_provider_rec_at(k)); k++)
            if (o != r)
                CHECK(!listed(o->families, *f));
    }
}

TEST(provider_records_contract)
{
    const tg_provider_rec_t *r;
    size_t n = 0;
    for (size_t i = 0; (r = tg_provider_rec_at(i)); i++, n++)
        check_record(r, i);
    CHECK(n >= TG_PROVIDER_TYPES);
    CHECK(tg_provider_rec_for_type(TG_PROVIDER_TYPES) == tg_provider_rec_fallback());
    CHECK(tg_provider_rec_named("no-such-provider") == NULL);
    /* A provider under another name at a well-known service's host is that
     * service (Mistral's stream_options refusal follows the host). */
    tg_provider_cfg_t p = {
        .name = "mine", .type = TG_PROVIDER_OPENAI, .base_url = "https://api.mistral.ai/v1"};
    CHECK(!tg_provider_accepts_stream_options(&p));
    p.base_url = "https://example.com/v1";
    CHECK(tg_provider_accepts_stream_options(&p));
}

/* The cache scope digests tg_provider_credentials_text; the attempt drops
 * tg_is_credential_header and moves tg_provider_client_key. Each must see
 * every credential header of every record. */
TEST(provider_credentials_cover_every_record)
{
    const tg_provider_rec_t *r;
    for (size_t i = 0; (r = tg_provider_rec_at(i)); i++) {
        char name[64], base[256];
        snprintf(name, sizeof name, "%s", r->name);
        snprintf(base, sizeof base, "%s", r->default_base_url ? r->default_base_url : "https://h");
        tg_provider_cfg_t p = {.name = name, .type = r->type, .base_url = base};
        for (const char *const *h = r->credential_headers; *h; h++) {
            char upper[64];
            size_t k = 0;
            for (; (*h)[k] && k < sizeof upper - 1; k++)
                upper[k] = (char)toupper((unsigned char)(*h)[k]);
            upper[k] = 0;
            CHECK(tg_is_credential_header(*h));
            CHECK(tg_is_credential_header(upper));

            /* cache scope: present -> something to digest; two keys differ */
            one_header_t a = {*h, "key-one"}, b = {*h, "key-two"};
            tg_buf_t ta = {0}, tb = {0};
            CHECK(tg_provider_credentials_text(&p, get_one, &a, NULL, &ta));
            CHECK(tg_provider_credentials_text(&p, get_one, &b, NULL, &tb));
            CHECK(ta.len && tb.len && (ta.len != tb.len || memcmp(ta.data, tb.data, ta.len)));
            tg_buf_free(&ta);
            tg_buf_free(&tb);

            /* bring your own key: found in the header's own scheme */
            bool is_auth = r->auth_header && !strcasecmp(*h, r->auth_header);
            char v[128];
            snprintf(v, sizeof v, "%sk1", is_auth ? r->auth_prefix : "");
            one_header_t c = {*h, v};
            const char *key = tg_provider_client_key(get_one, &c, NULL);
            CHECK(key && !strcmp(key, "k1"));
            CHECK(tg_provider_client_key(get_one, &c, *h) == NULL); /* a gateway key's */

            if (is_auth && r->gateway_key_header) {
                const char *from = NULL;
                key = tg_provider_gateway_key(get_one, &c, &from);
                CHECK(key && !strcmp(key, "k1") && from && !strcasecmp(from, *h));
            }
        }
        if (r->credential_query) {
            char qa[64], qb[64];
            snprintf(qa, sizeof qa, "%s=one", r->credential_query);
            snprintf(qb, sizeof qb, "%s=two", r->credential_query);
            one_header_t none = {NULL, NULL};
            tg_buf_t ta = {0}, tb = {0};
            CHECK(tg_provider_credentials_text(&p, get_one, &none, qa, &ta));
            CHECK(tg_provider_credentials_text(&p, get_one, &none, qb, &tb));
            CHECK(ta.len != tb.len || memcmp(ta.data, tb.data, ta.len));
            tg_buf_free(&ta);
            tg_buf_free(&tb);
            /* a configured key replaces the client's in the query too */
            p.api_key = "configured";
            char *u = tg_provider_url_for(
                &p,
                &(tg_provider_url_req_t){
                    .model = "m", .suffix = "/x", .query = qa, .client_query = qa, .raw = true});
            CHECK(u && !strstr(u, "one"));
            free(u);
        }
    }
    one_header_t none = {NULL, NULL};
    tg_buf_t t = {0};
    tg_provider_cfg_t plain = {.name = "o", .type = TG_PROVIDER_OPENAI, .base_url = "https://h"};
    CHECK(!tg_provider_credentials_text(&plain, get_one, &none, "a=1", &t));
    CHECK(!tg_is_credential_header("content-type"));
    tg_buf_free(&t);
}

/* Anthropic-only client headers (Claude Code's anthropic-beta and
 * anthropic-version) reach Anthropic-type providers only. */
TEST(provider_foreign_headers)
{
    static const char *const anth[] = {"anthropic-beta", "Anthropic-Version",
                                       "anthropic-dangerous-direct-browser-access"};
    static const tg_provider_type_t others[] = {TG_PROVIDER_OPENAI, TG_PROVIDER_GEMINI,
                                                TG_PROVIDER_AZURE, TG_PROVIDER_MOCK};
    for (size_t i = 0; i < sizeof anth / sizeof anth[0]; i++) {
        CHECK(
            !tg_provider_header_foreign(tg_provider_rec_for_type(TG_PROVIDER_ANTHROPIC), anth[i]));
        for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
            CHECK(tg_provider_header_foreign(tg_provider_rec_for_type(others[k]), anth[i]));
    }
    CHECK(tg_provider_header_foreign(tg_provider_rec_named("deepseek"), "anthropic-beta"));
    static const char *const kept[] = {"user-agent", "x-stainless-lang", "openai-organization",
                                       "anthropic", "x-request-id"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        CHECK(!tg_provider_header_foreign(tg_provider_rec_for_type(TG_PROVIDER_OPENAI), kept[i]));
}
