/*
 * jsonscan.h — byte-level look-ups in a JSON document that jansson has
 * already accepted (or that a provider sent): where a top-level member's
 * value starts and ends, without building a tree. Used to edit a request
 * body in place (the model name) and to read one member of a large answer
 * (usage) without parsing all of it. Pure; any thread.
 */
#ifndef TG_JSONSCAN_H
#define TG_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Find member `key` of the top-level object in json[0..len). On success sets
 * [*vstart, *vend) to the bytes of its value and returns true; when the key
 * occurs more than once, the last one counts (as in jansson and the
 * providers' parsers). Keys are compared as written (a key spelled with
 * escapes is not found). Returns false for a missing key or a document that
 * is not an object.
 */
bool tg_json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vend);

/** Where one member's value lies: json[start..end), when found. */
typedef struct {
    size_t start, end;
    bool found;
} tg_json_span_t;

/**
 * tg_json_member for several keys in one pass over the document: out[k] is
 * the value of keys[k] (keys must not be empty strings). Returns false, with
 * nothing found, when the document is not an object or ends inside a member.
 */
bool tg_json_members(const char *json, size_t len, const char *const *keys, size_t nkeys,
                     tg_json_span_t *out);

/** The span's value as a non-negative integer, or -1 (absent, or not one). */
long tg_json_span_long(const char *json, tg_json_span_t sp);

/** As tg_json_member_plain_string, for a span already found. */
int tg_json_span_plain_string(const char *json, tg_json_span_t sp, char *out, size_t outlen);

/** True when the span's value is spelled exactly `literal` ("true", say). */
bool tg_json_span_is(const char *json, tg_json_span_t sp, const char *literal);

/** Offset just after the top-level object's '{', or 0 if there is none. */
size_t tg_json_object_start(const char *json, size_t len);

/**
 * True when s[0..len) is what follows a key with an object for its value:
 * white space, ':', white space, then '{' (s points just past the key's
 * closing quote; the object itself is not checked). For byte scans that
 * look for a key anywhere in a document ("usage" in a stream's chunks)
 * without walking its members.
 */
bool tg_json_object_follows(const char *s, size_t len);

/**
 * Strict RFC 8259 check of a whole document (one value, optional white
 * space around it; strings must be valid UTF-8 with legal escapes; nesting
 * up to 512 levels). Returns true, or false with the byte offset and a
 * short reason of the first problem.
 */
bool tg_json_valid(const char *json, size_t len, size_t *err_offset, const char **err_reason);

/**
 * tg_json_valid and tg_json_members in one pass: when the document is
 * valid and an object, out[k] is where keys[k]'s value lies (the last
 * occurrence, keys compared as written, as tg_json_members); when it is
 * valid and not an object, nothing is found; when it is not valid, false
 * as tg_json_valid, nothing found. nkeys may be 0 (out unused).
 */
bool tg_json_valid_members(const char *json, size_t len, const char *const *keys, size_t nkeys,
                           tg_json_span_t *out, size_t *err_offset, const char **err_reason);

/** The value of a top-level integer member, or -1 when absent or not a
 *  non-negative integer. */
long tg_json_member_long(const char *json, size_t len, const char *key);

/** A top-level string member without escapes, copied into out (NUL-terminated).
 *  Returns 1 when found and copied, 0 when absent, -1 when present but not
 *  a plain string (escapes, wrong type, too long): parse it properly then. */
int tg_json_member_plain_string(const char *json, size_t len, const char *key, char *out,
                                size_t outlen);

#endif
