// A task as a row of the queue and of the task list: full id, a preview of the content, score
// and age. Below 720 px the table is drawn as stacked cards (console.css), each cell labelled.

import { age, fixed, h, taskHref, when } from './dom.js';

export const COLUMNS = 9;

function cell(label, props, ...children) {
  return h('td', { ...props, dataset: { label, ...(props.dataset || {}) } }, ...children);
}

export function taskRow(task) {
  const verdict = task.final_verdict || '';
  return h(
    'tr',
    { class: 'task', dataset: { taskId: task.task_id, final: verdict } },
    cell('Age', { class: 'time', title: when(task.submitted_at) }, age(task.submitted_at)),
    cell(
      'Task',
      { class: 'task-cell' },
      h('a', { href: taskHref(task.task_id) }, h('code', { class: 'task-id' }, task.task_id)),
      task.content_preview ? h('span', { class: 'preview' }, task.content_preview) : null,
    ),
    cell('Kind', {}, task.kind),
    cell('Status', { class: `status ${task.status}` }, task.status),
    cell('Progress', { class: 'num' }, `${task.percent} %`),
    cell('Agent', { dataset: { verdict: task.verdict || '' } }, task.verdict || '—'),
    cell('Score', { class: 'num score' }, fixed(task.score)),
    cell('Final verdict', { class: 'final-verdict', dataset: { verdict } }, verdict || '—'),
    cell('Reviewed', { class: 'reviewed' }, task.reviewed_verdict ? 'yes' : 'no'),
  );
}

export function emptyRow(text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: String(COLUMNS), class: 'muted' }, text));
}
