'use strict';
// The Anthropic Messages dialect through the official @anthropic-ai/sdk:
// against the mock, and against an OpenAI-type provider through the
// translator (as Claude Code on DeepSeek would be).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let gw;
let claude;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake));
  claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

test('Anthropic SDK -> mock: a message with usage', async () => {
  const m = await claude.messages.create({
    model: 'mock/echo', max_tokens: 100, messages: [{ role: 'user', content: 'hello from the anthropic sdk' }],
  });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.content[0].text, /hello from the anthropic sdk/);
  assert.equal(m.stop_reason, 'end_turn');
  assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
});

test('Anthropic SDK -> mock: a stream with its event types intact', async () => {
  const stream = claude.messages.stream({
    model: 'mock/echo', max_tokens: 100, messages: [{ role: 'user', content: 'stream this' }],
  });
  const types = [];
  stream.on('streamEvent', (e) => types.push(e.type));
  const final = await stream.finalMessage();
  assert.match(final.content[0].text, /stream this/);
  for (const t of ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']) {
    assert.ok(types.includes(t), `no ${t} in ${types}`);
  }
  assert.ok(final.usage.output_tokens > 0);
});

test('Anthropic SDK -> OpenAI-type provider: translated both ways, plain', async () => {
  const id = h.testId('a2o');
  const m = await claude.messages.create({
    model: 'fake/deepseek-chat', max_tokens: 64, system: 'be brief',
    messages: [{ role: 'user', content: 'three words please' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'three words here' } });
  assert.equal(m.content[0].text, 'three words here');
  assert.equal(m.stop_reason, 'end_turn');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.body.model, 'deepseek-chat');
  assert.equal(seen.body.messages[0].role, 'system');
  assert.equal(seen.body.messages[0].content, 'be brief');
  assert.equal(seen.headers.authorization, `Bearer ${h.SECRET}`);
  assert.equal(seen.headers['x-api-key'], undefined, 'the client key reached a provider with its own');
});

test('Anthropic SDK -> OpenAI-type provider: translated stream', async () => {
  const id = h.testId('a2o-stream');
  const stream = claude.messages.stream({
    model: 'fake/deepseek-chat', max_tokens: 64, messages: [{ role: 'user', content: 'stream it' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'streamed through the translator', 'x-fake-chunks': '4' } });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, 'streamed through the translator');
  assert.ok(final.usage.output_tokens > 0, 'usage missing from message_delta');
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.stream, true);
});

test('count_tokens: a local estimate for a provider without the endpoint', async () => {
  const r = await claude.messages.countTokens({
    model: 'fake/deepseek-chat', messages: [{ role: 'user', content: 'how many tokens is this?' }],
  });
  assert.ok(r.input_tokens > 0);
});

test('errors on the Anthropic routes come in Anthropic\'s shape', async () => {
  await assert.rejects(claude.messages.create({ model: 'nope/x', max_tokens: 5, messages: [] }), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.error?.type, 'error');
    assert.equal(e.error?.error?.type, 'not_found_error');
    return true;
  });
  const raw = await fetch(`${gw.url}/v1/messages`, { method: 'POST', body: '{"model":' });
  assert.equal(raw.status, 400);
  const body = await raw.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'invalid_request_error');
  // a provider error, translated
  await assert.rejects(claude.messages.create({ model: 'fake/x', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-status': '429' } }), (e) => e.status === 429 && e.error?.error?.type === 'rate_limit_error');
});

test('OpenAI SDK -> an Anthropic-type provider: translated request, answer and stream', async () => {
  const claudeGw = await h.startGateway(h.baseConfig(fake, {
    providers: { claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET } },
  }));
  try {
    const client = h.openaiClient(claudeGw);
    const id = h.testId('o2a');
    const r = await client.chat.completions.create({
      model: 'claude-3-5-haiku-latest',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'four words for me' }],
    }, { headers: { 'x-test-id': id, 'x-fake-reply': 'here are four words', 'x-fake-cache-read': '2' } });
    assert.equal(r.choices[0].message.content, 'here are four words');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.completion_tokens, 4);
    // Anthropic counts cache reads apart; OpenAI's prompt_tokens include them
    assert.equal(r.usage.prompt_tokens_details?.cached_tokens, 2);
    const seen = await h.oneRequest(fake, id);
    assert.equal(seen.path, '/v1/messages');
    assert.equal(seen.headers['x-api-key'], h.SECRET);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['anthropic-version'], '2023-06-01');
    assert.equal(seen.body.system, 'be brief');
    assert.equal(seen.body.model, 'claude-3-5-haiku-latest');
    assert.ok(seen.body.max_tokens > 0, 'Anthropic needs max_tokens');

    const sid = h.testId('o2a-stream');
    const stream = await client.chat.completions.create({
      model: 'claude-3-5-haiku-latest', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream please' }],
    }, { headers: { 'x-test-id': sid, 'x-fake-reply': 'claude streamed this', 'x-fake-chunks': '3' } });
    let text = '';
    let usage = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'claude streamed this');
    assert.equal(usage?.completion_tokens, 3);
  } finally {
    assert.equal((await claudeGw.stop()).code, 0);
  }
});
