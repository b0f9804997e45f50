/*
 * translate_util.h — the helpers every translation direction shares
 * (translate_util.c, dialect_errors.c): small JSON helpers, usage objects,
 * stop reasons, the stream-state base and event emitters. Only files in
 * providers/ include it; it includes nothing of theirs but translate.h.
 * Pure; any thread.
 */
#ifndef TG_TRANSLATE_UTIL_H
#define TG_TRANSLATE_UTIL_H

#include "providers/translate.h"

#include <stdarg.h>

/* Bounds on what a stream state counts: past them, events are ignored. */
#define TG_XLAT_MAX_CHOICES 8

/* ---- JSON helpers (NULL-safe: a missing or mistyped member is NULL) ---- */

/** The string member `key` of `o`, or NULL. */
const char *tg_xj_str(json_t *o, const char *key);
/** True when member `key` is the string `v`. */
bool tg_xj_is(json_t *o, const char *key, const char *v);

/** Append `items` (stolen) to `list` as a {"role": role, field: items} turn,
 *  merged into the last turn when it has the same role (Anthropic and
 *  Gemini both require roles to alternate). An empty `items` adds nothing. */
void tg_xj_push_turn(json_t *list, const char *role, const char *field, json_t *items);
/** Integer member as long, or -1 when absent or not an integer >= 0. */
long tg_xj_count(json_t *o, const char *key);
/** Copy member `from_key` of `src` into `dst` as `to_key`, when present and
 *  not null. */
void tg_xj_copy(json_t *dst, const char *to_key, json_t *src, const char *from_key);
/** json_dumps with TG_TRANSLATE_DUMP_FLAGS into out; decrefs doc. */
void tg_xj_dump(tg_buf_t *out, json_t *doc);
/** A JSON string from a tg_buf_t (empty when NULL data). */
json_t *tg_xj_buf_string(const tg_buf_t *b);
/** Parse a tool call's `arguments` string into an object: "" -> {}.
 *  NULL when it is not a JSON object. */
json_t *tg_xj_parse_args(const char *s, size_t len);
/** A request's tool call `function.arguments` as an object: a string is
 *  parsed (tg_xj_parse_args), an object kept, anything else is {}. NULL
 *  when a string is not a JSON object. New reference. */
json_t *tg_xj_call_input(json_t *args);

/** printf into err (may be NULL); returns -1 for `return tg_xerr(...)`. */
int tg_xerr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Append the text of an OpenAI `content` (string, or the text of its text
 *  parts) to b. */
void tg_xj_content_text(json_t *content, tg_buf_t *b);

/** Split a data URI "data:MIME;base64,DATA". Returns false when `url` is not
 *  a base64 data URI. mime/data are new JSON strings on success. */
bool tg_xj_data_uri(const char *url, json_t **mime, json_t **data);

/* ---- usage ---- */

/** usage -> OpenAI "usage" object (NULL when nothing is known). */
json_t *tg_xlat_openai_usage_json(const tg_usage_t *u);
/** usage -> Anthropic "usage" object; unknown counts are written as 0. */
json_t *tg_xlat_anthropic_usage_json(const tg_usage_t *u);

/* ---- stop reasons ---- */

const char *tg_xlat_finish_from_anthropic(const char *stop_reason);
const char *tg_xlat_stop_from_openai(const char *finish_reason);
const char *tg_xlat_finish_from_gemini(const char *finish_reason, bool had_tool_calls);

/* ---- streams ---- */

struct tg_translate_stream {
    const struct tg_xstream_ops *ops;
    tg_usage_t usage;
    char *id;
    char *model;
    long created;
    bool include_usage;
    long prompt_estimate; /* tg_translate_opts_t.prompt_estimate */
    bool done;            /* terminal events written */
    char *error;          /* the provider's own message, when its stream carried an error */
    long seq;             /* Responses clients: the next event's sequence_number */
};

typedef struct tg_xstream_ops {
    size_t size; /* of the dialect's state, which starts with the base */
    void (*init)(tg_translate_stream_t *s);
    void (*feed)(tg_translate_stream_t *s, const char *event, json_t *doc, tg_buf_t *out);
    void (*finish)(tg_translate_stream_t *s, tg_buf_t *out);
    void (*destroy)(tg_translate_stream_t *s);
    /** The provider's stream has said it is over (NULL: `done`, which its
     *  terminator or error event sets through feed). */
    bool (*ended)(const tg_translate_stream_t *s);
} tg_xstream_ops_t;

/** A stream over a direction's operations (tg_translate_stream_new without
 *  the table: the chain composes two directions with it). */
tg_translate_stream_t *tg_xstream_new(const tg_xstream_ops_t *ops, const tg_translate_opts_t *o);

/** Replace s->model when the provider names its model. */
void tg_xstream_set_model(tg_translate_stream_t *s, const char *model);

/** An OpenAI chat.completion.chunk skeleton for this stream (choices empty). */
json_t *tg_xlat_chunk(const tg_translate_stream_t *s);
/** A chunk with one choice: {"index":i,"delta":delta,"finish_reason":fr}. */
json_t *tg_xlat_chunk_choice(const tg_translate_stream_t *s, size_t index, json_t *delta,
                             const char *finish_reason);
/** The OpenAI index of a streamed tool-call fragment: its "index", else
 *  (servers that send none) the last call's, or the next one when the
 *  fragment carries an id. `last` is -1 before any call. */
long tg_xlat_call_index(json_t *call, long last);
/** Emit `data: JSON` (decrefs doc). */
void tg_xlat_emit(tg_buf_t *out, json_t *doc);
/** Emit `event: NAME` + `data: JSON` (decrefs doc). */
void tg_xlat_emit_named(tg_buf_t *out, const char *event, json_t *doc);
/** The OpenAI end of a stream: usage chunk when asked, then [DONE]. */
void tg_xlat_openai_tail(tg_translate_stream_t *s, tg_buf_t *out);
/** A provider error inside a stream, as an OpenAI error event; the stream
 *  ends and keeps the provider's message (tg_xstream_note_error). */
void tg_xlat_openai_stream_error(tg_translate_stream_t *s, tg_buf_t *out, json_t *doc);
/** Keep the message of the provider's error event `doc` (the first one) for
 *  tg_translate_stream_error. */
void tg_xstream_note_error(tg_translate_stream_t *s, json_t *doc);

#endif
