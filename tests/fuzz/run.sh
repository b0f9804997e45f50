#!/bin/sh
# Build the libFuzzer targets with clang and run each for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS [TARGET...]]   (default 20 s a target, every
#                                             target; run from anywhere)
#
# Targets: the SSE parser, the JSON member look-ups, the reader of client
# requests, the reader of providers' HTTP/1.1 answers (response), each translation direction (openai->anthropic,
# openai->gemini, anthropic->openai, anthropic->gemini, responses->anthropic,
# responses->gemini, responses->openai (the mock's): requests, answers,
# error bodies, streams; OpenAI embeddings -> Gemini), the prices file reader
# (prices), and the provider URL builders (paths: no URL
# leaves the base path, as libcurl and a lenient server read it), and the
# writers of the gateway's own error bodies (errors: always valid UTF-8 JSON),
# and the parsers of Helicone's conventions (helicone: Helicone-Fallbacks,
# model lists, manual logs; built from every source, as they read the
# configuration and the router), and what the dashboard reads from a
# request (dashboard: its file server's path, Accept-Encoding and
# If-None-Match, and a series query string), and what the OpenTelemetry
# export reads (otlp: traceparent headers, a provider's answer id and
# model, span strings encoded as OTLP JSON), and the stored form of bodies
# (body: LZ4 frames from a database that may be damaged, and the round
# trip of any body through compression). The
# request and response targets use http.dict, paths paths.dict, the others json.dict.
# The harness compiles the sources it needs directly, with ASan + UBSan +
# libFuzzer; no Makefile involved. Corpora live in
# build-fuzz/corpus/<target> and grow across runs; they are seeded from the
# golden cases. Exits non-zero when any target finds a crash, leak,
# sanitizer report or broken property; the reproducer is left in
# build-fuzz/ (crash-*, leak-*, ...).
set -u
SECS=${1:-20}
[ $# -gt 0 ] && shift
TARGETS=${*:-sse jsonscan request response openai_to_anthropic openai_to_gemini anthropic_to_openai anthropic_to_gemini responses_to_anthropic responses_to_gemini responses_to_openai embeddings paths errors prices helicone dashboard otlp body}
cd "$(dirname "$0")/../.." || exit 2
OUT=build-fuzz
CC=${FUZZ_CC:-clang}
mkdir -p "$OUT/corpus" "$OUT/seeds"

CFLAGS="-std=c11 -D_GNU_SOURCE -DTG_VERSION=\"fuzz\" -g -O1 -Isrc -Itests/fuzz $(pkg-config --cflags jansson libpq hiredis)
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -fno-omit-frame-pointer"
LIBS="$(pkg-config --libs jansson) -lhttp_parser"
TRANSLATE_SRCS="src/providers/translate.c src/providers/translate_util.c src/providers/dialect_errors.c
    src/providers/count_tokens.c src/providers/anthropic.c src/providers/anthropic_stream.c
    src/providers/gemini.c src/providers/gemini_stream.c src/providers/openai.c
    src/providers/openai_stream.c src/providers/translate_chain.c src/providers/azure.c
    src/providers/responses.c src/providers/responses_stream.c
    src/providers/embeddings.c
    src/providers/registry.c
    src/providers/mock.c src/core/sse.c src/core/util.c src/core/jsonscan.c
    src/core/urlpath.c"

if command -v python3 >/dev/null 2>&1; then
    rm -rf "$OUT/seeds" && python3 tests/fuzz/seeds.py "$OUT/seeds"
fi

# the dashboard's files as the build embeds them (every source needs them)
./scripts/embed-assets.sh "$OUT/dashboard_assets.c" src/dashboard/www \
    $(find src/dashboard/www -type f | sort) || exit 2

failed=""
total=0
for target in $TARGETS; do
    total=$((total + 1))
    bin="$OUT/fuzz_$target"
    srcs="src/core/sse.c src/core/util.c"
    [ "$target" = jsonscan ] && srcs="src/core/jsonscan.c"
    [ "$target" = request ] && srcs="src/server/request.c src/core/util.c"
    [ "$target" = response ] && srcs="src/proxy/h1parse.c src/core/util.c"
    case $target in sse | jsonscan | request | response | body) ;; *) srcs="$TRANSLATE_SRCS" ;; esac
    [ "$target" = errors ] && srcs="$TRANSLATE_SRCS src/proxy/reply.c"
    [ "$target" = prices ] && srcs="src/cost/price_file.c src/cost/cost.c src/cost/prices.c"
    [ "$target" = body ] && srcs="src/store/body.c src/core/util.c"
    [ "$target" = otlp ] && srcs="src/otlp/otlp_json.c src/core/jsonscan.c src/core/util.c
        src/store/record.c src/store/body.c src/cost/cost.c src/cost/prices.c src/cost/price_file.c"
    libs="$LIBS"
    case $target in body | otlp) libs="$LIBS $(pkg-config --libs liblz4) -lpthread" ;; esac
    if [ "$target" = helicone ] || [ "$target" = dashboard ]; then
        srcs="$(find src -name '*.c' ! -name main.c | sort) $OUT/dashboard_assets.c"
        libs="$LIBS -levent_pthreads -levent_openssl -levent -lcurl -lyaml -lssl -lcrypto -lsqlite3 -lpq -lhiredis -llz4 -lpthread -lm"
    fi
    dict=json.dict
    [ "$target" = request ] && dict=http.dict
    [ "$target" = response ] && dict=http.dict
    if [ "$target" = paths ]; then
        libs="$LIBS $(pkg-config --libs libcurl)" # curl reads the URLs
        dict=paths.dict
    fi
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS "tests/fuzz/fuzz_$target.c" $srcs -o "$bin" $libs; then
        echo "fuzz: $target does not build" >&2
        failed="$failed $target"
        continue
    fi
    mkdir -p "$OUT/corpus/$target" "$OUT/seeds/$target"
    echo "fuzz: $target for ${SECS}s"
    if ! (cd "$OUT" && "./fuzz_$target" -max_total_time="$SECS" -max_len=65536 -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -dict="../tests/fuzz/$dict" \
            "corpus/$target" "seeds/$target" >"fuzz_$target.log" 2>&1); then
        echo "fuzz: $target FOUND A PROBLEM (see $OUT/fuzz_$target.log)" >&2
        tail -40 "$OUT/fuzz_$target.log" >&2
        failed="$failed $target"
    else
        grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$OUT/fuzz_$target.log" | tail -1
    fi
done
nfailed=$(echo $failed | wc -w)
echo "fuzz: $((total - nfailed)) passed, $nfailed failed"
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed" >&2
    exit 1
fi
