// Live progress of one task over the seed's WebSocket: a progress bar and the list of steps.

import { h } from './dom.js';
import { progressUrl } from './http.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const REFUSED = { 4401: 'your token was not accepted', 4403: 'your token does not allow this' };
const MAX_RETRIES = 5;

/**
 * Follow `taskId`, drawing into `panel` (the #live section). `onEnd(message)` runs once, on the
 * task's completed / failed / cancelled message. Returns a function that stops following.
 */
export function followProgress(taskId, panel, onEnd) {
  const bar = panel.querySelector('#progress');
  const label = panel.querySelector('#progress-label');
  const steps = panel.querySelector('#steps');
  const state = panel.querySelector('#live-state');
  let lastSeq = 0;
  let percent = 0;
  let stopped = false;
  let retries = 0;
  let socket = null;

  const show = (text) => {
    state.textContent = text;
  };

  const add = (message) => {
    percent = Math.max(percent, Number(message.percent) || 0);
    bar.value = percent;
    label.textContent = `${percent} %`;
    const item = h(
      'li',
      { class: message.error ? 'step error' : 'step', dataset: { step: message.step } },
      h('span', { class: 'step-name' }, message.step),
      message.tool ? h('span', { class: 'tool' }, message.tool) : null,
      h('span', { class: 'msg' }, message.message),
      message.error ? h('span', { class: 'flag' }, 'error') : null,
    );
    steps.append(item);
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
      add(message);
      if (TERMINAL.has(message.step)) {
        stopped = true;
        show(message.step);
        onEnd(message);
      }
    };
    socket.onclose = (event) => {
      if (stopped) return;
      if (REFUSED[event.code]) {
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
