'use strict';
// Core routing through the gateway: provider prefixes, key injection, BYOK,
// Helicone headers, the mock provider, health, models, pass-through, and the
// other OpenAI routes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./harness');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let fake;
let gw;
let rec;
let client;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      fake: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5,
        models: ['gpt-4o-mini', 'text-embedding-3-small'] },
    },
  }));
  rec = h.makeRecorder();
  client = h.openaiClient(gw, rec);
});
after(async () => {
  await gw?.stop();
  await fake?.stop();
});

test('chat completion via fake/gpt-4o-mini: answer, usage, key injection, Helicone headers', async () => {
  const id = h.testId('plain');
  const requestId = crypto.randomUUID();
  const { data, response } = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini',
    messages: [{ role: 'user', content: 'hello there gateway' }],
  }, {
    headers: {
      'x-test-id': id, 'x-fake-reply': 'four words of reply',
      'Helicone-Request-Id': requestId, 'Helicone-Property-Team': 'e2e',
      'Helicone-User-Id': 'user-1', 'Helicone-Session-Id': 'sess-1',
    },
  }).withResponse();

  assert.equal(response.status, 200);
  assert.equal(data.choices[0].message.content, 'four words of reply');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.match(data.model, /^(fake\/)?gpt-4o-mini$/);
  assert.equal(data.usage.prompt_tokens, 3);
  assert.equal(data.usage.completion_tokens, 4);
  assert.equal(data.usage.total_tokens, 7);
  assert.equal(response.headers.get('helicone-id'), requestId, 'Helicone-Request-Id not echoed');
  assert.match(response.headers.get('helicone-provider') ?? '', /fake/i);

  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.body.model, 'gpt-4o-mini', 'provider prefix not removed upstream');
  assert.deepEqual(seen.body.messages, [{ role: 'user', content: 'hello there gateway' }]);
  assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`);
  const helicone = Object.keys(seen.headers).filter((k) => k.startsWith('helicone-'));
  assert.deepEqual(helicone, [], 'helicone-* headers reached the provider');
  assert.equal(seen.headers['x-fake-reply'], 'four words of reply', 'ordinary headers not forwarded');
});

test('without Helicone-Request-Id each response gets a fresh UUID Helicone-Id', async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const { response } = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
    }).withResponse();
    ids.push(response.headers.get('helicone-id'));
  }
  assert.match(ids[0] ?? '', UUID_RE);
  assert.match(ids[1] ?? '', UUID_RE);
  assert.notEqual(ids[0], ids[1]);
});

test('mock provider answers plain and streamed without calling any upstream', async () => {
  const before = await fake.stats();

  const { data, response } = await client.chat.completions.create({
    model: 'mock/anything', messages: [{ role: 'user', content: 'ping pong' }],
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(typeof data.choices[0].message.content, 'string');
  assert.ok(data.choices[0].message.content.length > 0, 'empty mock answer');
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0, JSON.stringify(data.usage));
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: 'mock/anything', stream: true, messages: [{ role: 'user', content: 'ping' }],
  });
  let text = '';
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert.ok(chunks >= 2, `only ${chunks} chunks`);
  assert.ok(text.length > 0, 'empty mock stream');

  // The raw SSE body ends with the [DONE] sentinel.
  const raw = await client.chat.completions.create({
    model: 'mock/anything', stream: true, messages: [{ role: 'user', content: 'ping' }],
  }).asResponse();
  assert.match(raw.headers.get('content-type') ?? '', /^text\/event-stream/);
  const body = await raw.text();
  assert.match(body, /^data: /m);
  assert.ok(body.trimEnd().endsWith('data: [DONE]'), `stream does not end with [DONE]: ${body.slice(-200)}`);

  const after = await fake.stats();
  assert.equal(after.received, before.received, 'mock request reached the fake provider');
});

test('BYOK: a provider without api_key forwards the client Authorization unchanged', async () => {
  const id = h.testId('byok');
  const own = h.openaiClient(gw, rec, { apiKey: 'sk-client-OWN' });
  const r = await own.chat.completions.create({
    model: 'byok/gpt-4o-mini', messages: [{ role: 'user', content: 'mine' }],
  }, { headers: { 'x-test-id': id } });
  assert.equal(r.choices[0].message.content, 'Hello from the fake provider.');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.headers.authorization, 'Bearer sk-client-OWN');
  assert.equal(seen.body.model, 'gpt-4o-mini');

  // ... while a provider with a key never sees the client's key.
  const id2 = h.testId('keyed');
  await own.chat.completions.create({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-test-id': id2 } });
  const seen2 = await h.oneRequest(fake, id2);
  assert.equal(seen2.headers.authorization, `Bearer ${h.SECRET}`);
  assert.ok(!JSON.stringify(seen2.headers).includes('sk-client-OWN'), 'client key leaked upstream');
});

test('GET and HEAD /health answer 200 {"status":"ok"}', async () => {
  const g = await rec.fetch(`${gw.url}/health`);
  assert.equal(g.status, 200);
  assert.deepEqual(await g.json(), { status: 'ok' });
  const hd = await rec.fetch(`${gw.url}/health`, { method: 'HEAD' });
  assert.equal(hd.status, 200);
});

test('GET /v1/models lists mock and the configured provider models in OpenAI list format', async () => {
  const { data: page, response } = await client.models.list().withResponse();
  assert.equal(response.status, 200);
  const raw = await rec.fetch(`${gw.baseURL}/models`).then((r) => r.json());
  assert.equal(raw.object, 'list');
  const models = page.data;
  assert.ok(models.length > 0);
  for (const m of models) {
    assert.equal(typeof m.id, 'string');
    assert.equal(m.object, 'model');
    assert.equal(typeof m.owned_by, 'string');
  }
  const ids = models.map((m) => m.id);
  assert.ok(ids.some((i) => i.startsWith('mock/')), `no mock/ model in ${ids}`);
  assert.ok(ids.some((i) => /(^|\/)gpt-4o-mini$/.test(i)), `configured fake models missing: ${ids}`);
  assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids}`);
});

test('raw pass-through /fake/models and /passthrough/fake/models reach upstream /v1/models with the key', async () => {
  for (const prefix of ['/fake', '/passthrough/fake']) {
    const id = h.testId('pass');
    const pc = h.openaiClient({ baseURL: `${gw.url}${prefix}` }, rec);
    const { data: page, response } = await pc.models.list({ headers: { 'x-test-id': id } }).withResponse();
    assert.equal(response.status, 200, prefix);
    assert.ok(page.data.some((m) => m.id === 'gpt-4o-mini'), `${prefix}: ${JSON.stringify(page.data)}`);
    const seen = await h.oneRequest(fake, id);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.path, '/v1/models', prefix);
    assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`, prefix);
  }
});

test('raw pass-through POST keeps body and upstream status as they are', async () => {
  const id = h.testId('pass-post');
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw one' }] });
  const r = await rec.fetch(`${gw.url}/fake/chat/completions`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-test-id': id, 'x-fake-reply': 'raw answer' },
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).choices[0].message.content, 'raw answer');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.body.model, 'gpt-4o-mini');
  assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`);

  const e = await rec.fetch(`${gw.url}/passthrough/fake/chat/completions`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-fake-status': '418' },
  });
  assert.equal(e.status, 418);
  assert.equal((await e.json()).error.message, 'fake provider failure: status 418');
});

test('embeddings, completions and responses go to the fake provider', async () => {
  const id = h.testId('embed');
  const emb = await client.embeddings.create({ model: 'fake/text-embedding-3-small', input: 'hello embedding world' },
    { headers: { 'x-test-id': id } });
  assert.equal(emb.data.length, 1);
  assert.equal(emb.data[0].embedding.length, 8);
  assert.equal(emb.usage.prompt_tokens, 3);
  const seenE = await h.oneRequest(fake, id);
  assert.equal(seenE.path, '/v1/embeddings');
  assert.equal(seenE.body.model, 'text-embedding-3-small');
  assert.equal(seenE.headers.authorization, `Bearer ${h.SECRET}`);

  const id2 = h.testId('compl');
  const c = await client.completions.create({ model: 'fake/gpt-3.5-turbo-instruct', prompt: 'say it' },
    { headers: { 'x-test-id': id2, 'x-fake-reply': 'said' } });
  assert.equal(c.choices[0].text, 'said');
  assert.equal(c.usage.total_tokens, 3);
  const seenC = await h.oneRequest(fake, id2);
  assert.equal(seenC.path, '/v1/completions');
  assert.equal(seenC.body.model, 'gpt-3.5-turbo-instruct');

  const id3 = h.testId('resp');
  const r = await client.responses.create({ model: 'fake/gpt-4o-mini', input: 'respond please' },
    { headers: { 'x-test-id': id3, 'x-fake-reply': 'responded' } });
  assert.equal(r.output_text, 'responded');
  const seenR = await h.oneRequest(fake, id3);
  assert.equal(seenR.path, '/v1/responses');
  assert.equal(seenR.body.model, 'gpt-4o-mini');
});

test('SIGTERM on an idle gateway exits 0', async () => {
  const r = await gw.stop('SIGTERM', 10000);
  assert.equal(r.timedOut, false, 'did not exit within 10 s');
  assert.deepEqual([r.code, r.signal], [0, null], gw.output().slice(-2000));
});

test('the provider key never appears in gateway output or in any response', async () => {
  const leaks = await h.findSecretLeaks(gw, [rec]);
  assert.deepEqual(leaks, []);
  assert.ok(rec.seen.length >= 10, `only ${rec.seen.length} responses recorded`);
});
