#!/usr/bin/env bash
# bench/callgrind-threads.sh — instructions per request, per thread: the gateway
# under callgrind (one worker, request logging and bodies on, the static
# nginx upstream of proxy.sh), a few hundred requests to warm up, counters
# zeroed, then wrk for DURATION seconds, then a clean stop (the writer
# stores what is queued). Prints each thread's instructions divided by the
# requests wrk counted: the worker's per request, the store writer's per
# record (every request makes one), the checkpointer's.
#
# Instruction counts do not depend on other load on the machine the way
# wall-clock figures do, but the writer's count per record does depend on
# how many records share a transaction, hence on the request rate valgrind
# allows: compare builds in runs of the same length on the same machine.
#
#   make && ./bench/callgrind-threads.sh
#   TOLLGATE_BIN=/tmp/old/build/tollgate ./bench/callgrind-threads.sh   # another build
#
# Environment: TOLLGATE_BIN (build/tollgate), DURATION (20), CONNECTIONS (4),
# KEEP_TMP=1 keeps the callgrind.out files (callgrind_annotate reads them).
# Needs valgrind, nginx, wrk, curl, openssl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${TOLLGATE_BIN:-$ROOT/build/tollgate}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-4}
for tool in valgrind callgrind_control nginx wrk curl python3 openssl; do
    command -v "$tool" >/dev/null || {
        echo "callgrind.sh: needs $tool" >&2
        exit 1
    }
done
[[ -x $BIN ]] || {
    echo "callgrind.sh: no $BIN (make first)" >&2
    exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-callgrind.XXXXXX")
NG_PID="" TG_PID=""
cleanup() {
    if [[ -n $TG_PID ]]; then kill "$TG_PID" 2>/dev/null || true; fi
    if [[ -n $NG_PID ]]; then kill "$NG_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_UP=$(free_port)
PORT_UP_TLS=$(free_port)
PORT_TG=$(free_port)

# the upstream's HTTPS listener needs a certificate, used or not
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
sed -e "s|@WORKERS@|1|; s|@DIR@|$TMP|g; s|@PORT@|$PORT_UP|; s|@TLS_PORT@|$PORT_UP_TLS|" \
    -e "s|@CERT@|$TMP/cert.pem|; s|@KEY@|$TMP/key.pem|" "$ROOT/bench/nginx-upstream.conf.in" >"$TMP/upstream.conf"
nginx -c "$TMP/upstream.conf" -p "$TMP" >"$TMP/nginx.out" 2>&1 &
NG_PID=$!

cat >"$TMP/tollgate.yaml" <<EOF
server: { host: 127.0.0.1, port: $PORT_TG, workers: 1 }
providers:
  bench: { base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "sk-bench" }
logging: { level: warn }
storage: { url: "sqlite:$TMP/tollgate.db" }
EOF
(cd "$TMP" && exec valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$TMP/callgrind.out.%p" "$BIN" --config "$TMP/tollgate.yaml") \
    >"$TMP/tollgate.log" 2>&1 &
TG_PID=$!

chat() {
    curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sk-client-bench' \
        -H 'Content-Type: application/json' --data @"$ROOT/bench/request.json" \
        "http://127.0.0.1:$PORT_TG/v1/chat/completions"
}
for _ in $(seq 1 120); do
    [[ $(chat 2>/dev/null || true) == 200 ]] && break
    kill -0 "$TG_PID" 2>/dev/null || {
        cat "$TMP/tollgate.log" >&2
        exit 1
    }
    sleep 1
done
for _ in $(seq 1 200); do chat >/dev/null; done
sleep 2 # the warm-up's records stored
callgrind_control -z "$TG_PID" >/dev/null 2>&1
BENCH_REQUEST="$ROOT/bench/request.json" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$ROOT/bench/chat.lua" "http://127.0.0.1:$PORT_TG/v1/chat/completions" >"$TMP/wrk.txt"
kill -TERM "$TG_PID"
wait "$TG_PID" || true
TG_PID=""
N=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
if grep -q 'Non-2xx' "$TMP/wrk.txt"; then
    echo "callgrind.sh: some answers were not 200 (the upstream?):" >&2
    grep 'Non-2xx' "$TMP/wrk.txt" >&2
fi
echo "$("$BIN" --version 2>/dev/null | head -n 1 || true): $N requests in ${DURATION}s," \
    "$CONNECTIONS connections, under callgrind"
for f in "$TMP"/callgrind.out.*-*; do
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    kind=main
    grep -q 'writer_main' "$f" && kind="store writer (per record)"
    grep -q 'tg_exchange' "$f" && kind="worker (per request)"
    grep -q 'tg_sqlite_ckpt_main' "$f" && [[ $kind == main ]] && kind=checkpointer
    printf '%-28s %12d instructions per request\n' "$kind" $((ir / N))
done
