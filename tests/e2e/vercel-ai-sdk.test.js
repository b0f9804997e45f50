'use strict';
// The Vercel AI SDK (`ai`, `@ai-sdk/openai`, `@ai-sdk/anthropic`) through
// the gateway on every provider type (OpenAI-, Anthropic- and Gemini-type),
// through its three ways in: createOpenAI(...).chat(model) (Chat
// Completions), the default createOpenAI(...)(model) (the Responses API) and
// createAnthropic({baseURL: .../v1}) (Messages). Each runs generateText and
// streamText with a tool that has an execute and a stop condition allowing a
// second step: the model calls the tool, the SDK runs it and sends the
// result back, the model answers in text. Checked: the text, the tool call
// and its result, usage, and the stored records (tokens, cost).
//
// The SDKs are ES modules: loaded with import() from this CommonJS file.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

let fake;
let gw;
let ai;
let createOpenAI;
let createAnthropic;

const PRICE = { input: 0.001, output: 0.01 }; // USD per 1,000 tokens

const PROVIDERS = {
  'openai-type': 'fake/gpt-4o-mini',
  'anthropic-type': 'claude/claude-haiku-4-5',
  'gemini-type': 'gem/gemini-2.5-flash',
};

// How the SDK reaches the gateway, and the route it uses.
const CLIENTS = {
  'openai chat': { model: (m) => createOpenAI({ baseURL: gw.baseURL, apiKey: 'sk-client-dummy' }).chat(m),
    route: '/v1/chat/completions' },
  'openai responses': { model: (m) => createOpenAI({ baseURL: gw.baseURL, apiKey: 'sk-client-dummy' })(m),
    route: '/v1/responses' },
  anthropic: { model: (m) => createAnthropic({ baseURL: gw.baseURL, apiKey: 'sk-ant-client-dummy' })(m),
    route: '/v1/messages' },
};

before(async () => {
  ai = await import('ai');
  ({ createOpenAI } = await import('@ai-sdk/openai'));
  ({ createAnthropic } = await import('@ai-sdk/anthropic'));
  fake = await h.startFake();
  gw = await h.startGateway(h.baseConfig(fake, h.everyProviderType(fake, PRICE)));
});
after(async () => {
  assert.equal((await gw?.stop())?.code, 0);
  await fake?.stop();
});

/** The weather tool, counting its runs in `runs`. */
function weatherTool(runs) {
  return ai.tool({
    description: 'Current weather in a city',
    inputSchema: ai.jsonSchema({
      type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false,
    }),
    execute: async ({ city }) => {
      runs.push(city);
      return { city, temperature: 21 };
    },
  });
}

/** The records tagged TAG, once there are N. */
async function records(tag, n) {
  const list = await h.waitFor(async () => {
    const body = await (await fetch(`${gw.url}/api/v1/requests?property.Tag=${tag}`)).json();
    return body.total >= n ? body.data : null;
  }, 5000, 50);
  assert.ok(list, `the ${n} records of ${tag} did not arrive`);
  return list;
}

async function checkRun(result, runs, tag, route, label) {
  assert.equal(result.text, 'it is 21 degrees in Paris', `${label}: text`);
  assert.deepEqual(runs, ['Paris'], `${label}: the tool ran once with the model's arguments`);
  assert.equal(result.steps.length, 2, `${label}: a tool step and a text step`);
  const call = result.steps[0].toolCalls[0];
  assert.equal(call?.toolName, 'get_weather', label);
  assert.deepEqual(call.input, { city: 'Paris' }, label);
  assert.deepEqual(result.steps[0].toolResults[0]?.output, { city: 'Paris', temperature: 21 }, label);
  assert.ok(result.totalUsage.inputTokens > 0 && result.totalUsage.outputTokens > 0,
    `${label}: usage ${JSON.stringify(result.totalUsage)}`);
  const seen = await fake.requestsFor(tag);
  assert.equal(seen.length, 2, `${label}: two upstream calls`);
  const stored = await records(tag, 2);
  for (const r of stored) {
    assert.equal(r.status, 200, label);
    assert.equal(r.route, route, `${label}: the client's route`);
    assert.ok(r.prompt_tokens > 0 && r.completion_tokens > 0, `${label}: tokens ${JSON.stringify(r)}`);
    const cost = (r.prompt_tokens * PRICE.input + r.completion_tokens * PRICE.output) / 1000;
    assert.ok(r.cost !== null && Math.abs(r.cost - cost) < 1e-12, `${label}: cost ${r.cost} != ${cost}`);
  }
  const tokens = stored.reduce((a, r) => a + r.prompt_tokens, 0);
  assert.equal(result.totalUsage.inputTokens, tokens, `${label}: the SDK's input tokens are the records'`);
}

for (const [provider, model] of Object.entries(PROVIDERS)) {
  for (const [clientName, c] of Object.entries(CLIENTS)) {
    const label = `${clientName} on ${provider}`;
    const options = (tag, runs) => ({
      model: c.model(model),
      system: 'You report the weather.',
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weatherTool(runs) },
      stopWhen: ai.isStepCount(2),
      maxRetries: 0,
      headers: { 'x-test-id': tag, 'Helicone-Property-Tag': tag, 'x-fake-tool-args': '{"city":"Paris"}',
        'x-fake-reply': 'it is 21 degrees in Paris' },
    });

    test(`generateText, ${label}: a tool call and its result, then text`, async () => {
      const tag = h.testId('vercel-gen').replace(/[^A-Za-z0-9-]/g, '-');
      const runs = [];
      const result = await ai.generateText(options(tag, runs));
      await checkRun(result, runs, tag, c.route, label);
    });

    test(`streamText, ${label}: a tool call and its result, then text`, async () => {
      const tag = h.testId('vercel-stream').replace(/[^A-Za-z0-9-]/g, '-');
      const runs = [];
      const errors = [];
      const r = ai.streamText({ ...options(tag, runs), onError: ({ error }) => errors.push(error) });
      let streamed = '';
      for await (const part of r.textStream) streamed += part;
      assert.deepEqual(errors, [], `${label}: stream errors`);
      const result = { text: await r.text, steps: await r.steps, totalUsage: await r.totalUsage };
      assert.equal(streamed, result.text);
      await checkRun(result, runs, tag, c.route, label);
    });
  }
}
