#!/usr/bin/env node
'use strict';
// The project's fake OpenAI-compatible provider for end-to-end tests.
//
//   node tests/e2e/fake-provider.js [PORT]     (or FAKE_PORT=PORT; 0 = any free port)
//
// Prints "LISTENING <port>" on stdout once it accepts connections.
// Endpoints (OpenAI format): POST /v1/chat/completions (plain and SSE),
// POST /v1/completions, POST /v1/embeddings, POST /v1/responses, GET /v1/models.
// Per-request controls are request headers (see README.md): x-fake-status,
// x-fake-delay-ms, x-fake-chunks, x-fake-chunk-delay-ms, x-fake-drop, x-fake-reply.
// Introspection: GET|DELETE /_fake/requests, GET /_fake/stats.

const http = require('node:http');

const MAX_RECORDS = 1000;
const DEFAULT_REPLY = 'Hello from the fake provider.';
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'];

const records = [];
const failCounts = new Map(); // x-test-id -> requests seen (x-fake-fail-times)
const stats = { received: 0, finished: 0, closedEarly: 0, inFlight: 0 };
let nextId = 1;

const words = (s) => (String(s).match(/\S+/g) || []).length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();

// Word count of whatever text a request carries: messages, prompt, input.
function promptTokens(body) {
  if (!body || typeof body !== 'object') return 0;
  let n = 0;
  const text = (v) => {
    if (typeof v === 'string') n += words(v);
    else if (Array.isArray(v)) v.forEach(text);
    else if (v && typeof v === 'object') {
      if (typeof v.text === 'string') n += words(v.text);
      if (v.content !== undefined) text(v.content);
    }
  };
  if (Array.isArray(body.messages)) body.messages.forEach((m) => text(m.content));
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

function errorBody(status) {
  const kinds = {
    400: ['invalid_request_error', 'bad_request'],
    401: ['invalid_request_error', 'invalid_api_key'],
    404: ['invalid_request_error', 'not_found'],
    429: ['rate_limit_error', 'rate_limit_exceeded'],
  };
  const [type, code] = kinds[status] || ['server_error', 'fake_failure'];
  return { error: { message: `fake provider failure: status ${status}`, type, param: null, code } };
}

function embedding(seed, index, dims = 8) {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = ((seed * 31 + index * 7 + i * 13) % 100) / 100;
  return v;
}

// Anthropic Messages, plain and streamed (message_start ... message_stop).
// x-fake-cache-read: N reports N prompt tokens read from the prompt cache.
async function anthropicMessages(req, res, rec, ctl, body, reply, id) {
  const cacheRead = Number(req.headers['x-fake-cache-read'] || 0);
  const usage = {
    input_tokens: promptTokens(body) + (typeof body.system === 'string' ? words(body.system) : 0),
    output_tokens: words(reply), cache_read_input_tokens: cacheRead, cache_creation_input_tokens: 0,
  };
  const msgId = `msg_fake_${id}`;
  if (!body.stream) {
    return sendJson(res, 200, {
      id: msgId, type: 'message', role: 'assistant', model: body.model,
      content: [{ type: 'text', text: reply }], stop_reason: 'end_turn', stop_sequence: null, usage,
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const send = (event, obj) => res.write(`event: ${event}\ndata: ${JSON.stringify(obj)}\n\n`);
  send('message_start', { type: 'message_start', message: {
    id: msgId, type: 'message', role: 'assistant', model: body.model, content: [],
    stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } });
  send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  for (const piece of split(reply, ctl.chunks)) {
    if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
    if (rec.closedEarly) return;
    send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece } });
  }
  send('content_block_stop', { type: 'content_block_stop', index: 0 });
  send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: usage.output_tokens } });
  send('message_stop', { type: 'message_stop' });
  return res.end();
}

async function handleApi(req, res, rec, ctl) {
  const body = rec.body && typeof rec.body === 'object' ? rec.body : {};
  const model = body.model;
  const reply = ctl.reply ?? DEFAULT_REPLY;
  const id = `${rec.id}`;
  const created = Math.floor(now() / 1000);
  const path = rec.path.split('?')[0];

  if (req.method === 'GET' && path === '/v1/models') {
    return sendJson(res, 200, {
      object: 'list',
      data: MODELS.map((m) => ({ id: m, object: 'model', created: 1700000000, owned_by: 'fake' })),
    });
  }
  if (req.method !== 'POST') return sendJson(res, 404, errorBody(404));

  if (path === '/v1/messages') return anthropicMessages(req, res, rec, ctl, body, reply, id);

  if (path === '/v1/chat/completions') {
    const usage = usageFor(body, reply);
    if (!body.stream) {
      return sendJson(res, 200, {
        id: `chatcmpl-fake-${id}`, object: 'chat.completion', created, model,
        system_fingerprint: 'fp_fake',
        choices: [{ index: 0, message: { role: 'assistant', content: reply, refusal: null },
          logprobs: null, finish_reason: 'stop' }],
        usage,
      });
    }
    const withUsage = !!(body.stream_options && body.stream_options.include_usage);
    const chunk = (delta, finish, extra = {}) => ({
      id: `chatcmpl-fake-${id}`, object: 'chat.completion.chunk', created, model,
      system_fingerprint: 'fp_fake',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(withUsage ? { usage: null } : {}),
      ...extra,
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let flushed = Promise.resolve();
    const send = (obj) => {
      flushed = new Promise((r) => res.write(`data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`, r));
    };
    send(chunk({ role: 'assistant', content: '', refusal: null }, null));
    const pieces = split(reply, ctl.chunks);
    for (let i = 0; i < pieces.length; i++) {
      if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
      if (rec.closedEarly) return; // the peer left: stop producing
      if (ctl.drop === 'mid' && i === Math.floor(pieces.length / 2)) {
        rec.dropped = true;
        await flushed; // what was sent so far reaches the peer before the cut
        await sleep(20);
        return req.socket.destroy();
      }
      send(chunk({ content: pieces[i] }, null));
    }
    if (ctl.chunkDelay) await sleep(ctl.chunkDelay);
    if (rec.closedEarly) return;
    send(chunk({}, 'stop'));
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

  if (path === '/v1/responses') {
    const u = usageFor(body, reply);
    return sendJson(res, 200, {
      id: `resp_fake_${id}`, object: 'response', created_at: created, status: 'completed', model,
      output: [{ type: 'message', id: `msg_fake_${id}`, status: 'completed', role: 'assistant',
        content: [{ type: 'output_text', text: reply, annotations: [] }] }],
      usage: { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens,
        total_tokens: u.total_tokens },
    });
  }

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
      id: nextId++, method: req.method, path: req.url, headers: h, body,
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
        return sendJson(res, ctl.status, errorBody(ctl.status),
          ctl.status === 429 ? { 'retry-after': h['x-fake-retry-after'] ?? '1' } : {});
      }
      await handleApi(req, res, rec, ctl);
    } catch (err) {
      process.stderr.write(`fake-provider: ${err.stack}\n`);
      if (!res.headersSent) sendJson(res, 500, errorBody(500));
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
