// Overview: the topology drawn as SVG from the services, topics, queues and edges the API
// reports, and the same figures as tables.
import {
  $, h, s, fill, isNum, fixed, ms, clock, svcClass, svcBadge, badge, api, state, KNOWN_SERVICES,
} from './lib.js';

// ---- overview ----
// The chain's shape: roles of the broker nodes are found from the edges the API sends.
const DEFAULT_EDGES = [
  ['gateway', 'switchboard.requests'], ['switchboard.requests', 'relay'], ['relay', 'processor'],
  ['processor', 'switchboard.replies'], ['switchboard.replies', 'gateway'],
  ['gateway', 'switchboard.jobs'], ['switchboard.jobs', 'worker'], ['worker', 'processor'],
];
const SLOTS = {
  gateway: [20, 150], relay: [450, 20], processor: [670, 150], worker: [450, 280],
  requests: [240, 30], replies: [345, 160], jobs: [240, 290],
};
const SPARE_SLOTS = [[20, 20], [670, 20], [20, 290], [670, 300], [20, 400], [240, 400], [450, 400], [670, 400]];
const SVC_W = 165, BOX_W = 170;

export async function loadOverview() {
  if (state.overview) renderOverview(state.overview);
  onOverview(await api('/api/overview'));
}
export function onOverview(ov) {
  if (!ov) return;
  state.overview = ov;
  setDeadLetterBadge(ov.dead_letters);
  if (state.route.page === 'overview') renderOverview(ov);
}
export function setDeadLetterBadge(counts) {
  const n = counts ? (counts.requests || 0) + (counts.jobs || 0) : 0;
  const b = $('#dl-badge');
  b.hidden = !n;
  b.textContent = String(n);
}
function serviceSummary(svc) {
  const inst = (svc && svc.instances) || [];
  const up = inst.filter((i) => i.up);
  const breakers = new Map();
  const rank = { closed: 0, half_open: 1, open: 2 };
  for (const i of inst) {
    for (const b of i.breakers || []) {
      const prev = breakers.get(b.name);
      if (prev === undefined || (rank[b.state] ?? 0) > (rank[prev] ?? 0)) breakers.set(b.name, b.state);
    }
  }
  const tripped = [...breakers.values()].some((st) => st !== 'closed');
  const ready = up.filter((i) => i.ready).length;
  const st = !up.length ? 'down' : ready < inst.length || tripped ? 'degraded' : 'up';
  const rps = up.reduce((a, i) => a + (isNum(i.rps) ? i.rps : 0), 0);
  const errs = up.reduce((a, i) => a + (isNum(i.rps) && isNum(i.error_pct) ? i.rps * i.error_pct : 0), 0);
  const maxOf = (k) => up.reduce((a, i) => (isNum(i[k]) && (a === null || i[k] > a) ? i[k] : a), null);
  return { inst, up, ready, breakers, state: st, rps, errPct: rps > 0 ? errs / rps : 0, p50: maxOf('p50_ms'), p99: maxOf('p99_ms') };
}
function renderOverview(ov) {
  const services = new Map((ov.services || []).map((x) => [x.name, x]));
  const topics = new Map((ov.topics || []).map((x) => [x.name, x]));
  const queues = new Map((ov.queues || []).map((x) => [x.name, x]));
  const given = (ov.edges && ov.edges.length ? ov.edges : DEFAULT_EDGES).filter((e) => Array.isArray(e) && e.length === 2);
  // An edge naming a topic or queue the lists do not have stands for the listed one of the
  // same role (the last part of the name: requests, jobs) when the names are configured.
  const mentioned = new Set(given.flat());
  const listed = [...topics.keys(), ...queues.keys()].filter((x) => !mentioned.has(x) && !x.endsWith('.dlq'));
  const alias = new Map();
  for (const n of mentioned) {
    if (services.has(n) || KNOWN_SERVICES.includes(n) || topics.has(n) || queues.has(n)) continue;
    const same = listed.find((x) => x.split('.').pop() === n.split('.').pop());
    if (same) alias.set(n, same);
  }
  const edges = given.map(([a, b]) => [alias.get(a) || a, alias.get(b) || b]);
  const names = new Set(edges.flat());
  // Services, topics and queues the edges do not mention still show (spare slots), but for
  // dead-letter queues: their counts show on the queue they belong to.
  for (const n of [...services.keys(), ...topics.keys()]) names.add(n);
  for (const n of queues.keys()) if (!n.endsWith('.dlq')) names.add(n);
  const isService = (n) => services.has(n) || (KNOWN_SERVICES.includes(n) && !topics.has(n) && !queues.has(n));
  const from = (n) => edges.filter((e) => e[1] === n).map((e) => e[0]);
  const to = (n) => edges.filter((e) => e[0] === n).map((e) => e[1]);
  const spare = [...SPARE_SLOTS];
  const boxes = new Map();
  for (const n of names) {
    let kind = isService(n) ? 'service' : queues.has(n) || to(n).includes('worker') ? 'queue' : 'topic';
    let slot = isService(n) ? SLOTS[n] : null;
    if (!isService(n)) {
      if (from(n).includes('gateway') && to(n).includes('relay')) slot = SLOTS.requests;
      else if (from(n).includes('processor') && to(n).includes('gateway')) slot = SLOTS.replies;
      else if (from(n).includes('gateway') && to(n).includes('worker')) slot = SLOTS.jobs;
    }
    if (!slot || [...boxes.values()].some((b) => b.x === slot[0] && b.y === slot[1])) slot = spare.shift() || [20, 520];
    const node = kind === 'service' ? serviceNode(n, services.get(n)) : brokerNode(n, kind, topics.get(n), queues.get(n), ov);
    node.g.setAttribute('transform', `translate(${slot[0]},${slot[1]})`);
    boxes.set(n, { x: slot[0], y: slot[1], w: node.w, h: node.h, g: node.g });
  }
  const svg = $('#topology');
  const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8c959f' })));
  const lines = edges.filter((e) => boxes.has(e[0]) && boxes.has(e[1])).map((e) => edgePath(boxes.get(e[0]), boxes.get(e[1]), e));
  let height = 380;
  for (const b of boxes.values()) height = Math.max(height, b.y + b.h + 12);
  svg.setAttribute('viewBox', `0 0 860 ${height}`);
  fill(svg, defs, lines, [...boxes.values()].map((b) => b.g));
  renderOverviewTables(ov, services);
  const upd = $('#overview-updated');
  upd.textContent = ov.updated_unix_ms ? 'updated ' + clock(ov.updated_unix_ms) : '';
}
function edgePath(a, b, e) {
  let x1, y1, x2, y2;
  if (b.x >= a.x + a.w) [x1, x2] = [a.x + a.w, b.x];
  else if (b.x + b.w <= a.x) [x1, x2] = [a.x, b.x + b.w];
  else [x1, x2] = [a.x + a.w / 2, b.x + b.w / 2];
  if (x1 === a.x + a.w / 2) [y1, y2] = b.y > a.y ? [a.y + a.h, b.y] : [a.y, b.y + b.h];
  else [y1, y2] = [a.y + Math.min(a.h * 0.35, 30), b.y + Math.min(b.h * 0.65, 45)];
  const dx = (x2 - x1) / 2;
  const d = x1 === a.x + a.w / 2 ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
  return s('path', { class: 'edge', d, 'marker-end': 'url(#arrow)', 'data-edge': `${e[0]}>${e[1]}` });
}
function textLine(x, y, cls, text) { return s('text', { x, y, class: cls }, text); }
function serviceNode(name, svc) {
  const sum = serviceSummary(svc);
  const bh = 20, hgt = 86 + sum.breakers.size * bh;
  const g = s('g', { class: 'node service', 'data-service': name, 'data-state': sum.state },
    s('title', {}, `${name}: ${sum.state}`),
    s('rect', { class: 'box', width: SVC_W, height: hgt, rx: 8 }),
    s('rect', { class: 'stripe ' + svcClass(name), x: 0, y: 0, width: 6, height: hgt, rx: 3 }),
    textLine(14, 20, 'title', name),
    s('text', { x: SVC_W - 10, y: 20, class: 'kind', 'text-anchor': 'end' }, sum.state),
    textLine(14, 39, '', `${sum.up.length}/${sum.inst.length} instance${sum.inst.length === 1 ? '' : 's'} up, ${sum.ready} ready`),
    textLine(14, 56, '', `${fixed(sum.rps)} req/s · ${fixed(sum.errPct)} % err`),
    textLine(14, 73, '', `p50 ${ms(sum.p50)} · p99 ${ms(sum.p99)}`));
  let y = 82;
  for (const [b, st] of sum.breakers) {
    g.append(s('g', { class: 'breaker', 'data-breaker': `${name}/${b}`, 'data-state': st },
      s('title', {}, `breaker ${b}: ${st}`),
      s('rect', { x: 10, y, width: SVC_W - 20, height: 16, rx: 4 }),
      textLine(16, y + 12, '', `${b}: ${st.replace('_', '-')}`)));
    y += bh;
  }
  return { g, w: SVC_W, h: hgt };
}
function brokerNode(name, kind, topic, queue, ov) {
  const lines = [];
  let lagging = false;
  if (kind === 'topic') {
    if (topic) {
      lines.push(`lag ${topic.lag ?? '–'} · ${(topic.partitions || []).length} partitions`);
      lagging = (topic.lag || 0) > 0;
      if (topic.group) lines.push(`group ${topic.group}`);
    } else lines.push('no consumer group');
    const dl = ov.dead_letters && ov.dead_letters.requests;
    if (topic && isNum(dl)) lines.push(`dead letters ${dl}`);
  } else {
    if (queue) {
      lines.push(`depth ${queue.messages ?? '–'} · unacked ${queue.unacked ?? '–'}`);
      lines.push(`${queue.consumers ?? '–'} consumer${queue.consumers === 1 ? '' : 's'}`);
      lagging = (queue.messages || 0) > 0;
    } else lines.push('not reported');
    // Jobs waiting out a retry delay sit in the queue's retry queues (RabbitMQ), not in it.
    const retrying = (ov.queues || []).filter((q) => q.name.startsWith(name + '.retry.'));
    if (retrying.length) lines.push(`retrying ${retrying.reduce((n, q) => n + (q.messages || 0), 0)}`);
    const dlq = (ov.queues || []).find((q) => q.name === name + '.dlq');
    if (dlq) lines.push(`dead letters ${dlq.messages ?? 0}`);
  }
  // Why the broker could not be read (unreachable, timed out): cut here, whole in the tooltip.
  const err = (topic && topic.error) || (queue && queue.error);
  if (err) lines.push('error: ' + (String(err).length > 24 ? String(err).slice(0, 23) + '…' : String(err)));
  const hgt = 40 + lines.length * 15;
  const attrs = { class: 'node ' + kind, 'data-lagging': lagging ? 'true' : 'false' };
  attrs['data-' + kind] = name;
  const g = s('g', attrs, s('title', {}, `${kind} ${name}${err ? ': ' + err : ''}`),
    s('rect', { class: 'box', width: BOX_W, height: hgt, rx: kind === 'queue' ? 4 : 14 }),
    textLine(10, 15, 'kind', kind), textLine(10, 31, 'title', name),
    lines.map((l, i) => textLine(10, 48 + i * 15, '', l)));
  return { g, w: BOX_W, h: hgt };
}
function renderOverviewTables(ov, services) {
  const rows = [];
  for (const [name, svc] of services) {
    const inst = svc.instances || [];
    if (!inst.length) rows.push(h('tr', {}, h('td', {}, svcBadge(name)), h('td', { colspan: 8, class: 'muted' }, 'no instances')));
    for (const i of inst) {
      const st = !i.up ? 'down' : i.ready ? 'up' : 'degraded';
      rows.push(h('tr', { 'data-instance': i.addr || i.admin || '' },
        h('td', {}, svcBadge(name)), h('td', { class: 'mono' }, i.addr || '–'), h('td', { class: 'mono' }, i.admin || '–'),
        h('td', {}, badge(st), i.error ? h('div', { class: 'muted small' }, i.error) : null), h('td', { class: 'num' }, fixed(i.rps)), h('td', { class: 'num' }, fixed(i.error_pct) + ' %'),
        h('td', { class: 'num' }, ms(i.p50_ms)), h('td', { class: 'num' }, ms(i.p99_ms)),
        h('td', { class: 'breakers' }, (i.breakers || []).map((b) => h('span', { class: 'status', 'data-status': b.state, title: b.state }, b.name)))));
    }
  }
  fill($('#services tbody'), rows);
  fill($('#topics tbody'), (ov.topics || []).flatMap((t) => (t.partitions && t.partitions.length ? t.partitions : [{}]).map((p, k) =>
    h('tr', {}, h('td', { class: 'mono' }, k ? '' : t.name, !k && t.error ? h('div', { class: 'muted small' }, t.error) : null),
      h('td', { class: 'mono' }, k ? '' : t.group || '–'),
      h('td', { class: 'num' }, p.partition ?? '–'), h('td', { class: 'num' }, p.end_offset ?? '–'),
      h('td', { class: 'num' }, p.committed ?? '–'), h('td', { class: 'num' }, p.lag ?? '–')))));
  fill($('#queues tbody'), (ov.queues || []).map((q) => h('tr', {},
    h('td', { class: 'mono' }, q.name, q.error ? h('div', { class: 'muted small' }, q.error) : null),
    h('td', { class: 'num' }, q.messages ?? '–'), h('td', { class: 'num' }, q.unacked ?? '–'), h('td', { class: 'num' }, q.consumers ?? '–'))));
}
