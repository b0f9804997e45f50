'use strict';
// Virtual keys (SPEC §11, docs/budgets.md): POST /api/v1/keys answers the
// key once; it works with the official SDKs at once; its model globs, its
// budget (a key scope budget), its rate limit and its expiry are enforced;
// GET lists keys without secrets, with spend; DELETE revokes at once;
// configuration keys cannot be deleted; keys outlive a restart.

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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-keys-'));
});
after(async () => {
  await fake?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ADMIN = 'tg-admin-secret-key';
function config(db) {
  const base = h.everyProviderType(fake, { input: 1, output: 1 });
  return h.baseConfig(fake, {
    ...base,
    storage: { url: `sqlite:${db}` },
    security: { require_auth: true, api_keys: [
      { name: 'admin', key: ADMIN, permissions: ['read', 'write'] },
      { name: 'viewer', key: 'tg-viewer-secret', permissions: ['read'] },
    ] },
  });
}

const keysApi = (gw, key, p = '', init = {}) => fetch(`${gw.url}/api/v1/keys${p}`, {
  ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
});

async function makeKey(gw, body) {
  const r = await keysApi(gw, ADMIN, '', { method: 'POST', body: JSON.stringify(body) });
  const j = await r.json();
  assert.equal(r.status, 201, JSON.stringify(j));
  return j;
}

const chat = (key, gw, model = 'fake/gpt-4o-mini', headers = {}) => new h.OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 })
  .chat.completions.create({ model, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }, { headers });

test('a key made through the API: once shown, hashed, enforced, listed, revoked at once, kept across a restart', async () => {
  const db = path.join(dir, 'keys.db');
  let gw = await h.startGateway(config(db));
  let made;
  try {
    // validation names the field; write is needed
    let r = await keysApi(gw, ADMIN, '', { method: 'POST', body: JSON.stringify({ name: 'bad name!' }) });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /^name:/);
    r = await keysApi(gw, ADMIN, '', { method: 'POST', body: JSON.stringify({ name: 'x', permissions: ['root'] }) });
    assert.match((await r.json()).error.message, /^permissions\[0\]/);
    r = await keysApi(gw, ADMIN, '', { method: 'POST', body: JSON.stringify({ name: 'x', expires_at: 'soon' }) });
    assert.match((await r.json()).error.message, /^expires_at:/);
    r = await keysApi(gw, 'tg-viewer-secret', '', { method: 'POST', body: JSON.stringify({ name: 'x' }) });
    assert.equal(r.status, 403);
    r = await keysApi(gw, ADMIN, '', { method: 'POST', body: JSON.stringify({ name: 'admin' }) });
    assert.equal(r.status, 409);

    made = await makeKey(gw, {
      name: 'agent-ci', permissions: ['read'], models: ['gpt-4o*', 'claude/claude-haiku-*'],
      budget: { daily: 5 }, rate_limit: { requests_per_minute: 100 }, metadata: { team: 'ci' },
    });
    assert.match(made.key, /^tg-[0-9A-Za-z]{43}$/);
    assert.deepEqual(made.permissions, ['read']);
    assert.deepEqual(made.metadata, { team: 'ci' });
    // the key works through the SDKs at once, on every worker
    for (let i = 0; i < 4; i++) assert.equal((await chat(made.key, gw)).object, 'chat.completion');
    const claude = new Anthropic({ baseURL: gw.url, apiKey: made.key, maxRetries: 0 });
    const msg = await claude.messages.create({ model: 'claude/claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(msg.type, 'message');
    // its model globs
    const denied = await chat(made.key, gw, 'fake/o3-mini').then(() => null, (e) => e);
    assert.equal(denied?.status, 403);
    assert.equal(denied.code, 'model_not_allowed');
    // raw pass-through would reach any model: refused to a model-limited key
    r = await fetch(`${gw.url}/fake/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${made.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'o3-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error.code, 'model_not_allowed');
    // read, not write: it may read logs but not make keys
    r = await fetch(`${gw.url}/api/v1/stats`, { headers: { authorization: `Bearer ${made.key}` } });
    assert.equal(r.status, 200);
    r = await keysApi(gw, made.key, '', { method: 'POST', body: JSON.stringify({ name: 'y' }) });
    assert.equal(r.status, 403);
    // the list: no secrets, with spend
    r = await keysApi(gw, ADMIN);
    const list = await r.json();
    const text = JSON.stringify(list);
    assert.ok(!text.includes(made.key), 'no secret in the list');
    assert.ok(!text.includes(ADMIN));
    const k = list.data.find((x) => x.name === 'agent-ci');
    assert.equal(k.source, 'api');
    assert.ok(k.spend.daily > 0, `spend ${JSON.stringify(k.spend)}`);
    assert.equal(list.data.find((x) => x.name === 'admin').source, 'config');
    // the database keeps only the hash
    const raw = h.storedText(config(db));
    assert.ok(!raw.includes(made.key), 'the key is not in the database');
  } finally {
    await gw.stop();
  }
  gw = await h.startGateway(config(db));
  try {
    assert.equal((await chat(made.key, gw)).object, 'chat.completion'); // kept across the restart
    // configuration keys cannot be deleted here
    let r = await keysApi(gw, ADMIN, '/admin', { method: 'DELETE' });
    assert.equal(r.status, 409);
    assert.match((await r.json()).error.message, /configuration file/);
    r = await keysApi(gw, ADMIN, '/agent-ci', { method: 'DELETE' });
    assert.equal(r.status, 204);
    // revoked at once, on every worker
    for (let i = 0; i < 4; i++) {
      const e = await chat(made.key, gw).then(() => null, (x) => x);
      assert.equal(e?.status, 401);
    }
    r = await keysApi(gw, ADMIN, '/agent-ci', { method: 'DELETE' });
    assert.equal(r.status, 404);
  } finally {
    await gw.stop();
  }
  gw = await h.startGateway(config(db));
  try {
    const e = await chat(made.key, gw).then(() => null, (x) => x);
    assert.equal(e?.status, 401, 'still revoked after a restart');
  } finally {
    await gw.stop();
  }
});

test('a key\'s budget, rate limit and expiry', async () => {
  const gw = await h.startGateway(config(path.join(dir, 'limits.db')));
  try {
    const tight = await makeKey(gw, { name: 'tight', budget: { daily: 0.001 } });
    const e = await chat(tight.key, gw).then(() => null, (x) => x);
    assert.equal(e?.status, 429);
    assert.equal(e.code, 'budget_exceeded');
    assert.equal(e.error.budget.scope, 'key');
    assert.equal(e.error.budget.value, 'tight');
    const slow = await makeKey(gw, { name: 'slow', rate_limit: { requests_per_minute: 2 } });
    await chat(slow.key, gw);
    await chat(slow.key, gw);
    const rl = await chat(slow.key, gw).then(() => null, (x) => x);
    assert.equal(rl?.status, 429);
    assert.equal(rl.code, 'rate_limit_exceeded');
    const past = await makeKey(gw, { name: 'past', expires_at: '2020-01-01T00:00:00Z' });
    const ex = await chat(past.key, gw).then(() => null, (x) => x);
    assert.equal(ex?.status, 401);
    assert.equal(ex.code, 'key_expired');
    const soon = await makeKey(gw, { name: 'soon', expires_at: Math.floor(Date.now() / 1000) + 2 });
    assert.equal((await chat(soon.key, gw)).object, 'chat.completion');
    await h.sleep(2500);
    const later = await chat(soon.key, gw).then(() => null, (x) => x);
    assert.equal(later?.status, 401);
    assert.equal(later.code, 'key_expired');
  } finally {
    await gw.stop();
  }
});
