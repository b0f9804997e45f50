// overview.js — #/?range=1h|24h|7d|30d|custom&from&to&prop=Agent-Name: the
// numbers of a time range (stats), charts over time (stats/series) and the
// top models, providers, users and property values by cost (costs).

import { api, h, fmt, hashParams, setHashParams, rangeBounds, bucketFor, rangePicker, refreshEvery } from '../lib.js';
import { lineChart } from '../chart.js';

const TILES = [
  ['requests', 'Requests'], ['errors', 'Errors'], ['error_rate', 'Error rate'],
  ['tokens', 'Tokens'], ['cost', 'Cost'], ['cache_hit_rate', 'Cache hit rate'],
  ['cache_saved', 'Saved by the cache'], ['latency', 'Latency p50 / p95 / p99'], ['ttft', 'Time to first token p50'],
];


export async function render(root) {
  const params = hashParams();
  const range = params.get('range') || '24h';
  const prop = params.get('prop') || 'Agent-Name';
  const go = (r, from, to) => {
    const p = new URLSearchParams({ range: r });
    if (r === 'custom') { p.set('from', from || ''); p.set('to', to || ''); }
    if (prop !== 'Agent-Name') p.set('prop', prop);
    setHashParams('#/', p);
  };
  const tiles = {};
  const tileRow = h('div.tiles', TILES.map(([k, label]) => h('div.tile', { dataset: { tile: k } },
    h('span.label', label), tiles[k] = h('span.value', '…'))));
  const charts = h('div.charts');
  const tops = h('div.tops');
  const propInput = h('input', { value: prop, 'aria-label': 'property', size: 14 });
  const propForm = h('form.inline', {
    onsubmit: (ev) => {
      ev.preventDefault();
      const p = hashParams();
      p.set('prop', propInput.value.trim() || 'Agent-Name');
      setHashParams('#/', p);
    },
  }, 'by property ', propInput, h('button', { type: 'submit' }, 'Show'));
  root.append(h('div.toolbar', h('h1', 'Overview'), rangePicker(params, go)), tileRow, charts,
    h('div.toolbar', h('h2', 'Top by cost'), propForm), tops);

  const cReq = lineChart(charts, 'Requests and errors', (v) => fmt.int(v));
  const cCost = lineChart(charts, 'Cost (USD)', (v) => fmt.usd(v));
  const cLat = lineChart(charts, 'Latency (ms)', (v) => fmt.int(v));
  const cTok = lineChart(charts, 'Tokens', (v) => fmt.int(v));

  const groupTables = [['model', 'Models'], ['provider', 'Providers'], ['user', 'Users'],
    [`property:${prop}`, prop]];
  const tableBoxes = groupTables.map(([g, title]) => {
    const body = h('tbody');
    tops.append(h('div.top', { dataset: { group: g } }, h('h3', title),
      h('table', h('thead', h('tr', h('th', 'name'), h('th.num', 'requests'), h('th.num', 'cost'))), body)));
    return [g, body];
  });

  async function refresh() {
    const { from, to } = rangeBounds(range, params.get('from'), params.get('to'));
    const q = `from=${from}&to=${to}`;
    const [st, se, ...groups] = await Promise.all([
      api(`stats?${q}`),
      api(`stats/series?${q}&bucket=${bucketFor(to - from)}`),
      ...tableBoxes.map(([g]) => api(`costs?${q}&group_by=${encodeURIComponent(g)}`)),
    ]);
    const tokens = (st.prompt_tokens || 0) + (st.completion_tokens || 0);
    const vals = {
      requests: fmt.int(st.requests),
      errors: fmt.int(st.errors),
      error_rate: st.requests ? fmt.pct(st.errors / st.requests) : '—',
      tokens: fmt.int(tokens),
      cost: fmt.usd(st.total_cost),
      cache_hit_rate: fmt.pct(st.cache_hit_rate),
      cache_saved: st.cache_saved === undefined ? '—' : fmt.usd(st.cache_saved),
      latency: `${fmt.ms(st.latency_ms.p50)} / ${fmt.ms(st.latency_ms.p95)} / ${fmt.ms(st.latency_ms.p99)}`,
      ttft: fmt.ms(st.ttft_ms.p50),
    };
    for (const [k, v] of Object.entries(vals)) tiles[k].textContent = v;
    const s = se.series[0] || {};
    const n = se.t.length;
    const col = (name) => s[name] || new Array(n).fill(0);
    cReq.update(se.t, [{ label: 'requests', values: col('requests') }, { label: 'errors', values: col('errors') }]);
    cCost.update(se.t, [{ label: 'cost', values: col('cost') }]);
    cLat.update(se.t, [
      { label: 'p50', values: col('latency_p50') }, { label: 'p95', values: col('latency_p95') },
      { label: 'p99', values: col('latency_p99') }, { label: 'ttft p50', values: col('ttft_p50') }]);
    cTok.update(se.t, [{ label: 'prompt', values: col('prompt_tokens') }, { label: 'completion', values: col('completion_tokens') }]);
    groups.forEach((res, i) => {
      const body = tableBoxes[i][1];
      const rows = res.data.slice(0, 8).map((r) => h('tr',
        h('td', r.group === null ? h('span.muted', '(none)') : r.group),
        h('td.num', fmt.int(r.requests)), h('td.num', fmt.usd(r.total_cost))));
      body.replaceChildren(...(rows.length ? rows : [h('tr', h('td.muted', { colSpan: 3 }, 'no requests'))]));
    });
  }
  await refresh();
  return {
    refresh: range === 'custom' ? null : refresh,
    every: refreshEvery(range),
    destroy() { [cReq, cCost, cLat, cTok].forEach((c) => c.destroy()); },
  };
}
