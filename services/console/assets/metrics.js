// Metrics: throughput, p50/p99 and errors per service over the last minutes (uPlot).
import {
  $, h, s, isNum, ms, svcBadge, api, showError, state,
} from './lib.js';

// ---- metrics ----
const SERIES = [
  { key: 'rps', title: 'Throughput (req/s)', series: [['req/s', 'rps', '#2f6fde']] },
  { key: 'lat', title: 'Latency (ms)', series: [['p50', 'p50_ms', '#1a7f37'], ['p99', 'p99_ms', '#bf8700']] },
  { key: 'err', title: 'Errors (%)', series: [['error %', 'error_pct', '#cf222e']] },
];
export async function loadMetrics() {
  const body = await api('/api/metrics?minutes=' + encodeURIComponent($('#metrics-minutes').value));
  if (state.route.page !== 'metrics') return;
  const services = (body && body.services) || [];
  $('#metrics-empty').hidden = services.length > 0;
  const box = $('#metrics-charts');
  if (typeof uPlot !== 'function') { showError(new Error('the chart library did not load')); return; }
  for (const [name, c] of state.charts) {
    if (!services.some((x) => x.name === name)) { c.plots.forEach((p) => p.destroy()); c.card.remove(); state.charts.delete(name); }
  }
  for (const svc of services) {
    const pts = (svc.points || []).slice().sort((a, b) => a.t_unix_ms - b.t_unix_ms);
    const t = pts.map((p) => p.t_unix_ms / 1000);
    let c = state.charts.get(svc.name);
    if (!c) {
      const card = h('div', { class: 'chart', 'data-service': svc.name }, h('h3', {}, svcBadge(svc.name), ' ', svc.name));
      box.append(card);
      const width = Math.max(300, card.clientWidth - 20);
      const plots = SERIES.map((def) => {
        const holder = h('div', { class: 'plot' }, h('div', { class: 'plot-title' }, def.title));
        card.append(holder);
        return new uPlot({
          width, height: 120, legend: { show: true }, cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] } },
          axes: [{ size: 28 }, { size: 50 }],
          series: [{}, ...def.series.map(([label, , color]) => ({ label, stroke: color, width: 1.5, points: { show: false } }))],
        }, [t, ...def.series.map(() => [])], holder);
      });
      c = { card, plots };
      state.charts.set(svc.name, c);
    }
    SERIES.forEach((def, k) => c.plots[k].setData([t, ...def.series.map(([, field]) => pts.map((p) => (isNum(p[field]) ? p[field] : null)))]));
  }
}
export function resizeCharts() {
  for (const c of state.charts.values()) {
    const width = Math.max(300, c.card.clientWidth - 20);
    for (const p of c.plots) p.setSize({ width, height: 120 });
  }
}
