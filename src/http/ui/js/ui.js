// Small DOM helpers shared by every view. Text always goes in as text nodes (never as
// HTML), so a file name or a record field can never become markup.

// h('button', { class: 'primary', onclick }, 'Save'): an element with attributes,
// event handlers (on...) and children (strings become text).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (['value', 'checked', 'disabled', 'selected', 'multiple', 'hidden'].includes(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces an element's content.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled form control: the label names the input (for screen readers and clicks).
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
export function bytes(n) {
  if (n === null || n === undefined) return '';
  let value = Number(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${value} ${value === 1 ? 'byte' : 'bytes'}`;
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function when(stamp) {
  if (!stamp) return '';
  const date = new Date(stamp);
  return Number.isNaN(date.getTime()) ? stamp : dateFormat.format(date);
}

export function time(stamp) {
  return h('time', { datetime: stamp || '' }, when(stamp));
}

// Announces a message to everyone (a polite live region) for a few seconds. The region
// lives outside the views, so a message outlasts the redraw that often follows it.
export function toast(message, kind = 'info') {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const note = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  region.append(note);
  while (region.children.length > 3) region.firstChild.remove();
  setTimeout(() => note.remove(), kind === 'error' ? 9000 : 4500);
}

// The words for a refusal: the server's own detail, which names the rule.
export function reason(error) {
  if (!error) return '';
  if (error.code === 'cancelled') return 'Cancelled';
  if (error.status === 0) return 'The connection to Coffer failed; check your network and try again.';
  return error.message || 'Something went wrong';
}

// A modal dialog (the browser's <dialog>: focus stays inside, Escape closes it).
// Resolves to the value of the button pressed, or null when dismissed.
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const box = h('dialog', { 'aria-labelledby': titleId });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: titleId }, title),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'actions' }, buttons.map((b) =>
        h('button', { value: b.value, class: b.class || '', type: 'submit', formnovalidate: b.value === '' }, b.label))));
    box.append(form);
    form.addEventListener('submit', (event) => {
      const value = event.submitter ? event.submitter.value : '';
      if (value && !form.checkValidity()) {
        event.preventDefault();
        form.reportValidity();
      }
    });
    box.addEventListener('close', () => {
      box.remove();
      resolve(box.returnValue || null);
    });
    document.body.append(box);
    box.showModal();
  });
}

export async function confirm(title, text, okLabel, danger = true) {
  const answer = await dialog(title, h('p', {}, text), [
    { value: '', label: 'Cancel' },
    { value: 'ok', label: okLabel, class: danger ? 'danger' : 'primary' },
  ]);
  return answer === 'ok';
}

// Asks for one line of text; resolves to it or null.
export async function ask(title, label, initial = '', okLabel = 'Save') {
  const input = h('input', { type: 'text', value: initial, required: true, autocomplete: 'off' });
  const pending = dialog(title, field(label, input), [
    { value: '', label: 'Cancel' },
    { value: 'ok', label: okLabel, class: 'primary' },
  ]);
  input.select();
  const answer = await pending;
  return answer === 'ok' ? input.value.trim() : null;
}

// A status line for a view: a live region that reads out what happened.
export function statusLine() {
  return h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
}

// Runs an action from a button: disables it meanwhile, reports a refusal.
export async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } catch (error) {
    toast(reason(error), 'error');
    return undefined;
  } finally {
    button.disabled = false;
  }
}

// A table with a caption and column headers; rows are arrays of cells.
export function table(caption, headers, rows, className = '') {
  return h('table', { class: className },
    h('caption', { class: caption.visible ? '' : 'visually-hidden' }, caption.text || caption),
    h('thead', {}, h('tr', {}, headers.map((label) => h('th', { scope: 'col' },
      label === '' ? h('span', { class: 'visually-hidden' }, 'Actions') : label)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell))))));
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

// A page's heading, which takes focus when the view changes (screen readers hear it).
export function heading(text, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, text), ...extra);
}
