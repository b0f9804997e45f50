'use strict';
// The dashboard (SPEC §12) in a real browser: Debian's chromium driven by
// playwright-core against the built gateway, its dashboard listener and the
// fake provider. Traffic comes from the official OpenAI SDK, then 20,000
// records are written straight into the SQLite file. Each view must show
// what the API answers; writes need a write key; the page loads nothing
// from another origin and logs no console error. Screenshots of each view
// go to build/screenshots/dashboard/ (TOLLGATE_SCREENSHOTS overrides).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');
const h = require('./harness');

const ADMIN = 'tg-dash-ADMIN-0123456789';
const VIEWER = 'tg-dash-VIEWER-0123456789';
const BULK = 20000;
const SHOTS = process.env.TOLLGATE_SCREENSHOTS || path.join(h.REPO, 'build', 'screenshots', 'dashboard');
const sanitizer = !!process.env.TOLLGATE_SANITIZER;

let fake;
let gw;
let dash; // the dashboard's origin
let browser;
let ctx;
let page;
const consoleErrors = [];
const foreign = [];

async function apiGet(p, key = ADMIN) {
  const r = await fetch(`${dash}/api/v1/${p}`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200, `${p}: ${await r.clone().text()}`);
  return r.json();
}

const intFmt = (n) => Number(n).toLocaleString('en-US');

/** Records written straight into the gateway's store, its SQLite file or
 *  (the shared-store mode) its PostgreSQL database, which the gateway reads
 *  like its own: spread over the last ~30 minutes. */
function bulkInsert(gateway, n) {
  const now = Date.now();
  const pgSql = `BEGIN;
INSERT INTO requests (id, created_at, provider, model, model_requested, route, status, latency_ms,
  ttft_ms, prompt_tokens, completion_tokens, cost_nusd, cache, user_id, properties, has_error)
SELECT 'bulk-' || lpad(x::text, 6, '0'), ${now} - 60000 - x * 90, 'fake',
  CASE x % 3 WHEN 0 THEN 'bulk-model-a' WHEN 1 THEN 'bulk-model-b' ELSE 'bulk-model-c' END,
  'bulk', '/v1/chat/completions', CASE WHEN x % 50 = 0 THEN 500 ELSE 200 END,
  100 + x % 400, 40 + x % 90, 10 + x % 50, 20 + x % 30, 1000 * (x % 7 + 1),
  CASE WHEN x % 4 = 0 THEN 2 ELSE 1 END, 'bulk-user-' || (x % 5),
  '{"Agent-Name":"bulk-agent-' || (x % 4) || '"}', 0 FROM generate_series(1, ${n}) x;
INSERT INTO request_properties (seq, name, value, created_at)
SELECT seq, 'agent-name', properties::json->>'Agent-Name', created_at
  FROM requests WHERE id LIKE 'bulk-%';
COMMIT;
ANALYZE requests, request_properties;`;
  if (h.sharedPsql(gateway.config, pgSql) !== null) return;
  const db = path.join(gateway.dir, 'tollgate.db');
  const sql = `PRAGMA busy_timeout=10000;
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n})
INSERT INTO requests (id, created_at, provider, model, model_requested, route, status, latency_ms,
  ttft_ms, prompt_tokens, completion_tokens, cost_nusd, cache, user_id, properties, has_error)
SELECT printf('bulk-%06d', x), ${now} - 60000 - x * 90, 'fake',
  CASE x % 3 WHEN 0 THEN 'bulk-model-a' WHEN 1 THEN 'bulk-model-b' ELSE 'bulk-model-c' END,
  'bulk', '/v1/chat/completions', CASE WHEN x % 50 = 0 THEN 500 ELSE 200 END,
  100 + x % 400, 40 + x % 90, 10 + x % 50, 20 + x % 30, 1000 * (x % 7 + 1),
  CASE WHEN x % 4 = 0 THEN 2 ELSE 1 END, printf('bulk-user-%d', x % 5),
  printf('{"Agent-Name":"bulk-agent-%d"}', x % 4), 0 FROM c;
INSERT INTO request_properties (seq, name, value, created_at)
SELECT seq, 'Agent-Name', json_extract(properties, '$."Agent-Name"'), created_at
  FROM requests WHERE id LIKE 'bulk-%';
COMMIT;`;
  execFileSync('sqlite3', [db], { input: sql });
}

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Open a view and wait for its content. */
async function open(hash, selector) {
  await page.goto(`${dash}/${hash}`);
  await page.waitForSelector(selector, { timeout: 10000 });
}

before(async () => {
  fake = await h.startFake();
  const dport = await h.freePort();
  gw = await h.startGateway(h.baseConfig(fake, {
    security: {
      require_auth: true,
      api_keys: [
        { name: 'admin', key: ADMIN, permissions: ['read', 'write'] },
        { name: 'viewer', key: VIEWER, permissions: ['read'] },
      ],
    },
    observability: {
      dashboard: { enabled: true, port: dport, host: '127.0.0.1' },
      request_logging: { enabled: true },
    },
    caching: { enabled: true },
  }));
  dash = `http://127.0.0.1:${dport}`;

  // Traffic through the official SDK: a session of three steps, two agents, a user.
  const client = h.openaiClient(gw, null, { apiKey: ADMIN });
  const steps = [['/plan', 'planner', 'gpt-4o-mini'], ['/plan/search', 'planner', 'gpt-4o-mini'],
    ['/answer', 'writer', 'gpt-4o']];
  for (const [p, agent, model] of steps) {
    await client.chat.completions.create({
      model: `fake/${model}`,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Step ${p}, please` }],
    }, {
      headers: {
        'Helicone-Session-Id': 'sess-dash-e2e', 'Helicone-Session-Name': 'Trip planner',
        'Helicone-Session-Path': p, 'Helicone-Property-Agent-Name': agent,
        'Helicone-User-Id': 'alice', 'x-fake-reply': `Answer for ${p} from the fake`,
      },
    });
  }
  // the same question twice through the cache: the second is a hit, whose
  // record keeps what the provider would have charged
  for (let i = 0; i < 2; i++) {
    await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'Cache me, please' }],
    }, { headers: { 'Helicone-Cache-Enabled': 'true' } });
  }
  await h.waitFor(async () => (await apiGet('requests?session_id=sess-dash-e2e')).total === 3 &&
    (await apiGet('stats')).cache_hits === 1, 10000);
  bulkInsert(gw, BULK);

  // a fresh profile each run; launchPersistentContext passes it as --user-data-dir
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-chromium-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  browser = { close: async () => { await ctx.close(); fs.rmSync(profile, { recursive: true, force: true }); } };
  ctx.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== dash && u.protocol !== 'data:') foreign.push(r.url());
  });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  if (browser) await browser.close();
  if (gw) await gw.stop();
  if (fake) await fake.stop();
});

test('the dashboard port serves the page with its security headers, gzip and ETag, and no LLM route', async () => {
  const r = await fetch(`${dash}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  assert.doesNotMatch(r.headers.get('content-security-policy'), /unsafe-inline/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(r.headers.get('content-encoding'), 'gzip'); // fetch asks for gzip
  const etag = r.headers.get('etag');
  assert.match(await r.text(), /<script type="module" src="\/app.js">/);
  const again = await fetch(`${dash}/`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  const llm = await fetch(`${dash}/v1/chat/completions`, {
    method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: '{"model":"fake/gpt-4o-mini","messages":[]}',
  });
  assert.equal(llm.status, 404);
  assert.equal((await fetch(`${dash}/metrics`)).status, 404);
  assert.equal((await fetch(`${dash}/health`)).status, 200);
  assert.equal((await fetch(`${dash}/api/v1/stats`)).status, 401); // a key is needed there too
  assert.match(gw.output(), /dashboard: http:\/\/127\.0\.0\.1:\d+\/ \(asks for a gateway key/);
});

test('overview: asks for a key once, then shows the API\'s numbers within 2 s on 20k records', async () => {
  await page.goto(`${dash}/#/`);
  await page.waitForSelector('#login[open]');
  await page.fill('#login-key', VIEWER);
  await page.click('#login button[type=submit]');
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-tile=requests] .value')?.textContent || ''));
  // first paint with numbers, key already given (sessionStorage)
  const t0 = Date.now();
  await page.goto(`${dash}/#/?range=1h`);
  await page.reload();
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-tile=requests] .value')?.textContent || ''));
  const ms = Date.now() - t0;
  assert.ok(ms < (sanitizer ? 6000 : 2000), `overview took ${ms} ms`);
  assert.equal(await page.locator('#login[open]').count(), 0, 'the key is asked once');
  const now = Math.floor(Date.now() / 1000);
  const st = await apiGet(`stats?from=${now - 3600}&to=${now + 1}`);
  assert.ok(st.requests >= BULK + 5);
  assert.equal(await page.textContent('[data-tile=requests] .value'), intFmt(st.requests));
  assert.equal(await page.textContent('[data-tile=errors] .value'), intFmt(st.errors));
  // the money the cache saved: the hit's record priced at what the provider would have charged
  assert.ok(st.cache_saved > 0, JSON.stringify(st));
  const usd = (v) => page.evaluate(async (x) => (await import('/lib.js')).fmt.usd(x), v);
  assert.equal(await page.textContent('[data-tile=cache_saved] .value'), await usd(st.cache_saved));
  assert.equal(await page.textContent('[data-tile=cost] .value'), await usd(st.total_cost));
  // top models by cost come from /costs
  const costs = await apiGet(`costs?from=${now - 3600}&to=${now + 1}&group_by=model`);
  const shown = await page.locator('[data-group=model] tbody tr td:first-child').allTextContents();
  assert.deepEqual(shown, costs.data.slice(0, 8).map((r) => r.group ?? '(none)'));
  const agents = await page.locator('[data-group="property:Agent-Name"] tbody td:first-child').allTextContents();
  assert.ok(agents.includes('planner') && agents.includes('bulk-agent-1'), agents.join());
  assert.equal(await page.locator('.chart canvas').count() >= 4, true, 'charts drawn');
  await shot('overview');
  // live: a new request shows up without a reload, in the same charts (no redraw from scratch)
  await page.evaluate(() => { document.querySelector('.chart canvas').dataset.kept = '1'; });
  const before = await page.textContent('[data-tile=requests] .value');
  await h.openaiClient(gw, null, { apiKey: ADMIN }).chat.completions.create({
    model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'live' }],
  });
  await page.waitForFunction((b) => document.querySelector('[data-tile=requests] .value').textContent !== b,
    before, { timeout: 12000 });
  assert.equal(await page.textContent('[data-tile=requests] .value'), intFmt(st.requests + 1));
  assert.equal(await page.locator('.chart canvas[data-kept="1"]').count(), 1);
});

test('requests: the log with filters, and one request as a conversation', async () => {
  await open('#/requests?user_id=alice', 'table.log tbody tr[data-id]');
  const list = await apiGet('requests?user_id=alice');
  assert.equal(await page.locator('table.log tbody tr[data-id]').count(), list.total);
  // filter through the form: model
  await page.goto(`${dash}/#/requests`);
  await page.waitForSelector('table.log tbody tr[data-id]');
  await page.fill('input[name=model]', 'gpt-4o');
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('model=gpt-4o'));
  await page.waitForFunction(() => document.querySelectorAll('table.log tbody tr[data-id]').length === 1);
  const one = (await apiGet('requests?model=gpt-4o')).data[0];
  assert.equal(await page.getAttribute('table.log tbody tr[data-id]', 'data-id'), one.id);
  await shot('requests');
  await page.click('table.log tbody tr[data-id] a');
  await page.waitForSelector('.msg.assistant');
  assert.equal(await page.textContent('.msg.assistant .text'), 'Answer for /answer from the fake');
  assert.match(await page.textContent('.msg.user .text'), /Step \/answer, please/);
  assert.match(await page.textContent('pre[data-body=request]'), /"model": "fake\/gpt-4o"/);
  assert.equal(await page.textContent('td[data-field=status]'), '200');
  if (one.cost !== null) assert.match(await page.textContent('td[data-field=cost]'), /^\$/);
  await shot('request');
});

test('costs: by model and by property, as the API groups them', async () => {
  await open('#/costs?group_by=property:Agent-Name&range=24h', 'table.costs tbody tr[data-group]');
  const now = Math.floor(Date.now() / 1000);
  const api = await apiGet(`costs?from=${now - 86400}&to=${now + 1}&group_by=property:Agent-Name`);
  const groups = await page.locator('table.costs tbody tr[data-group]').evaluateAll((rows) => rows.map((r) => r.dataset.group));
  assert.deepEqual(groups, api.data.map((r) => r.group ?? ''));
  await page.click('button[data-group=model]');
  await page.waitForFunction(() => location.hash.includes('group_by=model'));
  await page.waitForSelector('table.costs tbody tr[data-group=bulk-model-a]');
  await shot('costs');
});

test('sessions: the list and one session as a tree of its steps', async () => {
  await open('#/sessions', 'tr[data-session=sess-dash-e2e]');
  const s = await apiGet('sessions/sess-dash-e2e');
  assert.equal(s.requests, 3);
  await page.click('tr[data-session=sess-dash-e2e] a');
  await page.waitForSelector('li.step[data-path="/plan/search"]');
  const paths = await page.locator('li.step').evaluateAll((els) => els.map((e) => e.dataset.path));
  assert.deepEqual(paths, ['/plan', '/plan/search', '/answer']);
  assert.equal(await page.textContent('[data-total=requests]'), '3');
  assert.equal(await page.locator('li.req').count(), 3);
  await shot('session');
});

test('limits: a read key cannot create one; a write key can, and the API has it', async () => {
  await open('#/limits', 'table.limits tbody tr');
  await page.fill('input[name=value]', 'dash-agent');
  await page.fill('input[name=limit]', '7');
  await page.click('form.filters button[type=submit]');
  await page.waitForSelector('p.msg.error');
  assert.match(await page.textContent('p.msg.error'), /Not allowed/);
  assert.equal((await apiGet('rate-limits')).total, 0);
  // the write key
  await page.evaluate((k) => sessionStorage.setItem('tollgate.key', k), ADMIN);
  await page.reload();
  await page.waitForSelector('table.limits tbody tr');
  await page.fill('input[name=value]', 'dash-agent');
  await page.fill('input[name=limit]', '7');
  await page.click('form.filters button[type=submit]');
  await page.waitForSelector('p.msg.good');
  const rules = await apiGet('rate-limits');
  assert.equal(rules.total, 1);
  assert.equal(rules.data[0].value, 'dash-agent');
  assert.equal(rules.data[0].limit, 7);
  await page.waitForSelector(`tr[data-id="${rules.data[0].id}"]`);
  await shot('limits');
  await page.click(`tr[data-id="${rules.data[0].id}"] button`);
  await page.waitForFunction(() => !document.querySelector('table.limits tr[data-id]'));
  assert.equal((await apiGet('rate-limits')).total, 0);
});

test('providers: health and the last hour per provider', async () => {
  await open('#/providers', 'tr[data-provider=fake]');
  const api = await apiGet('providers');
  const fakeRow = api.data.find((p) => p.name === 'fake');
  assert.equal(await page.textContent('tr[data-provider=fake] td:nth-child(4)'), intFmt(fakeRow.last_hour.requests));
  assert.equal(await page.textContent('tr[data-provider=fake] .badge'), 'healthy');
  await shot('providers');
});

/** Whether this gateway has /api/v1/<what> (a gateway from before budgets has not). */
async function hasApi(what) {
  const r = await fetch(`${dash}/api/v1/${what}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  return r.status !== 404 && r.status !== 405;
}

async function asKey(key) {
  await page.evaluate((k) => sessionStorage.setItem('tollgate.key', k), key);
}

test('budgets: spend bars from the API; a write key sets one, a read key cannot', async () => {
  if (!(await hasApi('budgets'))) {
    await page.goto(`${dash}/#/budgets`);
    await page.waitForSelector('.unavailable');
    assert.match(await page.textContent('.unavailable'), /not available on this gateway/);
    await shot('budgets');
    return;
  }
  await asKey(VIEWER);
  await open('#/budgets', 'form.filters');
  await page.selectOption('select[name=scope]', 'property');
  await page.fill('input[name=property]', 'Agent-Name');
  await page.fill('input[name=value]', 'planner');
  await page.fill('input[name=daily]', '5');
  await page.click('form.filters button[type=submit]');
  await page.waitForSelector('p.msg.error');
  assert.equal((await apiGet('budgets')).data.filter((b) => b.value === 'planner').length, 0);
  await asKey(ADMIN);
  await page.reload();
  await page.waitForSelector('form.filters');
  await page.selectOption('select[name=scope]', 'property');
  await page.fill('input[name=property]', 'Agent-Name');
  await page.fill('input[name=value]', 'planner');
  await page.fill('input[name=daily]', '5');
  await page.click('form.filters button[type=submit]');
  await page.waitForSelector('p.msg.good');
  const b = (await apiGet('budgets')).data.find((x) => x.scope === 'property:Agent-Name' && x.value === 'planner');
  assert.ok(b, 'the budget is in the API');
  assert.equal(b.daily.limit, 5);
  const card = page.locator('.budget[data-scope="property:Agent-Name"][data-value=planner]');
  await card.waitFor();
  assert.match(await card.locator('[data-period=daily]').textContent(), /daily: .* of \$5\.00/);
  await shot('budgets');
});

test('keys: a write key makes one (shown once) and the API lists it', async () => {
  if (!(await hasApi('keys'))) {
    await page.goto(`${dash}/#/keys`);
    await page.waitForSelector('.unavailable');
    assert.match(await page.textContent('.unavailable'), /not available on this gateway/);
    await shot('keys');
    return;
  }
  await asKey(ADMIN);
  await open('#/keys', 'table.keys');
  await page.fill('input[name=name]', 'dash-made');
  await page.selectOption('select[name=permissions]', 'read');
  await page.click('form.filters button[type=submit]');
  await page.waitForSelector('code.key');
  const secret = await page.textContent('code.key');
  assert.match(secret, /^tg-/);
  const keys = await apiGet('keys');
  assert.ok(keys.data.some((k) => k.name === 'dash-made'));
  // the new key works as a read key on the API
  assert.equal((await fetch(`${dash}/api/v1/stats`, { headers: { Authorization: `Bearer ${secret}` } })).status, 200);
  await page.waitForSelector('tr[data-key=dash-made]');
  await shot('keys');
  // a read key cannot see them (the keys API takes write), nor make one
  await asKey(VIEWER);
  await page.reload();
  await page.waitForSelector('.unavailable');
  assert.match(await page.textContent('.unavailable'), /not with this key .*needs a key with write/);
  const r = await fetch(`${dash}/api/v1/keys`, {
    method: 'POST', headers: { Authorization: `Bearer ${VIEWER}`, 'content-type': 'application/json' },
    body: '{"name":"nope","permissions":["read"]}',
  });
  assert.equal(r.status, 403);
  await asKey(ADMIN);
});

test('the page made no request to another origin and logged no error', () => {
  assert.deepEqual(foreign, []);
  // The browser notes every answer >= 400 itself; the tests provoke 401
  // (no key yet), 403 (a read key writing, or reading keys) and 404 (no
  // budgets or keys API). Anything else (a script error, a CSP refusal, another status) fails.
  const own = consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of (401|403|404) /.test(m));
  assert.deepEqual(own, []);
});

test('without keys on a non-loopback address the start-up log says the dashboard is open; admin_allowed_ips guards its /api/v1', async () => {
  const dport = await h.freePort();
  const open = await h.startGateway(h.baseConfig(fake, {
    security: { admin_allowed_ips: ['10.9.9.0/24'] },
    observability: { dashboard: { enabled: true, port: dport, host: '0.0.0.0' } },
  }));
  try {
    // the line may reach the pipe after /health already answers (slow builds)
    const said = /dashboard: http:\/\/0\.0\.0\.0:\d+\/ is open/;
    await h.waitFor(() => said.test(open.output()), 10000);
    assert.match(open.output(), said);
    const url = `http://127.0.0.1:${dport}`;
    assert.equal((await fetch(`${url}/`)).status, 200);
    assert.equal((await fetch(`${url}/api/v1/stats`)).status, 403);
  } finally {
    await open.stop();
  }
});

test('a dashboard port in use stops the start with a message naming it', async () => {
  const net = require('node:net');
  const { spawn } = require('node:child_process');
  const holder = net.createServer();
  await new Promise((r) => holder.listen(0, '127.0.0.1', r));
  const busy = holder.address().port;
  const cfg = h.baseConfig(fake, {
    observability: { dashboard: { enabled: true, port: busy, host: '127.0.0.1' } },
  });
  cfg.server = { ...cfg.server, port: await h.freePort() };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-dash-busy-'));
  const file = h.writeConfig(cfg, path.join(dir, 'tollgate.yaml'));
  const proc = spawn(h.BIN, ['--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exit = await h.waitExit(proc, 10000);
  holder.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (!exit) proc.kill('SIGKILL');
  assert.ok(exit && exit.code !== 0, `exit ${JSON.stringify(exit)}: ${out}`);
  assert.match(out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy} \\(observability\\.dashboard\\): the address is already in use`));
});
