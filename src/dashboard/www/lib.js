// lib.js — what every view shares: the API client (with the gateway key
// the page asked for, kept in sessionStorage), element building without
// innerHTML, number formats and the time ranges.

const KEY = 'tollgate.key';

/** An error the API answered: status and its message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let askingForKey = null;

/** Ask for a gateway key once (the dialog in index.html); resolves when one is typed. */
function askKey(message) {
  if (askingForKey) return askingForKey;
  const dlg = document.getElementById('login');
  const input = document.getElementById('login-key');
  document.getElementById('login-error').textContent = message || '';
  askingForKey = new Promise((resolve) => {
    const form = document.getElementById('login-form');
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const k = input.value.trim();
      if (!k) return;
      sessionStorage.setItem(KEY, k);
      dlg.close();
      askingForKey = null;
      resolve();
    };
  });
  if (!dlg.open) dlg.showModal();
  input.focus();
  return askingForKey;
}

/** Call /api/v1 (path below it). A 401 asks for a key and tries again. */
export async function api(path, { method = 'GET', body } = {}) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`/api/v1/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
    if (res.status === 401) {
      const err = await res.json().catch(() => ({}));
      sessionStorage.removeItem(KEY);
      await askKey(key ? (err.error?.message || 'That key was refused.') : '');
      continue;
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) throw new ApiError(res.status, data?.error?.message || text || res.statusText);
    return data;
  }
  throw new ApiError(401, 'no usable key');
}

/** h('tag.class', {attr: v, onclick: fn}, ...children) — children are nodes or text. */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag || 'div');
  if (classes.length) e.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && k !== 'list' && k !== 'form') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US')),
  usd: (n) => {
    if (n === null || n === undefined) return '—';
    const v = Number(n);
    if (v !== 0 && Math.abs(v) < 0.01) return `$${v.toPrecision(3)}`;
    return `$${v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 })}`;
  },
  pct: (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(r < 0.1 && r > 0 ? 2 : 1)}%`),
  ms: (n) => (n === null || n === undefined || n < 0 ? '—' : n >= 10000 ? `${(n / 1000).toFixed(1)} s` : `${n} ms`),
  time: (s) => (s ? new Date(s).toLocaleString('en-GB', { hour12: false }) : '—'),
};

/** Query string of a hash route: '#/requests?model=x' -> URLSearchParams. */
export function hashParams() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
}

/** Set the hash route's query without a new history entry per keystroke. */
export function setHashParams(base, params, replace = false) {
  const qs = params.toString();
  const target = `${base}${qs ? `?${qs}` : ''}`;
  if (replace) history.replaceState(null, '', target);
  else location.hash = target;
}

export const RANGES = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };

/** {from, to} in Unix seconds for range r ('1h'... or 'custom' with from/to ISO strings). */
export function rangeBounds(r, from, to) {
  if (r === 'custom' && from && to) {
    return { from: Math.floor(Date.parse(from) / 1000), to: Math.floor(Date.parse(to) / 1000) };
  }
  const now = Math.floor(Date.now() / 1000) + 1;
  return { from: now - (RANGES[r] || RANGES['24h']), to: now };
}

/** How often a view over range r refreshes: a month's numbers read a
 *  million records, no need to every 5 s. */
export function refreshEvery(r) {
  return { '1h': 5000, '24h': 10000, '7d': 30000, '30d': 60000 }[r] || 10000;
}

/** A bucket that gives a chart a few dozen to a few hundred points. */
export function bucketFor(seconds) {
  if (seconds <= 3 * 3600) return '1m';
  if (seconds <= 2 * 86400) return '5m';
  if (seconds <= 14 * 86400) return '1h';
  return '1d';
}

/** A message in place of a view's content. */
export function notice(text, cls = 'muted') {
  return h(`p.${cls}`, text);
}

/** The range picker shared by the overview and the costs view. */
export function rangePicker(params, onChange) {
  const r = params.get('range') || '24h';
  const from = h('input', { type: 'datetime-local', value: params.get('from') || '', 'aria-label': 'from' });
  const to = h('input', { type: 'datetime-local', value: params.get('to') || '', 'aria-label': 'to' });
  const custom = h('span.custom', { hidden: r !== 'custom' }, from, ' – ', to,
    h('button', { type: 'button', onclick: () => onChange('custom', from.value, to.value) }, 'Apply'));
  const buttons = [...Object.keys(RANGES), 'custom'].map((k) => h('button', {
    type: 'button', className: k === r ? 'on' : '', dataset: { range: k },
    onclick: () => { if (k === 'custom') custom.hidden = false; else onChange(k); },
  }, k));
  return h('div.range', buttons, custom);
}

/** GET /api/v1/<what>, or null after saying in `box` that this gateway
 *  has no such API (404/405: an older gateway, or one without budgets) or
 *  that this key may not see it (403: the keys API needs write). */
export async function apiOrUnavailable(what, box, label) {
  try {
    return await api(what);
  } catch (err) {
    if (err.status === 403) {
      box.replaceChildren(notice(`${label}: not with this key (${err.message}).`, 'unavailable'));
      return null;
    }
    if (err.status !== 404 && err.status !== 405) throw err;
    box.replaceChildren(notice(`${label} are not available on this gateway: it has no /api/v1/${what}.`, 'unavailable'));
    return null;
  }
}
