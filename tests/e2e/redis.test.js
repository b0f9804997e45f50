'use strict';
// Shared state in Redis (SPEC §13, docs/fleet.md): two gateways on one
// Redis enforce one rate limit as one gateway would; Redis down with
// on_failure open keeps answering on each gateway's own counters, closed
// refuses with 503; Redis back makes them shared again; the password of
// redis.url never shows.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');
const { startRedis } = require('./services');

const PASSWORD = 'rd-SECRET-pass-42';
let fake;
let rd;
const gateways = [];

after(async () => {
  for (const gw of gateways) assert.equal((await gw.stop()).code, 0, gw.output());
  await fake?.stop();
  await rd?.stop();
});

const config = (extra = {}) => h.baseConfig(fake, {
  rate_limiting: { enabled: true, per_user: { requests_per_minute: 10 } },
  redis: { url: rd.url, timeout: '500ms', ...extra },
});

async function started(cfg) {
  const gw = await h.startGateway(cfg);
  gateways.push(gw);
  await redisUp(gw, 1);
  return gw;
}
const gateway = (extra) => started(config(extra));

const metric = async (gw, name) => {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};

async function redisUp(gw, want) {
  await h.waitFor(async () => (await metric(gw, 'tollgate_redis_up')) === want, 8000, 50);
}

const ask = (gw, user, id = h.testId('rd')) => fetch(`${gw.baseURL}/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'helicone-user-id': user, 'x-test-id': id },
  body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
}).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }));

let a;
let b;
before(async () => {
  fake = await h.startFake();
  rd = await startRedis({ password: PASSWORD });
  a = await gateway();
  b = await gateway();
});

test('a limit of 10 a minute lets exactly 10 through across two gateways under concurrent load', async () => {
  const user = h.testId('u');
  const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(i % 2 ? a : b, user)));
  const ok = replies.filter((r) => r.status === 200);
  const refused = replies.filter((r) => r.status === 429);
  assert.equal(ok.length, 10);
  assert.equal(refused.length, 30);
  // both gateways answered some of the 10 and refused some of the rest
  for (const r of refused) {
    assert.equal(r.body.error.code, 'rate_limit_exceeded');
    assert.equal(r.headers.get('helicone-ratelimit-limit'), '10');
    assert.equal(r.headers.get('helicone-ratelimit-remaining'), '0');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
  // one more on either is refused: the bucket is shared
  assert.equal((await ask(a, user)).status, 429);
  assert.equal((await ask(b, user)).status, 429);
  // another user has a bucket of their own
  assert.equal((await ask(b, h.testId('u'))).status, 200);
});

test('the Helicone-RateLimit-Policy header is counted in Redis too', async () => {
  const user = h.testId('p');
  const go = (gw) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'helicone-user-id': user, 'helicone-ratelimit-policy': '3;w=60;s=user' },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const rs = [await go(a), await go(b), await go(a), await go(b)];
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
  assert.deepEqual(rs.slice(0, 3).map((r) => r.headers.get('helicone-ratelimit-remaining')), ['2', '1', '0']);
  assert.equal(rs[3].headers.get('helicone-ratelimit-policy'), '3;w=60;s=user');
});

test('Redis down: open answers on local counters, closed refuses with 503; back up: shared again', async () => {
  const closed = await gateway({ on_failure: 'closed' });
  await rd.kill();
  await redisUp(a, 0);
  await redisUp(closed, 0);
  // open: still answered, each gateway on its own counters
  const user = h.testId('down');
  const open = await Promise.all(Array.from({ length: 4 }, (_, i) => ask(i % 2 ? a : b, user)));
  assert.deepEqual(open.map((r) => r.status), [200, 200, 200, 200]);
  assert.ok((await metric(a, 'tollgate_redis_errors_total')) > 0);
  // closed: a request a limit applies to is refused in its dialect
  const r = await ask(closed, user);
  assert.equal(r.status, 503);
  assert.equal(r.body.error.code, 'shared_state_unavailable');
  const an = await fetch(`${closed.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'helicone-user-id': user, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(an.status, 503);
  const ab = await an.json();
  assert.equal(ab.type, 'error');
  assert.match(ab.error.message, /Redis/);

  await rd.restart();
  await redisUp(a, 1);
  await redisUp(b, 1);
  await redisUp(closed, 1);
  const again = h.testId('again');
  const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => ask([a, b, closed][i % 3], again)));
  assert.equal(replies.filter((x) => x.status === 200).length, 10);
});

test('a reply past its deadline counts as a failure and the connection is made again', async () => {
  // CLIENT PAUSE holds every other client for 1.5 s: the gateway's 500 ms deadline passes
  const net = require('node:net');
  const sock = net.connect(rd.port, '127.0.0.1');
  await new Promise((res) => sock.once('connect', res));
  sock.write(`AUTH ${PASSWORD}\r\nCLIENT PAUSE 1500 ALL\r\n`);
  await h.sleep(50);
  const errors = await metric(a, 'tollgate_redis_errors_total');
  const t0 = Date.now();
  const r = await ask(a, h.testId('slow'));
  assert.equal(r.status, 200); // open: answered on local counters
  assert.ok(Date.now() - t0 < 1400, `took ${Date.now() - t0} ms`);
  assert.ok((await metric(a, 'tollgate_redis_errors_total')) > errors);
  assert.match(a.output(), /no reply within 500 ms/);
  sock.destroy();
  await redisUp(a, 1);
});

// 0.001 USD a token in and out: a request's worst case is ~0.1 USD, an
// answer of 20 words ~0.023 USD.
const budgetConfig = (extra = {}) => {
  const base = h.everyProviderType(fake, { input: 1, output: 1 });
  return h.baseConfig(fake, {
    ...base,
    cost_tracking: { ...base.cost_tracking, budgets: { per_property: { 'Agent-Name': { daily: 1.0 } } } },
    redis: { url: rd.url, timeout: '500ms', ...extra },
  });
};

const budgetGateway = (extra) => started(budgetConfig(extra));

// The recorded spend of an agent today over gateways gws, once each has
// stored n records of it.
async function fleetSpend(gws, agent, n) {
  let total;
  await h.waitFor(async () => {
    const bodies = await Promise.all(gws.map((g) => fetch(
      `${g.url}/api/v1/requests/costs?filter=properties.Agent-Name=${agent}&period=day`).then((r) => r.json())));
    total = bodies.reduce((t, b) => t + b.total_cost, 0);
    return bodies.every((b) => b.requests >= n);
  }, 15000);
  return total;
}

test('a budget under 100 concurrent requests split over two gateways is never passed', async () => {
  const g1 = await budgetGateway();
  const g2 = await budgetGateway();
  const reply = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
  const go = (gw) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'helicone-property-agent-name': 'fleet', 'x-fake-delay-ms': '150', 'x-fake-reply': reply },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'count to three' }] }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  // 100 at once, then waves of 10 as answers settle and free the
  // reservations: one gateway alone would spend up to the limit, two
  // unshared up to twice it
  const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => go(i % 2 ? g1 : g2)));
  for (let w = 0; w < 8; w++) rs.push(...await Promise.all(Array.from({ length: 10 }, (_, i) => go(i % 2 ? g1 : g2))));
  const ok = rs.filter((r) => r.status === 200);
  const refused = rs.filter((r) => r.status === 429);
  assert.equal(ok.length + refused.length, 180);
  assert.ok(ok.length > 0 && refused.length > 0, `${ok.length} answered`);
  for (const r of refused) assert.equal(r.body.error.code, 'budget_exceeded');
  // each gateway records what it answered; together they stay within the limit
  const total = await fleetSpend([g1, g2], 'fleet', 90);
  assert.ok(total <= 1.0 + 1e-9, `the fleet spent ${total} USD of a 1 USD budget`);
  assert.ok(total > 0.02 * ok.length, `spend ${total} for ${ok.length} answers`);
  // GET /api/v1/budgets on either shows the fleet's spend, once it has
  // reserved against the budget since
  await go(g2);
  const list = await (await fetch(`${g2.url}/api/v1/budgets`)).json();
  const fleet = list.data.find((b) => b.value === 'fleet');
  assert.ok(fleet.daily.spend >= total - 1e-9, `g2 shows ${fleet.daily.spend}, the fleet spent ${total}`);
});

test('Redis down with on_failure closed: a budgeted request gets 503, an unbudgeted one is answered', async () => {
  const g = await budgetGateway({ on_failure: 'closed' });
  await rd.kill();
  await redisUp(g, 0);
  const go = (headers) => fetch(`${g.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const budgeted = await go({ 'helicone-property-agent-name': 'down' });
  assert.equal(budgeted.status, 503);
  assert.equal((await budgeted.json()).error.code, 'shared_state_unavailable');
  assert.equal((await go({})).status, 200);
  await rd.restart();
  await redisUp(g, 1);
  assert.equal((await go({ 'helicone-property-agent-name': 'down' })).status, 200);
});

const ADMIN = 'tg-admin-secret-key';
const secured = () => ({
  ...config(),
  security: { require_auth: true, api_keys: [{ name: 'admin', key: ADMIN, permissions: ['read', 'write'] }] },
});
const api = (gw, p, init = {}) => fetch(`${gw.url}/api/v1${p}`, {
  ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
});
const chatWith = (gw, key, headers = {}) => fetch(`${gw.baseURL}/chat/completions`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
  body: JSON.stringify({ model: 'fake/gpt-4o-mini', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
});

test('a key made on one gateway works on the other; revoked on one, refused on the other within a second', async () => {
  const s1 = await started(secured());
  const s2 = await started(secured());
  let r = await api(s1, '/keys', { method: 'POST', body: JSON.stringify({ name: 'fleet-key', permissions: ['read'] }) });
  assert.equal(r.status, 201);
  const { key } = await r.json();
  await h.waitFor(async () => (await chatWith(s2, key)).status === 200, 1000, 25);
  r = await api(s1, '/keys/fleet-key', { method: 'DELETE' });
  assert.equal(r.status, 204);
  const t0 = Date.now();
  await h.waitFor(async () => (await chatWith(s2, key)).status === 401, 1000, 25);
  assert.ok(Date.now() - t0 < 1000);
  assert.match(s2.output(), /fleet: key.revoked from instance/);
});

test('a runtime rate limit and a runtime budget made on one gateway apply on the other', async () => {
  const s1 = await started(secured());
  const s2 = await started(secured());
  let r = await api(s1, '/rate-limits', { method: 'POST', body: JSON.stringify({ property: 'Team', value: 'blue', limit: 2, window: '1m' }) });
  assert.equal(r.status, 201);
  const rule = await r.json();
  const team = { 'helicone-property-team': 'blue' };
  await h.waitFor(async () => (await (await api(s2, '/rate-limits')).json()).total === 1, 1000, 25);
  // the one limit holds across both: 2 through, the third refused
  const rs = [await chatWith(s2, ADMIN, team), await chatWith(s1, ADMIN, team), await chatWith(s2, ADMIN, team)];
  assert.deepEqual(rs.map((x) => x.status), [200, 200, 429]);
  r = await api(s2, `/rate-limits/${rule.id}`, { method: 'DELETE' });
  assert.equal(r.status, 204);
  await h.waitFor(async () => (await (await api(s1, '/rate-limits')).json()).total === 0, 1000, 25);
  // a runtime budget set on s2 refuses on s1
  r = await api(s2, '/budgets/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: 0 }) });
  assert.equal(r.status, 200);
  await h.waitFor(async () => (await chatWith(s1, ADMIN, { 'helicone-property-team': 'red' })).status !== 200, 1000, 25);
});

test('caching.backend redis: an answer cached by one gateway is a hit on the other; one provider call for a burst over both', async () => {
  const cached = () => ({ ...config(), caching: { enabled: true, backend: 'redis', ttl: 60 } });
  const c1 = await started(cached());
  const c2 = await started(cached());
  const go = (gw, id, content, headers = {}) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-id': id, ...headers },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content }] }),
  }).then(async (r) => ({ status: r.status, cache: r.headers.get('helicone-cache'), body: await r.json() }));
  const id = h.testId('rcache');
  const a = await go(c1, id, `cache across ${id}`);
  const b = await go(c2, id, `cache across ${id}`);
  assert.equal(a.cache, 'MISS');
  assert.equal(b.cache, 'HIT');
  assert.deepEqual(b.body, a.body);
  assert.equal((await fake.requestsFor(id)).length, 1);
  // a burst of one question over both gateways while the first call is slow
  const burst = h.testId('rflight');
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    go(i % 2 ? c1 : c2, burst, `flight ${burst}`, { 'x-fake-delay-ms': '400' })));
  assert.deepEqual(rs.map((r) => r.status), Array(8).fill(200));
  assert.equal(rs.filter((r) => r.cache === 'MISS').length, 1);
  assert.equal((await fake.requestsFor(burst)).length, 1);
  for (const r of rs) assert.deepEqual(r.body, rs[0].body);
  // a streamed answer is kept as a stream
  const sid = h.testId('rstream');
  const stream = (gw) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-id': sid },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `s ${sid}` }] }),
  }).then(async (r) => ({ cache: r.headers.get('helicone-cache'), type: r.headers.get('content-type'), text: await r.text() }));
  const s1 = await stream(c1);
  const s2 = await stream(c2);
  assert.equal(s2.cache, 'HIT');
  assert.match(s2.type, /text\/event-stream/);
  assert.equal(s2.text, s1.text);
});

test('the Redis password appears in no output', async () => {
  for (const gw of gateways) {
    assert.ok(!gw.output().includes(PASSWORD), 'password in the log');
    assert.match(gw.output(), /redis redis:\/\/default:\*\*\*@127\.0\.0\.1/);
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    assert.ok(!m.includes(PASSWORD));
  }
});
