// Shared by every page: DOM helpers that only ever set text and attributes, formatting, the
// API client and the page state.
export const SVG_NS = 'http://www.w3.org/2000/svg';
export const KNOWN_SERVICES = ['gateway', 'relay', 'processor', 'worker', 'console'];
export const $ = (sel) => document.querySelector(sel);
export const state = {
  overview: null, tx: new Map(), txMatched: new Set(), fresh: new Set(), jobs: new Map(),
  route: { page: 'overview' }, detail: null, selected: null, charts: new Map(),
};

// ---- DOM helpers: text and attributes only ----
export function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  return e;
}
export function put(e, children) {
  for (const c of children.flat(4)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c)); // append(string) makes a text node
  }
  return e;
}
export const h = (tag, attrs, ...kids) => put(setAttrs(document.createElement(tag), attrs), kids);
export const s = (tag, attrs, ...kids) => put(setAttrs(document.createElementNS(SVG_NS, tag), attrs), kids);
export const fill = (el, ...kids) => { el.replaceChildren(); return put(el, kids); };

// ---- formatting ----
export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const fixed = (v, d = 1) => (isNum(v) ? v.toFixed(d) : '–');
export function ms(v) {
  if (!isNum(v)) return '–';
  if (v < 1) return v.toFixed(2) + ' ms';
  if (v < 1000) return v.toFixed(1) + ' ms';
  return (v / 1000).toFixed(2) + ' s';
}
export function clock(unixMs) {
  if (!isNum(unixMs) || unixMs <= 0) return '–';
  const d = new Date(unixMs);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
export function bytes(n) {
  if (!isNum(n)) return '–';
  return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
}
export function svcClass(name) {
  if (KNOWN_SERVICES.includes(name)) return 'svc-' + name;
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return 'svc-x' + (hash % 4);
}
export const svcBadge = (name) => h('span', { class: 'svc ' + svcClass(name) }, name);
export const badge = (status) => h('span', { class: 'status', 'data-status': status }, String(status).replace('_', '-'));
export const txHref = (id) => '#/transactions/' + encodeURIComponent(id);

// ---- API ----
export async function api(path, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (opts.body) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { credentials: 'same-origin', headers, ...opts });
  if (res.status === 401) {
    location.assign('/login');
    throw new Error('sign-in required');
  }
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (!res.ok) {
    const err = body && body.error ? `${body.error.message || body.error.code}` : `HTTP ${res.status}`;
    const e = new Error(err);
    e.status = res.status;
    throw e;
  }
  return body;
}
export function showError(err) {
  const el = $('#load-error');
  el.hidden = !err;
  el.textContent = err ? 'Could not load: ' + (err.message || String(err)) : '';
}

/** Forgets the entries of `map` first set longest ago until it holds `max` (a Map keeps insertion order). */
export function keepAtMost(map, max) {
  while (map.size > max) map.delete(map.keys().next().value);
}

/** `fn` at most once per `ms`, the last call's effect never lost (live events come in bursts). */
export function throttled(fn, ms) {
  let timer = 0;
  return () => {
    if (!timer) timer = setTimeout(() => { timer = 0; fn(); }, ms);
  };
}
