// An action that waits for a person's decision, as a card: what it is (kind, summary, params) and
// the decisions it takes. Edit opens the action's params as labelled inputs, checked here before
// they are sent (the server checks them again and names a refused field).
import { el, fill, fmt } from './common.js';

let formCount = 0;

function paramInput(id, key, value) {
  if (typeof value === 'boolean') {
    return el('input', { id, name: key, type: 'checkbox', checked: value });
  }
  if (typeof value === 'number') {
    return el('input', { id, name: key, type: 'number', step: 'any', value: String(value), required: true });
  }
  if (value !== null && typeof value === 'object') {
    const area = el('textarea', { id, name: key, rows: 3, 'data-json': '1' });
    area.value = JSON.stringify(value, null, 1);
    return area;
  }
  const text = value === null || value === undefined ? '' : String(value);
  if (text.length > 80 || text.includes('\n')) {
    const area = el('textarea', { id, name: key, rows: 5, required: text !== '' });
    area.value = text;
    return area;
  }
  return el('input', { id, name: key, value: text, required: text !== '', maxlength: 4000 });
}

/** The edited params that differ from `params`, or throws {field, message} for a bad value. */
function readEdits(form, params) {
  const edits = {};
  for (const [key, original] of Object.entries(params)) {
    const input = form.elements.namedItem(key);
    if (!input) continue;
    let value;
    if (input.type === 'checkbox') value = input.checked;
    else if (input.type === 'number') {
      if (input.value.trim() === '' || Number.isNaN(Number(input.value))) throw { field: key, message: 'enter a number' };
      value = Number(input.value);
    } else if (input.dataset.json) {
      try {
        value = JSON.parse(input.value);
      } catch {
        throw { field: key, message: 'not valid JSON' };
      }
    } else {
      value = input.value.trim();
      if (value === '' && original !== null && original !== '') throw { field: key, message: 'must not be empty' };
      if (value === '' && (original === null || original === undefined)) value = original;
    }
    if (JSON.stringify(value) !== JSON.stringify(original)) edits[key] = value;
  }
  return edits;
}

/**
 * A card for an action. `decisions`: the decisions offered (approve, edit, reject, done, snooze,
 * dismiss); `onDecide(decision, edits?)` returns a promise (rejecting with an Error whose message
 * is shown on the card; an ApiError 422's body `field` marks the input).
 */
export function actionCard({ kind, summary, params = {}, heading, decisions, onDecide, extra }) {
  const formId = `edit-${++formCount}`;
  const message = el('p', { class: 'error', role: 'alert' });
  const paramRows = Object.entries(params || {}).map(([k, v]) => [
    el('dt', {}, fmt.label(k)),
    el('dd', {}, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v ?? '–')),
  ]);
  const card = el(
    'div',
    { class: 'approval', role: 'group', 'aria-label': `Awaiting your decision: ${summary}` },
    el('div', { class: 'kind' }, kind ? fmt.label(kind) : 'action'),
    heading ? el('h3', {}, heading) : null,
    el('div', { class: 'summary' }, summary),
    paramRows.length ? el('dl', { class: 'facts params' }, paramRows) : null,
    extra || null,
  );
  const buttons = el('div', { class: 'actions' });
  card.append(buttons, message);

  const busy = (on) => buttons.querySelectorAll('button').forEach((b) => (b.disabled = on));
  const decide = async (decision, edits) => {
    busy(true);
    message.textContent = '';
    try {
      await onDecide(decision, edits);
    } catch (err) {
      message.textContent = err.message || String(err);
      const field = err.body && err.body.field;
      const input = field && card.querySelector(`[name="${CSS.escape(field)}"]`);
      if (input) input.setAttribute('aria-invalid', 'true');
      busy(false);
    }
  };

  const openEdit = () => {
    const form = el('form', { class: 'edit-form', id: formId, novalidate: true, 'aria-label': `Edit ${summary}` });
    for (const [key, value] of Object.entries(params || {})) {
      const id = `${formId}-${key}`;
      const error = el('span', { class: 'field-error', id: `${id}-error` });
      const input = paramInput(id, key, value);
      input.setAttribute('aria-describedby', error.id);
      form.append(el('label', { for: id }, fmt.label(key)), input, error);
    }
    const save = el('button', { type: 'submit', class: 'primary' }, 'Approve with edits');
    const cancel = el('button', { type: 'button', onclick: () => { form.remove(); buttons.hidden = false; } }, 'Cancel');
    form.append(el('span'), el('div', { class: 'actions' }, save, cancel));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      form.querySelectorAll('.field-error').forEach((e) => (e.textContent = ''));
      form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
      let edits;
      try {
        edits = readEdits(form, params || {});
      } catch (bad) {
        const input = form.elements.namedItem(bad.field);
        input.setAttribute('aria-invalid', 'true');
        document.getElementById(`${input.id}-error`).textContent = bad.message;
        input.focus();
        return;
      }
      if (Object.keys(edits).length === 0) {
        message.textContent = 'Nothing was changed: approve it as it is, or change a value.';
        return;
      }
      save.disabled = true;
      decide('edit', edits).finally(() => (save.disabled = false));
    });
    buttons.hidden = true;
    card.insertBefore(form, message);
    form.querySelector('input, textarea')?.focus();
  };

  const labels = { approve: 'Approve', edit: 'Edit', reject: 'Reject', done: 'Done', snooze: 'Snooze', dismiss: 'Dismiss' };
  for (const decision of decisions) {
    const cls = decision === 'approve' || decision === 'done' ? 'primary' : decision === 'reject' ? 'danger' : '';
    const onclick = decision === 'edit' ? openEdit : () => decide(decision);
    const disabled = decision === 'edit' && Object.keys(params || {}).length === 0;
    buttons.append(
      el('button', { type: 'button', class: cls, onclick, disabled, 'aria-label': `${labels[decision]}: ${summary}` }, labels[decision]),
    );
  }
  return card;
}

/** Replace `container`'s content with a one-line outcome. */
export function settle(container, text) {
  fill(container, el('p', { class: 'muted' }, text));
}
