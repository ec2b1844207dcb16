// The step-by-step view, for app clients and the console alike: the steps of an analysis with an
// icon for each one's state, the wire's percentages, and the tool at work now. Fed one progress
// message at a time (live, or a finished task's timeline replayed).

import { h, svg } from './dom.js';
import { STAGES, stepName, toolName } from './words.js';

// pending: not reached; active: at work; done; error: a call failed for good; skipped: the
// analysis went past it without calling it (no phone number, no link).
const ICONS = {
  pending: () => svg('circle', { cx: 12, cy: 12, r: 8, class: 'ring' }),
  active: () => [
    svg('circle', { cx: 12, cy: 12, r: 8, class: 'ring' }),
    svg('circle', { cx: 12, cy: 12, r: 4, class: 'dot' }),
  ],
  done: () => [
    svg('circle', { cx: 12, cy: 12, r: 9, class: 'disc' }),
    svg('path', { d: 'M7.5 12.5l3 3 6-6.5', class: 'mark' }),
  ],
  error: () => [
    svg('circle', { cx: 12, cy: 12, r: 9, class: 'disc' }),
    svg('path', { d: 'M8.5 8.5l7 7M15.5 8.5l-7 7', class: 'mark' }),
  ],
  skipped: () => svg('path', { d: 'M6 12h12', class: 'ring' }),
};
const WORDS = { pending: 'waiting', active: 'at work', done: 'done', error: 'failed', skipped: 'not needed' };

function icon(state) {
  return svg('svg', { viewBox: '0 0 24 24', width: 24, height: 24, 'aria-hidden': 'true', class: 'icon' }, ICONS[state]());
}

/** Draw the stepper into `list` (an <ol>) and `now` (where the current tool is named). */
export function createStepper(list, now) {
  const states = new Map(STAGES.map((s) => [s.step, 'pending']));
  const items = new Map();
  list.replaceChildren(
    ...STAGES.map((stage) => {
      const item = h(
        'li',
        { class: 'stage', dataset: { stage: stage.step, state: 'pending' } },
        icon('pending'),
        h('span', { class: 'stage-label' }, stage.label),
        h('span', { class: 'stage-percent' }, `${stage.percent} %`),
        h('span', { class: 'stage-state' }, WORDS.pending),
      );
      items.set(stage.step, item);
      return item;
    }),
  );

  const set = (step, state) => {
    const item = items.get(step);
    if (!item || states.get(step) === state) return;
    states.set(step, state);
    item.dataset.state = state;
    item.querySelector('svg').replaceWith(icon(state));
    item.querySelector('.stage-state').textContent = WORDS[state];
  };
  const index = (step) => STAGES.findIndex((s) => s.step === step);

  /** Take in one progress message (the wire's fields: step, tool, message, event_type, data). */
  const update = (message) => {
    const at = index(message.step);
    const type = message.event_type;
    // Reading the message ends when any later step starts; a tool step ends with its answer.
    if (at > 0 && states.get('entity_extraction') === 'active') set('entity_extraction', 'done');
    if (at >= 0 && states.get(message.step) === 'pending') set(message.step, 'active');
    if (type === 'ToolCallStarted' || (type === 'ToolCallFailed' && message.data?.will_retry)) {
      if (at >= 0) set(message.step, 'active');
    } else if (type === 'ToolCallCompleted' || type === 'VerdictReached') {
      set(message.step, 'done');
    } else if (type === 'ToolCallFailed' || type === 'TaskFailed') {
      set(message.step, 'error');
    }
    if (message.step === 'completed') {
      for (const stage of STAGES) {
        const state = states.get(stage.step);
        if (state === 'active') set(stage.step, 'done');
        if (state === 'pending') set(stage.step, 'skipped');
      }
      set('completed', 'done');
    }
    if (message.step === 'failed' || message.step === 'cancelled') {
      for (const stage of STAGES) if (states.get(stage.step) === 'active') set(stage.step, 'error');
    }
    if (now) {
      const tool = message.tool ? `${toolName(message.tool)} · ` : '';
      now.replaceChildren(
        h('strong', {}, stepName(message.step)),
        ' — ',
        tool,
        message.message || '',
      );
    }
  };
  return { update };
}
