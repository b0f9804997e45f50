#!/usr/bin/env bash
# Installs what tollgate needs to build, run and test on Debian (bookworm):
# the C libraries, the test and benchmark tools, and the npm packages of the
# end-to-end suite. Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=(build-essential pkg-config
      libevent-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev libsqlite3-dev
      libhttp-parser-dev  # reads client requests (src/server/request.c)
      libjemalloc-dev  # the release binary's allocator
      liblz4-dev  # stored bodies are LZ4 frames (src/store/body.c)
      libpq-dev libhiredis-dev  # the PostgreSQL store and Redis shared state (SPEC §13)
      postgresql redis-server haproxy  # started by tests/e2e/services.js for the fleet tests
      sqlite3  # the shell holds a database lock in tests/e2e/runtime-limits.test.js, fills one in dashboard.test.js
      lz4  # reads the stored bodies' frames in tests/e2e/harness.js (storedText)
      chromium  # the dashboard in a real browser (tests/e2e/dashboard.test.js, playwright-core)
      ca-certificates curl nginx-light wrk
      clang-format  # scripts/check-format.sh
      clang libclang-rt-14-dev)  # libFuzzer for tests/fuzz
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packages of nginx-light, postgresql, redis-server and haproxy start system
# services; the benchmark and the tests run their own instances, so those are not needed.
if command -v systemctl >/dev/null 2>&1; then
  for s in nginx postgresql redis-server haproxy; do $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true; done
fi

# The end-to-end suite's SDKs (exact versions from each package-lock.json):
# the root one, and @helicone/helpers apart in tests/e2e/helicone-helpers/
# (it needs openai ^5, which clashes with the suite's openai in one tree).
npm_ci() {
  local dir=$1
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
}
npm_ci .
npm_ci tests/e2e/helicone-helpers
