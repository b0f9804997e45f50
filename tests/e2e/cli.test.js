'use strict';
// Command line (SPEC section 1): --version, --help, --validate.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const h = require('./harness');

const run = (...args) => {
  const r = spawnSync(h.BIN, args, { encoding: 'utf8', timeout: 10000 });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout + r.stderr };
};
const fakeLike = { url: 'http://127.0.0.1:9' };

test('--version and --help exit 0 and print something', () => {
  const v = run('--version');
  assert.equal(v.code, 0, v.out);
  assert.match(v.out, /\d+\.\d+\.\d+/);
  const hl = run('--help');
  assert.equal(hl.code, 0, hl.out);
  assert.match(hl.out, /--config/);
});

test('--validate accepts a good file and names the path and line of an unknown key', () => {
  const cfg = h.baseConfig(fakeLike);
  cfg.server.port = 18585;
  const good = h.writeConfig(cfg);
  const ok = run('--validate', '--config', good);
  assert.equal(ok.code, 0, ok.out);
  assert.ok(!ok.out.includes(h.SECRET), 'validate printed the provider key');

  const bad = h.writeConfig('server:\n  host: 127.0.0.1\n  port: 1234\n  bogus_option: 1\n');
  const r = run('--validate', '--config', bad);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /bogus_option/);
  assert.match(r.out, /\b4\b/, `line number missing: ${r.out}`);
});

test('the configuration file: --config, then $TOLLGATE_CONFIG, then $HELICONE_CONFIG_PATH', () => {
  const cfg = h.baseConfig(fakeLike);
  cfg.server.port = 18585;
  const good = h.writeConfig(cfg);
  const bad = h.writeConfig('server:\n  port: 1234\n  helicone_marker_option: 1\n');
  const cwd = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'tollgate-e2e-'));
  const base = { ...process.env };
  delete base.TOLLGATE_CONFIG;
  delete base.HELICONE_CONFIG_PATH;
  const validate = (env, ...args) => {
    const r = spawnSync(h.BIN, ['--validate', ...args], { cwd, env: { ...base, ...env }, encoding: 'utf8', timeout: 10000 });
    if (r.error) throw r.error;
    return { code: r.status, out: r.stdout + r.stderr };
  };
  // HELICONE_CONFIG_PATH alone is read (the bad file is refused, naming its key)
  let r = validate({ HELICONE_CONFIG_PATH: bad });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /helicone_marker_option/);
  r = validate({ HELICONE_CONFIG_PATH: good });
  assert.equal(r.code, 0, r.out);
  // TOLLGATE_CONFIG wins over it; --config over both; an empty variable is unset
  r = validate({ TOLLGATE_CONFIG: good, HELICONE_CONFIG_PATH: bad });
  assert.equal(r.code, 0, r.out);
  r = validate({ TOLLGATE_CONFIG: bad, HELICONE_CONFIG_PATH: good });
  assert.equal(r.code, 1, r.out);
  r = validate({ TOLLGATE_CONFIG: bad, HELICONE_CONFIG_PATH: bad }, '--config', good);
  assert.equal(r.code, 0, r.out);
  r = validate({ TOLLGATE_CONFIG: '', HELICONE_CONFIG_PATH: bad });
  assert.equal(r.code, 1, r.out);
});
