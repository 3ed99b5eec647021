// Shared by every page: the JSON API client (same origin, session cookie), a small DOM builder,
// number formats, toasts, and the layout (who is signed in, the inbox badge).

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Go to the sign-in page, coming back here afterwards. */
export function toLogin() {
  const here = location.pathname + location.search;
  location.assign('/login?next=' + encodeURIComponent(here));
}

function messageOf(body, status) {
  if (body && typeof body.message === 'string') return body.message;
  if (body && typeof body.detail === 'string') return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join('; ');
  return `the server answered ${status}`;
}

/**
 * Call the API: `api('/deals', {query: {status: 'open'}})`, `api('/inbox/3', {method: 'POST', body})`.
 * Resolves to the parsed JSON (null for 204); rejects with ApiError (its message is the API's).
 * A 401 (no or an ended session) sends the page to the sign-in form.
 */
export async function api(path, { method = 'GET', body, query } = {}) {
  const url = new URL('/api' + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
  }
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, 'signed out');
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, messageOf(data, response.status), data);
  return data;
}

/** `el('a', {href: '/x', class: 'y'}, 'text', child)`: text children are text nodes (never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });
export const fmt = {
  money: (v) => (v === null || v === undefined ? '–' : money.format(v)),
  pct: (v) => (v === null || v === undefined ? '–' : `${Number(v).toFixed(1)}%`),
  date: (s) => (s ? new Date(s.length === 10 ? s + 'T00:00:00' : s).toLocaleDateString() : '–'),
  when: (s) => (s ? new Date(s).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '–'),
  label: (s) => String(s).replace(/_/g, ' '),
};

/** Show a short message in the corner for a few seconds. */
export function toast(text, kind = '') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = el('div', { class: `toast ${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

let mePromise = null;
/** The signed-in user (`GET /api/me`): username, display_name, role, rep_id, rep_name, manager_name. */
export function me() {
  mePromise ||= api('/me');
  return mePromise;
}

/** The name the CRM knows the user by (inbox recipient, reminder owner). */
export function personOf(user) {
  return user.rep_name || user.manager_name || user.display_name;
}

/** Refresh the inbox badge in the navigation: the count of open items. */
export async function refreshInboxBadge() {
  const badge = document.getElementById('inbox-badge');
  if (!badge) return;
  try {
    const page = await api('/inbox', { query: { status: 'open', limit: 1 } });
    badge.textContent = String(page.total);
    badge.setAttribute('aria-label', `${page.total} open items`);
    badge.hidden = page.total === 0;
  } catch {
    badge.hidden = true;
  }
}

/** Fill the header (who is signed in, the inbox badge); resolves to the user. */
export async function initLayout() {
  const user = await me();
  const who = document.getElementById('who');
  if (who) who.textContent = `${user.display_name} · ${user.role}`;
  refreshInboxBadge();
  return user;
}

/** Run a page's start function, showing a failure in the page's status line. */
export function start(main, statusId) {
  main().catch((err) => {
    if (err instanceof ApiError && err.status === 401) return;
    const line = statusId && document.getElementById(statusId);
    if (line) {
      line.textContent = err.message;
      line.classList.add('error');
    }
    toast(err.message, 'bad');
  });
}
