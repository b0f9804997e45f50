// providers.js — #/providers: each configured provider's health as the
// load balancer sees it (ejected, resting) and its last hour from the
// records (requests, error rate, latency): GET /api/v1/providers.

import { api, h, fmt } from '../lib.js';

export async function render(root) {
  const body = h('tbody');
  root.append(h('div.toolbar', h('h1', 'Providers')),
    h('table.providers', h('thead', h('tr', ['provider', 'type', 'health', 'requests (1 h)', 'error rate',
      'latency p50', 'p95', 'estimate'].map((c, i) => h(i > 2 ? 'th.num' : 'th', c)))), body));
  async function refresh() {
    const res = await api('providers');
    body.replaceChildren(...res.data.map((p) => {
      const l = p.last_hour || {};
      const health = p.ejected ? h('span.badge.bad', 'ejected') : !p.usable ? h('span.badge.warn', 'resting')
        : h('span.badge.good', 'healthy');
      return h('tr', { dataset: { provider: p.name } }, h('td', p.name), h('td', p.type), h('td', health),
        h('td.num', fmt.int(l.requests)), h('td.num', fmt.pct(l.error_rate)),
        h('td.num', fmt.ms(l.latency_p50)), h('td.num', fmt.ms(l.latency_p95)),
        h('td.num', fmt.ms(p.latency_estimate_ms)));
    }));
  }
  await refresh();
  return { refresh };
}
