// request.js — #/requests/{id}: one record (GET /api/v1/requests/{id}):
// status, timings, tokens, cost, cache, retries, fallbacks, properties,
// the chat as a conversation, and both bodies pretty-printed.

import { api, h, fmt } from '../lib.js';

/** Text of a message's content in any dialect's shape. */
function textOf(c) {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map(textOf).filter(Boolean).join('\n');
  if (typeof c === 'object') {
    if (typeof c.text === 'string') return c.text;
    if (c.type === 'tool_use' || c.type === 'function_call') return `[tool call ${c.name}] ${JSON.stringify(c.input ?? c.arguments ?? {})}`;
    if (c.type === 'tool_result') return `[tool result] ${textOf(c.content)}`;
    if (c.content !== undefined) return textOf(c.content);
    if (c.parts) return textOf(c.parts);
    if (c.functionCall) return `[tool call ${c.functionCall.name}]`;
  }
  return '';
}

/** A body as the API gives it: JSON inline when it was JSON, else a string. */
function parse(s) {
  if (!s) return null;
  if (typeof s === 'object') return s;
  try { return JSON.parse(s); } catch { return null; }
}

/** The messages a request sent: OpenAI/Anthropic messages, Responses input, Gemini contents. */
function asked(req) {
  const out = [];
  if (!req) return out;
  if (req.system) out.push({ role: 'system', text: textOf(req.system) });
  if (req.instructions) out.push({ role: 'system', text: textOf(req.instructions) });
  if (req.systemInstruction) out.push({ role: 'system', text: textOf(req.systemInstruction) });
  for (const m of req.messages || []) out.push({ role: m.role, text: textOf(m.content ?? m.tool_calls) });
  if (typeof req.input === 'string') out.push({ role: 'user', text: req.input });
  else if (Array.isArray(req.input)) for (const m of req.input) out.push({ role: m.role || m.type || 'user', text: textOf(m.content ?? m) });
  for (const m of req.contents || []) out.push({ role: m.role || 'user', text: textOf(m.parts) });
  if (typeof req.prompt === 'string') out.push({ role: 'user', text: req.prompt });
  return out;
}

/** The answer's text: a JSON body in any dialect, or an event stream's deltas joined. */
function answered(body) {
  const j = parse(body);
  if (j) {
    if (j.choices) return j.choices.map((c) => textOf(c.message?.content ?? c.text ?? c.message?.tool_calls)).join('\n');
    if (j.content) return textOf(j.content);
    if (j.output) return textOf(j.output.map((o) => o.content ?? o));
    if (j.candidates) return j.candidates.map((c) => textOf(c.content?.parts)).join('\n');
    return '';
  }
  if (!body || typeof body !== 'string') return '';
  let text = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const e = parse(line.slice(5).trim());
    if (!e) continue;
    text += e.choices?.[0]?.delta?.content ?? e.delta?.text ?? (e.type === 'response.output_text.delta' ? e.delta : '')
      ?? '';
    if (e.candidates) text += textOf(e.candidates[0]?.content?.parts);
  }
  return text;
}

function pretty(s) {
  const j = parse(s);
  return j ? JSON.stringify(j, null, 2) : (s || '');
}

export async function render(root, id) {
  const r = await api(`requests/${encodeURIComponent(id)}`);
  const rows = [
    ['id', r.id], ['time', fmt.time(r.created_at)], ['status', r.status], ['route', r.route],
    ['provider', r.provider], ['model', r.model], ['model asked', r.model_requested],
    ['latency', fmt.ms(r.latency_ms)], ['time to first token', fmt.ms(r.ttft_ms)],
    ['prompt tokens', fmt.int(r.prompt_tokens)], ['completion tokens', fmt.int(r.completion_tokens)],
    ['cached tokens', fmt.int(r.cached_tokens)], ['reasoning tokens', fmt.int(r.reasoning_tokens)],
    ['cost', fmt.usd(r.cost)], ['cache', r.cache],
    ['saved by the cache', r.cache_saved === null || r.cache_saved === undefined ? null : fmt.usd(r.cache_saved)],
    ['retries', r.retries],
    ['fallback', r.fallback_index], ['user', r.user_id], ['key', r.key_name],
    ['client', r.client_ip], ['error', r.error],
  ];
  if (r.session_id) rows.push(['session', h('a', { href: `#/sessions/${encodeURIComponent(r.session_id)}` }, `${r.session_id}${r.session_path ? ` ${r.session_path}` : ''}`)]);
  const props = Object.entries(r.properties || {});
  const req = parse(r.request_body);
  const convo = asked(req);
  const answer = answered(r.response_body);
  if (answer) convo.push({ role: 'assistant', text: answer, answer: true });
  root.append(
    h('div.toolbar', h('h1', 'Request'), h('a.button', { href: '#/requests' }, '← All requests')),
    h('div.detail',
      h('table.kv', rows.filter(([, v]) => v !== null && v !== undefined && v !== '')
        .map(([k, v]) => h('tr', h('th', k), h('td', { dataset: { field: k } }, v)))),
      h('div',
        h('h2', 'Properties'),
        props.length ? h('table.kv.props', props.map(([k, v]) => h('tr', h('th', k), h('td', v))))
          : h('p.muted', 'none'),
        h('h2', 'Conversation'),
        convo.length ? h('div.convo', convo.map((m) => h(`div.msg.${m.role === 'assistant' ? 'assistant' : m.role === 'system' ? 'system' : 'user'}`,
          { dataset: { role: m.role } }, h('span.role', m.role), h('div.text', m.text))))
          : h('p.muted', 'no messages recorded'))),
    h('h2', 'Request body'), h('pre.body', { dataset: { body: 'request' } }, r.request_body === null ? '(not stored)' : pretty(r.request_body)),
    h('h2', 'Response body'), h('pre.body', { dataset: { body: 'response' } }, r.response_body === null ? '(not stored)' : pretty(r.response_body)));
}
