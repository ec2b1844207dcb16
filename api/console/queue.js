// The triage queue: unreviewed `suspicious` tasks first, then unreviewed `scam`, then the rest,
// newest first within each; each part pages with its own keyset cursor (GET /tasks filters).
// The order drawn is remembered, so `n` on a task page opens the one after it.

import { clone, h, notice, taskHref } from './dom.js';
import { api, describe } from './http.js';
import { emptyRow, taskRow } from './rows.js';

const PAGE = 25;
const ORDER_KEY = 'scamtrail.queue';

const needsReview = (task) =>
  !task.reviewed_verdict && (task.verdict === 'suspicious' || task.verdict === 'scam');

export const SECTIONS = [
  { id: 'suspicious', title: 'Suspicious, not reviewed', filter: { verdict: 'suspicious', reviewed: 'false' } },
  { id: 'scam', title: 'Scam, not reviewed', filter: { verdict: 'scam', reviewed: 'false' } },
  // Everything else: the two parts above are left out of it.
  { id: 'rest', title: 'Everything else', filter: {}, keep: (task) => !needsReview(task) },
];

/** Remember the order tasks were listed in: `n` / `j` on a task page follows it. */
export function rememberOrder(ids) {
  sessionStorage.setItem(ORDER_KEY, JSON.stringify(ids));
}

function rememberedOrder() {
  try {
    const ids = JSON.parse(sessionStorage.getItem(ORDER_KEY) || '[]');
    return Array.isArray(ids) ? ids : [];
  } catch {
    return [];
  }
}

/** The task after (`step` 1) or before (-1) `taskId` in the remembered order; failing that, the
 * head of the queue that is not `taskId`; null when nothing waits for review. */
export async function neighbour(taskId, step = 1) {
  const order = rememberedOrder();
  const at = order.indexOf(taskId);
  if (at >= 0 && order[at + step]) return order[at + step];
  if (step < 0) return null;
  for (const section of SECTIONS.slice(0, 2)) {
    const query = new URLSearchParams({ ...section.filter, limit: '2' });
    const page = await api(`/tasks?${query}`);
    const other = page.tasks.find((t) => t.task_id !== taskId);
    if (other) return other.task_id;
  }
  return null;
}

export function renderQueue(view, alive, keys) {
  const page = clone('queue-view');
  view.replaceChildren(page);
  const order = [];
  const holder = page.querySelector('#queue-sections');
  let selected = -1;

  const rows = () => [...page.querySelectorAll('#queue-sections tr.task')];
  const select = (index) => {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    for (const row of all) row.classList.remove('selected');
    all[selected].classList.add('selected');
    all[selected].scrollIntoView({ block: 'nearest' });
  };
  const open = () => {
    const row = rows()[Math.max(selected, 0)];
    if (row) window.location.hash = taskHref(row.dataset.taskId);
  };
  keys({
    j: { label: 'select the next task', run: () => select(selected + 1) },
    n: { label: 'select the next task', run: () => select(selected + 1) },
    k: { label: 'select the previous task', run: () => select(selected - 1) },
    p: { label: 'select the previous task', run: () => select(selected - 1) },
    Enter: { label: 'open the selected task', run: open },
  });

  const sections = SECTIONS.map((section) => {
    const part = h(
      'section',
      { class: 'queue-part', id: `queue-${section.id}` },
      h('h2', {}, section.title, ' ', h('span', { class: 'count muted' })),
      h(
        'div',
        { class: 'table-box' },
        h('table', { class: 'tasks cards' }, headRow(), h('tbody', { class: 'rows' })),
      ),
      h('button', { type: 'button', class: 'more', hidden: true }, 'More'),
    );
    holder.append(part);
    return { section, part, cursor: null, shown: 0 };
  });

  // Parts load in order, so the remembered order is the order on the page.
  const load = async (entry) => {
    const query = new URLSearchParams({ ...entry.section.filter, limit: String(PAGE) });
    if (entry.cursor) query.set('cursor', entry.cursor);
    const result = await api(`/tasks?${query}`);
    if (!alive()) return;
    const tasks = result.tasks.filter(entry.section.keep || (() => true));
    const body = entry.part.querySelector('tbody');
    if (!entry.cursor) body.replaceChildren();
    body.append(...tasks.map(taskRow));
    entry.shown += tasks.length;
    if (!entry.shown) body.replaceChildren(emptyRow('Nothing here.'));
    entry.part.querySelector('.count').textContent = `(${entry.shown}${result.next_cursor ? '+' : ''})`;
    entry.cursor = result.next_cursor;
    const more = entry.part.querySelector('.more');
    more.hidden = !entry.cursor;
    order.splice(0, order.length, ...rows().map((row) => row.dataset.taskId));
    rememberOrder(order);
  };
  for (const entry of sections) {
    entry.part.querySelector('.more').addEventListener('click', () => {
      load(entry).catch((error) => alive() && notice(describe(error)));
    });
  }
  (async () => {
    for (const entry of sections) await load(entry);
    if (alive()) select(0);
  })().catch((error) => alive() && notice(describe(error)));
}

function headRow() {
  const names = ['Age', 'Task', 'Kind', 'Status', 'Progress', 'Agent', 'Score', 'Final verdict', 'Reviewed'];
  return h('thead', {}, h('tr', {}, names.map((name) => h('th', {}, name))));
}
