// Dead letters: counts by reason, the messages with an escaped, size-capped preview, redrive.
import {
  $, h, s, fill, isNum, clock, bytes, api, showError, state,
} from './lib.js';

// ---- dead letters ----
export async function loadDeadLetters() {
  const source = $('#dl-source').value;
  const body = await api(`/api/dead-letters?source=${encodeURIComponent(source)}&limit=200`);
  if (state.route.page !== 'dead-letters') return;
  fill($('#dl-by-reason tbody'), ((body && body.by_reason) || []).map((r) => h('tr', { 'data-source': r.source },
    h('td', {}, r.source), h('td', { class: 'reason' }, r.reason), h('td', { class: 'num' }, r.count),
    h('td', {}, h('button', { type: 'button', class: 'redrive', title: 'Publish every message with this reason back to its origin',
      onclick: (e) => redrive({ source: r.source, reason: r.reason }, e.currentTarget) }, 'Redrive all')))));
  const items = (body && body.items) || [];
  fill($('#dead-letters tbody'), items.map((m) => h('tr', { 'data-dead-letter-id': m.id, 'data-source': m.source },
    h('td', { class: 'mono' }, m.origin || m.source), h('td', { class: 'reason' }, m.reason),
    h('td', { class: 'num', title: isNum(m.age_s) ? `${m.age_s} s ago` : '' }, clock(m.first_failed_unix_ms)),
    h('td', { class: 'num' }, m.attempts ?? '–'), h('td', { class: 'num' }, m.redrives ?? '–'), h('td', { class: 'num' }, bytes(m.size)),
    h('td', {}, h('pre', { class: 'preview' }, String(m.preview ?? '').slice(0, 512))),
    h('td', { class: 'headers' }, Object.entries(m.headers || {}).map(([k, v]) => h('div', {}, `${k}=${v}`))),
    h('td', {}, h('button', { type: 'button', class: 'redrive', title: 'Publish this message back to its origin',
      onclick: (e) => redrive({ source: m.source, ids: [m.id] }, e.currentTarget) }, 'Redrive')))));
  $('#dl-empty').hidden = items.length > 0;
}
async function redrive(body, button) {
  const note = $('#redrive-result');
  button.disabled = true;
  try {
    const r = await api('/api/dead-letters/redrive', { method: 'POST', body: JSON.stringify(body) });
    const details = Array.isArray(r.details) && r.details.length ? ' — ' + JSON.stringify(r.details).slice(0, 600) : '';
    note.textContent = `Redriven ${r.redriven ?? 0}, refused ${r.refused ?? 0}${details}`;
    note.classList.toggle('error', (r.refused || 0) > 0);
  } catch (e) {
    note.textContent = 'Redrive refused: ' + e.message;
    note.classList.add('error');
  } finally {
    note.hidden = false;
    button.disabled = false;
  }
  await loadDeadLetters().catch(showError);
}
