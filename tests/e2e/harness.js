'use strict';
// Helpers for the end-to-end tests: the fake provider, temporary configs, the
// gateway process, and clients that remember every response they saw (so a
// test can check that no secret ever reached a client).

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const OpenAI = require('openai');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = process.env.TOLLGATE_BIN
  ? path.resolve(process.env.TOLLGATE_BIN) : path.join(REPO, 'build', 'tollgate');
const SECRET = 'sk-fake-SECRET-123';

// The real servers' module lends the two small helpers both need.
const { sleep, freePort } = require('./services');

/** Wait for a child to exit; resolves { code, signal }. */
function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => {
    const t = ms ? setTimeout(() => resolve(null), ms) : null;
    proc.once('exit', (code, signal) => { if (t) clearTimeout(t); resolve({ code, signal }); });
  });
}

// ---------------------------------------------------------------- fake provider

async function startFake() {
  const proc = spawn(process.execPath, [path.join(__dirname, 'fake-provider.js'), '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr.on('data', (d) => process.stderr.write(`[fake] ${d}`));
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`fake provider did not start: ${out}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    proc.once('exit', (code) => reject(new Error(`fake provider exited ${code}: ${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const get = async (p, method = 'GET') => (await fetch(url + p, { method })).json();
  return {
    port, url, proc,
    baseURL: `${url}/v1`,
    requests: () => get('/_fake/requests'),
    clear: () => get('/_fake/requests', 'DELETE'),
    stats: () => get('/_fake/stats'),
    /** Requests the fake received that carry header x-test-id: ID. */
    async requestsFor(id) {
      return (await get('/_fake/requests')).filter((r) => r.headers['x-test-id'] === id);
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await waitExit(proc, 5000);
    },
  };
}

// ---------------------------------------------------------------- config

// A tiny YAML writer for the plain nested maps/lists used in tests.
function toYaml(v, indent = '') {
  const scalar = (x) => {
    if (x === null) return 'null';
    if (typeof x === 'number' || typeof x === 'boolean') return String(x);
    const s = String(x);
    return /^[A-Za-z0-9_.\/-]+$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s)
      ? s : JSON.stringify(s);
  };
  if (Array.isArray(v)) {
    return v.map((x) => (x !== null && typeof x === 'object'
      ? `${indent}-\n${toYaml(x, indent + '  ')}` : `${indent}- ${scalar(x)}\n`)).join('');
  }
  return Object.entries(v).map(([k, x]) => (x !== null && typeof x === 'object'
    ? `${indent}${k}:\n${toYaml(x, indent + '  ')}` : `${indent}${k}: ${scalar(x)}\n`)).join('');
}

function tmpDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-e2e-'));
}

/** Write a config (object → YAML, or a string as is) to FILE or a new temp file. */
function writeConfig(config, file) {
  file = file || path.join(tmpDir(), 'tollgate.yaml');
  fs.writeFileSync(file, typeof config === 'string' ? config : toYaml(config));
  return file;
}

/** The usual test config: providers `fake` (key injected) and `byok` (no key). */
function baseConfig(fake, extra = {}) {
  const { providers = {}, ...rest } = extra;
  return {
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s', idle_timeout: '60s' },
    providers: {
      fake: { base_url: `${fake.url}/v1`, api_key: SECRET, timeout: 5 },
      byok: { base_url: `${fake.url}/v1` },
      ...providers,
    },
    logging: { level: 'info', format: 'text', output: 'stdout' },
    ...rest,
  };
}

// ---------------------------------------------------------------- shared stores

// The shared-store mode (TOLLGATE_E2E_SHARED=1): the suite's gateways keep
// their records, rules, budgets and keys in one PostgreSQL per test process
// (started on first use, stopped at exit) instead of SQLite files. A gateway
// with no storage.url gets a fresh database; each sqlite:PATH becomes one
// database, the same for every gateway started on that PATH (a restart finds
// what it stored). A test that needs the SQLite file itself passes
// { sqlite: true } to startGateway.
const SHARED = process.env.TOLLGATE_E2E_SHARED === '1';
let sharedPg = null; // the promise of it
let sharedPgUp = null; // once started
const sharedDbs = new Map(); // sqlite path -> PostgreSQL URL

async function sharedPostgres() {
  if (!sharedPg) {
    sharedPg = require('./services').startPostgres();
    sharedPgUp = await sharedPg;
    process.on('exit', () => sharedPgUp.stopSync());
  }
  return sharedPg;
}

/** CFG with its storage moved to the shared PostgreSQL (a copy; CFG as is
 *  outside the shared mode or when the gateway logs no requests). */
async function sharedStorage(cfg) {
  if (!SHARED || cfg.observability?.request_logging?.enabled === false) return cfg;
  const url = cfg.storage?.url;
  if (url && !url.startsWith('sqlite:')) return cfg;
  const pg = await sharedPostgres();
  const key = url && path.isAbsolute(url.slice(7)) ? url.slice(7) : null;
  let dbUrl = key && sharedDbs.get(key);
  if (!dbUrl) {
    dbUrl = pg.createDatabase(`e2e_${process.pid}_${sharedDbs.size + 1}_${Date.now() % 100000}`);
    sharedDbs.set(key || dbUrl, dbUrl);
  }
  return { ...cfg, storage: { ...(cfg.storage || {}), url: dbUrl } };
}

/** The bodies a store keeps as LZ4 frames (docs/observability.md), given as
 *  hex strings one per line, expanded by the lz4 tool: an independent
 *  reader of the same frame format. */
function expandFrames(hexLines) {
  return hexLines.split(/\s+/).filter((x) => /^04224d18/i.test(x))
    .map((x) => execFileSync('lz4', ['-dc'], { input: Buffer.from(x, 'hex') }).toString('latin1'))
    .join('\n');
}

const FRAMES_SQL = "SELECT HEX(request_body) FROM request_bodies; SELECT HEX(response_body) FROM request_bodies;";

/** The PostgreSQL database name that stands in for the SQLite store of a
 *  gateway started with CFG in the shared mode (sharedStorage), or null. */
function sharedDbName(cfg) {
  const url = cfg.storage?.url || '';
  const dbUrl = SHARED && url.startsWith('sqlite:') ? sharedDbs.get(url.slice(7)) : null;
  return dbUrl ? new URL(dbUrl).pathname.slice(1) : null;
}

/** Run a query in the store of a gateway started with CFG, once stopped:
 *  SQLITE with the sqlite3 shell on its file, or PG with psql (unaligned,
 *  tuples only) in the shared mode. Returns the output. */
function storeQuery(cfg, sqlite, pg) {
  const db = sharedDbName(cfg);
  if (db) return sharedPgUp.psql(pg, db);
  return execFileSync('sqlite3', ['-readonly', cfg.storage.url.slice(7), sqlite], { maxBuffer: 1 << 30 }).toString();
}

/** Everything the store of a gateway started with CFG holds, as text (to
 *  check that a secret never reached it): the SQLite file's bytes, or in the
 *  shared mode every row of its PostgreSQL database, bodies decoded; and in
 *  both, every body stored compressed, expanded. */
function storedText(cfg) {
  const frames = expandFrames(storeQuery(cfg, FRAMES_SQL, FRAMES_SQL.replace(/HEX\((\w+)\)/g, "encode($1, 'hex')")));
  const db = sharedDbName(cfg);
  if (!db) return fs.readFileSync(cfg.storage.url.slice(7)).toString('latin1') + frames;
  return sharedPgUp.psql('SELECT t::text FROM requests t; SELECT t::text FROM request_properties t;'
    + " SELECT concat(encode(request_body, 'escape'), encode(response_body, 'escape')) FROM request_bodies;"
    + ' SELECT t::text FROM api_keys t; SELECT t::text FROM rate_limit_rules t; SELECT t::text FROM budgets t;', db)
    + frames;
}

/** In the shared mode, run SQL in the PostgreSQL database of a gateway
 *  started with CFG (as sharedStorage chose it) and return psql's output;
 *  null when its store is not there. */
function sharedPsql(cfg, sql) {
  const url = cfg.storage?.url || '';
  if (!SHARED || !sharedPgUp || !/^postgres(ql)?:/.test(url)) return null;
  return sharedPgUp.psql(sql, new URL(url).pathname.slice(1));
}

// ---------------------------------------------------------------- gateway

/**
 * Start the gateway on a free port with CONFIG (an object; server.port is
 * filled in). Resolves once GET /health answers 200.
 */
async function startGateway(config, { bin = BIN, env = {}, attempts = 3, sqlite = false } = {}) {
  if (!fs.existsSync(bin)) throw new Error(`gateway binary not found: ${bin} (run make)`);
  if (!sqlite && typeof config === 'object') config = await sharedStorage(config);
  const shared = await sharedRedis(config);
  if (shared) config = shared.config;
  try {
    const gw = await launchGateway(config, bin, env, attempts);
    if (shared) shared.attach(gw);
    return gw;
  } catch (err) {
    await shared?.redis.stop();
    throw err;
  }
}

/**
 * The shared mode (TOLLGATE_E2E_SHARED=1): a gateway whose config has no
 * redis.url gets a fresh redis-server of its own (services.js), so every
 * test file runs its gateways on Redis-backed limits, budgets and
 * broadcasts. Returns null outside that mode, else { config (with
 * redis.url), redis, attach(gw) }: attach stops the server with the
 * gateway and keeps redis.url in a reloaded config.
 */
async function sharedRedis(cfg) {
  if (process.env.TOLLGATE_E2E_SHARED !== '1' || typeof cfg !== 'object' || cfg.redis?.url) return null;
  const { startRedis } = require('./services');
  const redis = await startRedis();
  const withRedis = (c) => ({ ...c, redis: { ...(c.redis || {}), url: redis.url } });
  return {
    config: withRedis(cfg),
    redis,
    attach(gw) {
      const { stop, reload } = gw;
      gw.stop = async (...args) => {
        try { return await stop(...args); } finally { await redis.stop(); }
      };
      gw.reload = (c) => reload(typeof c === 'string' ? c : withRedis(c));
    },
  };
}

async function launchGateway(config, bin, env, attempts) {
  let lastErr;
  for (let i = 0; i < attempts; i++) {
    const port = await freePort();
    const cfg = JSON.parse(JSON.stringify(config));
    cfg.server = { ...(cfg.server || {}), port };
    const dir = tmpDir(); // also the working directory: any store file lands here
    const configPath = writeConfig(cfg, path.join(dir, 'tollgate.yaml'));
    const proc = spawn(bin, ['--config', configPath], {
      cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const gw = makeGateway(proc, port, configPath, cfg, dir);
    try {
      await gw.waitHealthy(10000);
      return gw;
    } catch (err) {
      lastErr = err;
      await gw.stop('SIGKILL');
      if (!/address already in use|EADDRINUSE|bind/i.test(gw.output())) break;
    }
  }
  throw lastErr;
}

/**
 * Start the gateway again in a stopped (or killed) gateway's folder, with
 * its config file and port: what an operator's restart does. The folder
 * keeps whatever the first run left there (spool, journal). Resolves once
 * /health answers 200.
 */
async function respawnGateway(old, { bin = BIN, env = {} } = {}) {
  const proc = spawn(bin, ['--config', old.configPath], {
    cwd: old.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const gw = makeGateway(proc, old.port, old.configPath, old.config, old.dir);
  await gw.waitHealthy(15000);
  return gw;
}

function makeGateway(proc, port, configPath, config, dir) {
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  if (process.env.TOLLGATE_E2E_VERBOSE) {
    proc.stdout.pipe(process.stderr);
    proc.stderr.pipe(process.stderr);
  }
  const url = `http://127.0.0.1:${port}`;
  const exited = waitExit(proc);
  const gw = {
    proc, port, url, configPath, config, dir,
    baseURL: `${url}/v1`,
    output: () => output,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    exited,
    async waitHealthy(ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        if (!gw.alive()) {
          throw new Error(`gateway exited (${proc.exitCode ?? proc.signalCode}) before /health:\n${output}`);
        }
        try {
          const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
          if (r.status === 200) return;
        } catch { /* not up yet */ }
        if (Date.now() > deadline) throw new Error(`gateway /health not 200 after ${ms} ms:\n${output}`);
        await sleep(50);
      }
    },
    /** Send SIG (SIGTERM), wait for exit; resolves { code, signal, timedOut }. */
    async stop(sig = 'SIGTERM', ms = 15000) {
      let r = { ...(await waitExit(proc, 1)), timedOut: false };
      // SPEC §10 / the store's promise: no test may lose a record. Read the
      // counter while the gateway still serves (where /metrics is open to us).
      let dropped = 0;
      if (gw.alive()) {
        try {
          const m = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
          const text = m.status === 200 ? await m.text() : '';
          dropped = Number(/^tollgate_log_records_dropped_total (\S+)$/m.exec(text)?.[1] ?? 0);
        } catch { /* not answering: the exit status tells */ }
      }
      if (gw.alive()) {
        proc.kill(sig);
        const e = await waitExit(proc, ms);
        if (e) r = { ...e, timedOut: false };
        else { proc.kill('SIGKILL'); r = { ...(await exited), timedOut: true }; }
      }
      fs.rmSync(dir, { recursive: true, force: true });
      // A sanitizer build reports memory errors, leaks and undefined behaviour
      // on its output (and exits non-zero): show the report with the failure.
      if (/(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:/.test(output)) {
        process.stderr.write(`\n---- sanitizer report from the gateway ----\n${output}\n`);
        r.sanitizer = true;
      }
      if (dropped > 0) throw new Error(`the gateway dropped ${dropped} request records:\n${output}`);
      return r;
    },
    /** Rewrite the config file (object or raw text) and send SIGHUP. */
    reload(newConfig) {
      if (typeof newConfig === 'string') writeConfig(newConfig, configPath);
      else {
        // shared mode: the store the gateway started with, as sharedStorage chose it
        const storage = SHARED && config.storage ? { storage: config.storage } : {};
        writeConfig({ ...newConfig, ...storage, server: { ...(newConfig.server || {}), port } }, configPath);
      }
      proc.kill('SIGHUP');
    },
  };
  return gw;
}

// ---------------------------------------------------------------- clients

/**
 * Remembers the status, headers and body text of every response a test saw,
 * to check at the end that the provider key never reached a client.
 */
function makeRecorder() {
  const seen = [];
  const pending = new Set();
  const record = (url, res) => {
    const entry = { url, status: res.status, headers: Object.fromEntries(res.headers), body: '' };
    seen.push(entry);
    const p = res.clone().text().then((t) => { entry.body = t; }, () => {})
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  const recFetch = async (url, init) => {
    const res = await fetch(url, init);
    record(String(url), res);
    return res;
  };
  return {
    seen,
    fetch: recFetch,
    /** Wait for the recorded bodies still being read (bounded). */
    async settle(ms = 3000) {
      await Promise.race([Promise.allSettled([...pending]), sleep(ms)]);
    },
  };
}

/** An openai SDK client pointed at the gateway, recording what it sees. */
function openaiClient(gw, recorder, opts = {}) {
  return new OpenAI({
    baseURL: gw.baseURL,
    apiKey: 'sk-client-dummy',
    maxRetries: 0,
    timeout: 20000,
    fetch: recorder ? recorder.fetch : undefined,
    ...opts,
  });
}

/** Raw HTTP request on a given agent (for keep-alive checks). */
function rawRequest(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'), reusedSocket: req.reusedSocket,
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Sends raw bytes (a string, or an array of strings written 20 ms apart) on
 * a new connection to PORT; resolves with { text, closed } once the gateway
 * closed it (closed: true) or `until` matched what arrived, or after 5 s.
 */
async function rawExchange(port, bytes, until) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let text = '';
  let closed = false;
  const done = new Promise((resolve) => {
    sock.on('data', (d) => { text += d; if (until && until.test(text)) resolve(); });
    sock.on('close', () => { closed = true; resolve(); });
    sock.on('error', resolve);
  });
  for (const part of [].concat(bytes)) {
    sock.write(part);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await Promise.race([done, sleep(5000)]);
  sock.destroy();
  return { text, closed };
}

/** Assert helper: no trace of the provider key in output or anything a client saw. */
async function findSecretLeaks(gw, recorders) {
  const leaks = [];
  if (gw.output().includes(SECRET)) {
    const line = gw.output().split('\n').find((l) => l.includes(SECRET));
    leaks.push(`gateway output: ${line}`);
  }
  for (const rec of recorders) {
    await rec.settle();
    for (const e of rec.seen) {
      if (JSON.stringify(e.headers).includes(SECRET)) leaks.push(`headers of ${e.url}`);
      if (e.body.includes(SECRET)) leaks.push(`body of ${e.url}`);
    }
  }
  return leaks;
}

/** Poll FN until it returns a truthy value or MS passes; returns the last value. */
async function waitFor(fn, ms = 3000, step = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(step);
  }
}

/**
 * Read an openai SDK chat stream and abort it (through AC, its signal) at
 * the first content; resolves the time of the abort, 0 if no content came.
 */
async function abortAtFirstContent(stream, ac) {
  let tAbort = 0;
  try {
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content) { tAbort = Date.now(); ac.abort(); }
    }
  } catch { /* the SDK may end quietly or throw on abort */ }
  return tAbort;
}

/** A function tool for the tool-calling tests (OpenAI's layout). */
const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/** The single upstream request the fake received tagged x-test-id: ID. */
async function oneRequest(fake, id) {
  const list = await fake.requestsFor(id);
  if (list.length !== 1) {
    throw new Error(`expected 1 upstream request tagged ${id}, the fake saw ${list.length}`);
  }
  return list[0];
}

let counter = 0;
/** A unique id for tagging a test's upstream requests (header x-test-id). */
const testId = (name) => `${name}-${process.pid}-${++counter}`;

module.exports = {
  REPO, BIN, SECRET, OpenAI, sleep, freePort, waitExit, waitFor, testId,
  startFake, toYaml, writeConfig, baseConfig, startGateway, respawnGateway, sharedStorage, storedText, storeQuery, sharedPsql, SHARED, sharedRedis,
  makeRecorder, openaiClient, rawRequest, rawExchange, findSecretLeaks, oneRequest, abortAtFirstContent,
  WEATHER_TOOL,
};

/** The stored record of request ID at gateway GW (written off the request
 *  path: polled for up to 10 s). */
async function storedRecord(gw, id) {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${gw.url}/api/v1/requests/${id}`);
    if (r.status === 200) return r.json();
    await sleep(50);
  }
  throw new Error(`no record ${id}`);
}
module.exports.storedRecord = storedRecord;

/** Config additions for a gateway with a provider of every type beside
 *  `fake` (OpenAI-type): `claude` (Anthropic-type) and `gem` (Gemini-type),
 *  all on the fake provider, and PRICE ({input, output} USD per 1,000
 *  tokens) for the three models the tests use there. */
function everyProviderType(fake, price) {
  return {
    providers: {
      claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: SECRET, timeout: 5 },
      gem: { type: 'gemini', base_url: fake.url, api_key: SECRET, timeout: 5 },
    },
    cost_tracking: { pricing: { 'gpt-4o-mini': price, 'claude-haiku-4-5': price, 'gemini-2.5-flash': price } },
  };
}
module.exports.everyProviderType = everyProviderType;
