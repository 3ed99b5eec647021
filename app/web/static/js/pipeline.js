// The deal board: deals as cards in stage columns. A move (drag a card to another column, or the
// card's "Move to…" select) is proposed for approval (POST /api/deals/{id}/proposals); the card
// then waits with Approve / Reject (POST /api/inbox/{item_id}), and the board reloads once approved.
import { ApiError, api, el, fill, fmt, initLayout, refreshInboxBadge, start } from './common.js';

const board = document.getElementById('board');
const line = document.getElementById('board-message');
const filters = document.getElementById('deal-filters');
const PER_COLUMN = 60;

let stages = [];
let pending = new Map(); // deal id -> open inbox item proposing its move

function stageName(key) {
  return stages.find((s) => s.key === key)?.name || key;
}

function query() {
  const data = new FormData(filters);
  const q = {};
  for (const [k, v] of data.entries()) if (String(v).trim()) q[k] = String(v).trim();
  return q;
}

async function loadPending() {
  pending = new Map();
  const page = await api('/inbox', { query: { kind: 'action', status: 'open', limit: 500 } });
  for (const item of page.items) {
    if (item.deal_id && item.action && item.action.kind === 'move_stage') pending.set(item.deal_id, item);
  }
}

function pendingBox(card, deal, item) {
  const slot = card.querySelector('.slot');
  const to = item.action?.params?.stage;
  const decide = async (decision) => {
    slot.querySelectorAll('button').forEach((b) => (b.disabled = true));
    try {
      const done = await api(`/inbox/${item.id}`, { method: 'POST', body: { decision } });
      refreshInboxBadge();
      if (decision === 'approve' && done.result && done.result.status && done.result.status !== 'done') {
        throw new Error(done.result.detail || `the move ${done.result.status}`);
      }
      line.textContent = decision === 'approve'
        ? `Deal ${deal.external_id} moved to ${stageName(to)}.`
        : `The move of deal ${deal.external_id} was rejected.`;
      await load();
    } catch (err) {
      fill(slot, el('p', { class: 'refusal', role: 'alert' }, err.message));
    }
  };
  fill(
    slot,
    el('p', { class: 'pending' }, `awaiting approval: to ${stageName(to)}`),
    el(
      'div',
      { class: 'item-actions' },
      el('button', { type: 'button', class: 'primary', onclick: () => decide('approve'), 'aria-label': `Approve moving deal ${deal.external_id} to ${stageName(to)}` }, 'Approve'),
      el('button', { type: 'button', class: 'danger', onclick: () => decide('reject'), 'aria-label': `Reject moving deal ${deal.external_id}` }, 'Reject'),
    ),
  );
  card.querySelector('select').disabled = true;
}

async function propose(deal, stageKey) {
  const card = document.getElementById(`deal-${deal.id}`);
  const slot = card.querySelector('.slot');
  if (stageKey === deal.stage) return;
  fill(slot, el('p', { class: 'muted' }, `proposing a move to ${stageName(stageKey)}…`));
  try {
    const item = await api(`/deals/${deal.id}/proposals`, { method: 'POST', body: { kind: 'move_stage', params: { stage: stageKey } } });
    pending.set(deal.id, item);
    pendingBox(card, deal, item);
    refreshInboxBadge();
    card.querySelector('.slot button')?.focus();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    const why = err instanceof ApiError && err.status === 404 && !err.body?.detail?.includes?.('deal')
      ? 'Moves cannot be proposed on this server yet.'
      : err.message;
    fill(slot, el('p', { class: 'refusal', role: 'alert' }, `Cannot move to ${stageName(stageKey)}: ${why}`));
    card.querySelector('select').value = '';
  }
}

function dealCard(deal) {
  const title = [deal.account_name || 'No account', deal.product_name].filter(Boolean).join(' · ');
  const select = el(
    'select',
    { 'aria-label': `Move deal ${deal.external_id} to`, onchange: (e) => e.target.value && propose(deal, e.target.value) },
    el('option', { value: '' }, 'Move to…'),
    stages.filter((s) => s.key !== deal.stage).map((s) => el('option', { value: s.key }, s.name)),
  );
  const card = el(
    'article',
    {
      class: 'deal',
      id: `deal-${deal.id}`,
      draggable: 'true',
      tabindex: '0',
      'aria-label': `Deal ${deal.external_id}: ${title}`,
      dataset: { dealId: String(deal.id), stage: deal.stage },
      ondragstart: (e) => {
        e.dataTransfer.setData('text/plain', String(deal.id));
        e.dataTransfer.effectAllowed = 'move';
        card.classList.add('dragging');
      },
      ondragend: () => card.classList.remove('dragging'),
    },
    el('div', { class: 'title' }, title),
    el('div', { class: 'meta' }, `${deal.external_id} · ${deal.rep_name || 'no rep'}`),
    el('div', { class: 'meta' }, [deal.value !== null ? fmt.money(deal.value) : null, deal.engage_date ? `engaged ${fmt.date(deal.engage_date)}` : null].filter(Boolean).join(' · ')),
    select,
    el('div', { class: 'slot', 'aria-live': 'polite' }),
  );
  card._deal = deal;
  const item = pending.get(deal.id);
  if (item) pendingBox(card, deal, item);
  return card;
}

function column(stage, deals, byId) {
  const shown = deals.slice(0, PER_COLUMN);
  const total = deals.reduce((sum, d) => sum + (d.value || 0), 0);
  const col = el(
    'section',
    { class: 'column', 'aria-labelledby': `col-${stage.key}`, dataset: { stage: stage.key } },
    el('header', {}, el('h2', { id: `col-${stage.key}` }, stage.name), el('span', { class: 'sum' }, total ? `${deals.length} · ${fmt.money(total)}` : String(deals.length))),
    shown.map(dealCard),
    deals.length > shown.length ? el('p', { class: 'more' }, `+${deals.length - shown.length} more: narrow the filters`) : null,
  );
  col.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
    col.classList.add('drop-target');
  });
  col.addEventListener('dragleave', (e) => {
    if (!col.contains(e.relatedTarget)) col.classList.remove('drop-target');
  });
  col.addEventListener('drop', (e) => {
    e.preventDefault();
    col.classList.remove('drop-target');
    const deal = byId.get(Number(e.dataTransfer.getData('text/plain')));
    if (deal && deal.stage !== stage.key) propose(deal, stage.key);
  });
  return col;
}

async function load() {
  const [page] = await Promise.all([api('/deals', { query: { ...query(), limit: 500, sort: '-updated_at' } }), loadPending()]);
  const byId = new Map(page.items.map((d) => [d.id, d]));
  const byStage = new Map(stages.map((s) => [s.key, []]));
  for (const deal of page.items) (byStage.get(deal.stage) || byStage.set(deal.stage, []).get(deal.stage)).push(deal);
  fill(board, stages.map((s) => column(s, byStage.get(s.key), byId)));
  if (page.total > page.items.length) line.textContent = `Showing the ${page.items.length} most recently updated of ${page.total} deals: narrow the filters to see the rest.`;
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView({ block: 'center' });
}

async function main() {
  await initLayout();
  stages = await api('/pipeline/stages');
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    line.textContent = '';
    load().catch((err) => (line.textContent = err.message));
  });
  await load();
}

start(main, 'board-message');
