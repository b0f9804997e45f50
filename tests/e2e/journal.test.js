'use strict';
// kill -9 under load loses no record of an answered request: each worker
// journals a loop turn's records before it writes that turn's answers, and
// the next start replays the journal into the database exactly once. A
// spool of JSON lines left by an older version is stored once, then removed.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

let fake;
const dirs = [];
before(async () => { fake = await h.startFake(); });
after(async () => {
  await fake?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const BODY = JSON.stringify({ model: 'mock/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

/** One request with our own id; resolves its status once the whole answer is in. */
function ask(gw, agent, id) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'helicone-request-id': id },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

/** CONCURRENCY clients in a loop until the gateway dies; the ids answered 200. */
async function loadUntilKilled(gw, concurrency, killAfter) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const answered = new Set();
  let n = 0;
  let killed = false;
  const client = async (c) => {
    while (!killed) {
      const id = `k9-${concurrency}-${c}-${n++}`;
      try {
        if (await ask(gw, agent, id) === 200) answered.add(id);
      } catch { /* the gateway is gone */ }
      if (!killed && answered.size >= killAfter) {
        killed = true;
        gw.proc.kill('SIGKILL');
      }
    }
  };
  const deadline = setTimeout(() => { killed = true; gw.proc.kill('SIGKILL'); }, 60000);
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  clearTimeout(deadline);
  await gw.exited;
  agent.destroy();
  return answered;
}

async function api(gw, p) {
  const r = await fetch(`${gw.url}${p}`);
  assert.equal(r.status, 200, p);
  return r.json();
}

/** Every stored id (the API pages 1000 at a time). */
async function storedIds(gw) {
  const ids = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api(gw, `/api/v1/requests?limit=1000&offset=${offset}`);
    ids.push(...page.data.map((r) => r.id));
    if (page.data.length < 1000) return ids;
  }
}

/** A folder of the test's own for a SQLite store, and a gateway's config on it. */
function storeDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-journal-'));
  dirs.push(dir);
  const config = h.baseConfig(fake, {
    storage: { url: `sqlite:${dir}/records.db` },
    logging: { level: 'warn', format: 'text', output: 'stdout' },
  });
  return { dir, config };
}

for (const concurrency of [16, 64]) {
  test(`kill -9 at concurrency ${concurrency}: every request answered 200 is stored once`, async () => {
    const { dir, config } = storeDir();
    const gw = await h.startGateway(config, { sqlite: true });
    const answered = await loadUntilKilled(gw, concurrency, 1500);
    await gw.stop();
    assert.ok(answered.size >= 1500, `only ${answered.size} answered`);
    const journal = path.join(dir, 'records.db-journal.d');
    const segments = fs.readdirSync(journal).filter((f) => f.endsWith('.tgj'));
    assert.ok(segments.length > 0, 'no journal segment left by the kill');
    for (const f of segments) assert.equal(fs.statSync(path.join(journal, f)).mode & 0o777, 0o600);

    const gw2 = await h.startGateway(config, { sqlite: true });
    try {
      // the replay runs on the writer thread once the gateway is up
      await h.waitFor(async () => (await api(gw2, '/api/v1/requests?limit=1')).total >= answered.size, 20000);
      const ids = await storedIds(gw2);
      const stored = new Set(ids);
      assert.equal(ids.length, stored.size, 'a record was stored twice');
      const missing = [...answered].filter((id) => !stored.has(id));
      assert.deepEqual(missing.slice(0, 10), [],
        `${missing.length} of ${answered.size} answered requests have no record (${ids.length} stored)`);
      process.stderr.write(`# concurrency ${concurrency}: ${answered.size} answered 200, ${ids.length} stored after kill -9\n`);
    } finally {
      const r = await gw2.stop();
      assert.equal(r.code, 0);
    }
    assert.ok(!fs.existsSync(journal), 'a clean stop leaves no journal');
  });
}

test('a spool of JSON lines left by an older version is stored once at start, then removed', async () => {
  const { dir, config } = storeDir();
  const gw = await h.startGateway(config, { sqlite: true });
  const agent = new http.Agent({ keepAlive: false });
  assert.equal(await ask(gw, agent, 'live-1'), 200);
  const stored = Date.parse((await h.storedRecord(gw, 'live-1')).created_at);
  assert.equal((await gw.stop()).code, 0);
  // what the older version's writer spooled: one JSON line per record
  // (created_at_ms, cost_nusd, raw bodies); live-1 is stored already
  const now = Date.now();
  const body = 'data: {"choices":[{"delta":{"content":"caf\u00e9 \\"quoted\\"\\n"}}]}\n\n';
  const line = (id, i) => JSON.stringify({
    id, created_at_ms: id === 'live-1' ? stored : now - 1000 + i, provider: 'fake', model: 'gpt-4o-mini',
    model_requested: 'mock/gpt-4o-mini', route: '/v1/chat/completions', status: 200,
    latency_ms: 12, ttft_ms: null, prompt_tokens: 3, completion_tokens: 4, cached_tokens: null,
    cache_write_tokens: null, reasoning_tokens: null, cost_nusd: 1500, cache: 'none',
    cache_saved_nusd: null, properties: { Agent: 'old' }, retries: 0, fallback_index: 0,
    request_body: BODY, response_body: body,
  });
  const legacy = path.join(dir, 'records.db-spool.jsonl');
  fs.writeFileSync(legacy, `${line('legacy-1', 1)}\n${line('legacy-2', 2)}\n${line('live-1', 0)}\n`);
  fs.writeFileSync(`${legacy}.replay`, `${line('legacy-3', 3)}\n`);

  const gw2 = await h.startGateway(config, { sqlite: true });
  try {
    await h.waitFor(async () => (await api(gw2, '/api/v1/requests?limit=1')).total >= 4, 20000);
    const ids = await storedIds(gw2);
    assert.deepEqual([...ids].sort(), ['legacy-1', 'legacy-2', 'legacy-3', 'live-1']);
    const rec = await h.storedRecord(gw2, 'legacy-2');
    assert.equal(rec.properties.Agent, 'old');
    assert.equal(rec.cost, 0.0000015);
    assert.ok(!fs.existsSync(legacy) && !fs.existsSync(`${legacy}.replay`), 'the older spool is gone');
  } finally {
    assert.equal((await gw2.stop()).code, 0);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'records.db-spool.tgj')), 'nothing left in the spool');
  const again = await h.startGateway(config, { sqlite: true });
  try {
    assert.equal((await api(again, '/api/v1/requests?limit=1')).total, 4);
  } finally {
    await again.stop();
  }
});
