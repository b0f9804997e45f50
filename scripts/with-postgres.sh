#!/bin/sh
# Run a command with a throwaway PostgreSQL: started in a temporary folder
# on a private port (tests/e2e/services.js), its URL in TOLLGATE_TEST_PG_URL,
# stopped and removed when the command ends. The command's exit status is
# the script's.
#
#   scripts/with-postgres.sh ./build/unit_tests
set -eu
if [ $# -eq 0 ]; then
    echo "usage: scripts/with-postgres.sh CMD [ARGS...]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
exec node -e '
const { spawn } = require("node:child_process");
const { startPostgres } = require(process.argv[1]);
(async () => {
  const pg = await startPostgres();
  const [cmd, ...args] = process.argv.slice(2);
  const child = spawn(cmd, args, {
    stdio: "inherit", env: { ...process.env, TOLLGATE_TEST_PG_URL: pg.url },
  });
  const code = await new Promise((resolve) => child.on("exit", (c, s) => resolve(s ? 1 : c)));
  await pg.stop();
  process.exit(code);
})().catch((e) => { console.error(e); process.exit(1); });
' "$here/tests/e2e/services.js" "$@"
