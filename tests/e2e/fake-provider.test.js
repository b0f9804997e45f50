'use strict';
// The fake provider on its own, driven by the openai SDK directly (no
// gateway): if these fail, the gateway tests cannot be trusted.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { OpenAI, startFake, testId, waitFor, sleep } = require('./harness');

let fake;
let client;

before(async () => {
  fake = await startFake();
  client = new OpenAI({ baseURL: fake.baseURL, apiKey: 'sk-direct', maxRetries: 0, timeout: 10000 });
});
after(async () => { await fake?.stop(); });

test('fake: plain chat completion with deterministic usage and echoed model', async () => {
  const id = testId('fake-plain');
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'say three words' }],
  }, { headers: { 'x-test-id': id, 'x-fake-reply': 'one two three' } });
  assert.equal(r.model, 'gpt-4o-mini');
  assert.equal(r.choices[0].message.content, 'one two three');
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  const [seen] = await fake.requestsFor(id);
  assert.equal(seen.headers.authorization, 'Bearer sk-direct');
  assert.equal(seen.body.model, 'gpt-4o-mini');
  assert.equal(seen.finished, true);
});

test('fake: stream with usage chunk and [DONE]', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'hi there' }],
  }, { headers: { 'x-fake-reply': 'abcdefghij', 'x-fake-chunks': '4' } });
  let text = '';
  let usage = null;
  let n = 0;
  for await (const c of stream) {
    n++;
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, 'abcdefghij');
  assert.equal(n, 1 + 4 + 1 + 1);
  assert.deepEqual(usage, { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 });
});

test('fake: error status, 429 retry-after, embeddings (base64), completions, responses, models', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'm', messages: [] }, { headers: { 'x-fake-status': '500' } }),
    (e) => e instanceof OpenAI.APIError && e.status === 500 && /fake provider failure/.test(e.message));
  const r429 = await fetch(`${fake.baseURL}/chat/completions`, {
    method: 'POST', headers: { 'x-fake-status': '429', 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(r429.status, 429);
  assert.equal(r429.headers.get('retry-after'), '1');

  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a b', 'c'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, 8);
  assert.equal(e.usage.prompt_tokens, 3);

  const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'x y' },
    { headers: { 'x-fake-reply': 'done' } });
  assert.equal(c.choices[0].text, 'done');

  const resp = await client.responses.create({ model: 'gpt-4o-mini', input: 'hello' },
    { headers: { 'x-fake-reply': 'resp text' } });
  assert.equal(resp.output_text, 'resp text');

  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
});

test('fake: peer closing mid-stream and before the reply is seen as closedEarly', async () => {
  const id = testId('fake-abort');
  const ac = new AbortController();
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }],
  }, { signal: ac.signal, headers: { 'x-test-id': id, 'x-fake-chunks': '50', 'x-fake-chunk-delay-ms': '100' } });
  try {
    for await (const c of stream) { if (c.choices[0]?.delta?.content) ac.abort(); }
  } catch { /* the SDK may end quietly or throw on abort */ }
  const seen = await waitFor(async () => (await fake.requestsFor(id)).find((r) => r.closedEarly), 1000);
  assert.ok(seen, 'mid-stream close not detected');

  const id2 = testId('fake-abort-before');
  const ac2 = new AbortController();
  const t0 = Date.now();
  const p = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] },
    { signal: ac2.signal, headers: { 'x-test-id': id2, 'x-fake-delay-ms': '3000' } });
  await sleep(300);
  ac2.abort();
  await assert.rejects(p);
  const seen2 = await waitFor(async () => (await fake.requestsFor(id2)).find((r) => r.closedEarly), 1500);
  assert.ok(seen2, 'close before the reply not detected');
  assert.ok(seen2.closedAt - t0 < 1500, `noticed after ${seen2.closedAt - t0} ms`);
});

test('fake: x-fake-drop mid truncates the stream, before drops the connection', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }],
  }, { headers: { 'x-fake-drop': 'mid', 'x-fake-chunks': '6', 'x-fake-reply': 'aabbccddeeff' } });
  let text = '';
  try {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  } catch { /* a broken stream may throw */ }
  assert.equal(text, 'aabbcc');
  await assert.rejects(client.chat.completions.create({ model: 'm', messages: [] },
    { headers: { 'x-fake-drop': 'before' } }), OpenAI.APIConnectionError);
  assert.ok(await waitFor(async () => (await fake.stats()).inFlight === 0), 'a request still in flight');
});

// ---------------------------------------------------------------- tools

const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Weather',
  parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } } } };

test('fake: OpenAI tools are answered with a call of the first tool, plain and streamed', async () => {
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini', tools: [weatherTool], messages: [{ role: 'user', content: 'weather?' }],
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const [call] = r.choices[0].message.tool_calls;
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'fake city', days: 1 });

  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, tools: [weatherTool], messages: [{ role: 'user', content: 'weather?' }],
  }, { headers: { 'x-fake-tool-args': '{"city":"Oslo"}', 'x-fake-chunks': '3' } });
  let args = '';
  let name = null;
  let finish = null;
  let argChunks = 0;
  for await (const c of stream) {
    const tc = c.choices[0]?.delta?.tool_calls?.[0];
    if (tc?.function?.name) name = tc.function.name;
    if (tc?.function?.arguments) { args += tc.function.arguments; argChunks++; }
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'Oslo' });
  assert.equal(argChunks, 3);
  assert.equal(finish, 'tool_calls');

  // the tool's result handed back: a text answer
  const r2 = await client.chat.completions.create({
    model: 'gpt-4o-mini', tools: [weatherTool], messages: [
      { role: 'user', content: 'weather?' }, r.choices[0].message,
      { role: 'tool', tool_call_id: call.id, content: 'sunny' }],
  }, { headers: { 'x-fake-reply': 'It is sunny.' } });
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.equal(r2.choices[0].message.content, 'It is sunny.');
});

test('fake: Anthropic tools are answered with tool_use, plain and streamed; errors in Anthropic\'s shape', async () => {
  const post = (body, headers = {}) => fetch(`${fake.url}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const tools = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
  const m = await (await post({ model: 'claude-x', max_tokens: 10, tools,
    messages: [{ role: 'user', content: 'find it' }] })).json();
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.content[0].type, 'tool_use');
  assert.equal(m.content[0].name, 'lookup');
  assert.deepEqual(m.content[0].input, { q: 'fake q' });

  const s = await (await post({ model: 'claude-x', max_tokens: 10, tools, stream: true,
    messages: [{ role: 'user', content: 'find it' }] }, { 'x-fake-chunks': '2' })).text();
  const events = s.split('\n\n').filter(Boolean).map((e) => JSON.parse(e.split('\ndata: ')[1]));
  assert.equal(events[1].content_block.type, 'tool_use');
  const json = events.filter((e) => e.delta?.type === 'input_json_delta').map((e) => e.delta.partial_json);
  assert.equal(json.length, 2);
  assert.deepEqual(JSON.parse(json.join('')), { q: 'fake q' });
  assert.equal(events.find((e) => e.type === 'message_delta').delta.stop_reason, 'tool_use');

  const after = await (await post({ model: 'claude-x', max_tokens: 10, tools, messages: [
    { role: 'user', content: 'find it' }, { role: 'assistant', content: m.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: m.content[0].id, content: 'found' }] }] },
  { 'x-fake-reply': 'Found it.' })).json();
  assert.equal(after.stop_reason, 'end_turn');
  assert.equal(after.content[0].text, 'Found it.');

  const err = await post({}, { 'x-fake-status': '529' });
  assert.equal(err.status, 529);
  assert.deepEqual(await err.json(), { type: 'error',
    error: { type: 'overloaded_error', message: 'fake provider failure: status 529' } });
});

// ---------------------------------------------------------------- Gemini

/** POST to the fake's Gemini route; resolves the fetch Response. */
function gemini(model, action, body, headers = {}, query = '') {
  return fetch(`${fake.url}/v1beta/models/${encodeURIComponent(model)}:${action}${query}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

const geminiBody = {
  systemInstruction: { parts: [{ text: 'be brief' }] },
  contents: [{ role: 'user', parts: [{ text: 'say three words' }] }],
};

test('fake: Gemini generateContent with usageMetadata, recorded key and query', async () => {
  const id = testId('fake-gemini');
  const r = await gemini('gemini-2.5-flash', 'generateContent', geminiBody, {
    'x-test-id': id, 'x-goog-api-key': 'g-key', 'x-fake-reply': 'one two three',
    'x-fake-cache-read': '4', 'x-fake-thoughts': '7',
  }, '?foo=bar');
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.deepEqual(j.candidates, [{ content: { role: 'model', parts: [{ text: 'one two three' }] },
    finishReason: 'STOP', index: 0 }]);
  // the prompt (5 words) plus the 4 cached tokens; thoughts count in the total only
  assert.deepEqual(j.usageMetadata, { promptTokenCount: 9, candidatesTokenCount: 3, totalTokenCount: 19,
    cachedContentTokenCount: 4, thoughtsTokenCount: 7 });
  assert.equal(j.modelVersion, 'gemini-2.5-flash');
  assert.match(j.responseId, /^fake-resp-/);
  const [seen] = await fake.requestsFor(id);
  assert.equal(seen.path, '/v1beta/models/gemini-2.5-flash:generateContent?foo=bar');
  assert.deepEqual(seen.query, { foo: 'bar' });
  assert.equal(seen.headers['x-goog-api-key'], 'g-key');
  assert.deepEqual(seen.body.contents, geminiBody.contents);
  // any prefix works, and a plain usage has no cache or thought counts
  const other = await (await fetch(`${fake.url}/custom/v9/models/gemini-pro:generateContent`, {
    method: 'POST', body: JSON.stringify(geminiBody) })).json();
  assert.deepEqual(other.usageMetadata, { promptTokenCount: 5, candidatesTokenCount: 5, totalTokenCount: 10 });
});

test('fake: Gemini streamGenerateContent as SSE (alt=sse) and as a JSON array', async () => {
  const r = await gemini('gemini-2.5-flash', 'streamGenerateContent', geminiBody,
    { 'x-fake-reply': 'abcdefghij', 'x-fake-chunks': '4' }, '?alt=sse');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const raw = await r.text();
  assert.ok(raw.endsWith('\r\n\r\n'), 'events end with CRLF CRLF');
  const events = raw.split('\r\n\r\n').filter(Boolean).map((e) => {
    assert.ok(e.startsWith('data: '), e);
    return JSON.parse(e.slice(6));
  });
  const check = (list) => {
    assert.equal(list.length, 4);
    assert.equal(list.map((e) => e.candidates[0].content.parts[0].text).join(''), 'abcdefghij');
    assert.deepEqual(list.map((e) => e.candidates[0].finishReason ?? null), [null, null, null, 'STOP']);
    assert.deepEqual(list[0].usageMetadata, { promptTokenCount: 5, totalTokenCount: 5 });
    assert.deepEqual(list[3].usageMetadata, { promptTokenCount: 5, candidatesTokenCount: 1, totalTokenCount: 6 });
    assert.ok(list.every((e) => e.modelVersion === 'gemini-2.5-flash' && e.responseId === list[0].responseId));
  };
  check(events);

  const a = await gemini('gemini-2.5-flash', 'streamGenerateContent', geminiBody,
    { 'x-fake-reply': 'abcdefghij', 'x-fake-chunks': '4' });
  assert.match(a.headers.get('content-type'), /^application\/json/);
  check(await a.json());

  const bad = await gemini('gemini-2.5-flash', 'countTokens', geminiBody);
  assert.equal(bad.status, 404);
  assert.equal((await bad.json()).error.status, 'NOT_FOUND');
});

test('fake: Gemini functionDeclarations answered with a functionCall; a functionResponse with text', async () => {
  const tools = [{ functionDeclarations: [
    { name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' }, hot: { type: 'BOOLEAN' } } } },
    { name: 'other' }] }];
  const j = await (await gemini('gemini-2.5-flash', 'generateContent', { ...geminiBody, tools })).json();
  assert.deepEqual(j.candidates[0].content.parts, [{ functionCall: { name: 'get_weather', args: { city: 'fake city', hot: true } } }]);
  assert.equal(j.candidates[0].finishReason, 'STOP');

  const events = (await (await gemini('gemini-2.5-flash', 'streamGenerateContent', { ...geminiBody, tools },
    { 'x-fake-tool-args': '{"city":"Oslo"}' }, '?alt=sse')).text())
    .split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.slice(6)));
  assert.equal(events.length, 1, 'a functionCall comes whole');
  assert.deepEqual(events[0].candidates[0].content.parts, [{ functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }]);

  const after = await (await gemini('gemini-2.5-flash', 'generateContent', { tools, contents: [
    ...geminiBody.contents, { role: 'model', parts: j.candidates[0].content.parts },
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { t: 20 } } }] }] },
  { 'x-fake-reply': 'Twenty degrees.' })).json();
  assert.deepEqual(after.candidates[0].content.parts, [{ text: 'Twenty degrees.' }]);
});

test('fake: Gemini errors, fail-times, retry-after and a dropped stream', async () => {
  const r = await gemini('gemini-2.5-flash', 'generateContent', geminiBody,
    { 'x-fake-status': '429', 'x-fake-retry-after': '3' });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '3');
  assert.deepEqual(await r.json(), { error: { code: 429, message: 'fake provider failure: status 429',
    status: 'RESOURCE_EXHAUSTED', details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '3s' }] } });
  const r400 = await gemini('gemini-2.5-flash', 'streamGenerateContent', geminiBody, { 'x-fake-status': '400' }, '?alt=sse');
  assert.equal(r400.status, 400);
  assert.deepEqual(await r400.json(), { error: { code: 400, message: 'fake provider failure: status 400', status: 'INVALID_ARGUMENT' } });

  const id = testId('fake-gemini-fail');
  const hdrs = { 'x-test-id': id, 'x-fake-fail-times': '1', 'x-fake-status': '503' };
  assert.equal((await gemini('m', 'generateContent', geminiBody, hdrs)).status, 503);
  assert.equal((await gemini('m', 'generateContent', geminiBody, hdrs)).status, 200);

  const cut = await gemini('m', 'streamGenerateContent', geminiBody,
    { 'x-fake-drop': 'mid', 'x-fake-chunks': '6', 'x-fake-reply': 'aabbccddeeff' }, '?alt=sse');
  let raw = '';
  try { for await (const piece of cut.body) raw += Buffer.from(piece).toString(); } catch { /* cut */ }
  const texts = raw.split('\r\n\r\n').filter(Boolean).map((e) => JSON.parse(e.slice(6)).candidates[0].content.parts[0].text);
  assert.equal(texts.join(''), 'aabbcc');
  // The fake counts the cut response as done when its socket closes, which
  // may come just after the client has seen the end.
  assert.ok(await waitFor(async () => (await fake.stats()).inFlight === 0), 'a request still in flight');
});

test('fake: x-fake-tools: prompt calls only the tool the prompt names, in every dialect, plain and streamed; the answer quotes the result', async () => {
  const post = async (p, body, stream) => {
    const r = await fetch(fake.url + p, { method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-tools': 'prompt' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    return stream ? r.text() : r.json();
  };
  const ask = 'please [[tool Second {"x":"from the prompt"}]] now';
  const args = JSON.stringify({ x: 'from the prompt' });
  const oaiTools = ['First', 'Second'].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object' } } }));
  for (const stream of [false, true]) {
    // OpenAI: the named tool, not the first
    const o = await post('/v1/chat/completions', { model: 'm', stream, tools: oaiTools,
      messages: [{ role: 'user', content: ask }] }, stream);
    if (stream) {
      assert.match(o, /"name":"Second"/);
      const frags = [...o.matchAll(/"arguments":("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1])).join('');
      assert.equal(frags, args);
    } else {
      assert.equal(o.choices[0].message.tool_calls[0].function.name, 'Second');
      assert.equal(o.choices[0].message.tool_calls[0].function.arguments, args);
    }
    // no directive: plain text although tools are declared
    const plain = await post('/v1/chat/completions', { model: 'm', stream, tools: oaiTools,
      messages: [{ role: 'user', content: 'just talk' }] }, stream);
    assert.match(stream ? plain : plain.choices[0].message.content, stream ? /"content":"/ : /Hello/);
    assert.doesNotMatch(stream ? plain : JSON.stringify(plain), /tool_calls/);
    // the tool's result comes back: quoted
    const res = await post('/v1/chat/completions', { model: 'm', stream, tools: oaiTools, messages: [
      { role: 'user', content: ask },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'Second', arguments: args } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'result 99' }] }, stream);
    const text = stream ? res.split('\n').filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('') : res.choices[0].message.content;
    assert.equal(text, 'Tool result: result 99');
    // Anthropic
    const aTools = [{ name: 'First', input_schema: { type: 'object' } }, { name: 'Second', input_schema: { type: 'object' } }];
    const a = await post('/v1/messages', { model: 'claude', max_tokens: 9, stream, tools: aTools,
      messages: [{ role: 'user', content: [{ type: 'text', text: ask }] }] }, stream);
    if (stream) assert.match(a, /"type":"tool_use","id":"toolu_fake_\d+","name":"Second"/);
    else assert.deepEqual([a.content[0].name, a.content[0].input], ['Second', { x: 'from the prompt' }]);
    const ar = await post('/v1/messages', { model: 'claude', max_tokens: 9, stream: false, tools: aTools, messages: [
      { role: 'user', content: ask },
      { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Second', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'out 5' }] }] }] });
    assert.equal(ar.content[0].text, 'Tool result: out 5');
  }
  // Gemini; and a directive naming an undeclared tool calls nothing
  const g = await post('/v1beta/models/gemini-2.5-flash:generateContent', {
    contents: [{ role: 'user', parts: [{ text: ask }] }],
    tools: [{ functionDeclarations: [{ name: 'First' }, { name: 'Second' }] }] });
  assert.deepEqual(g.candidates[0].content.parts[0].functionCall, { name: 'Second', args: { x: 'from the prompt' } });
  const none = await post('/v1beta/models/gemini-2.5-flash:generateContent', {
    contents: [{ role: 'user', parts: [{ text: ask }] }], tools: [{ functionDeclarations: [{ name: 'First' }] }] });
  assert.ok(none.candidates[0].content.parts[0].text);
  const ct = await post('/v1/messages/count_tokens', { model: 'claude', system: 'two words',
    messages: [{ role: 'user', content: 'three more words' }] });
  assert.deepEqual(ct, { input_tokens: 5 });
});
