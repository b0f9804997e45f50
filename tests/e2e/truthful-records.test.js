'use strict';
// Records that tell the truth (SPEC §7, §8): for every fault of the fake
// provider — an error status with its body, a connection dropped mid-stream,
// a stream that ends without its terminator, a provider silent past its
// timeout — in every shape of call (plain, streamed; native, translated,
// raw pass-through), what the client saw and what the record says agree:
// the record's status is the one the client was sent (200 for a stream that
// had started), its error says what went wrong (the provider's own message
// when it gave one), and a cut stream is never passed off as complete (the
// dialect's error event and no terminator). Also a stream cut by
// server.shutdown_timeout, and a client that leaves.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let gw;
let rec;
let dir;

const GEMINI = 'gemini-2.5-flash';

/** Providers of every type, each with a 1 s timeout and no retries. */
function providers() {
  return {
    fake: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 1 },
    claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 1 },
    gem: { type: 'gemini', base_url: fake.url, api_key: h.SECRET, timeout: 1 },
  };
}

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-truth-'));
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: providers(), storage: { url: `sqlite:${dir}/records.db` },
  }));
  rec = h.makeRecorder();
});
after(async () => {
  const leaks = gw ? await h.findSecretLeaks(gw, [rec]) : [];
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(leaks, [], 'the provider key leaked');
});

// ---------------------------------------------------------------- calls

const OPENAI_BODY = (model, stream) => ({ model, stream, messages: [{ role: 'user', content: 'hi' }] });
const ANTHROPIC_BODY = (model, stream) => ({ model, stream, max_tokens: 64,
  messages: [{ role: 'user', content: 'hi' }] });
const RESPONSES_BODY = (model, stream) => ({ model, stream, input: 'hi' });
const GEMINI_BODY = () => ({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });

/**
 * The shapes of call: the client's dialect (what its error event and
 * terminator look like) and how to make the request.
 */
const MODES = {
  'openai native': { wire: 'openai', path: () => '/v1/chat/completions',
    body: (s) => OPENAI_BODY('fake/gpt-4o-mini', s) },
  'anthropic native': { wire: 'anthropic', path: () => '/v1/messages',
    body: (s) => ANTHROPIC_BODY('claude/claude-haiku-4-5', s) },
  'gemini native': { wire: 'gemini',
    path: (s) => `/v1beta/models/gem/${GEMINI}:${s ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    body: () => GEMINI_BODY() },
  'openai -> anthropic-type': { wire: 'openai', path: () => '/v1/chat/completions',
    body: (s) => OPENAI_BODY('claude/claude-haiku-4-5', s) },
  'anthropic -> openai-type': { wire: 'anthropic', path: () => '/v1/messages',
    body: (s) => ANTHROPIC_BODY('fake/gpt-4o-mini', s) },
  'openai -> gemini-type': { wire: 'openai', path: () => '/v1/chat/completions',
    body: (s) => OPENAI_BODY(`gem/${GEMINI}`, s) },
  'responses native': { wire: 'responses', path: () => '/v1/responses',
    body: (s) => RESPONSES_BODY('fake/gpt-4o-mini', s) },
  'responses -> anthropic-type': { wire: 'responses', path: () => '/v1/responses',
    body: (s) => RESPONSES_BODY('claude/claude-haiku-4-5', s) },
  'responses -> gemini-type': { wire: 'responses', path: () => '/v1/responses',
    body: (s) => RESPONSES_BODY(`gem/${GEMINI}`, s) },
  'raw pass-through': { wire: 'raw', path: () => '/fake/chat/completions',
    body: (s) => OPENAI_BODY('gpt-4o-mini', s) },
};

/** How a stream of each dialect says it failed, and how it says it is complete. */
const ERROR_EVENT = {
  openai: /^data: \{"error":\{"message":"[^"]+","type":"\w+"/m,
  anthropic: /^event: error\ndata: \{"type":"error","error":\{"type":"\w+","message":/m,
  gemini: /^data: \{"error":\{"code":5\d\d,"message":"[^"]+","status":"[A-Z_]+"\}\}/m,
  responses: /^event: response\.failed\ndata: \{"type":"response\.failed","sequence_number":\d+,"response":\{[^\n]*"status":"failed","error":\{"code":"[^"]+","message":"[^"]+"/m,
};
const TERMINATOR = {
  openai: /^data: \[DONE\]/m, anthropic: /message_stop/, gemini: /finishReason/, raw: /^data: \[DONE\]/m,
  responses: /^event: response\.completed/m,
};

/**
 * POST to the gateway with a raw HTTP client, to see exactly what a client
 * gets: status, body, and whether the body ended cleanly (a chunked body
 * cut without its last chunk does not).
 */
function call(url, p, body, headers, onResponse = () => {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${p}`, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', ...headers },
    }, (res) => {
      onResponse();
      const chunks = [];
      let clean = false;
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { clean = true; });
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, clean,
        body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** The stored record of request ID (written off the request path: polled). */
async function record(id, url = gw.url) {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${url}/api/v1/requests/${id}`);
    if (r.status === 200) return r.json();
    await h.sleep(50);
  }
  throw new Error(`no record ${id}`);
}

/**
 * Run one fault in the given modes, concurrently; CHECK(mode, client
 * answer, record) returns a list of problems. Asserts that none has any.
 */
async function matrix(fault, modes, stream, headers, check) {
  const problems = [];
  await Promise.all(modes.map(async (name) => {
    const m = MODES[name];
    const id = h.testId(`truth-${fault}-${stream ? 's' : 'p'}`).replace(/[^A-Za-z0-9-]/g, '-');
    const r = await call(gw.url, m.path(stream), m.body(stream), { 'Helicone-Request-Id': id, ...headers });
    const stored = await record(id);
    for (const p of check(m, r, stored)) {
      problems.push(`${name}, ${stream ? 'streamed' : 'plain'}: ${p}\n    client: ${r.status} ${JSON.stringify(r.body.slice(-300))}\n    record: status ${stored.status}, error ${JSON.stringify(stored.error)}`);
    }
  }));
  assert.deepEqual(problems, [], `${fault}:\n${problems.join('\n')}`);
}

const ALL = Object.keys(MODES);
const LLM = ALL.filter((m) => m !== 'raw pass-through');

// ---------------------------------------------------------------- provider errors

for (const status of [500, 429, 404]) {
  for (const stream of [false, true]) {
    test(`provider answers ${status} (${stream ? 'streamed' : 'plain'}): the client gets ${status}, the record ${status} and the provider's message`, async () => {
      await matrix(`status-${status}`, ALL, stream, { 'x-fake-status': String(status) }, (m, r, s) => {
        const p = [];
        if (r.status !== status) p.push(`client status ${r.status}`);
        if (!r.body.includes(`fake provider failure: status ${status}`)) p.push('client body lacks the provider message');
        if (s.status !== status) p.push(`record status ${s.status}`);
        if (s.error !== `fake provider failure: status ${status}`) p.push(`record error ${JSON.stringify(s.error)}`);
        return p;
      });
    });
  }
}

// ---------------------------------------------------------------- cut streams

/** A stream that started and was cut: 200 everywhere, the cause in the record, never complete. */
const cutStream = (errorPattern) => (m, r, s) => {
  const p = [];
  if (r.status !== 200) p.push(`client status ${r.status}`);
  if (TERMINATOR[m.wire].test(r.body)) p.push('the client got the terminator: the cut stream looks complete');
  if (m.wire === 'raw') {
    if (r.clean) p.push('pass-through body ended cleanly after the provider cut it');
  } else {
    if (!ERROR_EVENT[m.wire].test(r.body)) p.push(`no ${m.wire} error event`);
    if (!r.clean) p.push('the chunked body did not end cleanly after the error event');
  }
  if (s.status !== 200) p.push(`record status ${s.status}, the client got 200`);
  if (!errorPattern.test(s.error ?? '')) p.push(`record error ${JSON.stringify(s.error)} !~ ${errorPattern}`);
  return p;
};

test('provider drops the connection mid-stream: error event, no terminator, record 200 + why', async () => {
  await matrix('drop-mid', ALL, true, { 'x-fake-drop': 'mid', 'x-fake-chunks': '6' },
    cutStream(/broke off its answer/));
});

test('provider drops the connection in the middle of an event: the client gets no half event, but the error event', async () => {
  await matrix('drop-torn', ALL, true, { 'x-fake-drop': 'torn', 'x-fake-chunks': '6' }, (m, r, s) => {
    const p = cutStream(/broke off its answer/)(m, r, s);
    if (m.wire !== 'raw' && r.body.includes('partial')) p.push('the client got half an event');
    return p;
  });
});

test('provider ends its stream without the terminator: error event, record 200 + why', async () => {
  await matrix('drop-end', LLM, true, { 'x-fake-drop': 'end', 'x-fake-chunks': '6' },
    cutStream(/ended without its terminator/));
});

test('provider goes silent mid-stream past its timeout: error event, record 200 + timed out', async () => {
  await matrix('stall', ALL, true, { 'x-fake-chunks': '3', 'x-fake-chunk-delay-ms': '2500' },
    cutStream(/timed out/));
});

// ---------------------------------------------------------------- failures before any answer

for (const stream of [false, true]) {
  test(`provider silent past its timeout before answering (${stream ? 'streamed' : 'plain'}): 504 and the record says so`, async () => {
    await matrix('timeout', ALL, stream, { 'x-fake-delay-ms': '2500' }, (m, r, s) => {
      const p = [];
      if (r.status !== 504) p.push(`client status ${r.status}`);
      if (s.status !== 504) p.push(`record status ${s.status}`);
      if (!/timed out/.test(s.error ?? '')) p.push(`record error ${JSON.stringify(s.error)}`);
      return p;
    });
  });

  test(`provider drops the connection before answering (${stream ? 'streamed' : 'plain'}): 502 and the record says so`, async () => {
    await matrix('drop-before', ALL, stream, { 'x-fake-drop': 'before' }, (m, r, s) => {
      const p = [];
      if (r.status !== 502) p.push(`client status ${r.status}`);
      if (s.status !== 502) p.push(`record status ${s.status}`);
      if (!/provider 'fake'|provider 'claude'|provider 'gem'/.test(s.error ?? '')) p.push(`record error ${JSON.stringify(s.error)}`);
      return p;
    });
  });
}

test('a clean stream keeps error null and its terminator', async () => {
  await matrix('clean', ALL, true, {}, (m, r, s) => {
    const p = [];
    if (r.status !== 200 || !r.clean) p.push(`client ${r.status}, clean ${r.clean}`);
    if (!TERMINATOR[m.wire].test(r.body)) p.push('no terminator');
    if (m.wire !== 'raw' && ERROR_EVENT[m.wire].test(r.body)) p.push('an error event in a clean stream');
    if (s.status !== 200 || s.error !== null) p.push(`record ${s.status} ${JSON.stringify(s.error)}`);
    return p;
  });
});

// ---------------------------------------------------------------- the official SDKs

test('the SDKs raise on a cut stream instead of ending it quietly', async () => {
  const headers = { 'x-fake-drop': 'end', 'x-fake-chunks': '6' };
  const openai = h.openaiClient(gw, rec);
  const s1 = await openai.chat.completions.create({ ...OPENAI_BODY('claude/claude-haiku-4-5', true) }, { headers });
  await assert.rejects((async () => { for await (const c of s1) void c; })(), (e) => {
    assert.ok(e instanceof h.OpenAI.APIError, String(e));
    assert.match(e.message, /without its terminator/);
    return true;
  });
  const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0, fetch: rec.fetch });
  const s2 = anthropic.messages.stream(ANTHROPIC_BODY('fake/gpt-4o-mini', true), { headers });
  await assert.rejects(s2.finalMessage(), (e) => {
    assert.ok(e instanceof Anthropic.APIError, String(e));
    assert.match(e.message, /without its terminator/);
    return true;
  });
});

// ---------------------------------------------------------------- the client leaves

test('a client that leaves mid-stream: record 499 and the error says so', async () => {
  const id = h.testId('truth-leave');
  await new Promise((resolve) => {
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'Helicone-Request-Id': id,
        'x-fake-chunks': '20', 'x-fake-chunk-delay-ms': '200' },
    }, (res) => {
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', () => {});
    req.end(JSON.stringify(OPENAI_BODY('fake/gpt-4o-mini', true)));
  });
  const s = await record(id);
  assert.equal(s.status, 499);
  assert.match(s.error ?? '', /client closed the connection/);
});

// ---------------------------------------------------------------- shutdown

test('a stream cut by shutdown_timeout: error event, clean chunked end, record 200 + gateway shutting down', async () => {
  const sdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-truth-stop-'));
  const config = h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '1s', idle_timeout: '60s' },
    providers: providers(), storage: { url: `sqlite:${sdir}/records.db` },
  });
  const g = await h.startGateway(config);
  try {
    const slow = { 'x-fake-chunks': '40', 'x-fake-chunk-delay-ms': '200' };
    const cases = [];
    // One after the other: on a fresh worker, transfers started together
    // to one provider wait for its first connection (see the report).
    for (const name of ['openai native', 'anthropic native', 'openai -> gemini-type']) {
      const m = MODES[name];
      const id = h.testId('truth-stop').replace(/[^A-Za-z0-9-]/g, '-');
      let started;
      const begun = new Promise((r) => { started = r; });
      const answer = call(g.url, m.path(true), m.body(true), { 'Helicone-Request-Id': id, ...slow }, started);
      await begun;
      cases.push({ name, m, id, answer });
    }
    await h.sleep(300); // the streams are under way
    g.proc.kill('SIGTERM');
    const exit = await h.waitExit(g.proc, 6000);
    assert.deepEqual(exit, { code: 0, signal: null }, g.output().slice(-2000));
    // the records are in the store: read them back through a second gateway
    const reader = await h.startGateway({ ...config, server: { ...config.server, shutdown_timeout: '5s' } });
    try {
      for (const c of cases) {
        const r = await c.answer;
        const s = await record(c.id, reader.url);
        const what = `${c.name}: client ${r.status} clean ${r.clean} ${JSON.stringify(r.body.slice(-300))}; record ${s.status} ${JSON.stringify(s.error)}`;
        assert.equal(r.status, 200, what);
        assert.ok(r.clean, `the chunked body did not end cleanly: ${what}`);
        assert.match(r.body, ERROR_EVENT[c.m.wire], what);
        assert.doesNotMatch(r.body, TERMINATOR[c.m.wire], what);
        assert.equal(s.status, 200, what);
        assert.match(s.error ?? '', /gateway is shutting down/, what);
      }
    } finally {
      assert.equal((await reader.stop()).code, 0);
    }
  } finally {
    await g.stop('SIGKILL');
    fs.rmSync(sdir, { recursive: true, force: true });
  }
});
