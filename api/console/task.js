// The task page: live progress while it runs, then the verdict with its reasons linked to the
// events they cite, entities, tool failures, reviews (and the review form), the full timeline.

import { clock, clone, fixed, h, millis, notice, setText, taskHref, when } from './dom.js';
import { api, describe } from './http.js';
import { followProgress } from './live.js';

const FINISHED = new Set(['completed', 'failed', 'cancelled']);
const TIMELINE_PAGE = 1000;

/** Render task `taskId` into `view`; highlight event `focusSeq` if given. Returns a cleanup. */
export function renderTask(view, taskId, focusSeq, alive) {
  const page = clone('task-view');
  view.replaceChildren(page);
  setText(page, { 'task-id': taskId });
  let stop = () => {};

  const refresh = async (focus) => {
    const [task, audit, timeline] = await Promise.all([
      api(`/tasks/${encodeURIComponent(taskId)}`),
      api(`/tasks/${encodeURIComponent(taskId)}/audit`),
      readTimeline(taskId),
    ]);
    if (!alive()) return;
    showFacts(page, task, timeline);
    const details = clone('details-view');
    showVerdict(details, taskId, audit);
    showTimeline(details, timeline);
    reviewForm(details, taskId, () => refresh().catch(failed));
    page.querySelector('#details').replaceChildren(details);
    if (focus !== undefined) highlight(focus);
  };

  const failed = (error) => alive() && notice(describe(error));

  (async () => {
    const task = await api(`/tasks/${encodeURIComponent(taskId)}`);
    if (!alive()) return;
    showFacts(page, task, []);
    if (FINISHED.has(task.status)) {
      await refresh(focusSeq);
    } else {
      stop = followProgress(taskId, page.querySelector('#live'), () => {
        refresh(focusSeq).catch(failed);
      });
      const first = await readTimeline(taskId, 1);
      if (alive()) showContent(page, first);
    }
  })().catch(failed);

  return () => stop();
}

async function readTimeline(taskId, limit = TIMELINE_PAGE) {
  const events = [];
  let after = 0;
  for (;;) {
    const path = `/tasks/${encodeURIComponent(taskId)}/timeline?after=${after}&limit=${limit}`;
    const page = await api(path);
    events.push(...page.events);
    if (page.next_after === null || limit < TIMELINE_PAGE) return events;
    after = page.next_after;
  }
}

function showFacts(page, task, timeline) {
  setText(page, {
    'task-status': task.status,
    'task-kind': task.kind,
    'task-submitted': when(task.submitted_at),
    'task-duration': task.duration_ms === null ? '—' : millis(task.duration_ms),
  });
  if (timeline.length) showContent(page, timeline);
}

function showContent(page, timeline) {
  const submitted = timeline.find((e) => e.event_type === 'TaskSubmitted');
  if (submitted) page.querySelector('#task-content').textContent = submitted.data.content;
}

function evidenceLink(taskId, seq, text) {
  return h(
    'a',
    {
      class: 'evidence',
      href: taskHref(taskId, seq),
      dataset: { seq: String(seq) },
      onclick: (event) => {
        event.preventDefault();
        // replaceState: the address names the cited event without re-rendering the page.
        history.replaceState(null, '', taskHref(taskId, seq));
        highlight(seq);
      },
    },
    text,
  );
}

function highlight(seq) {
  for (const row of document.querySelectorAll('#timeline tr.highlight')) {
    row.classList.remove('highlight');
  }
  const row = document.getElementById(`ev-${seq}`);
  if (!row) return;
  row.classList.add('highlight');
  row.scrollIntoView({ block: 'center' });
  row.focus({ preventScroll: true });
}

function showVerdict(details, taskId, audit) {
  const verdict = audit.verdict;
  setText(details, {
    'final-verdict': verdict && verdict.final,
    'agent-verdict': verdict && verdict.agent,
    score: verdict ? fixed(verdict.score) : null,
    confidence: verdict ? fixed(verdict.confidence) : null,
    reviewed: verdict ? (verdict.reviewed ? 'yes' : 'no') : null,
  });
  for (const id of ['final-verdict', 'agent-verdict']) {
    const tag = details.querySelector(`#${id}`);
    if (verdict) tag.dataset.verdict = id === 'final-verdict' ? verdict.final : verdict.agent;
  }
  const reasons = audit.reasons.map((reason) =>
    h(
      'tr',
      { class: 'reason', dataset: { code: reason.code } },
      h('td', {}, reason.text, ' ', h('code', { class: 'muted' }, reason.code)),
      h('td', { class: 'num' }, fixed(reason.weight)),
      h(
        'td',
        {},
        reason.evidence.map((cited) =>
          evidenceLink(taskId, cited.seq, `#${cited.seq} ${cited.tool || cited.event_type}`),
        ),
      ),
    ),
  );
  details
    .querySelector('#reasons')
    .replaceChildren(...(reasons.length ? reasons : [emptyRow(3, 'No verdict yet.')]));

  const entities = audit.entities.map((e) =>
    h('li', {}, h('span', { class: 'kind' }, e.kind), ' ', h('code', {}, e.value)),
  );
  details
    .querySelector('#entities')
    .replaceChildren(...(entities.length ? entities : [h('li', { class: 'muted' }, 'None found.')]));

  const failures = audit.tool_failures.map((f) =>
    h(
      'li',
      { class: 'error' },
      `${f.tool} (${f.step}) failed ${f.attempts}×${f.timed_out ? ', timed out' : ''}: `,
      f.last_error,
      ' — ',
      f.effect,
      ' ',
      f.seqs.map((seq) => evidenceLink(taskId, seq, `#${seq}`)),
    ),
  );
  details
    .querySelector('#tool-failures')
    .replaceChildren(...(failures.length ? failures : [h('li', { class: 'muted' }, 'None.')]));

  const reviews = audit.reviews.map((r) =>
    h(
      'li',
      { class: 'review', dataset: { seq: String(r.seq) } },
      h('strong', {}, r.decision === 'confirm' ? 'Confirmed' : 'Overridden'),
      ` as ${r.verdict} by ${r.reviewer}, ${when(r.recorded_at)}`,
      r.note ? h('p', { class: 'note' }, r.note) : null,
    ),
  );
  details
    .querySelector('#reviews')
    .replaceChildren(...(reviews.length ? reviews : [h('li', { class: 'muted' }, 'No reviews yet.')]));
  details.querySelector('#review-form').hidden = !verdict;
}

function showTimeline(details, timeline) {
  const rows = timeline.map((e) =>
    h(
      'tr',
      { id: `ev-${e.seq}`, class: e.error ? 'error' : null, tabindex: '-1' },
      h('td', { class: 'num' }, String(e.seq)),
      h('td', { class: 'time', title: e.recorded_at }, clock(e.recorded_at)),
      h('td', {}, e.step),
      h('td', {}, e.tool || ''),
      h(
        'td',
        {},
        e.message,
        h(
          'details',
          {},
          h('summary', {}, e.event_type),
          h('pre', {}, JSON.stringify(e.data, null, 2)),
        ),
      ),
      h('td', { class: 'num' }, millis(e.duration_ms)),
    ),
  );
  details.querySelector('#timeline').replaceChildren(...rows);
}

function reviewForm(details, taskId, reload) {
  const form = details.querySelector('#review-form');
  const select = form.querySelector('#review-verdict');
  form.addEventListener('change', () => {
    select.disabled = form.elements.decision.value !== 'override';
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const decision = form.elements.decision.value;
    const body = { decision, note: form.elements.note.value };
    if (decision === 'override') body.verdict = select.value;
    const button = form.querySelector('#review-submit');
    button.disabled = true;
    try {
      await api(`/tasks/${encodeURIComponent(taskId)}/reviews`, { method: 'POST', body });
      notice('Review recorded.', 'ok');
      reload();
    } catch (error) {
      notice(describe(error));
      button.disabled = false;
    }
  });
}

function emptyRow(columns, text) {
  return h('tr', {}, h('td', { colspan: String(columns), class: 'muted' }, text));
}
