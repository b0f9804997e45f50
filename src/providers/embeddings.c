/*
 * embeddings.c — OpenAI's POST /v1/embeddings for a Gemini-type provider:
 * the request becomes one batchEmbedContents call, the answer becomes
 * OpenAI's embedding list (docs/dialects.md, "Embeddings").
 *
 *   input: "text" | ["text", ...]  ->  requests[i].content.parts[0].text
 *   dimensions: N                  ->  requests[i].outputDimensionality
 *   encoding_format: "base64"      ->  each vector as base64 of little-endian
 *                                      float32 (what OpenAI answers, and what
 *                                      LangChain's OpenAIEmbeddings asks for)
 *   {"embeddings":[{"values":[...]}]} -> {"object":"list","data":[{"object":
 *                                      "embedding","index":i,"embedding":...}],
 *                                      "model","usage"}
 *
 * Token arrays (input as integers) cannot be sent to Gemini, which takes text
 * only: a clear 400. Gemini reports no token count for embeddings, so usage
 * is the gateway's local estimate of the input (tg_estimate_tokens, about
 * four characters a token), as docs/dialects.md says. Pure; any thread.
 */
#include "providers/provider.h"
#include "providers/translate_internal.h"

#include <stdint.h>
#include <string.h>

/* Gemini takes at most 100 requests per batch call; OpenAI up to 2048 inputs. */
#define MAX_INPUTS 2048
/* Floats per vector read from an answer (Gemini's largest is 3072). */
#define MAX_VALUES 65536

/* The input's strings, or -1 with the reason in err. */
static long inputs_of(json_t *req, json_t **list, char *err, size_t errlen)
{
    json_t *in = json_object_get(req, "input");
    if (json_is_string(in)) {
        *list = json_pack("[O]", in);
        return 1;
    }
    if (!json_is_array(in) || json_array_size(in) == 0)
        return tg_xerr(err, errlen, "input must be a string or a non-empty array of strings");
    if (json_array_size(in) > MAX_INPUTS)
        return tg_xerr(err, errlen, "input has more than 2048 items");
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v)
    {
        if (json_is_integer(v) || json_is_array(v))
            return tg_xerr(err, errlen,
                           "input as token arrays cannot be sent to a Gemini-type provider "
                           "(it embeds text only): send the text");
        if (!json_is_string(v))
            return tg_xerr(err, errlen, "input must be a string or a non-empty array of strings");
    }
    *list = json_incref(in);
    return (long)json_array_size(in);
}

long tg_embeddings_count_tokens(json_t *req)
{
    json_t *in = json_object_get(req, "input");
    long n = 0;
    if (json_is_string(in))
        return tg_estimate_tokens(json_string_value(in), json_string_length(in));
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v)
    {
        if (json_is_string(v))
            n += tg_estimate_tokens(json_string_value(v), json_string_length(v));
    }
    return n;
}

int tg_embeddings_request_to_gemini(json_t *req, const char *model, tg_translate_req_t *out,
                                    char *err, size_t errlen)
{
    json_t *fmt = json_object_get(req, "encoding_format");
    if (fmt && !json_is_null(fmt) &&
        (!json_is_string(fmt) || (strcmp(json_string_value(fmt), "float") != 0 &&
                                  strcmp(json_string_value(fmt), "base64") != 0)))
        return tg_xerr(err, errlen, "encoding_format must be \"float\" or \"base64\"");
    json_t *dims = json_object_get(req, "dimensions");
    if (dims && !json_is_null(dims) &&
        (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
         json_integer_value(dims) > MAX_VALUES))
        return tg_xerr(err, errlen, "dimensions must be a positive integer");
    json_t *list = NULL;
    if (inputs_of(req, &list, err, errlen) < 0)
        return -1;
    if (!strncmp(model, "models/", 7))
        model += 7;
    char *name = NULL;
    if (asprintf(&name, "models/%s", model) < 0)
        abort();
    json_t *reqs = json_array();
    size_t i;
    json_t *text;
    json_array_foreach(list, i, text)
    {
        json_t *r =
            json_pack("{s:s,s:{s:[{s:O}]}}", "model", name, "content", "parts", "text", text);
        if (dims && json_is_integer(dims))
            json_object_set(r, "outputDimensionality", dims);
        json_array_append_new(reqs, r);
    }
    free(name);
    json_decref(list);
    out->body = json_pack("{s:o}", "requests", reqs);
    out->path = tg_gemini_model_path(model, "batchEmbedContents");
    return 0;
}

/* base64 of the vector as little-endian float32, OpenAI's encoding. */
static json_t *base64_floats(json_t *values)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(values);
    unsigned char *raw = tg_xmalloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        float f = (float)json_number_value(json_array_get(values, i));
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        raw[4 * i] = (unsigned char)u;
        raw[4 * i + 1] = (unsigned char)(u >> 8);
        raw[4 * i + 2] = (unsigned char)(u >> 16);
        raw[4 * i + 3] = (unsigned char)(u >> 24);
    }
    size_t len = n * 4;
    tg_buf_t b = {0};
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)raw[i] << 16;
        if (i + 1 < len)
            w |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < len)
            w |= raw[i + 2];
        char q[4] = {digits[(w >> 18) & 63], digits[(w >> 12) & 63],
                     i + 1 < len ? digits[(w >> 6) & 63] : '=', i + 2 < len ? digits[w & 63] : '='};
        tg_buf_append(&b, q, 4);
    }
    free(raw);
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    tg_buf_free(&b);
    return s;
}

static int embeddings_response(json_t *doc, const tg_translate_opts_t *o, tg_buf_t *out,
                               tg_usage_t *usage, bool base64)
{
    json_t *embs = json_object_get(doc, "embeddings");
    if (!json_is_array(embs))
        return -1;
    json_t *data = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(embs, i, e)
    {
        json_t *values = json_object_get(e, "values");
        bool ok = json_is_array(values) && json_array_size(values) <= MAX_VALUES;
        for (size_t k = 0; ok && k < json_array_size(values); k++)
            ok = json_is_number(json_array_get(values, k));
        if (!ok) {
            json_decref(data);
            return -1;
        }
        json_array_append_new(
            data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)i,
                            "embedding", base64 ? base64_floats(values) : json_incref(values)));
    }
    /* the caller's count of the input (translate.h): Gemini gives none */
    long tokens = usage && usage->prompt_tokens > 0 ? usage->prompt_tokens : 0;
    json_t *root = json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                             o && o->model ? o->model : "", "usage", "prompt_tokens",
                             (json_int_t)tokens, "total_tokens", (json_int_t)tokens);
    char *s = json_dumps(root, TG_TRANSLATE_DUMP_FLAGS);
    tg_buf_puts(out, s);
    free(s);
    json_decref(root);
    if (usage) {
        usage->prompt_tokens = tokens;
        usage->completion_tokens = 0;
    }
    return 0;
}

int tg_embeddings_response_from_gemini(json_t *doc, const tg_translate_opts_t *o, tg_buf_t *out,
                                       tg_usage_t *usage)
{
    return embeddings_response(doc, o, out, usage, false);
}

int tg_embeddings_response_from_gemini_base64(json_t *doc, const tg_translate_opts_t *o,
                                              tg_buf_t *out, tg_usage_t *usage)
{
    return embeddings_response(doc, o, out, usage, true);
}
