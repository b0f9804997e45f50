'use strict';
// Retries (providers.<name>.retries, Helicone-Retry-*) and fallbacks
// (routing.fallback_chain, Helicone-Fallbacks), SPEC §4 and §6.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let client;

before(async () => {
  fake = await h.startFake();
  const deadPort = await h.freePort(); // nothing listens there
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      flaky: { base_url: `${fake.url}/v1`, api_key: h.SECRET, retries: 2 },
      dead: { base_url: `http://127.0.0.1:${deadPort}/v1`, default_model: 'gpt-dead' },
      backup: { base_url: `${fake.url}/v1`, api_key: h.SECRET, default_model: 'backup-model' },
    },
    routing: { fallback_chain: ['dead', 'backup'] },
  }));
  client = h.openaiClient(gw);
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

const messages = [{ role: 'user', content: 'hello' }];

test('Helicone-Retry-Enabled: a provider failing twice, then answering', async () => {
  const id = h.testId('retry-hdr');
  const { data, response } = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages }, {
    headers: {
      'x-test-id': id, 'x-fake-fail-times': '2', 'x-fake-status': '503',
      'Helicone-Retry-Enabled': 'true', 'Helicone-Retry-Min-Timeout': '50', 'Helicone-Retry-Max-Timeout': '200',
    },
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal((await fake.requestsFor(id)).length, 3);
});

test('providers.<name>.retries: the same with no header', async () => {
  const id = h.testId('retry-cfg');
  const data = await client.chat.completions.create({ model: 'flaky/gpt-4o-mini', messages }, {
    headers: { 'x-test-id': id, 'x-fake-fail-times': '2' },
  });
  assert.equal(data.object, 'chat.completion');
  assert.equal((await fake.requestsFor(id)).length, 3);
});

test('retries and the chain exhausted: the last provider\'s error passes through', async () => {
  const id = h.testId('retry-out');
  await assert.rejects(client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages }, {
    headers: {
      'x-test-id': id, 'x-fake-fail-times': '9', 'x-fake-status': '500',
      'Helicone-Retry-Enabled': 'true', 'Helicone-Retry-Num': '1', 'Helicone-Retry-Min-Timeout': '20',
    },
  }), (e) => e.status === 500 && /fake provider failure/.test(e.message));
  // fake is not in routing.fallback_chain, so the whole chain follows it (SPEC §4):
  // fake twice (one retry), dead (unreachable), backup twice.
  const seen = await fake.requestsFor(id);
  assert.deepEqual(seen.map((r) => r.body.model),
    ['gpt-4o-mini', 'gpt-4o-mini', 'backup-model', 'backup-model']);
});

test('a failing provider falls to the next of routing.fallback_chain, with its default model', async () => {
  const id = h.testId('chain');
  const { data, response } = await client.chat.completions.create({ model: 'dead/gpt-dead', messages }, {
    headers: { 'x-test-id': id },
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('helicone-provider'), 'backup');
  assert.equal(response.headers.get('helicone-fallback-index'), '1');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.model, 'backup-model');
  assert.equal(data.model, 'backup-model');
});

test('a 429 moves on through Helicone-Fallbacks', async () => {
  const id = h.testId('fallbacks-hdr');
  const { response } = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages }, {
    headers: {
      'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-status': '429',
      'Helicone-Fallbacks': JSON.stringify(['byok/gpt-4o-fallback']),
    },
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('helicone-provider'), 'byok');
  assert.equal(response.headers.get('helicone-fallback-index'), '1');
  const seen = await fake.requestsFor(id);
  assert.equal(seen.length, 2);
  assert.equal(seen[1].body.model, 'gpt-4o-fallback');
});

test('a stream whose first attempt fails is retried before anything is sent', async () => {
  const id = h.testId('retry-stream');
  const stream = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages, stream: true }, {
    headers: {
      'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-reply': 'streamed after a retry',
      'Helicone-Retry-Enabled': 'true', 'Helicone-Retry-Min-Timeout': '20',
    },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'streamed after a retry');
  assert.equal((await fake.requestsFor(id)).length, 2);
});

test('a bad Helicone-Fallbacks header is a 400', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages }, {
    headers: { 'Helicone-Fallbacks': 'not json' },
  }), (e) => e.status === 400);
});

test('a client that leaves during the backoff stops the retries', async () => {
  const id = h.testId('retry-abort');
  const ctl = new AbortController();
  const p = client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages }, {
    signal: ctl.signal,
    headers: {
      'x-test-id': id, 'x-fake-fail-times': '9', 'Helicone-Retry-Enabled': 'true',
      'Helicone-Retry-Min-Timeout': '2000', 'Helicone-Retry-Max-Timeout': '2000',
    },
  });
  await h.sleep(300);
  ctl.abort();
  await assert.rejects(p);
  await h.sleep(2500);
  assert.equal((await fake.requestsFor(id)).length, 1, 'the gateway retried for a client that had gone');
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
});
