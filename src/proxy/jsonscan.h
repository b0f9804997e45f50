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
 * [*vstart, *vend) to the bytes of its value and returns true. Keys are
 * compared as written (a key spelled with escapes is not found). Returns
 * false for a missing key or a document that is not an object.
 */
bool tg_json_member(const char *json, size_t len, const char *key, size_t *vstart, size_t *vend);

/** Offset just after the top-level object's '{', or 0 if there is none. */
size_t tg_json_object_start(const char *json, size_t len);

#endif
