// The dashboard: win rate, won revenue, open pipeline and weighted forecast (by stage), per rep
// and per office, and the deals stuck in a stage. A rep sees their own figures (the API's scope).
import { api, el, fill, fmt, initLayout, start } from './common.js';
import { barChart } from './charts.js';

const $ = (x) => document.getElementById(x);
const filters = $('dash-filters');
let stages = [];

function query() {
  const data = new FormData(filters);
  const q = {};
  for (const [k, v] of data.entries()) if (String(v).trim()) q[k] = String(v).trim();
  return q;
}

function kpi(label, value) {
  return el('div', { class: 'kpi' }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));
}

async function load() {
  const q = query();
  const open = stages.filter((s) => !s.closed);
  const [[total], byStage, byRep, byOffice, stuck] = await Promise.all([
    api('/pipeline/metrics', { query: q }),
    api('/pipeline/metrics', { query: { ...q, group_by: 'stage' } }),
    api('/pipeline/metrics', { query: { ...q, group_by: 'rep', order_by: 'won_value' } }),
    api('/pipeline/metrics', { query: { ...q, group_by: 'office', order_by: 'won_value' } }),
    Promise.all(open.map((s) => api('/pipeline/stuck', { query: { ...q, stage: s.key, older_than_days: 30, limit: 20 } }).catch(() => []))),
  ]);
  fill(
    $('kpis'),
    kpi('Win rate', fmt.pct(total.win_rate)),
    kpi('Won revenue', fmt.money(total.won_value)),
    kpi('Open deals', String(total.open)),
    kpi('Open pipeline', fmt.money(total.open_pipeline_value)),
    kpi('Weighted forecast', fmt.money(total.weighted_forecast)),
    kpi('Average cycle', total.avg_cycle_days === null ? '–' : `${Math.round(total.avg_cycle_days)} days`),
  );
  const stageRow = new Map(byStage.map((r) => [r.group, r]));
  const stageRows = open.map((s) => ({ s, r: stageRow.get(s.key) })).filter((x) => x.r);
  fill($('chart-stage'), barChart(stageRows.map(({ s, r }) => ({ label: s.name, value: r.open_pipeline_value, text: `${fmt.money(r.open_pipeline_value)} · ${r.open} ${r.open === 1 ? 'deal' : 'deals'}` })), { title: 'Open pipeline value by stage' }));
  fill($('chart-forecast'), barChart(stageRows.map(({ s, r }) => ({ label: s.name, value: r.weighted_forecast, text: fmt.money(r.weighted_forecast) })), { title: 'Weighted forecast by stage', alt: true }));
  const reps = byRep.filter((r) => r.group !== null);
  fill($('chart-rep'), barChart(reps.filter((r) => r.win_rate !== null).sort((a, b) => b.win_rate - a.win_rate).slice(0, 15).map((r) => ({ label: r.group, value: r.win_rate, text: fmt.pct(r.win_rate) })), { title: 'Win rate per rep', max: 100 }));
  fill($('chart-revenue'), barChart(reps.slice(0, 15).map((r) => ({ label: r.group, value: r.won_value, text: fmt.money(r.won_value) })), { title: 'Won revenue per rep', alt: true }));
  const offices = byOffice.filter((r) => r.group !== null);
  fill($('chart-office'), barChart(offices.map((r) => ({ label: r.group, value: r.won_value, text: `${fmt.money(r.won_value)} · ${fmt.pct(r.win_rate)}` })), { title: 'Won revenue and win rate per office' }));
  const select = filters.elements.namedItem('office');
  if (select.options.length === 1) for (const r of offices) select.append(el('option', { value: r.group }, r.group));
  const stuckDeals = stuck.flat().sort((a, b) => b.days_in_stage - a.days_in_stage).slice(0, 12);
  fill(
    $('stuck'),
    stuckDeals.length
      ? el(
          'table',
          {},
          el('thead', {}, el('tr', {}, ['Deal', 'Account', 'Rep', 'Stage', 'Days'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', {}, stuckDeals.map((x) => el('tr', {}, el('td', {}, el('a', { href: `/pipeline#deal-${x.deal.id}` }, x.deal.external_id)), el('td', {}, x.deal.account_id ? el('a', { href: `/accounts/${x.deal.account_id}` }, x.deal.account_name) : '–'), el('td', {}, x.deal.rep_name || '–'), el('td', {}, x.deal.stage_name), el('td', {}, String(x.days_in_stage))))),
        )
      : el('p', { class: 'muted' }, 'No deal has sat in its stage for more than 30 days.'),
  );
}

async function main() {
  const user = await initLayout();
  if (user.role === 'rep') $('dash-message').textContent = 'Your own figures.';
  stages = await api('/pipeline/stages');
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    load().catch((err) => ($('dash-message').textContent = err.message));
  });
  await load();
}

start(main, 'dash-message');
