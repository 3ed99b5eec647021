// The inbox: what waits for the user (reminders that fell due, drafts and actions awaiting
// approval, alerts, digests, reports), and the decisions each kind takes (POST /api/inbox/{id}).
import { api, el, fill, fmt, initLayout, personOf, refreshInboxBadge, start } from './common.js';
import { actionCard } from './approval.js';

const list = document.getElementById('inbox-list');
const line = document.getElementById('inbox-message');
const filters = document.getElementById('inbox-filters');

// The decisions each kind of item takes (crm.inbox.DECISIONS).
const DECISIONS = {
  reminder: ['done', 'snooze', 'dismiss'],
  draft: ['approve', 'edit', 'reject'],
  action: ['approve', 'edit', 'reject'],
  alert: ['done', 'dismiss'],
  digest: ['done', 'dismiss'],
  report: ['done', 'dismiss'],
};
const PAST = { approve: 'Approved', edit: 'Approved with edits', reject: 'Rejected', done: 'Done', snooze: 'Snoozed', dismiss: 'Dismissed' };

let user = null;

function links(item) {
  const out = [];
  if (item.account_id) out.push(el('a', { href: `/accounts/${item.account_id}` }, 'account'));
  if (item.deal_id) out.push(el('a', { href: `/pipeline#deal-${item.deal_id}` }, 'deal'));
  return out.length ? el('span', { class: 'muted' }, ' · ', out.flatMap((a, i) => (i ? [' · ', a] : [a]))) : null;
}

function itemView(item) {
  const li = el('li', { class: 'inbox-item', id: `item-${item.id}`, 'aria-labelledby': `item-${item.id}-title` });
  const head = el(
    'header',
    {},
    el('span', { class: 'kind' }, item.kind),
    el('h2', { id: `item-${item.id}-title` }, item.title),
    links(item),
    el('span', { class: 'when' }, `${item.recipient} · ${fmt.when(item.created_at)}`),
  );
  li.append(head);
  if (item.body) li.append(el('div', { class: 'body' }, item.body));
  if (item.status !== 'open') {
    li.append(el('p', { class: 'state' }, `${item.status}${item.decided_by ? ` by ${item.decided_by}` : ''}${item.decided_at ? `, ${fmt.when(item.decided_at)}` : ''}`));
    return li;
  }
  const decide = async (decision, edits) => {
    const body = { decision };
    if (edits) body.edits = edits;
    const done = await api(`/inbox/${item.id}`, { method: 'POST', body });
    refreshInboxBadge();
    const failed = done.result && done.result.status && !['done', 'ok'].includes(done.result.status) ? done.result : null;
    fill(li, head, el('p', { class: failed ? 'error' : 'state', role: 'status' }, failed ? `Approved, but it failed: ${failed.detail || failed.status}` : `${PAST[decision]}.`));
  };
  const decisions = DECISIONS[item.kind] || [];
  if (item.action) {
    li.append(actionCard({ kind: item.action.kind, summary: item.action.summary || item.title, params: item.action.params, decisions, onDecide: decide }));
  } else {
    const message = el('p', { class: 'error', role: 'alert' });
    const buttons = el(
      'div',
      { class: 'item-actions' },
      decisions.map((d) =>
        el(
          'button',
          {
            type: 'button',
            class: d === 'done' ? 'primary' : '',
            'aria-label': `${d[0].toUpperCase() + d.slice(1)}: ${item.title}`,
            onclick: () => decide(d).catch((err) => (message.textContent = err.message)),
          },
          d[0].toUpperCase() + d.slice(1),
        ),
      ),
    );
    li.append(buttons, message);
  }
  return li;
}

async function load() {
  const data = new FormData(filters);
  const query = { status: data.get('status'), kind: data.get('kind'), limit: 100 };
  if (data.get('mine')) query.recipient = personOf(user);
  const page = await api('/inbox', { query });
  fill(list, page.items.map(itemView));
  line.textContent = page.total === 0 ? 'Nothing here.' : page.total > page.items.length ? `Showing ${page.items.length} of ${page.total}.` : '';
}

async function main() {
  user = await initLayout();
  if (user.role === 'rep') filters.elements.namedItem('mine').checked = true;
  filters.addEventListener('change', () => load().catch((err) => (line.textContent = err.message)));
  filters.addEventListener('submit', (e) => e.preventDefault());
  await load();
}

start(main, 'inbox-message');
