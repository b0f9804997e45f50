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
