// The analyst console: sign in with a token, then route by the address's hash:
//   #/                         submit a message
//   #/tasks?verdict=scam&...   the task list, filtered, a page at a time
//   #/tasks/{id}               a task: live progress, verdict, reasons, timeline, reviews
//   #/tasks/{id}/events/{seq}  the same, with the cited event highlighted

import { clearNotice, notice } from './dom.js';
import { api, claims, describe, token } from './http.js';
import { renderTask } from './task.js';
import { renderList, renderSubmit } from './tasks.js';

let generation = 0;
let cleanup = () => {};

function route() {
  cleanup();
  cleanup = () => {};
  clearNotice();
  generation += 1;
  const mine = generation;
  const alive = () => mine === generation; // a slow answer must not draw over a newer page
  const view = document.getElementById('view');
  const [path, query = ''] = window.location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll('nav a')) link.classList.remove('current');

  if (parts[0] === 'tasks' && parts.length >= 2) {
    const seq = parts[2] === 'events' ? Number(parts[3]) : undefined;
    cleanup = renderTask(view, parts[1], Number.isInteger(seq) ? seq : undefined, alive);
  } else if (parts[0] === 'tasks') {
    document.getElementById('nav-tasks').classList.add('current');
    renderList(view, new URLSearchParams(query), alive);
  } else {
    document.getElementById('nav-submit').classList.add('current');
    renderSubmit(view);
  }
}

function showWho() {
  const who = document.getElementById('who');
  const current = token.get();
  if (!current) {
    who.textContent = 'no token';
    return;
  }
  const c = claims(current);
  const parts = c ? [c.sub, c.tenant, c.role || c.roles].filter(Boolean).flat() : [];
  who.textContent = parts.length ? `token: ${parts.join(' · ')}` : 'token set';
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
showWho();
route();
