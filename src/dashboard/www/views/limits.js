// limits.js — #/limits: the runtime rate limits (GET /api/v1/rate-limits);
// a write key creates (POST) and deletes (DELETE .../{id}) them.

import { api, h, fmt } from '../lib.js';

export async function render(root) {
  const body = h('tbody');
  const msg = h('p.msg', { role: 'status' });
  const f = {
    property: h('input', { name: 'property', value: 'Agent-Name', required: true, size: 14 }),
    value: h('input', { name: 'value', required: true, size: 12 }),
    limit: h('input', { name: 'limit', type: 'number', min: 1, required: true, size: 6 }),
    window: h('input', { name: 'window', value: '1m', required: true, size: 5 }),
  };
  async function refresh() {
    const res = await api('rate-limits');
    body.replaceChildren(...res.data.map((r) => h('tr', { dataset: { id: r.id } },
      h('td', r.property), h('td', r.value), h('td.num', fmt.int(r.limit)), h('td', `${r.window_seconds} s`),
      h('td', r.unit), h('td', h('code', r.policy)),
      h('td', h('button.danger', { type: 'button', onclick: () => remove(r.id) }, 'Delete')))));
    if (!res.data.length) body.append(h('tr', h('td.muted', { colSpan: 7 }, 'No runtime rate limits.')));
  }
  async function remove(id) {
    try {
      await api(`rate-limits/${encodeURIComponent(id)}`, { method: 'DELETE' });
      msg.textContent = 'Deleted.';
      msg.className = 'msg good';
      await refresh();
    } catch (err) {
      msg.textContent = err.status === 403 ? `Not allowed: ${err.message}` : err.message;
      msg.className = 'msg error';
    }
  }
  const form = h('form.filters', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await api('rate-limits', { method: 'POST', body: {
          property: f.property.value.trim(), value: f.value.value.trim(),
          limit: Number(f.limit.value), window: f.window.value.trim() } });
        msg.textContent = `Created ${r.policy} for ${r.property}=${r.value}.`;
        msg.className = 'msg good';
        await refresh();
      } catch (err) {
        msg.textContent = err.status === 403 ? `Not allowed: ${err.message}` : err.message;
        msg.className = 'msg error';
      }
    },
  }, h('label', 'property', f.property), h('label', 'value', f.value), h('label', 'requests', f.limit),
  h('label', 'per window', f.window), h('button', { type: 'submit' }, 'Create'));
  root.append(h('div.toolbar', h('h1', 'Rate limits')),
    h('p.muted', 'Limits set here apply at once on every worker and outlive restarts. Changing them needs a key with write.'),
    form, msg,
    h('table.limits', h('thead', h('tr', ['property', 'value', 'limit', 'window', 'unit', 'policy', '']
      .map((c) => h('th', c)))), body));
  await refresh();
  return { refresh };
}
