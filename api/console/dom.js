// Building the page from data. Values always go in as text (never as HTML): the messages under
// analysis are written by scammers.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A fresh copy of a <template>'s content. */
export function clone(templateId) {
  const template = document.getElementById(templateId);
  return template.content.firstElementChild.cloneNode(true);
}

/** Set the text of elements by id inside `root`. */
export function setText(root, values) {
  for (const [id, value] of Object.entries(values)) {
    root.querySelector(`#${id}`).textContent = value ?? '—';
  }
}

export function notice(text, kind = 'error') {
  const box = document.getElementById('notice');
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = false;
}

let flashed = null;

/** A notice for the next page: shown once that page is drawn (routing clears notices). */
export function flash(text, kind = 'ok') {
  flashed = { text, kind };
}

export function clearNotice() {
  document.getElementById('notice').hidden = true;
  if (flashed) notice(flashed.text, flashed.kind);
  flashed = null;
}

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** The time of day with milliseconds: the order of events within a second matters here. */
export function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const time = date.toLocaleTimeString([], { hour12: false });
  return `${time}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

export function millis(ms) {
  if (ms === null || ms === undefined) return '';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function fixed(value, digits = 2) {
  return typeof value === 'number' ? value.toFixed(digits) : '—';
}

export function taskHref(taskId, seq) {
  const base = `#/tasks/${encodeURIComponent(taskId)}`;
  return seq === undefined ? base : `${base}/events/${seq}`;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element; attributes as given (presentation attributes, never `style`: the CSP). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** How long ago, in the largest unit that fits: "40 s", "12 min", "3 h", "5 d". */
export function age(iso, now = Date.now()) {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return '—';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
