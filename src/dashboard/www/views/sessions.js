// sessions.js — #/sessions: sessions by their last request (GET
// /api/v1/sessions); #/sessions/{id}: one session's requests as a tree by
// Helicone-Session-Path, with cost and latency per step and in total.

import { api, h, fmt, hashParams } from '../lib.js';

export async function renderList(root) {
  const params = hashParams();
  const offset = Number(params.get('offset') || 0);
  const body = h('tbody');
  const total = h('span.muted');
  const pager = h('div.pager');
  root.append(h('div.toolbar', h('h1', 'Sessions'), total),
    h('table.sessions', h('thead', h('tr', ['session', 'name', 'requests', 'errors', 'cost', 'latency', 'last request']
      .map((c, i) => h(i > 1 && i < 6 ? 'th.num' : 'th', c)))), body), pager);
  async function refresh() {
    const res = await api(`sessions?limit=50&offset=${offset}`);
    total.textContent = `${fmt.int(res.total)} session${res.total === 1 ? '' : 's'}`;
    body.replaceChildren(...res.data.map((s) => h('tr', { dataset: { session: s.session_id } },
      h('td', h('a', { href: `#/sessions/${encodeURIComponent(s.session_id)}` }, s.session_id)),
      h('td', s.session_name || ''), h('td.num', fmt.int(s.requests)), h('td.num', fmt.int(s.errors)),
      h('td.num', fmt.usd(s.cost)), h('td.num', fmt.ms(s.latency_ms)), h('td', fmt.time(s.last_at)))));
    if (!res.data.length) body.append(h('tr', h('td.muted', { colSpan: 7 }, 'No sessions yet: send Helicone-Session-Id (and Helicone-Session-Path) with requests.')));
    pager.replaceChildren(
      offset > 0 ? h('a.button', { href: `#/sessions?offset=${Math.max(0, offset - 50)}` }, '← Newer') : '',
      offset + 50 < res.total ? h('a.button', { href: `#/sessions?offset=${offset + 50}` }, 'Older →') : '');
  }
  await refresh();
  return { refresh: offset === 0 ? refresh : null };
}

/** Nodes by path segment: {name, path, requests: [], children: Map}. */
function tree(records) {
  const root = { name: '', path: '', requests: [], children: new Map() };
  for (const r of records) {
    const segs = (r.session_path || '/').split('/').filter(Boolean);
    let node = root;
    let path = '';
    for (const s of segs) {
      path += `/${s}`;
      if (!node.children.has(s)) node.children.set(s, { name: s, path, requests: [], children: new Map() });
      node = node.children.get(s);
    }
    node.requests.push(r);
  }
  return root;
}

function totals(node) {
  let cost = 0; let latency = 0; let n = 0;
  for (const r of node.requests) { cost += Number(r.cost || 0); latency += r.latency_ms > 0 ? r.latency_ms : 0; n++; }
  for (const c of node.children.values()) { const t = totals(c); cost += t.cost; latency += t.latency; n += t.n; }
  return { cost, latency, n };
}

function nodeView(node, depth) {
  const t = totals(node);
  const items = [];
  if (node.path) {
    items.push(h('li.step', { dataset: { path: node.path } },
      h('span.path', `/${node.name}`),
      h('span.muted', ` ${t.n} request${t.n === 1 ? '' : 's'} · ${fmt.usd(t.cost)} · ${fmt.ms(t.latency)}`)));
  }
  for (const r of node.requests) {
    items.push(h('li.req', { dataset: { id: r.id } },
      h('a', { href: `#/requests/${encodeURIComponent(r.id)}` }, fmt.time(r.created_at)),
      ` ${r.model || r.model_requested || ''} `,
      h(`span.badge.${r.status >= 400 || r.error ? 'bad' : 'good'}`, r.status),
      h('span.num', ` ${fmt.usd(r.cost)} · ${fmt.ms(r.latency_ms)}`)));
  }
  const kids = [...node.children.values()].map((c) => nodeView(c, depth + 1));
  return h('ul.tree', items, kids.map((k) => h('li.branch', k)));
}

export async function renderOne(root, id) {
  const s = await api(`sessions/${encodeURIComponent(id)}`);
  root.append(
    h('div.toolbar', h('h1', `Session ${s.session_name ? `${s.session_name} ` : ''}`), h('code', s.session_id),
      h('a.button', { href: '#/sessions' }, '← All sessions')),
    h('div.tiles',
      h('div.tile', h('span.label', 'Requests'), h('span.value', { dataset: { total: 'requests' } }, fmt.int(s.requests))),
      h('div.tile', h('span.label', 'Cost'), h('span.value', { dataset: { total: 'cost' } }, fmt.usd(s.cost))),
      h('div.tile', h('span.label', 'Latency (sum)'), h('span.value', { dataset: { total: 'latency' } }, fmt.ms(s.latency_ms))),
      h('div.tile', h('span.label', 'Errors'), h('span.value', fmt.int(s.errors))),
      h('div.tile', h('span.label', 'From – to'), h('span.value.small', `${fmt.time(s.first_at)} – ${fmt.time(s.last_at)}`))),
    h('h2', 'Steps'),
    nodeView(tree(s.data), 0));
}
