'use strict';
// Streaming relay: reassembly, usage chunks, chunk-by-chunk timing, many
// concurrent streams, and client aborts reaching the upstream.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let rec;
let client;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake));
  rec = h.makeRecorder();
  client = h.openaiClient(gw, rec);
});
after(async () => {
  await gw?.stop();
  await fake?.stop();
});

/** Read a chat stream; returns { text, chunks, contentChunks, usage, times }. */
async function readStream(stream, t0 = Date.now()) {
  const out = { text: '', chunks: [], contentChunks: 0, usage: null, times: [], finish: null };
  for await (const c of stream) {
    out.chunks.push(c);
    if (c.usage) out.usage = c.usage;
    const ch = c.choices?.[0];
    if (ch?.delta?.content) {
      out.text += ch.delta.content;
      out.contentChunks++;
      out.times.push(Date.now() - t0);
    }
    if (ch?.finish_reason) out.finish = ch.finish_reason;
  }
  out.end = Date.now() - t0;
  return out;
}

test('a streamed completion reassembles to what the provider sent, chunk by chunk', async () => {
  const reply = 'The quick brown fox jumps over the lazy dog';
  const id = h.testId('stream');
  const { data: stream, response } = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'tell me' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': reply, 'x-fake-chunks': '7' } }).withResponse();
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.match(response.headers.get('helicone-id') ?? '', /^[0-9a-f-]{36}$/i);
  const r = await readStream(stream);
  assert.equal(r.text, reply);
  assert.equal(r.contentChunks, 7, 'content chunks were merged or split');
  assert.equal(r.finish, 'stop');
  for (const c of r.chunks) assert.match(c.model, /^(fake\/)?gpt-4o-mini$/);
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.model, 'gpt-4o-mini');
  assert.equal(seen.body.stream, true);
  assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`);
  assert.equal(seen.finished, true);
});

test('usage is requested upstream and hidden from a client that did not ask for it', async () => {
  const id = h.testId('usage-hidden');
  const stream = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a b c' }],
  }, { headers: { 'x-test-id': id } });
  const r = await readStream(stream);
  assert.equal(r.text, 'Hello from the fake provider.');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.stream_options?.include_usage, true, 'gateway did not ask for usage');
  const extra = r.chunks.filter((c) => c.usage || c.choices.length === 0);
  assert.deepEqual(extra, [], 'usage chunk leaked to a client that did not ask');
});

test('a stream passes as the provider framed it, less only the usage chunk the client did not ask for; the record holds what the client got', async () => {
  const id = h.testId('crlf');
  const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'helicone-request-id': id, 'x-test-id': id,
      'x-fake-eol': 'crlf', 'x-fake-chunks': '4', 'x-fake-reply': 'one two three four' },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: 'a b c' }] }),
  });
  assert.equal(r.status, 200);
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.stream_options?.include_usage, true, 'gateway did not ask for usage');
  // every event as the fake wrote it: CRLF line ends, "usage":null kept
  const events = r.body.split('\r\n\r\n');
  assert.equal(events.pop(), '', 'the stream ends with a whole event');
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((e) => {
    assert.match(e, /^data: \{[^\r\n]*\}$/);
    return JSON.parse(e.slice(6));
  });
  assert.equal(chunks.length, 6); // role, 4 content chunks, finish
  for (const c of chunks) {
    assert.equal(c.usage, null);
    assert.equal(c.choices.length, 1);
  }
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), 'one two three four');
  const stored = await h.storedRecord(gw, id);
  assert.equal(stored.response_body, r.body, 'the record holds the bytes the client was sent');
  assert.equal(stored.completion_tokens, 4, 'the hidden usage chunk was read');
});

test('a provider error event mid-stream reaches the client as sent, and the record keeps its message', async () => {
  const id = h.testId('error-event');
  const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'helicone-request-id': id,
      'x-fake-drop': 'error', 'x-fake-chunks': '6' },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: 'a b c' }] }),
  });
  assert.equal(r.status, 200);
  assert.match(r.body, /^data: \{"error":\{"message":"The server had an error while processing your request\.","type":"server_error"\}\}\n\n/m);
  const stored = await h.storedRecord(gw, id);
  assert.match(stored.error ?? '', /The server had an error while processing your request/);
  assert.equal(stored.response_body, r.body);
});

test('a client asking include_usage gets the provider usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'one two three four' }],
  }, { headers: { 'x-fake-reply': 'five six' } });
  const r = await readStream(stream);
  assert.equal(r.text, 'five six');
  assert.deepEqual(r.usage, { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 });
});

test('chunks are relayed as produced: the first arrives long before the stream ends', async () => {
  const t0 = Date.now();
  const stream = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'slowly' }],
  }, { headers: { 'x-fake-reply': 'abcdefghijklmnopqrst', 'x-fake-chunks': '10', 'x-fake-chunk-delay-ms': '200' } });
  const r = await readStream(stream, t0);
  assert.equal(r.text, 'abcdefghijklmnopqrst');
  assert.ok(r.end >= 2000, `stream ended after ${r.end} ms, expected ~2200`);
  assert.ok(r.times[0] < r.end - 1000, `first chunk at ${r.times[0]} ms, end at ${r.end} ms`);
  assert.ok(r.times[9] - r.times[0] > 1000, `chunks arrived in a burst: ${r.times}`);
});

test('64 concurrent streams each arrive intact and unmixed', async () => {
  const N = 64;
  const runs = Array.from({ length: N }, async (_, i) => {
    const reply = Array.from({ length: 12 }, (_, k) => `s${i}w${k}`).join(' ');
    const stream = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: `stream ${i}` }],
    }, { headers: { 'x-fake-reply': reply, 'x-fake-chunks': '8', 'x-fake-chunk-delay-ms': '20' } });
    const r = await readStream(stream);
    return { i, reply, got: r.text, ids: new Set(r.chunks.map((c) => c.id)) };
  });
  const results = await Promise.all(runs);
  const bad = results.filter((x) => x.got !== x.reply || x.ids.size !== 1);
  assert.deepEqual(bad.map((x) => `#${x.i}: ${JSON.stringify(x.got)} ids=${x.ids.size}`), []);
  const ok = await fetch(`${gw.url}/health`);
  assert.equal(ok.status, 200);
});

test('a client that aborts mid-stream ends the upstream request at once', async () => {
  const id = h.testId('abort-mid');
  const ac = new AbortController();
  const stream = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'long' }],
  }, { signal: ac.signal, headers: { 'x-test-id': id, 'x-fake-chunks': '50', 'x-fake-chunk-delay-ms': '100' } });
  const tAbort = await h.abortAtFirstContent(stream, ac);
  assert.ok(tAbort > 0, 'no content chunk arrived');
  const seen = await h.waitFor(async () => (await fake.requestsFor(id)).find((r) => r.closedEarly || r.finished), 4000);
  assert.ok(seen, 'upstream request still running 4 s after the abort');
  assert.equal(seen.closedEarly, true, 'upstream stream ran to completion after the client left');
  assert.ok(seen.closedAt - tAbort < 1000, `upstream closed ${seen.closedAt - tAbort} ms after the abort`);
});

test('a client that leaves before the reply starts ends the upstream request', async () => {
  const id = h.testId('abort-before');
  const ac = new AbortController();
  const t0 = Date.now();
  const p = client.chat.completions.create({
    model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'wait' }],
  }, { signal: ac.signal, headers: { 'x-test-id': id, 'x-fake-delay-ms': '3000' } });
  p.catch(() => {});
  const arrived = await h.waitFor(async () => (await fake.requestsFor(id)).length > 0, 2000);
  assert.ok(arrived, 'request never reached the fake');
  await h.sleep(Math.max(0, 300 - (Date.now() - t0)));
  const tAbort = Date.now();
  ac.abort();
  await assert.rejects(p, h.OpenAI.APIUserAbortError);
  const seen = await h.waitFor(async () => (await fake.requestsFor(id)).find((r) => r.closedEarly || r.finished), 4000);
  assert.ok(seen, 'upstream request still open 4 s after the abort');
  assert.equal(seen.closedEarly, true, 'upstream request was not cancelled');
  assert.ok(seen.closedAt - tAbort < 1000, `upstream closed ${seen.closedAt - tAbort} ms after the abort`);
});

test('after the aborts nothing is left in flight and the gateway still serves', async () => {
  const idle = await h.waitFor(async () => (await fake.stats()).inFlight === 0, 3000);
  assert.ok(idle, `fake still has requests in flight: ${JSON.stringify(await fake.stats())}`);
  const r = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'still there' }],
  });
  assert.equal(r.choices[0].message.content, 'Hello from the fake provider.');
});

test('a fresh worker: concurrent streams to a plain-HTTP provider do not queue behind the first', async () => {
  // One worker, no connection yet: every call starts while the first
  // connection is new. Each stream lasts ~2.4 s; all their headers must come
  // before the first stream ends (they waited for it, with curl's PIPEWAIT).
  const cold = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 1, shutdown_timeout: '5s' },
  }));
  try {
    const t0 = Date.now();
    const one = async () => {
      const r = await fetch(`${cold.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-fake-chunks': '6', 'x-fake-chunk-delay-ms': '400' },
        body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      });
      const headersAt = Date.now() - t0;
      const text = await r.text();
      return { status: r.status, headersAt, doneAt: Date.now() - t0, done: text.includes('[DONE]') };
    };
    const runs = await Promise.all([one(), one(), one(), one()]);
    const firstEnd = Math.min(...runs.map((x) => x.doneAt));
    for (const x of runs) {
      assert.equal(x.status, 200);
      assert.ok(x.done);
      assert.ok(x.headersAt < firstEnd, `a stream's headers came at ${x.headersAt} ms, after the first stream ended at ${firstEnd} ms`);
    }
  } finally {
    assert.equal((await cold.stop()).code, 0);
  }
});

test('SIGTERM exits 0 after the streaming tests', async () => {
  const r = await gw.stop('SIGTERM', 10000);
  assert.equal(r.timedOut, false, 'did not exit within 10 s');
  assert.deepEqual([r.code, r.signal], [0, null], gw.output().slice(-2000));
});

test('the provider key never appears in gateway output or in any streamed response', async () => {
  assert.deepEqual(await h.findSecretLeaks(gw, [rec]), []);
});
