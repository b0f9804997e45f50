#!/usr/bin/env bash
# bench/store.sh — the request store at scale: fills a SQLite store with
# synthetic records through the real write path (queue, spool, writer
# thread) and times the query API's common questions on it: list by
# property, costs by property for a day (the seed form), stats for a day,
# and a few more. Target: each under 100 ms. A measurement: it exits 0 when
# a target is missed; non-zero only when something fails to build or run.
#
# Environment (defaults):
#   RECORDS=1000000   records in the store
#   DAYS=30           spread evenly over the last DAYS days
#   RUNS=7            timings per query (min / median / max printed)
#   DB=<tmp>/bench.db a database to (re)use; an existing one with enough
#                     records is not refilled (KEEP_TMP=1 keeps the temp dir);
#                     or a postgresql://... URL: the PostgreSQL store
#   PG=1              the PostgreSQL store on a throwaway server
#                     (scripts/with-postgres.sh: fsync off, as in the tests)
#   CC=cc
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${PG:-0} == 1 && -z ${TOLLGATE_TEST_PG_URL:-} ]]; then
  exec "$ROOT/scripts/with-postgres.sh" "$0" "$@"
fi
[[ ${PG:-0} == 1 ]] && DB=$TOLLGATE_TEST_PG_URL
RECORDS=${RECORDS:-1000000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-7}
CC=${CC:-cc}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-store-bench.XXXXXX")
cleanup() { [[ ${KEEP_TMP:-0} == 1 ]] && echo "kept $TMP" || rm -rf "$TMP"; }
trap cleanup EXIT
DB=${DB:-$TMP/bench.db}

cd "$ROOT"
# the gateway's own library (the store, its writer and the query API), as built by make
make -s build/libtollgate.a
PKGS="libevent libevent_pthreads libevent_openssl libcurl jansson yaml-0.1 openssl sqlite3 libpq"
# shellcheck disable=SC2086
$CC -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Isrc \
    $(pkg-config --cflags $PKGS) -o "$TMP/store_bench" bench/store_bench.c build/libtollgate.a \
    $(pkg-config --libs $PKGS) -lpthread -lm

if [[ $DB == postgres* ]]; then
  echo "store bench: $RECORDS records over $DAYS days, $(nproc) cores, PostgreSQL $(psql "$DB" -qAtc 'SHOW server_version')"
  TMPDIR=$TMP "$TMP/store_bench" "$DB" "$RECORDS" "$DAYS" "$RUNS"
  psql "$DB" -qAtc "SELECT 'database: ' || pg_size_pretty(pg_database_size(current_database()))"
  exit
fi
echo "store bench: $RECORDS records over $DAYS days, $(nproc) cores, SQLite $(pkg-config --modversion sqlite3)"
"$TMP/store_bench" "$DB" "$RECORDS" "$DAYS" "$RUNS"
ls -l "$DB" | awk '{printf "database file: %.0f MB\n", $5 / 1048576}'
