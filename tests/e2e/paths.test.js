'use strict';
// Paths sent to providers never leave the provider's base path (issue 14,
// docs/routing.md "Paths sent to providers"): pass-through paths
// (/{provider}/…, /passthrough/{provider}/…), the native Gemini route's
// model, a Gemini model in a translated request and an Azure deployment, in
// every encoded form of "..", are refused with 400 invalid_path (or served
// at a path still under the base), and the fake provider never sees a
// request outside a base path — so never one with the provider key on it.
// Requests go over a raw socket: no client library normalises them first.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./harness');

let fake;
let gw;

// Each provider's base path at the fake: everything the fake sees must be below one.
const BASES = ['/v1', '/gbase/v1beta', '/az'];

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      openai: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5 },
      gem: { type: 'gemini', base_url: `${fake.url}/gbase/v1beta`, api_key: h.SECRET, timeout: 5 },
      az: { type: 'azure', base_url: `${fake.url}/az`, api_key: h.SECRET, timeout: 5 },
    },
  }));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

/** One request with the target exactly as written; resolves { status, body, json }. */
function raw(method, target, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(gw.port, '127.0.0.1');
    const chunks = [];
    let head = `${method} ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body !== undefined) {
      head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
    }
    // no half-close: the gateway takes a client's EOF for leaving
    sock.on('connect', () => sock.write(head + '\r\n' + (body ?? '')));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      let payload = text.slice(text.indexOf('\r\n\r\n') + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, text.indexOf('\r\n\r\n')))) {
        let out = '';
        for (;;) {
          const eol = payload.indexOf('\r\n');
          const n = parseInt(payload.slice(0, eol), 16);
          if (!n) break;
          out += payload.slice(eol + 2, eol + 2 + n);
          payload = payload.slice(eol + 4 + n);
        }
        payload = out;
      }
      let json = null;
      try { json = JSON.parse(payload); } catch { /* not JSON */ }
      resolve({ status, body: payload, json });
    });
  });
}

const chat = (model, id) => JSON.stringify({
  model, messages: [{ role: 'user', content: `hello ${id}` }],
});
const gemini = (id) => JSON.stringify({ contents: [{ role: 'user', parts: [{ text: `hi ${id}` }] }] });

/** A path decoded once, '\' as '/', ';' parameters cut: the most a lenient server does. */
function lenient(p) {
  const decoded = p.replace(/%([0-9a-fA-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
  return decoded.replace(/\\/g, '/').split('/').map((s) => s.split(';')[0]);
}

/** Every request the fake saw is below a base path and has no dot-segment. */
async function assertNothingEscaped() {
  for (const r of await fake.requests()) {
    const p = r.path.split('?')[0];
    assert.ok(BASES.some((b) => p === b || p.startsWith(`${b}/`)),
      `the fake saw ${r.method} ${r.path} (outside every base path)`);
    const segs = lenient(p);
    assert.ok(!segs.some((s) => /^[. ]*\.[. ]*$/.test(s) || s.includes('\0')),
      `the fake saw a dot-segment or NUL: ${r.path}`);
  }
}

const TRAVERSALS = [
  '/../../etc/passwd',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/.%2e/.%2e/etc/passwd',
  '/%2e./%2e./etc/passwd',
  '/%2E%2E%2F%2E%2E%2Fetc/passwd',
  '/..%2f..%2fetc/passwd',
  '/..%5c..%5cetc/passwd',
  '/\\..\\..\\etc\\passwd',
  '/chat/../../../etc/passwd',
  '/./chat/completions',
  '/chat/./completions',
  '/..;/..;/etc/passwd',
  '/%2e%2e;x/etc/passwd',
  '/..%00/etc/passwd',
  '/chat%00/completions',
  '/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
  '/%ef%bc%8e%ef%bc%8e/etc/passwd',
  '/...%20/etc/passwd',
  '/x/..',
  '/x/%2e',
];

for (const prefix of ['/openai', '/passthrough/openai', '/az']) {
  test(`pass-through ${prefix}: every form of "..", encoded slashes, NUL → 400 invalid_path`, async () => {
    for (const t of TRAVERSALS) {
      for (const method of ['GET', 'POST']) {
        const r = await raw(method, prefix + t, method === 'POST' ? { body: chat('gpt-4o-mini', t) } : {});
        assert.equal(r.status, 400, `${method} ${prefix}${t}: ${r.status} ${r.body}`);
        assert.equal(r.json?.error?.code, 'invalid_path', `${prefix}${t}: ${r.body}`);
        assert.ok(!r.body.includes(h.SECRET));
      }
    }
    await assertNothingEscaped();
  });
}

test('pass-through: a query cannot add a fragment or a path; double slashes stay under the base', async () => {
  // a '#' in the target ends the URL it is appended to: refused, here or by the HTTP reader
  for (const t of ['/openai/models?x=1#/../../etc/passwd', '/openai/models#/../../../etc/passwd',
    '/openai/x%23/..']) {
    const r = await raw('GET', t);
    assert.equal(r.status, 400, `${t}: ${r.status} ${r.body}`);
  }
  // empty segments cannot climb: served below the base as written
  const id = h.testId('dslash');
  const r = await raw('GET', '/openai//models', { headers: { 'x-test-id': id } });
  assert.notEqual(r.status, 400, r.body);
  const [seen] = await fake.requestsFor(id);
  assert.equal(seen.path, '/v1//models');
  await assertNothingEscaped();
});

test('legit pass-through paths and queries still work, with the key injected', async () => {
  const id = h.testId('legit');
  let r = await raw('POST', '/openai/chat/completions?foo=bar&x=%2e%2e%2F..',
    { body: chat('gpt-4o-mini', id), headers: { 'x-test-id': id } });
  assert.equal(r.status, 200, r.body);
  r = await raw('GET', '/passthrough/openai/models?limit=5', { headers: { 'x-test-id': id } });
  assert.equal(r.status, 200, r.body);
  assert.ok(r.json.data.length > 0);
  r = await raw('POST', '/openai/chat/completions%3Bv=1', { body: chat('gpt-4o-mini', id), headers: { 'x-test-id': id } });
  const seen = await fake.requestsFor(id);
  assert.deepEqual(seen.map((s) => s.path), [
    '/v1/chat/completions?foo=bar&x=%2e%2e%2F..', '/v1/models?limit=5', '/v1/chat/completions%3Bv=1']);
  for (const s of seen) assert.equal(s.headers.authorization, `Bearer ${h.SECRET}`);
  // double encoding is a literal: "%252e%252e" is the text "%2e%2e", a name
  const id2 = h.testId('dbl');
  await raw('GET', '/openai/%252e%252e/models', { headers: { 'x-test-id': id2 } });
  assert.equal((await fake.requestsFor(id2))[0].path, '/v1/%252e%252e/models');
  await assertNothingEscaped();
});

const GEMINI_TRAVERSALS = [
  'gem/../../escape',
  'gem/../../../escape',
  'gemini-2.5-flash/../../escape',
  'gem%2F..%2F..%2Fescape',
  'gem/%2e%2e/%2e%2e/escape',
  'gem/.%2e/.%2e/escape',
  'gem/%2E%2E%2F%2E%2E%2Fescape',
  'gem/..%2f..%2fescape',
  'gem/./gemini-2.5-flash',
  'gem/..\\..\\escape',
  'gem/..%5c..%5cescape',
  'gem/..;/..;/escape',
  'gem%00/../escape',
];

test('native Gemini route: a model that climbs is refused, never sent', async () => {
  for (const m of GEMINI_TRAVERSALS) {
    for (const action of ['generateContent', 'streamGenerateContent']) {
      const r = await raw('POST', `/v1beta/models/${m}:${action}`, { body: gemini(m) });
      // 400 (invalid_path, or invalid_model for a character no model has); a
      // path whose NUL the route cannot even decode answers 404 unknown_route
      assert.ok(r.status === 400 || (m.includes('%00') && r.status === 404),
        `${m}:${action}: ${r.status} ${r.body}`);
      assert.ok(!r.body.includes(h.SECRET));
    }
  }
  await assertNothingEscaped();
});

test('native Gemini route: real model names still work, with and without a provider prefix', async () => {
  for (const m of ['gemini-2.5-flash', 'gem/gemini-2.5-flash', 'gem/models/gemini-2.5-flash']) {
    const id = h.testId('gnative');
    const r = await raw('POST', `/v1beta/models/${m}:generateContent?alt=json`,
      { body: gemini(id), headers: { 'x-test-id': id } });
    assert.equal(r.status, 200, `${m}: ${r.body}`);
    const [seen] = await fake.requestsFor(id);
    assert.equal(seen.path, '/gbase/v1beta/models/gemini-2.5-flash:generateContent?alt=json');
    assert.equal(seen.headers['x-goog-api-key'], h.SECRET);
  }
  await assertNothingEscaped();
});

test('translated requests: a Gemini model or Azure deployment with "/" or ".." stays one segment or is refused', async () => {
  const refused = ['gem/../../escape', 'gem/x/../../../escape', 'gemini-2.5-flash/../..',
    'gem/a/./b', 'gem/..\\..\\x', 'gem/..;/x', 'az/..', 'az/.', 'az/../../escape',
    'az/x/../../..', 'az/..;x'];
  for (const model of refused) {
    const r = await raw('POST', '/v1/chat/completions', { body: chat(model, 'x') });
    assert.equal(r.status, 400, `${model}: ${r.status} ${r.body}`);
    assert.equal(r.json?.error?.code, 'invalid_path', `${model}: ${r.body}`);
    assert.ok(!r.body.includes(h.SECRET));
  }
  // a '/' or an encoded dot in a name is sent inside the one segment
  const cases = [
    ['gem/tuned/x', '/gbase/v1beta/models/tuned%2Fx:generateContent'],
    ['gem/%2e%2e', '/gbase/v1beta/models/%252e%252e:generateContent'],
    ['gem/gemini-2.5-flash', '/gbase/v1beta/models/gemini-2.5-flash:generateContent'],
    ['az/dep1', '/az/openai/deployments/dep1/chat/completions?api-version=2024-10-21'],
    ['az/a/b?c#d', '/az/openai/deployments/a%2Fb%3Fc%23d/chat/completions?api-version=2024-10-21'],
  ];
  for (const [model, path] of cases) {
    const id = h.testId('seg');
    await raw('POST', '/v1/chat/completions', { body: chat(model, id), headers: { 'x-test-id': id } });
    const [seen] = await fake.requestsFor(id);
    assert.equal(seen?.path, path, model);
  }
  await assertNothingEscaped();
});

test('the provider key never reached a client or the log', async () => {
  assert.deepEqual(await h.findSecretLeaks(gw, []), []);
  await assertNothingEscaped();
});
