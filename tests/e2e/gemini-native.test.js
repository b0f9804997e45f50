'use strict';
// Gemini's native API through the gateway (SPEC §3): the official
// @google/genai SDK and plain HTTP against POST
// /v1beta/models/{model}:generateContent and :streamGenerateContent, to a
// Gemini-type provider (the fake). The body passes unchanged, the key is
// injected as x-goog-api-key, usage comes from usageMetadata, errors are in
// Gemini's shape, and records, cache and limits work as on the other routes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { GoogleGenAI } = require('@google/genai');
const h = require('./harness');

let fake;
let gw;
let dir;
let ai;

const MODEL = 'gemini-2.5-flash';
const PRICE = { input: 0.0003, output: 0.0025, cached_input: 0.00003 }; // USD per 1,000 tokens

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-gemini-'));
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      // a bare origin: the gateway adds Gemini's /v1beta
      gem: { type: 'gemini', base_url: fake.url, api_key: h.SECRET, timeout: 5 },
      gbyok: { type: 'gemini', base_url: `${fake.url}/v1beta`, models: ['byok-*'] },
    },
    security: { max_tokens_per_request: 1000 },
    storage: { url: `sqlite:${dir}/records.db` },
    cost_tracking: { pricing: { [MODEL]: PRICE } },
  }));
  ai = new GoogleGenAI({ apiKey: 'client-gemini-key', httpOptions: { baseUrl: gw.url } });
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const withHeaders = (headers) => new GoogleGenAI({
  apiKey: 'client-gemini-key', httpOptions: { baseUrl: gw.url, headers },
});

const post = (p, body, headers = {}) => fetch(`${gw.url}${p}`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

async function record(id) {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${gw.url}/api/v1/requests/${id}`);
    if (r.status === 200) return r.json();
    await h.sleep(50);
  }
  throw new Error(`no record ${id}`);
}

test('@google/genai generateContent: native call, key injected, usage and cost recorded', async () => {
  const sid = h.testId('gnative');
  const r = await withHeaders({ 'x-test-id': sid, 'x-fake-reply': 'native gemini says hi', 'x-fake-cache-read': '3' })
    .models.generateContent({
      model: MODEL,
      contents: 'hello gemini',
      config: { systemInstruction: 'be brief', maxOutputTokens: 64, temperature: 0.2 },
    });
  assert.equal(r.text, 'native gemini says hi');
  assert.equal(r.candidates[0].finishReason, 'STOP');
  const [seen] = await fake.requestsFor(sid);
  assert.equal(seen.path.split('?')[0], `/v1beta/models/${MODEL}:generateContent`);
  assert.equal(seen.headers['x-goog-api-key'], h.SECRET);
  assert.equal(seen.headers.authorization, undefined);
  assert.equal(seen.body.contents[0].parts[0].text, 'hello gemini');
  assert.equal(seen.body.systemInstruction.parts[0].text, 'be brief');
  assert.equal(seen.body.generationConfig.maxOutputTokens, 64);

  const u = r.usageMetadata;
  const rec = await record(r.sdkHttpResponse.headers['helicone-id']);
  assert.equal(rec.provider, 'gem');
  assert.equal(rec.model, MODEL);
  assert.equal(rec.route, '/v1beta/models/{model}:generateContent');
  assert.equal(rec.prompt_tokens, u.promptTokenCount);
  assert.equal(rec.completion_tokens, u.candidatesTokenCount);
  assert.equal(rec.cached_tokens, 3);
  const expected = ((u.promptTokenCount - 3) * PRICE.input + 3 * PRICE.cached_input
    + u.candidatesTokenCount * PRICE.output) / 1000;
  assert.ok(Math.abs(rec.cost - expected) < 1e-12, `cost ${rec.cost} != ${expected}`);
});

// The model is in the URL, so every model is a URL of its own. Each worker
// keeps a few parsed provider URLs; with more in flight at once than it
// keeps, the rest go as plain strings, and a kept one is replaced only once
// no call uses it. Whichever way, each call must reach its own path.
test('twenty models in flight at once: each call reaches its own URL', async () => {
  const sid = h.testId('gurls');
  const models = Array.from({ length: 20 }, (_, i) => `gemini-url-${i}`);
  const call = (model, delay) => post(`/v1beta/models/${model}:generateContent`,
    { contents: [{ parts: [{ text: `to ${model}` }] }] },
    { 'x-goog-api-key': 'client-gemini-key', 'x-test-id': sid, 'x-fake-delay-ms': String(delay),
      'x-fake-reply': `from ${model}` });
  const all = await Promise.all(models.map((m) => call(m, 300)));
  // then one at a time, in another order: kept URLs are replaced
  for (const m of [...models].reverse()) all.push(await call(m, 0));
  for (const [i, r] of all.entries()) {
    assert.equal(r.status, 200);
    const m = models[i < 20 ? i : 39 - i];
    assert.equal((await r.json()).candidates[0].content.parts[0].text, `from ${m}`);
  }
  const seen = await fake.requestsFor(sid);
  assert.equal(seen.length, 40);
  for (const r of seen) {
    const m = r.path.match(/\/models\/([^/:]+):generateContent/)[1];
    assert.equal(r.body.contents[0].parts[0].text, `to ${m}`);
  }
  assert.deepEqual([...new Set(seen.map((r) => r.path.split('?')[0]))].sort(),
    models.map((m) => `/v1beta/models/${m}:generateContent`).sort());
});

test('@google/genai generateContentStream: SSE relayed event by event, usage from the last event', async () => {
  const sid = h.testId('gstream');
  const stream = await withHeaders({
    'x-test-id': sid, 'Helicone-Property-Sid': sid, 'x-fake-reply': 'one two three four five six', 'x-fake-chunks': '3',
  })
    .models.generateContentStream({ model: MODEL, contents: 'stream please' });
  let text = '';
  let events = 0;
  let last;
  for await (const chunk of stream) {
    text += chunk.text ?? '';
    events++;
    last = chunk;
  }
  assert.equal(text, 'one two three four five six');
  assert.equal(events, 3);
  const [seen] = await fake.requestsFor(sid);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`);
  let mine;
  for (let i = 0; i < 100 && !mine; i++) {
    const list = await (await fetch(`${gw.url}/api/v1/requests?property.Sid=${sid}`)).json();
    mine = list.data[0];
    if (!mine) await h.sleep(50);
  }
  assert.ok(mine, 'the stream is recorded');
  assert.equal(mine.route, '/v1beta/models/{model}:streamGenerateContent');
  assert.equal(mine.completion_tokens, last.usageMetadata.candidatesTokenCount);
  assert.equal(mine.prompt_tokens, last.usageMetadata.promptTokenCount);
});

test('streamGenerateContent without alt=sse: the JSON array is relayed and its usage read', async () => {
  const sid = h.testId('garray');
  const body = { contents: [{ role: 'user', parts: [{ text: 'array please' }] }] };
  const r = await post(`/v1beta/models/${MODEL}:streamGenerateContent`, body,
    { 'x-test-id': sid, 'x-fake-reply': 'a b c d', 'x-fake-chunks': '2', 'x-goog-api-key': 'client-key' });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /application\/json/);
  const arr = await r.json();
  assert.equal(arr.length, 2);
  assert.equal(arr.map((e) => e.candidates[0].content.parts[0].text).join(''), 'a b c d');
  const rec = await record(r.headers.get('helicone-id'));
  assert.equal(rec.completion_tokens, arr[1].usageMetadata.candidatesTokenCount);
  assert.equal(rec.prompt_tokens, arr[1].usageMetadata.promptTokenCount);
});

test('the body passes byte for byte; a provider/ prefix in the path picks the provider', async () => {
  const sid = h.testId('gbytes');
  const raw = '{ "contents" : [ {"parts":[{"text":"exact bytes"}]} ],\n  "safetySettings": [] }';
  const r = await post(`/v1beta/models/gem/${MODEL}:generateContent`, raw, { 'x-test-id': sid });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('helicone-provider'), 'gem');
  const [seen] = await fake.requestsFor(sid);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:generateContent`);
  assert.equal(seen.bodyBytes, Buffer.byteLength(raw));
  assert.deepEqual(seen.body, JSON.parse(raw));
});

test('credentials: ?key= is dropped for a configured key; bring-your-own-key passes it through', async () => {
  let sid = h.testId('gkey');
  let r = await post(`/v1beta/models/${MODEL}:generateContent?key=client-secret&foo=1`,
    { contents: [{ parts: [{ text: 'k' }] }] }, { 'x-test-id': sid });
  assert.equal(r.status, 200);
  let [seen] = await fake.requestsFor(sid);
  assert.deepEqual(seen.query, { foo: '1' });
  assert.equal(seen.headers['x-goog-api-key'], h.SECRET);

  sid = h.testId('gbyok');
  r = await post('/v1beta/models/byok-model:generateContent?key=client-secret',
    { contents: [{ parts: [{ text: 'k' }] }] }, { 'x-test-id': sid, 'x-goog-api-key': 'client-header-key' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('helicone-provider'), 'gbyok');
  [seen] = await fake.requestsFor(sid);
  assert.deepEqual(seen.query, { key: 'client-secret' });
  assert.equal(seen.headers['x-goog-api-key'], 'client-header-key');
});

test('errors come in Gemini\'s shape: provider errors as sent, the gateway\'s own with code and status', async () => {
  // the provider's 429 reaches the SDK as an error with its status
  await assert.rejects(
    withHeaders({ 'x-fake-status': '429', 'x-fake-retry-after': '0' }).models.generateContent({ model: MODEL, contents: 'x' }),
    (e) => { assert.equal(e.status, 429); return true; });

  const cases = [
    [`/v1beta/models/${MODEL}:countTokens`, {}, 404, 'NOT_FOUND'],
    ['/v1beta/models/no-such-model:generateContent', {}, 404, 'NOT_FOUND'],
    ['/v1beta/models/fake/gpt-4o-mini:generateContent', { contents: [] }, 400, 'INVALID_ARGUMENT'],
    [`/v1beta/models/${MODEL}:generateContent`, '{"contents": [', 400, 'INVALID_ARGUMENT'],
    [`/v1beta/models/${MODEL}:generateContent`, { contents: [], generationConfig: { maxOutputTokens: 5000 } }, 400, 'INVALID_ARGUMENT'],
    ['/v1beta/models/bad%20name:generateContent', {}, 400, 'INVALID_ARGUMENT'],
  ];
  for (const [p, body, status, gstatus] of cases) {
    const r = await post(p, body);
    assert.equal(r.status, status, p);
    const e = (await r.json()).error;
    assert.equal(e.code, status, p);
    assert.equal(e.status, gstatus, p);
    assert.equal(typeof e.message, 'string');
  }
});

test('the cache keys on the model in the path', async () => {
  const sid = h.testId('gcache');
  const body = { contents: [{ parts: [{ text: `cache me ${sid}` }] }] };
  const hdr = { 'x-test-id': sid, 'Helicone-Cache-Enabled': 'true' };
  const a = await post(`/v1beta/models/${MODEL}:generateContent`, body, hdr);
  const b = await post(`/v1beta/models/${MODEL}:generateContent`, body, hdr);
  const c = await post('/v1beta/models/gemini-2.5-pro:generateContent', body, hdr);
  assert.equal(a.headers.get('helicone-cache'), 'MISS');
  assert.equal(b.headers.get('helicone-cache'), 'HIT');
  assert.equal(c.headers.get('helicone-cache'), 'MISS');
  assert.deepEqual(await b.json(), await a.json());
  assert.equal((await fake.requestsFor(sid)).length, 2);
});
