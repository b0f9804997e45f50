// budgets.js — #/budgets: every budget with its spend bar and state (GET
// /api/v1/budgets, SPEC §11); a write key sets (PUT
// /api/v1/budgets/{scope}/{value}) and removes (DELETE) runtime budgets.
// A gateway without the budgets API (404/405) is said so.

import { api, h, fmt, notice, apiOrUnavailable } from '../lib.js';

function unavailable(err) {
  return err.status === 404 || err.status === 405;
}

export async function render(root) {
  const list = h('div.budgets');
  const msg = h('p.msg', { role: 'status' });
  const f = {
    scope: h('select', { name: 'scope' }, ['global', 'key', 'user', 'property'].map((s) => h('option', { value: s }, s))),
    prop: h('input', { name: 'property', placeholder: 'property name', size: 12 }),
    value: h('input', { name: 'value', placeholder: 'value', size: 12 }),
    daily: h('input', { name: 'daily', type: 'number', step: 'any', min: 0, size: 7 }),
    monthly: h('input', { name: 'monthly', type: 'number', step: 'any', min: 0, size: 7 }),
    action: h('select', { name: 'action' }, ['block', 'warn', 'none'].map((s) => h('option', { value: s }, s))),
  };
  const path = () => {
    const s = f.scope.value === 'property' ? `property:${f.prop.value.trim()}` : f.scope.value;
    return f.scope.value === 'global' ? 'budgets/global/global'
      : `budgets/${encodeURIComponent(s)}/${encodeURIComponent(f.value.value.trim())}`;
  };
  const say = (text, cls) => { msg.textContent = text; msg.className = `msg ${cls}`; };
  const form = h('form.filters', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { action: f.action.value };
      if (f.daily.value) body.daily = Number(f.daily.value);
      if (f.monthly.value) body.monthly = Number(f.monthly.value);
      try {
        await api(path(), { method: 'PUT', body });
        say('Saved.', 'good');
        await refresh();
      } catch (err) {
        say(unavailable(err) ? 'Budgets are not available on this gateway.' : err.message, 'error');
      }
    },
  }, h('label', 'scope', f.scope, f.prop), h('label', 'value', f.value), h('label', 'daily USD', f.daily),
  h('label', 'monthly USD', f.monthly), h('label', 'action', f.action), h('button', { type: 'submit' }, 'Set budget'));
  root.append(h('div.toolbar', h('h1', 'Budgets')), list);

  async function remove(b) {
    try {
      await api(`budgets/${encodeURIComponent(b.scope)}/${encodeURIComponent(b.value ?? b.id ?? 'global')}`, { method: 'DELETE' });
      say('Removed.', 'good');
      await refresh();
    } catch (err) { say(err.message, 'error'); }
  }

  let shownForm = false;
  async function refresh() {
    const res = await apiOrUnavailable('budgets', list, 'Budgets');
    if (!res) return;
    if (!shownForm) { root.append(form, msg); shownForm = true; }
    const items = res.data || res.budgets || [];
    list.replaceChildren(...items.map((b) => {
      const pct = b.percent ?? (b.limit ? (Number(b.spend) / Number(b.limit)) * 100 : 0);
      const state = b.state || (pct >= 100 ? 'exceeded' : 'ok');
      const bar = h('div.bar', h(`div.fill.${state}`, { dataset: { pct: Math.min(100, Math.round(pct)) } }));
      bar.firstChild.style.width = `${Math.min(100, pct)}%`;
      return h('div.budget', { dataset: { scope: b.scope, value: b.value ?? '' } },
        h('div.head', h('strong', `${b.scope}${b.value && b.scope !== 'global' ? ` = ${b.value}` : ''}`),
          h('span.muted', ` ${b.period || ''}`), h(`span.badge.${state === 'ok' ? 'good' : state === 'warning' ? 'warn' : 'bad'}`, state)),
        bar,
        h('div.muted', `${fmt.usd(b.spend)} of ${fmt.usd(b.limit)} (${pct.toFixed(1)}%)`,
          b.reserved !== undefined ? ` · reserved ${fmt.usd(b.reserved)}` : '',
          b.resets_at ? ` · resets ${fmt.time(b.resets_at)}` : ''),
        b.source === 'config' ? '' : h('button.danger', { type: 'button', onclick: () => remove(b) }, 'Remove'));
    }));
    if (!items.length) list.append(notice('No budgets.'));
  }
  await refresh();
  return { refresh };
}
