'use strict';
// One failure policy for attempts (src/proxy/attempt.c): the decision to
// retry, fall back or give the failure to the client is made once, from one
// classification, so the answer never depends on which callback saw it.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

test('a 429 asking to wait longer than the retry maximum, nothing to fall back to: the client gets it', async () => {
  const id = h.testId('ra-long');
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', 'x-test-id': id,
      'x-fake-status': '429', 'x-fake-retry-after': '30',
      'Helicone-Retry-Enabled': 'true', 'Helicone-Retry-Max-Timeout': '200',
    },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const body = await r.json();
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '30');
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.equal((await fake.requestsFor(id)).length, 1);
});
