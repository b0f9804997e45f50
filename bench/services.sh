#!/usr/bin/env bash
# bench/services.sh — PostgreSQL and Redis for the benchmarks, started as
# tests/e2e/services.js starts them for the tests: each in a folder of its
# own, on a private loopback port, nothing kept. Sourced by bench/proxy.sh
# (the fleet targets); the caller picks the ports and stops what it started.
#
#   svc_start_postgres DIR PORT   sets SVC_PG_URL (postgresql://tollgate:PASSWORD@127.0.0.1:PORT/tollgate)
#                                 and SVC_PG_PID
#   svc_start_redis DIR PORT      sets SVC_REDIS_URL (redis://127.0.0.1:PORT/0) and SVC_REDIS_PID
#   svc_psql SQL                  runs SQL as the superuser in database tollgate (unaligned output)
#   svc_pids                      every process of both servers (for CPU time)
#   svc_stop                      stops both (fast shutdown for PostgreSQL)
#
# PostgreSQL: fsync, synchronous_commit and full_page_writes off,
# shared_buffers 32 MB, as the tests run it: a measure of the gateway's side,
# not of a server's disks. It refuses to run as root, so as root it runs as
# the `postgres` user the Debian package made and DIR is handed to that user.
# Redis: no snapshots, no append-only file.

# shellcheck disable=SC2034 # the SVC_* variables are read by the caller
SVC_PG_PID=
SVC_REDIS_PID=
SVC_PG_DIR=
SVC_PG_PORT=
SVC_PG_BIN=

svc_die() { echo "FAIL: $*" >&2; exit 1; }

# Runs a command as the postgres user when root, else as is.
svc_as_pg() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

svc_pg_bin() { # the newest /usr/lib/postgresql/N/bin with an initdb
    local d best=
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb ]] || continue
        if [[ -z $best ]] || (($(basename "$(dirname "$d")") > $(basename "$(dirname "$best")"))); then best=$d; fi
    done
    [[ -n $best ]] || svc_die "PostgreSQL is not installed (no initdb under /usr/lib/postgresql; scripts/install-deps.sh)"
    echo "$best"
}

svc_psql_as() { # db sql
    svc_as_pg "$SVC_PG_BIN/psql" -h "$SVC_PG_DIR/sock" -p "$SVC_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAt -c "$2"
}
svc_psql() { svc_psql_as tollgate "$1"; }

svc_start_postgres() { # dir port
    local dir=$1 port=$2 password i
    SVC_PG_BIN=$(svc_pg_bin)
    SVC_PG_DIR=$dir
    SVC_PG_PORT=$port
    mkdir -p "$dir/sock"
    ((EUID == 0)) && chown -R postgres:postgres "$dir"
    svc_as_pg "$SVC_PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { tail -n 20 "$dir/initdb.log" >&2; svc_die "initdb failed"; }
    svc_as_pg "$SVC_PG_BIN/postgres" -D "$dir/data" -p "$port" -k "$dir/sock" -c listen_addresses=127.0.0.1 \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 -c shared_buffers=32MB >"$dir/postgres.log" 2>&1 &
    SVC_PG_PID=$!
    # ready for queries (the port opens a little before start-up ends)
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SVC_PG_PID" 2>/dev/null || { tail -n 20 "$dir/postgres.log" >&2; svc_die "PostgreSQL exited during start-up"; }
        svc_psql_as postgres 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    ((i < 200)) || { tail -n 20 "$dir/postgres.log" >&2; svc_die "PostgreSQL did not answer within 20 s"; }
    password=$(openssl rand -hex 12)
    svc_psql_as postgres "CREATE ROLE tollgate LOGIN CREATEDB PASSWORD '$password'" >/dev/null
    svc_psql_as postgres 'CREATE DATABASE tollgate OWNER tollgate' >/dev/null
    SVC_PG_URL="postgresql://tollgate:$password@127.0.0.1:$port/tollgate"
}

svc_start_redis() { # dir port
    local dir=$1 port=$2 i
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --protected-mode no >"$dir/redis.log" 2>&1 &
    SVC_REDIS_PID=$!
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SVC_REDIS_PID" 2>/dev/null || { tail -n 20 "$dir/redis.log" >&2; svc_die "Redis exited during start-up"; }
        [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
        sleep 0.1
    done
    ((i < 100)) || { tail -n 20 "$dir/redis.log" >&2; svc_die "Redis did not answer within 10 s"; }
    SVC_REDIS_URL="redis://127.0.0.1:$port/0"
}

svc_tree() { # pid: it and its descendants
    local c
    echo "$1"
    for c in $(pgrep -P "$1" 2>/dev/null || true); do svc_tree "$c"; done
}

# PostgreSQL's postmaster (under runuser when root) and its back-ends, and Redis
svc_pids() {
    [[ -n $SVC_PG_PID ]] && svc_tree "$SVC_PG_PID"
    [[ -n $SVC_REDIS_PID ]] && svc_tree "$SVC_REDIS_PID"
    return 0
}

svc_wait_gone() { # pid seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

svc_stop() {
    if [[ -n $SVC_PG_PID ]]; then
        # runuser does not pass signals on: pg_ctl asks for the fast shutdown
        svc_as_pg "$SVC_PG_BIN/pg_ctl" -D "$SVC_PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
        local pm
        pm=$(head -n 1 "$SVC_PG_DIR/data/postmaster.pid" 2>/dev/null || true)
        [[ $pm =~ ^[0-9]+$ ]] && { kill -INT "$pm" 2>/dev/null || true; } # pg_ctl failed: the fast shutdown by signal
        svc_wait_gone "$SVC_PG_PID" 20
        SVC_PG_PID=
    fi
    if [[ -n $SVC_REDIS_PID ]]; then
        kill -TERM "$SVC_REDIS_PID" 2>/dev/null || true
        svc_wait_gone "$SVC_REDIS_PID" 10
        SVC_REDIS_PID=
    fi
}
