#!/usr/bin/env bash
# bench/syscalls.sh — system calls per proxied request, tollgate against
# nginx, counted by strace on a fixed number of sequential requests.
#
#   ./bench/syscalls.sh [BIN]                 (default build/tollgate)
#   REQUESTS=500 KINDS="plain sse" ./bench/syscalls.sh
#
# Starts proxy.sh's static upstream (nginx, one worker: plain HTTP, HTTPS
# with a throwaway certificate, and the event stream of bench/sse-body.sh
# under /sse/), nginx as a plain reverse proxy to it (one worker; the TLS
# twin verifies and reuses sessions, as in proxy.sh) and the gateway (one
# worker, request logging on). For each kind (plain, tls, sse) and each
# proxy, it sends WARMUP requests on one keep-alive connection, attaches
# `strace -c -f` to the proxy (nginx: its worker; tollgate: every thread,
# the store's writer too), sends REQUESTS more on that connection and
# prints the calls per request: the network ones (reads, writes, epoll)
# and the total. Counts do not depend on the machine's load. Needs strace,
# nginx, node, curl and openssl.
set -euo pipefail
REQUESTS=${REQUESTS:-1000}
WARMUP=${WARMUP:-100}
KINDS=${KINDS:-plain tls sse}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_bin "${1:-}"
bench_start sys

UP=$(free_port)
UP_TLS=$(free_port)
NG=$(free_port)
NG_TLS=$(free_port)
GW=$(free_port)
bench_cert "$TMP"
# shellcheck source=bench/sse-body.sh
source "$ROOT/bench/sse-body.sh"
start_nginx() { # dir template port
    mkdir -p "$TMP/$1/www/sse/v1/chat"
    printf '%s' "$SSE_BODY" >"$TMP/$1/www/sse/v1/chat/completions"
    chmod -R a+rX "$TMP/$1"
    sed -e "s|@DIR@|$TMP/$1|g" -e "s|@PORT@|$3|g" -e "s|@WORKERS@|1|g" -e "s|@TLS_PORT@|$UP_TLS|g" \
        -e "s|@UPSTREAM_PORT@|$UP|g" -e "s|@UPSTREAM_TLS_PORT@|$UP_TLS|g" -e "s|@TLS_PROXY_PORT@|$NG_TLS|g" \
        -e "s|@CERT@|$TMP/cert.pem|g" -e "s|@KEY@|$TMP/key.pem|g" "$ROOT/bench/$2" >"$TMP/$1/nginx.conf"
    "$NGINX" -p "$TMP/$1" -e "$TMP/$1/error.log" -c "$TMP/$1/nginx.conf" >/dev/null 2>&1 &
    PIDS+=($!)
}
start_nginx up nginx-upstream.conf.in "$UP"
start_nginx proxy nginx-proxy.conf.in "$NG"
NG_MASTER=${PIDS[1]}
cat >"$TMP/tollgate.yaml" <<YAML
server: { host: 127.0.0.1, port: $GW, workers: 1 }
providers:
  bench: { base_url: "http://127.0.0.1:$UP/v1", api_key: "sk-bench" }
  benchtls: { type: openai, base_url: "https://localhost:$UP_TLS/v1", api_key: "sk-bench" }
  benchsse: { type: openai, base_url: "http://127.0.0.1:$UP/sse/v1", api_key: "sk-bench" }
logging: { level: warn }
storage: { url: "sqlite:$TMP/tollgate.db" }
YAML
(cd "$TMP" && SSL_CERT_FILE=$TMP/cert.pem exec "$BIN" --config "$TMP/tollgate.yaml") >"$TMP/gw.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
sed 's#"bench/#"benchtls/#' "$ROOT/bench/request.json" >"$TMP/request-tls.json"
sed -e 's#"bench/#"benchsse/#' -e 's#^{#{"stream":true,#' "$ROOT/bench/request.json" >"$TMP/request-sse.json"
sed -e 's#^{#{"stream":true,#' "$ROOT/bench/request.json" >"$TMP/request-sse-nginx.json"
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$GW/health" &&
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$NG/" && break
    sleep 0.2
done
count() { # label pid port path body
    local label=$1 pid=$2
    shift 2
    drive "$@" "$WARMUP"
    strace -c -f -o "$TMP/strace.out" -p "$pid" 2>/dev/null &
    local st=$!
    sleep 1
    drive "$@" "$REQUESTS"
    sleep 0.5
    kill -INT "$st"
    wait "$st" 2>/dev/null || true
    awk -v n="$REQUESTS" -v label="$label" '
        $NF ~ /^(read|recvfrom|readv|recvmsg)$/ { rd += $4 }
        $NF ~ /^(write|writev|sendto|sendmsg)$/ { wr += $4 }
        $NF ~ /^epoll_(wait|pwait|pwait2)$/ { ep += $4 }
        $NF ~ /^epoll_ctl$/ { ctl += $4 }
        $NF == "total" { tot = $4 }
        END { printf "  %-18s reads %5.2f  writes %5.2f  epoll_wait %5.2f  epoll_ctl %5.2f  all calls %6.2f\n",
              label, rd / n, wr / n, ep / n, ctl / n, tot / n }' "$TMP/strace.out"
    [[ ${VERBOSE:-0} == 1 ]] && cat "$TMP/strace.out"
    return 0
}
NG_WORKER=$(pgrep -P "$NG_MASTER" | head -1)
echo "system calls per request ($REQUESTS sequential requests on one keep-alive connection, $(basename "$BIN")):"
for kind in $KINDS; do
    case $kind in
    plain)
        count "nginx" "$NG_WORKER" "$NG" /v1/chat/completions "$ROOT/bench/request.json"
        count "tollgate" "$GW_PID" "$GW" /v1/chat/completions "$ROOT/bench/request.json"
        ;;
    tls)
        count "nginx-tls" "$NG_WORKER" "$NG_TLS" /v1/chat/completions "$ROOT/bench/request.json"
        count "tollgate-tls" "$GW_PID" "$GW" /v1/chat/completions "$TMP/request-tls.json"
        ;;
    sse)
        count "nginx-sse" "$NG_WORKER" "$NG" /sse/v1/chat/completions "$TMP/request-sse-nginx.json"
        count "tollgate-sse" "$GW_PID" "$GW" /v1/chat/completions "$TMP/request-sse.json"
        ;;
    *) echo "unknown kind $kind (plain tls sse)" >&2 ;;
    esac
done
