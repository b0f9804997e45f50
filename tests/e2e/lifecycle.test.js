'use strict';
// Signals: SIGHUP reloads the config without dropping connections (a broken
// file keeps the old config); SIGTERM drains in-flight streams and exits 0.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./harness');

const KEY2 = 'sk-fake2-OTHER-456';
let fake;
let rec;
const gateways = [];

before(async () => {
  fake = await h.startFake();
  rec = h.makeRecorder();
});
after(async () => {
  for (const gw of gateways) await gw.stop('SIGKILL');
  await fake?.stop();
});

async function start(extra) {
  const gw = await h.startGateway(h.baseConfig(fake, extra));
  gateways.push(gw);
  return gw;
}

const ask = (client, model, headers = {}) => client.chat.completions.create(
  { model, messages: [{ role: 'user', content: 'hi' }] }, { headers });

/** Start a slow stream and resolve once its first content chunk arrived. */
async function slowStream(client, reply, chunks, delayMs) {
  const stream = await client.chat.completions.create({
    model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'slow' }],
  }, { headers: { 'x-fake-reply': reply, 'x-fake-chunks': String(chunks), 'x-fake-chunk-delay-ms': String(delayMs) } });
  const it = stream[Symbol.asyncIterator]();
  let text = '';
  for (;;) {
    const { value, done } = await it.next();
    if (done) throw new Error('stream ended before any content');
    text += value.choices[0]?.delta?.content ?? '';
    if (text) break;
  }
  const rest = (async () => {
    try {
      for (;;) {
        const { value, done } = await it.next();
        if (done) return { text, error: null };
        text += value.choices[0]?.delta?.content ?? '';
      }
    } catch (error) {
      return { text, error };
    }
  })();
  return { rest };
}

const newOutput = (gw, from) => gw.output().slice(from);

test('SIGHUP adds a provider without a restart; keep-alive connections and streams survive', async () => {
  const gw = await start();
  const client = h.openaiClient(gw, rec);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await h.rawRequest(`${gw.url}/health`, { agent });
    assert.equal(first.status, 200);

    await assert.rejects(ask(client, 'fake2/gpt-4o-mini'), (e) => e.status === 404);
    const inflight = await slowStream(client, 'stream survives the reload', 10, 150);

    gw.reload(h.baseConfig(fake, { providers: { fake2: { base_url: `${fake.url}/v1`, api_key: KEY2, timeout: 5 } } }));

    const id = h.testId('reload');
    const served = await h.waitFor(async () => {
      try { return await ask(client, 'fake2/gpt-4o-mini', { 'x-test-id': id }); } catch { return null; }
    }, 5000, 100);
    assert.ok(served, `fake2 not usable 5 s after SIGHUP:\n${gw.output().slice(-1500)}`);
    const seen = (await fake.requestsFor(id)).at(-1);
    assert.equal(seen.headers.authorization, `Bearer ${KEY2}`);
    assert.equal(seen.body.model, 'gpt-4o-mini');

    const again = await h.rawRequest(`${gw.url}/health`, { agent });
    assert.equal(again.status, 200);
    assert.equal(again.reusedSocket, true, 'keep-alive connection was dropped by the reload');

    const r = await inflight.rest;
    assert.equal(r.error, null, `in-flight stream broke: ${r.error}`);
    assert.equal(r.text, 'stream survives the reload');
    assert.equal((await ask(client, 'fake/gpt-4o-mini')).choices[0].message.content, 'Hello from the fake provider.');
  } finally {
    agent.destroy();
  }
  assert.deepEqual(await gw.stop(), { code: 0, signal: null, timedOut: false });
});

test('SIGHUP with a broken file is reported and the old config keeps serving', async () => {
  const gw = await start({ providers: { fake2: { base_url: `${fake.url}/v1`, api_key: KEY2, timeout: 5 } } });
  const client = h.openaiClient(gw, rec);
  const broken = {
    'YAML syntax error': 'server:\n  port: [unclosed\nproviders: {fake: \n',
    'unknown key': `${require('node:fs').readFileSync(gw.configPath, 'utf8')}no_such_section:\n  x: 1\n`,
  };
  for (const [what, text] of Object.entries(broken)) {
    const mark = gw.output().length;
    gw.reload(text);
    await h.sleep(700);
    assert.ok(gw.alive(), `${what}: gateway exited:\n${newOutput(gw, mark)}`);
    assert.equal((await fetch(`${gw.url}/health`)).status, 200, what);
    for (const model of ['fake/gpt-4o-mini', 'fake2/gpt-4o-mini']) {
      const r = await ask(client, model);
      assert.equal(r.choices[0].message.content, 'Hello from the fake provider.', `${what}: ${model}`);
    }
    assert.match(newOutput(gw, mark), /error|invalid|fail|reject|keep/i, `${what}: reload failure not reported`);
  }
  assert.deepEqual(await gw.stop(), { code: 0, signal: null, timedOut: false });
});

test('SIGTERM during a slow stream: the stream completes intact and the process exits 0', async () => {
  const gw = await start();
  const client = h.openaiClient(gw, rec);
  const reply = 'every chunk of this reply must arrive';
  const s = await slowStream(client, reply, 10, 200);
  gw.proc.kill('SIGTERM');
  const r = await s.rest;
  assert.equal(r.error, null, `stream broke on SIGTERM: ${r.error}`);
  assert.equal(r.text, reply);
  const exit = await h.waitExit(gw.proc, 5000);
  assert.ok(exit, 'process still running 5 s after its last stream ended');
  assert.deepEqual(exit, { code: 0, signal: null }, gw.output().slice(-2000));
});

test('after SIGTERM new connections are refused while a stream drains', async () => {
  const gw = await start();
  const client = h.openaiClient(gw, rec);
  const s = await slowStream(client, 'draining now', 8, 200);
  gw.proc.kill('SIGTERM');
  await h.sleep(300);
  let outcome;
  try {
    // agent: false = a brand-new connection (an idle pooled one was accepted before SIGTERM).
    outcome = `status ${(await h.rawRequest(`${gw.url}/health`, { agent: false })).status}`;
  } catch (e) {
    outcome = e.code || e.name;
  }
  assert.match(outcome, /ECONNREFUSED|ECONNRESET|status 503/, `new connection after SIGTERM: ${outcome}`);
  const r = await s.rest;
  assert.equal(r.text, 'draining now');
  assert.deepEqual(await h.waitExit(gw.proc, 5000), { code: 0, signal: null });
});

test('SIGTERM waits at most shutdown_timeout for a stream that goes on', async () => {
  const gw = await start({ server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '1s', idle_timeout: '60s' } });
  const client = h.openaiClient(gw, rec);
  const s = await slowStream(client, 'x'.repeat(40), 40, 200); // ~8 s
  const t0 = Date.now();
  gw.proc.kill('SIGTERM');
  const exit = await h.waitExit(gw.proc, 6000);
  const took = Date.now() - t0;
  assert.ok(exit, 'still running 6 s after SIGTERM with shutdown_timeout: 1s');
  assert.ok(took < 4000, `exit took ${took} ms`);
  assert.deepEqual(exit, { code: 0, signal: null }, gw.output().slice(-2000));
  const r = await s.rest;
  assert.ok(r.text.length < 40, 'stream was not cut at shutdown_timeout');
});

test('no provider key in the output of any lifecycle gateway or in any response', async () => {
  const leaks = [];
  for (const gw of gateways) {
    for (const key of [h.SECRET, KEY2]) if (gw.output().includes(key)) leaks.push(`${key} in output of :${gw.port}`);
  }
  await rec.settle();
  for (const e of rec.seen) {
    for (const key of [h.SECRET, KEY2]) {
      if ((JSON.stringify(e.headers) + e.body).includes(key)) leaks.push(`${key} in response from ${e.url}`);
    }
  }
  assert.ok(gateways.length >= 5);
  assert.deepEqual(leaks, []);
});
