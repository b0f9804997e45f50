/*
 * count_tokens.c — the local answer to POST /v1/messages/count_tokens when
 * the provider is not Anthropic's (only Anthropic counts tokens for the
 * Messages format). The estimate is deliberately simple and documented in
 * docs/dialects.md: about four characters a token (tg_estimate_tokens) over
 * every text the model reads — system, message text, tool calls and
 * results, thinking, tool definitions as JSON — plus 3 tokens a message for
 * the role framing and 1,600 for each image or document (the most Anthropic
 * charges an image after resizing). Pure; any thread.
 */
#include "providers/provider.h"
#include "providers/translate_util.h"

#include <stdlib.h>
#include <string.h>

#define MSG_OVERHEAD 3
#define MEDIA_TOKENS 1600
/* Nesting followed inside tool_result contents. */
#define MAX_DEPTH 4

typedef struct {
    size_t chars;
    long media;
    long messages;
} tally_t;

static void add_json(tally_t *t, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        t->chars += strlen(s);
        free(s);
    }
}

static void add_str(tally_t *t, json_t *v)
{
    if (json_is_string(v))
        t->chars += json_string_length(v);
}

static void add_content(tally_t *t, json_t *content, int depth);

static void add_block(tally_t *t, json_t *b, int depth)
{
    const char *type = tg_xj_str(b, "type");
    if (!type)
        return;
    if (!strcmp(type, "text")) {
        add_str(t, json_object_get(b, "text"));
    } else if (!strcmp(type, "image") || !strcmp(type, "document")) {
        t->media++;
    } else if (!strcmp(type, "tool_use") || !strcmp(type, "server_tool_use")) {
        add_str(t, json_object_get(b, "name"));
        add_json(t, json_object_get(b, "input"));
    } else if (!strcmp(type, "tool_result")) {
        add_content(t, json_object_get(b, "content"), depth + 1);
    } else if (!strcmp(type, "thinking")) {
        add_str(t, json_object_get(b, "thinking"));
    }
}

static void add_content(tally_t *t, json_t *content, int depth)
{
    if (depth > MAX_DEPTH)
        return;
    if (json_is_string(content)) {
        add_str(t, content);
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) add_block(t, b, depth);
}

long tg_translate_count_tokens(json_t *req, tg_buf_t *out)
{
    tally_t t = {0};
    add_content(&t, json_object_get(req, "system"), 0);
    size_t i;
    json_t *m, *tool;
    json_array_foreach(json_object_get(req, "messages"), i, m)
    {
        t.messages++;
        add_content(&t, json_object_get(m, "content"), 0);
    }
    json_array_foreach(json_object_get(req, "tools"), i, tool) add_json(&t, tool);
    long n = tg_estimate_tokens(NULL, t.chars) + MSG_OVERHEAD * t.messages + MEDIA_TOKENS * t.media;
    if (out)
        tg_buf_printf(out, "{\"input_tokens\":%ld}", n);
    return n;
}
