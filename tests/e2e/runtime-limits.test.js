'use strict';
// Runtime rate limits (SPEC §8, POST/GET/DELETE /api/v1/rate-limits) are kept
// in the store: they outlive a restart, listed and enforced; a deleted one
// stays deleted; a change the store cannot take is refused with 503 and not
// enforced either; unreadable rules stop the start-up; with request logging
// off they live in memory only.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

let fake;
let dir;

// The sqlite3 shell locks or damages the database from outside in two tests.
const NO_SHELL = spawnSync('sqlite3', ['-version']).status !== 0
  && 'needs the sqlite3 command-line shell';

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-rules-'));
});
after(async () => {
  await fake?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const configOn = (db) => h.baseConfig(fake, { storage: { url: `sqlite:${db}` } });

async function api(gw, method, p, body) {
  const r = await fetch(`${gw.url}/api/v1/rate-limits${p}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const list = async (gw) => {
  const r = await api(gw, 'GET', '');
  assert.equal(r.status, 200);
  return r.body.data;
};

/** One chat request tagged Helicone-Property-Agent-Name: agent; its status and headers. */
async function ask(gw, agent) {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Helicone-Property-Agent-Name': agent },
    body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'limit me' }] }),
  });
  await r.text();
  return r;
}

const statuses = async (gw, agent, n) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await ask(gw, agent)).status);
  return out;
};

async function stopClean(gw) {
  const r = await gw.stop();
  assert.equal(r.code, 0, `gateway exit ${JSON.stringify(r)}`);
  assert.ok(!r.sanitizer, 'sanitizer report');
}

test('a runtime limit survives restarts, listed and enforced; a deleted one stays deleted', async () => {
  const db = path.join(dir, 'restart.db');
  const agent = `agent-${process.pid}-${Date.now()}`;
  let gw = await h.startGateway(configOn(db));
  let rule;
  let spend;
  try {
    const made = await api(gw, 'POST', '', { property: 'Agent-Name', value: agent, limit: 2, window: '1h' });
    assert.equal(made.status, 201);
    rule = made.body;
    assert.match(rule.id, /^[0-9a-f-]{36}$/);
    // a second rule in other units: rebuilt exactly, not just the first kind
    spend = (await api(gw, 'POST', '', { property: 'Team', value: 'red', limit: 500, window: 86400, unit: 'cents' })).body;
    assert.equal(spend.unit, 'cents');
    // enforced before the restart too; the counters themselves start afresh after it
    assert.deepEqual(await statuses(gw, agent, 1), [200]);
  } finally {
    await stopClean(gw);
  }

  gw = await h.startGateway(configOn(db));
  try {
    const rules = await list(gw);
    assert.deepEqual(rules, [rule, spend], 'the rules come back as they were made, in order');
    assert.deepEqual(rule, {
      id: rule.id, property: 'Agent-Name', value: agent, limit: 2, window_seconds: 3600,
      unit: 'request', policy: '2;w=3600;s=agent-name',
    });
    assert.deepEqual(await statuses(gw, agent, 2), [200, 200]);
    const over = await ask(gw, agent);
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.equal(over.headers.get('helicone-ratelimit-limit'), '2');
    assert.equal(over.headers.get('helicone-ratelimit-policy'), '2;w=3600;s=agent-name');
    assert.equal((await ask(gw, `${agent}-other`)).status, 200, 'another value is not limited');

    assert.equal((await api(gw, 'DELETE', `/${rule.id}`)).status, 204);
    const again = await api(gw, 'DELETE', `/${rule.id}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'not_found');
    assert.deepEqual(await list(gw), [spend]);
    assert.equal((await ask(gw, agent)).status, 200, 'no longer enforced');
  } finally {
    await stopClean(gw);
  }

  gw = await h.startGateway(configOn(db));
  try {
    assert.deepEqual(await list(gw), [spend]);
    assert.deepEqual(await statuses(gw, agent, 3), [200, 200, 200]);
    assert.equal((await api(gw, 'DELETE', `/${rule.id}`)).status, 404);
  } finally {
    await stopClean(gw);
  }
});

// Another process holds the database's write lock (the sqlite3 shell), so
// the store cannot take a change: POST and DELETE answer 503 and memory
// stays as the store has it.
test('a change the store cannot take is a 503, and memory keeps agreeing with the store', { skip: NO_SHELL }, async () => {
  const db = path.join(dir, 'locked.db');
  const agent = `locked-${process.pid}-${Date.now()}`;
  const gw = await h.startGateway(configOn(db), { sqlite: true }); // the sqlite3 shell locks it
  let shell;
  try {
    const kept = (await api(gw, 'POST', '', { property: 'Agent-Name', value: `${agent}-kept`, limit: 5, window: 60 })).body;
    shell = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const locked = new Promise((resolve, reject) => {
      shell.stdout.on('data', (d) => { out += d; if (out.includes('LOCKED')) resolve(); });
      shell.once('exit', (code) => reject(new Error(`sqlite3 exited ${code}`)));
    });
    shell.stdin.write('BEGIN EXCLUSIVE;\n.print LOCKED\n');
    await locked;

    const refused = await api(gw, 'POST', '', { property: 'Agent-Name', value: agent, limit: 1, window: 60 });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'store_unavailable');
    assert.equal(typeof refused.body.error.message, 'string');
    assert.equal(typeof refused.body.error.type, 'string');
    const del = await api(gw, 'DELETE', `/${kept.id}`);
    assert.equal(del.status, 503);
    assert.deepEqual(await list(gw), [kept], 'neither change reached memory');
    assert.deepEqual(await statuses(gw, agent, 2), [200, 200], 'the refused limit is not enforced');

    shell.stdin.end('COMMIT;\n');
    await h.waitExit(shell, 5000);
    assert.equal((await api(gw, 'POST', '', { property: 'Agent-Name', value: agent, limit: 1, window: 60 })).status, 201);
    assert.equal((await api(gw, 'DELETE', `/${kept.id}`)).status, 204);
    assert.equal((await list(gw)).length, 1);
  } finally {
    if (shell && shell.exitCode === null) shell.kill('SIGKILL');
    await stopClean(gw);
  }
});

test('a store whose rules cannot be read stops the start-up with a message', { skip: NO_SHELL }, async () => {
  const db = path.join(dir, 'damaged.db');
  await stopClean(await h.startGateway(configOn(db), { sqlite: true }));
  assert.equal(spawnSync('sqlite3', [db, 'DROP TABLE rate_limit_rules']).status, 0);
  await assert.rejects(h.startGateway(configOn(db), { attempts: 1, sqlite: true }), (e) => {
    assert.match(e.message, /exited \(1\)/);
    assert.match(e.message, /runtime rate limits: .*rate_limit_rules/);
    return true;
  });
});

test('with request logging off, runtime limits live in memory only', async () => {
  const db = path.join(dir, 'off.db');
  const config = { ...configOn(db), observability: { request_logging: { enabled: false } } };
  let gw = await h.startGateway(config);
  try {
    assert.equal((await api(gw, 'POST', '', { property: 'Agent-Name', value: 'mem', limit: 1, window: 60 })).status, 201);
    assert.equal((await list(gw)).length, 1);
    assert.deepEqual(await statuses(gw, 'mem', 2), [200, 429]);
  } finally {
    await stopClean(gw);
  }
  assert.ok(!fs.existsSync(db), 'no store was opened');
  gw = await h.startGateway(config);
  try {
    assert.deepEqual(await list(gw), []);
  } finally {
    await stopClean(gw);
  }
});
