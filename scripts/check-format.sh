#!/bin/sh
# clang-format --dry-run --Werror over the C sources (src/, tests/unit,
# tests/fuzz) against .clang-format; `make format` rewrites them.
# Last line: "format: N passed, N failed" (one check).
cd "$(dirname "$0")/.." || exit 2
files=$(find src tests/unit tests/fuzz -name '*.[ch]' | sort)
# shellcheck disable=SC2086
if out=$(clang-format --dry-run --Werror $files 2>&1); then
    echo "format: 1 passed, 0 failed"
else
    echo "$out" | grep -E '^[^ ].*: error:' | cut -d: -f1 | sort -u | sed 's/^/not formatted: /'
    echo "format: 0 passed, 1 failed (run: make format)"
    exit 1
fi
