#!/usr/bin/env bash
# bench/callgrind.sh — instructions per proxied request on the worker thread.
#
#   ./bench/callgrind.sh [BIN]          (default build/tollgate)
#   UPSTREAM=tls ./bench/callgrind.sh   the upstream over HTTPS
#   UPSTREAM=sse ./bench/callgrind.sh   streamed answers (50 chunks + usage)
#   UPSTREAM=events ./bench/callgrind.sh   50 events, one per upstream read
#   EXTRA_YAML='cost_tracking: { budgets: { daily: 1000 } }' ./bench/callgrind.sh
#
# Starts the static upstream of bench/proxy.sh (nginx, plain HTTP on
# loopback; UPSTREAM=tls: over HTTPS with a throwaway certificate;
# UPSTREAM=sse: plain HTTP, "stream": true, answered with proxy.sh's event
# stream of 50 chunks, bench/sse-body.sh; UPSTREAM=events: the project's
# fake provider, tests/e2e/fake-provider.js, streaming 50 content events
# 1 ms apart, so that each reaches the gateway in a read of its own, as a
# model's tokens do), runs the
# gateway under callgrind with one worker and request logging on, sends
# WARMUP requests, zeroes the counters, sends REQUESTS more on one keep-alive
# connection (sequentially), dumps, and prints the worker thread's
# instructions divided by REQUESTS, and the writer thread's. Needs valgrind,
# nginx, node and (for tls) openssl. The environment of the run is the
# caller's (TOLLGATE_UPSTREAM=curl picks the libcurl relay).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_bin "${1:-}"
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
UPSTREAM=${UPSTREAM:-plain}
bench_start cg

bench_upstream
GW=$(free_port)
REQUEST=$ROOT/bench/request.json
BASE="http://localhost:$UP/v1"
case $UPSTREAM in
plain) ;;
tls)
    export SSL_CERT_FILE=$TMP/up/cert.pem
    BASE="https://localhost:$UP_TLS/v1"
    ;;
sse)
    BASE="http://localhost:$UP/sse/v1"
    sed -e 's#^{#{"stream":true,#' "$ROOT/bench/request.json" >"$TMP/request-sse.json"
    REQUEST=$TMP/request-sse.json
    ;;
events)
    node "$ROOT/tests/e2e/fake-provider.js" 0 >"$TMP/fake.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        grep -q LISTENING "$TMP/fake.log" && break
        sleep 0.1
    done
    BASE="http://127.0.0.1:$(awk '/LISTENING/ {print $2}' "$TMP/fake.log")/v1"
    sed -e 's#^{#{"stream":true,#' "$ROOT/bench/request.json" >"$TMP/request-sse.json"
    REQUEST=$TMP/request-sse.json
    export DRIVE_HEADERS='{"x-fake-chunks":"50","x-fake-chunk-delay-ms":"1"}'
    ;;
*)
    echo "UPSTREAM must be plain, tls, sse or events" >&2
    exit 2
    ;;
esac
cat >"$TMP/tollgate.yaml" <<YAML
server: { host: 127.0.0.1, port: $GW, workers: 1 }
providers:
  bench: { base_url: "$BASE", api_key: "sk-bench" }
logging: { level: warn }
storage: { url: "sqlite:$TMP/tollgate.db" }
YAML
# more configuration, e.g. a budget that applies to every request
[[ -z ${EXTRA_YAML:-} ]] || printf '%s\n' "$EXTRA_YAML" >>"$TMP/tollgate.yaml"
(cd "$TMP" && exec valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$TMP/cg.%p" \
    "$BIN" --config "$TMP/tollgate.yaml") >"$TMP/gw.log" 2>&1 &
VG=$!
PIDS+=($VG)
wait_health "$GW" || true
drive "$GW" /v1/chat/completions "$REQUEST" "$WARMUP"
callgrind_control -z "$VG" >/dev/null
drive "$GW" /v1/chat/completions "$REQUEST" "$REQUESTS"
sleep 1
callgrind_control -d "$VG" >/dev/null
sleep 2
# Each thread's last dump: the counts since the zeroing
echo "instructions per request (${REQUESTS} requests, $UPSTREAM upstream, $(basename "$BIN")):"
for f in $(ls "$TMP"/cg.*-* 2>/dev/null | grep -E '\.[0-9]+-[0-9]+$' | sort); do
    ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
    [[ -n $ir ]] || ir=$(grep -m1 '^totals:' "$f" | awk '{print $2}')
    printf '  %-28s %12s Ir  %10.0f per request\n' "$(basename "$f")" "$ir" "$(awk -v a="$ir" -v n="$REQUESTS" 'BEGIN{print a/n}')"
done
if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept: $TMP"; fi
