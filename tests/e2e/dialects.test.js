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
let claudeGw; // with an Anthropic-type provider, for the OpenAI SDK
let claude;

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake));
  claudeGw = await h.startGateway(h.baseConfig(fake, {
    providers: { claude: { type: 'anthropic', base_url: `${fake.url}/v1`, api_key: h.SECRET } },
  }));
  claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  assert.equal((await claudeGw?.stop())?.code, 0);
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
});

const weatherTool = h.WEATHER_TOOL;

test('OpenAI SDK -> an Anthropic-type provider: tools, tool_use as tool_calls, the result as tool_result', async () => {
  const client = h.openaiClient(claudeGw);
  const id = h.testId('o2a-tools');
  const r = await client.chat.completions.create({
    model: 'claude-3-5-haiku-latest', tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    messages: [{ role: 'user', content: 'weather in Oslo?' }],
  }, { headers: { 'x-test-id': id, 'x-fake-tool-args': '{"city":"Oslo"}' } });
  const seen = await h.oneRequest(fake, id);
  assert.deepEqual(seen.body.tools, [{ name: 'get_weather', description: 'Current weather in a city',
    input_schema: weatherTool.function.parameters }]);
  assert.deepEqual(seen.body.tool_choice, { type: 'tool', name: 'get_weather' });

  const m = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  const [call] = m.tool_calls;
  assert.match(call.id, /^toolu_fake_/, 'Anthropic\'s tool_use id is the call id');
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });

  const id2 = h.testId('o2a-tools-2');
  const r2 = await client.chat.completions.create({
    model: 'claude-3-5-haiku-latest', tools: [weatherTool],
    messages: [
      { role: 'user', content: 'weather in Oslo?' }, m,
      { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' },
    ],
  }, { headers: { 'x-test-id': id2, 'x-fake-reply': 'It is 21 degrees.' } });
  const seen2 = await h.oneRequest(fake, id2);
  assert.deepEqual(seen2.body.messages, [
    { role: 'user', content: 'weather in Oslo?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: { city: 'Oslo' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temp_c":21}' }] },
  ]);
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.equal(r2.choices[0].message.content, 'It is 21 degrees.');
});

test('OpenAI SDK -> an Anthropic-type provider: streamed tool-call argument deltas', async () => {
  const client = h.openaiClient(claudeGw);
  const id = h.testId('o2a-tools-stream');
  const stream = await client.chat.completions.create({
    model: 'claude-3-5-haiku-latest', stream: true, stream_options: { include_usage: true },
    tools: [weatherTool], messages: [{ role: 'user', content: 'weather in Oslo?' }],
  }, { headers: { 'x-test-id': id, 'x-fake-tool-args': '{"city":"Oslo","unit":"celsius"}', 'x-fake-chunks': '4' } });
  const deltas = [];
  let finish = null;
  let usage = null;
  for await (const c of stream) {
    for (const tc of c.choices[0]?.delta?.tool_calls ?? []) deltas.push(tc);
    finish = c.choices[0]?.finish_reason ?? finish;
    if (c.usage) usage = c.usage;
  }
  assert.equal((await h.oneRequest(fake, id)).body.stream, true);
  // the first delta names the call, the others carry the arguments in pieces
  assert.match(deltas[0].id, /^toolu_fake_/);
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.ok(deltas.every((d) => d.index === 0));
  const pieces = deltas.map((d) => d.function?.arguments ?? '').filter(Boolean);
  assert.equal(pieces.length, 4, `argument pieces: ${JSON.stringify(pieces)}`);
  assert.deepEqual(JSON.parse(pieces.join('')), { city: 'Oslo', unit: 'celsius' });
  assert.equal(finish, 'tool_calls');
  assert.ok(usage?.completion_tokens > 0);

  // the SDK's own stream helper assembles the same call
  const final = await client.chat.completions.stream({
    model: 'claude-3-5-haiku-latest', tools: [weatherTool], messages: [{ role: 'user', content: 'weather?' }],
  }, { headers: { 'x-fake-tool-args': '{"city":"Bergen"}', 'x-fake-chunks': '3' } }).finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: 'Bergen' });
});

test('OpenAI SDK -> an Anthropic-type provider: Anthropic errors in OpenAI\'s shape', async () => {
  const client = h.openaiClient(claudeGw);
  await assert.rejects(client.chat.completions.create({
    model: 'claude-3-5-haiku-latest', messages: [{ role: 'user', content: 'x' }],
  }, { headers: { 'x-fake-status': '429' } }), (e) => {
    assert.ok(e instanceof h.OpenAI.RateLimitError, String(e));
    assert.equal(e.type, 'rate_limit_error');
    assert.match(e.message, /fake provider failure: status 429/);
    return true;
  });
});
