'use strict';
// The PostgreSQL store (SPEC §13) against a real PostgreSQL: records land
// in it, the query API answers exactly as on SQLite for the same records, an
// outage under traffic loses none, several gateways migrate one empty
// database at once, and the database password never reaches the output.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');
const { startPostgres, freePort } = require('./services');

let pg;
let dir;
let n = 0;
const newDb = () => pg.createDatabase(`pgtest_${process.pid}_${++n}`);
const PRICE = { input: 0.00015, output: 0.0006 };

before(async () => {
  pg = await startPostgres();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-pg-e2e-'));
});
after(async () => {
  await pg?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const config = (url, extra = {}) => ({
  server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s' },
  providers: {},
  logging: { level: 'info', format: 'text', output: 'stdout' },
  storage: { url },
  cost_tracking: { pricing: { 'gpt-4o-mini': PRICE, 'gpt-4o': PRICE } },
  ...extra,
});
// every start here chooses its store: none is replaced by the shared mode's
const start = (cfg, opts = {}) => h.startGateway(cfg, { sqlite: true, ...opts });

const getJson = async (gw, p) => {
  const r = await fetch(`${gw.url}${p}`);
  return { status: r.status, body: await r.json() };
};
const echo = (gw, headers = {}) => fetch(`${gw.baseURL}/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'hello' }] }),
}).then((r) => r.status);

/** A call made elsewhere, logged with its own times (so that two stores can
 *  hold the very same records): Helicone's manual-logging route. */
function logged(i, base) {
  const start = base + i * 37000; // spread over ~40 minutes
  const status = i % 11 === 0 ? 500 : i % 7 === 0 ? 429 : 200;
  const model = ['gpt-4o-mini', 'gpt-4o', 'other-model'][i % 3];
  const headers = {
    'content-type': 'application/json',
    'Helicone-Request-Id': `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    'Helicone-Property-Team': i % 2 ? 'blue' : 'red',
  };
  if (i % 4) headers['Helicone-Property-App'] = `app-${i % 3}`;
  if (i % 5) headers['Helicone-User-Id'] = `user-${i % 4}`;
  if (i % 3 === 0) {
    headers['Helicone-Session-Id'] = `sess-${i % 4}`;
    headers['Helicone-Session-Name'] = `Session ${i % 4}`;
    headers['Helicone-Session-Path'] = `/step/${i}`;
  }
  const body = {
    providerRequest: { url: 'https://api.openai.com/v1/chat/completions',
      json: { model, messages: [{ role: 'user', content: `question ${i}` }] }, meta: {} },
    providerResponse: status === 200
      ? { status, headers: {}, json: { id: `c${i}`, object: 'chat.completion', model,
        choices: [{ index: 0, message: { role: 'assistant', content: `answer ${i}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10 + i, completion_tokens: 3 + (i % 9),
          prompt_tokens_details: { cached_tokens: i % 4 } } } }
      : { status, headers: {}, json: { error: { message: `failure ${i}`, type: 'server_error' } } },
    timing: {
      startTime: { seconds: Math.floor(start / 1000), milliseconds: start % 1000 },
      endTime: { seconds: Math.floor((start + 40 + i * 13) / 1000), milliseconds: (start + 40 + i * 13) % 1000 },
      timeToFirstToken: 20 + (i % 17),
    },
  };
  return { headers, body: JSON.stringify(body) };
}

test('the API answers the same JSON from PostgreSQL as from SQLite for the same records', async () => {
  const base = Date.now() - 45 * 60000;
  const lite = await start(config(`sqlite:${dir}/same.db`));
  const post = await start(config(newDb()));
  try {
    const N = 60;
    for (let i = 0; i < N; i++) {
      const { headers, body } = logged(i, base);
      for (const gw of [lite, post]) {
        const r = await fetch(`${gw.url}/oai/v1/log`, { method: 'POST', headers, body });
        assert.equal(r.status, 200, await r.text());
      }
    }
    for (const gw of [lite, post]) {
      assert.ok(await h.waitFor(async () => (await getJson(gw, '/api/v1/requests?limit=1')).body.total === N, 10000));
    }
    const from = new Date(base - 60000).toISOString();
    const to = new Date(base + 50 * 60000).toISOString();
    const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    const routes = [
      '/api/v1/requests?limit=100',
      '/api/v1/requests?limit=7&offset=5',
      '/api/v1/requests?property.team=blue&status=error',
      '/api/v1/requests?property.Team=red&property.App=app-1&model=gpt-4o',
      '/api/v1/requests?user_id=user-1&user_id=user-2&status=2xx',
      `/api/v1/requests?session_id=sess-0&${range}`,
      '/api/v1/requests/00000000-0000-4000-8000-000000000004',
      '/api/v1/requests/00000000-0000-4000-8000-000000000011',
      '/api/v1/requests/no-such-id',
      `/api/v1/costs?group_by=model&${range}`,
      `/api/v1/costs?group_by=provider&${range}`,
      `/api/v1/costs?group_by=user&${range}`,
      `/api/v1/costs?group_by=day&${range}`,
      `/api/v1/costs?group_by=property:App&${range}`,
      '/api/v1/requests/costs?filter=properties.Team=blue&period=month',
      `/api/v1/stats?${range}`,
      `/api/v1/stats?${range}&model=gpt-4o-mini`,
      `/api/v1/stats/series?${range}&bucket=5m`,
      `/api/v1/stats/series?${range}&bucket=5m&group_by=property:Team`,
      `/api/v1/stats/series?${range}&bucket=1h&group_by=model&status=error`,
      `/api/v1/sessions?${range}`,
      '/api/v1/sessions?limit=2&offset=1',
      '/api/v1/sessions/sess-3',
    ];
    for (const p of routes) {
      const a = await getJson(lite, p);
      const b = await getJson(post, p);
      assert.equal(b.status, a.status, p);
      assert.deepEqual(b.body, a.body, p);
    }
    // and the records are in PostgreSQL's tables
    const db = new URL(post.config.storage.url).pathname.slice(1);
    assert.equal(pg.psql('SELECT count(*) FROM requests', db).trim(), String(N));
    assert.equal(pg.psql("SELECT count(*) FROM request_properties WHERE name = 'team'", db).trim(), String(N));
    assert.equal(pg.psql('SELECT count(*) FROM request_bodies', db).trim(), String(N));
  } finally {
    assert.equal((await lite.stop()).code, 0);
    assert.equal((await post.stop()).code, 0);
  }
});

test('records, rules, budgets and keys land in PostgreSQL and outlive a restart', async () => {
  const url = newDb();
  const db = new URL(url).pathname.slice(1);
  const admin = 'tg-admin-pg-secret';
  const cfg = config(url, { security: { api_keys: [{ name: 'admin', key: admin, permissions: ['read', 'write'] }] } });
  let gw = await start(cfg);
  const auth = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
  let made;
  try {
    assert.equal(await echo(gw, { authorization: `Bearer ${admin}`, 'Helicone-Property-Team': 'Blue' }), 200);
    assert.ok(await h.waitFor(() => pg.psql('SELECT count(*) FROM requests', db).trim() === '1', 5000));
    assert.equal(pg.psql('SELECT name, value FROM request_properties', db).trim(), 'team|Blue');
    let r = await fetch(`${gw.url}/api/v1/rate-limits`, { method: 'POST', headers: auth,
      body: JSON.stringify({ property: 'Team', value: 'Blue', limit: 5, window: 60 }) });
    assert.equal(r.status, 201);
    r = await fetch(`${gw.url}/api/v1/budgets/property:Team/Blue`, { method: 'PUT', headers: auth,
      body: JSON.stringify({ daily: 3 }) });
    assert.ok(r.status === 200 || r.status === 201, `budget ${r.status}`);
    r = await fetch(`${gw.url}/api/v1/keys`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'ci' }) });
    assert.equal(r.status, 201);
    made = await r.json();
    assert.equal(pg.psql('SELECT count(*) FROM rate_limit_rules', db).trim(), '1');
    assert.equal(pg.psql('SELECT count(*) FROM budgets', db).trim(), '1');
    assert.equal(pg.psql("SELECT count(*) FROM api_keys WHERE name = 'ci'", db).trim(), '1');
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
  gw = await start(cfg);
  try {
    const rules = (await (await fetch(`${gw.url}/api/v1/rate-limits`, { headers: auth })).json()).data;
    assert.equal(rules.length, 1);
    assert.equal(rules[0].value, 'Blue');
    assert.equal(await echo(gw, { authorization: `Bearer ${made.key}` }), 200, 'the key outlived the restart');
    const list = (await getJson(gw, '/api/v1/requests?property.team=Blue')).body;
    assert.equal(list.total, 1);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('PostgreSQL stopped and started again under traffic: every answered request is stored once', async () => {
  const url = newDb();
  const db = new URL(url).pathname.slice(1);
  const gw = await start(config(url));
  let sending = true;
  let ok = 0;
  const sender = (async () => {
    while (sending) {
      if (await echo(gw, { 'Helicone-Property-Run': 'outage' }) === 200) ok++;
      await h.sleep(5);
    }
  })();
  try {
    await h.waitFor(() => ok >= 30, 5000);
    await pg.pause();
    const before = ok;
    await h.waitFor(() => ok >= before + 50, 10000); // answers go on without the database
    // the API and the settings say the store is unavailable, in the usual format
    const list = await getJson(gw, '/api/v1/requests?limit=1');
    assert.equal(list.status, 503);
    assert.equal(list.body.error.code, 'store_unavailable');
    assert.equal(typeof list.body.error.message, 'string');
    assert.ok(!list.body.error.message.includes(pg.password));
    const rule = await fetch(`${gw.url}/api/v1/rate-limits`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ property: 'Run', value: 'x', limit: 5, window: 60 }) });
    assert.equal(rule.status, 503);
    await pg.start();
    await h.sleep(500);
    sending = false;
    await sender;
    const stored = await h.waitFor(async () => {
      const r = await getJson(gw, '/api/v1/requests?property.Run=outage&limit=1');
      return r.status === 200 && r.body.total === ok;
    }, 20000, 100);
    assert.ok(stored, `${ok} answered, ${(await getJson(gw, '/api/v1/requests?property.Run=outage&limit=1')).body.total} stored`);
    assert.equal(pg.psql('SELECT count(*), count(DISTINCT id) FROM requests', db).trim(), `${ok}|${ok}`);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /tollgate_log_records_dropped_total 0\n/);
  } finally {
    sending = false;
    await sender;
    assert.equal((await gw.stop()).code, 0);
  }
  assert.ok(!gw.output().includes(pg.password), 'the password reached the output');
});

test('three gateways starting at once on one empty database migrate it once, and share it', async () => {
  const url = newDb();
  const db = new URL(url).pathname.slice(1);
  const gws = await Promise.all([0, 1, 2].map(() => start(config(url))));
  try {
    assert.equal(pg.psql('SELECT version FROM tollgate_schema', db).trim(), '1');
    for (const [i, gw] of gws.entries()) assert.equal(await echo(gw, { 'Helicone-Property-Gw': String(i) }), 200);
    for (const gw of gws) {
      assert.ok(await h.waitFor(async () => (await getJson(gw, '/api/v1/requests?limit=1')).body.total === 3, 5000));
    }
    assert.equal(pg.psql('SELECT count(DISTINCT seq) FROM requests', db).trim(), '3');
  } finally {
    for (const gw of gws) assert.equal((await gw.stop()).code, 0);
  }
});

test('the database password is never printed: wrong password, unreachable host, --validate', async () => {
  const wrong = 'WrongPassw0rd-do-not-print';
  const u = new URL(pg.url);
  const badAuth = `postgresql://tollgate:${wrong}@127.0.0.1:${u.port}/tollgate`;
  const closed = await freePort();
  const unreachable = `postgresql://tollgate:${pg.password}@127.0.0.1:${closed}/tollgate?connect_timeout=2`;
  for (const url of [badAuth, unreachable]) {
    const secret = new URL(url).password;
    await assert.rejects(start(config(url), { attempts: 1 }), (e) => {
      assert.match(e.message, /exited \(1\)/);
      assert.match(e.message, /tollgate:\*\*\*@127\.0\.0\.1/);
      assert.ok(!e.message.includes(secret), `the password is in: ${e.message}`);
      return true;
    });
  }
  // --validate accepts the URL and prints nothing of it
  const file = h.writeConfig({ ...config(badAuth), server: { host: '127.0.0.1', port: 18080 } });
  const v = spawnSync(h.BIN, ['--config', file, '--validate'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.ok(!(v.stdout + v.stderr).includes(wrong));
  // a good start says where the store is, masked
  const gw = await start(config(newDb()));
  try {
    assert.match(gw.output(), /store: PostgreSQL postgresql:\/\/tollgate:\*\*\*@127\.0\.0\.1/);
    assert.ok(!gw.output().includes(pg.password));
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});
