#!/usr/bin/env node
'use strict';
// Soak test (not in CI; run by hand and report the table): mixed traffic with
// faults and slow clients against the built gateway and the project's fake
// provider, sampling the gateway's resident memory and open descriptors
// every SAMPLE seconds. At the end it prints the samples, the counts of each
// kind of exchange, and whether memory and descriptors stayed flat: the
// median of the last third against the median of the middle third (the
// first third is warm-up: caches, pools and the SQLite page cache filling).
//
//   make && node bench/soak.js                 # 30 minutes
//   MINUTES=5 SAMPLE=5 node bench/soak.js
//   TOLLGATE_BIN=build-asan/tollgate MINUTES=3 node bench/soak.js
//
// Traffic, at CONCURRENCY workers in a loop each (default 24): plain and
// streamed chat completions, provider 500s and 429s, streams the provider
// drops mid-way, answers past the provider timeout, translated calls
// (OpenAI client → Anthropic-type provider), clients that abort a stream at
// its first chunk, clients that read a stream slowly, cache hits; plus
// SLOW_CONNS slowloris connections that send a header byte at a time
// (reopened when the header deadline closes them) and idle keep-alive
// connections. Exits 1 when the gateway died or grew (RSS or descriptors)
// by more than GROWTH (default 10 %) between the middle and the last third.

const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('../tests/e2e/harness');

const MINUTES = Number(process.env.MINUTES || 30);
const SAMPLE_S = Number(process.env.SAMPLE || 10);
const CONCURRENCY = Number(process.env.CONCURRENCY || 24);
const SLOW_CONNS = Number(process.env.SLOW_CONNS || 50);
const GROWTH = Number(process.env.GROWTH || 0.10);

const counts = {};
const count = (k) => { counts[k] = (counts[k] || 0) + 1; };
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

function readProc(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  const threads = Number(/Threads:\s+(\d+)/.exec(status)[1]);
  return { rss, fds, threads };
}

/** One request; resolves the status (or 'error'), reading the body as told. */
function request(gw, { route = '/v1/chat/completions', body, headers = {}, abortAtFirst = false,
  slowRead = false }) {
  return new Promise((resolve) => {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(`${gw.url}${route}`, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
      timeout: 30000,
    }, (res) => {
      if (abortAtFirst) {
        res.once('data', () => { req.destroy(); resolve(`${res.statusCode}-aborted`); });
        res.on('error', () => {});
        res.on('end', () => resolve(String(res.statusCode)));
        return;
      }
      if (slowRead) { // a client that stops reading for 2 s mid-stream
        res.once('data', () => { res.pause(); setTimeout(() => res.resume(), 2000); });
        res.on('end', () => resolve(String(res.statusCode)));
        res.on('error', () => resolve('error'));
        return;
      }
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
      res.on('error', () => resolve('error'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('error'));
    req.end(data);
  });
}

const msg = (s) => [{ role: 'user', content: s }];
const KINDS = [
  ['plain', 30, { body: { model: 'fake/gpt-4o-mini', messages: msg('hello there') } }],
  ['stream', 20, { body: { model: 'fake/gpt-4o-mini', stream: true, messages: msg('stream please') } }],
  ['p500', 5, { body: { model: 'fake/gpt-4o-mini', messages: msg('x') }, headers: { 'x-fake-status': '500' } }],
  ['p429', 5, { body: { model: 'fake/gpt-4o-mini', messages: msg('x') }, headers: { 'x-fake-status': '429' } }],
  ['drop-mid', 5, { body: { model: 'fake/gpt-4o-mini', stream: true, messages: msg('x') }, headers: { 'x-fake-drop': 'mid' } }],
  ['drop-before', 3, { body: { model: 'fake/gpt-4o-mini', messages: msg('x') }, headers: { 'x-fake-drop': 'before' } }],
  ['timeout', 2, { body: { model: 'slow/gpt-4o-mini', messages: msg('x') }, headers: { 'x-fake-delay-ms': '1500' } }],
  ['translated', 10, { body: { model: 'claude/claude-sonnet-4-5', stream: true, messages: msg('translate me') } }],
  ['abort', 5, { abortAtFirst: true, body: { model: 'fake/gpt-4o-mini', stream: true, messages: msg('x') }, headers: { 'x-fake-chunk-delay-ms': '50' } }],
  ['slow-reader', 3, { slowRead: true, body: { model: 'fake/gpt-4o-mini', stream: true, messages: msg('x') }, headers: { 'x-fake-chunks': '40' } }],
  ['cached', 10, { body: { model: 'fake/gpt-4o-mini', messages: msg('same question') }, headers: { 'helicone-cache-enabled': 'true' } }],
  ['bad-json', 2, { body: '{"model":', route: '/v1/chat/completions' }],
];
const TOTAL_WEIGHT = KINDS.reduce((a, k) => a + k[1], 0);
function pick() {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const k of KINDS) { r -= k[1]; if (r < 0) return k; }
  return KINDS[0];
}

async function worker(gw, until) {
  while (Date.now() < until) {
    const [name, , opts] = pick();
    const st = await request(gw, opts);
    count(`${name} ${st}`);
  }
}

/** A connection that sends its request head one byte a second, reopened when closed. */
function slowloris(gw, until) {
  const head = `GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`;
  const open = () => {
    if (Date.now() >= until) return;
    const s = net.connect(gw.port, '127.0.0.1');
    let i = 0;
    const t = setInterval(() => { if (i < head.length) s.write(head[i++]); }, 1000);
    s.on('error', () => {});
    s.on('close', () => { clearInterval(t); count('slowloris closed'); setTimeout(open, 500); });
  };
  open();
}

function idleKeepAlive(gw, until) {
  const open = () => {
    if (Date.now() >= until) return;
    const s = net.connect(gw.port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => { count('idle closed'); setTimeout(open, 1000); });
  };
  for (let i = 0; i < 20; i++) open();
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : 0; };

async function main() {
  const fake = await h.startFake();
  const gw = await h.startGateway(h.baseConfig(fake, {
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s', idle_timeout: '20s', header_timeout: '10s' },
    providers: {
      slow: { base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 1 },
      claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5 },
    },
    caching: { enabled: true, ttl: 60 },
    logging: { level: 'warn', format: 'text', output: 'stdout' },
  }));
  const until = Date.now() + MINUTES * 60000;
  const samples = [];
  const sample = () => {
    try {
      const s = readProc(gw.proc.pid);
      samples.push({ t: Math.round((Date.now() - (until - MINUTES * 60000)) / 1000), ...s });
      const done = Object.entries(counts).reduce((a, [k, v]) => a + (/slowloris|idle/.test(k) ? 0 : v), 0);
      process.stdout.write(`t=${String(samples.at(-1).t).padStart(5)}s rss=${s.rss.toFixed(1)}MB fds=${s.fds} threads=${s.threads} exchanges=${done}\n`);
    } catch { /* exited: found below */ }
  };
  const timer = setInterval(sample, SAMPLE_S * 1000);
  sample();
  for (let i = 0; i < SLOW_CONNS; i++) slowloris(gw, until);
  idleKeepAlive(gw, until);
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(gw, until)));
  clearInterval(timer);
  sample();
  const alive = gw.alive();
  const health = alive ? (await fetch(`${gw.url}/health`)).status : 0;
  agent.destroy();
  const stopped = await gw.stop();
  await fake.stop();

  console.log('\nexchanges by kind and status:');
  for (const k of Object.keys(counts).sort()) console.log(`  ${k.padEnd(28)} ${counts[k]}`);
  const third = Math.floor(samples.length / 3);
  const mid = samples.slice(third, 2 * third);
  const last = samples.slice(2 * third);
  const verdict = [];
  for (const key of ['rss', 'fds']) {
    const a = median(mid.map((s) => s[key]));
    const b = median(last.map((s) => s[key]));
    const growth = a ? (b - a) / a : 0;
    verdict.push({ key, a, b, growth, ok: growth <= GROWTH || (key === 'fds' && b - a <= 4) });
    console.log(`${key}: middle third median ${a.toFixed(1)}, last third median ${b.toFixed(1)} (${(growth * 100).toFixed(1)} %)`);
  }
  console.log(`gateway alive at the end: ${alive}, /health ${health}, exit ${stopped.code}${stopped.sanitizer ? ' (sanitizer report)' : ''}`);
  const ok = alive && health === 200 && stopped.code === 0 && !stopped.sanitizer && verdict.every((v) => v.ok);
  console.log(ok ? 'soak: flat' : 'soak: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
