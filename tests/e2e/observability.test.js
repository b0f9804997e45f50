'use strict';
// Request records and the query API (SPEC §8): filters, exact costs, omitted
// bodies, durability across a restart, no lost records under concurrency.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let dir;
let config;

// USD per 1,000 tokens, as in the fixtures
const PRICE = { input: 0.00015, output: 0.0006 };
const CLAUDE_PRICE = { input: 0.0008, output: 0.004, cached_input: 0.00008 };

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-obs-'));
  config = h.baseConfig(fake, {
    providers: { claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET } },
    storage: { url: `sqlite:${dir}/records.db` },
    cost_tracking: { pricing: { 'gpt-4o-mini': PRICE, 'claude-3-5-haiku': CLAUDE_PRICE } },
  });
});
after(async () => {
  await fake?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const api = async (gw, p) => {
  const r = await fetch(`${gw.url}${p}`);
  assert.equal(r.status, 200, `${p}: ${r.status}`);
  return r.json();
};

// Records reach the store within a batch interval; poll instead of sleeping.
async function waitForTotal(gw, query, n) {
  let body;
  for (let i = 0; i < 100; i++) {
    body = await api(gw, `/api/v1/requests?${query}`);
    if (body.total >= n) return body;
    await h.sleep(50);
  }
  return body;
}

test('records carry properties, user and session; filters find them; costs are exact', async () => {
  const gw = await h.startGateway(config);
  try {
    const client = h.openaiClient(gw);
    const agent = `agent-${process.pid}`;
    const headers = {
      'Helicone-Property-Agent-Name': agent, 'Helicone-User-Id': 'user-obs',
      'Helicone-Session-Id': 'sess-obs', 'Helicone-Session-Name': 'Nightly', 'Helicone-Session-Path': '/a/b',
    };
    const messages = [{ role: 'user', content: 'five words in this prompt' }];
    let prompt = 0;
    let completion = 0;
    for (const reply of ['one two three', 'four five']) {
      const r = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages },
        { headers: { ...headers, 'x-fake-reply': reply } });
      prompt += r.usage.prompt_tokens;
      completion += r.usage.completion_tokens;
    }
    const stream = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages, stream: true },
      { headers: { ...headers, 'x-fake-reply': 'a b c d e f' } });
    for await (const _ of stream) { /* the usage chunk is hidden from us, not from the gateway */ }
    prompt += 5;
    completion += 6;
    let expected = (prompt * PRICE.input + completion * PRICE.output) / 1000;

    // the same agent on Claude, natively through the Anthropic SDK, plain
    // and streamed; the provider's cache serves part of the prompt
    const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0 });
    const cmsg = { model: 'claude-3-5-haiku-20241022', max_tokens: 50, messages };
    const m = await claude.messages.create(cmsg,
      { headers: { ...headers, 'x-fake-reply': 'claude says three', 'x-fake-cache-read': '4' } });
    const ms = await claude.messages.stream(cmsg,
      { headers: { ...headers, 'x-fake-reply': 'a streamed claude answer of seven', 'x-fake-cache-read': '4' } })
      .finalMessage();
    for (const u of [m.usage, ms.usage]) {
      assert.equal(u.cache_read_input_tokens, 4);
      prompt += u.input_tokens + u.cache_read_input_tokens;
      completion += u.output_tokens;
      expected += (u.input_tokens * CLAUDE_PRICE.input + u.cache_read_input_tokens * CLAUDE_PRICE.cached_input
        + u.output_tokens * CLAUDE_PRICE.output) / 1000;
    }

    const list = await waitForTotal(gw, `property.Agent-Name=${agent}`, 5);
    assert.equal(list.total, 5);
    for (const rec of list.data) {
      // header names are case-insensitive (Node's client sends them lower case)
      const prop = Object.entries(rec.properties).find(([k]) => k.toLowerCase() === 'agent-name');
      assert.equal(prop?.[1], agent);
      assert.equal(rec.user_id, 'user-obs');
      assert.equal(rec.session_id, 'sess-obs');
      assert.equal(rec.session_name, 'Nightly');
      assert.equal(rec.session_path, '/a/b');
      if (rec.provider === 'claude') {
        assert.equal(rec.model, 'claude-3-5-haiku-20241022');
      } else {
        assert.equal(rec.provider, 'fake');
        assert.equal(rec.model, 'gpt-4o-mini');
        assert.equal(rec.model_requested, 'fake/gpt-4o-mini');
      }
      assert.equal(rec.status, 200);
      assert.ok(rec.cost > 0);
    }
    assert.equal(list.data.filter((r) => r.provider === 'claude').length, 2);
    assert.equal((await api(gw, '/api/v1/requests?user_id=user-obs')).total, 5);
    assert.equal((await api(gw, '/api/v1/requests?session_id=sess-obs')).total, 5);
    assert.equal((await api(gw, '/api/v1/requests?user_id=nobody')).total, 0);

    const costs = await api(gw, `/api/v1/requests/costs?filter=properties.Agent-Name=${agent}&period=day`);
    assert.equal(costs.requests, 5);
    assert.equal(costs.prompt_tokens, prompt);
    assert.equal(costs.completion_tokens, completion);
    assert.ok(Math.abs(costs.total_cost - expected) < 1e-12, `cost ${costs.total_cost} != ${expected}`);

    assert.equal(costs.cached_tokens, 8);

    // the oldest is a plain call; a JSON body comes back as JSON
    const one = await api(gw, `/api/v1/requests/${list.data[list.data.length - 1].id}`);
    assert.equal(one.request_body.messages[0].content, 'five words in this prompt');
    assert.equal(one.response_body.object, 'chat.completion');
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('Helicone-Omit-Request/-Response: bodies are not stored', async () => {
  const gw = await h.startGateway(config);
  try {
    const id = `omit-${process.pid}-${Date.now()}`;
    const client = h.openaiClient(gw);
    await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'secret prompt text' }] },
      { headers: { 'Helicone-Property-T': id, 'Helicone-Omit-Request': 'true', 'Helicone-Omit-Response': 'true', 'x-fake-reply': 'secret answer text' } });
    const list = await waitForTotal(gw, `property.T=${id}`, 1);
    const one = await api(gw, `/api/v1/requests/${list.data[0].id}`);
    assert.equal(one.request_body, null);
    assert.equal(one.response_body, null);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
  const raw = h.storedText(config);
  assert.ok(!raw.includes('secret prompt text'), 'an omitted body reached the database');
});

// A streamed answer of many near-identical events is stored as an LZ4 frame
// (docs/observability.md): several times smaller in the database, read back
// whole by the API, and readable by the lz4 tool (which storedText uses, so
// the secret checks of this file see inside compressed bodies too).
test('a long streamed answer is stored compressed and read back whole', async () => {
  const marker = `marker-${process.pid}-${Date.now()}`;
  const reply = `${marker} ${'the quick brown fox jumps over the lazy dog '.repeat(40)}`.trim(); // a header value
  const gw = await h.startGateway(config);
  let one;
  let events;
  try {
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-chunks': '120', 'x-fake-reply': reply,
        'Helicone-Property-T': marker },
      body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const got = await r.text();
    assert.equal(r.status, 200);
    const list = await waitForTotal(gw, `property.T=${marker}`, 1);
    one = await api(gw, `/api/v1/requests/${list.data[0].id}`);
    assert.equal(typeof one.response_body, 'string');
    // every event the client got is in the stored body, in order
    events = got.split('\n\n').filter((e) => e.startsWith('data: {'));
    assert.ok(events.length >= 120, `${events.length} events`);
    let at = 0;
    for (const e of events) {
      at = one.response_body.indexOf(e, at);
      assert.ok(at >= 0, `event missing from the stored body: ${e}`);
    }
    const text = events.map((e) => JSON.parse(e.slice(6)).choices?.[0]?.delta?.content || '').join('');
    assert.equal(text, reply);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
  const where = `FROM request_bodies b JOIN requests r ON r.seq = b.seq WHERE r.id = '${one.id}'`;
  const row = h.storeQuery(config,
    `SELECT lower(hex(substr(b.response_body, 1, 4))) || ' ' || length(b.response_body) ${where}`,
    `SELECT encode(substring(b.response_body from 1 for 4), 'hex') || ' ' || length(b.response_body) ${where}`)
    .trim().split(/\s+/);
  assert.equal(row[0], '04224d18', 'the stored body is an LZ4 frame');
  assert.ok(Number(row[1]) < one.response_body.length / 4, `stored ${row[1]} bytes of ${one.response_body.length}`);
  // an event lies whole in the stored body (the marker itself may be split
  // between two events' content)
  assert.ok(h.storedText(config).includes(events[1]), 'storedText reads inside compressed bodies');
});

test('1000 concurrent requests make exactly 1000 records, and they survive a restart', async () => {
  const tag = `burst-${process.pid}-${Date.now()}`;
  let gw = await h.startGateway(config);
  try {
    const body = JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'x' }] });
    const rs = await Promise.all(Array.from({ length: 1000 }, () => fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'Helicone-Property-Burst': tag }, body,
    }).then((r) => r.status)));
    assert.equal(rs.filter((s) => s === 200).length, 1000);
  } finally {
    assert.equal((await gw.stop()).code, 0); // a clean stop writes every record
  }
  gw = await h.startGateway(config);
  try {
    const list = await api(gw, `/api/v1/requests?property.Burst=${tag}&limit=1`);
    assert.equal(list.total, 1000);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /tollgate_log_records_dropped_total 0\n/);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
  const raw = h.storedText(config);
  assert.ok(!raw.includes(h.SECRET), 'the provider key reached the database');
});

// The store's disk fills up under a running gateway: the database and the
// spool beside it cannot be written, so records wait in memory; nothing is
// lost, and all of them are written once there is room again. (A file system
// cannot be remounted read-only while files on it are open for writing, so a
// full disk is how a live store stops taking writes.) Needs a small file
// system of our own: root with CAP_SYS_ADMIN; elsewhere the same path is
// covered by the unit test store_readonly_database_spools_then_replays.
test('a store whose disk fills up mid-run loses nothing once it has room again', async (t) => {
  const { execFileSync } = require('node:child_process');
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-fullmnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    fs.rmSync(mnt, { recursive: true, force: true });
    t.skip('cannot mount a file system here (needs root with CAP_SYS_ADMIN)');
    return;
  }
  const filler = path.join(mnt, 'filler');
  const fill = () => {
    const st = fs.statfsSync(mnt);
    fs.writeFileSync(filler, Buffer.alloc(Number(st.bavail) * st.bsize));
  };
  const tag = `full-${process.pid}-${Date.now()}`;
  const prompt = 'p'.repeat(4000); // a record of some kilobytes with its bodies
  const send = (gw, n) => Promise.all(Array.from({ length: n }, () => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Helicone-Property-Full': tag },
    body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: prompt }] }),
  }).then((r) => r.status)));
  const metric = async (gw, name) => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  const total = async (gw) => (await api(gw, `/api/v1/requests?property.Full=${tag}&limit=1`)).total;
  // the SQLite file's own disk fills up: SQLite in every mode
  const gw = await h.startGateway({ ...config, storage: { url: `sqlite:${mnt}/records.db` } }, { sqlite: true });
  try {
    assert.deepEqual(await send(gw, 10), Array(10).fill(200));
    await waitForTotal(gw, `property.Full=${tag}`, 10);
    fill();
    // answers go on while the store cannot take records
    assert.deepEqual(await send(gw, 300), Array(300).fill(200));
    let waiting = 0;
    for (let i = 0; i < 100 && waiting === 0; i++) {
      waiting = await metric(gw, 'tollgate_log_queue_depth');
      if (!waiting) await h.sleep(50);
    }
    assert.ok(waiting > 0, 'records should be waiting while the disk is full');
    assert.ok(await total(gw) < 310);
    fs.rmSync(filler);
    let n = 0;
    for (let i = 0; i < 200 && n < 310; i++) {
      n = await total(gw);
      if (n < 310) await h.sleep(50);
    }
    assert.equal(n, 310);
    assert.equal(await metric(gw, 'tollgate_log_records_dropped_total'), 0);
  } finally {
    fs.rmSync(filler, { force: true });
    assert.equal((await gw.stop()).code, 0);
    execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
