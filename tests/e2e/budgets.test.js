'use strict';
// Budgets (SPEC §11, docs/budgets.md): the worst case reserved before a
// request goes out, so 200 concurrent requests of one agent never take the
// recorded spend past its limit; sequential requests fill it to within one
// request's worst case; the 429 in the OpenAI and Anthropic dialects, with
// the budget in the body and Retry-After; warn budgets; Helicone-Max-Cost;
// runtime budgets through the API, kept across a restart.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let dir;
before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-budgets-'));
});
after(async () => {
  await fake?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

// 0.001 USD a token, in and out: a request's worst case is about its body's
// bytes plus max_tokens, in tenths of a cent.
const PRICE = { input: 1, output: 1 };
const MODEL = 'fake/gpt-4o-mini';

function config(budgets, extra = {}, alerts = undefined, price = PRICE) {
  const base = h.everyProviderType(fake, price);
  return h.baseConfig(fake, {
    ...base,
    ...extra,
    cost_tracking: { ...base.cost_tracking, budgets, ...(alerts ? { alerts } : {}) },
  });
}

function client(gw, headers = {}) {
  return new h.OpenAI({ baseURL: gw.baseURL, apiKey: 'sk-client-dummy', maxRetries: 0, defaultHeaders: headers });
}

// The recorded spend of one agent today, once `n` records are stored.
async function recordedSpend(gw, agent, n) {
  let body;
  await h.waitFor(async () => {
    const r = await fetch(`${gw.url}/api/v1/requests/costs?filter=properties.Agent-Name=${agent}&period=day`);
    body = await r.json();
    return body.requests >= n;
  }, 15000);
  return body.total_cost;
}

const ask = (c, agent, extra = {}) => c.chat.completions.create({
  model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'count to three' }], ...extra,
}, { headers: { 'Helicone-Property-Agent-Name': agent, ...(extra.headers || {}) } });

test('200 concurrent requests of one agent never take its recorded spend past the limit', async () => {
  const gw = await h.startGateway(config({ per_property: { 'Agent-Name': { daily: 1.0 } } }));
  try {
    // each answer costs about a fifth of its worst case (20 output words,
    // ~0.023 USD): 200 at once, unreserved, would spend 4.6 USD
    const reply = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
    const c = client(gw, { 'x-fake-delay-ms': '150', 'x-fake-reply': reply });
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => ask(c, 'swarm')));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected');
    assert.ok(ok > 0, 'some requests go through');
    assert.ok(refused.length > 0, 'the burst is cut at the budget');
    for (const r of refused) {
      assert.equal(r.reason.status, 429, String(r.reason));
      assert.equal(r.reason.code, 'budget_exceeded');
    }
    const spend = await recordedSpend(gw, 'swarm', 200);
    assert.ok(spend <= 1.0 + 1e-9, `recorded spend ${spend} is past the limit 1.0`);
    assert.ok(spend > 0.02 * ok, `spend ${spend} for ${ok} answers`);
  } finally {
    await gw.stop();
  }
});

test('sequential requests fill a budget to within one request\'s worst case, then 429 with the budget', async () => {
  // 0.00001 USD a token: a request costs about 8 tokens, its worst case
  // about 135 (body bytes + max_tokens)
  const gw = await h.startGateway(config({ per_property: { 'Agent-Name': { daily: 0.01, warning_threshold: 0.5 } } },
    {}, undefined, { input: 0.01, output: 0.01 }));
  try {
    const c = client(gw);
    let n = 0;
    let refusal;
    let lastHeaders;
    let warned = false;
    for (; n < 1000; n++) {
      try {
        const { response } = await ask(c, 'solo').withResponse();
        lastHeaders = response.headers;
        if (response.headers.get('tollgate-budget-warning')) warned = true;
      } catch (err) {
        refusal = err;
        break;
      }
    }
    assert.ok(refusal, 'the budget refuses at last');
    assert.ok(n > 0);
    assert.ok(warned, 'answers past 50 % carry Tollgate-Budget-Warning');
    assert.ok(Number(lastHeaders.get('tollgate-budget-remaining')) >= 0);
    const spend = await recordedSpend(gw, 'solo', n + 1);
    // the worst case of one request: body bytes + 20 output tokens at 0.00001
    const worst = (JSON.stringify({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'count to three' }] }).length + 20) * 0.00001;
    assert.ok(spend <= 0.01 + 1e-9, `spend ${spend}`);
    assert.ok(spend >= 0.01 - worst - 1e-9, `spend ${spend} should be within ${worst} of 0.01`);
    // the 429 in OpenAI's shape
    assert.equal(refusal.status, 429);
    assert.equal(refusal.code, 'budget_exceeded');
    assert.equal(refusal.type, 'budget_exceeded');
    const b = refusal.error.budget;
    assert.equal(b.scope, 'property:Agent-Name');
    assert.equal(b.value, 'solo');
    assert.equal(b.period, 'daily');
    assert.equal(b.limit, 0.01);
    assert.ok(Math.abs(b.spend - spend) < 1e-9, `body spend ${b.spend}, recorded ${spend}`);
    const resets = Date.parse(b.resets_at);
    const tomorrow = new Date(); tomorrow.setUTCHours(24, 0, 0, 0);
    assert.equal(resets, tomorrow.getTime());
    const retry = Number(refusal.headers.get('retry-after'));
    assert.ok(Math.abs(retry - (resets - Date.now()) / 1000) < 5, `Retry-After ${retry}`);
    // another agent has its own budget
    await ask(c, 'other');
    // /metrics counts the refusal and shows the spend
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(m, /^tollgate_budget_blocked_total\{scope="property"\} 1$/m);
    assert.match(m, /^tollgate_budget_spend_usd\{scope="property:Agent-Name",value="solo",period="daily"\} 0\.0[0-9]+$/m);
    assert.match(m, /^tollgate_budget_events_total\{type="exceeded"\} 1$/m);
    assert.match(m, /^tollgate_budget_events_total\{type="warning"\} 1$/m);
    assert.match(gw.output(), /budget exceeded: property:Agent-Name solo daily/);
  } finally {
    await gw.stop();
  }
});

test('the 429 in Anthropic\'s shape, through the Anthropic SDK', async () => {
  const gw = await h.startGateway(config({ per_user: { daily: 0.001 } }));
  try {
    const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0 });
    const err = await claude.messages.create({
      model: 'claude/claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hello' }],
    }, { headers: { 'Helicone-User-Id': 'u-42' } }).then(() => null, (e) => e);
    assert.ok(err instanceof Anthropic.RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.error.type, 'error');
    assert.equal(err.error.error.type, 'budget_exceeded');
    assert.match(err.error.error.message, /daily budget exceeded for user 'u-42'/);
    assert.deepEqual(Object.keys(err.error.error.budget).sort(), ['limit', 'period', 'resets_at', 'scope', 'spend', 'value']);
    assert.equal(err.error.error.budget.scope, 'user');
    assert.equal(err.error.error.budget.value, 'u-42');
    assert.ok(Number(err.headers.get('retry-after')) > 0);
    // a request without a user id has no user budget
    const ok = await claude.messages.create({
      model: 'claude/claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'hello' }],
    });
    assert.equal(ok.type, 'message');
  } finally {
    await gw.stop();
  }
});

test('warn budgets never refuse; none only tracks; the fixtures\' alerts map onto the global budget', async () => {
  const gw = await h.startGateway(config({
    per_property: { 'Agent-Name': { daily: 0.01, action: 'warn' }, Team: { daily: 0.0001, action: 'none' } },
  }));
  try {
    const c = client(gw);
    for (let i = 0; i < 4; i++) {
      const { response } = await ask(c, 'warned', { headers: { 'Helicone-Property-Team': 't' } }).withResponse();
      assert.equal(response.status, 200);
      if (i === 3) {
        assert.equal(response.headers.get('tollgate-budget-remaining'), '0');
        assert.ok(Number(response.headers.get('tollgate-budget-warning')) >= 100);
      }
    }
  } finally {
    await gw.stop();
  }
  // alerts: notification at 50 % warns, throttle at 60 % blocks at 60 % of
  // the daily 0.5
  const gw2 = await h.startGateway(config({ daily: 0.5 }, {},
    [{ threshold: '50%', action: 'notification' }, { threshold: '60%', action: 'throttle' }]));
  try {
    const c = client(gw2);
    let refusal;
    for (let i = 0; i < 100 && !refusal; i++) {
      await ask(c, 'g', { max_tokens: 100 }).catch((e) => { refusal = e; });
    }
    assert.ok(refusal);
    assert.equal(refusal.error.budget.scope, 'global');
    assert.equal(refusal.error.budget.limit, 0.3);
  } finally {
    await gw2.stop();
  }
});

test('Helicone-Max-Cost refuses a request whose worst case is above it (402)', async () => {
  const gw = await h.startGateway(config({}));
  try {
    const c = client(gw);
    const err = await ask(c, 'm', { max_tokens: 1000, headers: { 'Helicone-Max-Cost': '0.5' } }).then(() => null, (e) => e);
    assert.equal(err?.status, 402);
    assert.equal(err.code, 'max_cost_exceeded');
    assert.match(err.message, /worst-case cost of this request is 1\.\d+ USD, above Helicone-Max-Cost 0\.5 USD/);
    const ok = await ask(c, 'm', { max_tokens: 10, headers: { 'Helicone-Max-Cost': '0.5' } });
    assert.equal(ok.object, 'chat.completion');
    const bad = await ask(c, 'm', { headers: { 'Helicone-Max-Cost': 'lots' } }).then(() => null, (e) => e);
    assert.equal(bad?.status, 400);
    assert.equal(bad.code, 'invalid_max_cost');
    // an unpriced model cannot be kept under a maximum
    const un = await c.chat.completions.create({ model: 'fake/mystery-model-x', messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'Helicone-Max-Cost': '100' } }).then(() => null, (e) => e);
    assert.equal(un?.status, 402);
  } finally {
    await gw.stop();
  }
});

test('unpriced models under a block budget: refused unless allow_unpriced', async () => {
  const gw = await h.startGateway(config({ daily: 5 }));
  try {
    const err = await client(gw).chat.completions.create({ model: 'fake/mystery-model-x', messages: [{ role: 'user', content: 'x' }] })
      .then(() => null, (e) => e);
    assert.equal(err?.status, 400);
    assert.equal(err.code, 'unpriced_model');
  } finally {
    await gw.stop();
  }
  const gw2 = await h.startGateway(config({ daily: 5, allow_unpriced: true }));
  try {
    const ok = await client(gw2).chat.completions.create({ model: 'fake/mystery-model-x', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(ok.object, 'chat.completion');
  } finally {
    await gw2.stop();
  }
});

test('runtime budgets: PUT, GET, enforced, kept across a restart, DELETE; read sees, write changes', async () => {
  const db = path.join(dir, 'runtime.db');
  const keys = { require_auth: true, api_keys: [
    { name: 'admin', key: 'tg-admin-key', permissions: ['read', 'write'] },
    { name: 'viewer', key: 'tg-viewer-key', permissions: ['read'] },
  ] };
  const cfg = config({ per_property: { Team: { daily: 100 } } }, { storage: { url: `sqlite:${db}` }, security: keys });
  const api = (gw, key, p, init = {}) => fetch(`${gw.url}/api/v1/budgets${p}`, {
    ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  let gw = await h.startGateway(cfg);
  try {
    // validation names the field
    let r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: -1 }) });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /^daily: expected a number/);
    r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: 1, action: 'explode' }) });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /^action:/);
    r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: 1, colour: 'red' }) });
    assert.match((await r.json()).error.message, /^colour: unknown field/);
    r = await api(gw, 'tg-admin-key', '/planet/mars', { method: 'PUT', body: JSON.stringify({ daily: 1 }) });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /^scope:/);
    // read may not write
    r = await api(gw, 'tg-viewer-key', '/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: 1 }) });
    assert.equal(r.status, 403);
    // a tiny runtime budget for Team=red overrides the configuration's 100
    r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'PUT', body: JSON.stringify({ daily: 0.0005, warning_threshold: 0.5 }) });
    assert.equal(r.status, 200);
    const put = await r.json();
    assert.equal(put.source, 'runtime');
    assert.equal(put.daily.limit, 0.0005);
    assert.equal(put.monthly.limit, null);
    const c = new h.OpenAI({ baseURL: gw.baseURL, apiKey: 'tg-admin-key', maxRetries: 0 });
    const err = await c.chat.completions.create({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'Helicone-Property-Team': 'red' } }).then(() => null, (e) => e);
    assert.equal(err?.status, 429);
    assert.equal(err.error.budget.scope, 'property:Team');
    // blue is under the configuration's budget
    const ok = await c.chat.completions.create({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'Helicone-Property-Team': 'blue' } });
    assert.equal(ok.object, 'chat.completion');
    // the list: red (runtime) and blue (spent under the configuration's)
    r = await api(gw, 'tg-viewer-key', '');
    assert.equal(r.status, 200);
    const list = await r.json();
    const red = list.data.find((b) => b.value === 'red');
    const blue = list.data.find((b) => b.value === 'blue');
    assert.equal(red.source, 'runtime');
    assert.equal(blue.source, 'config');
    assert.equal(blue.daily.limit, 100);
    assert.ok(blue.daily.spend > 0);
    assert.equal(blue.daily.state, 'ok');
    assert.equal(blue.daily.reserved, 0);
    assert.ok(Date.parse(blue.daily.resets_at) > Date.now());
  } finally {
    await gw.stop();
  }
  // the same database: the runtime budget is still in force, the spend remembered
  gw = await h.startGateway(cfg);
  try {
    let r = await api(gw, 'tg-viewer-key', '/property:Team/red');
    assert.equal(r.status, 200);
    assert.equal((await r.json()).daily.limit, 0.0005);
    r = await api(gw, 'tg-viewer-key', '/property:Team/blue');
    const blue = await r.json();
    assert.ok(blue.daily.spend > 0, 'spend read back from the store');
    const c = new h.OpenAI({ baseURL: gw.baseURL, apiKey: 'tg-admin-key', maxRetries: 0 });
    const err = await c.chat.completions.create({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'Helicone-Property-Team': 'red' } }).then(() => null, (e) => e);
    assert.equal(err?.status, 429);
    r = await api(gw, 'tg-viewer-key', '/property:Team/red', { method: 'DELETE' });
    assert.equal(r.status, 403);
    r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'DELETE' });
    assert.equal(r.status, 204);
    r = await api(gw, 'tg-admin-key', '/property:Team/red', { method: 'DELETE' });
    assert.equal(r.status, 404);
    const ok = await c.chat.completions.create({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'Helicone-Property-Team': 'red' } });
    assert.equal(ok.object, 'chat.completion');
  } finally {
    await gw.stop();
  }
});

test('a fallback reserves for the provider that serves', async () => {
  // the first target is cheap, the fallback dear: the budget holds the
  // first's worst case but not the fallback's
  const base = h.everyProviderType(fake, PRICE);
  const gw = await h.startGateway(h.baseConfig(fake, {
    ...base,
    cost_tracking: {
      pricing: { 'gpt-4o-mini': { input: 0.01, output: 0.01 }, 'claude-haiku-4-5': { input: 10, output: 10 } },
      budgets: { per_property: { 'Agent-Name': { daily: 0.5 } } },
    },
  }));
  try {
    const c = client(gw);
    const id = h.testId('budget-fallback');
    const headers = {
      'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-status': '500',
      'Helicone-Fallbacks': JSON.stringify(['claude/claude-haiku-4-5']),
    };
    const err = await ask(c, 'fb', { headers }).then(() => null, (e) => e);
    assert.equal(err?.status, 429, String(err));
    assert.equal(err.code, 'budget_exceeded');
    assert.equal(err.error.budget.value, 'fb');
    assert.equal((await fake.requestsFor(id)).length, 1, 'the dear fallback was never called');
    // without the failure the cheap target serves, under the same budget
    const ok = await ask(c, 'fb', { headers: { 'Helicone-Fallbacks': JSON.stringify(['claude/claude-haiku-4-5']) } });
    assert.equal(ok.object, 'chat.completion');
  } finally {
    await gw.stop();
  }
});

test('a cache hit costs nothing, is never refused and still carries the budget headers', async () => {
  const gw = await h.startGateway(config({ per_property: { 'Agent-Name': { daily: 0.2 } } }, { caching: { enabled: true } }));
  try {
    const c = client(gw);
    const first = await ask(c, 'cached').withResponse();
    assert.equal(first.response.headers.get('helicone-cache'), 'MISS');
    const spent = await recordedSpend(gw, 'cached', 1);
    const hit = await ask(c, 'cached').withResponse();
    assert.equal(hit.response.headers.get('helicone-cache'), 'HIT');
    const left = Number(hit.response.headers.get('tollgate-budget-remaining'));
    assert.ok(Math.abs(left - (0.2 - spent)) < 1e-9, `remaining ${left}, spent ${spent}`);
    // the budget now cannot hold a new request's worst case (0.2 USD at
    // most, ~0.1 each), but the cached answer still comes
    const big = await ask(c, 'cached', { max_tokens: 150 }).then(() => null, (e) => e);
    assert.equal(big?.status, 429);
    const again = await ask(c, 'cached').withResponse();
    assert.equal(again.response.headers.get('helicone-cache'), 'HIT');
    assert.equal(await recordedSpend(gw, 'cached', 4), spent);
  } finally {
    await gw.stop();
  }
});

test('budget.warning and budget.exceeded reach the webhook once each, signed', async () => {
  const crypto = require('node:crypto');
  const http = require('node:http');
  const secret = 'budget-hook-secret';
  const got = [];
  const rx = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ headers: req.headers, body, event: JSON.parse(body) });
      res.writeHead(200);
      res.end('ok');
    });
  });
  await new Promise((resolve) => rx.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${rx.address().port}/budgets`;
  const base = h.everyProviderType(fake, { input: 0.01, output: 0.01 });
  const gw = await h.startGateway(h.baseConfig(fake, {
    ...base,
    cost_tracking: {
      ...base.cost_tracking,
      budgets: { per_property: { 'Agent-Name': { daily: 0.01, warning_threshold: 0.5 } } },
      webhook_url: url, webhook_secret: secret,
    },
  }), { env: { TOLLGATE_WEBHOOK_RETRY_MS: '100,400' } });
  try {
    const c = client(gw);
    let refused = 0;
    for (let n = 0; n < 1000 && refused < 3; n++) {
      try { await ask(c, 'hooked'); } catch (err) { assert.equal(err.status, 429); refused++; }
    }
    await h.waitFor(() => got.some((g) => g.event.type === 'budget.exceeded'), 10000);
    await h.sleep(500); // more refusals were made: no more events come
    const of = (type) => got.filter((g) => g.event.type === type);
    assert.equal(of('budget.warning').length, 1, 'warned once');
    assert.equal(of('budget.exceeded').length, 1, 'exceeded once, however many refusals');
    for (const g of got) {
      const parts = Object.fromEntries(String(g.headers['tollgate-signature']).split(',').map((p) => p.split('=')));
      const want = crypto.createHmac('sha256', secret).update(`${parts.t}.${g.body}`).digest('hex');
      assert.equal(parts.v1, want, 'the signature verifies');
      const d = g.event.data;
      assert.equal(d.scope, 'property:Agent-Name');
      assert.equal(d.value, 'hooked');
      assert.equal(d.period, 'daily');
      assert.equal(d.limit, 0.01);
      assert.match(d.resets_at, /^\d{4}-\d\d-\d\dT00:00:00Z$/);
    }
    assert.ok(of('budget.warning')[0].event.data.percent >= 50);
    assert.ok(!gw.output().includes(secret));
  } finally {
    await gw.stop();
    await new Promise((resolve) => rx.close(resolve));
  }
});

test('raw pass-through LLM calls are budgeted: refused past the budget, recorded with model and cost, streams settle', async () => {
  const gw = await h.startGateway(config({ per_property: { 'Agent-Name': { daily: 1.0 } } }));
  const agent = { 'Helicone-Property-Agent-Name': 'raw' };
  const post = (p, body, headers = {}) => fetch(`${gw.url}${p}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...agent, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const chat = (extra = {}) => ({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'count to three' }], ...extra });
  const budget = async () => (await (await fetch(`${gw.url}/api/v1/budgets/property:Agent-Name/raw`)).json()).daily;
  try {
    // what is not an LLM call costs nothing and passes as before
    const models = await fetch(`${gw.url}/fake/models`, { headers: agent });
    assert.equal(models.status, 200);
    assert.equal(models.headers.get('tollgate-budget-remaining'), null);

    // a call whose worst case (5000 output tokens at 0.001 USD) passes the budget: 429, OpenAI's shape
    const big = await post('/fake/chat/completions', chat({ max_tokens: 5000 }));
    assert.equal(big.status, 429);
    assert.ok(Number(big.headers.get('retry-after')) > 0);
    const be = (await big.json()).error;
    assert.equal(be.code, 'budget_exceeded');
    assert.equal(be.budget.scope, 'property:Agent-Name');
    assert.equal(be.budget.value, 'raw');

    // one under it goes through, is recorded with its model and cost, and counts
    const ok = await post('/fake/chat/completions', chat());
    assert.equal(ok.status, 200);
    assert.ok(Number(ok.headers.get('tollgate-budget-remaining')) < 1.0);
    const body = await ok.json();
    const rec = await h.storedRecord(gw, ok.headers.get('helicone-id'));
    assert.equal(rec.model, 'gpt-4o-mini');
    const expected = (body.usage.prompt_tokens + body.usage.completion_tokens) / 1000;
    assert.ok(Math.abs(rec.cost - expected) < 1e-12, `cost ${rec.cost} != ${expected}`);

    // streamed, with usage asked for: settled to the streamed usage
    const st = await post('/fake/chat/completions', chat({ stream: true, stream_options: { include_usage: true } }));
    assert.equal(st.status, 200);
    const text = await st.text();
    assert.match(text, /data: \[DONE\]/);
    const srec = await h.storedRecord(gw, st.headers.get('helicone-id'));
    assert.equal(srec.model, 'gpt-4o-mini');
    assert.ok(srec.cost > 0 && srec.completion_tokens > 0, JSON.stringify(srec));

    // streamed without usage: the provider tells none, so it is charged its worst case
    const nu = await post('/fake/chat/completions', chat({ stream: true }));
    assert.equal(nu.status, 200);
    await nu.text();
    const nrec = await h.storedRecord(gw, nu.headers.get('helicone-id'));
    const nbytes = JSON.stringify(chat({ stream: true })).length;
    assert.ok(Math.abs(nrec.cost - (nbytes + 20) / 1000) < 1e-9, `cost ${nrec.cost}`);

    // Anthropic's messages: the refusal in its dialect, and a costed call
    const abig = await post('/claude/messages', { model: 'claude-haiku-4-5', max_tokens: 5000, messages: [{ role: 'user', content: 'hi' }] },
      { 'anthropic-version': '2023-06-01' });
    assert.equal(abig.status, 429);
    const ae = await abig.json();
    assert.equal(ae.type, 'error');
    assert.equal(ae.error.type, 'budget_exceeded');
    const asm = await post('/claude/messages', { model: 'claude-haiku-4-5', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
      { 'anthropic-version': '2023-06-01' });
    assert.equal(asm.status, 200);
    await asm.json();
    const arec = await h.storedRecord(gw, asm.headers.get('helicone-id'));
    assert.equal(arec.model, 'claude-haiku-4-5');
    assert.ok(arec.cost > 0);

    // Gemini: the model from the path, the cap from generationConfig; streamed as SSE
    const gbig = await post('/gem/v1beta/models/gemini-2.5-flash:generateContent',
      { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 5000 } });
    assert.equal(gbig.status, 429);
    assert.equal((await gbig.json()).error.status, 'RESOURCE_EXHAUSTED');
    const gs = await post('/gem/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
      { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 20 } });
    assert.equal(gs.status, 200);
    await gs.text();
    const grec = await h.storedRecord(gw, gs.headers.get('helicone-id'));
    assert.equal(grec.model, 'gemini-2.5-flash');
    assert.ok(grec.cost > 0 && grec.completion_tokens > 0, JSON.stringify(grec));

    // a body that cannot be costed is never forwarded unbudgeted
    const bad = await post('/fake/chat/completions', 'model=gpt-4o-mini');
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, 'invalid_json');

    // everything settled: nothing held, and the budget's spend is the recorded spend
    const spent = await recordedSpend(gw, 'raw', 9);
    const d = await budget();
    assert.equal(d.reserved, 0);
    assert.ok(Math.abs(d.spend - spent) < 1e-9, `budget spend ${d.spend}, recorded ${spent}`);
    assert.ok(Math.abs(spent - (rec.cost + srec.cost + nrec.cost + arec.cost + grec.cost)) < 1e-9);
  } finally {
    await gw.stop();
  }
});
