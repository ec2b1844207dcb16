// Charts as inline SVG, sized to their box when drawn (redraw on resize): stacked columns for
// counts over time, horizontal bars for top-N lists. Colours come from classes in console.css.

import { h, svg } from './dom.js';

const CHAR_PX = 7.2; // about one character of the 12 px chart text
const FALLBACK_WIDTH = 600;

function widthOf(box) {
  return Math.max(240, Math.floor(box.clientWidth || FALLBACK_WIDTH));
}

function fit(text, px) {
  const room = Math.max(4, Math.floor(px / CHAR_PX));
  const value = String(text);
  return value.length <= room ? value : `${value.slice(0, room - 1)}…`;
}

/** A legend: a swatch and a name per series. */
export function legend(series) {
  return h(
    'ul',
    { class: 'legend' },
    series.map((s) =>
      h(
        'li',
        {},
        svg('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true' }, svg('rect', { width: 12, height: 12, rx: 2, class: s.className })),
        ' ',
        s.label,
      ),
    ),
  );
}

/**
 * Stacked columns: one per row (a day), one segment per series. `rows`: [{label, values}];
 * `series`: [{key, label, className}].
 */
export function stackedColumns(box, rows, series, { title }) {
  const width = widthOf(box);
  const height = 200;
  const pad = { top: 12, right: 8, bottom: 24, left: 32 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const totals = rows.map((row) => series.reduce((sum, s) => sum + (row.values[s.key] || 0), 0));
  const max = Math.max(1, ...totals);
  const slot = plotW / Math.max(rows.length, 1);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const every = Math.ceil((rows.length * 44) / plotW); // a label every `every` columns, none overlapping
  const y = (value) => pad.top + plotH - (value / max) * plotH;
  const parts = [];
  for (const tick of [0, Math.round(max / 2), max]) {
    parts.push(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), class: 'grid' }));
    parts.push(svg('text', { x: pad.left - 6, y: y(tick) + 4, 'text-anchor': 'end', class: 'axis' }, String(tick)));
  }
  rows.forEach((row, i) => {
    const x = pad.left + slot * i + (slot - barW) / 2;
    let base = 0;
    for (const s of series) {
      const value = row.values[s.key] || 0;
      if (!value) continue;
      parts.push(
        svg(
          'rect',
          { x, y: y(base + value), width: barW, height: y(base) - y(base + value), class: `${s.className} segment` },
          svg('title', {}, `${row.label}: ${value} ${s.label}`),
        ),
      );
      base += value;
    }
    if (i % every === 0) {
      parts.push(svg('text', { x: x + barW / 2, y: height - 6, 'text-anchor': 'middle', class: 'axis' }, row.label));
    }
  });
  box.replaceChildren(
    svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'chart' }, parts),
  );
}

/**
 * Horizontal bars, a name above each: `items` [{label, value, inner, note}]. `inner` (optional,
 * ≤ value) is drawn darker inside the bar (a median inside a 95th percentile).
 */
export function horizontalBars(box, items, { title, empty = 'Nothing in this period.' }) {
  if (!items.length) {
    box.replaceChildren(h('p', { class: 'muted' }, empty));
    return;
  }
  const width = widthOf(box);
  const rowH = 38;
  const height = items.length * rowH + 4;
  const max = Math.max(1, ...items.map((item) => item.value));
  const noteRoom = 120;
  const barRoom = Math.max(40, width - noteRoom - 8);
  const parts = [];
  items.forEach((item, i) => {
    const top = i * rowH;
    const w = Math.max(2, (item.value / max) * barRoom);
    parts.push(svg('text', { x: 0, y: top + 13, class: 'label' }, fit(item.label, width), svg('title', {}, item.label)));
    parts.push(svg('rect', { x: 0, y: top + 18, width: w, height: 12, rx: 2, class: item.className || 'bar' }));
    if (item.inner !== undefined && item.inner !== null) {
      const inner = Math.max(2, (item.inner / max) * barRoom);
      parts.push(svg('rect', { x: 0, y: top + 18, width: inner, height: 12, rx: 2, class: 'bar-inner' }));
    }
    parts.push(svg('text', { x: w + 6, y: top + 28, class: 'value' }, fit(item.note ?? String(item.value), noteRoom)));
  });
  box.replaceChildren(
    svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title, class: 'chart' }, parts),
  );
}
