// The task page. It leads with the verdict and its reasons (each linked to the events it
// cites); then the message, the progress (live while it runs, folded away once done), the
// evidence as people read it, reviews, and the full timeline. Review from the keyboard: `c`
// confirms, `o` then 1/2/3 overrides, and the next task of the queue opens.

import { clock, clone, fixed, flash, h, millis, notice, setText, taskHref, when } from './dom.js';
import { evidenceCards } from './evidence.js';
import { api, describe } from './http.js';
import { followProgress, progressView } from './live.js';
import { neighbour } from './queue.js';
import { codeName, eventName, stepName, toolName } from './words.js';

const FINISHED = new Set(['completed', 'failed', 'cancelled']);
const TIMELINE_PAGE = 1000;
const VERDICTS = ['scam', 'suspicious', 'safe'];

/** Render task `taskId` into `view`; highlight event `focusSeq` if given. Returns a cleanup. */
export function renderTask(view, taskId, focusSeq, alive, keys) {
  const page = clone('task-view');
  view.replaceChildren(page);
  setText(page, { 'task-id': taskId });
  const panel = page.querySelector('#live');
  let stop = () => {};
  let verdict = null;

  const refresh = async (focus) => {
    const [task, audit, timeline] = await Promise.all([
      api(`/tasks/${encodeURIComponent(taskId)}`),
      api(`/tasks/${encodeURIComponent(taskId)}/audit`),
      readTimeline(taskId),
    ]);
    if (!alive()) return null;
    verdict = audit.verdict;
    showFacts(page, task, timeline);
    const summary = clone('verdict-view');
    showVerdict(summary, taskId, audit);
    summary.querySelector('#override-picker').addEventListener('click', (event) => {
      const choice = event.target.closest('button[data-verdict]');
      if (choice) review('override', choice.dataset.verdict);
    });
    page.querySelector('#summary').replaceChildren(summary);
    const details = clone('details-view');
    showEvidence(details, taskId, audit, timeline);
    showTimeline(details, timeline);
    reviewForm(details, taskId, () => refresh().catch(failed));
    page.querySelector('#details').replaceChildren(details);
    if (focus !== undefined) highlight(focus);
    return { task, timeline };
  };

  const failed = (error) => alive() && notice(describe(error));

  // A review from the keyboard lands, then the next task opens. It carries whatever note the
  // analyst typed into the review form first (Escape leaves the field, then c or o).
  const review = async (decision, chosen) => {
    picker(false);
    if (!verdict) {
      notice('There is no verdict to review yet.');
      return;
    }
    const note = page.querySelector('#review-note')?.value.trim() ?? '';
    const body = { decision, note };
    if (decision === 'override') body.verdict = chosen;
    try {
      await api(`/tasks/${encodeURIComponent(taskId)}/reviews`, { method: 'POST', body });
    } catch (error) {
      failed(error);
      return;
    }
    const did = decision === 'confirm' ? `confirmed ${verdict.final}` : `overridden as ${chosen}`;
    await openNeighbour(taskId, 1, `Review recorded: ${did}.`).catch(failed);
  };
  const picker = (open) => {
    const box = page.querySelector('#override-picker');
    if (box) box.hidden = !open;
  };
  const pickerOpen = () => page.querySelector('#override-picker')?.hidden === false;
  const choose = (index) => () => pickerOpen() && review('override', VERDICTS[index]);
  keys({
    c: { label: 'confirm the verdict (with the note typed below), then open the next task', run: () => review('confirm') },
    o: { label: 'override: then 1 scam, 2 suspicious, 3 safe', run: () => (verdict ? picker(true) : review('override')) },
    1: { label: 'after o: override as scam', run: choose(0) },
    2: { label: 'after o: override as suspicious', run: choose(1) },
    3: { label: 'after o: override as safe', run: choose(2) },
    Escape: { label: 'close the override choice', run: () => picker(false) },
    n: { label: 'the next task in the queue', run: () => openNeighbour(taskId, 1).catch(failed) },
    j: { label: 'the next task in the queue', run: () => openNeighbour(taskId, 1).catch(failed) },
    k: { label: 'the previous task', run: () => openNeighbour(taskId, -1).catch(failed) },
    p: { label: 'the previous task', run: () => openNeighbour(taskId, -1).catch(failed) },
  });

  (async () => {
    const task = await api(`/tasks/${encodeURIComponent(taskId)}`);
    if (!alive()) return;
    showFacts(page, task, []);
    if (FINISHED.has(task.status)) {
      const shown = await refresh(focusSeq);
      if (shown) replay(panel, shown.task, shown.timeline);
    } else {
      const running = (message) => {
        if (message.event_type !== 'TaskSubmitted' && !FINISHED.has(message.step)) {
          setText(page, { 'task-status': 'running' });
        }
      };
      const done = () => {
        panel.open = false; // the verdict and its reasons move up into view
        refresh(focusSeq).catch(failed);
      };
      stop = followProgress(taskId, panel, done, running);
      const first = await readTimeline(taskId, 1);
      if (alive()) showContent(page, first);
    }
  })().catch(failed);

  return () => stop();
}

async function openNeighbour(taskId, step, done) {
  const next = await neighbour(taskId, step);
  if (next) {
    if (done) flash(`${done} Next task.`, 'ok');
    window.location.hash = taskHref(next);
  } else if (step > 0) {
    flash(`${done ? `${done} ` : ''}Nothing left to review.`, 'ok');
    window.location.hash = '#/queue';
  } else {
    notice('This is the first task of the queue.', 'ok');
  }
}

/** A finished task's progress, drawn from its timeline, folded away. */
function replay(panel, task, timeline) {
  const view = progressView(panel);
  for (const entry of timeline) view.add({ ...entry, percent: undefined });
  view.setPercent(task.percent);
  panel.querySelector('#live-state').textContent = stepName(task.status).toLowerCase();
  panel.open = false;
  panel.hidden = false;
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

function evidenceLink(taskId, seq, text, className = 'evidence') {
  return h(
    'a',
    {
      class: className,
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

function showVerdict(summary, taskId, audit) {
  const verdict = audit.verdict;
  setText(summary, {
    'final-verdict': verdict ? verdict.final : 'no verdict yet',
    'agent-verdict': verdict && verdict.agent,
    score: verdict ? fixed(verdict.score) : null,
    confidence: verdict ? fixed(verdict.confidence) : null,
    reviewed: verdict ? (verdict.reviewed ? 'yes' : 'no') : null,
  });
  if (verdict) {
    summary.querySelector('#final-verdict').dataset.verdict = verdict.final;
    summary.querySelector('#agent-verdict').dataset.verdict = verdict.agent;
    summary.querySelector('#score-meter').value = verdict.score;
  }
  summary.querySelector('.key-hint').hidden = !verdict;
  const reasons = audit.reasons.map((reason) =>
    h(
      'li',
      { class: reason.weight > 0 ? 'reason' : 'reason quiet', dataset: { code: reason.code } },
      h('span', { class: 'reason-text' }, reason.text),
      h(
        'span',
        { class: 'reason-meta' },
        h('span', { class: 'weight', title: 'how much it moved the score' }, `+${fixed(reason.weight)}`),
        h('code', { class: 'muted' }, reason.code),
        reason.evidence.map((cited) =>
          evidenceLink(taskId, cited.seq, `#${cited.seq} ${toolName(cited.tool) || eventName(cited.event_type)}`),
        ),
      ),
    ),
  );
  summary
    .querySelector('#reasons')
    .replaceChildren(...(reasons.length ? reasons : [h('li', { class: 'muted' }, 'No verdict yet.')]));
}

function showEvidence(details, taskId, audit, timeline) {
  const cards = evidenceCards(timeline, (seq, text) => evidenceLink(taskId, seq, text, 'cite'));
  details
    .querySelector('#evidence')
    .replaceChildren(...(cards.length ? cards : [h('p', { class: 'muted' }, 'No tool was called.')]));

  const entities = audit.entities.map((e) =>
    h(
      'li',
      {},
      h('span', { class: 'kind' }, e.kind),
      ' ',
      e.kind === 'signal' ? codeName(e.value) : h('code', {}, e.value),
      e.details && e.details.brand ? ` (${e.details.brand})` : '',
    ),
  );
  details
    .querySelector('#entities')
    .replaceChildren(...(entities.length ? entities : [h('li', { class: 'muted' }, 'None found.')]));

  const failures = audit.tool_failures.map((f) =>
    h(
      'li',
      { class: 'error' },
      `${toolName(f.tool)} (${stepName(f.step)}) failed ${f.attempts}×${f.timed_out ? ', timed out' : ''}: `,
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
  details.querySelector('#review-form').hidden = !audit.verdict;
}

function showTimeline(details, timeline) {
  const rows = timeline.map((e) =>
    h(
      'tr',
      { id: `ev-${e.seq}`, class: e.error ? 'error' : null, tabindex: '-1' },
      h('td', { class: 'num', dataset: { label: 'Seq' } }, String(e.seq)),
      h('td', { class: 'time', title: e.recorded_at, dataset: { label: 'Time' } }, clock(e.recorded_at)),
      h('td', { dataset: { label: 'Step' } }, stepName(e.step)),
      h('td', { dataset: { label: 'Tool' } }, toolName(e.tool)),
      h(
        'td',
        { class: 'message', dataset: { label: 'Message' } },
        e.message,
        h('details', {}, h('summary', {}, e.event_type), h('pre', {}, JSON.stringify(e.data, null, 2))),
      ),
      h('td', { class: 'num', dataset: { label: 'Duration' } }, millis(e.duration_ms)),
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
