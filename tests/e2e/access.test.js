'use strict';
// Who may use the gateway (SPEC §5): gateway keys, address allow-lists, and
// the TLS listener.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { execFileSync } = require('node:child_process');
const h = require('./harness');

const GATEWAY_KEY = 'tg-dev-KEY-0123456789';

let fake;
let gw;
let rec;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, {
    security: {
      require_auth: true,
      api_keys: [
        { name: 'dev', key: GATEWAY_KEY, permissions: ['read', 'write'] },
        // unset variable: this key is skipped and can never match
        { name: 'unset', key: '${TOLLGATE_E2E_UNSET_KEY}', permissions: ['read'] },
      ],
    },
  }));
  rec = h.makeRecorder();
});
after(async () => {
  const r = await gw?.stop();
  assert.equal(r?.code, 0);
  await fake?.stop();
});

const ask = (client, id, model = 'fake/gpt-4o-mini', headers = {}) =>
  client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'x-test-id': id, ...headers } },
  );

test('no gateway key: 401 in OpenAI shape, nothing reaches the provider', async () => {
  const id = h.testId('nokey');
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-id': id },
    body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [] }),
  });
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.error.type, 'authentication_error');
  assert.equal(body.error.code, 'missing_api_key');
  assert.equal((await fake.requestsFor(id)).length, 0);
});

test('a wrong key and an empty configured key are refused', async () => {
  const client = h.openaiClient(gw, rec, { apiKey: 'tg-wrong-key' });
  await assert.rejects(ask(client, h.testId('wrong')), (e) => e.status === 401);
  const empty = await fetch(`${gw.baseURL}/models`, { headers: { authorization: 'Bearer ' } });
  assert.equal(empty.status, 401);
});

test('Authorization: Bearer <gateway key> is consumed; the provider gets its configured key', async () => {
  const id = h.testId('bearer');
  const client = h.openaiClient(gw, rec, { apiKey: GATEWAY_KEY });
  const r = await ask(client, id);
  assert.equal(r.choices[0].message.role, 'assistant');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`);
});

test('gateway key via Authorization on a bring-your-own-key provider: not forwarded', async () => {
  const id = h.testId('consumed');
  const client = h.openaiClient(gw, rec, { apiKey: GATEWAY_KEY });
  await ask(client, id, 'byok/gpt-4o-mini');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.headers.authorization, undefined, 'the gateway key reached the provider');
});

test('Helicone-Auth carries the gateway key; the client\'s own Authorization stays its provider key', async () => {
  const id = h.testId('helicone-auth');
  const client = h.openaiClient(gw, rec, {
    apiKey: 'sk-client-OWN',
    defaultHeaders: { 'Helicone-Auth': `Bearer ${GATEWAY_KEY}` },
  });
  await ask(client, id, 'byok/gpt-4o-mini');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.headers.authorization, 'Bearer sk-client-OWN');
  assert.equal(seen.headers['helicone-auth'], undefined);
});

test('x-api-key: <gateway key> works too', async () => {
  const res = await fetch(`${gw.baseURL}/models`, { headers: { 'x-api-key': GATEWAY_KEY } });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).object, 'list');
});

test('/health needs no key', async () => {
  const res = await fetch(`${gw.url}/health`);
  assert.equal(res.status, 200);
});

test('the gateway key never appears in output or responses', async () => {
  await rec.settle();
  assert.ok(!gw.output().includes(GATEWAY_KEY), 'gateway key in process output');
  for (const r of rec.seen) {
    assert.ok(!JSON.stringify(r).includes(GATEWAY_KEY), `gateway key in a response from ${r.url}`);
  }
});

test('security.allowed_ips: other addresses get 403 (v4 and v6 CIDRs), /health still answers', async () => {
  const shut = await h.startGateway(h.baseConfig(fake, {
    security: { allowed_ips: ['10.0.0.0/8', '2001:db8::/32'] },
  }));
  try {
    const res = await fetch(`${shut.baseURL}/models`);
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, 'address_not_allowed');
    assert.equal((await fetch(`${shut.url}/health`)).status, 200);
  } finally {
    assert.equal((await shut.stop()).code, 0);
  }
  const open = await h.startGateway(h.baseConfig(fake, {
    security: { allowed_ips: ['192.168.1.100', '127.0.0.0/8'] },
  }));
  try {
    assert.equal((await fetch(`${open.baseURL}/models`)).status, 200);
  } finally {
    assert.equal((await open.stop()).code, 0);
  }
});

test('server.ssl: the listener speaks TLS', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const tls = await startTlsGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 1, ssl: { enabled: true, cert_file: cert, key_file: key } },
  }));
  try {
    const res = await httpsRequest(tls.port, '/v1/chat/completions', 'POST',
      JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'over tls' }] }));
    assert.equal(res.status, 200);
    assert.match(JSON.parse(res.body).choices[0].message.content, /over tls/);
  } finally {
    assert.equal((await tls.stop()).code, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function httpsRequest(port, p, method = 'GET', body) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: p, method, rejectUnauthorized: false,
      headers: body ? { 'content-type': 'application/json' } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The harness waits for plain-HTTP /health; a TLS gateway is polled over https.
async function startTlsGateway(config) {
  const port = await h.freePort();
  config.server.port = port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-e2e-'));
  const file = h.writeConfig(config, path.join(dir, 'tollgate.yaml'));
  const { spawn } = require('node:child_process');
  const proc = spawn(h.BIN, ['--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      if ((await httpsRequest(port, '/health')).status === 200) break;
    } catch { /* not up yet */ }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`TLS gateway did not come up:\n${output}`);
    }
    await h.sleep(50);
  }
  return {
    port,
    async stop() {
      proc.kill('SIGTERM');
      const r = await h.waitExit(proc, 15000);
      fs.rmSync(dir, { recursive: true, force: true });
      if (r && /Sanitizer|runtime error:/.test(output)) process.stderr.write(output);
      return r || { code: null };
    },
  };
}
