// Round-trip time from this browser to /ping in each configured region (seed 000: the
// multi-region ping). Samples go one at a time per region, regions in turn, so the chart and
// the table fill in live and no region's samples queue behind another's.

import { lineChart, legend } from '../chart.js';
import { config } from '../config.js';
import { h } from '../dom.js';
import { summarize } from '../stats.js';

const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : '—');

async function sample(url) {
  const message = crypto.randomUUID();
  const sep = url.includes('?') ? '&' : '?';
  const started = performance.now();
  const resp = await fetch(`${url}${sep}ECHOMSG=${encodeURIComponent(message)}`, { cache: 'no-store' });
  const body = await resp.json();
  const elapsed = performance.now() - started;
  if (!resp.ok) throw new Error(body.detail || `HTTP ${resp.status}`);
  if (body.message !== message) throw new Error('the answer did not echo our message');
  return { elapsed, region: body.region, instance: body.instance };
}

export async function diagnosticsView(root) {
  const settings = await config();
  let running = false;
  let alive = true;
  const count = h('input', { id: 'samples', name: 'samples', type: 'number', min: 1, max: 200, value: String(settings.samples), required: true });
  const run = h('button', { type: 'submit', class: 'primary', id: 'run-ping' }, 'Measure');
  const status = h('p', { id: 'ping-status', role: 'status' });
  const table = h('table', { id: 'ping-table' });
  const chartBox = h('div', { class: 'chart-box', id: 'ping-chart' });
  // On a phone the table keeps region and times; who answered and how many samples go below it.
  const phoneNotes = h('ul', { class: 'phone-only answered-list', id: 'ping-answered' });
  const form = h('form', { class: 'row', onsubmit: start }, h('label', { for: 'samples' }, 'Samples per region'), count, run);
  const results = settings.regions.map((region) => ({ ...region, values: [], answered: new Set(), error: null }));

  root.append(
    h('h1', {}, 'Diagnostics'),
    h('p', {}, 'Round-trip time from this browser to the ping service of each region: ',
      'the time a request takes to get there and the answer to come back.'),
    form, status, h('div', { class: 'table-wrap' }, table), phoneNotes, chartBox,
    h('p', { class: 'hint' }, 'p50 is the median; p95 is the time 95 % of the samples stayed under. ',
      'The first sample may include opening the connection.'));

  function draw() {
    const head = h('tr', {}, [['Region'], ['Answered by', 'wide-only'], ['Samples', 'wide-only'], ['min'], ['p50'], ['p95'], ['max']]
      .map(([t, cls]) => h('th', { scope: 'col', class: cls ?? null }, t)));
    const rows = results.map((r) => {
      const s = summarize(r.values);
      const answered = r.error ? h('span', { class: 'error' }, r.error) : [...r.answered].join(', ') || '—';
      return h('tr', { 'data-region': r.name },
        h('th', { scope: 'row' }, r.name), h('td', { class: 'answered wide-only' }, answered),
        h('td', { class: 'samples wide-only' }, String(s.count)),
        h('td', { class: 'min' }, ms(s.min)), h('td', { class: 'p50' }, ms(s.p50)),
        h('td', { class: 'p95' }, ms(s.p95)), h('td', { class: 'max' }, ms(s.max)));
    });
    table.replaceChildren(h('caption', {}, 'Round-trip time per region'), h('thead', {}, head), h('tbody', {}, rows));
    phoneNotes.replaceChildren(...results.map((r) => h('li', {}, `${r.name}: ${r.values.length} samples`,
      r.error ? h('span', { class: 'error' }, `, ${r.error}`) : `, answered by ${[...r.answered].join(', ') || '—'}`)));
    const summary = results.map((r) => `${r.name}: ${r.values.length} samples, median ${ms(summarize(r.values).p50)}`).join('; ');
    chartBox.replaceChildren(
      lineChart(results, {
        label: `Round-trip time per sample. ${summary}`, unit: ' ms', xLabel: 'sample', xMax: Number(count.value) || 1,
        width: chartBox.clientWidth,
      }),
      legend(results.map((r) => r.name)));
  }

  async function start(event) {
    event?.preventDefault();
    if (running) return;
    const n = Math.min(200, Math.max(1, Number(count.value) || settings.samples));
    running = true;
    run.disabled = true;
    status.textContent = 'Measuring…';
    for (const r of results) Object.assign(r, { values: [], answered: new Set(), error: null });
    draw();
    for (let i = 0; i < n && alive; i += 1) {
      for (const r of results) {
        if (r.error || !alive) continue;
        try {
          const got = await sample(r.url);
          r.values.push(got.elapsed);
          r.answered.add(`${got.region} / ${got.instance}`);
        } catch (error) {
          r.error = `unreachable: ${error.message}`;
        }
      }
      if (alive) draw();
    }
    running = false;
    run.disabled = false;
    if (alive) status.textContent = `Done: ${n} samples per region.`;
  }

  // The chart is drawn at its box's width: again when that changes (a phone turned, a window resized).
  let drawnWidth = chartBox.clientWidth;
  const resized = new ResizeObserver(() => {
    if (chartBox.clientWidth !== drawnWidth) {
      drawnWidth = chartBox.clientWidth;
      draw();
    }
  });
  resized.observe(chartBox);
  draw();
  start();
  return () => {
    alive = false;
    resized.disconnect();
  };
}
