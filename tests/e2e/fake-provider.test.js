'use strict';
// The fake provider on its own, driven by the openai SDK directly (no
// gateway): if these fail, the gateway tests cannot be trusted.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { OpenAI, startFake, testId, waitFor, sleep } = require('./harness');

let fake;
let client;

before(async () => {
  fake = await startFake();
  client = new OpenAI({ baseURL: fake.baseURL, apiKey: 'sk-direct', maxRetries: 0, timeout: 10000 });
});
after(async () => { await fake?.stop(); });

test('fake: plain chat completion with deterministic usage and echoed model', async () => {
  const id = testId('fake-plain');
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'say three words' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'one two three' } });
  assert.equal(r.model, 'gpt-4o-mini');
  assert.equal(r.choices[0].message.content, 'one two three');
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  const [seen] = await fake.requestsFor(id);
  assert.equal(seen.headers.authorization, 'Bearer sk-direct');
  assert.equal(seen.body.model, 'gpt-4o-mini');
  assert.equal(seen.finished, true);
});

test('fake: stream with usage chunk and [DONE]', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi there' }],
  }, { headers: { 'x-fake-reply': 'abcdefghij', 'x-fake-chunks': '4' } });
  let text = '';
  let usage = null;
  let n = 0;
  for await (const c of stream) {
    n++;
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, 'abcdefghij');
  assert.equal(n, 1 + 4 + 1 + 1);
  assert.deepEqual(usage, { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 });
});

test('fake: error status, 429 retry-after, embeddings (base64), completions, responses, models', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'm', messages: [] }, { headers: { 'x-fake-status': '500' } }),
    (e) => e instanceof OpenAI.APIError && e.status === 500 && /fake provider failure/.test(e.message));
  const r429 = await fetch(`${fake.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'x-fake-status': '429', 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(r429.status, 429);
  assert.equal(r429.headers.get('retry-after'), '1');

  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a b', 'c'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, 8);
  assert.equal(e.usage.prompt_tokens, 3);

  const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'x y' },
    { headers: { 'x-fake-reply': 'done' } });
  assert.equal(c.choices[0].text, 'done');

  const resp = await client.responses.create({ model: 'gpt-4o-mini', input: 'hello' },
    { headers: { 'x-fake-reply': 'resp text' } });
  assert.equal(resp.output_text, 'resp text');

  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
});

test('fake: peer closing mid-stream and before the reply is seen as closedEarly', async () => {
  const id = testId('fake-abort');
  const ac = new AbortController();
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }],
  }, { signal: ac.signal, headers: { 'x-test-id': id, 'x-fake-chunks': '50', 'x-fake-chunk-delay-ms': '100' } });
  try {
    for await (const c of stream) { if (c.choices[0]?.delta?.content) ac.abort(); }
  } catch { /* the SDK may end quietly or throw on abort */ }
  const seen = await waitFor(async () => (await fake.requestsFor(id)).find((r) => r.closedEarly), 1000);
  assert.ok(seen, 'mid-stream close not detected');

  const id2 = testId('fake-abort-before');
  const ac2 = new AbortController();
  const t0 = Date.now();
  const p = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] },
    { signal: ac2.signal, headers: { 'x-test-id': id2, 'x-fake-delay-ms': '3000' } });
  await sleep(300);
  ac2.abort();
  await assert.rejects(p);
  const seen2 = await waitFor(async () => (await fake.requestsFor(id2)).find((r) => r.closedEarly), 1500);
  assert.ok(seen2, 'close before the reply not detected');
  assert.ok(seen2.closedAt - t0 < 1500, `noticed after ${seen2.closedAt - t0} ms`);
});

test('fake: x-fake-drop mid truncates the stream, before drops the connection', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }],
  }, { headers: { 'x-fake-drop': 'mid', 'x-fake-chunks': '6', 'x-fake-reply': 'aabbccddeeff' } });
  let text = '';
  try {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  } catch { /* a broken stream may throw */ }
  assert.equal(text, 'aabbcc');
  await assert.rejects(client.chat.completions.create({ model: 'm', messages: [] },
    { headers: { 'x-fake-drop': 'before' } }), OpenAI.APIConnectionError);
  const s = await fake.stats();
  assert.equal(s.inFlight, 0);
});
