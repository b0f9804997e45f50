'use strict';
// Load balancing among providers that serve one model (routing.load_balancing):
// a weighted split, a failing provider ejected and probed back, and the
// cheapest provider chosen until it asks for rest.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;

before(async () => { fake = await h.startFake(); });
after(async () => { await fake?.stop(); });

const messages = [{ role: 'user', content: 'hi' }];

test('weighted 3:1 split within ±10% over 400 requests', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      heavy: { base_url: `${fake.url}/v1`, weight: 3, models: ['lb-model'] },
      light: { base_url: `${fake.url}/v1`, weight: 1, models: ['lb-model'] },
    },
    routing: { load_balancing: { strategy: 'weighted' } },
    logging: { level: 'warn' },
  }));
  try {
    const client = h.openaiClient(gw);
    const counts = { heavy: 0, light: 0 };
    for (let batch = 0; batch < 8; batch++) {
      const rs = await Promise.all(Array.from({ length: 50 }, () =>
        client.chat.completions.create({ model: 'lb-model', messages }).withResponse()));
      for (const { response } of rs) counts[response.headers.get('helicone-provider')]++;
    }
    assert.equal(counts.heavy + counts.light, 400);
    assert.ok(counts.heavy >= 270 && counts.heavy <= 330, `heavy served ${counts.heavy} of 400`);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('a failing provider is ejected, then probed back once it answers again', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      // its first 5 requests fail with 500, later ones succeed
      shaky: { base_url: `${fake.url}/v1`, models: ['ej-model'],
        headers: { 'x-test-id': `shaky-${process.pid}`, 'x-fake-fail-times': '5' } },
      steady: { base_url: `${fake.url}/v1`, models: ['ej-model'] },
    },
    routing: { load_balancing: { strategy: 'round_robin', ejection_time: '2s' } },
    logging: { level: 'warn' },
  }));
  try {
    const client = h.openaiClient(gw);
    const ask = async () => {
      try {
        const { response } = await client.chat.completions.create({ model: 'ej-model', messages }).withResponse();
        return response.headers.get('helicone-provider');
      } catch (e) {
        return `error ${e.status}`;
      }
    };
    // Round robin sends every other request to shaky until its 5 failures eject it.
    const first = [];
    for (let i = 0; i < 12; i++) first.push(await ask());
    assert.equal(first.filter((p) => p === 'error 500').length, 5, first.join(','));
    const after = [];
    for (let i = 0; i < 10; i++) after.push(await ask());
    assert.deepEqual([...new Set(after)], ['steady'], `shaky still served while ejected: ${after}`);
    await h.sleep(2200);
    // The ejection ran out: a probe reaches shaky, which now answers, and it is back.
    const back = [];
    for (let i = 0; i < 10; i++) back.push(await ask());
    assert.ok(back.includes('shaky'), `shaky never came back: ${back}`);
    assert.ok(!back.some((p) => p.startsWith('error')), back.join(','));
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('cost: the cheaper provider serves; once it answers 429 the other does', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    providers: {
      // weight would send nearly everything to pricey: the price decides
      pricey: { base_url: `${fake.url}/v1`, weight: 20, models: ['cost-model'] },
      cheap: { base_url: `${fake.url}/v1`, weight: 1, models: ['cost-model'] },
    },
    routing: { load_balancing: { strategy: 'cost' } },
    cost_tracking: {
      pricing: {
        'pricey/cost-model': { input: 0.003, output: 0.015 },
        'cheap/cost-model': { input: 0.0005, output: 0.0015 },
      },
    },
    logging: { level: 'info' },
  }));
  try {
    assert.doesNotMatch(gw.output(), /strategy: cost/, 'cost is reported as not active');
    const client = h.openaiClient(gw);
    const ask = async (headers) => {
      try {
        const { response } = await client.chat.completions
          .create({ model: 'cost-model', messages }, { headers }).withResponse();
        return response.headers.get('helicone-provider');
      } catch (e) {
        return `error ${e.status} ${e.headers?.get('helicone-provider')}`;
      }
    };
    const first = await Promise.all(Array.from({ length: 40 }, () => ask()));
    assert.deepEqual([...new Set(first)], ['cheap'], first.join(','));

    // The fake answers this one request (it goes to cheap) with 429 and
    // Retry-After: 30; no fallback is configured, so the client sees it.
    const limited = await ask({ 'x-fake-status': '429', 'x-fake-retry-after': '30' });
    assert.equal(limited, 'error 429 cheap');

    // cheap rests for 30 s: the next cheapest serves
    const next = await Promise.all(Array.from({ length: 20 }, () => ask()));
    assert.deepEqual([...new Set(next)], ['pricey'], next.join(','));

    // each record is priced at the provider that served it
    for (const [name, price] of [['cheap', { input: 0.0005, output: 0.0015 }], ['pricey', { input: 0.003, output: 0.015 }]]) {
      let rec;
      for (let i = 0; i < 100 && !rec; i++) {
        rec = (await (await fetch(`${gw.url}/api/v1/requests?provider=${name}&status=200&limit=1`)).json()).data[0];
        if (!rec) await h.sleep(50);
      }
      assert.ok(rec, `a record served by ${name}`);
      const expected = (rec.prompt_tokens * price.input + rec.completion_tokens * price.output) / 1000;
      assert.ok(Math.abs(rec.cost - expected) < 1e-12, `${name}: cost ${rec.cost} != ${expected}`);
    }
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});
