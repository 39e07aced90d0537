// switchboard console: one page, hash routes, no build step (ES2020 modules).
// Every value from the API reaches the DOM through textContent, setAttribute or
// createElementNS, never as markup, so a body like <script> shows as text. No inline styles
// (CSP style-src 'self'): geometry that depends on data is set through CSSOM (element.style).
import { $, api, showError, state } from './lib.js';
import { loadOverview, onOverview, setDeadLetterBadge } from './overview.js';
import { loadTransactions, renderTransactions, onTxEvent, loadDetail } from './transactions.js';
import { loadJobs, keepJob, scheduleJobsRender } from './jobs.js';
import { loadDeadLetters } from './dead-letters.js';
import { loadMetrics, resizeCharts } from './metrics.js';

const PAGES = ['overview', 'transactions', 'jobs', 'dead-letters', 'metrics'];

// ---- router ----
function parseRoute() {
  const [page, id] = location.hash.replace(/^#\/?/, '').split('/');
  if (page === 'transactions' && id) return { page: 'transaction', id: decodeURIComponent(id) };
  return { page: PAGES.includes(page) ? page : 'overview' };
}
const loaders = {
  overview: loadOverview, transactions: loadTransactions, transaction: () => loadDetail(state.route.id),
  jobs: loadJobs, 'dead-letters': loadDeadLetters, metrics: loadMetrics,
};
function route() {
  state.route = parseRoute();
  const page = state.route.page;
  for (const sec of document.querySelectorAll('.page')) sec.hidden = sec.id !== 'page-' + page;
  const nav = page === 'transaction' ? 'transactions' : page;
  for (const a of document.querySelectorAll('nav a[data-page]')) a.classList.toggle('active', a.dataset.page === nav);
  showError(null);
  loaders[page]().catch(showError);
}


// ---- live updates (Server-Sent Events) ----
let source = null, retryMs = 1000, lastEvent = 0;
function setLive(live) {
  const el = $('#live');
  el.setAttribute('data-state', live ? 'live' : 'reconnecting');
  el.textContent = live ? 'live' : 'reconnecting…';
}
function parse(data) { try { return JSON.parse(data); } catch (_) { return null; } }
function connect() {
  if (source) source.close();
  source = new EventSource('/api/events');
  lastEvent = Date.now();
  source.onopen = () => { setLive(true); retryMs = 1000; };
  source.onerror = () => {
    setLive(false);
    // CONNECTING: the browser retries by itself. CLOSED: the server refused (e.g. 401).
    if (source.readyState === EventSource.CLOSED) reconnectLater();
  };
  const on = (name, fn) => source.addEventListener(name, (e) => { lastEvent = Date.now(); setLive(true); const v = parse(e.data); if (v) fn(v); });
  on('transaction', onTxEvent);
  on('overview', onOverview);
  on('job', (j) => { keepJob(j); scheduleJobsRender(); });
  on('dead-letters', (counts) => {
    setDeadLetterBadge(counts);
    if (state.route.page === 'dead-letters') loadDeadLetters().catch(showError);
  });
}
let reconnectTimer = 0;
function reconnectLater() {
  if (source) source.close();
  source = null;
  if (reconnectTimer) return;
  reconnectTimer = setTimeout(async () => {
    reconnectTimer = 0;
    try { await api('/api/overview'); } catch (_) { /* a 401 has sent us to /login */ }
    connect();
  }, retryMs);
  retryMs = Math.min(retryMs * 2, 15000);
}
// The overview arrives every second; silence for long means a dead connection the browser
// has not noticed (a proxy holding it open): start over.
setInterval(() => { if (source && Date.now() - lastEvent > 20000) { setLive(false); reconnectLater(); } }, 5000);
setInterval(() => { if (state.route.page === 'metrics' && !document.hidden) loadMetrics().catch(showError); }, 5000);

// ---- wiring ----
let filterTimer = 0;
const refilter = () => {
  clearTimeout(filterTimer);
  renderTransactions();
  filterTimer = setTimeout(() => loadTransactions().catch(showError), 250);
};
for (const id of ['#filter-failed', '#filter-slower', '#filter-q']) $(id).addEventListener('input', refilter);
$('#tx-filters').addEventListener('submit', (e) => e.preventDefault());
$('#dl-source').addEventListener('change', () => loadDeadLetters().catch(showError));
$('#metrics-minutes').addEventListener('change', () => loadMetrics().catch(showError));
window.addEventListener('resize', resizeCharts);
window.addEventListener('hashchange', route);
route();
connect();
