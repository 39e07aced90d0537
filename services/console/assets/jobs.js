// Jobs: their latest status as the job events report it.
import {
  $, h, fill, clock, badge, txHref, api, state,
} from './lib.js';

const MAX_JOBS = 500;

// ---- jobs ----
export async function loadJobs() {
  renderJobs();
  const body = await api('/api/jobs');
  for (const j of (body && body.jobs) || []) keepJob(j);
  renderJobs();
}
export function keepJob(j) {
  if (!j || typeof j.id !== 'string') return;
  state.jobs.set(j.id, j);
  if (state.jobs.size > MAX_JOBS) {
    const oldest = [...state.jobs.values()].sort((a, b) => (a.updated_unix_ms || 0) - (b.updated_unix_ms || 0));
    for (const o of oldest.slice(0, state.jobs.size - MAX_JOBS)) state.jobs.delete(o.id);
  }
}
export function renderJobs() {
  if (state.route.page !== 'jobs') return;
  const list = [...state.jobs.values()].sort((a, b) => (b.updated_unix_ms || 0) - (a.updated_unix_ms || 0));
  fill($('#jobs tbody'), list.map((j) => h('tr', { 'data-job-id': j.id, 'data-status': j.status },
    h('td', { class: 'num' }, clock(j.updated_unix_ms)), h('td', { class: 'id' }, j.id), h('td', {}, badge(j.status)),
    h('td', { class: 'num' }, j.attempts ?? '–'),
    h('td', { class: 'text ' + (j.error ? 'err' : 'result'), title: j.error || j.result || '' }, j.error || j.result || ''),
    h('td', { class: 'id' }, j.trace_id ? h('a', { href: txHref(j.trace_id) }, j.trace_id.slice(0, 16)) : '–'))));
  $('#jobs-empty').hidden = list.length > 0;
  $('#jobs-count').textContent = `${list.length} jobs`;
}
