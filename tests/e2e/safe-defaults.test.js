'use strict';
// Safe by default: with no file the gateway serves this machine only; the
// records API and /metrics answer only security.admin_allowed_ips while keys
// are off; require_auth with no usable key does not start; the database is
// its owner's alone; the start-up log says who may reach what.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const h = require('./harness');

let fake;
before(async () => { fake = await h.startFake(); });
after(async () => { await fake?.stop(); });

/** The start-up log says who may reach what once the workers run, maybe
 *  after /health first answers: wait for the line (a slow sanitizer build). */
async function startLog(gw, re) {
  await h.waitFor(() => re.test(gw.output()), 10000);
  assert.match(gw.output(), re);
}

/** A non-loopback IPv4 address of this machine, or null. */
function externalAddress() {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list || []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

test('/api/v1 and /metrics answer only admin_allowed_ips while require_auth is off', async () => {
  // Loopback is not in the list: this test's own requests stand for a remote reader.
  const gw = await h.startGateway(h.baseConfig(fake, {
    security: { admin_allowed_ips: ['10.9.9.9'] },
  }));
  try {
    for (const p of ['/api/v1/requests', '/api/v1/stats', '/metrics', '/api/v1/rate-limits']) {
      const r = await fetch(gw.url + p);
      assert.equal(r.status, 403, p);
      const body = await r.json();
      assert.equal(body.error.code, 'address_not_allowed', p);
      assert.match(body.error.message, /admin_allowed_ips/);
    }
    const w = await fetch(`${gw.url}/api/v1/rate-limits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ property: 'Agent', value: 'a1', limit: 1, window: '1m' }),
    });
    assert.equal(w.status, 403);
    // LLM routes and /health are not admin routes.
    assert.equal((await fetch(`${gw.url}/health`)).status, 200);
    assert.equal((await fetch(`${gw.baseURL}/models`)).status, 200);
    await startLog(gw, /access: .*\/api\/v1 and \/metrics: 10\.9\.9\.9/);
  } finally {
    await gw.stop();
  }
});

test('a file without admin_allowed_ips: loopback reads records, another address of this machine does not', async () => {
  const cfg = h.baseConfig(fake);
  cfg.server.host = '0.0.0.0';
  const gw = await h.startGateway(cfg);
  try {
    assert.equal((await fetch(`${gw.url}/api/v1/requests`)).status, 200);
    assert.equal((await fetch(`${gw.url}/metrics`)).status, 200);
    // Open to every address without a key: the start-up log warns.
    await startLog(gw, /WARN.*access: LLM routes: any address that reaches 0\.0\.0\.0:\d+, no key needed/i);
    const ext = externalAddress();
    if (ext) {
      const r = await fetch(`http://${ext}:${gw.port}/api/v1/requests`);
      assert.equal(r.status, 403);
      assert.equal((await fetch(`http://${ext}:${gw.port}/metrics`)).status, 403);
      assert.equal((await fetch(`http://${ext}:${gw.port}/v1/models`)).status, 200);
    }
  } finally {
    await gw.stop();
  }
});

test('with require_auth, key permissions decide, not the address list', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    security: {
      require_auth: true,
      admin_allowed_ips: ['10.9.9.9'],
      api_keys: [{ name: 'reader', key: 'tg-reader-0123456789', permissions: ['read'] }],
    },
  }));
  try {
    const r = await fetch(`${gw.url}/api/v1/requests`, {
      headers: { authorization: 'Bearer tg-reader-0123456789' },
    });
    assert.equal(r.status, 200);
    await startLog(gw, /access: LLM routes: this machine, with a gateway key/);
  } finally {
    await gw.stop();
  }
});

test('require_auth with no usable key: start-up refuses, --validate warns', async () => {
  const cfg = h.baseConfig(fake, {
    security: {
      require_auth: true,
      api_keys: [{ name: 'dev', key: '${TOLLGATE_E2E_UNSET_KEY}', permissions: ['read'] }],
    },
  });
  cfg.server.port = 1; // never bound: the check comes first
  const file = h.writeConfig(cfg);
  const env = { ...process.env };
  delete env.TOLLGATE_E2E_UNSET_KEY;
  const run = spawnSync(h.BIN, ['--config', file], { encoding: 'utf8', timeout: 10000, env });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /require_auth is true but no gateway key has a value/);
  assert.doesNotMatch(run.stdout + run.stderr, /Sanitizer|runtime error:/);
  const v = spawnSync(h.BIN, ['--validate', '--config', file], { encoding: 'utf8', timeout: 10000, env });
  assert.equal(v.status, 0, v.stdout);
  assert.match(v.stdout, /warning: security\.require_auth/);
});

test('--validate and start-up refuse a server.host that does not resolve', () => {
  const cfg = h.baseConfig(fake);
  cfg.server.host = 'no-such-host.invalid';
  cfg.server.port = 18585;
  const file = h.writeConfig(cfg);
  const v = spawnSync(h.BIN, ['--validate', '--config', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(v.status, 1, v.stdout);
  assert.match(v.stdout, /server\.host: cannot resolve 'no-such-host\.invalid'/);
  const run = spawnSync(h.BIN, ['--config', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /server\.host: cannot resolve/);
  assert.doesNotMatch(run.stdout + run.stderr, /Sanitizer|runtime error:/);
});

test('a start-up that fails (port taken) exits 1 cleanly, without leaks', async () => {
  const gw = await h.startGateway(h.baseConfig(fake));
  try {
    const cfg = h.baseConfig(fake);
    cfg.server.port = gw.port;
    const file = h.writeConfig(cfg);
    const run = spawnSync(h.BIN, ['--config', file], {
      encoding: 'utf8', timeout: 20000, cwd: path.dirname(file),
    });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /Sanitizer|runtime error:/);
  } finally {
    await gw.stop();
  }
});

test('the database is created readable by its owner only', async () => {
  const gw = await h.startGateway(h.baseConfig(fake));
  try {
    await fetch(`${gw.baseURL}/models`);
    const db = path.join(gw.dir, 'tollgate.db');
    await h.waitFor(() => fs.existsSync(db) && fs.existsSync(`${db}-wal`));
    for (const f of [db, `${db}-wal`, `${db}-shm`]) {
      if (fs.existsSync(f)) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
    }
  } finally {
    await gw.stop();
  }
});

test('no configuration file: listens on 127.0.0.1 only', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-e2e-'));
  const env = { ...process.env };
  delete env.TOLLGATE_CONFIG;
  delete env.HELICONE_CONFIG_PATH;
  for (const k of Object.keys(env)) if (/_API_KEY$/.test(k)) delete env[k];
  const proc = spawn(h.BIN, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  try {
    await h.waitFor(() => /access: |already in use|cannot/i.test(out) || proc.exitCode !== null, 10000);
    if (/already in use/i.test(out)) {
      t.skip('port 8585 is taken on this machine');
      return;
    }
    assert.match(out, /listening on 127\.0\.0\.1:8585/);
    assert.match(out, /access: LLM routes: this machine, no key needed/);
    assert.equal((await fetch('http://127.0.0.1:8585/health')).status, 200);
    const ext = externalAddress();
    if (ext) {
      await assert.rejects(fetch(`http://${ext}:8585/health`, { signal: AbortSignal.timeout(3000) }));
    }
  } finally {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
    assert.doesNotMatch(out, /Sanitizer|runtime error:/);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
