'use strict';
// Claude Code itself (@anthropic-ai/claude-code, `claude -p`, normal mode —
// not --bare) through the gateway to the fake provider: on a Claude model
// (Anthropic-type, native), on an OpenAI-type model and on a Gemini-type
// model (translated), with tool calls that run and come back through the
// translation, with ANTHROPIC_BASE_URL with and without /v1, and a fleet's
// per-agent costs from ANTHROPIC_CUSTOM_HEADERS. Also the Anthropic SDK
// streaming through translated providers (input tokens in message_start)
// and the /v1/v1 routes with Claude Code's ?beta=true.
//
// Claude Code in normal mode puts role "system" turns inside `messages`;
// before the translators took them, every call to a non-Claude model
// ended in "400 message role must be 'user' or 'assistant'".

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

const CLAUDE = path.join(h.REPO, 'node_modules', '.bin', 'claude');
const RUN_TIMEOUT_MS = 120000; // Claude Code starts slowly; sanitizer gateways answer slowly
const MODELS = { claude: 'claude-sonnet-4-5', openai: 'deepseek-chat', gemini: 'gemini-2.5-flash' };
const PRICE = { input: 0.001, output: 0.004 }; // USD per 1,000 tokens, for every model here
const REPLY = 'Hello from the fake provider.';
const MARKER = 'TOLLGATE-SYSTEM-MARKER-7';

let fake;
let gw;
const outputs = []; // every Claude Code stdout, checked for the provider key at the end

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway({
    server: { host: '127.0.0.1', port: 0, workers: 2, shutdown_timeout: '5s', idle_timeout: '60s' },
    providers: {
      anthropic: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET, timeout: 60 },
      oai: { type: 'openai', base_url: `${fake.url}/v1`, api_key: h.SECRET, models: ['deepseek-*'], timeout: 60 },
      gem: { type: 'gemini', base_url: `${fake.url}/v1beta`, api_key: h.SECRET, models: ['gemini-*'], timeout: 60 },
    },
    cost_tracking: { pricing: Object.fromEntries(Object.values(MODELS).map((m) => [m, PRICE])) },
    logging: { level: 'info', format: 'text', output: 'stdout' },
  });
});

after(async () => {
  const r = await gw?.stop();
  await fake?.stop();
  assert.equal(r?.code, 0, 'the gateway did not exit cleanly');
  assert.ok(!r?.sanitizer, 'the sanitizer reported a problem');
  for (const out of outputs) assert.ok(!out.includes(h.SECRET), 'the provider key reached Claude Code');
  assert.ok(!gw.output().includes(h.SECRET), 'the provider key is in the gateway output');
});

/**
 * One non-interactive Claude Code run: a scratch HOME, the gateway as
 * ANTHROPIC_BASE_URL (+ suffix), `headers` as ANTHROPIC_CUSTOM_HEADERS.
 * Resolves { result, stdout, stderr, code }, result being the parsed
 * --output-format json object.
 */
async function claude(prompt, { model, suffix = '', headers = {}, args = [], cwd } = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-home-'));
  const work = cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-work-'));
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !/^(ANTHROPIC_|CLAUDE_|CLAUDECODE)/.test(k)));
  Object.assign(env, {
    HOME: home,
    ANTHROPIC_BASE_URL: gw.url + suffix,
    ANTHROPIC_API_KEY: 'anything',
    ANTHROPIC_MODEL: model,
    ANTHROPIC_CUSTOM_HEADERS: Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n'),
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    IS_SANDBOX: '1', // as root, --dangerously-skip-permissions needs it
  });
  const proc = spawn(CLAUDE, ['-p', prompt, '--output-format', 'json',
    '--dangerously-skip-permissions', ...args], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const { code, signal } = await h.waitExit(proc);
  clearTimeout(timer);
  fs.rmSync(home, { recursive: true, force: true });
  if (!cwd) fs.rmSync(work, { recursive: true, force: true });
  outputs.push(stdout, stderr);
  let result;
  try { result = JSON.parse(stdout); } catch {
    throw new Error(`claude exited ${code ?? signal} without a JSON result:\n${stdout}\n${stderr}`);
  }
  assert.equal(result.is_error, false, `Claude Code reported an error: ${result.result}\n${stderr}`);
  return { result, stdout, stderr, code };
}

const anthropicHeaders = (req) => Object.keys(req.headers).filter((k) => k.startsWith('anthropic-'));

/** The gateway's records tagged with property Test-Id: ID (once all are written). */
async function recordsFor(id, atLeast) {
  let data = [];
  await h.waitFor(async () => {
    const r = await fetch(`${gw.url}/api/v1/requests?limit=1000&property.Test-Id=${encodeURIComponent(id)}`);
    data = (await r.json()).data;
    return data.length >= atLeast;
  }, 10000);
  return data;
}

test('Claude Code on a Claude model: native to the Anthropic-type provider, ?beta=true and anthropic-* headers kept', async () => {
  const id = h.testId('cc-claude');
  const { result } = await claude('Say hello.', {
    model: MODELS.claude,
    headers: { 'x-test-id': id, 'Helicone-Property-Test-Id': id, 'Helicone-Property-Agent-Name': 'a1' },
  });
  assert.equal(result.result, REPLY);
  const seen = (await fake.requestsFor(id)).filter((r) => r.path.startsWith('/v1/messages'));
  assert.ok(seen.length >= 1, 'the fake saw no Messages call');
  for (const r of seen) {
    assert.equal(r.query.beta, 'true', 'the client\'s query was not kept on a native call');
    assert.ok(r.headers['anthropic-beta'], 'anthropic-beta did not reach the Anthropic-type provider');
    assert.equal(r.headers['anthropic-version'], '2023-06-01');
    assert.equal(r.headers['x-api-key'], h.SECRET);
    assert.equal(r.body.model, MODELS.claude);
  }
  const recs = await recordsFor(id, seen.length);
  assert.ok(recs.every((r) => r.route === '/v1/messages' && r.status === 200 && r.provider === 'anthropic'));
});

test('Claude Code on an OpenAI-type model in normal mode: system turns merged, no anthropic-* headers', async () => {
  const id = h.testId('cc-openai');
  const { result } = await claude('Say hello.', {
    model: MODELS.openai, args: ['--append-system-prompt', MARKER],
    headers: { 'x-test-id': id, 'Helicone-Property-Test-Id': id, 'Helicone-Property-Agent-Name': 'a2' },
  });
  assert.equal(result.result, REPLY);
  const seen = await fake.requestsFor(id);
  assert.ok(seen.length >= 1, 'the fake saw no call');
  for (const r of seen) {
    assert.equal(r.path.split('?')[0], '/v1/chat/completions');
    assert.deepEqual(anthropicHeaders(r), [], 'anthropic-* headers reached an OpenAI-type provider');
    assert.equal(r.headers.authorization, `Bearer ${h.SECRET}`);
    const msgs = r.body.messages;
    assert.equal(msgs[0].role, 'system');
    assert.match(msgs[0].content, new RegExp(MARKER), 'the system prompt is missing');
    assert.equal(msgs.filter((m) => m.role === 'system').length, 1, 'system turns were not merged');
    for (const m of msgs) assert.ok(['system', 'user', 'assistant', 'tool'].includes(m.role), m.role);
    // Claude Code's user_id is a JSON object of ~150 characters: OpenAI takes 64 at most
    assert.match(r.body.user, /^u-[0-9a-f]{16}$/, 'metadata.user_id did not become a short user');
    assert.ok(Array.isArray(r.body.tools) && r.body.tools.every((t) => t.type === 'function'));
  }
  const recs = await recordsFor(id, seen.length);
  assert.ok(recs.every((r) => r.route === '/v1/messages' && r.status === 200 && r.provider === 'oai'));
  assert.ok(recs.every((r) => r.prompt_tokens > 0 && r.cost > 0), 'records without usage or cost');
});

test('Claude Code on a Gemini-type model: a Read tool call runs and its result comes back', async () => {
  const id = h.testId('cc-gemini');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cc-work-'));
  const file = path.join(dir, 'note.txt');
  fs.writeFileSync(file, 'tollgate note 7\n');
  try {
    const { result } = await claude(`Read the note: [[tool Read {"file_path":"${file}"}]]`, {
      model: MODELS.gemini, cwd: dir, args: ['--append-system-prompt', MARKER],
      headers: { 'x-test-id': id, 'x-fake-tools': 'prompt', 'Helicone-Property-Test-Id': id,
        'Helicone-Property-Agent-Name': 'a1' },
    });
    assert.match(result.result, /^Tool result: .*tollgate note 7/s);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const seen = await fake.requestsFor(id);
  assert.ok(seen.length >= 2, `expected the call and the answer to its result, the fake saw ${seen.length}`);
  for (const r of seen) {
    assert.match(r.path, /^\/v1beta\/models\/gemini-2\.5-flash:(stream)?[gG]enerateContent/);
    assert.deepEqual(anthropicHeaders(r), [], 'anthropic-* headers reached a Gemini-type provider');
    assert.equal(r.headers['x-goog-api-key'], h.SECRET);
    const sys = r.body.systemInstruction.parts.map((p) => p.text).join('\n');
    assert.match(sys, new RegExp(MARKER));
    for (const c of r.body.contents) assert.ok(['user', 'model'].includes(c.role), c.role);
  }
  const answered = seen.find((r) => r.body.contents.at(-1).parts.some((p) => p.functionResponse));
  assert.ok(answered, 'no request handed the tool result back');
  const fr = answered.body.contents.at(-1).parts.find((p) => p.functionResponse).functionResponse;
  assert.equal(fr.name, 'Read');
  assert.match(JSON.stringify(fr.response), /tollgate note 7/);
  const call = answered.body.contents.at(-2).parts.find((p) => p.functionCall).functionCall;
  assert.deepEqual(call, { name: 'Read', args: { file_path: file } });
});

test('Claude Code on an OpenAI-type model with ANTHROPIC_BASE_URL ending in /v1: a Bash tool call', async () => {
  const id = h.testId('cc-tool');
  const { result } = await claude(
    'Run it: [[tool Bash {"command":"echo tollgate-$((6*7))","description":"print a number"}]]', {
      model: MODELS.openai, suffix: '/v1',
      headers: { 'x-test-id': id, 'x-fake-tools': 'prompt', 'Helicone-Property-Test-Id': id,
        'Helicone-Property-Agent-Name': 'a1' },
    });
  assert.match(result.result, /^Tool result: .*tollgate-42/s, 'the command did not run or its output was lost');
  const seen = await fake.requestsFor(id);
  const answered = seen.find((r) => r.body.messages.at(-1).role === 'tool');
  assert.ok(answered, 'no request handed the tool result back');
  const toolMsg = answered.body.messages.at(-1);
  assert.match(toolMsg.content, /tollgate-42/);
  const asked = answered.body.messages.findLast((m) => m.role === 'assistant');
  assert.equal(asked.tool_calls[0].id, toolMsg.tool_call_id, 'the tool result names another call');
  assert.equal(asked.tool_calls[0].function.name, 'Bash');
  for (const r of seen) assert.deepEqual(anthropicHeaders(r), []);
  // /v1/v1/messages is recorded as the route it means
  const recs = await recordsFor(id, seen.length);
  assert.ok(recs.length >= 2);
  assert.ok(recs.every((r) => r.route === '/v1/messages' && r.status === 200), JSON.stringify(recs.map((r) => r.route)));
});

test('a fleet\'s per-agent costs: the Agent-Name property from ANTHROPIC_CUSTOM_HEADERS', async () => {
  const list = async (agent) => {
    const r = await fetch(`${gw.url}/api/v1/requests?limit=1000&filter=properties.Agent-Name=${agent}`);
    assert.equal(r.status, 200);
    return (await r.json()).data;
  };
  const a1 = await list('a1');
  const a2 = await list('a2');
  assert.ok(a1.length >= 4, `a1 made ${a1.length} calls`); // three runs, two of them with a tool call
  assert.ok(a2.length >= 1);
  assert.ok([...a1, ...a2].every((r) => r.cost !== null && r.cost > 0), 'a record without a cost');
  assert.ok(new Set(a1.map((r) => r.provider)).size === 3, 'a1 ran on all three provider types');
  const sum = (rs) => rs.reduce((s, r) => s + r.cost, 0);
  const near = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} != ${b}`);

  const c = await (await fetch(`${gw.url}/api/v1/requests/costs?filter=properties.Agent-Name=a1`)).json();
  assert.equal(c.requests, a1.length);
  assert.equal(c.unpriced, 0);
  near(c.total_cost, sum(a1), 'requests/costs total for a1');
  assert.equal(c.prompt_tokens, a1.reduce((s, r) => s + r.prompt_tokens, 0));

  const g = await (await fetch(`${gw.url}/api/v1/costs?group_by=property:Agent-Name`)).json();
  const byAgent = Object.fromEntries(g.data.map((d) => [d.group, d]));
  assert.equal(byAgent.a1.requests, a1.length);
  near(byAgent.a1.total_cost, sum(a1), 'costs group a1');
  assert.equal(byAgent.a2.requests, a2.length);
  near(byAgent.a2.total_cost, sum(a2), 'costs group a2');
});

test('/v1/v1/messages and /v1/v1/messages/count_tokens with ?beta=true, on every provider type', async () => {
  const post = (p, body) => fetch(`${gw.url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'anything', 'anthropic-version': '2023-06-01',
      'anthropic-beta': 'claude-code-20250219' },
    body: JSON.stringify(body),
  });
  const messages = [{ role: 'user', content: 'count these words please' },
    { role: 'system', content: 'a system turn, as Claude Code sends it' }];
  for (const model of Object.values(MODELS)) {
    for (const p of ['/v1/messages/count_tokens?beta=true', '/v1/v1/messages/count_tokens?beta=true']) {
      const r = await post(p, { model, messages: messages.slice(0, model === MODELS.claude ? 1 : 2) });
      assert.equal(r.status, 200, `${p} ${model}`);
      assert.ok((await r.json()).input_tokens > 0);
    }
    const r = await post('/v1/v1/messages?beta=true', { model, max_tokens: 50, messages });
    assert.equal(r.status, 200, `${model}: ${await r.clone().text()}`);
    const m = await r.json();
    assert.equal(m.type, 'message');
    assert.equal(m.content[0].text, REPLY);
  }
  // only the Anthropic routes double their /v1
  const r = await post('/v1/v1/chat/completions', { model: MODELS.openai, messages });
  assert.equal(r.status, 404);
});

test('Anthropic SDK streaming through OpenAI-type and Gemini-type providers and the mock: message_start carries input tokens', async () => {
  const sdk = new Anthropic({ baseURL: gw.url, apiKey: 'anything', maxRetries: 0 });
  for (const model of [MODELS.openai, MODELS.gemini, 'mock/echo']) {
    const stream = sdk.messages.stream({
      model, max_tokens: 50, system: 'Answer in five words.',
      messages: [{ role: 'user', content: 'Tell me something about gateways and their many uses.' }],
    });
    let start;
    // a copy: the SDK's snapshot is this very object, updated by message_delta
    stream.on('streamEvent', (e) => { if (e.type === 'message_start') start = structuredClone(e.message); });
    const final = await stream.finalMessage();
    assert.ok(start, 'no message_start');
    assert.ok(start.usage.input_tokens > 0, `${model}: message_start input_tokens ${start.usage.input_tokens}`);
    assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0);
    if (model !== 'mock/echo') assert.equal(final.content[0].text, REPLY);
    if (model === MODELS.gemini) {
      // Gemini counts the prompt in its first event: message_start has its count
      assert.equal(start.usage.input_tokens, final.usage.input_tokens);
    }
  }
});
