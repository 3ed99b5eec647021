// The chat page: conversations kept per user in localStorage (ids and titles; the messages come
// from GET /api/threads/{id}), replies streamed over WS /ws/chat/{thread_id} (the session cookie
// authenticates it), approval cards for actions that wait for a decision.
import { ApiError, api, el, fill, initLayout, refreshInboxBadge, start, toast } from './common.js';
import { actionCard, settle } from './approval.js';

const $ = (id) => document.getElementById(id);
const list = $('thread-list');
const messages = $('messages');
const statusLine = $('chat-status');
const approval = $('approval');
const form = $('chat-form');
const box = $('message');
const send = $('send');

let storeKey = 'flowstate:threads';
let threads = []; // [{id, title}], newest first
let current = null; // thread id
let socket = null;
let socketThread = null;
let turn = null; // the assistant bubble being streamed: {item, text, body}
let busy = false;

function newThreadId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}${Math.random()}`).replace(/[^A-Za-z0-9]/g, '');
}

function save() {
  localStorage.setItem(storeKey, JSON.stringify(threads.slice(0, 50)));
}

function load() {
  try {
    const stored = JSON.parse(localStorage.getItem(storeKey) || '[]');
    return Array.isArray(stored) ? stored.filter((t) => t && typeof t.id === 'string') : [];
  } catch {
    return [];
  }
}

function renderThreads() {
  fill(
    list,
    threads.map((t) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', 'aria-current': t.id === current ? 'true' : 'false', title: t.title, onclick: () => selectThread(t.id) },
          t.title || 'New conversation',
        ),
      ),
    ),
  );
}

function setBusy(on) {
  busy = on;
  send.disabled = on;
  if (!on) statusLine.textContent = '';
}

function sourceLink(source) {
  if (source.kind === 'account' && /^\d+$/.test(source.id)) return el('a', { href: `/accounts/${source.id}` }, source.label);
  if (source.kind === 'deal') return el('a', { href: `/pipeline#deal-${encodeURIComponent(source.id)}` }, source.label);
  return el('span', { title: source.kind }, source.label);
}

function bubble(role, text, { sources = [], note = null, error = false } = {}) {
  const body = el('div', { class: 'text' }, text);
  const item = el('li', { class: `msg ${role}${error ? ' error' : ''}`, 'aria-label': role === 'user' ? 'You' : 'Flowstate' }, body);
  if (sources.length) item.append(el('div', { class: 'sources', 'aria-label': 'Sources' }, sources.map(sourceLink)));
  if (note) item.append(el('div', { class: 'note' }, note));
  messages.querySelector('.empty-chat')?.remove();
  messages.append(item);
  item.scrollIntoView({ block: 'end' });
  return { item, body, text };
}

function emptyState() {
  fill(messages, el('li', { class: 'empty-chat' }, 'Ask about your pipeline, an account, a deal or what to do next.'));
}

function noteOf(result) {
  if (result.action_result) {
    const r = result.action_result;
    if (r.status === 'deferred') return 'The action that was waiting moved to your inbox: decide it there.';
    return `Action ${r.status}${r.detail ? `: ${r.detail}` : ''}`;
  }
  if (result.deferred_action) {
    return `The action that was waiting (${result.deferred_action.summary}) moved to your inbox: decide it there.`;
  }
  return null;
}

function showApproval(id, action) {
  if (!action) return;
  const summary = action.summary || action.kind;
  fill(
    approval,
    actionCard({
      kind: action.kind,
      summary,
      params: action.params,
      decisions: ['approve', 'edit', 'reject'],
      onDecide: async (decision, edits) => {
        const frame = { type: 'resume', decision, action_id: id };
        if (edits) frame.edits = edits;
        await sendFrame(frame);
        setBusy(true);
        turn = null;
        const said = { approve: 'You approved', edit: 'You approved with edits', reject: 'You rejected' }[decision];
        settle(approval, `${said}: ${summary}.`);
      },
    }),
  );
}

function onFrame(frame) {
  switch (frame.type) {
    case 'status':
      statusLine.textContent = `working: ${frame.crew || frame.node}`;
      break;
    case 'token':
      turn ||= bubble('assistant', '');
      turn.text += frame.content;
      turn.body.textContent = turn.text;
      break;
    case 'discard':
      if (turn) {
        turn.text = '';
        turn.body.textContent = '';
      }
      break;
    case 'interrupt':
      showApproval(frame.id, frame.action);
      break;
    case 'final': {
      turn ||= bubble('assistant', '');
      turn.text = frame.reply;
      turn.body.textContent = frame.reply;
      if (frame.error) turn.item.classList.add('error');
      if (frame.sources?.length) turn.item.append(el('div', { class: 'sources', 'aria-label': 'Sources' }, frame.sources.map(sourceLink)));
      const note = noteOf(frame);
      if (note) turn.item.append(el('div', { class: 'note' }, note));
      if (frame.pending_action && !approval.querySelector('.approval')) showApproval(frame.pending_action.id, frame.pending_action);
      if (!frame.pending_action && frame.deferred_action) {
        fill(approval, el('p', { class: 'muted' }, 'Moved to your inbox: ', el('a', { href: `/inbox#item-${frame.deferred_action.inbox_item_id}` }, frame.deferred_action.summary)));
      }
      if (note) refreshInboxBadge();
      turn = null;
      setBusy(false);
      break;
    }
    case 'error':
      if (turn) turn.item.remove();
      bubble('assistant', frame.message, { error: true });
      turn = null;
      setBusy(false);
      break;
    case 'notification':
      toast(frame.title || 'Something new in your inbox');
      refreshInboxBadge();
      break;
    default:
      break;
  }
}

function connect(threadId) {
  if (socket && socketThread === threadId && socket.readyState <= WebSocket.OPEN) return socket;
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws/chat/${encodeURIComponent(threadId)}`);
  socket = ws;
  socketThread = threadId;
  ws.onmessage = (event) => {
    if (socket !== ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    if (busy) {
      bubble('assistant', 'The connection closed before the answer came. Open the conversation again to see it.', { error: true });
      setBusy(false);
    }
    // a socket the server closed may mean the session ended: the API says so (401 -> sign in)
    if (!event.wasClean || event.code !== 1000) api('/me').catch(() => {});
  };
  return ws;
}

function sendFrame(frame) {
  const ws = connect(current);
  const payload = JSON.stringify(frame);
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(payload);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => (ws.send(payload), resolve()), { once: true });
    ws.addEventListener('error', () => reject(new Error('could not reach the chat: try again')), { once: true });
  });
}

async function selectThread(id) {
  current = id;
  turn = null;
  setBusy(false);
  fill(approval);
  renderThreads();
  history.replaceState(null, '', `/?thread=${encodeURIComponent(id)}`);
  emptyState();
  try {
    const view = await api(`/threads/${encodeURIComponent(id)}`);
    fill(messages);
    for (const m of view.messages) bubble(m.role, m.content, { sources: m.sources || [] });
    if (!view.messages.length) emptyState();
    if (view.error) bubble('assistant', view.error.message || 'The last message was not answered: send it again.', { error: true });
    if (view.pending_action) showApproval(view.pending_action.id, view.pending_action);
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 403)) throw err;
    threads = threads.filter((t) => t.id !== id);
    save();
    renderThreads();
    fill(messages, el('li', { class: 'empty-chat' }, 'This conversation has expired or is not yours. Start a new one.'));
  }
  connect(id);
}

function newThread(prefill = '') {
  current = newThreadId();
  turn = null;
  setBusy(false);
  fill(approval);
  emptyState();
  renderThreads();
  history.replaceState(null, '', '/');
  box.value = prefill;
  box.focus();
  connect(current);
}

async function submit(event) {
  event?.preventDefault();
  const text = box.value.trim();
  if (!text || busy) return;
  if (!threads.some((t) => t.id === current)) {
    threads.unshift({ id: current, title: text.slice(0, 60) });
    save();
    renderThreads();
    history.replaceState(null, '', `/?thread=${encodeURIComponent(current)}`);
  }
  bubble('user', text);
  box.value = '';
  setBusy(true);
  statusLine.textContent = 'working…';
  try {
    await sendFrame({ type: 'message', content: text });
  } catch (err) {
    setBusy(false);
    bubble('assistant', err.message, { error: true });
  }
}

async function main() {
  const user = await initLayout();
  storeKey = `flowstate:threads:${user.username}`;
  threads = load();
  form.addEventListener('submit', submit);
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) submit(event);
  });
  $('new-thread').addEventListener('click', () => newThread());
  const params = new URLSearchParams(location.search);
  const ask = params.get('ask');
  if (ask !== null) {
    newThread(ask);
    if (params.get('send') === '1') submit();
  } else if (params.get('thread')) {
    await selectThread(params.get('thread'));
  } else if (threads.length) {
    await selectThread(threads[0].id);
  } else {
    newThread();
  }
}

start(main, 'chat-status');
