'use strict';
// The gateway's own connections under attack (issue 14, items 3 and 4):
// more clients than file descriptors must not spin the accept loop, flood
// the log or lock out /health; a request head or body trickled in a byte
// at a time must not hold a connection for ever.
//
// Deadlines here are generous upper bounds (the machine may be busy): the
// point is that connections end at all and the gateway keeps answering.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

let fake;
before(async () => { fake = await h.startFake(); });
after(async () => { await fake?.stop(); });

/** Opens a TCP connection; resolves the socket once connected. Records the
 *  bytes it gets (sock.got) and whether it was closed (sock.gone). */
function connect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.got = '';
    sock.gone = false;
    sock.on('data', (d) => { sock.got += d; });
    sock.on('close', () => { sock.gone = true; });
    sock.on('error', () => {}); // a reset is a close here
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

/** GET /health on a new connection, with a deadline; resolves the status. */
async function health(gw, ms = 10000) {
  const r = await fetch(`${gw.url}/health`, { signal: AbortSignal.timeout(ms) });
  await r.text();
  return r.status;
}

/** CPU seconds (user + system) the gateway process has used so far. */
function cpuSeconds(gw) {
  const f = fs.readFileSync(`/proc/${gw.proc.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function metric(gw, re) {
  const text = await (await fetch(`${gw.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return Number(re.exec(text)?.[1] ?? NaN);
}

/** A wrapper that starts the gateway with a hard limit of N descriptors
 *  (soft and hard: the gateway cannot raise it). */
const wrappers = [];
after(() => wrappers.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function limitedBin(n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-ulimit-'));
  wrappers.push(dir);
  const file = path.join(dir, 'tollgate.sh');
  fs.writeFileSync(file, `#!/bin/sh\nulimit -n ${n} || exit 111\nexec "${h.BIN}" "$@"\n`, { mode: 0o755 });
  return file;
}

/** 200 clients hold connections to a gateway with 64 descriptors. With
 *  `maxConnections` above what 64 descriptors allow, accept() itself fails
 *  (EMFILE) instead of the limit stopping it first. */
async function heldConnections(maxConnections) {
  const cfg = h.baseConfig(fake);
  if (maxConnections) cfg.server.max_connections = maxConnections;
  const gw = await h.startGateway(cfg, { bin: limitedBin(64) });
  const socks = [];
  let stop;
  try {
    // 200 clients connect and say nothing; the kernel completes every
    // handshake (listen backlog) whether the gateway accepts or not.
    for (let i = 0; i < 200; i++) socks.push(await connect(gw.port));
    await h.sleep(500);
    const cpu0 = cpuSeconds(gw);
    // While they are held, new clients still get in: the longest idle
    // connections are closed to make room.
    for (let i = 0; i < 3; i++) assert.equal(await health(gw), 200);
    await h.sleep(1000);
    // Not spinning on accept(): a spin burns a whole core meanwhile.
    const cpu = cpuSeconds(gw) - cpu0;
    assert.ok(cpu < 1.2, `gateway used ${cpu}s of CPU in ~1.5 s while 200 connections were held`);
    assert.ok(socks.filter((s) => s.gone).length > 0, 'no idle connection was closed to make room');
    const evicted = await metric(gw, /^tollgate_connections_dropped_total\{reason="evicted"\} (\S+)$/m);
    assert.ok(evicted > 0, `evicted: ${evicted}`);
    assert.ok((await metric(gw, /^tollgate_connections_open (\S+)$/m)) >= 1);
    if (!maxConnections) {
      // a real request too: the limit left descriptors for the store and
      // the provider connection (past it, idle clients hold them all)
      const r = await h.rawRequest(`${gw.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(r.status, 200, r.body);
    }
    socks.forEach((s) => s.destroy());
    assert.equal(await h.waitFor(async () => (await health(gw)) === 200, 10000), true);
    assert.ok(!/Error from accept\(\) call/.test(gw.output()), 'libevent logged accept errors itself');
    // a few start-up lines and at most one pressure line per worker every 10 s
    const lines = gw.output().split('\n').length;
    assert.ok(lines < 40, `${lines} log lines:\n${gw.output().slice(0, 3000)}`);
  } finally {
    socks.forEach((s) => s.destroy());
    stop = await gw.stop(); // also when the test failed: no gateway left behind
  }
  assert.equal(stop.code, 0, gw.output().slice(-3000));
}

test('64 descriptors and 200 held connections: /health answers, no spin, a short log', async () => {
  await heldConnections(0);
});

test('past the descriptors (max_connections too high): accept errors neither spin nor flood the log', async () => {
  await heldConnections(1000);
});

test('500 slowloris connections are closed by server.header_timeout with a 408', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s', header_timeout: '2s' },
  }));
  const socks = [];
  let ticker;
  let stop;
  try {
    // One of them had a request answered first: the deadline of its next
    // head starts at that head's first byte.
    const served = await connect(gw.port);
    served.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await h.waitFor(() => /\r\n\r\n\{/.test(served.got), 5000);
    assert.match(served.got, /^HTTP\/1\.1 200 /);
    served.got = '';
    socks.push(served);
    for (let i = 0; i < 499; i++) socks.push(await connect(gw.port));
    for (const s of socks) s.write('GET /health HTTP/1.1\r\n');
    // then one byte of a header every second, as long as they are open:
    // the idle timeout (60 s) never fires, the head's deadline must
    const header = 'X-Slow: ' + 'a'.repeat(1000);
    let at = 0;
    ticker = setInterval(() => {
      for (const s of socks) if (!s.gone) s.write(header[at % header.length]);
      at++;
    }, 1000);
    assert.equal(await health(gw), 200);
    const allClosed = await h.waitFor(() => socks.every((s) => s.gone), 30000, 100);
    assert.ok(allClosed, `${socks.filter((s) => !s.gone).length} of 500 still open after 30 s`);
    const answered = socks.filter((s) => /^HTTP\/1\.1 408 /.test(s.got));
    assert.equal(answered.length, 500, `only ${answered.length} got a 408`);
    assert.match(answered[0].got, /connection: close/i);
    const err = JSON.parse(answered[0].got.slice(answered[0].got.indexOf('\r\n\r\n') + 4));
    assert.equal(err.error.code, 'request_timeout');
    assert.match(err.error.message, /header_timeout/);
    assert.equal(await health(gw), 200);
    const n = await metric(gw, /^tollgate_connections_dropped_total\{reason="header_timeout"\} (\S+)$/m);
    assert.ok(n >= 500, `header_timeout drops: ${n}`);
    assert.ok(gw.output().split('\n').length < 40, 'no log line per closed connection');
  } finally {
    clearInterval(ticker);
    socks.forEach((s) => s.destroy());
    stop = await gw.stop();
  }
  assert.equal(stop.code, 0);
});

test('a body slower than server.body_min_rate gets a 408; a normal or slow-but-steady one passes', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    server: {
      host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s',
      body_timeout: '2s', body_min_rate: '10KB',
    },
  }));
  let stop;
  // a 100 KB chat request
  const pad = 100000 - JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: '' }] }).length;
  const body = JSON.stringify({ model: 'fake/gpt-4o-mini', messages: [{ role: 'user', content: 'w'.repeat(pad) }] });
  assert.equal(body.length, 100000);
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${body.length}\r\n\r\n`;
  /** Sends the body in `piece`-byte writes every `everyMs`; resolves the
   *  socket once the gateway answered (and closed, for a refusal), or after
   *  `ms`. (No half-close: the gateway takes it for a client gone.) */
  const send = async (piece, everyMs, ms = 30000) => {
    const s = await connect(gw.port);
    s.write(head);
    for (let off = 0; off < body.length && !s.gone && !s.got; off += piece) {
      s.write(body.slice(off, off + piece));
      if (everyMs) await h.sleep(everyMs);
    }
    await h.waitFor(() => s.gone || /\r\n\r\n[\s\S]*\}\s*$/.test(s.got), ms, 50);
    s.destroy();
    return s;
  };
  try {
    // 2 KB/s: 10 KB/s earn a second each; at 2 KB/s the body falls behind
    // the 2 s allowance after ~2.5 s, long before its 50 s.
    const slow = await send(1024, 500);
    assert.match(slow.got, /^HTTP\/1\.1 408 /);
    assert.match(slow.got, /connection: close/i);
    assert.match(slow.got, /body_min_rate/);
    // all at once
    const normal = await send(body.length, 0);
    assert.match(normal.got, /^HTTP\/1\.1 200 /);
    // 25 KB/s over ~4 s: longer than body_timeout, but above the minimum rate
    const steady = await send(5000, 200);
    assert.match(steady.got, /^HTTP\/1\.1 200 /);
    const n = await metric(gw, /^tollgate_connections_dropped_total\{reason="body_timeout"\} (\S+)$/m);
    assert.equal(n, 1);
  } finally {
    stop = await gw.stop();
  }
  assert.equal(stop.code, 0);
});
