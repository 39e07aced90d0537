// Transactions: the live list with its filters, and one transaction as a waterfall with its
// hop log.
import {
  $, h, fill, ms, clock, svcClass, svcBadge, badge, txHref, api, showError, state,
  keepAtMost, throttled,
} from './lib.js';

const MAX_TX = 1000; // transactions kept in the page; the list shows the newest SHOWN_TX
const SHOWN_TX = 300;

// ---- transactions ----
function filters() {
  return { failed: $('#filter-failed').checked, slower: Number($('#filter-slower').value) || 0, q: $('#filter-q').value.trim() };
}
function matches(t, f) {
  if (f.failed && t.status !== 'error') return false;
  if (f.slower && !(t.duration_ms > f.slower)) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = [t.trace_id, t.name, t.body, t.error].filter(Boolean).join('\n').toLowerCase();
    if (!hay.includes(q) && !state.txMatched.has(t.trace_id)) return false;
  }
  return true;
}
function keepTx(t) {
  if (!t || typeof t.trace_id !== 'string') return false;
  const prev = state.tx.get(t.trace_id);
  state.tx.set(t.trace_id, t);
  keepAtMost(state.tx, MAX_TX);
  return !prev || prev.status !== t.status || prev.span_count !== t.span_count;
}
export async function loadTransactions() {
  renderTransactions();
  const f = filters();
  const qs = new URLSearchParams({ limit: String(SHOWN_TX) });
  if (f.failed) qs.set('failed', '1');
  if (f.slower) qs.set('slower_ms', String(f.slower));
  if (f.q) qs.set('q', f.q);
  const body = await api('/api/transactions?' + qs);
  state.txMatched = new Set();
  // Oldest first, so the newest are the last set and the last forgotten.
  for (const t of ((body && body.transactions) || []).slice().reverse()) {
    keepTx(t);
    state.txMatched.add(t.trace_id);
  }
  renderTransactions();
}
const scheduleTxRender = throttled(() => { renderTransactions(); state.fresh.clear(); }, 200);
export function renderTransactions() {
  if (state.route.page !== 'transactions') return;
  const f = filters();
  const list = [...state.tx.values()].filter((t) => matches(t, f))
    .sort((a, b) => (b.start_unix_ms || 0) - (a.start_unix_ms || 0)).slice(0, SHOWN_TX);
  fill($('#transactions tbody'), list.map((t) => h('tr', {
    'data-trace-id': t.trace_id, 'data-status': t.status, class: state.fresh.has(t.trace_id) ? 'fresh' : null,
    onclick: () => { location.hash = txHref(t.trace_id); },
  },
  h('td', { class: 'num' }, clock(t.start_unix_ms)),
  h('td', { class: 'id' }, h('a', { href: txHref(t.trace_id) }, t.trace_id.slice(0, 16))),
  h('td', {}, t.name || ''), h('td', {}, (t.services || []).map(svcBadge)),
  h('td', { class: 'num' }, t.span_count ?? '–'), h('td', { class: 'num' }, ms(t.duration_ms)),
  h('td', {}, badge(t.status)),
  h('td', { class: 'text ' + (t.error ? 'err' : 'body'), title: t.error || t.body || '' }, t.error || t.body || ''))));
  $('#tx-empty').hidden = list.length > 0;
  $('#tx-count').textContent = `${list.length} shown of ${state.tx.size} received`;
}
export function onTxEvent(t) {
  if (!keepTx(t)) return;
  state.fresh.add(t.trace_id);
  if (state.route.page === 'transactions') scheduleTxRender();
  if (state.route.page === 'transaction' && state.route.id === t.trace_id) scheduleDetailReload();
}

// ---- one transaction: waterfall and hop log ----
let detailTimer = 0;
function scheduleDetailReload() {
  if (!detailTimer) detailTimer = setTimeout(() => { detailTimer = 0; loadDetail(state.route.id).catch(showError); }, 250);
}
export async function loadDetail(id) {
  if (!state.detail || state.detail.trace_id !== id) clearDetail(id);
  try {
    state.detail = await api('/api/transactions/' + encodeURIComponent(id));
  } catch (e) {
    if (e.status !== 404) throw e;
    $('#tx-error').hidden = false;
    $('#tx-error').textContent = 'No spans of this trace have arrived (or it was evicted): it shows when they do.';
    return;
  }
  if (state.route.page === 'transaction' && state.route.id === id) renderDetail(state.detail);
}
function clearDetail(id) {
  state.detail = null;
  state.selected = null;
  $('#tx-title').textContent = 'Transaction ' + id.slice(0, 16);
  for (const sel of ['#tx-meta', '#waterfall', '.hop-log', '#tx-end', '#span-detail']) fill($(sel));
  $('#tx-status').textContent = '';
  $('#tx-status').removeAttribute('data-status');
  $('#span-detail').hidden = $('#tx-end').hidden = $('#tx-error').hidden = true;
}
const hopOf = (sp) => (sp.attributes && sp.attributes['switchboard.hop']) || sp.name || '';
function renderDetail(d) {
  const spans = d.spans || [];
  // The root: no parent, or a parent outside the trace's spans (a caller's traceparent).
  const ids = new Set(spans.map((sp) => sp.span_id));
  const root = spans.find((sp) => !sp.parent_span_id || !ids.has(sp.parent_span_id)) || spans[0];
  $('#tx-title').textContent = `${(root && root.name) || 'Transaction'} · ${d.trace_id.slice(0, 16)}`;
  const st = $('#tx-status');
  st.textContent = d.status;
  st.setAttribute('data-status', d.status);
  const startMs = Number(BigInt(d.start_unix_nanos || '0') / 1000000n);
  fill($('#tx-meta'), [['Trace', d.trace_id], ['Start', clock(startMs)], ['Duration', ms(d.duration_ms)], ['Spans', spans.length],
    ['Services', [...new Set(spans.map((sp) => sp.service))].join(', ')],
    ['Message', (root && root.attributes && root.attributes['switchboard.message_id']) || '–']]
    .map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { class: k === 'Trace' || k === 'Message' ? 'mono' : null }, v))));
  renderFailure(d, spans);
  renderWaterfall(d, spans);
  renderHopLog(d, root);
  if (state.selected) {
    const again = spans.find((sp) => sp.span_id === state.selected);
    if (again) showSpan(again);
  }
}
function renderFailure(d, spans) {
  const el = $('#tx-error');
  const bad = spans.find((sp) => sp.status === 'error');
  if (!d.error && !bad && d.status !== 'error') { el.hidden = true; fill(el); return; }
  const parts = [];
  if (bad) {
    const a = bad.attributes || {};
    parts.push(`failed at ${hopOf(bad)} on ${bad.service}`);
    if (bad.status_message) parts.push(bad.status_message);
    if (a['error.type']) parts.push(`error.type=${a['error.type']}`);
    if (a['switchboard.dead_letter.reason']) parts.push(`dead-letter reason: ${a['switchboard.dead_letter.reason']}`);
  }
  fill(el, h('strong', {}, d.error || 'Failed'), parts.length ? h('div', { class: 'why' }, parts.join(' · ')) : null);
  el.hidden = false;
}
function renderWaterfall(d, spans) {
  const total = Math.max(d.duration_ms || 0, ...spans.map((sp) => (sp.offset_ms || 0) + (sp.duration_ms || 0)), 0.001);
  const ids = new Map(spans.map((sp) => [sp.span_id, sp]));
  const depth = (sp) => {
    let n = 0;
    for (let p = ids.get(sp.parent_span_id); p && n < 12; p = ids.get(p.parent_span_id)) n++;
    return n;
  };
  const pct = (v) => Math.max(0, Math.min(100, (v / total) * 100)).toFixed(3) + '%';
  const axis = h('div', { class: 'wf-axis' }, h('div', {}, ''),
    h('div', { class: 'ticks' }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const t = h('span', { class: 'tick' }, ms(total * f));
      t.style.left = (f * 100) + '%';
      return t;
    })), h('div', {}, ''));
  const rows = spans.map((sp) => {
    const bar = h('div', { class: 'bar' });
    bar.style.left = pct(sp.offset_ms || 0);
    bar.style.width = pct(sp.duration_ms || 0);
    const log = sp.attributes && sp.attributes['switchboard.log'];
    const row = h('div', {
      class: 'span-row ' + svcClass(sp.service), 'data-service': sp.service, 'data-span-id': sp.span_id,
      'data-status': sp.status, 'data-hop': hopOf(sp), title: log || hopOf(sp), onclick: () => showSpan(sp),
    },
    h('div', { class: 'label' }, svcBadge(sp.service), ' ', h('span', { class: 'hop' }, hopOf(sp)), ' ',
      h('span', { class: 'muted' }, sp.kind || '')),
    h('div', { class: 'track' }, bar), h('div', { class: 'dur' }, ms(sp.duration_ms)));
    row.style.setProperty('--depth', String(depth(sp)));
    if (state.selected === sp.span_id) row.classList.add('selected');
    return row;
  });
  fill($('#waterfall'), axis, rows);
}
function showSpan(sp) {
  state.selected = sp.span_id;
  for (const r of document.querySelectorAll('#waterfall .span-row')) r.classList.toggle('selected', r.dataset.spanId === sp.span_id);
  const rows = [['service', sp.service], ['instance', sp.instance], ['kind', sp.kind], ['span id', sp.span_id],
    ['parent', sp.parent_span_id || '–'], ['offset', ms(sp.offset_ms)], ['duration', ms(sp.duration_ms)],
    ['status', sp.status + (sp.status_message ? ': ' + sp.status_message : '')]];
  for (const [k, v] of Object.entries(sp.attributes || {}).sort()) rows.push([k, v]);
  for (const ev of sp.events || []) rows.push([`event +${ms(ev.offset_ms)}`, [ev.name, ...Object.entries(ev.attributes || {}).map(([k, v]) => `${k}=${v}`)].join(' ')]);
  const el = $('#span-detail');
  fill(el, h('h3', {}, `${hopOf(sp)} · ${sp.service}`), h('table', {}, h('tbody', {},
    rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v ?? '–'))))));
  el.hidden = false;
}
function renderHopLog(d, root) {
  const log = d.log || [];
  fill($('.hop-log'), log.map((l) => h('li', { 'data-service': l.service },
    h('span', { class: 'off' }, '+' + ms(l.offset_ms)), h('span', {}, svcBadge(l.service)), h('span', { class: 'line' }, l.line))));
  // A request that got its reply ends, in the gateway's log, with the reply upper-cased
  // between two rules: the same block here, from the last hop's body.
  const end = $('#tx-end');
  const attrs = (root && root.attributes) || {};
  const isMessage = root && root.service === 'gateway' && /\/messages$/.test(attrs['http.route'] || attrs['url.path'] || root.name || '');
  const last = [...log].reverse().find((l) => l.service === 'gateway' && /^(REST response|KAFKA Consumer): /.test(l.line || ''));
  if (d.status !== 'ok' || !isMessage || !last) { end.hidden = true; fill(end); return; }
  const body = last.line.slice(last.line.indexOf(': ') + 2).replace(/ id=\S+$/, '');
  const rule = '#'.repeat(92);
  const id = attrs['switchboard.message_id'] || '';
  fill(end, [rule, `End of transaction with Message: id=${id}`, body.toUpperCase(), rule].map((text, i) =>
    h('div', {}, h('span', {}, ''), h('span', {}, svcBadge('gateway')), h('span', { class: i === 2 ? 'line msg' : 'line' }, text))));
  end.hidden = false;
}
