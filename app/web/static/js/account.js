// The account card: profile and figures, contacts, deals with their stage history, the timeline of
// events, recommendations, reminders, the account's documents and a search of them.
import { api, el, fill, fmt, initLayout, start, toast } from './common.js';

const root = document.getElementById('account');
const id = Number(root.dataset.accountId);
const $ = (x) => document.getElementById(x);
const dealNames = new Map(); // deal id -> external id, for the timeline and the documents
const DOCS_PAGE = 10;
let docsShown = 0;

/** Stage key -> display name (config/pipeline.yaml); a key no longer configured shows as itself. */
async function stageNames() {
  const stages = await api('/pipeline/stages').catch(() => []);
  const names = new Map(stages.map((s) => [s.key, s.name]));
  return (key) => names.get(key) || key;
}

function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function failed(node, err) {
  fill(node, el('p', { class: 'error' }, err.message));
}

async function profile() {
  const p = await api(`/accounts/${id}/profile`);
  const a = p.account;
  $('account-name').textContent = a.name;
  document.title = `${a.name} · Flowstate`;
  const ask = $('ask');
  ask.href = `/?ask=${encodeURIComponent(`Tell me about ${a.name}`)}`;
  const m = p.metrics;
  fill(
    $('profile'),
    facts([
      ['Sector', a.sector],
      ['Employees', a.employees?.toLocaleString()],
      ['Revenue', a.revenue_musd !== null ? `${fmt.money(a.revenue_musd)}M` : null],
      ['Established', a.year_established],
      ['Location', a.office_location],
      ['Parent', p.parent ? el('a', { href: `/accounts/${p.parent.id}` }, p.parent.name) : null],
      ['Subsidiaries', p.subsidiaries.length ? p.subsidiaries.flatMap((s, i) => [i ? ', ' : '', el('a', { href: `/accounts/${s.id}` }, s.name)]) : null],
      ['Deals', `${m.deals} (${m.open} open, ${m.won} won, ${m.lost} lost)`],
      ['Win rate', fmt.pct(m.win_rate)],
      ['Won revenue', fmt.money(m.won_value)],
      ['Open pipeline', fmt.money(m.open_pipeline_value)],
    ]),
  );
}

async function contacts() {
  const page = await api('/contacts', { query: { account_id: id, limit: 100 } });
  fill(
    $('contacts'),
    page.items.length
      ? page.items.map((c) =>
          el('li', {}, el('strong', {}, `${c.first_name} ${c.last_name}`), c.title ? ` · ${c.title}` : '', c.email ? el('div', {}, el('a', { href: `mailto:${c.email}` }, c.email)) : null, c.phone ? el('div', { class: 'muted' }, c.phone) : null),
        )
      : el('li', { class: 'muted' }, 'No contacts.'),
  );
}

async function deals() {
  const page = await api('/deals', { query: { account: String(id), limit: 100, sort: '-updated_at' } });
  for (const d of page.items) dealNames.set(d.id, d.external_id);
  if (!page.items.length) return fill($('deals'), el('p', { class: 'muted' }, 'No deals.'));
  // the history records stage keys: people read the stages' names
  const [stageName, ...histories] = await Promise.all([stageNames(), ...page.items.slice(0, 25).map((d) => api(`/deals/${d.id}/history`).catch(() => []))]);
  const rows = page.items.map((d, i) => {
    const history = histories[i] || [];
    return el(
      'tr',
      { id: `deal-${d.id}` },
      el('td', {}, el('a', { href: `/pipeline#deal-${d.id}` }, d.external_id)),
      el('td', {}, d.product_name || '–'),
      el('td', {}, d.rep_name || '–'),
      el('td', {}, d.stage_name),
      el('td', {}, fmt.money(d.value)),
      el('td', { class: 'history' }, history.map((h) => `${h.from_stage ? stageName(h.from_stage) + ' → ' : ''}${stageName(h.to_stage)} (${fmt.date(h.changed_at)})`).join(', ') || '–'),
    );
  });
  fill(
    $('deals'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Deal', 'Product', 'Rep', 'Stage', 'Value', 'Stage history'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, rows)),
  );
}

async function timeline() {
  const page = await api('/events', { query: { account_id: id, limit: 50 } });
  fill(
    $('timeline'),
    page.items.length
      ? page.items.map((e) =>
          el(
            'li',
            {},
            el('div', { class: 'when' }, `${fmt.when(e.occurred_at)}${e.actor ? ` · ${e.actor}` : ''}`),
            el('div', {}, fmt.label(e.kind.replace('.', ' ')), e.payload?.summary ? `: ${e.payload.summary}` : '', e.deal_id ? [' · ', el('a', { href: `/pipeline#deal-${e.deal_id}` }, dealNames.get(e.deal_id) || `deal ${e.deal_id}`)] : null),
          ),
        )
      : el('li', { class: 'muted' }, 'No events yet.'),
  );
}

async function recommendations() {
  const page = await api('/recommendations', { query: { account_id: id, limit: 20 } });
  fill(
    $('recommendations'),
    page.items.length
      ? page.items.map((r) => el('li', {}, el('strong', {}, r.action), el('div', { class: 'muted' }, `${r.reason} · ${r.status}`)))
      : el('li', { class: 'muted' }, 'No recommendations.'),
  );
}

async function reminders() {
  const page = await api('/reminders', { query: { account_id: id, limit: 20 } });
  fill(
    $('reminders'),
    page.items.length
      ? page.items.map((r) => el('li', {}, r.message, el('div', { class: 'muted' }, `due ${fmt.when(r.due_at)} · ${r.status}`)))
      : el('li', { class: 'muted' }, 'No reminders.'),
  );
}

function documentItem(d) {
  const title = d.url ? el('a', { href: d.url, rel: 'noopener noreferrer', target: '_blank' }, d.title) : el('strong', {}, d.title);
  const deal = d.deal_id ? el('a', { href: `/pipeline#deal-${d.deal_id}` }, dealNames.get(d.deal_id) || `deal ${d.deal_id}`) : null;
  return el(
    'li',
    { class: 'document', dataset: { documentId: d.id } },
    title,
    el('div', { class: 'muted' }, d.kind ? el('span', { class: 'kind' }, fmt.label(d.kind)) : null, d.kind ? ' · ' : '', el('time', { datetime: d.created_at }, fmt.date(d.created_at)), deal ? [' · ', deal] : null),
  );
}

/** The account's documents, newest first, a page at a time (`more`: the next page). */
async function documents(more = false) {
  const list = $('account-documents');
  const button = $('documents-more');
  const page = await api(`/accounts/${id}/documents`, { query: { limit: DOCS_PAGE, offset: more ? docsShown : 0 } });
  const items = page.items.map(documentItem);
  if (more) list.append(...items);
  else fill(list, items.length ? items : el('li', { class: 'muted' }, 'No documents yet.'));
  docsShown = (more ? docsShown : 0) + page.items.length;
  button.hidden = docsShown >= page.total;
  $('documents-count').textContent = page.total ? `${docsShown} of ${page.total}` : '';
}

async function searchDocuments(event) {
  event.preventDefault();
  const q = new FormData(event.target).get('q');
  const out = $('documents');
  fill(out, el('li', { class: 'muted' }, 'Searching…'));
  try {
    const found = await api('/documents/search', { query: { q, account_id: id, k: 5 } });
    fill(out, found.results.length ? found.results.map((d) => el('li', {}, d.metadata?.title ? el('strong', {}, d.metadata.title) : null, el('div', {}, d.content.slice(0, 400)))) : el('li', { class: 'muted' }, 'No documents match.'));
  } catch (err) {
    failed(out, err);
  }
}

async function main() {
  await initLayout();
  $('doc-search').addEventListener('submit', searchDocuments);
  // a failed next page keeps the documents shown: the error goes to a toast
  $('documents-more').addEventListener('click', () => documents(true).catch((err) => toast(err.message, 'bad')));
  await profile();
  const parts = [[contacts, 'contacts'], [timeline, 'timeline'], [recommendations, 'recommendations'], [reminders, 'reminders'], [documents, 'account-documents']];
  // the deals first: the timeline and the documents name them
  await deals().catch((err) => failed($('deals'), err));
  await Promise.all(parts.map(([load, node]) => load().catch((err) => failed($(node), err))));
}

start(main, 'account-message');
