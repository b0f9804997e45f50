/*
 * credentials.c — the headers and query parameters that carry a provider
 * credential (SPEC §5), read from the provider records: which client
 * headers a configured key drops, where a client's own key is found to be
 * moved into another dialect's header, where a gateway key may arrive,
 * and what the cache scope digests. There is no list of header names here:
 * every one comes from a record's credential_headers, so a type added with
 * a header of its own is covered everywhere at once (the Azure api-key
 * leak in the cache scope came from four hand-kept lists).
 *
 * The types' own records carry every credential header (the services that
 * share a type share its headers); walking them in enum order gives the
 * precedence Authorization, x-api-key, x-goog-api-key, api-key.
 * Pure; any thread.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool tg_is_credential_header(const char *name)
{
    unsigned char c0 = tg_lower_byte((unsigned char)name[0]);
    for (int t = 0; t < TG_PROVIDER_TYPES; t++)
        for (const char *const *h = tg_provider_rec_for_type(t)->credential_headers; *h; h++)
            if (tg_lower_byte((unsigned char)(*h)[0]) == c0 && !strcasecmp(*h, name))
                return true;
    return false;
}

bool tg_provider_header_foreign(const tg_provider_rec_t *r, const char *name)
{
    for (int t = 0; t < TG_PROVIDER_TYPES; t++) {
        const tg_provider_rec_t *owner = tg_provider_rec_for_type(t);
        if (owner->type == r->type || !owner->own_header_prefixes)
            continue;
        for (const char *const *p = owner->own_header_prefixes; *p; p++)
            if (tg_has_prefix_ci(name, *p))
                return true;
    }
    return false;
}

const char *tg_provider_client_key(tg_provider_header_fn get, void *ctx, const char *consumed)
{
    for (int t = 0; t < TG_PROVIDER_TYPES; t++) {
        const tg_provider_rec_t *r = tg_provider_rec_for_type(t);
        for (const char *const *h = r->credential_headers; *h; h++) {
            if (consumed && !strcasecmp(*h, consumed))
                continue;
            const char *v = get(ctx, *h);
            if (!v)
                continue;
            /* Only a value in the header's own scheme ("Bearer KEY") is a key;
             * other schemes are not ours to move. */
            const char *prefix =
                r->auth_header && !strcasecmp(*h, r->auth_header) ? r->auth_prefix : "";
            size_t pl = strlen(prefix);
            return !strncasecmp(v, prefix, pl) ? v + pl : NULL;
        }
    }
    return NULL;
}

const char *tg_provider_gateway_key(tg_provider_header_fn get, void *ctx, const char **header)
{
    for (int t = 0; t < TG_PROVIDER_TYPES; t++) {
        const tg_provider_rec_t *r = tg_provider_rec_for_type(t);
        if (!r->gateway_key_header)
            continue;
        const char *v = get(ctx, r->auth_header);
        size_t pl = strlen(r->auth_prefix);
        if (v && !strncasecmp(v, r->auth_prefix, pl)) {
            *header = r->auth_header;
            return v + pl;
        }
    }
    return NULL;
}

bool tg_provider_credentials_text(const tg_provider_cfg_t *p, tg_provider_header_fn get, void *ctx,
                                  const char *query, tg_buf_t *out)
{
    size_t start = out->len;
    /* Every type's headers, not only p's: a caller must not get an answer
     * paid with another caller's key, whatever header carried it. */
    for (int t = 0; t < TG_PROVIDER_TYPES; t++) {
        for (const char *const *h = tg_provider_rec_for_type(t)->credential_headers; *h; h++) {
            const char *v = get(ctx, *h);
            if (v) {
                tg_buf_printf(out, "%s:", *h);
                tg_buf_append(out, v, strlen(v) + 1);
            }
        }
    }
    /* The key may be in the query (with whatever else is there). */
    if (query && tg_provider_rec_of(p)->credential_query) {
        tg_buf_puts(out, "q:");
        tg_buf_puts(out, query);
    }
    return out->len > start;
}

char *tg_provider_auth_value(const tg_provider_rec_t *r, const char *key)
{
    size_t pl = strlen(r->auth_prefix), kl = strlen(key);
    char *v = tg_xmalloc(pl + kl + 1);
    memcpy(v, r->auth_prefix, pl);
    memcpy(v + pl, key, kl + 1);
    return v;
}
