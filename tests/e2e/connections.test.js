'use strict';
// Connections on both sides of the gateway: provider connections are reused
// across requests, one the provider closes while idle is noticed without a
// busy loop and replaced, and client replies written straight to the socket
// keep HTTP/1.1 pipelining, HTTP/1.0 and streamed bodies whole and in order.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const h = require('./harness');

const ANSWER = JSON.stringify({
  id: 'chatcmpl-c', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});

// A provider that counts the TCP connections it accepts and closes idle
// keep-alive connections after IDLE_MS.
const IDLE_MS = 150;
let upstream;
let connections = 0;
let fake;
let gw;

before(async () => {
  upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  upstream.on('connection', (sock) => {
    connections++;
    // Close the connection once it has been idle for IDLE_MS (the server's
    // own keepAliveTimeout does not fire reliably on every Node version).
    let timer = null;
    const idle = () => { clearTimeout(timer); timer = setTimeout(() => sock.destroy(), IDLE_MS); };
    sock.on('data', () => clearTimeout(timer));
    sock.on('close', () => clearTimeout(timer));
    sock.idle = idle;
  });
  upstream.on('request', (req, res) => res.on('finish', () => req.socket.idle()));
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 1 },
    providers: { counted: { base_url: `http://127.0.0.1:${upstream.address().port}/v1`, api_key: 'sk-counted' } },
  }));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
});

const body = JSON.stringify({ model: 'counted/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });

async function chat() {
  const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body,
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).choices[0].message.content, 'hi');
}

/** CPU seconds (user + system) the gateway process has used so far. */
function cpuSeconds() {
  const f = fs.readFileSync(`/proc/${gw.proc.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in ticks
}

test('requests one after another share one provider connection', async () => {
  const before = connections;
  for (let i = 0; i < 20; i++) await chat();
  assert.ok(connections - before <= 1, `${connections - before} connections for 20 requests`);
});

test('a provider connection closed while idle: no busy loop, and the next request gets a new one', async () => {
  await chat();
  const before = connections;
  const cpu0 = cpuSeconds();
  await new Promise((r) => setTimeout(r, IDLE_MS + 850)); // the provider closes it meanwhile
  const idleCpu = cpuSeconds() - cpu0;
  // A watch left on the closed socket would spin on it: a whole core for the
  // second. Idle, the gateway uses next to nothing.
  assert.ok(idleCpu < 0.3, `gateway used ${idleCpu}s of CPU while idle`);
  await chat();
  await chat();
  assert.equal(connections - before, 1);
});

test('pipelined requests on one client connection are answered whole and in order', async () => {
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const one = (id) => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Helicone-Request-Id: ${id}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const ids = ['0190a000-0000-7000-8000-000000000001', '0190a000-0000-7000-8000-000000000002',
    '0190a000-0000-7000-8000-000000000003'];
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.write(ids.map(one).join('')); // one write: the three arrive together
  await h.waitFor(() => (got.match(/"chatcmpl-c"/g) || []).length === 3, 5000);
  sock.destroy();
  const replies = got.split(/(?=HTTP\/1\.1 )/);
  assert.equal(replies.length, 3);
  replies.forEach((reply, i) => {
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.match(reply, new RegExp(`Helicone-Id: ${ids[i]}`, 'i'));
    const len = Number(/content-length: (\d+)/i.exec(reply)[1]);
    assert.equal(Buffer.byteLength(reply.slice(reply.indexOf('\r\n\r\n') + 4)), len);
  });
});

test('an HTTP/1.0 client gets the whole body, then the connection closes', async () => {
  const sock = net.connect(gw.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d; });
  const closed = new Promise((resolve) => sock.on('close', resolve));
  sock.write(`POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await closed;
  assert.match(got, /^HTTP\/1\.0 200 /);
  assert.deepEqual(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)), JSON.parse(ANSWER));
});

test('a streamed answer arrives whole, chunk after chunk, on a reused client connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let round = 0; round < 3; round++) {
    const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'x-fake-chunks': '40' },
      body: JSON.stringify({ model: 'fake/gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'go' }] }),
    });
    assert.equal(r.status, 200);
    const events = r.body.split('\n\n').filter((e) => e.startsWith('data: '));
    assert.equal(events[events.length - 1], 'data: [DONE]');
    assert.ok(events.length >= 40, `${events.length} events`);
  }
  agent.destroy();
});

/** Sends raw bytes on a new connection; resolves with all it got once the
 *  gateway closed it or `until` matched what arrived. */
async function rawExchange(bytes, until) {
  return (await h.rawExchange(gw.port, bytes, until)).text;
}

test('Expect: 100-continue gets "100 Continue" before the body is sent, then the answer', async () => {
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Expect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  const sock = net.connect(gw.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.write(head);
  await h.waitFor(() => got.length > 0, 3000);
  assert.equal(got, 'HTTP/1.1 100 Continue\r\n\r\n');
  sock.write(body);
  await h.waitFor(() => got.includes('"chatcmpl-c"'), 3000);
  sock.destroy();
  assert.match(got.slice(25), /^HTTP\/1\.1 200 /);
});

test('a chunked request body is read whole, even cut into small writes', async () => {
  const chunks = [body.slice(0, 10), body.slice(10, 40), body.slice(40)];
  const framed = chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    'Transfer-Encoding: chunked\r\n\r\n';
  const all = head + framed;
  const parts = [];
  for (let i = 0; i < all.length; i += 7) parts.push(all.slice(i, i + 7));
  const got = await rawExchange(parts, /"chatcmpl-c"/);
  assert.match(got, /^HTTP\/1\.1 200 /);
  const len = Number(/content-length: (\d+)/i.exec(got)[1]);
  assert.deepEqual(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4, got.indexOf('\r\n\r\n') + 4 + len)), JSON.parse(ANSWER));
});

test('requests the gateway cannot read get an error and a closed connection; it keeps serving', async () => {
  const cases = [
    ['not http at all\r\n\r\n', 400],
    ['PROPFIND /v1 HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    [`GET /health HTTP/1.1\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`, 431],
    ['POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}', 417],
  ];
  for (const [bytes, status] of cases) {
    const got = await rawExchange(bytes);
    assert.match(got, new RegExp(`^HTTP/1\\.1 ${status} `), `for ${JSON.stringify(bytes.slice(0, 40))}`);
    assert.match(got, /connection: close/i);
    const err = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4));
    assert.equal(err.error.type, 'invalid_request_error');
  }
  await chat();
});

test('headers a client sends arrive without their surrounding blanks; a HEAD answer has no body', async () => {
  const got = await rawExchange('GET /health HTTP/1.1\r\nHost: x\r\nX-Pad:   v   \r\n\r\nHEAD /health HTTP/1.1\r\nHost: x\r\n\r\n',
    /HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 200[\s\S]*\r\n\r\n$/);
  const replies = got.split(/(?=HTTP\/1\.1 )/);
  assert.equal(replies.length, 2);
  const len = Number(/content-length: (\d+)/i.exec(replies[1])[1]);
  assert.ok(len > 0);
  assert.ok(replies[1].endsWith('\r\n\r\n'), 'HEAD answer carries no body');
  assert.match(replies[0], /^Date: /m);
});

test('server.idle_timeout ends idle and half-sent connections, not a slow answer', async () => {
  const g = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 1, shutdown_timeout: '5s', idle_timeout: '1s' },
  }));
  try {
    const openAndWatch = async (bytes) => {
      const sock = net.connect(g.port, '127.0.0.1');
      await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
      const t0 = Date.now();
      let got = '';
      sock.on('data', (d) => { got += d; });
      if (bytes) sock.write(bytes);
      await new Promise((resolve) => sock.on('close', resolve));
      return { ms: Date.now() - t0, got };
    };
    const fakeBody = JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    const [idle, half, slow] = await Promise.all([
      openAndWatch(null),
      openAndWatch('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"mo'),
      openAndWatch(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `X-Fake-Delay-Ms: 1600\r\nContent-Length: ${Buffer.byteLength(fakeBody)}\r\n\r\n${fakeBody}`),
    ]);
    assert.ok(idle.ms >= 800 && idle.ms < 4000, `idle connection closed after ${idle.ms} ms`);
    assert.equal(idle.got, '');
    assert.ok(half.ms >= 800 && half.ms < 4000, `half-sent request closed after ${half.ms} ms`);
    assert.equal(half.got, '');
    // the answer took longer than idle_timeout and still arrived; then the
    // connection idled out
    assert.match(slow.got, /^HTTP\/1\.1 200 /);
    assert.ok(slow.ms >= 1600 + 800, `slow answer's connection closed after ${slow.ms} ms`);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

test('a 3 MB request body arrives whole', async () => {
  const big = JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'word '.repeat(600000) }] });
  const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: big,
  });
  assert.equal(r.status, 200, r.body.slice(0, 300));
  assert.equal(JSON.parse(r.body).usage.prompt_tokens, 600000);
});
