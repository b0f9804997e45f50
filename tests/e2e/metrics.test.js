'use strict';
// GET /metrics after real traffic: request counts, tokens (streamed usage
// included), upstream errors, in Prometheus text format.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let client;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake));
  client = h.openaiClient(gw);
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

const metric = (text, re) => {
  const m = text.match(re);
  return m ? Number(m[1]) : null;
};

test('requests, tokens and upstream errors are counted', async () => {
  const messages = [{ role: 'user', content: 'count these four words' }];
  await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages },
    { headers: { 'x-fake-reply': 'one two three' } });
  const stream = await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages, stream: true },
    { headers: { 'x-fake-reply': 'a b c d e' } });
  for await (const _ of stream) { /* drain */ }
  await assert.rejects(client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages },
    { headers: { 'x-fake-status': '503' } }), (e) => e.status === 503);

  const res = await fetch(`${gw.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const text = await res.text();
  assert.equal(metric(text, /tollgate_requests_total\{provider="fake",model="gpt-4o-mini",status="200"\} (\d+)/), 2);
  assert.equal(metric(text, /tollgate_requests_total\{provider="fake",model="gpt-4o-mini",status="503"\} (\d+)/), 1);
  // the fake counts words: 4 prompt words per request, 3 + 5 completion words
  assert.equal(metric(text, /tollgate_tokens_total\{provider="fake",model="gpt-4o-mini",type="completion"\} (\d+)/), 8);
  assert.equal(metric(text, /tollgate_tokens_total\{provider="fake",model="gpt-4o-mini",type="prompt"\} (\d+)/), 8);
  assert.equal(metric(text, /tollgate_upstream_errors_total\{provider="fake",kind="status_5xx"\} (\d+)/), 1);
  assert.equal(metric(text, /tollgate_request_duration_seconds_count\{provider="fake"\} (\d+)/), 3);
  assert.match(text, /# TYPE tollgate_time_to_first_token_seconds histogram/);
  assert.equal(metric(text, /tollgate_log_records_dropped_total (\d+)/), 0);
});
