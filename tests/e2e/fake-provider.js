#!/usr/bin/env node
'use strict';
// The project's fake provider for end-to-end tests: OpenAI-compatible,
// Anthropic Messages and Gemini generateContent.
//
//   node tests/e2e/fake-provider.js [PORT]     (or FAKE_PORT=PORT; 0 = any free port)
//
// Prints "LISTENING <port>" on stdout once it accepts connections.
// Endpoints: POST /v1/chat/completions (plain and SSE), /v1/completions,
// /v1/embeddings, /v1/responses (plain and SSE, with function calls),
// GET /v1/models (OpenAI); POST /v1/messages and /v1/messages/count_tokens
// (Anthropic); POST {any prefix}/models/{model}:generateContent and
// :streamGenerateContent (Gemini; ?alt=sse for SSE, else a JSON array), and
// :batchEmbedContents (Gemini embeddings).
// A request that declares tools is answered with a call of the first one.
// Per-request controls are request headers (see README.md): x-fake-status,
// x-fake-delay-ms, x-fake-chunks, x-fake-chunk-delay-ms, x-fake-drop,
// x-fake-reply, x-fake-fail-times, x-fake-retry-after, x-fake-cache-read,
// x-fake-thoughts, x-fake-tool-args, x-fake-tools, x-fake-eol.
// Errors come in the shape of the route's dialect.
// Introspection: GET|DELETE /_fake/requests, GET /_fake/stats.

const http = require('node:http');

const MAX_RECORDS = 1000;
const DEFAULT_REPLY = 'Hello from the fake provider.';
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'];
// Gemini's routes, under whatever prefix the caller uses (/v1beta, ...).
const GEMINI_ROUTE = /\/models\/([^/]+):([A-Za-z]+)$/;

const records = [];
const failCounts = new Map(); // x-test-id -> requests seen (x-fake-fail-times)
const stats = { received: 0, finished: 0, closedEarly: 0, inFlight: 0 };
let nextId = 1;

const words = (s) => (String(s).match(/\S+/g) || []).length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();

// Word count of whatever text a request carries: messages, prompt, input,
// Gemini's contents and systemInstruction.
function promptTokens(body) {
  if (!body || typeof body !== 'object') return 0;
  let n = 0;
  const text = (v) => {
    if (typeof v === 'string') n += words(v);
    else if (Array.isArray(v)) v.forEach(text);
    else if (v && typeof v === 'object') {
      if (typeof v.text === 'string') n += words(v.text);
      if (v.content !== undefined) text(v.content);
      if (v.parts !== undefined) text(v.parts);
    }
  };
  if (Array.isArray(body.messages)) body.messages.forEach((m) => text(m.content));
  if (Array.isArray(body.contents)) body.contents.forEach(text);
  if (body.systemInstruction !== undefined) text(body.systemInstruction);
  if (body.prompt !== undefined) text(body.prompt);
  if (body.input !== undefined) text(body.input);
  if (typeof body.instructions === 'string') text(body.instructions);
  return n;
}

function usageFor(body, reply) {
  const p = promptTokens(body);
  const c = words(reply);
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

// Split text into n pieces (deterministic; concatenation gives the text back).
function split(text, n) {
  const out = [];
  const size = Math.ceil(text.length / n) || 0;
  for (let i = 0; i < n; i++) out.push(text.slice(i * size, (i + 1) * size));
  return out;
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const data = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...extraHeaders,
  });
  res.end(data);
}

/** The dialect a route speaks: 'gemini', 'anthropic' or 'openai'. */
function dialectOf(path) {
  if (GEMINI_ROUTE.test(path)) return 'gemini';
  if (path === '/v1/messages' || path === '/v1/messages/count_tokens') return 'anthropic';
  return 'openai';
}

const ANTHROPIC_ERRORS = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 529: 'overloaded_error',
};
const GOOGLE_STATUS = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 501: 'NOT_IMPLEMENTED', 503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** An error body in the dialect's shape; retryAfter (seconds) for Gemini's RetryInfo. */
function errorBody(status, dialect = 'openai', retryAfter = '1') {
  const message = `fake provider failure: status ${status}`;
  if (dialect === 'anthropic') {
    return { type: 'error', error: { type: ANTHROPIC_ERRORS[status] || 'api_error', message } };
  }
  if (dialect === 'gemini') {
    const error = { code: status, message, status: GOOGLE_STATUS[status] || 'UNKNOWN' };
    if (status === 429) {
      error.details = [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` }];
    }
    return { error };
  }
  const kinds = {
    400: ['invalid_request_error', 'bad_request'],
    401: ['invalid_request_error', 'invalid_api_key'],
    404: ['invalid_request_error', 'not_found'],
    429: ['rate_limit_error', 'rate_limit_exceeded'],
  };
  const [type, code] = kinds[status] || ['server_error', 'fake_failure'];
  return { error: { message, type, param: null, code } };
}

function embedding(seed, index, dims = 8) {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = ((seed * 31 + index * 7 + i * 13) % 100) / 100;
  return v;
}

// ---------------------------------------------------------------- stream faults

/**
 * x-fake-drop at piece i of n of a stream: 'mid' destroys the socket
 * halfway (after what was sent reached the peer); 'torn' does the same
 * after the first bytes of the next event (`torn`); 'end' ends the response
 * cleanly halfway, without the dialect's terminator ([DONE], message_stop,
 * a finishReason). Returns 'dropped', 'ended' or null (go on).
 */
async function streamFault(req, res, rec, ctl, i, n, flushed, endWith = '', torn = 'data: {"partial') {
  if (!ctl.drop || i !== Math.floor(n / 2)) return null;
  if (ctl.drop === 'mid' || ctl.drop === 'torn') {
    rec.dropped = true;
    if (ctl.drop === 'torn') {
      await flushed;
      await sleep(20); // the whole events first, then half of one
      await new Promise((r) => res.write(torn, r));
    }
    await flushed; // what was sent so far reaches the peer before the cut
    await sleep(20);
    req.socket.destroy();
    return 'dropped';
  }
  if (ctl.drop === 'end') {
    res.end(endWith);
    return 'ended';
  }
  return null;
}

// ---------------------------------------------------------------- tools

// The first tool the request declares, in the dialect's own layout:
// { name, schema } or null.
function firstTool(dialect, body) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  if (dialect === 'gemini') {
    const decl = tools.map((t) => t && Array.isArray(t.functionDeclarations) && t.functionDeclarations[0])
      .find(Boolean);
    return decl ? { name: decl.name, schema: decl.parametersJsonSchema ?? decl.parameters } : null;
  }
  const t = tools[0];
  if (!t || typeof t !== 'object') return null;
  if (dialect === 'anthropic') return { name: t.name, schema: t.input_schema };
  return t.function ? { name: t.function.name, schema: t.function.parameters } : null;
}

// Does the conversation end with a tool's result? Then the model answers in text.
function endsWithToolResult(dialect, body) {
  if (dialect === 'gemini') {
    const last = Array.isArray(body.contents) ? body.contents.at(-1) : null;
    return Array.isArray(last?.parts) && last.parts.some((p) => p && p.functionResponse);
  }
  const last = Array.isArray(body.messages) ? body.messages.at(-1) : null;
  if (dialect === 'anthropic') {
    return Array.isArray(last?.content) && last.content.some((b) => b && b.type === 'tool_result');
  }
  return last?.role === 'tool';
}

// Arguments that fit a JSON Schema's top-level properties (Gemini's
// OpenAPI-style `parameters` writes the types in capitals).
function argsFor(schema) {
  const args = {};
  for (const [k, s] of Object.entries((schema && schema.properties) || {})) {
    const type = String((Array.isArray(s?.type) ? s.type[0] : s?.type) ?? '').toLowerCase();
    if (Array.isArray(s?.enum) && s.enum.length) args[k] = s.enum[0];
    else if (type === 'integer' || type === 'number') args[k] = 1;
    else if (type === 'boolean') args[k] = true;
    else if (type === 'array') args[k] = [];
    else if (type === 'object') args[k] = {};
    else args[k] = `fake ${k}`;
  }
  return args;
}

// The text of a message's content in any dialect: a string, text blocks
// or parts, Gemini's parts.
function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b) => (typeof b === 'string' ? b : typeof b?.text === 'string' ? b.text : ''))
    .join('\n');
}

// The text of the conversation's last user turn (what a prompt asks).
function lastUserText(dialect, body) {
  if (dialect === 'gemini') {
    const c = (Array.isArray(body.contents) ? body.contents : []).filter((x) => x?.role !== 'model');
    return textOf(c.at(-1)?.parts);
  }
  const m = (Array.isArray(body.messages) ? body.messages : []).filter((x) => x?.role === 'user');
  return textOf(m.at(-1)?.content);
}

// The text of the tool results the last turn hands back.
function toolResultText(dialect, body) {
  if (dialect === 'gemini') {
    const parts = body.contents?.at(-1)?.parts || [];
    return parts.filter((p) => p?.functionResponse)
      .map((p) => JSON.stringify(p.functionResponse.response)).join('\n');
  }
  const last = Array.isArray(body.messages) ? body.messages.at(-1) : null;
  if (dialect === 'anthropic') {
    return (Array.isArray(last?.content) ? last.content : []).filter((b) => b?.type === 'tool_result')
      .map((b) => textOf(b.content)).join('\n');
  }
  return textOf(last?.content);
}

// Names of every tool the request declares.
function toolNames(dialect, body) {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  if (dialect === 'gemini') {
    return tools.flatMap((t) => (Array.isArray(t?.functionDeclarations) ? t.functionDeclarations : []))
      .map((d) => d?.name);
  }
  return tools.map((t) => (dialect === 'anthropic' ? t?.name : t?.function?.name));
}

// x-fake-tools: prompt — a client that declares many tools (Claude Code)
// gets a call only when its last user turn asks for one with
// [[tool NAME {json args}]], NAME being a declared tool.
const TOOL_DIRECTIVE = /\[\[tool (\S+) (\{.*?\})\]\]/s;

function promptedCall(dialect, body) {
  const m = TOOL_DIRECTIVE.exec(lastUserText(dialect, body));
  if (!m || !toolNames(dialect, body).includes(m[1])) return null;
  return { name: m[1], args: JSON.parse(m[2]) };
}

/**
 * The tool call the fake answers with: the first declared tool, arguments
 * from x-fake-tool-args (JSON) or made up from its schema; with
 * x-fake-tools: prompt, the call the last user turn asks for. null when the
 * request declares no tool or hands a tool's result back.
 */
function toolCallFor(dialect, body, headers) {
  if (endsWithToolResult(dialect, body)) return null;
  if (headers['x-fake-tools'] === 'prompt') return promptedCall(dialect, body);
  const tool = firstTool(dialect, body);
  if (!tool || typeof tool.name !== 'string') return null;
  const given = headers['x-fake-tool-args'];
  return { name: tool.name, args: given !== undefined ? JSON.parse(given) : argsFor(tool.schema) };
}

// What a tool call counts as output, for usage.
const callWords = (call) => words(`${call.name} ${JSON.stringify(call.args)}`);

// ---------------------------------------------------------------- Anthropic

// Anthropic Messages, plain and streamed (message_start ... message_stop).
// x-fake-cache-read: N reports N prompt tokens read from the prompt cache.
async function anthropicMessages(req, res, rec, ctl, body, reply, id) {
  const cacheRead = Number(req.headers['x-fake-cache-read'] || 0);
  const call = toolCallFor('anthropic', body, req.headers);
  const usage = {
    input_tokens: promptTokens(body) + (typeof body.system === 'string' ? words(body.system) : 0),
    output_tokens: call ? callWords(call) : words(reply),
    cache_read_input_tokens: cacheRead, cache_creation_input_tokens: 0,
  };
  const msgId = `msg_fake_${id}`;
  const toolId = `toolu_fake_${id}`;
  const stopReason = call ? 'tool_use' : 'end_turn';
  if (!body.stream) {
    return sendJson(res, 200, {
      id: msgId, type: 'message', role: 'assistant', model: body.model,
      content: [call ? { type: 'tool_use', id: toolId, name: call.name, input: call.args }
        : { type: 'text', text: reply }],
      stop_reason: stopReason, stop_sequence: null, usage,
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let flushed = Promise.resolve();
  const send = (event, obj) => {
    flushed = new Promise((r) => res.write(`event: ${event}\ndata: ${JSON.stringify(obj)}\n\n`, r));
  };
  send('message_start', { type: 'message_start', message: {
    id: msgId, type: 'message', role: 'assistant', model: body.model, content: [],
    stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
  send('content_block_start', { type: 'content_block_start', index: 0, content_block: call
    ? { type: 'tool_use', id: toolId, name: call.name, input: {} } : { type: 'text', text: '' } });
  const pieces = split(call ? JSON.stringify(call.args) : reply, ctl.chunks);
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
    if (rec.closedEarly) return;
    if (await streamFault(req, res, rec, ctl, i, pieces.length, flushed)) return;
    send('content_block_delta', { type: 'content_block_delta', index: 0, delta: call
      ? { type: 'input_json_delta', partial_json: piece } : { type: 'text_delta', text: piece } });
  }
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: usage.output_tokens } });
  send('message_stop', { type: 'message_stop' });
  return res.end();
}

// ---------------------------------------------------------------- Gemini

// Gemini generateContent and streamGenerateContent (SSE with ?alt=sse,
// otherwise one JSON array written as the parts come). A stream's text
// comes in x-fake-chunks events, a functionCall whole in one; every event
// carries usageMetadata, the last one the full counts and finishReason.
// x-fake-cache-read: N adds N tokens of cached content to the prompt;
// x-fake-thoughts: N reports N thinking tokens.
async function geminiGenerate(req, res, rec, ctl, body, reply, id, model, action) {
  if (action !== 'generateContent' && action !== 'streamGenerateContent') {
    return sendJson(res, 404, errorBody(404, 'gemini'));
  }
  const cacheRead = Number(req.headers['x-fake-cache-read'] || 0);
  const thoughts = Number(req.headers['x-fake-thoughts'] || 0);
  const call = toolCallFor('gemini', body, req.headers);
  const prompt = promptTokens(body) + cacheRead;
  const output = call ? callWords(call) : words(reply);
  const usage = { promptTokenCount: prompt, candidatesTokenCount: output,
    totalTokenCount: prompt + output + thoughts };
  if (cacheRead) usage.cachedContentTokenCount = cacheRead;
  if (thoughts) usage.thoughtsTokenCount = thoughts;
  const responseId = `fake-resp-${id}`;
  const response = (parts, last) => ({
    candidates: [{ content: { role: 'model', parts }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
    usageMetadata: last ? usage : { promptTokenCount: prompt, totalTokenCount: prompt },
    modelVersion: model, responseId,
  });
  const callPart = call && { functionCall: { name: call.name, args: call.args } };
  if (action === 'generateContent') return sendJson(res, 200, response([callPart || { text: reply }], true));

  const sse = new URLSearchParams(rec.path.split('?')[1] || '').get('alt') === 'sse';
  res.writeHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/json',
    'cache-control': 'no-cache' });
  let flushed = Promise.resolve();
  let n = 0;
  const send = (obj) => {
    const json = JSON.stringify(obj);
    const data = sse ? `data: ${json}\r\n\r\n` : `${n++ ? ',\r\n' : '['}${json}`;
    flushed = new Promise((r) => res.write(data, r));
  };
  const parts = call ? [callPart] : split(reply, ctl.chunks).map((t) => ({ text: t }));
  for (let i = 0; i < parts.length; i++) {
    if (ctl.chunkDelay && i > 0) await sleep(ctl.chunkDelay); // the first goes at once, as OpenAI's role chunk

    if (rec.closedEarly) return;
    if (parts.length > 1 && await streamFault(req, res, rec, ctl, i, parts.length, flushed,
      sse || !n ? '' : ']', sse ? 'data: {"partial' : ',\r\n{"partial')) return;
    send(response([parts[i]], i === parts.length - 1));
  }
  return res.end(sse ? '' : (n ? ']' : '[]'));
}

// ---------------------------------------------------------------- OpenAI Responses

// The tool call a Responses request gets: its first function tool (the
// Responses layout: {type, name, parameters}), unless the input ends with a
// function_call_output; arguments from x-fake-tool-args or the schema.
function responsesToolCall(body, headers) {
  const tool = Array.isArray(body.tools) ? body.tools.find((t) => t && t.type === 'function') : null;
  const last = Array.isArray(body.input) ? body.input.at(-1) : null;
  if (!tool || typeof tool.name !== 'string' || last?.type === 'function_call_output') return null;
  const given = headers['x-fake-tool-args'];
  return { name: tool.name, args: given !== undefined ? JSON.parse(given) : argsFor(tool.parameters) };
}

// POST /v1/responses, plain and streamed (response.created ... response.completed,
// every event with its sequence_number). A request with a function tool is
// answered with a function_call item; x-fake-cache-read: N reports N cached
// input tokens; x-fake-drop cuts the stream as for the other dialects.
async function openaiResponses(req, res, rec, ctl, body, reply, id, created) {
  const call = responsesToolCall(body, req.headers);
  const cacheRead = Number(req.headers['x-fake-cache-read'] || 0);
  const input = promptTokens(body);
  const output = call ? callWords(call) : words(reply);
  const usage = { input_tokens: input, input_tokens_details: { cached_tokens: cacheRead },
    output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output };
  const respId = `resp_fake_${id}`;
  const item = call
    ? { type: 'function_call', id: `fc_fake_${id}`, call_id: `call_fake_${id}`, name: call.name,
      arguments: JSON.stringify(call.args), status: 'completed' }
    : { type: 'message', id: `msg_fake_${id}`, status: 'completed', role: 'assistant',
      content: [{ type: 'output_text', text: reply, annotations: [] }] };
  const response = (status, out, u) => ({ id: respId, object: 'response', created_at: created, status,
    error: null, incomplete_details: null, model: body.model, output: out, usage: u });
  if (!body.stream) return sendJson(res, 200, response('completed', [item], usage));

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let flushed = Promise.resolve();
  let seq = 0;
  const send = (type, obj) => {
    const data = JSON.stringify({ type, sequence_number: seq++, ...obj });
    flushed = new Promise((r) => res.write(`event: ${type}\ndata: ${data}\n\n`, r));
  };
  send('response.created', { response: response('in_progress', [], null) });
  send('response.in_progress', { response: response('in_progress', [], null) });
  const started = call ? { ...item, arguments: '', status: 'in_progress' }
    : { ...item, content: [], status: 'in_progress' };
  send('response.output_item.added', { output_index: 0, item: started });
  const part = { type: 'output_text', text: '', annotations: [] };
  if (!call) send('response.content_part.added', { item_id: item.id, output_index: 0, content_index: 0, part });
  const pieces = split(call ? item.arguments : reply, ctl.chunks);
  for (let i = 0; i < pieces.length; i++) {
    if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
    if (rec.closedEarly) return;
    if (await streamFault(req, res, rec, ctl, i, pieces.length, flushed)) return;
    if (call) send('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta: pieces[i] });
    else send('response.output_text.delta', { item_id: item.id, output_index: 0, content_index: 0, delta: pieces[i], logprobs: [] });
  }
  if (call) {
    send('response.function_call_arguments.done', { item_id: item.id, output_index: 0, name: call.name, arguments: item.arguments });
  } else {
    send('response.output_text.done', { item_id: item.id, output_index: 0, content_index: 0, text: reply, logprobs: [] });
    send('response.content_part.done', { item_id: item.id, output_index: 0, content_index: 0, part: { ...part, text: reply } });
  }
  send('response.output_item.done', { output_index: 0, item });
  send('response.completed', { response: response('completed', [item], usage) });
  return res.end();
}

// Gemini batchEmbedContents: one vector per request, of outputDimensionality
// floats (8 when not asked), derived from the text like the OpenAI route's.
function geminiEmbed(res, body) {
  const reqs = Array.isArray(body.requests) ? body.requests : [];
  if (!reqs.length) return sendJson(res, 400, errorBody(400, 'gemini'));
  return sendJson(res, 200, {
    embeddings: reqs.map((r, i) => {
      const text = (r.content?.parts || []).map((p) => p.text || '').join(' ');
      return { values: Array.from(embedding(words(text), i, r.outputDimensionality || 8)) };
    }),
  });
}

// ---------------------------------------------------------------- OpenAI

async function handleApi(req, res, rec, ctl) {
  const body = rec.body && typeof rec.body === 'object' ? rec.body : {};
  const model = body.model;
  const path = rec.path.split('?')[0];
  const dialect = dialectOf(path);
  // x-fake-tools: prompt — the answer to a tool's result quotes it, so a
  // client can show that the tool ran and its output came back.
  const reply = req.headers['x-fake-tools'] === 'prompt' && endsWithToolResult(dialect, body)
    ? `Tool result: ${toolResultText(dialect, body).slice(0, 500)}` : ctl.reply ?? DEFAULT_REPLY;
  const id = `${rec.id}`;
  const created = Math.floor(now() / 1000);

  if (req.method === 'GET' && path === '/v1/models') {
    return sendJson(res, 200, {
      object: 'list',
      data: MODELS.map((m) => ({ id: m, object: 'model', created: 1700000000, owned_by: 'fake' })),
    });
  }
  if (req.method !== 'POST') return sendJson(res, 404, errorBody(404, dialect));
  if (path === '/v1/messages/count_tokens') {
    return sendJson(res, 200, { input_tokens: promptTokens(body) + words(textOf(body.system)) });
  }

  if (dialect === 'anthropic') return anthropicMessages(req, res, rec, ctl, body, reply, id);
  if (dialect === 'gemini') {
    const [, name, action] = GEMINI_ROUTE.exec(path);
    if (action === 'batchEmbedContents') return geminiEmbed(res, body);
    return geminiGenerate(req, res, rec, ctl, body, reply, id, decodeURIComponent(name), action);
  }

  if (path === '/v1/chat/completions') {
    const call = toolCallFor('openai', body, req.headers);
    const callId = `call_fake_${id}`;
    const usage = usageFor(body, reply);
    if (call) {
      usage.completion_tokens = callWords(call);
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    const finish = call ? 'tool_calls' : 'stop';
    if (!body.stream) {
      const message = call
        ? { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: callId, type: 'function',
          function: { name: call.name, arguments: JSON.stringify(call.args) } }] }
        : { role: 'assistant', content: reply, refusal: null };
      return sendJson(res, 200, {
        id: `chatcmpl-fake-${id}`, object: 'chat.completion', created, model,
        system_fingerprint: 'fp_fake',
        choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
        usage,
      });
    }
    const withUsage = !!(body.stream_options && body.stream_options.include_usage);
    const chunk = (delta, fin, extra = {}) => ({
      id: `chatcmpl-fake-${id}`, object: 'chat.completion.chunk', created, model,
      system_fingerprint: 'fp_fake',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: fin }],
      ...(withUsage ? { usage: null } : {}),
      ...extra,
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let flushed = Promise.resolve();
    // x-fake-eol: crlf ends the stream's lines with CRLF, as some servers do
    const eol = req.headers['x-fake-eol'] === 'crlf' ? '\r\n' : '\n';
    const send = (obj) => {
      flushed = new Promise((r) => res.write(`data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}${eol}${eol}`, r));
    };
    send(chunk({ role: 'assistant', content: call ? null : '', refusal: null }, null));
    // A tool call: its id and name first, then the arguments in pieces.
    const deltas = call
      ? [{ tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: call.name, arguments: '' } }] },
        ...split(JSON.stringify(call.args), ctl.chunks)
          .map((a) => ({ tool_calls: [{ index: 0, function: { arguments: a } }] }))]
      : split(reply, ctl.chunks).map((c) => ({ content: c }));
    for (let i = 0; i < deltas.length; i++) {
      if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
      if (rec.closedEarly) return; // the peer left: stop producing
      if (ctl.drop === 'error' && i === Math.floor(deltas.length / 2)) { // OpenAI's own error event
        send({ error: { message: 'The server had an error while processing your request.', type: 'server_error' } });
        return res.end();
      }
      if (await streamFault(req, res, rec, ctl, i, deltas.length, flushed)) return;
      send(chunk(deltas[i], null));
    }
    if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
    if (rec.closedEarly) return;
    send(chunk({}, finish));
    if (withUsage) send({ id: `chatcmpl-fake-${id}`, object: 'chat.completion.chunk', created, model,
      system_fingerprint: 'fp_fake', choices: [], usage });
    send('[DONE]');
    return res.end();
  }

  if (path === '/v1/completions') {
    return sendJson(res, 200, {
      id: `cmpl-fake-${id}`, object: 'text_completion', created, model,
      choices: [{ text: reply, index: 0, logprobs: null, finish_reason: 'stop' }],
      usage: usageFor(body, reply),
    });
  }

  if (path === '/v1/embeddings') {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    const p = promptTokens(body);
    return sendJson(res, 200, {
      object: 'list', model,
      data: inputs.map((inp, i) => {
        const v = embedding(words(inp ?? ''), i);
        return { object: 'embedding', index: i,
          embedding: body.encoding_format === 'base64'
            ? Buffer.from(v.buffer).toString('base64') : Array.from(v) };
      }),
      usage: { prompt_tokens: p, total_tokens: p },
    });
  }

  if (path === '/v1/responses') return openaiResponses(req, res, rec, ctl, body, reply, id, created);

  return sendJson(res, 404, errorBody(404));
}

function handleIntrospection(req, res, path) {
  if (path === '/_fake/requests' && req.method === 'GET') return sendJson(res, 200, records);
  if (path === '/_fake/requests' && req.method === 'DELETE') {
    records.length = 0;
    return sendJson(res, 200, { cleared: true });
  }
  if (path === '/_fake/stats' && req.method === 'GET') return sendJson(res, 200, stats);
  return sendJson(res, 404, { error: 'unknown introspection route' });
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    if (path.startsWith('/_fake/')) return handleIntrospection(req, res, path);

    const raw = Buffer.concat(chunks).toString('utf8');
    let body = raw.length ? raw : null;
    try { if (raw.length) body = JSON.parse(raw); } catch { /* keep the raw text */ }
    const h = req.headers;
    const rec = {
      id: nextId++, method: req.method, path: req.url,
      query: Object.fromEntries(new URLSearchParams(req.url.split('?')[1] || '')), headers: h, body,
      bodyBytes: Buffer.byteLength(raw), receivedAt: now(),
      status: null, finished: false, closedEarly: false, finishedAt: null, closedAt: null,
    };
    records.push(rec);
    if (records.length > MAX_RECORDS) records.shift();
    stats.received++;
    stats.inFlight++;

    let ended = false;
    const done = (early) => {
      if (ended) return;
      ended = true;
      stats.inFlight--;
      if (early && rec.dropped) rec.closedAt = now(); // we hung up on purpose
      else if (early) { rec.closedEarly = true; rec.closedAt = now(); stats.closedEarly++; }
      else { rec.finished = true; rec.finishedAt = now(); stats.finished++; }
    };
    // A peer that leaves is noticed even while nothing is being written.
    const onSocketClose = () => done(!res.writableFinished);
    req.socket.once('close', onSocketClose);
    res.once('close', () => { done(!res.writableFinished); req.socket.off('close', onSocketClose); });
    res.once('finish', () => { rec.status = res.statusCode; });

    // x-fake-fail-times: N — the first N requests of one x-test-id fail with
    // x-fake-status (default 500), the later ones succeed.
    let failing = Boolean(h['x-fake-status']);
    if (h['x-fake-fail-times'] !== undefined) {
      const key = h['x-test-id'] || '';
      const seen = (failCounts.get(key) || 0) + 1;
      failCounts.set(key, seen);
      failing = seen <= Number(h['x-fake-fail-times']);
    }
    const ctl = {
      status: failing ? Number(h['x-fake-status'] || 500) : null,
      delay: Number(h['x-fake-delay-ms'] || 0),
      chunks: Math.max(1, Number(h['x-fake-chunks'] || 5)),
      chunkDelay: Number(h['x-fake-chunk-delay-ms'] || 0),
      drop: h['x-fake-drop'] || null,
      reply: h['x-fake-reply'] !== undefined ? h['x-fake-reply'] : null,
    };
    try {
      if (ctl.drop === 'before') { rec.dropped = true; return req.socket.destroy(); }
      if (ctl.delay) await sleep(ctl.delay);
      if (rec.closedEarly) return;
      if (ctl.status) {
        const retryAfter = h['x-fake-retry-after'] ?? '1';
        return sendJson(res, ctl.status, errorBody(ctl.status, dialectOf(path), retryAfter),
          ctl.status === 429 ? { 'retry-after': retryAfter } : {});
      }
      await handleApi(req, res, rec, ctl);
    } catch (err) {
      process.stderr.write(`fake-provider: ${err.stack}\n`);
      if (!res.headersSent) sendJson(res, 500, errorBody(500, dialectOf(path)));
      else res.destroy();
    }
  });
});

server.keepAliveTimeout = 30000;
const port = Number(process.argv[2] ?? process.env.FAKE_PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
