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
      const body = { action: f.action.value, warning_threshold: 0.8 };
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
      await api(`budgets/${encodeURIComponent(b.scope)}/${encodeURIComponent(b.value || 'global')}`, { method: 'DELETE' });
      say('Removed.', 'good');
      await refresh();
    } catch (err) { say(err.message, 'error'); }
  }

  let shownForm = false;
  async function refresh() {
    const res = await apiOrUnavailable('budgets', list, 'Budgets');
    if (!res) return;
    if (!shownForm) { root.append(form, msg); shownForm = true; }
    const items = res.data || [];
    list.replaceChildren(...items.map((b) => {
      const periods = ['daily', 'monthly'].filter((p) => b[p] && b[p].limit !== null && b[p].limit !== undefined);
      const worst = periods.map((p) => b[p].state).find((st) => st === 'exceeded')
        || periods.map((p) => b[p].state).find((st) => st === 'warning') || 'ok';
      return h('div.budget', { dataset: { scope: b.scope, value: b.value ?? '' } },
        h('div.head', h('strong', `${b.scope}${b.value && b.scope !== 'global' ? ` = ${b.value}` : ''}`),
          h(`span.badge.${worst === 'ok' ? 'good' : worst === 'warning' ? 'warn' : 'bad'}`, worst),
          h('span.muted', ` ${b.action || ''} · ${b.source || ''}`)),
        periods.map((p) => {
          const d = b[p];
          const pct = d.percent ?? (d.limit ? (Number(d.spend) / Number(d.limit)) * 100 : 0);
          const fill = h(`div.fill.${d.state || 'ok'}`);
          fill.style.width = `${Math.min(100, pct)}%`;
          return h('div.period', { dataset: { period: p } },
            h('div.bar', fill),
            h('div.muted', `${p}: ${fmt.usd(d.spend)} of ${fmt.usd(d.limit)} (${Number(pct).toFixed(1)}%)`,
              d.reserved ? ` · reserved ${fmt.usd(d.reserved)}` : '',
              d.resets_at ? ` · resets ${fmt.time(d.resets_at)}` : ''));
        }),
        periods.length ? '' : h('div.muted', 'no limit: spend only'),
        b.source === 'config' ? '' : h('button.danger', { type: 'button', onclick: () => remove(b) }, 'Remove'));
    }));
    if (!items.length) list.append(notice('No budgets.'));
  }
  await refresh();
  return { refresh };
}
