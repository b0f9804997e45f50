// keys.js — #/keys: gateway keys (GET /api/v1/keys, SPEC §11) with their
// spend; a write key creates one (POST, the key is shown once) or revokes
// one (DELETE /api/v1/keys/{name}). A gateway without the keys API
// (404/405) is said so.

import { api, h, fmt, apiOrUnavailable } from '../lib.js';

export async function render(root) {
  const list = h('tbody');
  const msg = h('p.msg', { role: 'status' });
  const shown = h('div.secret');
  const name = h('input', { name: 'name', required: true, size: 14 });
  const perm = h('select', { name: 'permissions' }, ['read', 'write', 'read,write'].map((p) => h('option', { value: p }, p)));
  const say = (text, cls) => { msg.textContent = text; msg.className = `msg ${cls}`; };
  const form = h('form.filters', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const k = await api('keys', { method: 'POST', body: { name: name.value.trim(), permissions: perm.value.split(',') } });
        shown.replaceChildren(h('p', 'The new key, shown this once:'), h('code.key', k.key || k.secret || ''));
        say('Created.', 'good');
        await refresh();
      } catch (err) { say(err.message, 'error'); }
    },
  }, h('label', 'name', name), h('label', 'permissions', perm), h('button', { type: 'submit' }, 'Create key'));
  const table = h('table.keys', h('thead', h('tr', ['name', 'permissions', 'models', 'spend', 'expires', '']
    .map((c) => h('th', c)))), list);
  const box = h('div');
  root.append(h('div.toolbar', h('h1', 'Keys')), box);
  let ready = false;
  async function refresh() {
    const res = await apiOrUnavailable('keys', box, 'Keys');
    if (!res) return;
    if (!ready) { box.replaceChildren(form, msg, shown, table); ready = true; }
    const items = res.data || [];
    list.replaceChildren(...items.map((k) => h('tr', { dataset: { key: k.name } },
      h('td', k.name), h('td', [].concat(k.permissions || []).join(', ')),
      h('td', [].concat(k.models || []).join(', ') || 'any'),
      h('td.num', `${fmt.usd(k.spend?.daily ?? k.spend?.day ?? null)} today · ${fmt.usd(k.spend?.monthly ?? k.spend?.month ?? null)} this month`),
      h('td', k.expires_at ? fmt.time(typeof k.expires_at === 'number' ? k.expires_at * 1000 : k.expires_at) : 'never'),
      h('td', k.source === 'config' ? h('span.muted', 'config') : h('button.danger', {
        type: 'button',
        onclick: async () => {
          try { await api(`keys/${encodeURIComponent(k.name)}`, { method: 'DELETE' }); say('Revoked.', 'good'); await refresh(); } catch (err) { say(err.message, 'error'); }
        },
      }, 'Revoke')))));
    if (!items.length) list.append(h('tr', h('td.muted', { colSpan: 6 }, 'No keys.')));
  }
  await refresh();
  return { refresh };
}
