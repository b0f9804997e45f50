'use strict';
// The response cache and rate limits (SPEC §6, §7), through the OpenAI SDK.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let client;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, { caching: { enabled: true, ttl: 60, max_size: 1000 } }));
  client = h.openaiClient(gw);
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

const ask = (id, extra = {}, headers = {}) => client.chat.completions.create({
  model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: `cache test ${id}` }], ...extra,
}, { headers: { 'x-test-id': id, ...headers } }).withResponse();

test('two identical requests: MISS then HIT, one provider call', async () => {
  const id = h.testId('cache');
  const a = await ask(id);
  const b = await ask(id);
  assert.equal(a.response.headers.get('helicone-cache'), 'MISS');
  assert.equal(b.response.headers.get('helicone-cache'), 'HIT');
  assert.equal(b.response.headers.get('helicone-cache-bucket-idx'), '0');
  assert.deepEqual(b.data, a.data);
  assert.equal((await fake.requestsFor(id)).length, 1);
});

test('key order and white space do not matter', async () => {
  const id = h.testId('canon');
  const body1 = `{"model":"fake/gpt-4o-mini","messages":[{"role":"user","content":"${id}"}],"temperature":0}`;
  const body2 = `{ "temperature" : 0, "messages" : [ { "content" : "${id}", "role" : "user" } ], "model" : "fake/gpt-4o-mini" }`;
  const post = (b) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-test-id': id }, body: b,
  });
  assert.equal((await post(body1)).headers.get('helicone-cache'), 'MISS');
  assert.equal((await post(body2)).headers.get('helicone-cache'), 'HIT');
});

test('a streamed answer is cached and replayed as a stream', async () => {
  const id = h.testId('cache-stream');
  const read = async () => {
    const { data: stream, response } = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `stream ${id}` }],
    }, { headers: { 'x-test-id': id, 'x-fake-reply': 'replayed from the cache' } }).withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return { text, cache: response.headers.get('helicone-cache'), type: response.headers.get('content-type') };
  };
  const first = await read();
  const second = await read();
  assert.equal(first.cache, 'MISS');
  assert.equal(second.cache, 'HIT');
  assert.match(second.type, /text\/event-stream/);
  assert.equal(second.text, 'replayed from the cache');
  assert.equal((await fake.requestsFor(id)).length, 1);
});

test('Cache-Control max-age: the entry expires', async () => {
  const id = h.testId('expiry');
  await ask(id, {}, { 'Cache-Control': 'max-age=1' });
  assert.equal((await ask(id, {}, { 'Cache-Control': 'max-age=1' })).response.headers.get('helicone-cache'), 'HIT');
  await h.sleep(1300);
  assert.equal((await ask(id, {}, { 'Cache-Control': 'max-age=1' })).response.headers.get('helicone-cache'), 'MISS');
});

test('seeds keep entries apart; Helicone-Cache-Enabled: false bypasses', async () => {
  const id = h.testId('seed');
  await ask(id, {}, { 'Helicone-Cache-Seed': 'a' });
  assert.equal((await ask(id, {}, { 'Helicone-Cache-Seed': 'b' })).response.headers.get('helicone-cache'), 'MISS');
  assert.equal((await ask(id, {}, { 'Helicone-Cache-Seed': 'a' })).response.headers.get('helicone-cache'), 'HIT');
  const off = await ask(id, {}, { 'Helicone-Cache-Seed': 'a', 'Helicone-Cache-Enabled': 'false' });
  assert.equal(off.response.headers.get('helicone-cache'), null);
  assert.equal((await fake.requestsFor(id)).length, 3);
});

test('20 concurrent identical requests make one provider call', async () => {
  const id = h.testId('flight');
  const rs = await Promise.all(Array.from({ length: 20 }, () => ask(id, {}, { 'x-fake-delay-ms': '300' })));
  assert.equal((await fake.requestsFor(id)).length, 1);
  const contents = new Set(rs.map((r) => r.data.choices[0].message.content));
  assert.equal(contents.size, 1);
  assert.equal(rs.filter((r) => r.response.headers.get('helicone-cache') === 'MISS').length, 1);
});

test('bring-your-own-key callers never share answers, whatever header carries the key (Azure api-key too)', async () => {
  const id = h.testId('byok-cache');
  const send = (key) => fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'api-key': key, 'x-test-id': id },
    body: JSON.stringify({ model: 'byok/gpt-4o-mini', messages: [{ role: 'user', content: `byok ${id}` }] }),
  });
  const a = await send('key-A');
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('helicone-cache'), 'MISS');
  const b = await send('key-B');
  assert.equal(b.status, 200);
  assert.equal(b.headers.get('helicone-cache'), 'MISS', "B got A's answer from the cache");
  const a2 = await send('key-A');
  assert.equal(a2.headers.get('helicone-cache'), 'HIT');
  const seen = (await fake.requestsFor(id)).map((r) => r.headers['api-key']);
  assert.deepEqual(seen, ['key-A', 'key-B']);
});

test('errors are not cached', async () => {
  const id = h.testId('nocache-err');
  await assert.rejects(ask(id, {}, { 'x-fake-status': '500' }), (e) => e.status === 500);
  const ok = await ask(id);
  assert.equal(ok.response.headers.get('helicone-cache'), 'MISS');
  assert.equal((await fake.requestsFor(id)).length, 2);
});

test('Helicone-RateLimit-Policy per user: the 4th of 3 per minute is a 429, another user passes', async () => {
  const policy = { 'Helicone-RateLimit-Policy': '3;w=60;s=user' };
  const mock = (user) => client.chat.completions.create({
    model: 'mock/echo', messages: [{ role: 'user', content: 'limit me' }],
  }, { headers: { ...policy, 'Helicone-User-Id': user } }).withResponse();
  const user = `u-${process.pid}-${Date.now()}`;
  for (let i = 0; i < 3; i++) {
    const { response } = await mock(user);
    assert.equal(response.headers.get('helicone-ratelimit-limit'), '3');
    assert.equal(response.headers.get('helicone-ratelimit-remaining'), String(2 - i));
  }
  await assert.rejects(mock(user), (e) => {
    assert.equal(e.status, 429);
    assert.ok(Number(e.headers.get('retry-after')) >= 1);
    assert.equal(e.headers.get('helicone-ratelimit-remaining'), '0');
    assert.match(e.headers.get('helicone-ratelimit-policy'), /^3;w=60/);
    return true;
  });
  const other = await mock(`${user}-other`);
  assert.equal(other.response.status, 200);
});

test('a bad Helicone-RateLimit-Policy is a 400', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'mock/echo', messages: [] },
    { headers: { 'Helicone-RateLimit-Policy': '3;w=5' } }), (e) => e.status === 400);
});

test('security.rate_limits.per_ip: requests per minute per address', async () => {
  const limited = await h.startGateway(h.baseConfig(fake, {
    security: { rate_limits: { per_ip: { requests_per_minute: 5 } } },
  }));
  try {
    const c = h.openaiClient(limited);
    for (let i = 0; i < 5; i++) {
      await c.chat.completions.create({ model: 'mock/echo', messages: [{ role: 'user', content: 'x' }] });
    }
    await assert.rejects(c.chat.completions.create({ model: 'mock/echo', messages: [] }),
      (e) => e.status === 429 && e.error?.code === 'rate_limit_exceeded');
  } finally {
    assert.equal((await limited.stop()).code, 0);
  }
});

test('security.max_tokens_per_request: asking for more output is a 400', async () => {
  const capped = await h.startGateway(h.baseConfig(fake, { security: { max_tokens_per_request: 100 } }));
  try {
    const c = h.openaiClient(capped);
    const ok = await c.chat.completions.create({ model: 'mock/echo', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(ok.object, 'chat.completion');
    await assert.rejects(c.chat.completions.create({ model: 'mock/echo', max_completion_tokens: 101, messages: [] }),
      (e) => e.status === 400 && e.error?.code === 'max_tokens_exceeded' && /100 tokens/.test(e.message));
  } finally {
    assert.equal((await capped.stop()).code, 0);
  }
});
