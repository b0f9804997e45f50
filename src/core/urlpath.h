/*
 * urlpath.h — the one rule for what may be appended to a provider's base
 * URL: a path that cannot climb out of the base path, however the provider
 * (or a front in between: a CDN, nginx, a Java or Windows server) decodes
 * and normalises it, and a query that cannot end the URL early.
 *
 * Every URL the gateway sends a provider key to is built from the configured
 * base_url plus a suffix (a route's fixed path, a client's pass-through path,
 * a model placed in the path) and the client's query; tg_provider_url and
 * tg_azure_url refuse any suffix or query these checks refuse, so a client
 * cannot point the gateway's key at another path of the provider's host
 * (docs/routing.md, "Paths sent to providers"). Pure; any thread.
 */
#ifndef TG_URLPATH_H
#define TG_URLPATH_H

#include "core/util.h"

#include <stddef.h>

/** Also refuse %2F and %5C (an encoded '/' or '\'): for paths written by a
 *  client, where an encoded slash means one thing to one server and another
 *  to the next. Paths the gateway builds may hold a model's '/' as %2F. */
#define TG_URLPATH_STRICT 1u

/**
 * 0 when `path` (len bytes, as it will be sent: empty or starting with '/',
 * percent-encoded) stays under whatever it is appended to; -1 otherwise.
 * Refused: a byte outside printable ASCII; a raw '\', '?' or '#'; a '%' not
 * followed by two hex digits; a segment whose percent-decoded form holds a
 * NUL or another control byte, is not UTF-8 (overlong forms of '.' and
 * '/' included) or holds a character that Unicode folding turns into '.' or
 * a slash (U+FF0E, U+2024, U+FF0F, ...); and a dot-segment: a segment (or, once decoded, a piece of
 * one between '/' and '\') whose part before any ';' is made only of dots
 * and spaces ("." "..", "%2e%2E", "..;x", "... "). Decoding is done once:
 * "%252e" stays the literal text "%2e". Empty segments ("//") pass: they
 * cannot climb.
 */
int tg_urlpath_check(const char *path, size_t len, unsigned flags);

/** 0 when a query string (without '?') may follow a path: printable ASCII
 *  and no '#', which would end the URL there. NULL passes. */
int tg_urlquery_check(const char *query);

/** Appends s as one path segment: every byte but RFC 3986's unreserved ones
 *  (letters, digits, - . _ ~) percent-encoded, '/' included. "." and ".."
 *  come out as they are, and tg_urlpath_check refuses them. */
void tg_urlpath_put_segment(tg_buf_t *b, const char *s, size_t n);

/** A URL for logs: scheme, host and path, without user info, query or
 *  fragment (where credentials would be). Owned by the caller. */
char *tg_url_shown(const char *url);

#endif
