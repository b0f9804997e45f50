'use strict';
// Errors: provider errors passed through, malformed requests, body size
// limit, unknown provider, unreachable and slow providers, broken streams.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./harness');

let fake;
let gw;
let rec;
let client;
let deadPort;

before(async () => {
  fake = await h.startFake();
  deadPort = await h.freePort(); // nothing listens there
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      dead: { base_url: `http://127.0.0.1:${deadPort}/v1`, api_key: h.SECRET, timeout: 2 },
      slow: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 1 },
    },
    security: { max_request_size: '64KB' },
  }));
  rec = h.makeRecorder();
  client = h.openaiClient(gw, rec);
});
after(async () => {
  await gw?.stop();
  await fake?.stop();
});

const chat = (model, headers = {}, extra = {}) => client.chat.completions.create(
  { model, messages: [{ role: 'user', content: 'hi' }], ...extra }, { headers });

/** POST raw bytes to the gateway; resolves { status, headers, body, json }. */
async function rawPost(path, body, headers = {}) {
  const r = await rec.fetch(`${gw.url}${path}`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: text, json };
}

function assertOpenAIError(json, what) {
  assert.ok(json && typeof json.error === 'object', `${what}: not an OpenAI error body: ${JSON.stringify(json)}`);
  assert.equal(typeof json.error.message, 'string', what);
  assert.ok(json.error.message.length > 0, what);
  assert.equal(typeof json.error.type, 'string', what);
  assert.ok('code' in json.error, `${what}: error.code missing`);
}

test('upstream 500 passes through: SDK APIError with the provider status and message', async () => {
  await assert.rejects(chat('fake/gpt-4o-mini', { 'x-fake-status': '500' }), (e) => {
    assert.ok(e instanceof h.OpenAI.APIError, String(e));
    assert.equal(e.status, 500);
    assert.match(e.message, /fake provider failure: status 500/);
    return true;
  });
  const raw = await rawPost('/v1/chat/completions',
    JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [] }), { 'x-fake-status': '500' });
  assert.equal(raw.status, 500);
  assert.deepEqual(raw.json, { error: { message: 'fake provider failure: status 500', type: 'server_error',
    param: null, code: 'fake_failure' } }, 'provider error body altered');
});

test('upstream 429 passes through as 429 with the provider body', async () => {
  await assert.rejects(chat('fake/gpt-4o-mini', { 'x-fake-status': '429' }), (e) => {
    assert.ok(e instanceof h.OpenAI.RateLimitError, String(e));
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    return true;
  });
});

test('malformed JSON body → 400 in OpenAI error shape', async () => {
  const r = await rawPost('/v1/chat/completions', '{"model":');
  assert.equal(r.status, 400);
  assertOpenAIError(r.json, 'malformed JSON');
});

test('missing model → 400', async () => {
  await assert.rejects(client.chat.completions.create({ messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 400, String(e));
    assertOpenAIError(e.error && { error: e.error }, 'missing model');
    return true;
  });
});

test('other malformed bodies answer 400 and the process survives', async () => {
  const bodies = ['', 'null', '[]', '"text"', '42', '{"model":123,"messages":[]}', '{"model":null}',
    '{"model":"fake/gpt-4o-mini","messages":[]', '\u0000\u0001\u0002', '{"model":["fake/x"]}'];
  const statuses = [];
  for (const b of bodies) statuses.push((await rawPost('/v1/chat/completions', b)).status);
  assert.deepEqual(statuses, bodies.map(() => 400), `statuses for ${JSON.stringify(bodies)}`);
  assert.ok(gw.alive(), 'gateway died');
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
});

test('a body under max_request_size passes, one over it → 413', async () => {
  const small = 'word '.repeat(6000); // ~30 KB
  const ok = await chat('fake/gpt-4o-mini', {}, { messages: [{ role: 'user', content: small }] });
  assert.equal(ok.usage.prompt_tokens, 6000);

  const big = JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(100 * 1024) }] });
  const before = await fake.stats();
  const status = await new Promise((resolve, reject) => {
    // Raw request: the gateway may answer and close before reading it all.
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) },
    }, (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end(big);
  });
  assert.equal(status, 413);
  assert.equal((await fake.stats()).received, before.received, 'oversize body reached the provider');
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
});

test('unknown provider prefix → 404 naming the configured providers', async () => {
  await assert.rejects(chat('nope/x'), (e) => {
    assert.ok(e instanceof h.OpenAI.NotFoundError, String(e));
    assert.match(e.message, /fake/);
    assert.match(e.message, /mock/);
    assert.equal(typeof e.error?.type, 'string');
    return true;
  });
});

test('unreachable provider → 502 in OpenAI error shape', async () => {
  const t0 = Date.now();
  const r = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'dead/gpt-4o-mini', messages: [] }));
  assert.equal(r.status, 502);
  assertOpenAIError(r.json, 'unreachable');
  assert.ok(Date.now() - t0 < 3000, 'connect failure took too long');
  await assert.rejects(chat('dead/gpt-4o-mini'), (e) => e.status === 502);
});

test('provider silent longer than its timeout → 504', async () => {
  const id = h.testId('timeout');
  const t0 = Date.now();
  const r = await rawPost('/v1/chat/completions', JSON.stringify({ model: 'slow/gpt-4o-mini', messages: [] }),
    { 'x-fake-delay-ms': '3000', 'x-test-id': id });
  const took = Date.now() - t0;
  assert.equal(r.status, 504);
  assertOpenAIError(r.json, 'timeout');
  assert.ok(took >= 800 && took < 2800, `504 after ${took} ms with timeout: 1`);
  const seen = await h.waitFor(async () => (await fake.requestsFor(id)).find((x) => x.closedEarly), 2000);
  assert.ok(seen, 'upstream request not cancelled after the timeout');
});

test('provider timeout counts idle gaps, not the whole stream', async () => {
  const stream = await chat('slow/gpt-4o-mini', { 'x-fake-reply': 'abcdefgh', 'x-fake-chunks': '8',
    'x-fake-chunk-delay-ms': '300' }, { stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'abcdefgh', 'a 2.7 s stream through a provider with timeout: 1 was cut');
});

test('a provider that drops the connection before answering → 502', async () => {
  await assert.rejects(chat('fake/gpt-4o-mini', { 'x-fake-drop': 'before' }), (e) => {
    assert.equal(e.status, 502, String(e));
    return true;
  });
});

test('a provider that drops mid-stream ends the client stream; the gateway survives', async () => {
  const stream = await chat('fake/gpt-4o-mini',
    { 'x-fake-drop': 'mid', 'x-fake-chunks': '6', 'x-fake-reply': 'aabbccddeeff' }, { stream: true });
  let text = '';
  const t0 = Date.now();
  try {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  } catch { /* an error is an acceptable ending */ }
  assert.ok(Date.now() - t0 < 5000, 'stream hung after the upstream dropped');
  assert.ok('aabbccddeeff'.startsWith(text) && text.length < 12, `unexpected text ${JSON.stringify(text)}`);
  assert.ok(gw.alive(), 'gateway died');
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
  const r = await chat('fake/gpt-4o-mini');
  assert.equal(r.choices[0].message.content, 'Hello from the fake provider.');
});

test('a NUL inside model is refused, never sent upstream under a cut name', async () => {
  const id = h.testId('nulmodel');
  const r = await rawPost('/v1/chat/completions',
    '{"model":"fake/gpt-4o-mini\\u0000evil","messages":[{"role":"user","content":"hi"}]}',
    { 'x-test-id': id });
  assert.equal(r.status, 400, r.body);
  assertOpenAIError(r.json, 'nul model');
  assert.equal(r.json.error.code, 'invalid_model');
  assert.equal((await fake.requestsFor(id)).length, 0);
});

test('raw non-UTF-8 bytes in the path: the error body is still valid UTF-8 JSON', async () => {
  const net = require('node:net');
  for (const target of ['/v1/\xff\xfe', '/nope/\xc0\xaf', '/v1/%FF%FE']) {
    const raw = await new Promise((resolve, reject) => {
      const s = net.connect(gw.port, '127.0.0.1', () => {
        s.end(Buffer.concat([Buffer.from(`GET ${target} HTTP/1.1\r\n`, 'latin1'),
          Buffer.from('Host: x\r\nConnection: close\r\n\r\n')]));
      });
      const parts = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => resolve(Buffer.concat(parts)));
      s.on('error', reject);
    });
    const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
    assert.match(raw.toString('latin1'), /^HTTP\/1\.1 4\d\d /, JSON.stringify(target));
    const text = new TextDecoder('utf-8', { fatal: true }).decode(body); // throws on bad UTF-8
    assertOpenAIError(JSON.parse(text), JSON.stringify(target));
  }
});

test('SIGTERM exits 0 after the error tests', async () => {
  const r = await gw.stop('SIGTERM', 10000);
  assert.equal(r.timedOut, false, 'did not exit within 10 s');
  assert.deepEqual([r.code, r.signal], [0, null], gw.output().slice(-2000));
});

test('the provider key never appears in gateway output or in any error response', async () => {
  assert.deepEqual(await h.findSecretLeaks(gw, [rec]), []);
});
