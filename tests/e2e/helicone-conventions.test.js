'use strict';
// Conventions users copy from Helicone (SPEC §3, §4, §6, §8): the OpenAI SDK
// at a base URL without /v1, `model/provider` strings and comma-separated
// fallback lists, Helicone-Fallbacks in Helicone's own format, and a record
// for every refusal (401, 403) on the LLM routes.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const GATEWAY_KEY = 'tg-helicone-KEY-0123456789';

let fake;
let gw;
let dir;

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-helicone-'));
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      // the same fake under another origin (host name): target-url tells them apart
      second: { base_url: `http://localhost:${fake.port}/v1`, api_key: h.SECRET, timeout: 5 },
      claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5,
        default_model: 'claude-sonnet-4-5' },
    },
    storage: { url: `sqlite:${dir}/records.db` },
    security: {
      require_auth: true,
      api_keys: [{ name: 'dev', key: GATEWAY_KEY, permissions: ['read', 'write'] }],
    },
  }));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const auth = { 'Helicone-Auth': `Bearer ${GATEWAY_KEY}` };
const post = (p, body, headers = {}) => fetch(`${gw.url}${p}`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...auth, ...headers },
  body: JSON.stringify(body),
});
const chat = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

/** The record with this id, once the writer has stored it. */
async function record(id) {
  let r;
  await h.waitFor(async () => {
    const res = await fetch(`${gw.url}/api/v1/requests/${id}`, { headers: auth });
    if (res.status !== 200) return false;
    r = await res.json();
    return true;
  }, 5000);
  return r;
}

// ---------------------------------------------------------------- routes without /v1

test('the OpenAI SDK at a base URL without /v1: chat, streaming, models', async () => {
  const client = new h.OpenAI({ baseURL: gw.url, apiKey: GATEWAY_KEY, maxRetries: 0 });
  const id = h.testId('nov1');
  const r = await client.chat.completions.create(chat('fake/gpt-4o-mini'),
    { headers: { 'x-test-id': id } }).withResponse();
  assert.ok(r.data.choices[0].message.content.length > 0);
  const up = await h.oneRequest(fake, id);
  assert.equal(up.path, '/v1/chat/completions');
  const rec = await record(r.response.headers.get('helicone-id'));
  assert.equal(rec.route, '/v1/chat/completions'); // the canonical route
  assert.equal(rec.status, 200);

  const stream = await client.chat.completions.create({ ...chat('fake/gpt-4o-mini'), stream: true });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);

  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'claude/claude-sonnet-4-5'));
});

test('without /v1: Anthropic Messages answer in their dialect; unknown paths stay 404', async () => {
  const res = await post('/messages', { model: 'claude/claude-sonnet-4-5', max_tokens: 16,
    messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).type, 'message');
  const bad = await post('/messages', { model: 'claude/claude-sonnet-4-5' }, { 'Helicone-Auth': 'Bearer nope' });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).type, 'error'); // Anthropic's error shape
  const none = await post('/no/such/route', {});
  assert.equal(none.status, 404);
});

test('a path whose first segment names a provider stays its pass-through', async () => {
  const id = h.testId('pt');
  const res = await post('/fake/chat/completions', chat('gpt-4o-mini'), { 'x-test-id': id });
  assert.equal(res.status, 200);
  const up = await h.oneRequest(fake, id);
  assert.equal(up.path, '/v1/chat/completions'); // base_url + path, as configured
  const rec = await record(res.headers.get('helicone-id'));
  assert.equal(rec.route, '/{provider}');
});

// ---------------------------------------------------------------- model strings

test('model/provider picks the provider and sends the model without the suffix', async () => {
  const client = new h.OpenAI({ baseURL: gw.baseURL, apiKey: GATEWAY_KEY, maxRetries: 0 });
  const id = h.testId('suffix');
  const r = await client.chat.completions.create(chat('gpt-4o-mini/second'),
    { headers: { 'x-test-id': id } }).withResponse();
  assert.equal(r.response.headers.get('helicone-provider'), 'second');
  const up = await h.oneRequest(fake, id);
  assert.equal(up.body.model, 'gpt-4o-mini');
  const rec = await record(r.response.headers.get('helicone-id'));
  assert.equal(rec.model_requested, 'gpt-4o-mini/second');
  assert.equal(rec.model, 'gpt-4o-mini');
});

test('a comma-separated model list is a fallback chain across dialects', async () => {
  const client = new h.OpenAI({ baseURL: gw.url, apiKey: GATEWAY_KEY, maxRetries: 0 });
  const id = h.testId('list');
  const r = await client.chat.completions.create(chat('gpt-4o-mini/fake,claude-sonnet-4-5/claude'), {
    headers: { 'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-status': '500' },
  }).withResponse();
  assert.equal(r.response.headers.get('helicone-provider'), 'claude');
  assert.equal(r.response.headers.get('helicone-fallback-index'), '1');
  assert.ok(r.data.choices[0].message.content.length > 0);
  const seen = await fake.requestsFor(id);
  assert.deepEqual(seen.map((q) => [q.path, q.body.model]),
    [['/v1/chat/completions', 'gpt-4o-mini'], ['/v1/messages', 'claude-sonnet-4-5']]);
  const rec = await record(r.response.headers.get('helicone-id'));
  assert.equal(rec.fallback_index, 1);
  assert.equal(rec.provider, 'claude');

  // the first entry serving: no fallback, nothing else called
  const id2 = h.testId('list-first');
  const r2 = await client.chat.completions.create(chat('gpt-4o-mini/fake,claude-sonnet-4-5/claude'),
    { headers: { 'x-test-id': id2 } }).withResponse();
  assert.equal(r2.response.headers.get('helicone-provider'), 'fake');
  assert.equal(r2.response.headers.get('helicone-fallback-index'), null);
  assert.equal((await fake.requestsFor(id2)).length, 1);
});

test('a model list on the Anthropic route; bad lists are 400/404 in the client\'s dialect', async () => {
  const id = h.testId('list-msg');
  const ok = await post('/v1/messages', { model: 'claude-x/claude,gpt-4o-mini/fake', max_tokens: 16,
    messages: [{ role: 'user', content: 'hi' }] }, { 'x-test-id': id, 'x-fake-fail-times': '1' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('helicone-provider'), 'fake');
  assert.equal((await ok.json()).type, 'message'); // translated back to the client's dialect

  const cases = [
    ['gpt-4o-mini/fake,', 400, 'invalid_model', /entry 2 .* empty/],
    [Array(11).fill('gpt-4o-mini/fake').join(','), 400, 'invalid_model', /11 entries/],
    ['gpt-4o-mini/fake,gpt-4o/nosuch', 404, 'model_not_found', /nosuch.*names no configured provider/],
  ];
  for (const [model, status, code, msg] of cases) {
    const a = await post('/v1/chat/completions', chat(model));
    assert.equal(a.status, status, model);
    const ab = await a.json();
    assert.equal(ab.error.code, code);
    assert.match(ab.error.message, msg);
    const m = await post('/v1/messages', { model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(m.status, status);
    const mb = await m.json();
    assert.equal(mb.type, 'error'); // Anthropic's shape
    assert.match(mb.error.message, msg);
    const rs = await post('/v1/responses', { model, input: 'hi' });
    assert.equal(rs.status, status);
    assert.match((await rs.json()).error.message, msg);
  }
});

// ---------------------------------------------------------------- Helicone-Fallbacks, Helicone's form

test('Helicone-Fallbacks with target-url: a 500 goes on to the next target, with its headers', async () => {
  const client = new h.OpenAI({ baseURL: gw.url, apiKey: GATEWAY_KEY, maxRetries: 0 });
  const id = h.testId('hfb');
  const fallbacks = [
    { 'target-url': fake.url, onCodes: [{ from: 500, to: 599 }] },
    { 'target-url': `http://localhost:${fake.port}`,
      headers: { 'X-Team': 'blue', Authorization: 'Bearer client-override' } },
  ];
  const r = await client.chat.completions.create(chat('fake/gpt-4o-mini'), {
    headers: { 'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-status': '500',
      'Helicone-Fallbacks': JSON.stringify(fallbacks) },
  }).withResponse();
  assert.equal(r.response.status, 200);
  assert.equal(r.response.headers.get('helicone-provider'), 'second');
  assert.equal(r.response.headers.get('helicone-fallback-index'), '1');
  const seen = await fake.requestsFor(id);
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers['x-team'], undefined);
  assert.equal(seen[1].headers['x-team'], 'blue');
  assert.equal(seen[1].headers.authorization, `Bearer ${h.SECRET}`); // never the client's
  assert.equal(seen[1].body.model, 'gpt-4o-mini');
  const rec = await record(r.response.headers.get('helicone-id'));
  assert.equal(rec.fallback_index, 1);
  assert.equal(rec.provider, 'second');
});

test('Helicone-Fallbacks with target-url serves a model nothing else here would route', async () => {
  const id = h.testId('hfb-model');
  const plain = await post('/v1/chat/completions', chat('house-model-7'));
  assert.equal(plain.status, 404); // no provider serves it by name
  const res = await post('/v1/chat/completions', chat('house-model-7'), {
    'x-test-id': id,
    'Helicone-Fallbacks': JSON.stringify([{ 'target-url': `http://localhost:${fake.port}/v1` }]),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('helicone-provider'), 'second');
  assert.equal((await h.oneRequest(fake, id)).body.model, 'house-model-7');
});

test('Helicone-Fallbacks onCodes: a status outside them reaches the client, with its message recorded', async () => {
  const id = h.testId('hfb-codes');
  const res = await post('/v1/chat/completions', chat('fake/gpt-4o-mini'), {
    'x-test-id': id, 'x-fake-status': '500',
    'Helicone-Fallbacks': JSON.stringify([
      { 'target-url': fake.url, onCodes: [{ from: 400, to: 404 }] },
      { 'target-url': `http://localhost:${fake.port}` },
    ]),
  });
  assert.equal(res.status, 500);
  assert.equal((await fake.requestsFor(id)).length, 1);
  const rec = await record(res.headers.get('helicone-id'));
  assert.equal(rec.status, 500);
  assert.ok(rec.error && rec.error.length > 0);

  // and a 4xx inside them goes on
  const id2 = h.testId('hfb-400');
  const res2 = await post('/v1/chat/completions', chat('fake/gpt-4o-mini'), {
    'x-test-id': id2, 'x-fake-status': '404', 'x-fake-fail-times': '1',
    'Helicone-Fallbacks': JSON.stringify([
      { 'target-url': fake.url, onCodes: [{ from: 400, to: 404 }] },
      { 'target-url': `http://localhost:${fake.port}` },
    ]),
  });
  assert.equal(res2.status, 200);
  assert.equal(res2.headers.get('helicone-fallback-index'), '1');
});

test('a Helicone-Fallbacks header that is not one of the forms is a 400 in the client\'s dialect', async () => {
  const bad = [
    ['not json', /JSON list/],
    ['[]', /JSON list/],
    ['{"target-url": "https://api.openai.com"}', /JSON list/],
    [JSON.stringify([{ 'target-url': 'https://evil.example.com/v1' }]), /matches no configured provider/],
    [JSON.stringify([{ 'target-url': fake.url, onCodes: 'all' }]), /onCodes/],
    [JSON.stringify([{ 'target-url': fake.url }, 'claude/claude-x']), /must all be/],
    [JSON.stringify([7]), /string or an object/],
  ];
  for (const [hv, msg] of bad) {
    const id = h.testId('hfb-bad');
    const a = await post('/v1/chat/completions', chat('fake/gpt-4o-mini'), { 'Helicone-Fallbacks': hv, 'x-test-id': id });
    assert.equal(a.status, 400, hv);
    const ab = await a.json();
    assert.equal(ab.error.code, 'invalid_fallbacks');
    assert.match(ab.error.message, msg);
    const m = await post('/v1/messages', { model: 'claude/claude-x', max_tokens: 8,
      messages: [{ role: 'user', content: 'hi' }] }, { 'Helicone-Fallbacks': hv, 'x-test-id': id });
    assert.equal(m.status, 400, hv);
    const mb = await m.json();
    assert.equal(mb.type, 'error');
    assert.match(mb.error.message, msg);
    assert.equal((await fake.requestsFor(id)).length, 0, 'a refused request reached the provider');
  }
});

// ---------------------------------------------------------------- manual logging

// Helicone's own client, installed apart (it needs openai ^5): tests/e2e/helicone-helpers/
const { HeliconeManualLogger } = require(path.join(__dirname, 'helicone-helpers', 'node_modules', '@helicone', 'helpers'));

const logger = () => new HeliconeManualLogger({ apiKey: GATEWAY_KEY, loggingEndpoint: gw.url });
const rid = () => require('node:crypto').randomUUID();

test('HeliconeManualLogger: an OpenAI call made elsewhere is recorded with tokens, cost, properties', async () => {
  const id = rid();
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'logged elsewhere' }] };
  const out = await logger().logRequest(request, async (recorder) => {
    await h.sleep(30);
    recorder.appendResults({
      id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o-mini-2024-07-18',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200,
        prompt_tokens_details: { cached_tokens: 100 } },
    });
    return 'done';
  }, { 'Helicone-Request-Id': id, 'Helicone-Property-Team': 'blue', 'Helicone-User-Id': 'u-7',
    'Helicone-Session-Id': 's-1' }, 'OPENAI');
  assert.equal(out, 'done');
  const rec = await record(id);
  assert.equal(rec.route, '/oai/v1/log');
  assert.equal(rec.provider, 'openai');
  assert.equal(rec.model, 'gpt-4o-mini-2024-07-18');
  assert.equal(rec.model_requested, 'gpt-4o-mini');
  assert.equal(rec.status, 200);
  assert.equal(rec.prompt_tokens, 1000);
  assert.equal(rec.completion_tokens, 200);
  assert.equal(rec.cached_tokens, 100);
  assert.ok(rec.cost > 0, `cost ${rec.cost}`);
  assert.ok(rec.latency_ms >= 25 && rec.latency_ms < 5000, `latency ${rec.latency_ms}`);
  assert.deepEqual(rec.properties, { Team: 'blue' });
  assert.equal(rec.user_id, 'u-7');
  assert.equal(rec.session_id, 's-1');
  assert.equal(rec.key_name, 'dev');
  assert.equal(rec.request_body.messages[0].content, 'logged elsewhere');
  assert.equal(rec.response_body.choices[0].message.content, 'hello');
});

test('HeliconeManualLogger: a streamed answer logged as text has its usage read from the events', async () => {
  const id = rid();
  const events = [
    { choices: [{ index: 0, delta: { content: 'hel' } }] },
    { choices: [{ index: 0, delta: { content: 'lo' }, finish_reason: 'stop' }] },
    { choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } },
  ].map((e) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'gpt-4o-mini', ...e })}\n\n`);
  const enc = new TextEncoder();
  const stream = new ReadableStream({
    start(c) { for (const e of [...events, 'data: [DONE]\n\n']) c.enqueue(enc.encode(e)); c.close(); },
  });
  await logger().logStream({ model: 'gpt-4o-mini', stream: true, messages: [] }, async (recorder) => {
    recorder.attachStream(stream);
  }, { 'Helicone-Request-Id': id });
  const rec = await record(id);
  assert.equal(rec.route, '/custom/v1/log');
  assert.equal(rec.prompt_tokens, 12);
  assert.equal(rec.completion_tokens, 3);
  assert.equal(rec.model, 'gpt-4o-mini');
  assert.match(rec.response_body, /data: \[DONE\]/);
});

test('HeliconeManualLogger: an Anthropic call, and a failed one with its error', async () => {
  const id = rid();
  await logger().logRequest({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [] }, async (r) => {
    r.appendResults({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5',
      content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn',
      usage: { input_tokens: 50, output_tokens: 7, cache_read_input_tokens: 20 } });
  }, { 'Helicone-Request-Id': id }, 'ANTHROPIC');
  const rec = await record(id);
  assert.equal(rec.route, '/anthropic/v1/log');
  assert.equal(rec.provider, 'anthropic');
  assert.equal(rec.completion_tokens, 7);
  assert.equal(rec.cached_tokens, 20);
  assert.ok(rec.prompt_tokens >= 50);

  // a provider error, posted as it was: status and message in the record
  const id2 = rid();
  const res = await post('/oai/v1/log', {
    providerRequest: { url: 'https://api.openai.com/v1/chat/completions', json: { model: 'gpt-4o' }, meta: { 'Helicone-Property-Run': 'r9' } },
    providerResponse: { status: 429, headers: {}, json: { error: { message: 'Rate limit reached for gpt-4o', type: 'requests' } } },
    timing: { startTime: { seconds: 1700000000, milliseconds: 5 }, endTime: { seconds: 1700000001, milliseconds: 0 } },
  }, { 'Helicone-Request-Id': id2 });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: id2 });
  const rec2 = await record(id2);
  assert.equal(rec2.status, 429);
  assert.equal(rec2.error, 'Rate limit reached for gpt-4o');
  assert.equal(rec2.latency_ms, 995);
  assert.equal(rec2.cost, null);
  assert.equal(rec2.created_at, '2023-11-14T22:13:20.005Z');
  assert.deepEqual(rec2.properties, { Run: 'r9' });
});

test('manual logging: a log of another shape is a 400; without the key a 401', async () => {
  const good = {
    providerRequest: { url: 'x', json: { model: 'gpt-4o' }, meta: {} },
    providerResponse: { status: 200, headers: {}, json: { model: 'gpt-4o' } },
    timing: { startTime: { seconds: 10, milliseconds: 0 }, endTime: { seconds: 11, milliseconds: 0 } },
  };
  const variants = [
    ['not an object', []],
    ['providerRequest', { ...good, providerRequest: 'x' }],
    ['providerRequest.json', { ...good, providerRequest: { url: 'x' } }],
    ['providerRequest.meta', { ...good, providerRequest: { json: {}, meta: { a: 1 } } }],
    ['providerResponse.status', { ...good, providerResponse: { ...good.providerResponse, status: 42 } }],
    ['json or textBody', { ...good, providerResponse: { status: 200 } }],
    ['textBody', { ...good, providerResponse: { status: 200, textBody: 5 } }],
    ['timing.startTime', { ...good, timing: { endTime: good.timing.endTime } }],
    ['milliseconds', { ...good, timing: { ...good.timing, startTime: { seconds: 10, milliseconds: 1000 } } }],
    ['before', { ...good, timing: { startTime: good.timing.endTime, endTime: good.timing.startTime } }],
    ['timeToFirstToken', { ...good, timing: { ...good.timing, timeToFirstToken: 'soon' } }],
    ['provider', { ...good, provider: 7 }],
  ];
  for (const [what, body] of variants) {
    const res = await post('/custom/v1/log', body);
    assert.equal(res.status, 400, what);
    const b = await res.json();
    assert.equal(b.error.code, 'invalid_log');
    if (what !== 'not an object') assert.match(b.error.message, new RegExp(what.replace(/\./g, '\\.')), what);
  }
  const bad = await fetch(`${gw.url}/googleapis/v1/log`, { method: 'POST', body: 'nope{' , headers: auth });
  assert.equal(bad.status, 400);
  assert.equal((await fetch(`${gw.url}/oai/v1/log`, { headers: auth })).status, 405);
  const anon = await fetch(`${gw.url}/oai/v1/log`, { method: 'POST', body: JSON.stringify(good) });
  assert.equal(anon.status, 401);
  assert.equal((await record(anon.headers.get('helicone-id'))).status, 401);
  const ok = await post('/googleapis/v1/log', good);
  assert.equal(ok.status, 200);
});

// ---------------------------------------------------------------- refusals are recorded

test('401 on an LLM route is recorded: error, client address, route, no key', async () => {
  for (const [p, headers, code] of [
    ['/v1/chat/completions', {}, 'missing_api_key'],
    ['/chat/completions', { 'Helicone-Auth': 'Bearer wrong-KEY-secret-987' }, 'invalid_api_key'],
    ['/fake/chat/completions', { Authorization: 'Bearer wrong-KEY-secret-987' }, 'invalid_api_key'],
  ]) {
    const res = await fetch(`${gw.url}${p}`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(chat('fake/gpt-4o-mini')),
    });
    assert.equal(res.status, 401, p);
    assert.equal((await res.json()).error.code, code);
    const rec = await record(res.headers.get('helicone-id'));
    assert.equal(rec.status, 401);
    assert.match(rec.error, /key/);
    assert.equal(rec.client_ip, '127.0.0.1');
    assert.equal(rec.route, p === '/fake/chat/completions' ? '/{provider}' : '/v1/chat/completions');
    assert.equal(rec.key_name, null);
    assert.ok(!JSON.stringify(rec).includes('wrong-KEY-secret-987'), 'the presented key was recorded');
  }
  // not LLM traffic: answered, not recorded
  const api = await fetch(`${gw.url}/api/v1/requests`);
  assert.equal(api.status, 401);
  assert.equal(api.headers.get('helicone-id'), null);
});

test('403 (address not allowed) on an LLM route is recorded', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-helicone-403-'));
  const cfg = (extra) => h.baseConfig(fake, { storage: { url: `sqlite:${d}/records.db` }, ...extra });
  try {
    const shut = await h.startGateway(cfg({ security: { allowed_ips: ['10.0.0.0/8'] } }));
    let id;
    try {
      const res = await fetch(`${shut.baseURL}/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chat('fake/gpt-4o-mini')),
      });
      assert.equal(res.status, 403);
      assert.equal((await res.json()).error.code, 'address_not_allowed');
      id = res.headers.get('helicone-id');
      assert.ok(id);
    } finally {
      assert.equal((await shut.stop()).code, 0);
    }
    const open = await h.startGateway(cfg({}));
    try {
      const rec = await (await fetch(`${open.url}/api/v1/requests/${id}`)).json();
      assert.equal(rec.status, 403);
      assert.match(rec.error, /address/);
      assert.equal(rec.client_ip, '127.0.0.1');
      assert.equal(rec.route, '/v1/chat/completions');
    } finally {
      assert.equal((await open.stop()).code, 0);
    }
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test("a provider's own error message is the record's error on the other routes too", async () => {
  const msgs = [{ role: 'user', content: 'hi' }];
  const calls = [
    ['/v1/responses', { model: 'fake/gpt-4o-mini', input: 'hi' }, '/v1/responses'],
    ['/responses', { model: 'fake/gpt-4o-mini', input: 'hi', stream: true }, '/v1/responses'],
    ['/v1/embeddings', { model: 'fake/text-embedding-3-small', input: 'hi' }, '/v1/embeddings'],
    ['/v1/completions', { model: 'fake/gpt-3.5-turbo-instruct', prompt: 'hi' }, '/v1/completions'],
    ['/v1/messages/count_tokens', { model: 'claude/claude-x', messages: msgs }, '/v1/messages/count_tokens'],
    ['/claude/messages', { model: 'claude-x', max_tokens: 8, messages: msgs }, '/{provider}'],
    ['/passthrough/fake/responses', { model: 'gpt-4o-mini', input: 'hi' }, '/passthrough'],
  ];
  const problems = [];
  for (const status of [503, 429, 404]) {
    for (const [p, body, route] of calls) {
      const res = await post(p, body, { 'x-fake-status': String(status) });
      await res.text();
      const rec = await record(res.headers.get('helicone-id'));
      const want = `fake provider failure: status ${status}`;
      if (res.status !== status || rec.status !== status || rec.error !== want || rec.route !== route) {
        problems.push(`${p} ${status}: client ${res.status}, record ${rec.status} ${rec.route} ${JSON.stringify(rec.error)}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
