'use strict';
// Memory (docs/observability.md, "Memory"): the release binary's allocator
// gives freed pages back to the system within seconds, also once the
// gateway has gone idle after a burst, so its resident size follows its
// load instead of keeping the highest it ever reached.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const sanitizer = !!process.env.TOLLGATE_SANITIZER;
let dir;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-mem-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function rssKb(pid) {
  const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

async function chat(gw, chars) {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // random letters: a body LZ4 cannot shrink is held and stored at its size
    body: JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: crypto.randomBytes(chars * 3 / 4).toString('base64') }] }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
}

test('an idle gateway gives back the memory a burst of large bodies took',
  { skip: sanitizer && 'the sanitizer build keeps the allocator ASan intercepts' }, async () => {
    // No upstream: the mock answers; every request is recorded with its body.
    const config = h.baseConfig({ url: 'http://127.0.0.1:9' }, {
      storage: { url: `sqlite:${dir}/records.db` },
      logging: { level: 'warn', format: 'text', output: 'stdout' },
    });
    const gw = await h.startGateway(config, { sqlite: true });
    try {
      // 6 waves of 24 concurrent requests with 120 KB bodies: parsed,
      // answered, recorded (a wave fits the record queue)
      const burst = async () => {
        let peak = 0;
        for (let wave = 0; wave < 6; wave++) {
          await Promise.all(Array.from({ length: 24 }, () => chat(gw, 120 * 1024)));
          peak = Math.max(peak, rssKb(gw.proc.pid));
        }
        return peak;
      };
      // a first burst fills what stays (SQLite's page cache, the journal's
      // and connections' buffers); the second one's memory should go back
      await burst();
      await h.sleep(4000);
      const base = rssKb(gw.proc.pid);
      const peak = await burst();
      assert.ok(peak - base > 4 * 1024, `the second burst took ${peak - base} kB (${base} -> ${peak} kB): was the first one's memory kept?`);
      // jemalloc's defaults keep freed pages ~10 s and return them only
      // while their arena allocates: an idle gateway kept them
      let now = peak;
      for (let i = 0; i < 32 && now - base > (peak - base) / 3; i++) {
        await h.sleep(250);
        now = rssKb(gw.proc.pid);
      }
      assert.ok(now - base <= (peak - base) / 3,
        `8 s idle after the burst: ${now} kB resident (before ${base} kB, peak ${peak} kB)`);
      assert.deepEqual(await h.findSecretLeaks(gw, []), []);
    } finally {
      await gw.stop();
    }
  });
