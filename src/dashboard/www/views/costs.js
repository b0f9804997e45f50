// costs.js — #/costs?group_by=model|provider|user|day|property:<Name>&range:
// cost per group (GET /api/v1/costs) and each group's cost over time
// (GET /api/v1/stats/series with the same group_by).

import { api, h, fmt, hashParams, setHashParams, rangeBounds, bucketFor, rangePicker, refreshEvery } from '../lib.js';
import { lineChart } from '../chart.js';

const GROUPS = ['model', 'provider', 'user', 'day'];

export async function render(root) {
  const params = hashParams();
  const groupBy = params.get('group_by') || 'model';
  const range = params.get('range') || '7d';
  const nav = (p) => setHashParams('#/costs', p);
  const propInput = h('input', { placeholder: 'property name', size: 14,
    value: groupBy.startsWith('property:') ? groupBy.slice(9) : '' });
  const pick = h('div.range', GROUPS.map((g) => h('button', {
    type: 'button', className: g === groupBy ? 'on' : '', dataset: { group: g },
    onclick: () => { const p = hashParams(); p.set('group_by', g); nav(p); },
  }, g)), h('form.inline', {
    onsubmit: (ev) => {
      ev.preventDefault();
      if (!propInput.value.trim()) return;
      const p = hashParams(); p.set('group_by', `property:${propInput.value.trim()}`); nav(p);
    },
  }, propInput, h('button', { type: 'submit', className: groupBy.startsWith('property:') ? 'on' : '' }, 'by property')));
  const ranges = rangePicker(params, (r, from, to) => {
    const p = hashParams(); p.set('range', r);
    if (r === 'custom') { p.set('from', from || ''); p.set('to', to || ''); }
    nav(p);
  });
  const charts = h('div.charts.wide');
  const body = h('tbody');
  const sumCell = h('span.muted');
  root.append(h('div.toolbar', h('h1', 'Costs'), ranges), h('div.toolbar', pick, sumCell), charts,
    h('table.costs', h('thead', h('tr', ['', groupBy, 'requests', 'prompt tokens', 'completion tokens', 'saved by the cache', 'cost']
      .map((c, i) => h(i > 1 ? 'th.num' : 'th', c)))), body));
  const chart = lineChart(charts, `Cost over time by ${groupBy}`, (v) => fmt.usd(v));

  async function refresh() {
    const { from, to } = rangeBounds(range, params.get('from'), params.get('to'));
    const q = `from=${from}&to=${to}`;
    const seriesGroup = groupBy === 'day' ? '' : `&group_by=${encodeURIComponent(groupBy)}`;
    const [costs, series] = await Promise.all([
      api(`costs?${q}&group_by=${encodeURIComponent(groupBy)}`),
      api(`stats/series?${q}&bucket=${groupBy === 'day' ? '1d' : bucketFor(to - from)}${seriesGroup}`),
    ]);
    const total = costs.data.reduce((s, r) => s + Number(r.total_cost || 0), 0);
    sumCell.textContent = `total ${fmt.usd(total)} over ${costs.data.length} group${costs.data.length === 1 ? '' : 's'}`;
    const labels = new Map(series.series.map((s, i) => [s.group, i]));
    body.replaceChildren(...costs.data.map((r) => h('tr', { dataset: { group: r.group ?? '' } },
      h('td', labels.has(r.group) ? h('span.swatch', { title: 'colour in the chart', dataset: { color: labels.get(r.group) % 12 } }) : ''),
      h('td', r.group === null ? h('span.muted', '(none)') : r.group),
      h('td.num', fmt.int(r.requests)), h('td.num', fmt.int(r.prompt_tokens)),
      h('td.num', fmt.int(r.completion_tokens)), h('td.num', fmt.usd(r.cache_saved)),
      h('td.num', fmt.usd(r.total_cost)))));
    if (!costs.data.length) body.append(h('tr', h('td.muted', { colSpan: 7 }, 'No requests in this range.')));
    chart.update(series.t, series.series.map((s) => ({ label: s.group ?? (groupBy === 'day' ? 'cost' : '(none)'), values: s.cost })));
  }
  await refresh();
  return {
    refresh: range === 'custom' ? null : refresh,
    every: refreshEvery(range),
    destroy: () => chart.destroy(),
  };
}
