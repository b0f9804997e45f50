'use strict';
// Real servers for the fleet tests and the shared-store mode of the suite:
// PostgreSQL, Redis and haproxy from Debian's packages, each started in a
// temporary folder on a private loopback port and stopped by the caller.
//
//   const pg = await startPostgres();   // pg.url: postgresql://tollgate:PASS@127.0.0.1:PORT/tollgate
//   const rd = await startRedis();      // rd.url: redis://127.0.0.1:PORT/0
//   const lb = await startHaproxy([p1, p2, p3]);  // lb.port
//   ... await pg.stop(); await rd.stop(); await lb.stop();
//
// PostgreSQL refuses to run as root, so as root it runs as the `postgres`
// user the Debian package made; the data folder is handed to that user.

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on port, or rejects after ms. */
async function waitPort(port, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on ${port}`);
    await sleep(50);
  }
}

function pgBinDir() {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) throw new Error('PostgreSQL is not installed (scripts/install-deps.sh)');
  const v = fs.readdirSync(base).filter((d) => fs.existsSync(path.join(base, d, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  if (!v) throw new Error('no initdb under /usr/lib/postgresql');
  return path.join(base, v, 'bin');
}

function killTree(proc, signal) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { try { proc.kill('SIGKILL'); } catch { /* gone */ } }, 10000);
    proc.once('exit', () => { clearTimeout(t); resolve(); });
    try { proc.kill(signal); } catch { clearTimeout(t); resolve(); }
  });
}

/**
 * A fresh PostgreSQL cluster with a database `tollgate` owned by a user
 * `tollgate` with a random password (password authentication over TCP).
 * Returns { url, port, password, dir, psql(sql) -> stdout, stop() }.
 */
async function startPostgres() {
  const bin = pgBinDir();
  const root = process.getuid && process.getuid() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-pg-'));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  fs.mkdirSync(sock);
  const password = crypto.randomBytes(12).toString('hex');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, `${password}\n`);
  if (root) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const as = (cmd, args, opts = {}) => (root
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], opts)
    : execFileSync(cmd, args, opts));
  as(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--auth-host=scram-sha-256',
    '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], { stdio: 'pipe' });
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', sock, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200', '-c', 'shared_buffers=32MB'];
  const postgres = path.join(bin, 'postgres');
  let proc;
  let log = '';
  const launch = async () => {
    proc = root
      ? spawn('runuser', ['-u', 'postgres', '--', postgres, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr.on('data', (d) => { log = (log + d).slice(-8192); });
    try {
      await waitPort(port, 20000, 'PostgreSQL');
    } catch (e) {
      await killTree(proc, 'SIGINT');
      throw new Error(`${e.message}: ${log}`);
    }
  };
  const pgCtlStop = () => {
    // runuser does not pass SIGINT on, so pg_ctl asks for the fast shutdown
    try { as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '20', 'stop'], { stdio: 'pipe' }); } catch { /* gone */ }
  };
  await launch();
  const psqlAs = (user, db, sql) => as(path.join(bin, 'psql'),
    ['-h', sock, '-p', String(port), '-U', user, '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql],
    { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  // Ready for queries (the port opens a little before start-up ends).
  for (let i = 0; ; i++) {
    try { psqlAs('postgres', 'postgres', 'SELECT 1'); break; } catch (e) {
      if (i > 100) throw e;
      await sleep(100);
    }
  }
  psqlAs('postgres', 'postgres', `CREATE ROLE tollgate LOGIN CREATEDB PASSWORD '${password}'`);
  psqlAs('postgres', 'postgres', 'CREATE DATABASE tollgate OWNER tollgate');
  const url = `postgresql://tollgate:${password}@127.0.0.1:${port}/tollgate`;
  return {
    url,
    port,
    password,
    dir,
    /** Run SQL as the superuser in database DB (default `tollgate`); returns psql's unaligned output. */
    psql: (sql, db = 'tollgate') => psqlAs('postgres', db, sql),
    /** A new empty database owned by tollgate; returns its URL. */
    createDatabase(name) {
      psqlAs('postgres', 'postgres', `CREATE DATABASE ${name} OWNER tollgate`);
      return `postgresql://tollgate:${password}@127.0.0.1:${port}/${name}`;
    },
    /** Stop the server, keeping its data and port for start(): an outage. */
    async pause() {
      pgCtlStop();
      await killTree(proc, 'SIGTERM');
    },
    /** Start it again after pause(); resolves once it accepts connections. */
    async start() {
      await launch();
      for (let i = 0; ; i++) {
        try { psqlAs('postgres', 'postgres', 'SELECT 1'); break; } catch (e) {
          if (i > 100) throw e;
          await sleep(100);
        }
      }
    },
    async stop() {
      pgCtlStop();
      await killTree(proc, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /** stop() for a process 'exit' handler, where nothing asynchronous runs. */
    stopSync() {
      pgCtlStop();
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A Redis server with no persistence. Returns { url, port, stop(), kill(),
 * restart(), pause(), resume(), cli(...args) }. opts.password: clients must AUTH (the url carries it).
 */
async function startRedis(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-redis-'));
  const port = await freePort();
  let proc;
  const launch = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'no',
      ...(opts.password ? ['--requirepass', opts.password] : [])],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitPort(port, 10000, 'Redis');
  };
  await launch();
  return {
    url: opts.password ? `redis://default:${opts.password}@127.0.0.1:${port}/0`
      : `redis://127.0.0.1:${port}/0`,
    port,
    /** Freeze it (SIGSTOP): connections open, nothing answered; resume() thaws it. */
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
    /** Run redis-cli args against it; resolves to its output, trimmed. */
    cli: (...args) => new Promise((resolve, reject) => {
      const c = spawn('redis-cli', ['-p', String(port), ...(opts.password ? ['-a', opts.password, '--no-auth-warning'] : []), ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d) => { out += d; });
      c.on('error', reject);
      c.on('exit', () => resolve(out.trim()));
    }),
    /** Stop it hard (a crash), keeping the port for restart(). */
    kill: () => killTree(proc, 'SIGKILL'),
    restart: launch,
    async stop() {
      await killTree(proc, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * haproxy in front of the given gateway ports, round robin, with HTTP
 * health checks on /health every 200 ms. Returns { port, stop() }.
 */
async function startHaproxy(backends, opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-haproxy-'));
  const port = await freePort();
  const cfg = [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  retries 2',
    '  option redispatch',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend gateways',
    'backend gateways',
    `  balance ${opts.balance || 'roundrobin'}`,
    '  option httpchk GET /health',
    '  retry-on conn-failure empty-response response-timeout',
    ...backends.map((p, i) => `  server g${i} 127.0.0.1:${p} check inter 200 fall 2 rise 2`),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  const proc = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log = (log + d).slice(-8192); });
  try {
    await waitPort(port, 10000, 'haproxy');
  } catch (e) {
    await killTree(proc, 'SIGKILL');
    throw new Error(`${e.message}: ${log}`);
  }
  return {
    port,
    config: cfg,
    log: () => log,
    async stop() {
      await killTree(proc, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startPostgres, startRedis, startHaproxy, freePort, waitPort, sleep };
