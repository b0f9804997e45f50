#!/usr/bin/env bash
# bench/lib.sh — what callgrind.sh and syscalls.sh share. Sourced after
# ROOT is set; `bench_start NAME` makes the run's temp directory ($TMP) and
# the exit trap that stops every PID in PIDS and removes $TMP (KEEP_TMP=1
# keeps it).

NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# BIN: the gateway to measure, the script's argument or build/tollgate
bench_bin() { # [path]
    BIN=${1:-$ROOT/build/tollgate}
    [[ $BIN == /* ]] || BIN=$ROOT/$BIN
}

bench_start() { # name
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-$1.XXXXXX")
    chmod 755 "$TMP"
    PIDS=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP_TMP:-0} == 1 ]] || rm -rf "$TMP"
}

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# A throwaway certificate for localhost and 127.0.0.1: DIR/cert.pem, DIR/key.pem
bench_cert() { # dir
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
    chmod 644 "$1/key.pem"
}

# proxy.sh's static upstream in $TMP/up: nginx, one worker, plain HTTP on
# $UP and HTTPS on $UP_TLS (a throwaway certificate, $TMP/up/cert.pem), the
# chat answer under /v1 and bench/sse-body.sh's event stream under /sse/v1.
# Sets UP and UP_TLS; adds nginx to PIDS.
bench_upstream() {
    UP=$(free_port)
    UP_TLS=$(free_port)
    mkdir -p "$TMP/up/www/sse/v1/chat"
    # shellcheck source=bench/sse-body.sh
    source "$ROOT/bench/sse-body.sh"
    printf '%s' "$SSE_BODY" >"$TMP/up/www/sse/v1/chat/completions"
    chmod -R a+rX "$TMP/up/www"
    bench_cert "$TMP/up"
    sed -e "s|@DIR@|$TMP/up|g" -e "s|@PORT@|$UP|g" -e "s|@WORKERS@|1|g" -e "s|@TLS_PORT@|$UP_TLS|g" \
        -e "s|@CERT@|$TMP/up/cert.pem|g" -e "s|@KEY@|$TMP/up/key.pem|g" "$ROOT/bench/nginx-upstream.conf.in" >"$TMP/up/nginx.conf"
    "$NGINX" -p "$TMP/up" -e "$TMP/up/error.log" -c "$TMP/up/nginx.conf" >/dev/null 2>&1 &
    PIDS+=($!)
}

# Waits up to 60 s for the gateway on PORT to answer /health.
wait_health() { # port
    for _ in $(seq 1 300); do
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/health" && return 0
        sleep 0.2
    done
    return 1
}

# POSTs the file BODY to PATH N times, one after the other, on one
# keep-alive connection; exits 1 on any answer but 200. DRIVE_HEADERS (a JSON
# object) adds request headers.
drive() { # port path body n
    node -e '
const http = require("http");
const body = require("fs").readFileSync(process.argv[3]);
const extra = JSON.parse(process.env.DRIVE_HEADERS || "{}");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let left = Number(process.argv[4]);
function one() {
  if (!left--) { agent.destroy(); return; }
  const r = http.request({ host: "127.0.0.1", port: Number(process.argv[1]), path: process.argv[2],
    method: "POST", agent, headers: { "content-type": "application/json", authorization: "Bearer sk-client", ...extra } }, (res) => {
    res.resume(); res.on("end", () => { if (res.statusCode !== 200) { console.error("status", res.statusCode); process.exit(1); } one(); });
  });
  r.on("error", (e) => { console.error(e.message); process.exit(1); });
  r.end(body);
}
one();' "$@"
}
