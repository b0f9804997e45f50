'use strict';
// The official openai SDK through the gateway to a Gemini-type provider:
// the Chat Completions request becomes a generateContent request (contents,
// systemInstruction, generationConfig, functionDeclarations, the key as
// x-goog-api-key) and Gemini's answers, streams, usage and errors come back
// in OpenAI's shape. Also the Anthropic SDK to the same provider.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Anthropic = require('@anthropic-ai/sdk').default ?? require('@anthropic-ai/sdk');
const h = require('./harness');

let fake;
let gw;
let rec;
let client;

const MODEL = 'gemini-2.5-flash';
const PRICE = { input: 0.001, output: 0.01, cached_input: 0.0001 }; // USD per 1,000 tokens
const weatherTool = h.WEATHER_TOOL;

before(async () => {
  fake = await h.startFake();
  // A bare origin: the gateway adds Gemini's /v1beta.
  gw = await h.startGateway(h.baseConfig(fake, {
    providers: { gem: { type: 'gemini', base_url: fake.url, api_key: h.SECRET, timeout: 5 } },
    cost_tracking: { pricing: { [MODEL]: PRICE } },
  }));
  rec = h.makeRecorder();
  client = h.openaiClient(gw, rec);
});
after(async () => {
  const leaks = gw ? await h.findSecretLeaks(gw, [rec]) : [];
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
  assert.deepEqual(leaks, [], 'the provider key leaked');
});

/** The chunks of an SDK stream, and the text, tool calls and finish they add up to. */
async function collect(stream) {
  const chunks = [];
  let text = '';
  let finish = null;
  let usage = null;
  const calls = [];
  for await (const c of stream) {
    chunks.push(c);
    const choice = c.choices[0];
    text += choice?.delta?.content ?? '';
    for (const tc of choice?.delta?.tool_calls ?? []) {
      calls[tc.index] ??= { id: null, name: '', arguments: '' };
      if (tc.id) calls[tc.index].id = tc.id;
      calls[tc.index].name += tc.function?.name ?? '';
      calls[tc.index].arguments += tc.function?.arguments ?? '';
    }
    finish = choice?.finish_reason ?? finish;
    if (c.usage) usage = c.usage;
  }
  return { chunks, text, finish, usage, calls };
}

test('chat completion -> generateContent: contents, systemInstruction, generationConfig, key; answer and usage', async () => {
  const id = h.testId('gem-plain');
  const r = await client.chat.completions.create({
    model: MODEL, max_tokens: 50, temperature: 0.3, stop: ['END'],
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'three words please' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'here you go', 'x-fake-cache-read': '2', 'x-fake-thoughts': '3',
    'x-goog-api-key': 'client-goog-key' } });

  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:generateContent`);
  assert.deepEqual(seen.query, {});
  assert.equal(seen.headers['x-goog-api-key'], h.SECRET, 'the configured key replaces the client\'s');
  assert.equal(seen.headers.authorization, undefined, 'the client credential reached the provider');
  assert.deepEqual(seen.body.contents, [{ role: 'user', parts: [{ text: 'three words please' }] }]);
  assert.deepEqual(seen.body.systemInstruction, { parts: [{ text: 'be brief' }] });
  assert.deepEqual(seen.body.generationConfig, { maxOutputTokens: 50, temperature: 0.3, stopSequences: ['END'] });
  assert.equal(seen.body.messages, undefined);
  assert.equal(seen.body.model, undefined, 'Gemini names the model in the URL');

  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'here you go');
  assert.equal(r.choices[0].finish_reason, 'stop');
  // prompt: 5 words + 2 cached (Gemini's prompt count includes the cache);
  // completion: 3 words + 3 thinking tokens
  assert.equal(r.usage.prompt_tokens, 7);
  assert.equal(r.usage.completion_tokens, 6);
  assert.equal(r.usage.total_tokens, 13);
  assert.equal(r.usage.prompt_tokens_details?.cached_tokens, 2);
  assert.equal(r.usage.completion_tokens_details?.reasoning_tokens, 3);
});

test('multi-turn history: assistant turns become role model, same-role turns merge', async () => {
  const id = h.testId('gem-history');
  await client.chat.completions.create({
    model: `gem/${MODEL}`, max_completion_tokens: 20,
    messages: [
      { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' },
      { role: 'user', content: [{ type: 'text', text: 'first' }] }, { role: 'user', content: 'second' },
    ],
  }, { headers: { 'x-test-id': id } });
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:generateContent`, 'the provider prefix is not sent upstream');
  assert.deepEqual(seen.body.contents, [
    { role: 'user', parts: [{ text: 'hi' }] },
    { role: 'model', parts: [{ text: 'hello' }] },
    { role: 'user', parts: [{ text: 'first' }, { text: 'second' }] },
  ]);
  assert.deepEqual(seen.body.generationConfig, { maxOutputTokens: 20 });
  assert.equal(seen.body.systemInstruction, undefined);
});

test('generation options, JSON schema output and an image part', async () => {
  const id = h.testId('gem-options');
  const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
  await client.chat.completions.create({
    model: MODEL, top_p: 0.9, seed: 42, stop: 'DONE', presence_penalty: 0.5,
    response_format: { type: 'json_schema', json_schema: { name: 'reply', schema } },
    messages: [{ role: 'user', content: [
      { type: 'text', text: 'what is this?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
    ] }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': '{"answer":"a cat"}' } });
  const seen = await h.oneRequest(fake, id);
  assert.deepEqual(seen.body.generationConfig, {
    topP: 0.9, seed: 42, presencePenalty: 0.5, stopSequences: ['DONE'],
    responseMimeType: 'application/json', responseJsonSchema: schema,
  });
  assert.deepEqual(seen.body.contents[0].parts, [
    { text: 'what is this?' },
    { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } },
    { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.jpg' } },
  ]);
});

test('stream -> streamGenerateContent?alt=sse: text reassembled, finish, usage chunk', async () => {
  const id = h.testId('gem-stream');
  const stream = await client.chat.completions.create({
    model: MODEL, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'stream it please' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'gemini streamed this answer', 'x-fake-chunks': '4', 'x-fake-cache-read': '1' } });
  const got = await collect(stream);
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`);
  assert.deepEqual(seen.query, { alt: 'sse' });
  assert.equal(seen.headers['x-goog-api-key'], h.SECRET);
  assert.equal(seen.body.stream, undefined, 'Gemini streams by its URL, not a body field');
  assert.equal(seen.body.stream_options, undefined);

  assert.equal(got.text, 'gemini streamed this answer');
  assert.equal(got.finish, 'stop');
  assert.ok(got.chunks.filter((c) => c.choices[0]?.delta?.content).length >= 4, 'each Gemini event became a chunk');
  assert.ok(got.chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === MODEL));
  const last = got.chunks.at(-1);
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.equal(got.usage.prompt_tokens, 4);
  assert.equal(got.usage.completion_tokens, 4);
  assert.equal(got.usage.total_tokens, 8);
  assert.equal(got.usage.prompt_tokens_details?.cached_tokens, 1);

  // without include_usage: no usage chunk
  const plain = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, messages: [{ role: 'user', content: 'again' }],
  }, { headers: { 'x-fake-reply': 'no usage here', 'x-fake-chunks': '2' } }));
  assert.equal(plain.text, 'no usage here');
  assert.equal(plain.finish, 'stop');
  assert.equal(plain.usage, null);
});

test('tools -> functionDeclarations; a functionCall comes back as tool_calls', async () => {
  const id = h.testId('gem-tools');
  const r = await client.chat.completions.create({
    model: MODEL, tools: [weatherTool], tool_choice: 'auto',
    messages: [{ role: 'user', content: 'weather in Oslo?' }],
  }, { headers: { 'x-test-id': id, 'x-fake-tool-args': '{"city":"Oslo"}' } });
  const seen = await h.oneRequest(fake, id);
  assert.deepEqual(seen.body.tools, [{ functionDeclarations: [{
    name: 'get_weather', description: 'Current weather in a city',
    parametersJsonSchema: weatherTool.function.parameters,
  }] }]);
  assert.deepEqual(seen.body.toolConfig, { functionCallingConfig: { mode: 'AUTO' } });

  const m = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(m.content, null);
  assert.equal(m.tool_calls.length, 1);
  const [call] = m.tool_calls;
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof call.function.arguments, 'string');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });
  assert.match(call.id, /^[A-Za-z0-9_-]+$/);

  // the second turn: the call and its result become functionCall / functionResponse parts
  const id2 = h.testId('gem-tools-2');
  const r2 = await client.chat.completions.create({
    model: MODEL, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'weather in Oslo?' }, m,
      { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21,"sky":"clear"}' },
    ],
  }, { headers: { 'x-test-id': id2, 'x-fake-reply': 'Clear and 21 degrees.' } });
  const seen2 = await h.oneRequest(fake, id2);
  assert.deepEqual(seen2.body.contents, [
    { role: 'user', parts: [{ text: 'weather in Oslo?' }] },
    { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }] },
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp_c: 21, sky: 'clear' } } }] },
  ]);
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.equal(r2.choices[0].message.content, 'Clear and 21 degrees.');
  assert.equal(r2.choices[0].message.tool_calls, undefined);
});

test('a tool result that is not a JSON object is wrapped as {result}', async () => {
  const id = h.testId('gem-tool-text');
  await client.chat.completions.create({
    model: MODEL, tools: [weatherTool],
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ],
  }, { headers: { 'x-test-id': id } });
  const seen = await h.oneRequest(fake, id);
  assert.deepEqual(seen.body.contents.at(-1),
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { result: 'sunny' } } }] });
});

test('streamed tool call: one tool_calls delta with id, name and JSON arguments; finish tool_calls', async () => {
  const id = h.testId('gem-tools-stream');
  const got = await collect(await client.chat.completions.create({
    model: MODEL, stream: true, stream_options: { include_usage: true }, tools: [weatherTool],
    messages: [{ role: 'user', content: 'weather in Oslo?' }],
  }, { headers: { 'x-test-id': id } }));
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.body.tools[0].functionDeclarations[0].name, 'get_weather');
  assert.equal(got.calls.length, 1);
  assert.equal(got.calls[0].name, 'get_weather');
  assert.ok(got.calls[0].id, 'a streamed tool call needs an id');
  assert.deepEqual(JSON.parse(got.calls[0].arguments), { city: 'fake city' });
  assert.equal(got.finish, 'tool_calls');
  assert.equal(got.text, '');
  assert.ok(got.usage.completion_tokens > 0);
});

test('Gemini errors reach the OpenAI SDK in OpenAI\'s shape with the provider status', async () => {
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-status': '429', 'x-fake-retry-after': '7' } }), (e) => {
    assert.ok(e instanceof h.OpenAI.RateLimitError, String(e));
    assert.equal(e.status, 429);
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.code, 'RESOURCE_EXHAUSTED');
    assert.match(e.message, /fake provider failure: status 429/);
    assert.equal(e.headers.get('retry-after'), '7');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-status': '400' } }), (e) => {
    assert.ok(e instanceof h.OpenAI.BadRequestError, String(e));
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.code, 'INVALID_ARGUMENT');
    return true;
  });
  // a stream refused before it starts
  await assert.rejects(client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-status': '503' } }), (e) => e instanceof h.OpenAI.InternalServerError && e.status === 503);

  const raw = await rec.fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-fake-status': '429' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
  });
  assert.equal(raw.status, 429);
  assert.deepEqual(await raw.json(), { error: { message: 'fake provider failure: status 429',
    type: 'rate_limit_error', code: 'RESOURCE_EXHAUSTED' } });
});

test('broken Gemini streams: the provider dropping mid-stream, the client leaving', async () => {
  const dropped = await client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-drop': 'mid', 'x-fake-chunks': '6', 'x-fake-reply': 'aabbccddeeff' } });
  let text = '';
  let error = null;
  try {
    for await (const c of dropped) text += c.choices[0]?.delta?.content ?? '';
  } catch (e) { error = e; }
  assert.equal(text, 'aabbcc');
  assert.ok(error instanceof h.OpenAI.APIError, `the break was not reported: ${error}`);
  assert.match(error.message, /broke off/);

  const id = h.testId('gem-abort');
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'x' }] },
    { signal: ac.signal, headers: { 'x-test-id': id, 'x-fake-chunks': '50', 'x-fake-chunk-delay-ms': '100' } });
  const tAbort = await h.abortAtFirstContent(stream, ac);
  assert.ok(tAbort > 0, 'no content chunk arrived');
  const seen = await h.waitFor(async () => (await fake.requestsFor(id)).find((r) => r.closedEarly || r.finished), 4000);
  assert.equal(seen?.closedEarly, true, 'the Gemini stream ran on after the client left');
  assert.ok(seen.closedAt - tAbort < 1000, `upstream closed ${seen.closedAt - tAbort} ms after the abort`);
});

test('records and costs of Gemini calls: usage from usageMetadata, plain and streamed', async () => {
  const tag = h.testId('gem-records');
  const messages = [{ role: 'user', content: 'one two three four five' }];
  const headers = { 'Helicone-Property-Tag': tag, 'x-fake-cache-read': '2' };
  await client.chat.completions.create({ model: MODEL, messages },
    { headers: { ...headers, 'x-fake-reply': 'a b c', 'x-fake-thoughts': '3' } });
  // a stream whose client asked for no usage chunk is still counted
  for await (const _ of await client.chat.completions.create({ model: MODEL, messages, stream: true },
    { headers: { ...headers, 'x-fake-reply': 'a b c d' } })) { /* drain */ }
  const list = await h.waitFor(async () => {
    const body = await (await fetch(`${gw.url}/api/v1/requests?property.Tag=${tag}`)).json();
    return body.total >= 2 ? body : null;
  }, 5000, 50);
  assert.ok(list, 'the records did not arrive');
  const byCompletion = Object.fromEntries(list.data.map((r) => [r.completion_tokens, r]));
  const plain = byCompletion[6];
  const streamed = byCompletion[4];
  assert.ok(plain && streamed, JSON.stringify(list.data));
  for (const r of [plain, streamed]) {
    assert.equal(r.provider, 'gem');
    assert.equal(r.model, MODEL);
    assert.equal(r.status, 200);
    assert.equal(r.prompt_tokens, 7);
    assert.equal(r.cached_tokens, 2);
  }
  assert.equal(plain.reasoning_tokens, 3);
  const cost = (completion) => (5 * PRICE.input + 2 * PRICE.cached_input + completion * PRICE.output) / 1000;
  assert.ok(Math.abs(plain.cost - cost(6)) < 1e-12, `cost ${plain.cost} != ${cost(6)}`);
  assert.ok(Math.abs(streamed.cost - cost(4)) < 1e-12, `cost ${streamed.cost} != ${cost(4)}`);
});

test('Anthropic SDK -> Gemini-type provider: translated both ways, plain and streamed', async () => {
  const claude = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client-dummy', maxRetries: 0, fetch: rec.fetch });
  const id = h.testId('a2g');
  const m = await claude.messages.create({
    model: MODEL, max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: 'two words' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'two words', 'x-fake-cache-read': '3' } });
  const seen = await h.oneRequest(fake, id);
  assert.equal(seen.path, `/v1beta/models/${MODEL}:generateContent`);
  assert.equal(seen.headers['x-goog-api-key'], h.SECRET);
  assert.equal(seen.headers['x-api-key'], undefined, 'the client credential reached the provider');
  assert.deepEqual(seen.body.systemInstruction, { parts: [{ text: 'be brief' }] });
  assert.deepEqual(seen.body.generationConfig, { maxOutputTokens: 64 });
  assert.equal(m.type, 'message');
  assert.equal(m.content[0].text, 'two words');
  assert.equal(m.stop_reason, 'end_turn');
  // Anthropic counts cache reads apart from input_tokens
  assert.equal(m.usage.input_tokens, 4);
  assert.equal(m.usage.cache_read_input_tokens, 3);
  assert.equal(m.usage.output_tokens, 2);

  const stream = claude.messages.stream({
    model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'stream it' }],
  }, { headers: { 'x-fake-reply': 'streamed from gemini', 'x-fake-chunks': '3' } });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, 'streamed from gemini');
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, 3);

  const tool = await claude.messages.create({
    model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'weather?' }],
    tools: [{ name: 'get_weather', input_schema: weatherTool.function.parameters }],
  }, { headers: { 'x-fake-tool-args': '{"city":"Bergen"}' } });
  assert.equal(tool.stop_reason, 'tool_use');
  const use = tool.content.find((b) => b.type === 'tool_use');
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Bergen' });

  await assert.rejects(claude.messages.create({ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] },
    { headers: { 'x-fake-status': '429' } }), (e) => e.status === 429 && e.error?.error?.type === 'rate_limit_error');
});

test('bring your own key across dialects: the client\'s Bearer key moves to the provider\'s header', async () => {
  const byok = await h.startGateway(h.baseConfig(fake, {
    providers: {
      gemkeyless: { type: 'gemini', base_url: fake.url, models: ['gemini-*'] },
      claudekeyless: { type: 'anthropic', base_url: `${fake.url}/v1`, models: ['claude-*'] },
    },
  }));
  try {
    const own = new h.OpenAI({ baseURL: byok.baseURL, apiKey: 'client-own-key', maxRetries: 0 });
    for (const [model, header] of [[MODEL, 'x-goog-api-key'], ['claude-3-5-haiku-latest', 'x-api-key']]) {
      const id = h.testId('byok');
      await own.chat.completions.create({ model, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-test-id': id } });
      const seen = await h.oneRequest(fake, id);
      assert.equal(seen.headers[header], 'client-own-key', `${model}: ${header}`);
      assert.equal(seen.headers.authorization, undefined, `${model}: the Bearer header is not forwarded as is`);
    }
  } finally {
    assert.equal((await byok.stop()).code, 0);
  }
});
