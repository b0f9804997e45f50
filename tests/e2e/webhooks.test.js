'use strict';
// Events and signed webhooks (SPEC §11, docs/webhooks.md): a receiver in
// the test checks the Tollgate-Signature of every delivery; request.completed
// for each request made with the openai SDK; an observability alert that
// fires and resolves once each; a receiver that fails, then refuses
// connections, then gets every event exactly once by id; a restart with
// undelivered events in the outbox delivers them after the start.
//
// Short schedules come from the documented test knobs:
// TOLLGATE_WEBHOOK_RETRY_MS (first retry, ceiling) and
// TOLLGATE_ALERT_INTERVAL_MS (how often the alerts are evaluated).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

let fake;
let scratch; // store files and configs of the tests that need them
before(async () => {
  fake = await h.startFake();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-hooks-'));
});
after(async () => {
  await fake?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const FAST = { TOLLGATE_WEBHOOK_RETRY_MS: '100,400', TOLLGATE_ALERT_INTERVAL_MS: '200' };

/** What a receiver does with the signature: the check a user writes
 *  (docs/webhooks.md): HMAC-SHA256(secret, "t.body"), constant-time. */
function verify(secret, header, body) {
  const parts = Object.fromEntries(String(header).split(',').map((p) => p.split('=')));
  if (!parts.t || !parts.v1) return false;
  const want = crypto.createHmac('sha256', secret).update(`${parts.t}.${body}`).digest('hex');
  const age = Math.abs(Date.now() / 1000 - Number(parts.t));
  return age < 300 && want.length === parts.v1.length &&
    crypto.timingSafeEqual(Buffer.from(want), Buffer.from(parts.v1));
}

/**
 * A webhook receiver on PORT (0: any): records every POST (path, headers,
 * body, parsed event, whether its signature verified with SECRETS[path])
 * and answers `status` with `headers` (settable). close() refuses connections from then
 * on; listen() takes the same port again.
 */
async function startReceiver(secrets = {}, port = 0) {
  const r = { got: [], status: 200, headers: {}, port };
  r.server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let event = null;
      try { event = JSON.parse(body); } catch { /* recorded as null */ }
      const secret = secrets[req.url];
      r.got.push({
        path: req.url, method: req.method, headers: req.headers, body, event, answered: r.status,
        signed: secret ? verify(secret, req.headers['tollgate-signature'], body) : null,
      });
      res.writeHead(r.status, { 'content-type': 'text/plain', ...r.headers });
      res.end('ok');
    });
  });
  r.listen = () => new Promise((resolve, reject) => {
    r.server.once('error', reject);
    r.server.listen(r.port, '127.0.0.1', () => { r.port = r.server.address().port; resolve(); });
  });
  r.close = () => new Promise((resolve) => { r.server.close(() => resolve()); r.server.closeAllConnections(); });
  r.url = (p) => `http://127.0.0.1:${r.port}${p}`;
  /** Events acknowledged (answered 2xx) at PATH, optionally of TYPE. */
  r.acked = (p, type) => r.got.filter((g) => g.path === p && g.answered < 300 && g.event &&
    (!type || g.event.type === type));
  await r.listen();
  return r;
}

/** Stop GW; a clean exit (0), no sanitizer report. */
async function stopClean(gw) {
  const r = await gw.stop();
  assert.equal(r.code, 0, gw.output());
  assert.ok(!r.sanitizer);
}

async function metric(gw, re) {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

test('request.completed per request, signed; the other events go to cost_tracking.webhook_url', async () => {
  const rx = await startReceiver({ '/requests': 'req-secret', '/ops': 'ops-secret' });
  const gw = await h.startGateway(h.baseConfig(fake, {
    cost_tracking: { webhook_url: rx.url('/ops'), webhook_secret: 'ops-secret' },
    webhooks: [{ url: rx.url('/requests'), events: ['request.completed'], secret: 'req-secret' }],
    observability: { alerts: [{ metric: 'request_rate', above: '0.5', window: '2s', name: 'busy' }] },
  }), { env: FAST });
  try {
    const client = h.openaiClient(gw);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await client.chat.completions.create({
        model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: `hello ${i}` }],
      }).withResponse();
      ids.push(response.headers.get('helicone-id'));
    }
    await h.waitFor(() => rx.acked('/requests').length >= 3, 10000);
    const got = rx.acked('/requests');
    assert.equal(got.length, 3, 'one request.completed per request');
    assert.deepEqual(got.map((g) => g.event.data.id).sort(), [...ids].sort());
    for (const g of got) {
      assert.equal(g.method, 'POST');
      assert.equal(g.headers['content-type'], 'application/json');
      assert.equal(g.signed, true, `signature of ${g.body}`);
      assert.equal(g.event.type, 'request.completed');
      assert.equal(g.headers['tollgate-event-id'], g.event.id);
      assert.match(g.event.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(g.event.data.status, 200);
      assert.equal(g.event.data.provider, 'fake');
      assert.equal(g.event.data.model, 'gpt-4o-mini');
      assert.equal(g.event.data.request_body, undefined, 'no bodies');
      assert.equal(g.event.data.response_body, undefined, 'no bodies');
      assert.ok(!g.body.includes(h.SECRET));
    }
    // A signature made with another secret, or over another body, fails.
    assert.equal(verify('wrong', got[0].headers['tollgate-signature'], got[0].body), false);
    assert.equal(verify('req-secret', got[0].headers['tollgate-signature'], `${got[0].body} `), false);
    // request_rate above 0.5/s over 2 s: three requests fired it; the ops
    // receiver has it, signed with its own secret, and no request.completed.
    await h.waitFor(() => rx.acked('/ops', 'alert.fired').length === 1, 10000);
    const fired = rx.acked('/ops', 'alert.fired')[0];
    assert.equal(fired.signed, true);
    assert.equal(fired.event.data.rule, 'busy');
    assert.equal(fired.event.data.metric, 'request_rate');
    assert.equal(rx.acked('/ops', 'request.completed').length, 0);
    assert.equal(rx.acked('/requests', 'alert.fired').length, 0, 'not asked for');
    assert.equal(await metric(gw, /^tollgate_events_total\{type="request.completed"\} (\S+)$/m), 3);
    assert.ok(await metric(gw, /^tollgate_webhook_deliveries_total\{result="success"\} (\S+)$/m) >= 4);
    assert.ok(!gw.output().includes('req-secret') && !gw.output().includes('ops-secret'),
      'secrets never in the log');
    assert.match(gw.output(), /event alert\.fired id=/);
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('an error_rate alert fires once while the provider answers 500 and resolves once after', async () => {
  const rx = await startReceiver({ '/ops': 'ops-secret' });
  const rule = 'errors';
  const gw = await h.startGateway(h.baseConfig(fake, {
    cost_tracking: { webhook_url: rx.url('/ops'), webhook_secret: 'ops-secret' },
    observability: { alerts: [{ metric: 'error_rate', above: '5%', window: '2s', name: rule }] },
  }), { env: FAST });
  try {
    const ask = (status) => fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(status ? { 'x-fake-status': String(status) } : {}) },
      body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    }).then((r) => r.status);
    assert.equal(await ask(null), 200);
    const firing = () => metric(gw, /^tollgate_alert_firing\{rule="errors"\} (\S+)$/m);
    assert.equal(await firing(), 0);
    // Errors for a while (several evaluations): the alert fires, once.
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      assert.ok(await ask(500) >= 500);
      await h.sleep(50);
    }
    await h.waitFor(() => rx.acked('/ops', 'alert.fired').length > 0, 5000);
    assert.equal(await firing(), 1);
    // Successes only: once the errors leave the 2 s window it resolves.
    const until2 = Date.now() + 3500;
    while (Date.now() < until2) {
      assert.equal(await ask(null), 200);
      await h.sleep(100);
    }
    await h.waitFor(() => rx.acked('/ops', 'alert.resolved').length > 0, 5000);
    await h.sleep(600); // a few more evaluations: nothing more is sent
    assert.equal(rx.acked('/ops', 'alert.fired').length, 1, 'fired once');
    assert.equal(rx.acked('/ops', 'alert.resolved').length, 1, 'resolved once');
    assert.equal(await firing(), 0);
    const [f] = rx.acked('/ops', 'alert.fired');
    const [r] = rx.acked('/ops', 'alert.resolved');
    assert.equal(f.signed, true);
    assert.equal(r.signed, true);
    assert.equal(f.event.data.metric, 'error_rate');
    assert.equal(f.event.data.condition, 'above');
    assert.equal(f.event.data.threshold, 0.05);
    assert.equal(f.event.data.window_s, 2);
    assert.ok(f.event.data.value > 0.05);
    assert.ok(Date.parse(r.event.created_at) > Date.parse(f.event.created_at));
    assert.match(gw.output(), /alert fired: errors/);
    assert.match(gw.output(), /alert resolved: errors/);
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('a receiver that fails, then refuses connections, gets every event exactly once after', async () => {
  const rx = await startReceiver({ '/hook': 's3cret' });
  rx.status = 500;
  const gw = await h.startGateway(h.baseConfig(fake, {
    webhooks: [{ url: rx.url('/hook'), events: ['request.completed'], secret: 's3cret' }],
  }), { env: FAST });
  try {
    const client = h.openaiClient(gw);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const { response } = await client.chat.completions.create({
        model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
      }).withResponse();
      assert.ok(Date.now() - t0 < 2000, 'a failing receiver does not slow requests');
      ids.push(response.headers.get('helicone-id'));
    }
    // It answers 500: attempts are made and retried.
    await h.waitFor(() => rx.got.filter((g) => g.answered === 500).length >= 10, 10000);
    // Then it is gone: connections refused.
    await rx.close();
    await h.sleep(800);
    assert.ok(await metric(gw, /^tollgate_webhook_deliveries_total\{result="failure"\} (\S+)$/m) >= 10);
    assert.equal(await metric(gw, /^tollgate_webhook_deliveries_total\{result="success"\} (\S+)$/m), 0);
    // Back, answering 200: every event arrives, each acknowledged once.
    rx.status = 200;
    await rx.listen();
    await h.waitFor(() => rx.acked('/hook').length >= 5, 10000);
    await h.sleep(1000); // room for a duplicate to show up
    const acked = rx.acked('/hook').map((g) => g.event.data.id).sort();
    assert.deepEqual(acked, [...ids].sort(), 'each request once');
    const eventIds = rx.acked('/hook').map((g) => g.event.id);
    assert.equal(new Set(eventIds).size, 5);
    // Every attempt of one event carried the same id and body.
    for (const g of rx.acked('/hook')) {
      assert.equal(g.signed, true);
      for (const earlier of rx.got.filter((x) => x.event?.id === g.event.id)) assert.equal(earlier.body, g.body);
    }
    assert.equal(await metric(gw, /^tollgate_webhook_deliveries_total\{result="success"\} (\S+)$/m), 5);
    assert.doesNotMatch(gw.output(), /s3cret/);
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('a receiver that never answers: requests stay fast, attempts time out, shutdown is prompt', async () => {
  const held = [];
  const silent = http.createServer((req) => { held.push(req); }); // reads, never answers
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${silent.address().port}/hook`;
  const gw = await h.startGateway(h.baseConfig(fake, {
    webhooks: [{ url, events: ['request.completed'] }],
  }), { env: { ...FAST, TOLLGATE_WEBHOOK_TIMEOUT_MS: '300' } });
  try {
    const client = h.openaiClient(gw);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await client.chat.completions.create({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      assert.ok(Date.now() - t0 < 1000, 'a silent receiver does not slow requests');
    }
    await h.waitFor(async () => await metric(gw, /^tollgate_webhook_deliveries_total\{result="failure"\} (\S+)$/m) >= 5, 10000);
    assert.match(gw.output(), /failed \(Operation timed out after/);
    assert.match(gw.output(), /deliveries to http:\/\/127\.0\.0\.1:\d+\/hook are not signed/);
    const t0 = Date.now();
    await stopClean(gw);
    assert.ok(Date.now() - t0 < 5000, 'a delivery under way does not hold the shutdown');
  } finally {
    if (gw.alive()) await gw.stop();
    for (const r of held) r.socket.destroy();
    silent.close();
  }
});

test('a redirect is not followed: the attempt fails and the new location gets nothing', async () => {
  const rx = await startReceiver({});
  const gw = await h.startGateway(h.baseConfig(fake, {
    webhooks: [{ url: rx.url('/moved'), events: ['request.completed'] }],
  }), { env: FAST });
  try {
    rx.status = 307;
    rx.headers = { location: rx.url('/elsewhere') };
    await h.openaiClient(gw).chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
    });
    await h.waitFor(async () => await metric(gw, /^tollgate_webhook_deliveries_total\{result="failure"\} (\S+)$/m) >= 2, 10000);
    assert.ok(rx.got.length >= 2);
    assert.ok(rx.got.every((g) => g.path === '/moved'), 'never at the redirect target');
    assert.match(gw.output(), /failed \(status 307\)/);
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('without a store (request logging off) failed deliveries wait in memory and arrive once', async () => {
  const rx = await startReceiver({ '/hook': 'mem' });
  rx.status = 503;
  const gw = await h.startGateway(h.baseConfig(fake, {
    observability: { request_logging: { enabled: false } },
    webhooks: [{ url: rx.url('/hook'), events: ['request.completed'], secret: 'mem' }],
  }), { env: FAST });
  try {
    const client = h.openaiClient(gw);
    const { response } = await client.chat.completions.create({
      model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
    }).withResponse();
    const id = response.headers.get('helicone-id');
    await h.waitFor(() => rx.got.length >= 3, 10000);
    rx.status = 200;
    await h.waitFor(() => rx.acked('/hook').length >= 1, 10000);
    await h.sleep(800);
    assert.deepEqual(rx.acked('/hook').map((g) => g.event.data.id), [id]);
    assert.equal(rx.acked('/hook')[0].signed, true);
    assert.match(gw.output(), /kept in memory only/);
    assert.equal(fs.existsSync(path.join(gw.dir, 'tollgate.db')), false, 'no store file');
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('events still in the outbox at a restart are delivered after the next start', async () => {
  const dir = scratch;
  const rx = await startReceiver({ '/hook': 'k' });
  await rx.close(); // down: connections refused
  const config = h.baseConfig(fake, {
    storage: { url: `sqlite:${dir}/records.db` },
    webhooks: [{ url: rx.url('/hook'), events: ['request.completed'], secret: 'k' }],
  });
  const env = { TOLLGATE_WEBHOOK_RETRY_MS: '60000' }; // no retry before the restart
  let gw = await h.startGateway(config, { env });
  const ids = [];
  try {
    const client = h.openaiClient(gw);
    for (let i = 0; i < 3; i++) {
      const { response } = await client.chat.completions.create({
        model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }],
      }).withResponse();
      ids.push(response.headers.get('helicone-id'));
    }
    await h.waitFor(async () => await metric(gw, /^tollgate_webhook_deliveries_total\{result="failure"\} (\S+)$/m) >= 3, 10000);
  } finally {
    await stopClean(gw);
  }
  assert.equal(rx.got.length, 0);
  await rx.listen();
  // The next start tries every waiting event at once, whatever its retry time.
  gw = await h.startGateway(config, { env });
  try {
    await h.waitFor(() => rx.acked('/hook').length >= 3, 10000);
    assert.deepEqual(rx.acked('/hook').map((g) => g.event.data.id).sort(), [...ids].sort());
    for (const g of rx.acked('/hook')) assert.equal(g.signed, true);
    await h.waitFor(async () => await metric(gw, /^tollgate_webhook_deliveries_total\{result="success"\} (\S+)$/m) === 3, 3000);
  } finally {
    await stopClean(gw);
    await rx.close();
  }
});

test('config: unknown event names and bad URLs are errors naming the field', async () => {
  const check = (cfg, re) => {
    const file = h.writeConfig(cfg, path.join(scratch, 'bad.yaml'));
    const r = spawnSync(h.BIN, ['--config', file, '--validate'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, re);
  };
  check('webhooks:\n  - url: http://127.0.0.1:9/x\n    events: [request.done]\n',
    /webhooks\[0\]\.events\[0\].*unknown event "request.done"/);
  check('webhooks:\n  - url: ftp://x\n', /webhooks\[0\]\.url.*http/);
  check('webhooks:\n  - events: [alert.fired]\n', /webhooks\[0\]\.url.*required/);
  check('observability:\n  alerts:\n    - { metric: error_rate, above: 5s, window: 5m }\n',
    /observability\.alerts\[0\]\.above.*share/);
  check('observability:\n  alerts:\n    - { metric: p99, above: 1 }\n', /observability\.alerts\[0\]\.metric/);
});
