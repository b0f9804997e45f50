/*
 * record.h — the log record of one request (SPEC §8) and its JSON forms.
 *
 * A record is built by the thread that handled the request, then handed to
 * the store with tg_store_submit, which takes ownership. Every char * field
 * is owned by the record (malloc'd, e.g. with tg_xstrdup) or NULL;
 * tg_record_free frees them all. Unknown numbers are -1 and encode as JSON
 * null. Any thread (a record is used by one thread at a time).
 */
#ifndef TG_RECORD_H
#define TG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/usage.h"
#include "core/util.h"

typedef enum {
    TG_RECORD_CACHE_NONE = 0, /* caching not used for this request */
    TG_RECORD_CACHE_MISS,
    TG_RECORD_CACHE_HIT,
} tg_record_cache_t;

typedef struct {
    char *name; /* as the client wrote it after "Helicone-Property-" */
    char *value;
} tg_record_prop_t;

typedef struct {
    char *id;                 /* Helicone-Request-Id or a fresh UUID; never NULL once built */
    int64_t created_at_ms;    /* request start, wall clock, ms since the epoch */
    char *provider;           /* provider that served (or was tried last) */
    char *model;              /* model sent to the provider */
    char *model_requested;    /* model the client asked for */
    char *route;              /* e.g. "/v1/chat/completions" */
    int status;               /* HTTP status sent to the client (499: client went away) */
    int64_t latency_ms;       /* start to last byte, -1 unknown */
    int64_t ttft_ms;          /* start to first response byte from the provider, -1 unknown */
    tg_usage_t usage;         /* -1 per count when unknown */
    int64_t cost_nusd;        /* cost in nano-USD (1e-9), -1 unknown / unpriced */
    int64_t cache_saved_nusd; /* a cache hit: the cost the provider would have charged, -1 none */
    tg_record_cache_t cache;
    char *user_id;
    char *session_id, *session_name, *session_path;
    tg_record_prop_t *props; /* see tg_record_set_property */
    size_t n_props;
    char *key_name; /* gateway key name (never the key) */
    char *client_ip;
    int retries;        /* attempts after the first, all providers */
    int fallback_index; /* which fallback served (0: the first choice), -1 none */
    char *error;        /* gateway or provider error message, NULL on success */
    char *request_body; /* NULL: not stored (omitted, disabled) */
    size_t request_body_len;
    char *response_body;
    size_t response_body_len;
    size_t response_body_slack; /* bytes allocated past its length and NUL (a buffer
                                 * handed over, tg_record_take_body): queue accounting */
    bool bodies_stored; /* the bodies are in their stored form (tg_record_compress_bodies) */
    /* The store's, not part of the record: the journal segment that holds a
     * copy of it (a reference, dropped when the store settles the record;
     * store/journal.h). NULL when not journaled. */
    struct tg_jseg *journal;
} tg_record_t;

/** A fresh record: a new UUID v7 id (time-ordered), created_at now, counts -1, cost -1, cache
 *  none, fallback_index 0, everything else empty. Aborts on OOM. */
tg_record_t *tg_record_new(void);

/** Free r and everything it owns. NULL is fine. */
void tg_record_free(tg_record_t *r);

/** Replace a string field: *field = copy of s (NULL clears). */
void tg_record_set_str(char **field, const char *s);

/** Set a property; names compare case-insensitively, a later value replaces
 *  an earlier one (the first spelling of the name is kept). */
void tg_record_set_property(tg_record_t *r, const char *name, const char *value);

/** Keep a body (request or response), at most max bytes of it (max < 0: no
 *  limit). A cut body ends on a UTF-8 character boundary. */
void tg_record_set_body(tg_record_t *r, bool response, const char *data, size_t len, int64_t max);

/** Keep the response body held in b, taking b's buffer (b is left empty)
 *  rather than copying it when it is within max (max < 0: no limit); else
 *  as tg_record_set_body, which cuts it. */
void tg_record_take_body(tg_record_t *r, tg_buf_t *b, int64_t max);

/* ---- the stored form of bodies (store/body.c) ---- */

/** Bodies shorter than this are stored as they are. */
#define TG_BODY_COMPRESS_MIN 1024
/** The longest body a stored frame may expand to. */
#define TG_BODY_MAX ((size_t)1 << 31)

/** Put r's bodies in their stored form, once (r->bodies_stored): each body
 *  of at least TG_BODY_COMPRESS_MIN bytes becomes an LZ4 frame when that is
 *  at least an eighth smaller, and a body that itself begins as a frame does
 *  is always wrapped in one. The store calls this as it takes a record. */
void tg_record_compress_bodies(tg_record_t *r);

/** Whether p[0..n) begins with the LZ4 frame magic. */
bool tg_body_is_frame(const char *p, size_t n);

/** A stored body back: when p[0..n) is one whole, sound LZ4 frame, *out
 *  gets its content (malloc'd, NUL-terminated) and *out_len its length, and
 *  true is returned; otherwise false (the bytes are the body itself). out
 *  and out_len may be NULL (a check only). */
bool tg_body_expand(const char *p, size_t n, char **out, size_t *out_len);

/** Keep a body read from a store: expanded when it is a frame. */
void tg_record_set_stored_body(tg_record_t *r, bool response, const char *p, size_t n);

/** Approximate heap bytes held by r (queue accounting). */
size_t tg_record_size(const tg_record_t *r);

enum {
    TG_RECORD_JSON_BODIES = 1, /* add request_body and response_body (single-record API) */
    TG_RECORD_JSON_SPOOL = 2,  /* lossless spool line: ms times, cost_nusd, raw bodies */
};

/**
 * Append r as a JSON object. Default: the API form with SPEC §8 names
 * (created_at RFC 3339 UTC with milliseconds, cost an exact decimal in USD,
 * unknown numbers null, properties an object). With TG_RECORD_JSON_BODIES,
 * a body that is itself JSON is embedded as JSON, any other body as a string.
 * Strings that are not valid UTF-8 have the bad bytes replaced by U+FFFD.
 */
void tg_record_to_json(const tg_record_t *r, unsigned flags, tg_buf_t *out);

/** Parse a TG_RECORD_JSON_SPOOL line. Returns a new record, or NULL. */
tg_record_t *tg_record_from_spool(const char *line, size_t len);

/**
 * Append r in its binary form (the store's crash journal): every field,
 * strings and bodies byte for byte behind their lengths, numbers
 * little-endian. A worker packs each record it submits, so this is the
 * cheap form: copies, no escaping (the spool line costs ~10x more). A field
 * added to tg_record_t goes here, in tg_record_unpack and in the spool form.
 */
void tg_record_pack(const tg_record_t *r, tg_buf_t *out);

/** The binary form back: a new record, or NULL when p[0..len) is not
 *  exactly one packed record. */
tg_record_t *tg_record_unpack(const char *p, size_t len);

/** "hit" / "miss" / "none", and back (-1 for anything else). */
const char *tg_record_cache_name(tg_record_cache_t c);
int tg_record_cache_parse(const char *s);

/** Append ms since the epoch as RFC 3339 UTC: 2026-11-05T10:00:00.123Z
 *  (".000" kept, so every time has the same width). */
void tg_record_time_format(int64_t ms, tg_buf_t *out);

/** Parse RFC 3339 ("2026-11-05T10:00:00Z", fractions, "+02:00" offsets, a
 *  bare date "2026-11-05" = midnight UTC) or Unix seconds ("1762336800",
 *  fractions allowed) into ms since the epoch. Returns 0 or -1. */
int tg_record_time_parse(const char *s, int64_t *ms);

/** Days since 1970-01-01 of a proleptic Gregorian UTC date, and back. */
int64_t tg_record_days_from_civil(int64_t y, unsigned m, unsigned d);
void tg_record_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/** Append s (len bytes) as a JSON string with quotes, invalid UTF-8 -> U+FFFD. */
void tg_record_json_str(tg_buf_t *out, const char *s, size_t len);

/** The properties as one JSON object ({"name":"value",...}), appended to out. */
void tg_record_props_json(const tg_record_t *r, tg_buf_t *out);

#endif
