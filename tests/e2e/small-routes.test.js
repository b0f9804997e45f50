'use strict';
// OpenAI's small routes (SPEC §3): GET /v1/models/{id}, POST /v1/embeddings
// to a Gemini-type provider (batchEmbedContents), and /v1/completions and
// /v1/embeddings to providers that cannot take them (a 400 naming the route).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let client;
let rec;

before(async () => {
  rec = h.makeRecorder();
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      fake: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5, default_model: 'gpt-4o-mini', models: ['gpt-4o', 'text-*'] },
      gem: { type: 'gemini', base_url: fake.url, api_key: h.SECRET, timeout: 5, models: ['gemini-*'] },
      claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5 },
    },
  }));
  client = h.openaiClient(gw, rec);
});
after(async () => {
  // the provider key never reaches a client nor the log
  const leaks = gw ? await h.findSecretLeaks(gw, [rec]) : [];
  const stopped = await gw?.stop();
  await fake?.stop();
  assert.equal(stopped?.code, 0);
  assert.deepEqual(leaks, [], 'the provider key leaked');
});

test('models.retrieve: listed ids, bare names that resolve, 404 in OpenAI\'s shape', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.ok(ids.includes('fake/gpt-4o'), ids.join());
  for (const id of ['fake/gpt-4o', 'fake/gpt-4o-mini', 'mock/echo']) {
    const m = await client.models.retrieve(id);
    assert.deepEqual({ id: m.id, object: m.object }, { id, object: 'model' });
    assert.equal(typeof m.created, 'number');
  }
  assert.equal((await client.models.retrieve('fake/gpt-4o')).owned_by, 'fake');
  // a bare name the router resolves (the fake's models list, a gemini-* family)
  assert.equal((await client.models.retrieve('gpt-4o')).owned_by, 'fake');
  assert.equal((await client.models.retrieve('gemini-2.5-flash')).owned_by, 'gem');
  await assert.rejects(client.models.retrieve('no-such-model-anywhere'), (err) => {
    assert.equal(err.status, 404);
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /no-such-model-anywhere/);
    return true;
  });
  const r = await fetch(`${gw.url}/v1/models/fake%2Fgpt-4o`, { method: 'POST' });
  assert.equal(r.status, 405);
});

test('embeddings.create to a Gemini-type provider goes as batchEmbedContents', async () => {
  const id = h.testId();
  const one = await client.embeddings.create({
    model: 'gem/gemini-embedding-001', input: 'one two three four', encoding_format: 'float',
  }, { headers: { 'x-test-id': id } });
  assert.equal(one.object, 'list');
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].object, 'embedding');
  assert.equal(one.data[0].index, 0);
  assert.equal(one.data[0].embedding.length, 8);
  assert.ok(one.usage.prompt_tokens > 0, 'local token count');
  assert.equal(one.usage.total_tokens, one.usage.prompt_tokens);

  // an array, dimensions, and the SDK's default encoding (base64, decoded by the SDK)
  const many = await client.embeddings.create({
    model: 'gemini-embedding-001', input: ['alpha beta', 'gamma', 'delta epsilon zeta'], dimensions: 4,
  }, { headers: { 'x-test-id': id } });
  assert.equal(many.data.length, 3);
  assert.deepEqual(many.data.map((d) => d.index), [0, 1, 2]);
  for (const d of many.data) assert.equal(d.embedding.length, 4);

  const sent = await fake.requestsFor(id);
  assert.equal(sent.length, 2);
  assert.match(sent[0].path, /\/models\/gemini-embedding-001:batchEmbedContents$/);
  assert.equal(sent[0].headers['x-goog-api-key'], h.SECRET);
  assert.deepEqual(sent[0].body, { requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'one two three four' }] } }] });
  assert.deepEqual(sent[1].body.requests.map((r) => [r.content.parts[0].text, r.outputDimensionality]),
    [['alpha beta', 4], ['gamma', 4], ['delta epsilon zeta', 4]]);

  // the same vectors the fake made, whichever the encoding
  const raw = await (await fetch(`${gw.baseURL}/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gem/gemini-embedding-001', input: ['alpha beta'], dimensions: 4, encoding_format: 'base64' }),
  })).json();
  assert.equal(typeof raw.data[0].embedding, 'string');
  const buf = Buffer.from(raw.data[0].embedding, 'base64');
  const floats = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
  assert.deepEqual(floats, many.data[0].embedding);
});

test('embeddings: token arrays and bad fields to Gemini are a clear 400', async () => {
  const bad = [
    [{ model: 'gem/gemini-embedding-001', input: [[1, 2, 3]] }, /token arrays/],
    [{ model: 'gem/gemini-embedding-001', input: [1, 2, 3] }, /token arrays/],
    [{ model: 'gem/gemini-embedding-001', input: [] }, /non-empty array/],
    [{ model: 'gem/gemini-embedding-001', input: 'x', dimensions: -1 }, /dimensions/],
    [{ model: 'gem/gemini-embedding-001', input: 'x', encoding_format: 'hex' }, /encoding_format/],
  ];
  for (const [body, why] of bad) {
    await assert.rejects(client.embeddings.create(body), (err) => {
      assert.equal(err.status, 400, JSON.stringify(body));
      assert.match(err.message, why);
      return true;
    });
  }
});

test('completions and embeddings to providers that cannot take them: 400 naming the route', async () => {
  const id = h.testId();
  await assert.rejects(client.completions.create({ model: 'claude/claude-haiku-4-5', prompt: 'hi' },
    { headers: { 'x-test-id': id } }), (err) => {
    assert.equal(err.status, 400);
    assert.match(err.message, /\/v1\/completions goes to OpenAI-type providers; provider 'claude' is of type anthropic/);
    return true;
  });
  await assert.rejects(client.completions.create({ model: 'gem/gemini-2.5-flash', prompt: 'hi' },
    { headers: { 'x-test-id': id } }), (err) => {
    assert.equal(err.status, 400);
    assert.match(err.message, /\/v1\/completions .*'gem' is of type gemini/);
    return true;
  });
  await assert.rejects(client.embeddings.create({ model: 'claude/claude-haiku-4-5', input: 'hi' },
    { headers: { 'x-test-id': id } }), (err) => {
    assert.equal(err.status, 400);
    assert.match(err.message, /\/v1\/embeddings goes to OpenAI-type providers and Gemini-type ones/);
    return true;
  });
  assert.deepEqual(await fake.requestsFor(id), []);
  // to an OpenAI-type provider both still pass through
  const c = await client.completions.create({ model: 'fake/gpt-3.5-turbo-instruct', prompt: 'say hi' });
  assert.equal(c.object, 'text_completion');
  const e = await client.embeddings.create({ model: 'fake/text-embedding-3-small', input: 'hi there' });
  assert.equal(e.data.length, 1);
});
