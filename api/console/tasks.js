// Submitting a message, and the task list with its filters and pages.

import { clone, notice, taskHref } from './dom.js';
import { api, describe } from './http.js';
import { emptyRow, taskRow } from './rows.js';

const FILTERS = ['status', 'verdict', 'reviewed', 'q'];
const PAGE_SIZE = '25';
// What the analyst typed, kept until it is submitted: signing in (or a refused token) redraws
// the page, and the text must survive that.
const DRAFT_KEY = 'scamtrail.draft';

function readDraft() {
  try {
    return JSON.parse(sessionStorage.getItem(DRAFT_KEY) || '{}') || {};
  } catch {
    return {};
  }
}

export function renderSubmit(view) {
  const page = clone('submit-view');
  view.replaceChildren(page);
  const form = page.querySelector('#submit-form');
  const draft = readDraft();
  if (typeof draft.content === 'string') form.querySelector('#content').value = draft.content;
  if (draft.kind) form.querySelector('#kind').value = draft.kind;
  form.addEventListener('input', () => {
    const content = form.querySelector('#content').value;
    const kind = form.querySelector('#kind').value;
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ content, kind }));
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('#submit-button');
    button.disabled = true;
    try {
      const accepted = await api('/tasks', {
        method: 'POST',
        body: { content: form.querySelector('#content').value, kind: form.querySelector('#kind').value },
      });
      sessionStorage.removeItem(DRAFT_KEY);
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
      page.querySelector('#task-rows').replaceChildren(...(rows.length ? rows : [emptyRow('No tasks.')]));
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
