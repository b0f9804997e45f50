'use strict';
// The upstream client (src/proxy/h1client.c) against providers that
// misbehave: a raw-socket fake upstream (resets, hangs, cut streams, slow or
// malformed heads, keep-alive connections closed while idle, bytes beyond an
// answer), TLS upstreams with a throwaway CA (bad certificate, wrong host
// name, handshake reset), and an HTTP proxy (CONNECT for https,
// absolute-form for http).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const path = require('node:path');
const h = require('./harness');

const ANSWER = JSON.stringify({
  id: 'chatcmpl-raw', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});
const OK = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(ANSWER)}\r\n\r\n${ANSWER}`;
const SSE_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
const EVENT = `data: ${JSON.stringify({
  id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini',
  choices: [{ index: 0, delta: { role: 'assistant', content: 'hel' }, finish_reason: null }],
})}\n\n`;

// What the raw upstream does for each x-fault value; `n` is the request's
// number on its connection.
const FAULTS = {
  ok: (s) => s.write(OK),
  'reset-before': (s) => s.resetAndDestroy(),
  'reset-after-headers': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":');
    setTimeout(() => s.resetAndDestroy(), 30);
  },
  hang: () => {},
  'cut-stream': (s) => {
    s.write(SSE_HEAD + chunk(EVENT));
    setTimeout(() => { s.write('40\r\ndata: {"id"'); s.destroy(); }, 30);
  },
  'slow-headers': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'),
  garbage: (s) => s.write('NONSENSE FROM THE PROVIDER\r\n\r\n'),
  'big-headers': (s) => s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n${OK.slice(17)}`),
  'close-idle': (s) => { s.write(OK); setTimeout(() => s.end(), 50); },
  'drop-on-reuse': (s, n) => (n === 1 ? s.write(OK) : s.destroy()),
  pipelined: (s) => s.write(`${OK}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra`),
  interim: (s) => s.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`),
  'close-delimited': (s) => s.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n${ANSWER}`),
  stream: (s) => s.write(SSE_HEAD + chunk(EVENT) + chunk('data: [DONE]\n\n') + '0\r\n\r\n'),
  // BIG_EVENTS events as fast as the gateway takes them; big.written counts
  // the bytes the socket accepted
  'big-stream': async (s) => {
    big.written = 0;
    s.write(SSE_HEAD);
    const batch = chunk(BIG_EVENT.repeat(64));
    for (let i = 0; i < BIG_EVENTS / 64; i++) {
      big.written += batch.length;
      if (!s.write(batch)) await new Promise((r) => s.once('drain', r));
    }
    s.write(chunk('data: [DONE]\n\n') + '0\r\n\r\n');
    big.done = true;
  },
};
// 64 MB: more than the loopback sockets' buffers on both sides can hold
const BIG_EVENT = EVENT.replace('"hel"', `"hel${'x'.repeat(1000)}"`);
const BIG_EVENTS = 64 * 1000;
const big = { written: 0, done: false };

function startRaw() {
  const st = { conns: 0, requests: [] };
  const socks = new Set();
  const srv = net.createServer((sock) => {
    st.conns++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    const conn = st.conns;
    let buf = Buffer.alloc(0);
    let n = 0;
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        const len = Number((/content-length:\s*(\d+)/i.exec(head) || [0, 0])[1]);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        n++;
        const fault = (/x-fault:\s*(\S+)/i.exec(head) || [0, 'ok'])[1];
        st.requests.push({ fault, conn, n, head });
        (FAULTS[fault] || FAULTS.ok)(sock, n);
      }
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    port: srv.address().port, st,
    close: () => { for (const s of socks) s.destroy(); return new Promise((r) => srv.close(r)); },
  })));
}

// A throwaway CA and certificates, made with the openssl command line.
function makeCerts(dir) {
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tollgate test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  for (const [name, san] of [['good', 'DNS:localhost,IP:127.0.0.1'], ['wrong', 'DNS:other.example']]) {
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${san.split(/[:,]/)[1]}`);
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
  ossl('req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost');
  const read = (f) => fs.readFileSync(path.join(dir, f));
  return { ca: path.join(dir, 'ca.pem'), pair: (n) => ({ key: read(`${n}.key`), cert: read(`${n}.pem`) }) };
}

function listen(srv) {
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv.address().port)));
}

// A small HTTP proxy: CONNECT tunnels, absolute-form requests forwarded.
function startProxy() {
  const seen = [];
  const srv = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url);
    const up = http.request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search,
      method: req.method, headers: req.headers }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.on('connect', (req, sock, headPart) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url.split(':');
    const up = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host, () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (headPart.length) up.write(headPart);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  return listen(srv).then((port) => ({ port, seen, srv }));
}

let raw;
let fake;
let gw;
let gwProxy;
let proxy;
const servers = [];
const tlsResumed = []; // per request to a TLS server: did its connection resume a session
const tlsConns = { good: 0 }; // TLS connections the good server accepted
const TLS_EVENTS = 4000; // x-fault: tls-stream sends this many 1 KB events, a TLS record each

before(async () => {
  raw = await startRaw();
  fake = await h.startFake();
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tollgate-tls-'));
  const certs = makeCerts(dir);
  // x-fault: close answers with Connection: close, so the next call needs a
  // new connection (and a new handshake, which may resume the session)
  const answer = (req, res) => {
    req.resume();
    tlsResumed.push(req.socket.isSessionReused());
    const close = req.headers['x-fault'] === 'close';
    if (req.headers['x-fault'] === 'tls-stream') {
      req.on('end', async () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < TLS_EVENTS; i++)
          if (!res.write(BIG_EVENT)) await new Promise((r) => res.once('drain', r));
        res.end('data: [DONE]\n\n');
      });
      return;
    }
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', ...(close ? { connection: 'close' } : {}) });
      res.end(ANSWER);
    });
  };
  const tlsPort = {};
  for (const n of ['good', 'wrong', 'self']) {
    const srv = https.createServer(certs.pair(n), answer);
    if (n === 'good') srv.on('secureConnection', () => tlsConns.good++);
    servers.push(srv);
    tlsPort[n] = await listen(srv);
  }
  const resetter = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  servers.push(resetter);
  tlsPort.reset = await listen(resetter);

  const provider = (url) => ({ base_url: url, api_key: h.SECRET, timeout: 1 });
  gw = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 1, shutdown_timeout: '5s', idle_timeout: '60s' },
    providers: {
      raw: provider(`http://127.0.0.1:${raw.port}/v1`),
      tls: provider(`https://localhost:${tlsPort.good}/v1`),
      tlsip: provider(`https://127.0.0.1:${tlsPort.good}/v1`),
      tlswrong: provider(`https://localhost:${tlsPort.wrong}/v1`),
      tlsself: provider(`https://localhost:${tlsPort.self}/v1`),
      tlsreset: provider(`https://localhost:${tlsPort.reset}/v1`),
    },
  }), { env: { SSL_CERT_FILE: certs.ca } });

  proxy = await startProxy();
  servers.push(proxy.srv);
  gwProxy = await h.startGateway(h.baseConfig(fake, {
    providers: {
      tls: provider(`https://localhost:${tlsPort.good}/v1`),
      plain: provider(`http://localhost:${raw.port}/v1`),
    },
  }), {
    env: {
      SSL_CERT_FILE: certs.ca,
      HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`,
      http_proxy: `http://127.0.0.1:${proxy.port}`,
      NO_PROXY: '127.0.0.1,example.org',
    },
  });
});

after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  assert.equal((await gwProxy?.stop())?.code, 0);
  await fake?.stop();
  await raw?.close();
  for (const s of servers) { s.closeAllConnections?.(); s.close(); }
});

async function chat(g, model, fault, extra = {}) {
  const res = await fetch(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fault': fault },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
  const text = await res.text();
  seen.push(text);
  return { status: res.status, text };
}
const seen = []; // every answer a client got

const FAILURES = [
  ['reset-before', 'the provider resets the connection before answering', 502, /ended before an answer|reset/],
  ['reset-after-headers', 'the provider resets the connection after its headers', 502, /broke off/],
  ['hang', 'the provider never answers: its timeout', 504, /timed out/],
  ['slow-headers', 'the provider stops in the middle of its headers past the timeout', 504, /timed out/],
  ['garbage', 'a garbage status line', 502, /status line|not valid HTTP/],
  ['big-headers', 'headers over 64 KiB', 502, /64 KiB/],
];
for (const [fault, what, status, msg] of FAILURES) {
  test(`${what}: ${status} with a clear error, and the gateway goes on`, async () => {
    const r = await chat(gw, 'raw/gpt-4o-mini', fault);
    assert.equal(r.status, status, r.text);
    assert.match(JSON.parse(r.text).error.message, msg);
    assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'ok')).status, 200);
  });
}

test('a stream cut mid-chunk ends without its terminator; the first event got through', async () => {
  const r = await chat(gw, 'raw/gpt-4o-mini', 'cut-stream', { stream: true });
  assert.equal(r.status, 200);
  assert.match(r.text, /"hel"/);
  assert.doesNotMatch(r.text, /\[DONE\]/);
  assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'stream', { stream: true })).text.includes('[DONE]'), true);
});

// A streamed call whose answer the caller reads (res) when it wants.
function openStream(model, fault) {
  const body = JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-fault': fault },
    }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

test('a client that stops reading stops the upstream read; the stream then completes intact', async () => {
  const res = await openStream('raw/gpt-4o-mini', 'big-stream');
  assert.equal(res.statusCode, 200);
  res.pause();
  await h.sleep(1500); // longer than the provider's 1 s timeout: time paused does not count
  const total = BIG_EVENTS * Buffer.byteLength(BIG_EVENT);
  assert.ok(!big.done && big.written < total / 2,
    `the provider could write ${big.written} of ${total} bytes while the client read nothing`);
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { text += d; });
  res.resume();
  await new Promise((r) => res.on('end', r));
  assert.ok(big.done);
  assert.equal(text.split('"content":"helxxx').length - 1, BIG_EVENTS);
  assert.match(text, /data: \[DONE\]/);
});

test('interim 1xx answers are skipped; a close-delimited answer is read to its end', async () => {
  for (const fault of ['interim', 'close-delimited']) {
    const r = await chat(gw, 'raw/gpt-4o-mini', fault);
    assert.equal(r.status, 200, `${fault}: ${r.text}`);
    assert.equal(JSON.parse(r.text).choices[0].message.content, 'hi');
  }
});

test('keep-alive: calls in a row share one upstream connection', async () => {
  await chat(gw, 'raw/gpt-4o-mini', 'ok');
  const before = raw.st.conns;
  for (let i = 0; i < 5; i++) assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'ok')).status, 200);
  assert.equal(raw.st.conns, before);
});

test('a keep-alive connection the provider closed while idle is not reused', async () => {
  assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'close-idle')).status, 200);
  await h.sleep(200);
  const conns = raw.st.conns;
  const r = await chat(gw, 'raw/gpt-4o-mini', 'ok');
  assert.equal(r.status, 200);
  assert.equal(raw.st.conns, conns + 1);
  const last = raw.st.requests.at(-1);
  assert.equal(last.n, 1); // the first request of a new connection
});

test('a reused connection dropped without an answer: the call goes again once on a new one', async () => {
  assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'ok')).status, 200);
  const n = raw.st.requests.length;
  const r = await chat(gw, 'raw/gpt-4o-mini', 'drop-on-reuse');
  assert.equal(r.status, 200, r.text);
  const tries = raw.st.requests.slice(n);
  assert.equal(tries.length, 2);
  assert.ok(tries[0].n > 1 && tries[1].n === 1);
});

test('bytes past an answer: the connection is not reused, and nobody gets them', async () => {
  assert.equal((await chat(gw, 'raw/gpt-4o-mini', 'pipelined')).status, 200);
  const conns = raw.st.conns;
  const r = await chat(gw, 'raw/gpt-4o-mini', 'ok');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).choices[0].message.content, 'hi');
  assert.equal(raw.st.conns, conns + 1);
});

test('TLS: a certificate from the trusted CA verifies, by host name and by IP address', async () => {
  for (const p of ['tls', 'tlsip']) {
    const r = await chat(gw, `${p}/gpt-4o-mini`, 'ok');
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    assert.equal(JSON.parse(r.text).choices[0].message.content, 'hi');
  }
});

test('TLS: a new connection to the same origin resumes the session', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await chat(gw, 'tls/gpt-4o-mini', 'close');
    assert.equal(r.status, 200, r.text);
  }
  assert.deepEqual(tlsResumed.slice(-2), [true, true], JSON.stringify(tlsResumed));
});

// The upstream's TLS sockets read ahead (one read(2) for many records): the
// records OpenSSL already holds must reach the client after a pause too, and
// the connection must go back to the pool only with nothing left in it.
test('TLS: a stream of many records through a paused client arrives whole; the connection is reused', async () => {
  const res = await openStream('tls/gpt-4o-mini', 'tls-stream');
  assert.equal(res.statusCode, 200);
  res.pause();
  await h.sleep(300);
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { text += d; });
  res.resume();
  await new Promise((r) => res.on('end', r));
  assert.equal(text.split('"content":"helxxx').length - 1, TLS_EVENTS);
  assert.match(text, /data: \[DONE\]/);
  const before = tlsConns.good;
  for (let i = 0; i < 3; i++) assert.equal((await chat(gw, 'tls/gpt-4o-mini', 'ok')).status, 200);
  assert.equal(tlsConns.good, before, 'calls after the stream reuse its connection');
});

const TLS_FAILURES = [
  ['tlswrong', 'a certificate for another host name', /does not verify|hostname mismatch/i],
  ['tlsself', 'a self-signed certificate', /does not verify|self.signed/i],
  ['tlsreset', 'a handshake the server resets', /TLS handshake/],
];
for (const [p, what, msg] of TLS_FAILURES) {
  test(`TLS: ${what} is refused (502, provider unreachable)`, async () => {
    const r = await chat(gw, `${p}/gpt-4o-mini`, 'ok');
    assert.equal(r.status, 502, r.text);
    const e = JSON.parse(r.text).error;
    assert.equal(e.code, 'provider_unreachable');
    assert.match(e.message, msg);
  });
}

test('HTTPS_PROXY: https goes through CONNECT; http_proxy: http in absolute-form; NO_PROXY is honoured', async () => {
  const r = await chat(gwProxy, 'tls/gpt-4o-mini', 'ok');
  assert.equal(r.status, 200, r.text);
  assert.ok(proxy.seen.some((s) => /^CONNECT localhost:\d+$/.test(s)), proxy.seen.join('; '));
  const p = await chat(gwProxy, 'plain/gpt-4o-mini', 'ok');
  assert.equal(p.status, 200, p.text);
  assert.ok(proxy.seen.some((s) => s.startsWith(`POST http://localhost:${raw.port}/v1/chat/completions`)),
    proxy.seen.join('; '));
  // the fake provider is on 127.0.0.1, listed in NO_PROXY: straight there
  const seen = proxy.seen.length;
  const f = await chat(gwProxy, 'fake/gpt-4o-mini', 'ok');
  assert.equal(f.status, 200, f.text);
  assert.equal(proxy.seen.length, seen);
});

test('the provider key never reached a client or the gateway output', async () => {
  assert.deepEqual([...await h.findSecretLeaks(gw, []), ...await h.findSecretLeaks(gwProxy, [])], []);
  assert.equal(seen.some((t) => t.includes(h.SECRET)), false);
});
