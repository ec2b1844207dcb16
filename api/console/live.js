// Live progress of one task over the one-task WebSocket: the stepper, a progress bar and every
// message in order (folded away under the stepper).

import { h } from './dom.js';
import { progressUrl, refuseToken } from './http.js';
import { createStepper } from './stepper.js';
import { stepName, toolName } from './words.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const REFUSED = { 4401: 'your token was not accepted', 4403: 'your token does not allow this' };
const MAX_RETRIES = 5;

/** The progress panel's drawing: the stepper, the bar and the message list. */
export function progressView(panel) {
  const bar = panel.querySelector('#progress');
  const label = panel.querySelector('#progress-label');
  const steps = panel.querySelector('#steps');
  const stepper = createStepper(panel.querySelector('#stepper'), panel.querySelector('#current-tool'));
  let percent = 0;
  return {
    setPercent(value) {
      percent = Math.max(percent, Number(value) || 0);
      bar.value = percent;
      label.textContent = `${percent} %`;
    },
    add(message) {
      if (message.percent !== undefined) this.setPercent(message.percent);
      stepper.update(message);
      steps.append(
        h(
          'li',
          { class: message.error ? 'step error' : 'step', dataset: { step: message.step } },
          h('span', { class: 'step-name' }, stepName(message.step)),
          message.tool ? h('span', { class: 'tool' }, toolName(message.tool)) : null,
          h('span', { class: 'msg' }, message.message),
          message.error ? h('span', { class: 'flag' }, 'error') : null,
        ),
      );
      panel.querySelector('#steps-count').textContent = String(steps.children.length);
    },
  };
}

/**
 * Follow `taskId`, drawing into `panel` (the #live section). `onMessage(message)` runs for each
 * event drawn; `onEnd(message)` once, on the task's completed / failed / cancelled message.
 * Returns a function that stops following.
 */
export function followProgress(taskId, panel, onEnd, onMessage = () => {}) {
  const view = progressView(panel);
  const state = panel.querySelector('#live-state');
  let lastSeq = 0;
  let stopped = false;
  let retries = 0;
  let socket = null;

  const show = (text) => {
    state.textContent = text;
  };

  const open = () => {
    socket = new WebSocket(progressUrl(taskId, lastSeq));
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.heartbeat) return;
      if (message.step === 'connected') {
        retries = 0;
        show('live');
        return;
      }
      if (message.seq === undefined) {
        show(`error: ${message.message}`); // refused before any event: unknown task, bad token
        return;
      }
      if (message.seq <= lastSeq) return; // a duplicate after a reconnect
      lastSeq = message.seq;
      view.add(message);
      onMessage(message);
      if (TERMINAL.has(message.step)) {
        stopped = true;
        show(stepName(message.step).toLowerCase());
        onEnd(message);
      }
    };
    socket.onclose = (event) => {
      if (stopped) return;
      if (REFUSED[event.code]) {
        if (event.code === 4401) refuseToken();
        show(`closed: ${REFUSED[event.code]} (${event.code})`);
        return;
      }
      if (event.code >= 4000) {
        show(`closed (${event.code}): ${event.reason}`);
        return;
      }
      // An idle timeout or a dropped connection: resume after the last seq we drew.
      if (retries >= MAX_RETRIES) {
        show('disconnected; reload the page to try again');
        return;
      }
      retries += 1;
      show(`reconnecting (${retries})…`);
      setTimeout(() => stopped || open(), 500 * retries);
    };
  };

  panel.hidden = false;
  show('connecting…');
  open();
  return () => {
    stopped = true;
    if (socket) socket.close(1000);
  };
}
