// The keyboard: a few keys everywhere, and the keys of the page on screen (set by each view).
// `?` lists them. Keys typed into a field are the field's, never a command; Escape leaves the field.

import { h } from './dom.js';

const GLOBAL = {
  '?': { label: 'show these keys', run: () => showHelp() },
  q: { label: 'the triage queue', run: () => go('#/queue') },
  t: { label: 'the task list', run: () => go('#/tasks') },
  d: { label: 'the dashboard', run: () => go('#/dashboard') },
  a: { label: 'analyse a message', run: () => go('#/') },
};
let pageKeys = {};

function go(hash) {
  window.location.hash = hash;
}

/** The current page's keys (replacing the previous page's). */
export function setPageKeys(keys) {
  pageKeys = keys || {};
}

function typing(target) {
  return target instanceof Element && Boolean(target.closest('input, textarea, select, [contenteditable]'));
}

function showHelp() {
  const dialog = document.getElementById('keys-help');
  // Keys that do the same thing share a line: "j n  select the next task".
  const list = (keys) => {
    const byLabel = new Map();
    for (const [key, { label }] of Object.entries(keys)) {
      byLabel.set(label, [...(byLabel.get(label) || []), key]);
    }
    return [...byLabel].map(([label, names]) =>
      h('li', {}, h('span', { class: 'key-names' }, names.map((name) => h('kbd', {}, name))), label),
    );
  };
  dialog.querySelector('#keys-page').replaceChildren(...list(pageKeys));
  dialog.querySelector('#keys-global').replaceChildren(...list(GLOBAL));
  dialog.querySelector('#keys-page-title').hidden = !Object.keys(pageKeys).length;
  if (!dialog.open) dialog.showModal();
}

export function installKeys() {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    // Escape leaves a field, so the page's keys work again (a note typed, then c to confirm).
    if (typing(event.target) && event.key === 'Escape') {
      event.target.blur();
      return;
    }
    if (typing(event.target) || document.getElementById('keys-help').open) return;
    // Enter on a link or a button of the page is that element's own.
    const own = event.target instanceof Element && event.target.closest('#view a, #view button');
    if (event.key === 'Enter' && own) return;
    const action = pageKeys[event.key] || GLOBAL[event.key];
    if (!action) return;
    event.preventDefault();
    action.run();
  });
  document.getElementById('keys-close').addEventListener('click', () => {
    document.getElementById('keys-help').close();
  });
}
