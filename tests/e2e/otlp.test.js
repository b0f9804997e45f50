'use strict';
// OpenTelemetry export (observability.otlp, docs/observability.md): a
// collector written here (a node http server that keeps every POST to
// /v1/traces) gets one span per request in OTLP/HTTP JSON, named and
// attributed after the GenAI semantic conventions: a plain and a streamed
// chat completion made with the openai SDK, a provider error and a cache
// hit; a streamed Anthropic message (@anthropic-ai/sdk) and a Gemini
// generateContent (@google/genai). A client's W3C traceparent puts the span
// in its trace, under its parent; a malformed one starts a new trace.
// Neither the provider key nor the prompt is in any span. A collector that answers 500 or never answers
// changes nothing for the requests: they are answered at once, and the
// spans are dropped and counted (tollgate_otlp_spans_total).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const { GoogleGenAI } = require('@google/genai');
const h = require('./harness');

let fake;
before(async () => { fake = await h.startFake(); });
after(async () => { await fake?.stop(); });

const PROMPT = 'the secret prompt text about otters';

/** A collector: keeps every POST; `mode` is 'ok', a status to answer, or
 *  'hang' (reads the body, never answers). */
async function startCollector(mode = 'ok') {
  const c = { posts: [], mode };
  c.server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let json = null;
      try { json = JSON.parse(body); } catch { /* kept as null */ }
      c.posts.push({ path: req.url, method: req.method, headers: req.headers, body, json });
      if (c.mode === 'hang') return;
      res.writeHead(c.mode === 'ok' ? 200 : c.mode, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => c.server.listen(0, '127.0.0.1', resolve));
  c.url = `http://127.0.0.1:${c.server.address().port}`;
  /** Every span received, with its resource's attributes. */
  c.spans = () => c.posts.flatMap((p) => (p.json?.resourceSpans ?? []).flatMap((rs) =>
    rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, resource: rs.resource, scope: ss.scope })))));
  c.close = () => new Promise((resolve) => { c.server.closeAllConnections(); c.server.close(() => resolve()); });
  return c;
}

/** An attribute list as an object of plain values. */
function attrs(list) {
  const o = {};
  for (const { key, value } of list) {
    if ('stringValue' in value) o[key] = value.stringValue;
    else if ('intValue' in value) o[key] = { int: value.intValue };
    else if ('doubleValue' in value) o[key] = { double: value.doubleValue };
    else if ('boolValue' in value) o[key] = value.boolValue;
    else o[key] = value;
  }
  return o;
}

async function metric(gw, re) {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

const exported = (gw) => metric(gw, /^tollgate_otlp_spans_total\{result="exported"\} (\S+)$/m);
const dropped = (gw) => metric(gw, /^tollgate_otlp_spans_total\{result="dropped"\} (\S+)$/m);

function ask(gw, headers = {}, body = {}) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], ...body }),
  });
}

test('one span per request, GenAI conventions, traceparent followed, nothing secret', async () => {
  const col = await startCollector();
  const gw = await h.startGateway(h.baseConfig(fake, {
    caching: { enabled: true },
    observability: { otlp: { endpoint: col.url, service_name: 'gw-under-test',
      headers: { Authorization: 'Bearer otlp-token' } } },
  }));
  try {
    const client = h.openaiClient(gw);
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    // plain, in the client's trace
    const { response: r1 } = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 50, temperature: 0.3,
    }, { headers: { traceparent: `00-${trace}-${parent}-01`, 'x-test-id': 'otlp-tp-1', 'Helicone-User-Id': 'alice',
      'Helicone-Session-Id': 'sess-1', 'Helicone-Property-Team': 'blue' } }).withResponse();
    const id1 = r1.headers.get('helicone-id');
    // streamed, a new trace
    const stream = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], stream: true,
    }, { headers: { 'Helicone-Request-Id': 'otlp-stream-1', 'x-test-id': 'otlp-tp-2' } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.ok(text.length > 0);
    // a provider error
    const r3 = await ask(gw, { 'x-fake-status': '500', 'Helicone-Request-Id': 'otlp-error-1' });
    assert.ok(r3.status >= 500);
    await r3.text();
    // a miss, then a hit
    const cached = { 'Helicone-Cache-Enabled': 'true' };
    const r4 = await ask(gw, { ...cached, 'Helicone-Request-Id': 'otlp-miss-1' }, { temperature: 0 });
    await r4.json();
    const r5 = await ask(gw, { ...cached, 'Helicone-Request-Id': 'otlp-hit-1' }, { temperature: 0 });
    await r5.json();
    assert.equal(r5.headers.get('helicone-cache'), 'HIT');
    // hostile traceparents: each starts a trace of its own
    const bad = [
      `ff-${trace}-${parent}-01`, // version ff
      `00-${trace.toUpperCase()}-${parent}-01`, // upper case
      `00-${'0'.repeat(32)}-${parent}-01`, // all-zero trace id
      `00-${trace}-${'0'.repeat(16)}-01`, // all-zero parent
      `00-${trace}-${parent}-01-extra`, // version 00 is exactly 55 characters
      `00-${trace.slice(1)}-${parent}-01`, // short
      `00-${trace}-${parent.slice(0, 15)}x-01`, // not hex
    ];
    for (let i = 0; i < bad.length; i++) {
      const r = await ask(gw, { traceparent: bad[i], 'Helicone-Request-Id': `otlp-bad-${i}` });
      assert.equal(r.status, 200);
      await r.text();
    }
    // a later version may carry more fields: the parent is followed
    const r6 = await ask(gw, { traceparent: `01-${trace}-${parent}-01-later`, 'Helicone-Request-Id': 'otlp-v1' });
    await r6.text();

    const total = 6 + bad.length;
    await h.waitFor(() => col.spans().length >= total, 10000);
    const spans = col.spans();
    assert.equal(spans.length, total, 'one span per request');
    const byId = Object.fromEntries(spans.map((s) => [attrs(s.attributes)['tollgate.request_id'], s]));

    for (const p of col.posts) {
      assert.equal(p.path, '/v1/traces');
      assert.equal(p.method, 'POST');
      assert.equal(p.headers['content-type'], 'application/json');
      assert.equal(p.headers.authorization, 'Bearer otlp-token');
      assert.ok(!p.body.includes(h.SECRET), 'no provider key in a span');
      assert.ok(!p.body.includes('otters'), 'no prompt text in a span');
      assert.ok(!p.body.includes('sk-client-dummy'), 'no client key in a span');
    }
    const res = attrs(spans[0].resource.attributes);
    assert.equal(res['service.name'], 'gw-under-test');
    assert.match(res['service.version'], /^\d+\.\d+\.\d+/);
    assert.equal(spans[0].scope.name, 'tollgate');

    const s1 = byId[id1];
    assert.ok(s1, 'the plain request has its span');
    assert.equal(s1.traceId, trace);
    assert.equal(s1.parentSpanId, parent);
    assert.match(s1.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(s1.spanId, parent);
    assert.equal(s1.name, 'chat gpt-4o-mini');
    assert.equal(s1.kind, 3, 'CLIENT');
    assert.match(s1.startTimeUnixNano, /^\d{19}$/);
    assert.ok(BigInt(s1.endTimeUnixNano) >= BigInt(s1.startTimeUnixNano));
    assert.ok(Math.abs(Number(BigInt(s1.startTimeUnixNano) / 1000000n) - Date.now()) < 60000);
    assert.equal(s1.status, undefined, 'no error status');
    const a1 = attrs(s1.attributes);
    assert.equal(a1['gen_ai.operation.name'], 'chat');
    assert.equal(a1['gen_ai.provider.name'], 'openai');
    assert.equal(a1['gen_ai.system'], 'openai');
    assert.equal(a1['gen_ai.request.model'], 'gpt-4o-mini');
    assert.equal(a1['gen_ai.response.model'], 'gpt-4o-mini');
    assert.match(a1['gen_ai.response.id'], /^chatcmpl-fake-/);
    assert.deepEqual(a1['gen_ai.request.max_tokens'], { int: '50' });
    assert.deepEqual(a1['gen_ai.request.temperature'], { double: 0.3 });
    assert.ok(Number(a1['gen_ai.usage.input_tokens'].int) > 0);
    assert.ok(Number(a1['gen_ai.usage.output_tokens'].int) > 0);
    assert.equal(a1['server.address'], '127.0.0.1');
    assert.deepEqual(a1['server.port'], { int: String(new URL(fake.url).port) });
    assert.deepEqual(a1['http.response.status_code'], { int: '200' });
    assert.equal(a1['error.type'], undefined);
    assert.equal(a1['tollgate.request_id'], id1);
    assert.equal(a1['tollgate.provider'], 'fake');
    assert.equal(a1['tollgate.model_requested'], 'fake/gpt-4o-mini');
    assert.equal(a1['tollgate.user_id'], 'alice');
    assert.equal(a1['tollgate.session_id'], 'sess-1');
    assert.equal(a1['tollgate.property.team'], 'blue');
    assert.equal(a1['tollgate.stream'], false);
    assert.ok(a1['tollgate.cost_usd'].double > 0);
    assert.ok(Number(a1['tollgate.latency_ms'].int) >= 0);
    assert.ok(Number(a1['tollgate.ttft_ms'].int) >= 0);

    const s2 = byId['otlp-stream-1'];
    const a2 = attrs(s2.attributes);
    assert.match(s2.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(s2.traceId, trace, 'no traceparent: a new trace');
    assert.equal(s2.parentSpanId ?? '', '');
    assert.equal(a2['tollgate.stream'], true);
    assert.match(a2['gen_ai.response.id'], /^chatcmpl-fake-/, 'from the first event');
    assert.equal(a2['gen_ai.response.model'], 'gpt-4o-mini');
    assert.ok(Number(a2['gen_ai.usage.output_tokens'].int) > 0);

    const s3 = byId['otlp-error-1'];
    const a3 = attrs(s3.attributes);
    assert.equal(s3.status.code, 2, 'ERROR');
    assert.equal(typeof s3.status.message, 'string');
    assert.equal(a3['error.type'], String(r3.status));
    assert.deepEqual(a3['http.response.status_code'], { int: String(r3.status) });

    assert.equal(attrs(byId['otlp-miss-1'].attributes)['tollgate.cache'], 'miss');
    const a5 = attrs(byId['otlp-hit-1'].attributes);
    assert.equal(a5['tollgate.cache'], 'hit');
    assert.deepEqual(a5['gen_ai.request.temperature'], { double: 0 });

    const traces = new Set([trace]);
    for (let i = 0; i < bad.length; i++) {
      const s = byId[`otlp-bad-${i}`];
      assert.ok(s, `span of bad traceparent ${i}`);
      assert.ok(!traces.has(s.traceId), `bad traceparent ${i} (${bad[i]}) starts its own trace`);
      assert.equal(s.parentSpanId ?? '', '', `bad traceparent ${i} has no parent`);
      traces.add(s.traceId);
    }
    // the provider is sent the gateway's span as its parent, in the same trace
    const [up1] = await fake.requestsFor('otlp-tp-1');
    assert.equal(up1.headers.traceparent, `00-${trace}-${s1.spanId}-01`);
    const [up2] = await fake.requestsFor('otlp-tp-2');
    assert.equal(up2.headers.traceparent, `00-${s2.traceId}-${s2.spanId}-01`);

    assert.equal(byId['otlp-v1'].traceId, trace);
    assert.equal(byId['otlp-v1'].parentSpanId, parent);

    assert.equal(await exported(gw), total);
    assert.equal(await dropped(gw), 0);
    assert.ok(!gw.output().includes('otlp-token'), 'the collector header is not logged');
  } finally {
    const r = await gw.stop();
    assert.equal(r.code, 0, gw.output());
    assert.ok(!r.sanitizer);
    await col.close();
  }
});

test('Anthropic and Gemini dialects: operation, provider name, ids from the stream and the answer', async () => {
  const col = await startCollector();
  const every = h.everyProviderType(fake, { input: 0.001, output: 0.002 });
  const gw = await h.startGateway(h.baseConfig(fake, { ...every, observability: { otlp: { endpoint: col.url } } }));
  try {
    const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0 });
    const stream = claude.messages.stream({
      model: 'claude/claude-haiku-4-5', max_tokens: 77, temperature: 0.5,
      messages: [{ role: 'user', content: PROMPT }],
    }, { headers: { 'Helicone-Request-Id': 'otlp-anthropic-1' } });
    const final = await stream.finalMessage();
    assert.ok(final.usage.output_tokens > 0);
    const ai = new GoogleGenAI({ apiKey: 'client-gemini-key',
      httpOptions: { baseUrl: gw.url, headers: { 'Helicone-Request-Id': 'otlp-gemini-1' } } });
    const r = await ai.models.generateContent({
      model: 'gemini-2.5-flash', contents: PROMPT, config: { maxOutputTokens: 64, temperature: 0.2 },
    });
    assert.ok(r.text.length > 0);
    await h.waitFor(() => col.spans().length >= 2, 10000);
    const byId = Object.fromEntries(col.spans().map((sp) => [attrs(sp.attributes)['tollgate.request_id'], sp]));
    const sa = byId['otlp-anthropic-1'];
    const a = attrs(sa.attributes);
    assert.equal(sa.name, 'chat claude-haiku-4-5');
    assert.equal(a['gen_ai.provider.name'], 'anthropic');
    assert.match(a['gen_ai.response.id'], /^msg_/, 'from message_start.message');
    assert.equal(a['gen_ai.response.model'], 'claude-haiku-4-5');
    assert.deepEqual(a['gen_ai.request.max_tokens'], { int: '77' });
    assert.deepEqual(a['gen_ai.request.temperature'], { double: 0.5 });
    assert.equal(a['tollgate.stream'], true);
    assert.equal(a['tollgate.route'], '/v1/messages');
    const sg = byId['otlp-gemini-1'];
    const g = attrs(sg.attributes);
    assert.equal(sg.name, 'generate_content gemini-2.5-flash');
    assert.equal(g['gen_ai.operation.name'], 'generate_content');
    assert.equal(g['gen_ai.provider.name'], 'gcp.gemini');
    assert.match(g['gen_ai.response.id'], /^fake-resp-/, 'responseId');
    assert.equal(g['gen_ai.response.model'], 'gemini-2.5-flash', 'modelVersion');
    assert.deepEqual(g['gen_ai.request.max_tokens'], { int: '64' }, 'generationConfig.maxOutputTokens');
    assert.deepEqual(g['gen_ai.request.temperature'], { double: 0.2 });
    for (const p of col.posts) {
      assert.ok(!p.body.includes('otters') && !p.body.includes(h.SECRET) && !p.body.includes('client-gemini-key'));
    }
  } finally {
    const res = await gw.stop();
    assert.equal(res.code, 0, gw.output());
    assert.ok(!res.sanitizer);
    await col.close();
  }
});

/** N requests one after another; each must be answered quickly. */
async function quickRequests(gw, n) {
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const r = await ask(gw);
    assert.equal(r.status, 200);
    await r.json();
    assert.ok(Date.now() - t0 < 1000, `request ${i} answered in ${Date.now() - t0} ms`);
  }
}

test('a collector that answers 500: requests unaffected, spans dropped and counted', async () => {
  const col = await startCollector(500);
  const gw = await h.startGateway(h.baseConfig(fake, {
    observability: { otlp: { endpoint: `${col.url}/v1/traces` } },
  }));
  try {
    await quickRequests(gw, 5);
    await h.waitFor(async () => (await dropped(gw)) === 5, 10000);
    assert.equal(await exported(gw), 0);
    assert.ok(col.posts.length >= 1);
    assert.equal(col.posts[0].path, '/v1/traces', 'an endpoint ending in /v1/traces is kept');
    assert.match(gw.output(), /otlp: 5 span\(s\) dropped: the collector at http:\/\/127\.0\.0\.1:\d+\/v1\/traces failed \(status 500\)/);
  } finally {
    const r = await gw.stop();
    assert.equal(r.code, 0, gw.output());
    assert.ok(!r.sanitizer);
    await col.close();
  }
});

test('a collector that never answers: requests unaffected, spans dropped after the retries, a prompt stop', async () => {
  const col = await startCollector('hang');
  const gw = await h.startGateway(h.baseConfig(fake, {
    observability: { otlp: { endpoint: col.url, timeout: '300ms' } },
  }));
  try {
    await quickRequests(gw, 3);
    // 4 tries of 300 ms with waits of 250, 500 and 1000 ms between them
    await h.waitFor(async () => (await dropped(gw)) === 3, 10000);
    assert.equal(await exported(gw), 0);
    assert.ok(col.posts.length >= 2, 'retried');
    await quickRequests(gw, 2);
  } finally {
    const t0 = Date.now();
    const r = await gw.stop();
    assert.equal(r.code, 0, gw.output());
    assert.ok(!r.sanitizer);
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    await col.close();
  }
});

test('a stop does not wait for an export under way to a collector that never answers', async () => {
  const col = await startCollector('hang');
  const gw = await h.startGateway(h.baseConfig(fake, {
    observability: { otlp: { endpoint: col.url, timeout: '60s' } },
  }));
  await quickRequests(gw, 1);
  await h.waitFor(() => col.posts.length >= 1, 5000); // the export is under way, unanswered
  const t0 = Date.now();
  const r = await gw.stop();
  assert.equal(r.code, 0, gw.output());
  assert.ok(!r.sanitizer);
  assert.ok(Date.now() - t0 < 6000, `stopped in ${Date.now() - t0} ms`);
  assert.match(gw.output(), /otlp: 1 span\(s\) dropped/);
  await col.close();
});

test('observability.otlp.endpoint must be an http or https URL', async () => {
  const { spawnSync } = require('node:child_process');
  const file = h.writeConfig(h.baseConfig(fake, { observability: { otlp: { endpoint: 'ftp://collector:4318' } } }));
  const r = spawnSync(h.BIN, ['--config', file, '--validate'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /observability\.otlp\.endpoint.*expected http:\/\/\.\.\. or https:\/\/\.\.\./);
});
