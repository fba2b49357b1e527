// Reports: live statistics with a chart, report requests with status and progress, downloads.
// The reports service may be absent or down: the page then says so in one sentence. A finished
// report arrives as a live `report.completed` event (docs/live.md); the page polls its
// unfinished jobs only while live updates are off.

import { api, apiJson } from '../api.js';
import { barChart, legend } from '../chart.js';
import { flash, formatDate, h } from '../dom.js';
import { isLive, onLiveChange, subscribe } from '../live.js';

const FORMATS = [['csv', 'CSV'], ['pdf', 'PDF'], ['json', 'JSON']];
const POLL_MS = 700;
const UNAVAILABLE = 'Reports are not available right now: the reports service did not answer. Try again later.';

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function filenameOf(resp, report) {
  const disposition = resp.headers.get('Content-Disposition') ?? '';
  const match = disposition.match(/filename="?([^";]+)"?/);
  return match ? match[1] : `report-${report.id}.${report.format}`;
}

export async function reportsView(root) {
  let alive = true;
  let pollTimer = null;
  const reports = new Map(); // id → report, newest first by created_at
  let cursor = null; // the next page of GET /reports (keyset, like todos)
  const more = h('button', { type: 'button', id: 'reports-more', hidden: true, onclick: () => loadList() }, 'Load more');
  const summaryBox = h('section', { id: 'summary', 'aria-labelledby': 'summary-h' }, h('h2', { id: 'summary-h' }, 'Your statistics'));
  const list = h('ul', { id: 'report-list', class: 'reports', 'aria-label': 'Your reports' });
  const buttons = FORMATS.map(([format, label]) =>
    h('button', { type: 'button', 'data-format': format, onclick: () => request(format) }, `Request ${label}`));
  const requestBox = h('section', { id: 'requests', 'aria-labelledby': 'requests-h' },
    h('h2', { id: 'requests-h' }, 'Reports'),
    h('p', {}, 'A report lists all your todos. It is prepared in the background; download it when it is ready.'),
    h('p', { class: 'row' }, buttons),
    list,
    h('p', {}, more));
  root.append(h('h1', {}, 'Reports'), summaryBox, requestBox);

  function unavailable(box, heading) {
    box.replaceChildren(heading, h('p', { class: 'note warn' }, UNAVAILABLE));
  }

  let shownSummary = null; // drawn again when the box changes width (a phone turned, a window resized)
  let drawnWidth = 0;
  const resized = new ResizeObserver(() => {
    if (shownSummary && summaryBox.clientWidth !== drawnWidth) drawSummary(shownSummary);
  });
  resized.observe(summaryBox);

  async function loadSummary() {
    const heading = summaryBox.firstChild;
    try {
      drawSummary(await apiJson('/reports/summary'));
    } catch (error) {
      if (error.unavailable) unavailable(summaryBox, heading);
      else summaryBox.replaceChildren(heading, h('p', { class: 'note error' }, error.message));
    }
  }

  function drawSummary(s) {
    const heading = summaryBox.firstChild;
    shownSummary = s;
    drawnWidth = summaryBox.clientWidth;
    const stats = [['Total', s.total], ['Open', s.open], ['Finished', s.finished],
      ['Median time to finish', duration(s.median_seconds_to_finish)]];
    const rows = s.per_day.map((d) => ({ label: d.date, values: [d.created, d.finished] }));
    const created = rows.reduce((a, r) => a + r.values[0], 0);
    const finished = rows.reduce((a, r) => a + r.values[1], 0);
    // Nothing happened in 30 days: say so instead of an empty chart.
    const chart = created + finished === 0
      ? [h('p', { class: 'empty', id: 'no-activity' }, 'No activity yet. Add or finish a todo and it shows here within a few seconds.')]
      : [barChart(rows, ['created', 'finished'], {
        label: `Per day over the last 30 days: ${created} created, ${finished} finished.`, width: summaryBox.clientWidth,
      }), legend(['created', 'finished'])];
    summaryBox.replaceChildren(heading,
      h('dl', { class: 'stats' }, stats.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, String(v))))),
      h('h3', {}, 'Created and finished per day, last 30 days'),
      ...chart,
      h('p', { class: 'hint' }, s.updated_at ? `Updated ${formatDate(s.updated_at)}. ` : '',
        'These numbers follow your changes within a few seconds.'));
  }

  async function loadList() {
    more.disabled = true;
    try {
      const params = new URLSearchParams({ limit: 10 });
      if (cursor) params.set('cursor', cursor);
      const page = await apiJson(`/reports?${params}`);
      if (!alive) return;
      for (const report of page.items) reports.set(report.id, report);
      cursor = page.next_cursor ?? null;
      more.hidden = !cursor;
      draw();
      poll();
    } catch (error) {
      if (error.unavailable) {
        unavailable(requestBox, requestBox.firstChild);
      } else {
        flash(`Could not list your reports: ${error.message}`, 'error');
      }
    } finally {
      more.disabled = false;
    }
  }

  function draw() {
    const sorted = [...reports.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    list.replaceChildren(...sorted.map(entry));
    if (!sorted.length) list.append(h('li', { class: 'empty' }, 'No reports yet.'));
  }

  function entry(report) {
    const label = `${report.format.toUpperCase()} report of ${formatDate(report.created_at)}`;
    const parts = [h('span', { class: 'content' }, label), h('span', { class: `status ${report.status}` }, report.status)];
    if (report.status === 'queued' || report.status === 'running') {
      parts.push(h('progress', { max: 100, value: report.progress ?? 0, 'aria-label': `${label}: progress` }, `${report.progress ?? 0} %`));
    } else if (report.status === 'done') {
      const count = report.todo_count === null || report.todo_count === undefined ? '' : `${report.todo_count} todos`;
      parts.push(h('span', { class: 'meta' }, count),
        h('button', { type: 'button', class: 'primary', 'data-download': report.format, 'aria-label': `Download ${label}`, onclick: () => download(report) }, 'Download'));
    } else if (report.status === 'failed') {
      parts.push(h('span', { class: 'meta error' }, report.error || 'The report could not be made.'));
    }
    return h('li', { 'data-id': report.id, 'data-status': report.status, 'data-format': report.format }, parts);
  }

  async function request(format) {
    try {
      const report = await apiJson('/reports', { method: 'POST', json: { format } });
      reports.set(report.id, report);
      draw();
      poll();
    } catch (error) {
      flash(error.unavailable ? UNAVAILABLE : `Could not request the report: ${error.message}`, 'error');
    }
  }

  // Without live updates: watch unfinished reports until each is done or failed.
  function poll() {
    clearTimeout(pollTimer);
    const waiting = [...reports.values()].filter((r) => r.status === 'queued' || r.status === 'running');
    if (!waiting.length || !alive || isLive()) return;
    pollTimer = setTimeout(async () => {
      await Promise.all(waiting.map(async (r) => {
        try {
          reports.set(r.id, await apiJson(`/reports/${r.id}`));
        } catch { /* try again on the next round */ }
      }));
      if (!alive) return;
      draw();
      poll();
    }, POLL_MS);
  }

  // The newest page again (a report requested in another tab, or a `reset`), keeping the cursor.
  let refreshing = null;
  function refreshFirstPage() {
    refreshing ??= apiJson('/reports?limit=10')
      .then((page) => {
        if (!alive) return;
        for (const report of page.items) reports.set(report.id, report);
        draw();
      })
      .catch(() => { /* the next event or reload tries again */ })
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  function applyLive(event) {
    if (event.type === 'reset') {
      refreshFirstPage();
      return;
    }
    const done = event.data?.data;
    if (event.type !== 'report.completed' || !done?.id) return;
    const known = reports.get(done.id);
    if (!known) {
      refreshFirstPage();
      return;
    }
    const { status, todo_count: todoCount, error, finished_at: finishedAt } = done;
    reports.set(done.id, { ...known, status, todo_count: todoCount, error, finished_at: finishedAt, progress: 100 });
    draw();
  }
  const unsubscribe = subscribe((event) => { if (alive) applyLive(event); });
  // Live updates stopped: poll again; they came back: the stream says what finished meanwhile.
  const unwatch = onLiveChange((open) => (open ? clearTimeout(pollTimer) : poll()));

  // The file needs the Authorization header, so it is fetched here and handed over as a blob.
  async function download(report) {
    try {
      const resp = await api(`/reports/${report.id}/file`);
      const url = URL.createObjectURL(await resp.blob());
      const link = h('a', { href: url, download: filenameOf(resp, report), hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      flash(`Could not download the report: ${error.message}`, 'error');
    }
  }

  await Promise.all([loadSummary(), loadList()]);
  return () => {
    alive = false;
    unsubscribe();
    unwatch();
    resized.disconnect();
    clearTimeout(pollTimer);
  };
}
