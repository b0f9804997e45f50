/*
 * mock.c — the built-in `mock` provider: answers chat completions (plain and
 * streamed), legacy completions and embeddings locally, deterministically,
 * with usage, so a first run needs no key and no network. Pure; any thread.
 *
 * The reply quotes the last user message, so a caller can see its request
 * went through; tokens are estimated at about four characters a token for
 * the prompt, and one token a streamed word for the reply.
 */
#include "providers/provider.h"
#include "providers/translate_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MOCK_QUOTE_MAX 200

long tg_estimate_tokens(const char *text, size_t len)
{
    (void)text;
    return (long)((len + 3) / 4);
}

static void prompt_of(tg_mock_kind_t kind, json_t *req, tg_buf_t *all, tg_buf_t *last_user,
                      long *n_messages)
{
    *n_messages = 0;
    if (kind == TG_MOCK_CHAT) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(req, "messages"), i, m)
        {
            tg_buf_t t = {0};
            tg_xj_content_text(json_object_get(m, "content"), &t);
            if (t.len)
                tg_buf_append(all, t.data, t.len);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (role && !strcmp(role, "user")) {
                tg_buf_reset(last_user);
                if (t.len)
                    tg_buf_append(last_user, t.data, t.len);
            }
            tg_buf_free(&t);
            (*n_messages)++;
        }
        return;
    }
    json_t *in = json_object_get(req, kind == TG_MOCK_COMPLETIONS ? "prompt" : "input");
    if (json_is_string(in)) {
        tg_buf_append(all, json_string_value(in), json_string_length(in));
        tg_buf_append(last_user, json_string_value(in), json_string_length(in));
        *n_messages = 1;
    } else if (json_is_array(in)) {
        size_t i;
        json_t *s;
        json_array_foreach(in, i, s) if (json_is_string(s))
        {
            tg_buf_append(all, json_string_value(s), json_string_length(s));
            tg_buf_reset(last_user);
            tg_buf_append(last_user, json_string_value(s), json_string_length(s));
            (*n_messages)++;
        }
    }
}

static void reply_text(const tg_buf_t *last_user, tg_buf_t *out)
{
    tg_buf_puts(out, "This is tollgate's mock provider.");
    if (last_user->len) {
        size_t n = last_user->len > MOCK_QUOTE_MAX ? MOCK_QUOTE_MAX : last_user->len;
        /* Do not cut a UTF-8 sequence in half. */
        while (n < last_user->len && n > 0 && ((unsigned char)last_user->data[n] & 0xC0) == 0x80)
            n--;
        tg_buf_puts(out, " You said: ");
        tg_buf_append(out, last_user->data, n);
        if (n < last_user->len)
            tg_buf_puts(out, "...");
    }
}

static int mock_error(tg_buf_t *out, const char *msg)
{
    tg_buf_openai_error(out, msg, "invalid_request_error", NULL);
    return 400;
}

/* Split text into pieces at spaces (each piece keeps its leading space). */
static size_t next_piece(const char *s, size_t len, size_t off)
{
    size_t i = off + 1;
    while (i < len && s[i] != ' ')
        i++;
    return i;
}

static void append_json_str(tg_buf_t *out, const char *s, size_t len)
{
    tg_buf_puts(out, "\"");
    tg_buf_json_escape(out, s, len);
    tg_buf_puts(out, "\"");
}

static void usage_json(tg_buf_t *out, long prompt, long completion)
{
    tg_buf_printf(out, "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld}",
                  prompt, completion, prompt + completion);
}

static int embeddings(json_t *req, const char *model, tg_buf_t *out)
{
    json_t *in = json_object_get(req, "input");
    size_t n = json_is_array(in) ? json_array_size(in) : 1;
    if (!json_is_string(in) && !json_is_array(in))
        return mock_error(out, "'input' must be a string or an array");
    long tokens = 0;
    tg_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(in) ? json_array_get(in, i) : in;
        const char *text = json_is_string(s) ? json_string_value(s) : "";
        size_t len = strlen(text);
        tokens += tg_estimate_tokens(text, len);
        /* 8 dimensions from an FNV-1a hash of the text: same text, same vector. */
        uint32_t h = 2166136261u;
        for (size_t k = 0; k < len; k++)
            h = (h ^ (unsigned char)text[k]) * 16777619u;
        tg_buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":[",
                      i ? "," : "", i);
        for (int d = 0; d < 8; d++) {
            h = h * 1103515245u + 12345u;
            tg_buf_printf(out, "%s%.6f", d ? "," : "", (double)(h >> 8) / 16777216.0 * 2.0 - 1.0);
        }
        tg_buf_puts(out, "]}");
    }
    tg_buf_puts(out, "],\"model\":");
    append_json_str(out, model, strlen(model));
    tg_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%ld,\"total_tokens\":%ld}}", tokens, tokens);
    return 200;
}

int tg_mock_answer(tg_mock_kind_t kind, json_t *req, const char *model, bool stream, tg_buf_t *out)
{
    if (kind == TG_MOCK_EMBEDDINGS)
        return embeddings(req, model, out);
    if (kind == TG_MOCK_CHAT && !json_is_array(json_object_get(req, "messages")))
        return mock_error(out, "'messages' must be an array");

    tg_buf_t all = {0}, last = {0}, text = {0};
    long n_messages;
    prompt_of(kind, req, &all, &last, &n_messages);
    reply_text(&last, &text);
    long prompt_tokens = tg_estimate_tokens(all.data, all.len) + 3 * n_messages;
    long completion_tokens = 0;
    for (size_t off = 0; off < text.len; off = next_piece(text.data, text.len, off))
        completion_tokens++;

    char id[37];
    tg_uuid4(id);
    long created = (long)time(NULL);
    bool chat = kind == TG_MOCK_CHAT;
    const char *object =
        chat ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";

    if (!stream) {
        tg_buf_printf(out, "{\"id\":\"%s-%s\",\"object\":\"%s\",\"created\":%ld,\"model\":",
                      chat ? "chatcmpl" : "cmpl", id, object, created);
        append_json_str(out, model, strlen(model));
        if (chat) {
            tg_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                             "\"content\":");
            append_json_str(out, text.data, text.len);
            tg_buf_puts(out, "},\"finish_reason\":\"stop\"}],\"usage\":");
        } else {
            tg_buf_puts(out, ",\"choices\":[{\"index\":0,\"text\":");
            append_json_str(out, text.data, text.len);
            tg_buf_puts(out, ",\"finish_reason\":\"stop\"}],\"usage\":");
        }
        usage_json(out, prompt_tokens, completion_tokens);
        tg_buf_puts(out, "}");
    } else {
        json_t *so = json_object_get(req, "stream_options");
        bool include_usage = json_is_true(json_object_get(so, "include_usage"));
        tg_buf_t head = {0};
        tg_buf_printf(&head, "{\"id\":\"%s-%s\",\"object\":\"%s\",\"created\":%ld,\"model\":",
                      chat ? "chatcmpl" : "cmpl", id, object, created);
        append_json_str(&head, model, strlen(model));
        if (chat) {
            tg_buf_printf(out,
                          "data: %s,\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                          "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
                          head.data);
        }
        for (size_t off = 0, end; off < text.len; off = end) {
            end = next_piece(text.data, text.len, off);
            tg_buf_printf(out, "data: %s,\"choices\":[{\"index\":0,", head.data);
            tg_buf_puts(out, chat ? "\"delta\":{\"content\":" : "\"text\":");
            append_json_str(out, text.data + off, end - off);
            tg_buf_puts(out, chat ? "},\"finish_reason\":null}]}\n\n"
                                  : ",\"finish_reason\":null}]}\n\n");
        }
        tg_buf_printf(out,
                      "data: %s,\"choices\":[{\"index\":0,%s,\"finish_reason\":\"stop\"}]}\n\n",
                      head.data, chat ? "\"delta\":{}" : "\"text\":\"\"");
        if (include_usage) {
            tg_buf_printf(out, "data: %s,\"choices\":[],\"usage\":", head.data);
            usage_json(out, prompt_tokens, completion_tokens);
            tg_buf_puts(out, "}\n\n");
        }
        tg_buf_puts(out, "data: [DONE]\n\n");
        tg_buf_free(&head);
    }
    tg_buf_free(&all);
    tg_buf_free(&last);
    tg_buf_free(&text);
    return 200;
}
