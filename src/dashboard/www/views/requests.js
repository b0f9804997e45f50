// requests.js — #/requests?<filters>: the request log, newest first, paged,
// with the filters of GET /api/v1/requests under the same names (model,
// provider, status, user_id, session_id, property.<Name>, from, to).

import { api, h, fmt, hashParams, setHashParams } from '../lib.js';

const FIELDS = [['model', 'model'], ['provider', 'provider'], ['status', 'status (429, 4xx, error)'],
  ['user_id', 'user'], ['session_id', 'session']];
const PAGE = 50;

function toLocalInput(v) {
  if (!v) return '';
  const d = /^\d+$/.test(v) ? new Date(Number(v) * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

export async function render(root) {
  const params = hashParams();
  const inputs = {};
  const fields = FIELDS.map(([k, label]) => h('label', label,
    inputs[k] = h('input', { name: k, value: params.get(k) || '', size: 12 })));
  let propName = '';
  let propValue = '';
  for (const [k, v] of params) if (k.startsWith('property.')) { propName = k.slice(9); propValue = v; }
  const pn = h('input', { name: 'prop-name', value: propName, placeholder: 'Name', size: 10 });
  const pv = h('input', { name: 'prop-value', value: propValue, placeholder: 'value', size: 10 });
  const from = h('input', { name: 'from', type: 'datetime-local', value: toLocalInput(params.get('from')) });
  const to = h('input', { name: 'to', type: 'datetime-local', value: toLocalInput(params.get('to')) });
  const form = h('form.filters', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      for (const [k] of FIELDS) if (inputs[k].value.trim()) p.set(k, inputs[k].value.trim());
      if (pn.value.trim() && pv.value.trim()) p.set(`property.${pn.value.trim()}`, pv.value.trim());
      if (from.value) p.set('from', new Date(from.value).toISOString());
      if (to.value) p.set('to', new Date(to.value).toISOString());
      setHashParams('#/requests', p);
    },
  }, fields, h('label', 'property', pn, pv), h('label', 'from', from), h('label', 'to', to),
  h('button', { type: 'submit' }, 'Filter'),
  h('a.button', { href: '#/requests' }, 'Clear'));

  const body = h('tbody');
  const pager = h('div.pager');
  const total = h('span.muted');
  root.append(h('div.toolbar', h('h1', 'Requests'), total), form,
    h('table.log', h('thead', h('tr', ['time', 'status', 'provider', 'model', 'user', 'session',
      'tokens', 'cost', 'latency', 'cache'].map((c) => h('th', c)))), body), pager);

  const offset = Number(params.get('offset') || 0);
  async function refresh() {
    const q = new URLSearchParams(params);
    q.set('limit', String(PAGE));
    q.set('offset', String(offset));
    const res = await api(`requests?${q}`);
    total.textContent = `${fmt.int(res.total)} request${res.total === 1 ? '' : 's'}`;
    body.replaceChildren(...res.data.map((r) => h('tr', { dataset: { id: r.id } },
      h('td', h('a', { href: `#/requests/${encodeURIComponent(r.id)}` }, fmt.time(r.created_at))),
      h('td', h(`span.badge.${r.status >= 400 || r.error ? 'bad' : 'good'}`, r.status)),
      h('td', r.provider || '—'), h('td', r.model || r.model_requested || '—'),
      h('td', r.user_id || ''),
      h('td', r.session_id ? h('a', { href: `#/sessions/${encodeURIComponent(r.session_id)}` }, r.session_id) : ''),
      h('td.num', fmt.int((r.prompt_tokens || 0) + (r.completion_tokens || 0))),
      h('td.num', fmt.usd(r.cost)), h('td.num', fmt.ms(r.latency_ms)), h('td', r.cache))));
    if (!res.data.length) body.append(h('tr', h('td.muted', { colSpan: 10 }, 'No request matches.')));
    const page = (o) => {
      const p = new URLSearchParams(params);
      if (o) p.set('offset', String(o)); else p.delete('offset');
      return `#/requests?${p}`;
    };
    pager.replaceChildren(
      offset > 0 ? h('a.button', { href: page(Math.max(0, offset - PAGE)) }, '← Newer') : '',
      h('span.muted', res.total ? `${offset + 1}–${offset + res.data.length} of ${fmt.int(res.total)}` : ''),
      offset + PAGE < res.total ? h('a.button', { href: page(offset + PAGE), rel: 'next' }, 'Older →') : '');
  }
  await refresh();
  return { refresh: offset === 0 ? refresh : null };
}
