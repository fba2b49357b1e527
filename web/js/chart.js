// Small SVG charts: lines of samples per series, and grouped bars per day. No styles inline:
// colours come from classes in app.css (series-0, series-1, ...). Each chart is drawn at the
// width of its box (`width`, CSS pixels), one viewBox unit a pixel, so the axis labels keep
// their size on a phone instead of shrinking with the picture.

import { svg } from './dom.js';

const H = 220;
const widthOf = (width) => Math.max(280, Math.round(width || 640));
const PAD = { left: 44, right: 10, top: 10, bottom: 28 };

function niceMax(value, integer = false) {
  if (!(value > 0)) return 1;
  if (integer && value <= 4) return Math.ceil(value);
  const step = 10 ** Math.floor(Math.log10(value));
  const top = Math.ceil(value / step) * step;
  return integer && top % 2 ? top + step : top; // counts: the middle tick stays a whole number
}

// Tick fractions: whole numbers for counts (0, 1, 2, 3 up to 4, else 0, half, top).
function fractions(maxY, integer) {
  if (integer && maxY <= 4) return Array.from({ length: maxY + 1 }, (_, i) => i / maxY);
  return [0, 0.5, 1];
}

function axes(W, maxY, unit, xLabel, integer = false) {
  const plotH = H - PAD.top - PAD.bottom;
  const ticks = fractions(maxY, integer).map((f) => {
    const y = PAD.top + plotH * (1 - f);
    return [
      svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }),
      svg('text', { class: 'tick', x: PAD.left - 6, y: y + 4, 'text-anchor': 'end' }, `${+(maxY * f).toFixed(1)}${unit}`),
    ];
  });
  return [ticks, xLabel ? svg('text', { class: 'tick', x: W - PAD.right, y: H - 6, 'text-anchor': 'end' }, xLabel) : null];
}

/** Lines of values per series: [{name, values}]. x = sample number, y = value. */
export function lineChart(series, { label, unit = '', xLabel = '', xMax = 1, width }) {
  const W = widthOf(width);
  const maxY = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (xMax <= 1 ? plotW / 2 : (plotW * i) / (xMax - 1));
  const y = (v) => PAD.top + plotH * (1 - v / maxY);
  const lines = series.map((s, n) => {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return svg('g', { class: `series series-${n % 6}` },
      svg('polyline', { points, fill: 'none' }),
      s.values.map((v, i) => svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 },
        svg('title', {}, `${s.name} #${i + 1}: ${v.toFixed(1)}${unit}`))));
  });
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label },
    svg('title', {}, label), axes(W, maxY, unit, xLabel), lines);
}

/** Grouped bars: rows [{label, values: [a, b, ...]}], names of the values in `names`. */
export function barChart(rows, names, { label, width }) {
  const W = widthOf(width);
  const maxY = niceMax(Math.max(0, ...rows.flatMap((r) => r.values)), true);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, rows.length);
  const bar = Math.max(1, (slot * 0.8) / names.length);
  const groups = rows.map((row, i) => svg('g', {},
    row.values.map((v, n) => {
      const height = (plotH * v) / maxY;
      return svg('rect', {
        class: `series-${n % 6}`, x: (PAD.left + i * slot + slot * 0.1 + n * bar).toFixed(1),
        y: (PAD.top + plotH - height).toFixed(1), width: bar.toFixed(1), height: height.toFixed(1),
      }, svg('title', {}, `${row.label}: ${v} ${names[n]}`));
    })));
  const first = rows[0]?.label ?? '';
  const last = rows.at(-1)?.label ?? '';
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label },
    svg('title', {}, label), axes(W, maxY, '', '', true),
    svg('text', { class: 'tick', x: PAD.left, y: H - 6 }, first),
    svg('text', { class: 'tick', x: W - PAD.right, y: H - 6, 'text-anchor': 'end' }, last),
    groups);
}

/** A legend for series names, matching the chart's colour classes. */
export function legend(names) {
  return svg('svg', { class: 'legend', viewBox: `0 0 ${names.length * 150} 20`, 'aria-hidden': 'true' },
    names.map((name, n) => svg('g', { class: `series series-${n % 6}` },
      svg('rect', { x: n * 150, y: 4, width: 12, height: 12 }),
      svg('text', { x: n * 150 + 18, y: 15 }, name))));
}
