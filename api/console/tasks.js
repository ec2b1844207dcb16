// Submitting a message, and the task list with its filters and pages.

import { clone, h, notice, taskHref, when } from './dom.js';
import { api, describe } from './http.js';

const FILTERS = ['status', 'verdict', 'reviewed', 'q'];
const PAGE_SIZE = '25';

export function renderSubmit(view) {
  const page = clone('submit-view');
  view.replaceChildren(page);
  const form = page.querySelector('#submit-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('#submit-button');
    button.disabled = true;
    try {
      const accepted = await api('/tasks', {
        method: 'POST',
        body: { content: form.querySelector('#content').value, kind: form.querySelector('#kind').value },
      });
      window.location.hash = taskHref(accepted.task_id);
    } catch (error) {
      notice(describe(error));
      button.disabled = false;
    }
  });
  page.querySelector('#content').focus();
}

/** The list for the filters (and cursor) in `params`, a URLSearchParams from the address. */
export function renderList(view, params, alive) {
  const page = clone('list-view');
  view.replaceChildren(page);
  const form = page.querySelector('#filters');
  for (const name of FILTERS) form.elements[name].value = params.get(name) || '';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    window.location.hash = listHref(new FormData(form));
  });

  const query = new URLSearchParams();
  for (const name of [...FILTERS, 'cursor', 'limit']) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  page.querySelector('#first-page').href = listHref(query, false);
  const request = new URLSearchParams(query);
  if (!request.has('limit')) request.set('limit', PAGE_SIZE);
  api(`/tasks?${request}`)
    .then((result) => {
      if (!alive()) return;
      const rows = result.tasks.map(taskRow);
      const empty = h('tr', {}, h('td', { colspan: '8', class: 'muted' }, 'No tasks.'));
      page.querySelector('#task-rows').replaceChildren(...(rows.length ? rows : [empty]));
      const next = page.querySelector('#next-page');
      if (result.next_cursor) {
        query.set('cursor', result.next_cursor);
        next.href = listHref(query);
        next.hidden = false;
      }
    })
    .catch((error) => alive() && notice(describe(error)));
}

function listHref(values, withCursor = true) {
  const params = new URLSearchParams();
  for (const name of [...FILTERS, 'limit', ...(withCursor ? ['cursor'] : [])]) {
    const value = values.get(name);
    if (value) params.set(name, value);
  }
  const text = params.toString();
  return text ? `#/tasks?${text}` : '#/tasks';
}

function taskRow(task) {
  return h(
    'tr',
    { class: 'task', dataset: { taskId: task.task_id } },
    h('td', {}, when(task.submitted_at)),
    h('td', {}, h('a', { href: taskHref(task.task_id) }, h('code', { title: task.task_id }, task.task_id.slice(0, 8)))),
    h('td', {}, task.kind),
    h('td', { class: `status ${task.status}` }, task.status),
    h('td', { class: 'num' }, `${task.percent} %`),
    h('td', {}, task.verdict || '—'),
    h('td', { class: 'final-verdict', dataset: { verdict: task.final_verdict || '' } },
      task.final_verdict || '—'),
    h('td', {}, task.reviewed_verdict ? 'yes' : 'no'),
  );
}
