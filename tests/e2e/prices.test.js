'use strict';
// Prices that can be refreshed (cost_tracking.prices_file, LiteLLM's format),
// unpriced models made visible (metric and one log line), and max_tokens
// lowered to the target model's output limit when a request is translated.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let dir;
let pricesFile;

// USD per token, as LiteLLM writes them; models the built-in table lacks.
const PRICES = {
  sample_spec: { input_cost_per_token: 'USD per input token', max_output_tokens: 'n' },
  'acme-chat-1': {
    input_cost_per_token: 2e-6, output_cost_per_token: 8e-6, cache_read_input_token_cost: 2e-7,
    max_output_tokens: 4000, litellm_provider: 'openai', mode: 'chat', supports_vision: true,
  },
  'openai/acme-chat-2': {
    input_cost_per_token: 1e-6, output_cost_per_token: 3e-6, litellm_provider: 'openai', mode: 'chat',
  },
  'dall-e-9': { output_cost_per_image: 0.04, litellm_provider: 'openai', mode: 'image_generation' },
};

before(async () => {
  fake = await h.startFake();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-prices-'));
  pricesFile = path.join(dir, 'litellm-prices.json');
  fs.writeFileSync(pricesFile, JSON.stringify(PRICES));
});
after(async () => {
  await fake?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function metrics(gw) {
  const r = await fetch(`${gw.url}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

function sample(text, name, labels) {
  const sel = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${sel}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('prices_file prices models the built-in table does not know; unpriced ones are counted and named once', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    cost_tracking: { prices_file: pricesFile },
  }));
  try {
    const client = h.openaiClient(gw);
    const a = await client.chat.completions.create({
      model: 'fake/acme-chat-1', messages: [{ role: 'user', content: 'price me please' }],
    });
    const b = await client.chat.completions.create({
      model: 'fake/acme-chat-2', messages: [{ role: 'user', content: 'and me' }],
    });
    for (let i = 0; i < 3; i++) {
      await client.chat.completions.create({
        model: 'fake/mystery-model-x', messages: [{ role: 'user', content: 'who prices me' }],
      });
    }
    const m = await metrics(gw);
    const costA = sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'acme-chat-1' });
    const wantA = a.usage.prompt_tokens * 2e-6 + a.usage.completion_tokens * 8e-6;
    assert.ok(Math.abs(costA - wantA) < 1e-12, `cost ${costA}, want ${wantA}`);
    const costB = sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'acme-chat-2' });
    const wantB = b.usage.prompt_tokens * 1e-6 + b.usage.completion_tokens * 3e-6;
    assert.ok(Math.abs(costB - wantB) < 1e-12, `cost ${costB}, want ${wantB}`);
    assert.equal(sample(m, 'tollgate_unpriced_requests_total', { provider: 'fake', model: 'mystery-model-x' }), 3);
    assert.equal(sample(m, 'tollgate_unpriced_requests_total', { provider: 'fake', model: 'acme-chat-1' }), undefined);
    assert.equal(sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'mystery-model-x' }), undefined);
    const named = gw.output().split('\n').filter((l) => /mystery-model-x' at provider 'fake' has no price/.test(l));
    assert.equal(named.length, 1, gw.output());
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('a broken prices_file stops the start with its name; SIGHUP re-reads the file', async () => {
  const bad = path.join(dir, 'broken.json');
  fs.writeFileSync(bad, '{"acme-chat-1": {"input_cost_per_token": "cheap"}}');
  const cfgPath = h.writeConfig(h.baseConfig(fake, { cost_tracking: { prices_file: bad } }));
  const { spawnSync } = require('node:child_process');
  const v = spawnSync(h.BIN, ['--validate', '--config', cfgPath], { encoding: 'utf8' });
  assert.notEqual(v.status, 0);
  assert.match(v.stdout + v.stderr, /cost_tracking\.prices_file/);
  assert.match(v.stdout + v.stderr, /broken\.json: model "acme-chat-1": input_cost_per_token is not a price/);

  const live = path.join(dir, 'live.json');
  fs.writeFileSync(live, JSON.stringify({ 'acme-late': { input_cost_per_token: 1e-6, output_cost_per_token: 1e-6 } }));
  const config = h.baseConfig(fake, { cost_tracking: { prices_file: live } });
  const gw = await h.startGateway(config);
  try {
    const client = h.openaiClient(gw);
    const ask = () => client.chat.completions.create({
      model: 'fake/acme-later', messages: [{ role: 'user', content: 'one two three' }],
    });
    await ask();
    let m = await metrics(gw);
    assert.equal(sample(m, 'tollgate_unpriced_requests_total', { provider: 'fake', model: 'acme-later' }), 1);
    // a new price list, same config file: SIGHUP reads it again
    fs.writeFileSync(live, JSON.stringify({ 'acme-later': { input_cost_per_token: 1e-6, output_cost_per_token: 1e-6 } }));
    gw.reload(config);
    assert.ok(await h.waitFor(() => /SIGHUP: configuration reloaded/.test(gw.output()), 5000), gw.output());
    let r;
    for (let i = 0; i < 50; i++) { // each worker swaps its configuration on its own turn
      r = await ask();
      m = await metrics(gw);
      if (sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'acme-later' }) !== undefined) break;
      await h.sleep(100);
    }
    const cost = sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'acme-later' });
    assert.ok(cost > 0, m);
    assert.ok(r.usage.prompt_tokens > 0);
    // a broken file on the next SIGHUP: refused with its name, the prices stay
    fs.writeFileSync(live, '{"acme-later": ');
    gw.reload(config);
    assert.ok(await h.waitFor(() => /the running configuration stays/.test(gw.output()), 5000), gw.output());
    assert.match(gw.output(), /live\.json: not JSON/);
    await ask();
    m = await metrics(gw);
    assert.ok(sample(m, 'tollgate_cost_usd_total', { provider: 'fake', model: 'acme-later' }) > cost, m);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('max_tokens from the Anthropic SDK is lowered to the target model\'s output limit', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    cost_tracking: { prices_file: pricesFile },
  }));
  try {
    // a timeout of our own: the SDK otherwise wants a stream for max_tokens 32000
    const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0, timeout: 30000 });
    const id = h.testId();
    // deepseek-chat: 8192 in the built-in table
    const msg = await claude.messages.create({
      model: 'fake/deepseek-chat', max_tokens: 32000,
      messages: [{ role: 'user', content: 'hello there' }],
    }, { headers: { 'x-test-id': id } });
    assert.equal(msg.type, 'message');
    // acme-chat-1: 4000 in the prices file
    await claude.messages.create({
      model: 'fake/acme-chat-1', max_tokens: 32000,
      messages: [{ role: 'user', content: 'hello again' }],
    }, { headers: { 'x-test-id': id } });
    // a model with no known limit: left as sent
    await claude.messages.create({
      model: 'fake/mystery-model-y', max_tokens: 32000,
      messages: [{ role: 'user', content: 'and once more' }],
    }, { headers: { 'x-test-id': id } });
    const got = (await fake.requestsFor(id)).map((r) => [r.body.model, r.body.max_tokens ?? r.body.max_completion_tokens]);
    assert.deepEqual(got, [['deepseek-chat', 8192], ['acme-chat-1', 4000], ['mystery-model-y', 32000]]);
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});

test('Claude Code\'s default claude-opus-4-8, also as claude-opus-4-8[1m], is priced as Opus 4.8', async () => {
  const gw = await h.startGateway(h.baseConfig(fake, {
    providers: { anthropic: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 5 } },
  }));
  try {
    const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0, timeout: 30000 });
    let want = 0;
    for (const model of ['claude-opus-4-8', 'claude-opus-4-8[1m]']) {
      const msg = await claude.messages.create({
        model, max_tokens: 1000, messages: [{ role: 'user', content: 'price this answer please' }],
      });
      // Opus 4.8: $5 input, $25 output per million tokens
      want = msg.usage.input_tokens * 5e-6 + msg.usage.output_tokens * 25e-6;
      const m = await metrics(gw);
      const got = sample(m, 'tollgate_cost_usd_total', { provider: 'anthropic', model });
      assert.ok(Math.abs(got - want) < 1e-12, `${model}: cost ${got}, want ${want}`);
      assert.equal(sample(m, 'tollgate_unpriced_requests_total', { provider: 'anthropic', model }), undefined);
    }
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
});
