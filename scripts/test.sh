#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the release and the
# sanitizer (ASan + UBSan) builds, then runs the unit tests and the
# end-to-end tests (official openai / @anthropic-ai/sdk clients against the
# built binary and the project's fake provider) on both builds.
# The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${TOLLGATE_SKIP_DEPS:-0}" != 1 ]; then
  ./scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! make -j"$(nproc)" all asan tsan >/tmp/tollgate-build.log 2>&1; then
  tail -50 /tmp/tollgate-build.log
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
add_counts() { # file with a "... N passed, N failed" or node test summary
  local p f
  p=$(grep -Eo '([0-9]+) passed, ([0-9]+) failed' "$1" | tail -1 | awk '{print $1}')
  f=$(grep -Eo '([0-9]+) passed, ([0-9]+) failed' "$1" | tail -1 | awk '{print $3}')
  if [ -z "$p" ]; then
    p=$(grep -E '^# pass [0-9]+' "$1" | tail -1 | awk '{print $3}')
    f=$(grep -E '^# fail [0-9]+' "$1" | tail -1 | awk '{print $3}')
  fi
  if [ -z "$p" ]; then p=0; f=1; fi  # the runner itself broke
  passed=$((passed + p))
  failed=$((failed + f))
}

run_step() { # name, command...
  local name=$1; shift
  local log
  log=$(mktemp)
  echo "== $name"
  "$@" >"$log" 2>&1
  local rc=$?
  add_counts "$log"
  # Show failures in full, successes as their summary.
  if [ $rc -ne 0 ]; then cat "$log"; else grep -E 'passed, [0-9]+ failed|^# (pass|fail) ' "$log"; fi
  if [ $rc -ne 0 ] && ! grep -Eq '[1-9][0-9]* failed|^# fail [1-9]' "$log"; then
    echo "$name exited with $rc"; failed=$((failed + 1))
  fi
  rm -f "$log"
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"

run_step "format" ./scripts/check-format.sh
run_step "unit (release)" ./build/unit_tests
run_step "unit (asan)" ./build-asan/unit_tests
# Fuzz targets (libFuzzer + ASan + UBSan) for the SSE parser, the JSON
# member look-ups and every translation direction, for a bounded time each; non-zero on a finding.
# run.sh ends with "fuzz: N passed, N failed", counting its targets.
run_step "fuzz" ./tests/fuzz/run.sh "${TOLLGATE_FUZZ_SECONDS:-10}"
run_step "e2e (release)" env TOLLGATE_BIN="$PWD/build/tollgate" node --test --test-concurrency=1 --test-force-exit tests/e2e/
# The PostgreSQL store: the store's unit tests again on a throwaway server,
# and the store's e2e files with every gateway on PostgreSQL (shared-store
# mode), plus tests/e2e/postgres.test.js (already in the runs above).
run_step "unit (PostgreSQL)" ./scripts/with-postgres.sh ./build/unit_tests
# The store, limits, budgets and keys files again with every gateway on a
# PostgreSQL database and a Redis of its own (TOLLGATE_E2E_SHARED=1,
# tests/e2e/harness.js: sharedStorage, sharedRedis).
run_step "e2e (PostgreSQL + Redis)" env TOLLGATE_BIN="$PWD/build/tollgate" TOLLGATE_E2E_SHARED=1 node --test --test-concurrency=1 --test-force-exit \
  tests/e2e/traffic.test.js tests/e2e/observability.test.js tests/e2e/truthful-records.test.js tests/e2e/runtime-limits.test.js \
  tests/e2e/budgets.test.js tests/e2e/keys.test.js tests/e2e/journal.test.js tests/e2e/webhooks.test.js \
  tests/e2e/dashboard.test.js
run_step "e2e (asan)" env TOLLGATE_BIN="$PWD/build-asan/tollgate" TOLLGATE_SANITIZER=1 node --test --test-concurrency=1 --test-force-exit tests/e2e/
# ThreadSanitizer: the worker, writer and checkpointer threads' hand-offs
# (queue, spool, journals, metrics). A report makes the process exit 66, and
# the e2e harness fails the test that stopped it.
run_step "unit (tsan)" ./build-tsan/unit_tests
run_step "e2e (tsan)" env TOLLGATE_BIN="$PWD/build-tsan/tollgate" TOLLGATE_SANITIZER=1 node --test --test-concurrency=1 --test-force-exit tests/e2e/

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
