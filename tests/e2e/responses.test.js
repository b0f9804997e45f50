'use strict';
// The OpenAI Responses API (POST /v1/responses) through the official openai
// SDK on every provider type: native to an OpenAI-type provider, translated
// for Anthropic- and Gemini-type providers (Responses -> Chat Completions ->
// the provider's dialect, and back). Plain and streamed, with instructions,
// a function tool call round trip, usage, the stored record (tokens and
// cost), OpenAI-shaped errors, and a cut stream ending with response.failed.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let rec;
let client;

const PRICE = { input: 0.001, output: 0.01 }; // USD per 1,000 tokens

// One target per provider type: what the gateway calls upstream.
const TARGETS = {
  'openai-type (native)': { model: 'fake/gpt-4o-mini', upstream: 'gpt-4o-mini', path: '/v1/responses' },
  'anthropic-type': { model: 'claude/claude-haiku-4-5', upstream: 'claude-haiku-4-5', path: '/v1/messages' },
  'gemini-type': { model: 'gem/gemini-2.5-flash', upstream: 'gemini-2.5-flash',
    path: '/v1beta/models/gemini-2.5-flash:generateContent' },
};

const WEATHER = {
  type: 'function', name: 'get_weather', description: 'Current weather in a city', strict: false,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

before(async () => {
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, h.everyProviderType(fake, PRICE)));
  rec = h.makeRecorder();
  client = h.openaiClient(gw, rec);
});
after(async () => {
  const leaks = gw ? await h.findSecretLeaks(gw, [rec]) : [];
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  assert.deepEqual(leaks, [], 'the provider key leaked');
});

const rid = (name) => h.testId(name).replace(/[^A-Za-z0-9-]/g, '-');

const record = (id) => h.storedRecord(gw, id);

function checkRecord(stored, usage, name) {
  assert.equal(stored.status, 200, name);
  assert.equal(stored.prompt_tokens, usage.input_tokens, `${name}: prompt tokens`);
  assert.equal(stored.completion_tokens, usage.output_tokens, `${name}: completion tokens`);
  const cost = (usage.input_tokens * PRICE.input + usage.output_tokens * PRICE.output) / 1000;
  assert.ok(stored.cost !== null && Math.abs(stored.cost - cost) < 1e-12,
    `${name}: cost ${stored.cost} != ${cost}`);
}

/** Every event of an SDK Responses stream, and what they add up to. */
async function collect(stream) {
  const events = [];
  for await (const e of stream) events.push(e);
  const types = events.map((e) => e.type);
  const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
  const last = events.at(-1);
  return { events, types, text, args, last };
}

function checkSequence(events, name) {
  events.forEach((e, i) => assert.equal(e.sequence_number, events[0].sequence_number + i,
    `${name}: sequence_number of event ${i} (${e.type})`));
}

for (const [name, t] of Object.entries(TARGETS)) {
  test(`responses.create on ${name}: instructions, text, usage, record and cost`, async () => {
    const id = rid('resp-plain');
    const r = await client.responses.create({
      model: t.model, instructions: 'be brief', input: 'three words please', max_output_tokens: 50,
      temperature: 0.5,
    }, { headers: { 'x-test-id': id, 'Helicone-Request-Id': id, 'x-fake-reply': 'here you go' } });
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'here you go');
    assert.equal(r.output[0].type, 'message');
    assert.equal(r.output[0].content[0].type, 'output_text');
    assert.ok(r.usage.input_tokens > 0, JSON.stringify(r.usage));
    assert.equal(r.usage.output_tokens, 3);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    const seen = await h.oneRequest(fake, id);
    assert.equal(seen.path.split('?')[0], t.path);
    if (name === 'anthropic-type') {
      assert.equal(seen.body.system, 'be brief');
      assert.deepEqual(seen.body.messages, [{ role: 'user', content: 'three words please' }]);
      assert.equal(seen.body.max_tokens, 50);
      assert.equal(seen.headers['x-api-key'], h.SECRET);
    } else if (name === 'gemini-type') {
      assert.deepEqual(seen.body.systemInstruction, { parts: [{ text: 'be brief' }] });
      assert.deepEqual(seen.body.contents, [{ role: 'user', parts: [{ text: 'three words please' }] }]);
      assert.equal(seen.body.generationConfig.maxOutputTokens, 50);
    } else {
      assert.equal(seen.body.instructions, 'be brief', 'the native call passes the body as it is');
      assert.equal(seen.body.model, t.upstream);
    }
    checkRecord(await record(id), r.usage, name);
  });

  test(`responses.create stream on ${name}: the event sequence, text and usage`, async () => {
    const id = rid('resp-stream');
    const stream = await client.responses.create({
      model: t.model, instructions: 'be brief', input: [{ role: 'user', content: 'stream it' }], stream: true,
    }, { headers: { 'x-test-id': id, 'Helicone-Request-Id': id, 'x-fake-reply': 'streamed through the gateway',
      'x-fake-chunks': '4' } });
    const { events, types, text, last } = await collect(stream);
    assert.equal(text, 'streamed through the gateway');
    const order = ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done', 'response.completed'];
    let at = -1;
    for (const ty of order) {
      const i = types.indexOf(ty, at + 1);
      assert.ok(i > at, `${name}: ${ty} missing or out of order in ${types}`);
      at = i;
    }
    checkSequence(events, name);
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.status, 'completed');
    assert.equal(last.response.output[0].content[0].text, 'streamed through the gateway');
    const done = events.find((e) => e.type === 'response.output_text.done');
    assert.equal(done.text, 'streamed through the gateway');
    assert.ok(last.response.usage.input_tokens > 0);
    assert.equal(last.response.usage.output_tokens, 4);
    checkRecord(await record(id), last.response.usage, name);
  });

  test(`function tool round trip on ${name}, plain and streamed`, async () => {
    const id1 = rid('resp-tool1');
    const input = [{ role: 'user', content: [{ type: 'input_text', text: 'weather in Paris?' }] }];
    const r1 = await client.responses.create({ model: t.model, input, tools: [WEATHER], tool_choice: 'auto' },
      { headers: { 'x-test-id': id1, 'x-fake-tool-args': '{"city":"Paris"}' } });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r1.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.ok(call.call_id);
    const seen1 = await h.oneRequest(fake, id1);
    if (name === 'anthropic-type') assert.equal(seen1.body.tools[0].input_schema.properties.city.type, 'string');
    if (name === 'gemini-type') assert.equal(seen1.body.tools[0].functionDeclarations[0].name, 'get_weather');

    // the second turn: the call and its output go back; the model answers in text
    const id2 = rid('resp-tool2');
    const r2 = await client.responses.create({
      model: t.model, tools: [WEATHER],
      input: [...input, { type: 'reasoning', id: 'rs_1', summary: [] },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' }],
    }, { headers: { 'x-test-id': id2, 'x-fake-reply': 'it is 21 degrees' } });
    assert.equal(r2.output_text, 'it is 21 degrees');
    const seen2 = await h.oneRequest(fake, id2);
    if (name === 'anthropic-type') {
      const [, assistant, user] = seen2.body.messages;
      assert.equal(assistant.content[0].type, 'tool_use');
      assert.equal(assistant.content[0].id, call.call_id);
      assert.deepEqual(assistant.content[0].input, { city: 'Paris' });
      assert.equal(user.content[0].type, 'tool_result');
      assert.equal(user.content[0].tool_use_id, call.call_id);
    } else if (name === 'gemini-type') {
      const parts = seen2.body.contents.flatMap((c) => c.parts);
      assert.ok(parts.some((p) => p.functionCall?.name === 'get_weather'), JSON.stringify(seen2.body.contents));
      assert.ok(parts.some((p) => p.functionResponse?.name === 'get_weather'), JSON.stringify(seen2.body.contents));
    } else {
      assert.equal(seen2.body.input.at(-1).type, 'function_call_output');
    }

    // the same first turn, streamed
    const id3 = rid('resp-tool3');
    const stream = await client.responses.create({ model: t.model, input, tools: [WEATHER], stream: true },
      { headers: { 'x-test-id': id3, 'Helicone-Request-Id': id3, 'x-fake-tool-args': '{"city":"Paris"}',
        'x-fake-chunks': '3' } });
    const { events, types, args, last } = await collect(stream);
    checkSequence(events, name);
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    const added = events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
    assert.equal(added?.item.name, 'get_weather');
    assert.ok(types.includes('response.function_call_arguments.done'), `${types}`);
    const item = events.find((e) => e.type === 'response.output_item.done').item;
    assert.equal(item.type, 'function_call');
    assert.deepEqual(JSON.parse(item.arguments), { city: 'Paris' });
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.output.at(-1).type, 'function_call');
    checkRecord(await record(id3), last.response.usage, name);
  });

  test(`a stream cut without its terminator on ${name} ends with response.failed`, async () => {
    const id = rid('resp-cut');
    const stream = await client.responses.create({ model: t.model, input: 'cut me', stream: true },
      { headers: { 'x-test-id': id, 'Helicone-Request-Id': id, 'x-fake-chunks': '4', 'x-fake-drop': 'end' } });
    const { events, types, last } = await collect(stream);
    assert.equal(last.type, 'response.failed', `${types}`);
    assert.ok(!types.includes('response.completed'), `${types}`);
    assert.equal(last.response.status, 'failed');
    assert.ok(last.response.error.message.length > 0);
    assert.equal(last.sequence_number, events.at(-2).sequence_number + 1);
    const stored = await record(id);
    assert.equal(stored.status, 200, 'the client was sent 200');
    assert.ok(stored.error && /end|cut|terminat|complete/i.test(stored.error), `record error: ${stored.error}`);
  });
}

test('Responses errors are OpenAI-shaped: an untranslatable request, an unknown model', async () => {
  await assert.rejects(client.responses.create({ model: 'claude/claude-haiku-4-5', input: 42 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error?.type, 'invalid_request_error');
    assert.match(e.message, /input/);
    return true;
  });
  await assert.rejects(client.responses.create({ model: 'gem/gemini-2.5-flash', input: 'x',
    previous_response_id: 'resp_123' }), (e) => e.status === 400 && /previous_response_id/.test(e.message));
  await assert.rejects(client.responses.create({ model: 'gem/gemini-2.5-flash', input: 'x',
    tools: [{ type: 'web_search' }] }), (e) => e.status === 400 && /function tools/.test(e.message));
});

test('the provider error of a translated Responses call keeps its status, OpenAI-shaped', async () => {
  await assert.rejects(client.responses.create({ model: 'claude/claude-haiku-4-5', input: 'x' },
    { headers: { 'x-fake-status': '429' }, maxRetries: 0 }), (e) => {
    assert.equal(e.status, 429);
    assert.equal(e.error?.type, 'rate_limit_error');
    return true;
  });
});

test('responses on the mock: translated through Chat Completions', async () => {
  const r = await client.responses.create({ model: 'mock/echo', input: 'echo me' });
  assert.match(r.output_text, /echo me/);
  assert.ok(r.usage.output_tokens > 0);
  const { text, last } = await collect(await client.responses.create({ model: 'mock/echo', input: 'echo me', stream: true }));
  assert.match(text, /echo me/);
  assert.equal(last.type, 'response.completed');
});
