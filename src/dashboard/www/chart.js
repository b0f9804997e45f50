// chart.js — line charts over time with uPlot (vendor/uplot, MIT). A chart
// keeps its uPlot instance and takes new data with setData, so a live
// refresh redraws without flicker; a change in the set of lines rebuilds it.

import uPlot from './vendor/uplot/uPlot.esm.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777',
  '#65a30d', '#9333ea', '#ea580c', '#0d9488', '#4b5563'];

export function color(i) {
  return COLORS[i % COLORS.length];
}

/**
 * A chart in `box` (an element). update(t, lines) with t: Unix seconds and
 * lines: [{label, values}] (values may hold nulls). `fmtY` formats the axis.
 */
export function lineChart(box, title, fmtY = (v) => v) {
  let plot = null;
  let labels = '';
  const wrap = document.createElement('div');
  wrap.className = 'chart';
  const heading = document.createElement('h3');
  heading.textContent = title;
  const holder = document.createElement('div');
  wrap.append(heading, holder);
  box.append(wrap);
  const size = () => ({ width: Math.max(280, holder.clientWidth || box.clientWidth || 600), height: 180 });
  const ro = new ResizeObserver(() => { if (plot) plot.setSize(size()); });
  ro.observe(holder);
  return {
    update(t, lines) {
      const key = lines.map((l) => l.label).join('\u0000');
      const data = [t, ...lines.map((l) => l.values)];
      if (plot && key === labels) {
        plot.setData(data);
        return;
      }
      if (plot) plot.destroy();
      labels = key;
      plot = new uPlot({
        ...size(),
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: { x: { time: true } },
        axes: [{}, { values: (u, vals) => vals.map(fmtY), size: 70 }],
        series: [{}, ...lines.map((l, i) => ({
          label: l.label, stroke: color(i), width: 1.5, spanGaps: false,
          value: (u, v) => (v === null || v === undefined ? '—' : fmtY(v)),
        }))],
      }, data, holder);
    },
    destroy() {
      ro.disconnect();
      if (plot) plot.destroy();
    },
  };
}
