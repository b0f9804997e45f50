/*
 * reply.h — the one writer of the replies the gateway makes itself (SPEC §9):
 * an error in the client's dialect.
 *
 *   OpenAI     {"error":{"message":M,"type":T,"code":C}}   C a string or null
 *   Anthropic  {"type":"error","error":{"type":T,"message":M}}
 *   Gemini     {"error":{"code":STATUS,"message":M,"status":S}}
 *              (Google's shape: its code is the HTTP status, a number)
 *
 * The type follows the status (tg_translate_error_type); the message goes
 * through tg_buf_json_escape, so any bytes make valid UTF-8 JSON. A
 * provider's own error answer is not written here: it is translated
 * (tg_translate_error). Pure, any thread; tg_reply_error runs on the
 * worker thread of its request.
 */
#ifndef TG_REPLY_H
#define TG_REPLY_H

#include "core/util.h"
#include "providers/translate.h"
#include "server/http.h"

/** Append the error body for `wire` to out. code may be NULL. */
void tg_reply_error_body(tg_buf_t *out, tg_wire_t wire, int status, const char *code,
                         const char *message);

/** The same body with the type given (NULL: by status) and `extra`, one or
 *  more JSON members already written (`"budget":{...}`), added inside the
 *  error object (may be NULL). */
void tg_reply_error_with(tg_buf_t *out, tg_wire_t wire, int status, const char *type,
                         const char *code, const char *message, const char *extra);

/** Answer h with that error (application/json). */
void tg_reply_error(tg_http_t *h, tg_wire_t wire, int status, const char *code,
                    const char *message);

/** The dialect of a request path, for answers made before a route is
 *  chosen: /v1/messages… Anthropic, /v1beta/… Gemini, else OpenAI. */
tg_wire_t tg_reply_wire_of_path(const char *path);

#endif
