#!/usr/bin/env bash
# bench/sse-body.sh — the event stream the static upstream of proxy.sh and
# callgrind.sh serves under /sse/: 50 chat.completion.chunk events, a
# finishing chunk, a usage chunk and [DONE]. Sourced; sets SSE_BODY.
SSE_BODY=
for ((i = 0; i < 50; i++)); do
    SSE_BODY+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1727889600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":null}]}'$'\n\n'
done
SSE_BODY+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1727889600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'$'\n\n'
SSE_BODY+='data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1727889600,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":50,"total_tokens":74}}'$'\n\n'
SSE_BODY+='data: [DONE]'$'\n\n'
