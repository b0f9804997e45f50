/*
 * local.c — answers the gateway makes without calling a provider: the
 * built-in mock provider (mock.c), directly for OpenAI clients and through
 * the same translators a real call would use for the others, and a local
 * count_tokens estimate for providers that have none. Each ends its
 * exchange. Thread: the worker thread of the exchange.
 */
#include "providers/provider.h"
#include "proxy/exchange.h"

#include <string.h>

void tg_local_count_tokens(tg_exchange_t *x)
{
    tg_buf_t out = {0};
    tg_translate_count_tokens(tg_exchange_in_root(x), &out);
    x->status = 200;
    tg_http_reply(x->h, 200, "application/json", out.data, out.len);
    tg_buf_free(&out);
    tg_exchange_finish(x);
}

/* The mock is free, and says who answered. */
static void mock_headers(tg_exchange_t *x)
{
    x->cost_nusd = x->cfg->cost_enabled ? 0 : -1;
    tg_http_add_header(x->h, "Helicone-Provider", "mock");
    tg_exchange_policy_headers(x);
}

/* A stream the mock made, sent whole. */
static void send_stream(tg_exchange_t *x, const char *data, size_t len)
{
    tg_http_add_header(x->h, "Cache-Control", "no-cache");
    tg_http_stream_start(x->h, 200, "text/event-stream");
    tg_http_stream_write(x->h, data, len);
    tg_http_stream_end(x->h);
}

/* A client of another dialect on the mock: its request translated to Chat
 * Completions, the mock's answer translated back. */
static void mock_translated(tg_exchange_t *x, bool stream)
{
    const tg_translator_t *t = tg_translate_for(x->wire, x->target.provider->type);
    char err[512];
    tg_translate_ropts_t ro = {.stream_usage = true};
    tg_translate_req_t rq;
    memset(&rq, 0, sizeof rq);
    if (!t || tg_translate_request(t, tg_exchange_in_root(x), x->target.model, &ro, &rq, err,
                                   sizeof err) < 0) {
        tg_translate_req_free(&rq);
        tg_exchange_error(x, 400, "untranslatable_request", t ? err : "no translation to the mock");
        return;
    }
    tg_buf_t mock = {0}, out = {0};
    x->status = tg_mock_answer(TG_MOCK_CHAT, rq.body, x->target.model, stream, &mock);
    tg_translate_opts_t o = {.id = x->id,
                             .created = (long)(x->t0_wall_ms / 1000),
                             .model = x->target.model,
                             .prompt_estimate = rq.prompt_estimate};
    tg_translate_req_free(&rq);
    mock_headers(x);
    if (x->status != 200) {
        tg_exchange_note_provider_error(x, mock.data, mock.len, NULL);
        tg_translate_error(x->wire, x->status, mock.data, mock.len, &out);
        tg_http_reply(x->h, x->status, "application/json", out.data, out.len);
    } else if (!stream) {
        tg_translate_response(t, mock.data, mock.len, &o, &out, &x->usage);
        tg_filters_copy_to_log(x, out.data, out.len);
        tg_http_reply(x->h, 200, "application/json", out.data, out.len);
    } else { /* through the translate filter, into att.f.sse_out */
        tg_filters_t *f = &x->att.f;
        f->ts = tg_translate_stream_new(t, &o);
        tg_sse_parser_t sp = {0};
        tg_sse_feed(&sp, mock.data, mock.len, tg_filters_event, x);
        tg_sse_free(&sp);
        tg_translate_stream_finish(f->ts, &f->sse_out);
        tg_translate_stream_usage(f->ts, &x->usage);
        tg_filters_copy_to_log(x, f->sse_out.data, f->sse_out.len);
        send_stream(x, f->sse_out.data, f->sse_out.len);
    }
    tg_buf_free(&mock);
    tg_buf_free(&out);
    tg_exchange_finish(x);
}

/* The mock's usage: in its JSON, or in the events of its stream. */
static void take_usage_from_mock(tg_exchange_t *x, const tg_buf_t *out, bool stream)
{
    if (!stream) {
        tg_provider_rec_of(x->target.provider)
            ->dialect->answer_usage(out->data, out->len, &x->usage);
        return;
    }
    tg_sse_parser_t p = {0};
    tg_sse_feed(&p, out->data, out->len, tg_filters_event, x); /* hide_usage is off */
    tg_sse_free(&p);
}

void tg_local_mock(tg_exchange_t *x)
{
    bool stream = x->in_stream;
    if (x->wire != TG_WIRE_OPENAI) { /* Anthropic, Gemini and Responses clients */
        mock_translated(x, stream);
        return;
    }
    tg_mock_kind_t kind;
    switch (x->route) {
    case TG_ROUTE_CHAT: kind = TG_MOCK_CHAT; break;
    case TG_ROUTE_COMPLETIONS: kind = TG_MOCK_COMPLETIONS; break;
    case TG_ROUTE_EMBEDDINGS:
        kind = TG_MOCK_EMBEDDINGS;
        stream = false;
        break;
    default:
        tg_exchange_error(x, 400, "unsupported_route",
                          "the mock provider answers chat completions, completions and embeddings");
        return;
    }
    tg_buf_t out = {0};
    x->status = tg_mock_answer(kind, tg_exchange_in_root(x), x->target.model, stream, &out);
    if (x->status == 200)
        take_usage_from_mock(x, &out, stream);
    else
        tg_exchange_note_provider_error(x, out.data, out.len, NULL);
    tg_filters_copy_to_log(x, out.data, out.len);
    mock_headers(x);
    if (stream && x->status == 200)
        send_stream(x, out.data, out.len);
    else
        tg_http_reply(x->h, x->status, "application/json", out.data, out.len);
    tg_buf_free(&out);
    tg_exchange_finish(x);
}
