// The dashboard: the tenant's last days from GET /dashboard (verdicts over time, the top
// indicators, brands and reasons, each tool's latency and failures), drawn by charts.js.

import { clone, h, millis, notice } from './dom.js';
import { api, describe } from './http.js';
import { horizontalBars, legend, stackedColumns } from './charts.js';
import { codeName, toolName } from './words.js';

const PERIODS = ['7', '30', '90'];
const OUTCOMES = [
  { key: 'scam', label: 'scam', className: 'fill-scam' },
  { key: 'suspicious', label: 'suspicious', className: 'fill-suspicious' },
  { key: 'safe', label: 'safe', className: 'fill-safe' },
  { key: 'none', label: 'no verdict', className: 'fill-none' },
];

/** Draw the dashboard for `params` (days=); returns a cleanup (the resize listener). */
export function renderDashboard(view, params, alive) {
  const page = clone('dashboard-view');
  view.replaceChildren(page);
  const days = PERIODS.includes(params.get('days')) ? params.get('days') : '7';
  const select = page.querySelector('#dash-days');
  select.value = days;
  select.addEventListener('change', () => {
    window.location.hash = `#/dashboard?days=${select.value}`;
  });

  let board = null;
  const draw = () => board && alive() && drawCharts(page, board);
  let timer = 0;
  const onResize = () => {
    clearTimeout(timer);
    timer = setTimeout(draw, 150);
  };
  window.addEventListener('resize', onResize);

  api(`/dashboard?days=${days}`)
    .then((result) => {
      if (!alive()) return;
      board = result;
      showTiles(page, board);
      showTools(page, board);
      page.querySelector('#verdict-legend').replaceChildren(legend(OUTCOMES));
      page.querySelector('#dash-body').hidden = false; // shown first: charts take its width
      draw();
    })
    .catch((error) => alive() && notice(describe(error)));
  return () => {
    clearTimeout(timer);
    window.removeEventListener('resize', onResize);
  };
}

function showTiles(page, board) {
  const tiles = [
    ['Tasks', board.tasks, ''],
    ['Scam', board.outcomes.scam, 'scam'],
    ['Suspicious', board.outcomes.suspicious, 'suspicious'],
    ['Safe', board.outcomes.safe, 'safe'],
    ['Reviewed', board.reviewed, ''],
    ['Overridden', board.overridden, ''],
  ];
  page.querySelector('#dash-tiles').replaceChildren(
    ...tiles.map(([name, value, verdict]) =>
      h('div', { class: 'tile', dataset: { tile: name.toLowerCase(), verdict } }, h('strong', {}, String(value)), h('span', {}, name)),
    ),
  );
  const since = new Date(board.since).toLocaleDateString();
  page.querySelector('#dash-period').textContent = `since ${since} (UTC days)${board.sampled ? '; tool and indicator figures from the newest tasks only' : ''}`;
}

function showTools(page, board) {
  const rows = board.tools.map((t) =>
    h(
      'tr',
      { class: 'tool', dataset: { tool: t.tool } },
      h('td', { dataset: { label: 'Tool' } }, toolName(t.tool)),
      h('td', { class: 'num', dataset: { label: 'Answered' } }, String(t.completed)),
      h('td', { class: t.failed ? 'num error' : 'num', dataset: { label: 'Failed attempts' } }, String(t.failed)),
      h('td', { class: 'num', dataset: { label: 'Timed out' } }, String(t.timed_out)),
      h('td', { class: 'num', dataset: { label: 'Median' } }, millis(t.p50_ms) || '—'),
      h('td', { class: 'num', dataset: { label: '95th percentile' } }, millis(t.p95_ms) || '—'),
    ),
  );
  const empty = h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'No tool calls in this period.'));
  page.querySelector('#tool-rows').replaceChildren(...(rows.length ? rows : [empty]));
}

function drawCharts(page, board) {
  const byDay = board.by_day.map((d) => ({ label: d.day.slice(5), values: d }));
  stackedColumns(page.querySelector('#chart-verdicts'), byDay, OUTCOMES, { title: 'Tasks by verdict per day' });
  horizontalBars(
    page.querySelector('#chart-indicators'),
    board.top_indicators.map((i) => ({ label: `${i.value} (${i.kind})`, value: i.tasks, note: tasks(i.tasks) })),
    { title: 'Scam-database indicators matched', empty: 'No scam-database matches in this period.' },
  );
  horizontalBars(
    page.querySelector('#chart-brands'),
    board.top_brands.map((b) => ({ label: b.name, value: b.tasks, note: tasks(b.tasks), className: 'bar fill-suspicious' })),
    { title: 'Brands impersonated', empty: 'No brand impersonated in this period.' },
  );
  horizontalBars(
    page.querySelector('#chart-reasons'),
    board.top_reasons.map((r) => ({ label: codeName(r.name), value: r.tasks, note: tasks(r.tasks) })),
    { title: 'What verdicts rested on' },
  );
  horizontalBars(
    page.querySelector('#chart-tools'),
    board.tools
      .filter((t) => t.p95_ms !== null)
      .map((t) => ({
        label: `${toolName(t.tool)}${t.failed ? ` · ${t.failed} failed` : ''}`,
        value: t.p95_ms,
        inner: t.p50_ms,
        note: `${millis(t.p50_ms)} / ${millis(t.p95_ms)}`,
        className: t.failed ? 'bar fill-scam-light' : 'bar',
      })),
    { title: 'Tool latency: median inside the 95th percentile', empty: 'No tool answered in this period.' },
  );
}

function tasks(count) {
  return `${count} task${count === 1 ? '' : 's'}`;
}
