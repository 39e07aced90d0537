// Jobs: their latest status as the job events report it.
import {
  $, h, fill, clock, badge, txHref, api, state,
  keepAtMost, throttled,
} from './lib.js';

const MAX_JOBS = 500;

// ---- jobs ----
export async function loadJobs() {
  renderJobs();
  const body = await api('/api/jobs');
  const jobs = ((body && body.jobs) || []).slice().sort((a, b) => (a.updated_unix_ms || 0) - (b.updated_unix_ms || 0));
  for (const j of jobs) keepJob(j);
  renderJobs();
}
export function keepJob(j) {
  if (!j || typeof j.id !== 'string') return;
  state.jobs.delete(j.id); // set again: the latest news last, forgotten last
  state.jobs.set(j.id, j);
  keepAtMost(state.jobs, MAX_JOBS);
}
export const scheduleJobsRender = throttled(() => renderJobs(), 200);
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
