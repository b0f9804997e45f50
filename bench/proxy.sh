#!/usr/bin/env bash
# bench/proxy.sh — tollgate's proxy overhead, measured against a direct call
# and against nginx as a plain reverse proxy, in the same run, on loopback.
#
#   A  static upstream   nginx answering a fixed OpenAI chat.completion
#   B  nginx proxy       proxy_pass to A with pooled keep-alive connections
#   C  tollgate          provider "bench" -> A
#   D  cache             C with Helicone-Cache-Enabled: every request after
#                        the first is a cache hit, no upstream call
#   E  limited           C with a Helicone-RateLimit-Policy per user that
#                        never denies: the cost of rate limiting
#   F  baseline          another tollgate binary (BASELINE_BIN, e.g. a build
#                        of the commit before a change), configured as C:
#                        the change's cost, measured in the same rounds
#   G  nginx-tls         B's twin to A's HTTPS listener (throwaway certificate)
#   H  tollgate-tls      C's provider "benchtls" -> A over HTTPS
#   I  nginx-sse         B to A's event stream of 50 chunks (/sse/v1/...)
#   J  tollgate-sse      C's provider "benchsse" -> the same stream, streamed
#
# wrk drives each target in turn (A, B, C, A, B, C, ...) for ROUNDS rounds of
# DURATION; the script prints the medians, the ratios and the issue's targets,
# then keeps loading tollgate until it has served MEM_REQUESTS requests while
# watching its RSS. It is a measurement: missed targets still exit 0. It
# exits non-zero when a component fails to start or dies, or when a round
# has non-2xx responses. See bench/README.md.
#
# Environment (defaults):
#   TOLLGATE_BIN=build/tollgate  (relative to the repo root)
#   BASELINE_BIN=        a second tollgate to compare with (adds "baseline")
#   TARGETS="direct nginx tollgate cache limited nginx-tls tollgate-tls nginx-sse tollgate-sse"
#   WORKERS=2            tollgate server.workers and nginx proxy worker_processes
#   UPSTREAM_WORKERS=1   worker_processes of the static upstream
#   THREADS=2 CONNECTIONS=64 DURATION=10s ROUNDS=3   wrk settings
#   MEM_REQUESTS=100000  tollgate requests to reach in the memory phase
#   MEM_MAX_ROUNDS=40    bound on the extra memory-phase rounds
#   PORT_DIRECT, PORT_NGINX, PORT_TOLLGATE   fixed ports (default: free ones)
#   KEEP_TMP=1           keep the temp dir (configs, logs, raw wrk output)
#   VERBOSE=1            print every raw wrk output
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

TOLLGATE_BIN=${TOLLGATE_BIN:-build/tollgate}
[[ $TOLLGATE_BIN == /* ]] || TOLLGATE_BIN=$ROOT/$TOLLGATE_BIN
TARGETS=${TARGETS:-direct nginx tollgate cache limited nginx-tls tollgate-tls nginx-sse tollgate-sse}
BASELINE_BIN=${BASELINE_BIN:-}
if [[ -n $BASELINE_BIN ]]; then
    [[ $BASELINE_BIN == /* ]] || BASELINE_BIN=$ROOT/$BASELINE_BIN
    [[ " $TARGETS " == *" baseline "* ]] || TARGETS+=" baseline"
fi
WORKERS=${WORKERS:-2}
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION+=s # wrk reads a bare number as seconds
ROUNDS=${ROUNDS:-3}
REQUEST_LOGGING=${REQUEST_LOGGING:-true} # false: the proxy alone, no request records
MEM_REQUESTS=${MEM_REQUESTS:-100000}
MEM_MAX_ROUNDS=${MEM_MAX_ROUNDS:-40}
RSS_TARGET_MB=30
TP_TARGET=0.6  # tollgate throughput >= 0.6 x nginx
P50_TARGET=2   # tollgate p50 <= 2 x nginx
READY_TIMEOUT=15  # seconds a component gets to answer its first request

die() { echo "FAIL: $*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------
missing=()
for t in wrk nginx curl openssl; do
    command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "missing: ${missing[*]}"
    echo "install with: apt-get install -y wrk nginx-light curl openssl"
    exit 1
fi
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

want() { [[ " $TARGETS " == *" $1 "* ]]; }
for t in $TARGETS; do
    case $t in direct | nginx | tollgate | cache | limited | baseline | nginx-tls | tollgate-tls | nginx-sse | tollgate-sse) ;;
    *) die "unknown target '$t' in TARGETS (direct nginx tollgate cache limited baseline nginx-tls tollgate-tls nginx-sse tollgate-sse)" ;; esac
done
# cache, limited, tollgate-tls and tollgate-sse are the same tollgate process,
# sent other headers or other models
want_tollgate() { want tollgate || want cache || want limited || want tollgate-tls || want tollgate-sse; }
want_proxy() { want nginx || want nginx-tls || want nginx-sse; }
if want_tollgate && [[ ! -x $TOLLGATE_BIN ]]; then
    die "tollgate binary not found at $TOLLGATE_BIN (run 'make', set TOLLGATE_BIN, or TARGETS=\"direct nginx\")"
fi
if want baseline && [[ ! -x $BASELINE_BIN ]]; then
    die "the baseline target needs BASELINE_BIN, a tollgate binary (got '$BASELINE_BIN')"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

# --- temp dir and cleanup ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers may run as another user
PIDS_NGINX=()
TG_PID=
BL_PID=
WRK_PID=

stop_pid() { # pid signal seconds
    local pid=$1 sig=$2 secs=$3 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "note: pid $pid did not stop on SIG$sig within ${secs}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $WRK_PID ]] && stop_pid "$WRK_PID" TERM 2
    # tollgate flushes its log queue on SIGTERM: give it time
    [[ -n $TG_PID ]] && stop_pid "$TG_PID" TERM 30
    [[ -n $BL_PID ]] && stop_pid "$BL_PID" TERM 30
    local p
    for p in "${PIDS_NGINX[@]}"; do stop_pid "$p" TERM 5; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# --- ports ------------------------------------------------------------------
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
USED_PORTS=" "
pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        if [[ $USED_PORTS != *" $p "* ]] && port_free "$p"; then
            USED_PORTS+="$p "
            echo "$p"
            return
        fi
    done
    die "no free port found"
}
PORT_DIRECT=${PORT_DIRECT:-$(pick_port)}
USED_PORTS+="$PORT_DIRECT "
PORT_NGINX=${PORT_NGINX:-$(pick_port)}
USED_PORTS+="$PORT_NGINX "
PORT_TOLLGATE=${PORT_TOLLGATE:-$(pick_port)}
PORT_BASELINE=${PORT_BASELINE:-$(pick_port)}
PORT_DIRECT_TLS=$(pick_port)
PORT_NGINX_TLS=$(pick_port)
[[ $PORT_DIRECT != "$PORT_NGINX" && $PORT_DIRECT != "$PORT_TOLLGATE" && $PORT_NGINX != "$PORT_TOLLGATE" ]] ||
    die "PORT_DIRECT, PORT_NGINX and PORT_TOLLGATE must differ"
for p in "$PORT_DIRECT" "$PORT_NGINX" "$PORT_TOLLGATE"; do
    port_free "$p" || die "port $p is already in use"
done

export BENCH_REQUEST=$BENCH/request.json  # read by chat.lua

# The TLS and streaming targets: their requests name other providers, the
# streamed one asks for a stream; the upstream's throwaway certificate (for
# localhost and 127.0.0.1) is what both proxies trust.
sed 's#"bench/#"benchtls/#' "$BENCH_REQUEST" >"$TMP/request-tls.json"
sed -e 's#"bench/#"benchsse/#' -e 's#^{#{"stream":true,#' "$BENCH_REQUEST" >"$TMP/request-sse.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    die "openssl could not make the throwaway certificate"
chmod 644 "$TMP/key.pem"
# shellcheck source=bench/sse-body.sh
source "$BENCH/sse-body.sh"

# POST the benchmark request once; prints the HTTP status (000 if no answer)
probe() {
    curl -s -o "$TMP/probe.out" -w '%{http_code}' --max-time 5 \
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-client-bench' \
        --data-binary "@$BENCH_REQUEST" "$1" 2>/dev/null || true
}

wait_ready() { # name url pid log
    local name=$1 url=$2 pid=$3 log=$4 code i
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "--- $log" >&2
            tail -n 30 "$log" >&2 || true
            die "$name exited during start-up"
        fi
        code=$(probe "$url")
        if [[ $code == 200 ]]; then return 0; fi
        if [[ $code != 000 ]]; then
            echo "--- response:" >&2
            head -c 600 "$TMP/probe.out" >&2 || true
            echo >&2
            echo "--- $log" >&2
            tail -n 30 "$log" >&2 || true
            die "$name answered HTTP $code to the benchmark request"
        fi
        sleep 0.1
    done
    tail -n 30 "$log" >&2 || true
    die "$name did not answer on $url within ${READY_TIMEOUT}s"
}

start_nginx() { # name template port workers
    local name=$1 tpl=$2 port=$3 workers=$4 dir=$TMP/$1
    mkdir -p "$dir"
    chmod 755 "$dir"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$workers|g" \
        -e "s|@UPSTREAM_PORT@|$PORT_DIRECT|g" -e "s|@TLS_PORT@|$PORT_DIRECT_TLS|g" \
        -e "s|@UPSTREAM_TLS_PORT@|$PORT_DIRECT_TLS|g" -e "s|@TLS_PROXY_PORT@|$PORT_NGINX_TLS|g" \
        -e "s|@CERT@|$TMP/cert.pem|g" -e "s|@KEY@|$TMP/key.pem|g" "$tpl" >"$dir/nginx.conf"
    mkdir -p "$dir/www/sse/v1/chat"
    printf '%s' "$SSE_BODY" >"$dir/www/sse/v1/chat/completions"
    chmod -R a+rX "$dir/www"
    "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    local pid=$!
    PIDS_NGINX+=("$pid")
    wait_ready "$name" "http://127.0.0.1:$port/v1/chat/completions" "$pid" "$dir/error.log"
}

# --- start the components ----------------------------------------------------
echo "tollgate proxy benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, loopback"
echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per round, $ROUNDS rounds; targets: $TARGETS"
echo "workers: tollgate $WORKERS, nginx proxy $WORKERS, static upstream $UPSTREAM_WORKERS"
echo "ports: direct $PORT_DIRECT, nginx $PORT_NGINX, tollgate $PORT_TOLLGATE"
echo

# The upstream is always needed (every target ends there).
start_nginx upstream "$BENCH/nginx-upstream.conf.in" "$PORT_DIRECT" "$UPSTREAM_WORKERS"
want_proxy && start_nginx proxy "$BENCH/nginx-proxy.conf.in" "$PORT_NGINX" "$WORKERS"

# start_gateway NAME BIN PORT: a tollgate in $TMP/NAME, its pid in GW_PID
start_gateway() {
    local name=$1 bin=$2 port=$3 dir=$TMP/$1
    mkdir -p "$dir"
    cat >"$dir/tollgate.yaml" <<EOF
# written by bench/proxy.sh; request logging stays on (the default) into a
# SQLite file inside the run's temp dir
server:
  host: 127.0.0.1
  port: $port
  workers: $WORKERS
providers:
  bench:
    base_url: "http://127.0.0.1:$PORT_DIRECT/v1"
    api_key: "sk-bench"
  benchtls:
    base_url: "https://localhost:$PORT_DIRECT_TLS/v1"
    api_key: "sk-bench"
  benchsse:
    base_url: "http://127.0.0.1:$PORT_DIRECT/sse/v1"
    api_key: "sk-bench"
logging:
  level: warn
observability:
  request_logging: { enabled: $REQUEST_LOGGING }
storage:
  url: "sqlite:$dir/tollgate.db"
EOF
    # run from the temp dir so nothing the gateway writes by default lands in the repo
    (cd "$dir" && SSL_CERT_FILE=$TMP/cert.pem exec "$bin" --config "$dir/tollgate.yaml") >"$dir/tollgate.log" 2>&1 &
    GW_PID=$!
    wait_ready "$name" "http://127.0.0.1:$port/v1/chat/completions" "$GW_PID" "$dir/tollgate.log"
    grep -q '"usage"' "$TMP/probe.out" || {
        head -c 600 "$TMP/probe.out"
        die "$name's answer has no usage object"
    }
    echo "$("$bin" --version 2>/dev/null | head -n 1 || true) ready as $name (pid $GW_PID, $bin)"
    if [[ -s $dir/tollgate.log ]]; then
        echo "$name's start-up log (level warn):"
        head -n 10 "$dir/tollgate.log" | sed 's/^/    /'
    fi
}
if want_tollgate; then
    start_gateway tollgate "$TOLLGATE_BIN" "$PORT_TOLLGATE"
    TG_PID=$GW_PID
fi
if want baseline; then
    start_gateway baseline "$BASELINE_BIN" "$PORT_BASELINE"
    BL_PID=$GW_PID
fi
echo

# --- wrk ----------------------------------------------------------------------
url_of() {
    case $1 in
    direct) echo "http://127.0.0.1:$PORT_DIRECT/v1/chat/completions" ;;
    nginx) echo "http://127.0.0.1:$PORT_NGINX/v1/chat/completions" ;;
    nginx-tls) echo "http://127.0.0.1:$PORT_NGINX_TLS/v1/chat/completions" ;;
    nginx-sse) echo "http://127.0.0.1:$PORT_NGINX/sse/v1/chat/completions" ;;
    tollgate | cache | limited | tollgate-tls | tollgate-sse) echo "http://127.0.0.1:$PORT_TOLLGATE/v1/chat/completions" ;;
    baseline) echo "http://127.0.0.1:$PORT_BASELINE/v1/chat/completions" ;;
    esac
}

# Extra request headers per target (read by chat.lua)
headers_of() {
    case $1 in
    cache) echo "Helicone-Cache-Enabled: true" ;;
    limited) echo "Helicone-User-Id: bench-user|Helicone-RateLimit-Policy: 1000000000;w=60;s=user" ;;
    *) echo "" ;;
    esac
}

# The request body per target (read by chat.lua)
request_of() {
    case $1 in
    tollgate-tls) echo "$TMP/request-tls.json" ;;
    tollgate-sse) echo "$TMP/request-sse.json" ;;
    *) echo "$BENCH/request.json" ;;
    esac
}

# Parse wrk output: "rps p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
    awk '
    function ms(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n / 1000
        if (u == "ms") return n
        if (u == "s")  return n * 1000
        if (u == "m")  return n * 60000
        if (u == "h")  return n * 3600000
        return -1
    }
    /^[ \t]*50%/ { p50 = ms($2) }
    /^[ \t]*99%/ { p99 = ms($2) }
    /requests in/ { req = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { sub(/^[ \t]*Socket errors:[ \t]*/, ""); gsub(/,? /, "_"); sock = $0 }
    END {
        if (rps == "") rps = 0; if (p50 == "") p50 = -1; if (p99 == "") p99 = -1
        if (req == "") req = 0; if (non2xx == "") non2xx = 0; if (sock == "") sock = "-"
        printf "%s %.3f %.3f %s %s %s\n", rps, p50, p99, req, non2xx, sock
    }'
}

FAILED=0
declare -A RPS P50 P99 CPU
TG_SERVED=0
RSS_LOG=()  # "label requests rss_kb"

rss_kb() { # VmRSS of tollgate plus any children it forked
    local total=0 p kb
    for p in "$TG_PID" $(pgrep -P "$TG_PID" 2>/dev/null || true); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

check_alive() {
    if [[ -n $TG_PID ]] && ! kill -0 "$TG_PID" 2>/dev/null; then
        tail -n 30 "$TMP/tollgate/tollgate.log" >&2 || true
        TG_PID=
        die "tollgate died during the run"
    fi
    if [[ -n $BL_PID ]] && ! kill -0 "$BL_PID" 2>/dev/null; then
        tail -n 30 "$TMP/baseline/tollgate.log" >&2 || true
        BL_PID=
        die "the baseline tollgate died during the run"
    fi
    local p
    for p in "${PIDS_NGINX[@]}"; do kill -0 "$p" 2>/dev/null || die "an nginx instance died during the run"; done
}

CLK_TCK=$(getconf CLK_TCK)
# CPU clock ticks (user + system, every thread) used so far by the process
# that serves TARGET: the static upstream's or the nginx proxy's master and
# workers, or tollgate (workers and writer thread)
cpu_ticks() {
    local pids p t=0
    case $1 in
    direct) pids="${PIDS_NGINX[0]} $(pgrep -P "${PIDS_NGINX[0]}" 2>/dev/null || true)" ;;
    nginx | nginx-tls | nginx-sse) pids="${PIDS_NGINX[1]} $(pgrep -P "${PIDS_NGINX[1]}" 2>/dev/null || true)" ;;
    baseline) pids=$BL_PID ;;
    *) pids=$TG_PID ;;
    esac
    for p in $pids; do
        # fields 14 and 15 after the command name, which may hold spaces
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ s += $12 + $13 } END { print s + 0 }')))
    done
    echo "$t"
}

run_round() { # label target -> sets LAST (parsed line) and LAST_CPU (us/request)
    local label=$1 target=$2 out=$TMP/wrk-$1-$2.txt
    local c0
    c0=$(cpu_ticks "$target")
    BENCH_HEADERS=$(headers_of "$target") BENCH_REQUEST=$(request_of "$target") \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$BENCH/chat.lua" \
        "$(url_of "$target")" >"$out" 2>&1 &
    WRK_PID=$!
    local rc=0
    wait "$WRK_PID" || rc=$?
    WRK_PID=
    [[ ${VERBOSE:-0} == 1 ]] && cat "$out"
    ((rc == 0)) || { cat "$out"; die "wrk exited with status $rc against $target"; }
    LAST=$(parse_wrk <"$out")
    local rps p50 p99 req non2xx sock
    read -r rps p50 p99 req non2xx sock <<<"$LAST"
    LAST_CPU=$(awk -v t="$(($(cpu_ticks "$target") - c0))" -v hz="$CLK_TCK" -v n="$req" \
        'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "nan" }')
    printf '%-8s %-12s %10.0f req/s  p50 %8.3f ms  p99 %8.3f ms  %8d requests  cpu %6s us/req' \
        "$label" "$target" "$rps" "$p50" "$p99" "$req" "$LAST_CPU"
    [[ $target == tollgate || $target == cache || $target == limited ]] && TG_SERVED=$((TG_SERVED + req))
    if [[ $sock != - ]]; then printf '  socket errors: %s' "${sock//_/ }"; fi
    if ((non2xx > 0)); then
        printf '  NON-2xx: %d' "$non2xx"
        FAILED=1
    fi
    if [[ $p50 == -1.000 || $rps == 0 ]]; then
        printf '  (unparsed wrk output)'
        FAILED=1
    fi
    echo
    if ((non2xx > 0)) || [[ $rps == 0 ]]; then sed 's/^/    | /' "$out"; fi
    check_alive
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "== rounds (alternating targets)"
[[ -n $TG_PID ]] && RSS_LOG+=("start 0 $(rss_kb)")
for ((r = 1; r <= ROUNDS; r++)); do
    for t in direct nginx tollgate baseline cache limited nginx-tls tollgate-tls nginx-sse tollgate-sse; do
        want "$t" || continue
        run_round "round$r" "$t"
        read -r rps p50 p99 _ <<<"$LAST"
        RPS[$t]+="$rps "
        P50[$t]+="$p50 "
        P99[$t]+="$p99 "
        CPU[$t]+="$LAST_CPU "
        [[ $t == tollgate || $t == cache || $t == limited ]] && RSS_LOG+=("round$r.$t $TG_SERVED $(rss_kb)")
    done
done
echo

echo "== medians over $ROUNDS rounds"
printf '%-12s %12s %10s %10s %12s\n' target "req/s" "p50 ms" "p99 ms" "cpu us/req"
declare -A M_RPS M_P50 M_P99 M_CPU
for t in direct nginx tollgate baseline cache limited nginx-tls tollgate-tls nginx-sse tollgate-sse; do
    want "$t" || continue
    M_RPS[$t]=$(median <<<"${RPS[$t]}")
    M_P50[$t]=$(median <<<"${P50[$t]}")
    M_P99[$t]=$(median <<<"${P99[$t]}")
    M_CPU[$t]=$(median <<<"${CPU[$t]}")
    printf '%-12s %12.0f %10.3f %10.3f %12.1f\n' "$t" "${M_RPS[$t]}" "${M_P50[$t]}" "${M_P99[$t]}" "${M_CPU[$t]}"
done
echo

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
verdict() { # value op limit
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print (ok ? "met" : "MISSED") }'
}
if want tollgate && { want nginx || want direct; }; then
    echo "== ratios"
    if want nginx; then
        r=$(ratio "${M_RPS[tollgate]}" "${M_RPS[nginx]}")
        printf '%-34s %6sx   target >= %sx: %s\n' "throughput tollgate / nginx" "$r" "$TP_TARGET" "$(verdict "$r" ">=" "$TP_TARGET")"
    fi
    if want direct; then
        r=$(ratio "${M_RPS[tollgate]}" "${M_RPS[direct]}")
        printf '%-34s %6sx   (no target)\n' "throughput tollgate / direct" "$r"
    fi
    if want nginx; then
        r=$(ratio "${M_P50[tollgate]}" "${M_P50[nginx]}")
        printf '%-34s %6sx   target <= %sx: %s\n' "p50 latency tollgate / nginx" "$r" "$P50_TARGET" "$(verdict "$r" "<=" "$P50_TARGET")"
        r=$(ratio "${M_P99[tollgate]}" "${M_P99[nginx]}")
        printf '%-34s %6sx   (no target)\n' "p99 latency tollgate / nginx" "$r"
        r=$(ratio "${M_CPU[tollgate]}" "${M_CPU[nginx]}")
        printf '%-34s %6sx   (no target; steadier than req/s on a busy machine)\n' "CPU per request tollgate / nginx" "$r"
    fi
    if want baseline; then
        printf '%-34s %6sx   (no target; ~1: the change costs nothing)\n' "throughput tollgate / baseline" "$(ratio "${M_RPS[tollgate]}" "${M_RPS[baseline]}")"
        printf '%-34s %6sx   (no target)\n' "CPU per request tollgate / baseline" "$(ratio "${M_CPU[tollgate]}" "${M_CPU[baseline]}")"
        printf '%-34s %6sx   (no target)\n' "p50 latency tollgate / baseline" "$(ratio "${M_P50[tollgate]}" "${M_P50[baseline]}")"
        want nginx && printf '%-34s %6sx   (no target)\n' "throughput baseline / nginx" "$(ratio "${M_RPS[baseline]}" "${M_RPS[nginx]}")"
    fi
    for t in cache limited; do
        want "$t" || continue
        want nginx && printf '%-34s %6sx   (no target)\n' "throughput $t / nginx" "$(ratio "${M_RPS[$t]}" "${M_RPS[nginx]}")"
        want direct && printf '%-34s %6sx   (no target)\n' "throughput $t / direct" "$(ratio "${M_RPS[$t]}" "${M_RPS[direct]}")"
        printf '%-34s %6sx   (no target)\n' "throughput $t / tollgate" "$(ratio "${M_RPS[$t]}" "${M_RPS[tollgate]}")"
        printf '%-34s %6sx   (no target)\n' "p50 latency $t / tollgate" "$(ratio "${M_P50[$t]}" "${M_P50[tollgate]}")"
    done
    echo
fi
for kind in tls sse; do
    want "tollgate-$kind" && want "nginx-$kind" || continue
    [[ $kind == tls ]] && what="HTTPS upstream" || what="event stream, 50 chunks"
    echo "== ratios, $what (tollgate-$kind / nginx-$kind)"
    printf '%-34s %6sx\n' "throughput" "$(ratio "${M_RPS[tollgate-$kind]}" "${M_RPS[nginx-$kind]}")"
    printf '%-34s %6sx\n' "CPU per request" "$(ratio "${M_CPU[tollgate-$kind]}" "${M_CPU[nginx-$kind]}")"
    printf '%-34s %6sx\n' "p50 latency" "$(ratio "${M_P50[tollgate-$kind]}" "${M_P50[nginx-$kind]}")"
    echo
done
if ! want tollgate && want nginx && want direct; then
    echo "== ratios"
    printf '%-34s %6sx\n' "throughput nginx / direct" "$(ratio "${M_RPS[nginx]}" "${M_RPS[direct]}")"
    echo
fi

# --- memory -------------------------------------------------------------------
if want tollgate; then
    echo "== memory: load tollgate until it has served $MEM_REQUESTS requests"
    extra=0
    while ((TG_SERVED < MEM_REQUESTS && extra < MEM_MAX_ROUNDS)); do
        extra=$((extra + 1))
        run_round "mem$extra" tollgate
        RSS_LOG+=("mem$extra $TG_SERVED $(rss_kb)")
    done
    ((TG_SERVED >= MEM_REQUESTS)) || echo "note: stopped after $MEM_MAX_ROUNDS extra rounds with $TG_SERVED requests served"
    sleep 1
    RSS_LOG+=("end $TG_SERVED $(rss_kb)")
    echo
    printf '%-16s %12s %10s\n' after requests "RSS MB"
    for e in "${RSS_LOG[@]}"; do
        read -r label req kb <<<"$e"
        printf '%-16s %12d %10.1f\n' "$label" "$req" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
    done
    # Growth over the last readings (at most 4 rounds plus the idle end
    # reading): a leak shows as a rise that keeps going with the request count.
    n=${#RSS_LOG[@]}
    first=$((n > 5 ? n - 5 : 1)) # skip the pre-load "start" reading
    read -r l0 q0 k0 <<<"${RSS_LOG[$first]}"
    read -r _ q1 k1 <<<"${RSS_LOG[$((n - 1))]}"
    peak=0
    for e in "${RSS_LOG[@]}"; do
        read -r _ _ kb <<<"$e"
        ((kb > peak)) && peak=$kb
    done
    awk -v k0="$k0" -v k1="$k1" -v q0="$q0" -v q1="$q1" -v l0="$l0" -v peak="$peak" -v tgt="$RSS_TARGET_MB" 'BEGIN {
        d = (k1 - k0) / 1024; dq = q1 - q0
        grew = (d > 1 && d > 0.03 * k0 / 1024)
        printf "RSS from %s to end: %+.1f MB over %d requests -> %s\n", l0, d, dq,
            grew ? "GREW across the last rounds" : "flat (no growth over 1 MB / 3%) across the last rounds"
        printf "peak RSS %.1f MB, target < %d MB: %s\n", peak / 1024, tgt, (peak / 1024 < tgt) ? "met" : "MISSED"
    }'
    echo "tollgate served $TG_SERVED requests in total (as counted by wrk)"
    echo
fi

if ((FAILED)); then
    echo "RESULT: some rounds had non-2xx responses or unreadable output (see above)"
    exit 1
fi
echo "RESULT: done (a measurement; targets above are informational)"
