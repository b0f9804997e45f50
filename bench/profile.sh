#!/usr/bin/env bash
# bench/profile.sh — where the gateway's time goes under load, per thread,
# sampled by perf (wall-clock CPU, not instruction counts).
#
#   ./bench/profile.sh [BIN]              (default build/tollgate), plain upstream
#   KIND=sse ./bench/profile.sh           streamed answers (proxy.sh's 50-chunk stream)
#   KIND=tls ./bench/profile.sh           the upstream over HTTPS
#   DURATION=15 CONNECTIONS=64 ./bench/profile.sh
#   WORKERS=2 ./bench/profile.sh          two workers (server.workers), wrk 2 threads
#
# Starts proxy.sh's static upstream (nginx, one worker) and the gateway
# (WORKERS workers, 1 by default, request logging and bodies on, SQLite in
# the run's temp dir), warms it with wrk for 3 s, then loads it with wrk
# (WORKERS threads, CONNECTIONS 32, DURATION 8 s) while `perf record -e cpu-clock -g` samples
# the gateway's threads. It prints wrk's figures (a round with a non-2xx
# answer is an error), the gateway's CPU per request (user + system of all
# its threads from /proc/PID/stat, divided by the requests wrk counted; the
# sampling itself adds a little) and each thread's part of it (by the names
# the gateway gives its threads: tg-worker-N, tg-store-writer,
# tg-sqlite-ckpt...; a thread under 0.1 us is left out), each thread's
# context switches and system calls (epoll_wait, write, futex, pwrite64)
# per request, counted by `perf stat` over the same window, its memory (VmRSS, RssAnon, RssFile), what
# the store left beside the database (a spool file means the writer fell
# behind), then each thread's share of the samples by library, and the
# top symbols of the whole process. PERF_DATA=path keeps perf.data. Needs
# perf (linux-perf), wrk, nginx, curl, node and openssl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_bin "${1:-}"
KIND=${KIND:-plain}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-8}
TOP=${TOP:-40}
WORKERS=${WORKERS:-1}
for t in perf wrk curl node openssl; do
    command -v "$t" >/dev/null || {
        echo "bench/profile.sh needs $t" >&2
        exit 1
    }
done
bench_start prof

bench_upstream
GW=$(free_port)
export BENCH_REQUEST=$ROOT/bench/request.json
BASE="http://127.0.0.1:$UP/v1"
case $KIND in
plain) ;;
tls) BASE="https://localhost:$UP_TLS/v1" ;;
sse)
    BASE="http://127.0.0.1:$UP/sse/v1"
    sed -e 's#^{#{"stream":true,#' "$ROOT/bench/request.json" >"$TMP/request-sse.json"
    BENCH_REQUEST=$TMP/request-sse.json
    ;;
*)
    echo "KIND must be plain, tls or sse" >&2
    exit 2
    ;;
esac
cat >"$TMP/tollgate.yaml" <<YAML
server: { host: 127.0.0.1, port: $GW, workers: $WORKERS }
providers:
  bench: { base_url: "$BASE", api_key: "sk-bench" }
logging: { level: warn }
storage: { url: "sqlite:$TMP/tollgate.db" }
YAML
(cd "$TMP" && SSL_CERT_FILE=$TMP/up/cert.pem exec "$BIN" --config "$TMP/tollgate.yaml") >"$TMP/gw.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
wait_health "$GW" || {
    cat "$TMP/gw.log" >&2
    echo "bench/profile.sh: the gateway did not start" >&2
    exit 1
}
URL="http://127.0.0.1:$GW/v1/chat/completions"
load() { # seconds
    wrk -t"$WORKERS" -c"$CONNECTIONS" -d"$1"s -s "$ROOT/bench/chat.lua" "$URL"
}
load 3 >"$TMP/warm.txt"
cpu() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
# each thread's name and CPU ticks (user + system): "tid name ticks" lines
threads() {
    for t in /proc/"$GW_PID"/task/*; do
        sed -E 's/^([0-9]+) \((.*)\) [A-Z] (.*)$/\1 \2 \3/' "$t/stat" 2>/dev/null |
            awk '{print $1, $2, $13 + $14}'
    done
}
threads >"$TMP/threads0.txt"
c0=$(cpu)
perf record -F 2000 -g -e cpu-clock -p "$GW_PID" -o "$TMP/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
PERF=$!
# per thread: context switches and the system calls that show a loop
# turn's cost (epoll_wait, the journal's write) and the threads' hand-offs
# (futex); pwrite64 is SQLite's. Tracepoints may be missing: then none.
STAT_EVENTS=context-switches,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_write,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64
perf stat -x, --per-thread -e "$STAT_EVENTS" -p "$GW_PID" -o "$TMP/stat.txt" -- sleep "$DURATION" >/dev/null 2>&1 &
STAT=$!
load "$DURATION" >"$TMP/wrk.txt"
c1=$(cpu)
wait "$STAT" || true
threads >"$TMP/threads1.txt"
wait "$PERF" || true
if grep -q "Non-2xx" "$TMP/wrk.txt"; then
    cat "$TMP/wrk.txt" "$TMP/gw.log" >&2
    echo "bench/profile.sh: the gateway answered non-2xx" >&2
    exit 1
fi
n=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
echo "tollgate profile — $(date -u '+%F %T') UTC, $KIND upstream, $WORKERS worker(s), wrk $WORKERS x $CONNECTIONS for ${DURATION}s, $(basename "$BIN")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E "Requests/sec|Latency" "$TMP/wrk.txt"
awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "CPU per request: %.1f us (all threads)\n", (b - a) * 1e6 / hz / n }'
awk -v n="$n" -v hz="$(getconf CLK_TCK)" '
    FNR == NR { t0[$1] = $3; next }
    { d = ($3 - t0[$1]) * 1e6 / hz / n; if (d > 0) printf "  %-16s %6.1f us\n", $2, d }
' "$TMP/threads0.txt" "$TMP/threads1.txt"
if [[ -s $TMP/stat.txt ]] && grep -q syscalls "$TMP/stat.txt"; then
    echo "per request, by thread (perf stat):"
    awk -F, -v n="$n" '
        NF >= 3 && $2 + 0 > 0 {
            t = $1; sub(/-[0-9]+$/, "", t); e = $4; sub(/^syscalls:sys_enter_/, "", e)
            v[t, e] += $2 / n; seen[t] = 1
        }
        END {
            split("context-switches epoll_wait write futex pwrite64", order, " ")
            printf "  %-16s", ""; for (i = 1; i <= 5; i++) printf " %16s", order[i]; print ""
            for (t in seen) {
                s = 0; for (i = 1; i <= 5; i++) s += v[t, order[i]]
                if (s < 0.001) continue
                printf "  %-16s", t
                for (i = 1; i <= 5; i++) printf " %16.3f", v[t, order[i]]
                print ""
            }
        }' "$TMP/stat.txt" | sort
fi
grep -E "VmRSS|RssAnon|RssFile" "/proc/$GW_PID/status" | tr -s ' \t' ' '
echo "beside the database:"
(cd "$TMP" && ls -l | awk 'NR > 1 && $NF ~ /^tollgate\.db./ {printf "  %-32s %12s bytes\n", $NF, $5}')
if [[ -n ${PERF_DATA:-} ]]; then
    cp "$TMP/perf.data" "$PERF_DATA"
    echo "perf data: $PERF_DATA"
fi
echo
echo "== samples by thread and library"
perf report -i "$TMP/perf.data" --no-children -s pid,dso --stdio -g none 2>/dev/null | grep "%" | head -24 || true
echo
echo "== top symbols"
perf report -i "$TMP/perf.data" --no-children -s pid,dso,sym --stdio -g none 2>/dev/null | grep "%" | head -"$TOP" || true
