#!/usr/bin/env bash
# bench/writer.sh — instructions per record in the SQLite store's write
# side alone (tg_sqlite_write: the INSERTs and the commit), under callgrind,
# for fixed batch sizes and body sizes. Each case fills a fresh store with
# PREFILL records (so the B-trees have depth), then counts the instructions
# of writing RECORDS more in transactions of BATCH records. Deterministic:
# the same records and batches every run, whatever else runs on the
# machine, unlike bench/callgrind-threads.sh, whose batches are what
# arrived in 250 ms under valgrind.
#
#   ./bench/writer.sh
#   LIB=/tmp/old/build/libtollgate.a ./bench/writer.sh   # another build's store
#   PAGE=16384 ./bench/writer.sh     # a store made with other pages (as older versions did)
#
# Environment (defaults): RECORDS (3000), PREFILL (20000), BATCHES ("64
# 1024"), BODIES ("597 10000": a chat completion's response body and a
# streamed answer's), PAGE (the store's own), LIB (build/libtollgate.a,
# made here when it is the default), CC (cc). Needs valgrind.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECORDS=${RECORDS:-3000}
PREFILL=${PREFILL:-20000}
BATCHES=${BATCHES:-64 1024}
BODIES=${BODIES:-597 10000}
PAGE=${PAGE:-}
CC=${CC:-cc}
command -v valgrind >/dev/null || {
    echo "writer.sh: needs valgrind" >&2
    exit 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-writer-bench.XXXXXX")
cleanup() {
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

cd "$ROOT"
if [[ -z ${LIB:-} ]]; then
    make -s build/libtollgate.a
    LIB=$ROOT/build/libtollgate.a
fi
PKGS="libevent libevent_pthreads libevent_openssl libcurl jansson yaml-0.1 openssl sqlite3 libpq"
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Isrc \
    $(pkg-config --cflags $PKGS) -o "$TMP/writer_bench" bench/writer_bench.c "$LIB" \
    $(pkg-config --libs $PKGS) -lhiredis -lhttp_parser -lpthread -lm

echo "writer bench: $RECORDS records after $PREFILL, SQLite $(pkg-config --modversion sqlite3), pages ${PAGE:-of a new store}"
printf '%-8s %-8s %12s %s\n' body batch "instr/record" "page size"
for body in $BODIES; do
    for batch in $BATCHES; do
        db=$TMP/b$body-$batch.db
        if [[ -n $PAGE ]]; then
            python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA page_size=" + str(int(sys.argv[2])))
c.execute("PRAGMA journal_mode=WAL"); c.close()' "$db" "$PAGE"
        fi
        "$TMP/writer_bench" "$db" "$PREFILL" 256 "$body"
        valgrind --tool=callgrind --toggle-collect=tg_sqlite_write \
            --callgrind-out-file="$TMP/cg.$body.$batch" "$TMP/writer_bench" "$db" "$RECORDS" "$batch" "$body" \
            2>"$TMP/valgrind.$body.$batch.log"
        ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$TMP/cg.$body.$batch")
        ps=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA page_size").fetchone()[0])' "$db")
        printf '%-8s %-8s %12d %s\n' "$body" "$batch" $((ir / RECORDS)) "$ps"
        rm -f "$db" "$db"-*
    done
done
