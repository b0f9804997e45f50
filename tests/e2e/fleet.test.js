'use strict';
// A fleet (SPEC §13, docs/fleet.md): three gateways behind haproxy, one
// PostgreSQL, one Redis, all real servers started by tests/e2e/services.js.
// The instances act as one: a runtime rate limit made on one allows exactly
// its quota through the load balancer; concurrent requests at a budget set
// on another never push spend past it; an answer cached by one is a HIT on
// another; every instance's API sees every record; a key revoked on one is
// refused on another within a second; and kill -9 of one instance under
// load loses no answered request: once it is started again, every request
// any instance answered is in PostgreSQL.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./harness');
const svc = require('./services');

const ADMIN = 'tg-fleet-admin-key';
const MODEL = 'fake/gpt-4o-mini';

let fake;
let pg;
let rd;
let lb;
let gws = [];

function config() {
  const base = h.everyProviderType(fake, { input: 1, output: 1 });
  return h.baseConfig(fake, {
    ...base,
    storage: { url: pg.url },
    redis: { url: rd.url },
    caching: { enabled: false, backend: 'redis' },
    security: { require_auth: true, api_keys: [{ name: 'admin', key: ADMIN, permissions: ['read', 'write'] }] },
  });
}

before(async () => {
  fake = await h.startFake();
  pg = await svc.startPostgres();
  rd = await svc.startRedis();
  const cfg = config();
  // one after another: the schema migration lock is tested in postgres.test.js
  for (let i = 0; i < 3; i++) gws.push(await h.startGateway(cfg));
  lb = await svc.startHaproxy(gws.map((g) => g.port));
  // haproxy's first health checks mark every instance up
  await h.waitFor(async () => {
    const rs = await Promise.all([0, 1, 2].map(() => fetch(`http://127.0.0.1:${lb.port}/health`).then((r) => r.status, () => 0)));
    return rs.every((s) => s === 200);
  }, 10000);
});

after(async () => {
  await lb?.stop();
  for (const g of gws) if (g.alive()) await g.stop();
  await rd?.stop();
  await pg?.stop();
  await fake?.stop();
});

const lbURL = () => `http://127.0.0.1:${lb.port}`;

async function chat(base, { key = ADMIN, headers = {}, body = {} } = {}) {
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hello fleet' }], ...body }),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text };
}

const api = (base, p, init = {}) => fetch(`${base}/api/v1${p}`, {
  ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(init.headers || {}) },
});

/** Records with property Run=run as each gateway's API sees them. */
async function totals(run) {
  return Promise.all(gws.map(async (g) => {
    const r = await api(g.url, `/requests?filter=properties.Run=${run}&limit=1`);
    return r.status === 200 ? (await r.json()).total : -1;
  }));
}

test('a runtime rate limit made on one instance allows exactly its quota through the load balancer', async () => {
  const agent = `rl-${crypto.randomBytes(4).toString('hex')}`;
  const made = await api(gws[0].url, '/rate-limits', {
    method: 'POST', body: JSON.stringify({ property: 'Agent-Name', value: agent, limit: 10, window: '1h' }),
  });
  assert.equal(made.status, 201, await made.text());
  await h.sleep(1000); // every instance hears of the rule within a second
  const results = await Promise.all(Array.from({ length: 30 },
    () => chat(lbURL(), { headers: { 'Helicone-Property-Agent-Name': agent } })));
  const ok = results.filter((r) => r.status === 200).length;
  const limited = results.filter((r) => r.status === 429).length;
  assert.equal(ok, 10, `statuses: ${results.map((r) => r.status).join(',')}`);
  assert.equal(limited, 20);
});

test('150 concurrent requests at a budget set on another instance never push spend past it', async () => {
  const team = `team-${crypto.randomBytes(4).toString('hex')}`;
  const put = await api(gws[1].url, `/budgets/property:Team/${team}`, { method: 'PUT', body: JSON.stringify({ daily: 0.5 }) });
  assert.equal(put.status, 200, await put.text());
  await h.sleep(1000);
  const reply = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
  const results = await Promise.all(Array.from({ length: 150 }, () => chat(lbURL(), {
    headers: { 'Helicone-Property-Team': team, 'Helicone-Property-Run': team, 'x-fake-delay-ms': '100', 'x-fake-reply': reply },
  })));
  const ok = results.filter((r) => r.status === 200).length;
  const refused = results.filter((r) => r.status === 429);
  assert.ok(ok > 0 && refused.length > 0, `ok ${ok}, refused ${refused.length}`);
  for (const r of refused) assert.equal(JSON.parse(r.body).error.code, 'budget_exceeded');
  let costs;
  await h.waitFor(async () => {
    const r = await api(gws[2].url, `/requests/costs?filter=properties.Team=${team}&period=day`);
    costs = await r.json();
    return costs.requests >= 150;
  }, 15000);
  assert.ok(costs.total_cost <= 0.5 + 1e-9, `spend ${costs.total_cost} passed the 0.5 budget`);
  // the budget as each instance reports it is the same shared spend
  const seen = await Promise.all(gws.map(async (g) => {
    const b = await (await api(g.url, '/budgets')).json();
    return b.data.find((x) => x.scope === 'property:Team' && x.value === team);
  }));
  for (const b of seen) assert.ok(b, 'every instance lists the budget');
});

test('an answer cached by one instance is a HIT on another', async () => {
  const nonce = crypto.randomBytes(6).toString('hex');
  const ask = (g) => chat(g.url, {
    headers: { 'Helicone-Cache-Enabled': 'true' },
    body: { messages: [{ role: 'user', content: `cache me ${nonce}` }] },
  });
  const first = await ask(gws[0]);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('helicone-cache'), 'MISS');
  await h.sleep(200);
  const second = await ask(gws[1]);
  assert.equal(second.status, 200);
  assert.equal(second.headers.get('helicone-cache'), 'HIT');
  assert.equal(JSON.parse(second.body).choices[0].message.content, JSON.parse(first.body).choices[0].message.content);
});

test('every instance\'s API sees every record', async () => {
  const run = `rec-${crypto.randomBytes(4).toString('hex')}`;
  const results = await Promise.all(Array.from({ length: 30 }, () => chat(lbURL(), { headers: { 'Helicone-Property-Run': run } })));
  assert.ok(results.every((r) => r.status === 200));
  await h.waitFor(async () => (await totals(run)).every((t) => t === 30), 15000);
});

test('a key revoked on one instance is refused on another within a second', async () => {
  const name = `k-${crypto.randomBytes(4).toString('hex')}`;
  const r = await api(gws[0].url, '/keys', { method: 'POST', body: JSON.stringify({ name }) });
  const made = await r.text();
  assert.equal(r.status, 201, made);
  const { key } = JSON.parse(made);
  await h.waitFor(async () => (await chat(gws[2].url, { key })).status === 200, 2000);
  const del = await api(gws[0].url, `/keys/${name}`, { method: 'DELETE' });
  assert.ok(del.status === 200 || del.status === 204, `revoke: ${del.status}`);
  const t0 = Date.now();
  await h.waitFor(async () => (await chat(gws[2].url, { key })).status === 401, 1000, 20);
  assert.ok(Date.now() - t0 <= 1000);
});

test('kill -9 of one instance under load: the others answer, and every answered request is in PostgreSQL', async () => {
  const run = `kill-${crypto.randomBytes(4).toString('hex')}`;
  const answered = [];
  let sent = 0;
  let failed = 0;
  const worker = async () => {
    while (sent < 300) {
      sent++;
      try {
        const r = await chat(lbURL(), { headers: { 'Helicone-Property-Run': run, 'x-fake-delay-ms': '20' } });
        if (r.status === 200) answered.push(r.headers.get('helicone-id'));
        else failed++;
      } catch { failed++; }
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, worker));
  await h.waitFor(() => sent >= 100, 20000);
  const victim = gws[2];
  victim.proc.kill('SIGKILL');
  await victim.exited;
  await load;
  assert.ok(answered.length >= 0.95 * 300, `answered ${answered.length} of 300 (${failed} failed)`);
  // the killed instance starts again in its folder: its journal replays
  gws[2] = await h.respawnGateway(victim);
  const ids = new Set(answered);
  assert.equal(ids.size, answered.length, 'request ids are unique');
  await h.waitFor(async () => {
    const out = pg.psql(`SELECT count(*) FROM requests WHERE id IN (${[...ids].map((i) => `'${i.replace(/[^0-9a-f-]/gi, '')}'`).join(',')})`);
    return Number(out.trim()) === ids.size;
  }, 20000, 200);
});
