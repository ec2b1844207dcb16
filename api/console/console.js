// The analyst console: sign in with a token, then route by the address's hash:
//   #/                         submit a message
//   #/queue                    the triage queue: unreviewed suspicious, then scam, then the rest
//   #/tasks?verdict=scam&...   the task list, filtered, a page at a time
//   #/tasks/{id}               a task: verdict and reasons, progress, evidence, reviews, timeline
//   #/tasks/{id}/events/{seq}  the same, with the cited event highlighted
//   #/dashboard?days=7         charts of the tenant's last days

import { renderDashboard } from './dashboard.js';
import { clearNotice, notice } from './dom.js';
import { TOKEN_REFUSED, api, claims, describe, token } from './http.js';
import { installKeys, setPageKeys } from './keys.js';
import { renderQueue } from './queue.js';
import { renderTask } from './task.js';
import { renderList, renderSubmit } from './tasks.js';

let generation = 0;
let cleanup = () => {};

function route() {
  cleanup();
  cleanup = () => {};
  setPageKeys({});
  clearNotice();
  generation += 1;
  const mine = generation;
  const alive = () => mine === generation; // a slow answer must not draw over a newer page
  const keys = (map) => alive() && setPageKeys(map);
  const view = document.getElementById('view');
  const [path, query = ''] = window.location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  for (const link of document.querySelectorAll('nav a')) link.classList.remove('current');
  const current = (id) => document.getElementById(id).classList.add('current');

  if (parts[0] === 'tasks' && parts.length >= 2) {
    const seq = parts[2] === 'events' ? Number(parts[3]) : undefined;
    cleanup = renderTask(view, parts[1], Number.isInteger(seq) ? seq : undefined, alive, keys);
  } else if (parts[0] === 'tasks') {
    current('nav-tasks');
    renderList(view, params, alive);
  } else if (parts[0] === 'queue') {
    current('nav-queue');
    renderQueue(view, alive, keys);
  } else if (parts[0] === 'dashboard') {
    current('nav-dashboard');
    cleanup = renderDashboard(view, params, alive);
  } else {
    current('nav-submit');
    renderSubmit(view);
  }
}

function showWho() {
  const who = document.getElementById('who');
  const current = token.get();
  document.getElementById('login').dataset.signedIn = current ? 'yes' : 'no';
  if (!current) {
    who.textContent = 'not signed in';
    return;
  }
  const c = claims(current);
  const parts = c ? [c.sub, c.tenant, c.role || c.roles].filter(Boolean).flat() : [];
  who.textContent = parts.length ? parts.join(' · ') : 'token set';
}

async function useToken(event) {
  event.preventDefault();
  const input = document.getElementById('token');
  const value = input.value.trim();
  if (!value) return;
  token.set(value);
  input.value = '';
  showWho();
  try {
    await api('/tasks?limit=1'); // check it now rather than on the next click
    // The sign-in form hides now: its focused button must not keep the keyboard's keys.
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    route();
    notice('Token accepted.', 'ok');
  } catch (error) {
    notice(describe(error));
  }
}

function forgetToken() {
  token.clear();
  showWho();
  notice('Token forgotten.', 'ok');
}

document.getElementById('login').addEventListener('submit', useToken);
document.getElementById('logout').addEventListener('click', forgetToken);
window.addEventListener('hashchange', route);
window.addEventListener(TOKEN_REFUSED, showWho);
installKeys();
showWho();
route();
