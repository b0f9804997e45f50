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
#   K  tollgate-budget   a gateway configured as C plus one global budget
#                        (day and month) that every request reserves against
#   L  tollgate-local    a gateway configured as C plus one rate limit on
#                        every request (per address, never refusing), local
#   M  tollgate-fleet    L with the fleet's set-up: storage.url on a
#                        PostgreSQL and redis.url on a Redis the script
#                        starts (bench/services.sh), the limit in Redis
#
# K, L and M are opt-in (TARGETS="nginx tollgate tollgate-budget
# tollgate-local tollgate-fleet"); each is a gateway process of its own.
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
#                        (opt-in: tollgate-budget tollgate-local tollgate-fleet)
#   WORKERS=2            tollgate server.workers and nginx proxy worker_processes
#   UPSTREAM_WORKERS=1   worker_processes of the static upstream
#   THREADS=2 CONNECTIONS=64 DURATION=10s ROUNDS=3   wrk settings
#   MEM_REQUESTS=100000  tollgate requests to reach in the memory phase
#   MEM_MAX_ROUNDS=40    bound on the extra memory-phase rounds
#   MEM_SSE=0            1: the memory phase alternates tollgate and
#                        tollgate-sse rounds (streams with 10 KB bodies), and
#                        the streamed requests count towards MEM_REQUESTS
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
MEM_SSE=${MEM_SSE:-0}
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
# Every target, in the order of a round
ALL_TARGETS="direct nginx tollgate tollgate-budget tollgate-local tollgate-fleet baseline cache limited nginx-tls tollgate-tls nginx-sse tollgate-sse"
# The targets served by a gateway process of their own, configured as C plus
# their EXTRA_YAML below (tollgate-fleet: also its own storage.url)
OWN_GATEWAYS="tollgate-budget tollgate-local tollgate-fleet"
for t in $TARGETS; do
    [[ " $ALL_TARGETS " == *" $t "* ]] || die "unknown target '$t' in TARGETS ($ALL_TARGETS)"
done
want_own() { local t; for t in $OWN_GATEWAYS; do want "$t" && return 0; done; return 1; }
# cache, limited, tollgate-tls and tollgate-sse are the same tollgate process,
# sent other headers or other models
[[ $MEM_SSE == 0 ]] || { want tollgate && want tollgate-sse; } ||
    die "MEM_SSE=1 needs both tollgate and tollgate-sse in TARGETS"
want_tollgate() { want tollgate || want cache || want limited || want tollgate-tls || want tollgate-sse; }
want_proxy() { want nginx || want nginx-tls || want nginx-sse; }
if { want_tollgate || want_own; } && [[ ! -x $TOLLGATE_BIN ]]; then
    die "tollgate binary not found at $TOLLGATE_BIN (run 'make', set TOLLGATE_BIN, or TARGETS=\"direct nginx\")"
fi
if want baseline && [[ ! -x $BASELINE_BIN ]]; then
    die "the baseline target needs BASELINE_BIN, a tollgate binary (got '$BASELINE_BIN')"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
if want tollgate-fleet; then
    for t in redis-server redis-cli psql; do
        command -v "$t" >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/"$t" >/dev/null 2>&1 ||
            die "tollgate-fleet needs PostgreSQL and Redis (apt-get install -y postgresql redis-server): no $t"
    done
fi

# --- temp dir and cleanup ----------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers may run as another user
PIDS_NGINX=()
TG_PID=
BL_PID=
WRK_PID=
SAMPLER_PID=
declare -A OWN_PID # target -> pid, for OWN_GATEWAYS
# shellcheck source=bench/services.sh
source "$BENCH/services.sh"

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
    [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID" TERM 2
    # tollgate flushes its log queue on SIGTERM: give it time
    [[ -n $TG_PID ]] && stop_pid "$TG_PID" TERM 30
    [[ -n $BL_PID ]] && stop_pid "$BL_PID" TERM 30
    local p
    for p in "${OWN_PID[@]}"; do stop_pid "$p" TERM 30; done
    svc_stop
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
declare -A OWN_PORT
USED_PORTS+="$PORT_TOLLGATE $PORT_BASELINE "
for t in $OWN_GATEWAYS; do
    OWN_PORT[$t]=$(pick_port)
    USED_PORTS+="${OWN_PORT[$t]} "
done
PORT_PG=$(pick_port)
USED_PORTS+="$PORT_PG "
PORT_REDIS=$(pick_port)
USED_PORTS+="$PORT_REDIS "
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
    curl -s -D "$TMP/probe.head" -o "$TMP/probe.out" -w '%{http_code}' --max-time 5 \
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

# start_gateway NAME BIN PORT [STORAGE_URL [EXTRA_YAML]]: a tollgate in
# $TMP/NAME, its pid in GW_PID; the store is a SQLite file in $TMP/NAME unless
# STORAGE_URL names another, EXTRA_YAML is appended to the configuration
start_gateway() {
    local name=$1 bin=$2 port=$3 dir=$TMP/$1
    local storage=${4:-sqlite:$TMP/$1/tollgate.db} extra=${5:-}
    mkdir -p "$dir"
    cat >"$dir/tollgate.yaml" <<EOF
# written by bench/proxy.sh; request logging stays on (the default) into the
# store below (a SQLite file inside the run's temp dir unless said otherwise)
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
  url: "$storage"
$extra
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

# K, L, M: one budget, or one rate limit, applying to every request. The
# prices are the request's model's (the answer names gpt-4o-mini-2024-07-18,
# priced by its family); the amounts are never reached, the limit never refuses.
BUDGET_YAML='cost_tracking:
  pricing:
    gpt-4o-mini: { input: 0.00015, output: 0.0006 }
  budgets: { daily: 1000000, monthly: 10000000 }'
LIMIT_YAML='rate_limiting:
  enabled: true
  per_ip: { requests_per_minute: 1000000000 }'
if want tollgate-budget; then
    start_gateway tollgate-budget "$TOLLGATE_BIN" "${OWN_PORT[tollgate-budget]}" "" "$BUDGET_YAML"
    OWN_PID[tollgate-budget]=$GW_PID
    # the budget applies: the answer tells what is left of it
    grep -qi '^Tollgate-Budget-Remaining:' "$TMP/probe.head" || {
        cat "$TMP/probe.head"
        die "tollgate-budget's answer has no Tollgate-Budget-Remaining header: the budget does not apply"
    }
    echo "    budget applies: $(grep -i '^Tollgate-Budget-Remaining:' "$TMP/probe.head" | tr -d '\r')"
fi
if want tollgate-local; then
    start_gateway tollgate-local "$TOLLGATE_BIN" "${OWN_PORT[tollgate-local]}" "" "$LIMIT_YAML"
    OWN_PID[tollgate-local]=$GW_PID
fi
if want tollgate-fleet; then
    svc_start_postgres "$TMP/postgres" "$PORT_PG"
    svc_start_redis "$TMP/redis" "$PORT_REDIS"
    echo "PostgreSQL $("$SVC_PG_BIN/postgres" --version | awk '{ print $3 }') on port $PORT_PG, Redis $(redis-server --version | awk '{ sub(/^v=/, "", $3); print $3 }') on port $PORT_REDIS"
    start_gateway tollgate-fleet "$TOLLGATE_BIN" "${OWN_PORT[tollgate-fleet]}" "$SVC_PG_URL" "$LIMIT_YAML
redis:
  url: \"$SVC_REDIS_URL\""
    OWN_PID[tollgate-fleet]=$GW_PID
    # the limit is Redis's: its bucket for this address is there
    rl_keys=$(redis-cli -p "$PORT_REDIS" --scan --pattern 'tollgate:rl:*' | wc -l)
    ((rl_keys > 0)) || die "tollgate-fleet's limit left no tollgate:rl:* key in Redis: it is not checked there"
    echo "    limit in Redis: $rl_keys tollgate:rl:* key(s) after the first request"
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
    *) echo "http://127.0.0.1:${OWN_PORT[$1]}/v1/chat/completions" ;;
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
SVC_CPU= # tollgate-fleet's rounds: PostgreSQL's and Redis's CPU per request
TG_SERVED=0
RSS_LOG=()  # "label requests rss_kb"

# Targets served by the tollgate process (TG_PID), and those whose requests
# count towards MEM_REQUESTS
on_tollgate() { [[ " tollgate cache limited tollgate-tls tollgate-sse " == *" $1 "* ]]; }
counts_for_memory() {
    [[ $1 == tollgate || $1 == cache || $1 == limited ]] || [[ $MEM_SSE == 1 && $1 == tollgate-sse ]]
}

# A reading of tollgate's memory every second from start to the end of the
# memory phase ("seconds VmRSS RssAnon RssFile RssShmem", kB): the peak
# between the per-round readings (a full batch in the writer, a queue at
# its bound) and which kind of page it is.
RSS_SAMPLES=$TMP/rss-samples.txt
start_sampler() {
    (
        t=0
        while kill -0 "$TG_PID" 2>/dev/null; do
            awk -v t="$t" '/^(VmRSS|RssAnon|RssFile|RssShmem):/ { v[$1] = $2 }
                END { printf "%d %d %d %d %d\n", t, v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["RssShmem:"] }' \
                "/proc/$TG_PID/status" 2>/dev/null || true
            sleep 1
            t=$((t + 1))
        done
    ) >"$RSS_SAMPLES" &
    SAMPLER_PID=$!
}
print_samples() {
    [[ -s $RSS_SAMPLES ]] || return 0
    awk '$2 > p { p = $2; pt = $1; pa = $3; pf = $4; ps = $5 } { n++; et = $1; e = $2; ea = $3; ef = $4; es = $5 }
        END {
            printf "sampled every 1 s (%d readings): peak VmRSS %.1f MB at %d s (anon %.1f, file %.1f, shmem %.1f MB)\n",
                n, p / 1024, pt, pa / 1024, pf / 1024, ps / 1024
            printf "last sample: VmRSS %.1f MB (anon %.1f, file %.1f, shmem %.1f MB)\n", e / 1024, ea / 1024, ef / 1024, es / 1024
        }' "$RSS_SAMPLES"
}

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
    local p t
    for t in "${!OWN_PID[@]}"; do
        kill -0 "${OWN_PID[$t]}" 2>/dev/null && continue
        tail -n 30 "$TMP/$t/tollgate.log" >&2 || true
        unset "OWN_PID[$t]"
        die "$t's gateway died during the run"
    done
    for p in "${PIDS_NGINX[@]}"; do kill -0 "$p" 2>/dev/null || die "an nginx instance died during the run"; done
    if [[ -n $SVC_PG_PID ]] && ! kill -0 "$SVC_PG_PID" 2>/dev/null; then die "PostgreSQL died during the run"; fi
    if [[ -n $SVC_REDIS_PID ]] && ! kill -0 "$SVC_REDIS_PID" 2>/dev/null; then die "Redis died during the run"; fi
}

CLK_TCK=$(getconf CLK_TCK)
# CPU clock ticks (user + system, every thread) used so far by the process
# that serves TARGET: the static upstream's or the nginx proxy's master and
# workers, or tollgate (workers and writer thread); "services": PostgreSQL
# (every back-end) and Redis
cpu_ticks() {
    local pids p t=0
    case $1 in
    direct) pids="${PIDS_NGINX[0]} $(pgrep -P "${PIDS_NGINX[0]}" 2>/dev/null || true)" ;;
    nginx | nginx-tls | nginx-sse) pids="${PIDS_NGINX[1]} $(pgrep -P "${PIDS_NGINX[1]}" 2>/dev/null || true)" ;;
    baseline) pids=$BL_PID ;;
    services) pids=$(svc_pids) ;;
    tollgate-budget | tollgate-local | tollgate-fleet) pids=${OWN_PID[$1]} ;;
    *) pids=$TG_PID ;;
    esac
    for p in $pids; do
        # fields 14 and 15 after the command name, which may hold spaces
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ s += $12 + $13 } END { print s + 0 }')))
    done
    echo "$t"
}

per_request() { # ticks requests -> microseconds of CPU per request
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "nan" }'
}

run_round() { # label target -> sets LAST (parsed line), LAST_CPU and LAST_SVC_CPU (us/request)
    local label=$1 target=$2 out=$TMP/wrk-$1-$2.txt
    local c0 s0=0
    c0=$(cpu_ticks "$target")
    [[ $target == tollgate-fleet ]] && s0=$(cpu_ticks services)
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
    LAST_CPU=$(per_request "$(($(cpu_ticks "$target") - c0))" "$req")
    printf '%-8s %-15s %10.0f req/s  p50 %8.3f ms  p99 %8.3f ms  %8d requests  cpu %6s us/req' \
        "$label" "$target" "$rps" "$p50" "$p99" "$req" "$LAST_CPU"
    if [[ $target == tollgate-fleet ]]; then
        LAST_SVC_CPU=$(per_request "$(($(cpu_ticks services) - s0))" "$req")
        printf '  (+ PostgreSQL and Redis %s us/req)' "$LAST_SVC_CPU"
    fi
    if counts_for_memory "$target"; then TG_SERVED=$((TG_SERVED + req)); fi
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
if [[ -n $TG_PID ]]; then
    RSS_LOG+=("start 0 $(rss_kb)")
    start_sampler
fi
for ((r = 1; r <= ROUNDS; r++)); do
    for t in $ALL_TARGETS; do
        want "$t" || continue
        run_round "round$r" "$t"
        read -r rps p50 p99 _ <<<"$LAST"
        RPS[$t]+="$rps "
        P50[$t]+="$p50 "
        P99[$t]+="$p99 "
        CPU[$t]+="$LAST_CPU "
        [[ $t == tollgate-fleet ]] && SVC_CPU+="$LAST_SVC_CPU "
        if on_tollgate "$t"; then RSS_LOG+=("round$r.$t $TG_SERVED $(rss_kb)"); fi
    done
done
echo

echo "== medians over $ROUNDS rounds"
printf '%-15s %12s %10s %10s %12s\n' target "req/s" "p50 ms" "p99 ms" "cpu us/req"
declare -A M_RPS M_P50 M_P99 M_CPU
for t in $ALL_TARGETS; do
    want "$t" || continue
    M_RPS[$t]=$(median <<<"${RPS[$t]}")
    M_P50[$t]=$(median <<<"${P50[$t]}")
    M_P99[$t]=$(median <<<"${P99[$t]}")
    M_CPU[$t]=$(median <<<"${CPU[$t]}")
    printf '%-15s %12.0f %10.3f %10.3f %12.1f\n' "$t" "${M_RPS[$t]}" "${M_P50[$t]}" "${M_P99[$t]}" "${M_CPU[$t]}"
done
if want tollgate-fleet; then
    # the fleet's whole CPU per request: the gateway's plus its servers', by round
    M_SVC_CPU=$(median <<<"$SVC_CPU")
    M_FLEET_ALL=$(paste -d' ' <(tr ' ' '\n' <<<"${CPU[tollgate-fleet]}" | grep .) <(tr ' ' '\n' <<<"$SVC_CPU" | grep .) |
        awk '{ print $1 + $2 }' | median)
    printf '%-15s %47s %12.1f\n' "  PostgreSQL+Redis" "" "$M_SVC_CPU"
    printf '%-15s %47s %12.1f\n' "  fleet, all" "" "$M_FLEET_ALL"
fi
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
pair_ratios() { # title a b: throughput, CPU per request and p50 of a / b
    want "$2" && want "$3" || return 0
    echo "== ratios, $1 ($2 / $3)"
    printf '%-34s %6sx\n' "throughput" "$(ratio "${M_RPS[$2]}" "${M_RPS[$3]}")"
    printf '%-34s %6sx\n' "CPU per request" "$(ratio "${M_CPU[$2]}" "${M_CPU[$3]}")"
    [[ $2 == tollgate-fleet ]] &&
        printf '%-34s %6sx\n' "CPU per request, with PG and Redis" "$(ratio "$M_FLEET_ALL" "${M_CPU[$3]}")"
    printf '%-34s %6sx\n' "p50 latency" "$(ratio "${M_P50[$2]}" "${M_P50[$3]}")"
    echo
}
pair_ratios "HTTPS upstream" tollgate-tls nginx-tls
pair_ratios "event stream, 50 chunks" tollgate-sse nginx-sse
pair_ratios "one budget on every request" tollgate-budget tollgate
pair_ratios "one budget on every request" tollgate-budget nginx
pair_ratios "one rate limit, local, SQLite" tollgate-local nginx
pair_ratios "fleet: PostgreSQL store, the limit in Redis" tollgate-fleet tollgate-local
pair_ratios "fleet: PostgreSQL store, the limit in Redis" tollgate-fleet nginx
if want tollgate-fleet; then
    echo "records in PostgreSQL: $(svc_psql 'SELECT count(*) FROM requests') (the rest still queued or in the writer's batch)"
    echo
fi
if ! want tollgate && want nginx && want direct; then
    echo "== ratios"
    printf '%-34s %6sx\n' "throughput nginx / direct" "$(ratio "${M_RPS[nginx]}" "${M_RPS[direct]}")"
    echo
fi

# --- memory -------------------------------------------------------------------
if want tollgate; then
    MEM_TARGETS=tollgate
    [[ $MEM_SSE == 1 ]] && MEM_TARGETS="tollgate tollgate-sse"
    echo "== memory: load tollgate ($MEM_TARGETS) until it has served $MEM_REQUESTS requests"
    extra=0
    while ((TG_SERVED < MEM_REQUESTS && extra < MEM_MAX_ROUNDS)); do
        extra=$((extra + 1))
        for t in $MEM_TARGETS; do
            run_round "mem$extra" "$t"
            label=mem$extra
            [[ $t == tollgate ]] || label+=.$t
            RSS_LOG+=("$label $TG_SERVED $(rss_kb)")
        done
    done
    ((TG_SERVED >= MEM_REQUESTS)) || echo "note: stopped after $MEM_MAX_ROUNDS extra rounds with $TG_SERVED requests served"
    sleep 1
    RSS_LOG+=("end $TG_SERVED $(rss_kb)")
    [[ -n $SAMPLER_PID ]] && stop_pid "$SAMPLER_PID" TERM 2
    SAMPLER_PID=
    echo
    printf '%-20s %12s %10s\n' after requests "RSS MB"
    for e in "${RSS_LOG[@]}"; do
        read -r label req kb <<<"$e"
        printf '%-20s %12d %10.1f\n' "$label" "$req" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
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
    print_samples
    echo "tollgate served $TG_SERVED requests in total (as counted by wrk)"
    echo
fi

if ((FAILED)); then
    echo "RESULT: some rounds had non-2xx responses or unreadable output (see above)"
    exit 1
fi
echo "RESULT: done (a measurement; targets above are informational)"
