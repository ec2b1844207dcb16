// Talking to the api: the token on every request and on the WebSocket URL, errors as text.

const TOKEN_KEY = 'scamtrail.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// Sent on `window` when the api refused the stored token: it is forgotten, not kept for the
// next request to fail again.
export const TOKEN_REFUSED = 'scamtrail:token-refused';

export function refuseToken() {
  token.clear();
  window.dispatchEvent(new Event(TOKEN_REFUSED));
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'the server did not answer');
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401 && bearer) refuseToken();
  if (!response.ok) throw new ApiError(response.status, detailOf(data) || response.statusText);
  return data;
}

function detailOf(data) {
  const detail = data && data.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join('.')}: ${d.msg}`).join('; ');
  }
  return typeof detail === 'string' ? detail : '';
}

/** What to tell the analyst about a failed request. */
export function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
  if (error.status === 401) {
    return `Not signed in (401): ${error.message}. Paste a valid token above and press "Use token".`;
  }
  if (error.status === 403) {
    return `Your token does not allow this (403): ${error.message}.`;
  }
  if (error.status === 0) return 'The server did not answer. Is scamtrail running?';
  return `The server refused this (${error.status}): ${error.message}`;
}

/** The one-task progress socket for a task, resuming after `after`, with the token. */
export function progressUrl(taskId, after = 0) {
  const url = new URL(`/ws/agent-progress/${encodeURIComponent(taskId)}`, window.location.href);
  url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  if (after) url.searchParams.set('after', String(after));
  const bearer = token.get();
  if (bearer) url.searchParams.set('token', bearer);
  return url.href;
}

/** The claims of a JWT, for display only (the server verifies it); null if it is not one. */
export function claims(jwt) {
  const part = jwt.split('.')[1];
  if (!part) return null;
  try {
    const text = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? parsed : null;
  } catch {
    return null;
  }
}
