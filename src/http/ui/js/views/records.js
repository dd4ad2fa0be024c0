// Records: each collection (clients, jobs, invoices, ...) as a table with a search box
// and field filters, and each record as a form. Saving sends the version the form was
// loaded from (If-Match); when someone else saved first, both versions are shown side
// by side and the user chooses: nothing is ever overwritten silently.

import * as api from '../api.js';
import { h, fill, time, toast, reason, confirm, dialog, empty, heading, field, ask } from '../ui.js';

const PAGE = 200;
const SUGGESTED = ['clients', 'jobs', 'invoices', 'employees', 'documents', 'messages'];

function recordHash(ctx, collection, id) {
  return ctx.tenantHash('records', [collection, id].filter(Boolean).map(encodeURIComponent).join('/'));
}

function display(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export async function render(main, ctx, rest) {
  const [collection, id] = rest;
  if (!collection) return renderCollections(main, ctx);
  if (!id) return renderTable(main, ctx, collection);
  return renderRecord(main, ctx, collection, id === 'new' ? null : id);
}

async function renderCollections(main, ctx) {
  const slug = ctx.session.tenant.tenant.slug;
  const { collections } = await api.get(`/tenants/${slug}/records`);
  const known = new Set(collections.map((c) => c.name));
  const writable = ctx.can('records_write');
  const start = writable ? SUGGESTED.filter((name) => !known.has(name)) : [];
  fill(main, heading('Records', writable ? h('button', { type: 'button', class: 'primary', onclick: async () => {
    const name = await ask('New collection', 'Collection name (such as suppliers)', '', 'Create');
    if (name) ctx.navigate(recordHash(ctx, name.toLowerCase(), 'new'));
  } }, 'New collection') : null),
  collections.length === 0 ? empty('No records yet.') : h('ul', { class: 'cards' }, collections.map((c) =>
    h('li', {}, h('a', { href: recordHash(ctx, c.name) }, h('strong', {}, c.name),
      h('span', {}, ` ${c.count.toLocaleString()} ${c.count === 1 ? 'record' : 'records'}`))))),
  start.length ? h('section', {}, h('h2', {}, 'Start a collection'),
    h('p', {}, start.map((name) => h('a', { class: 'button', href: recordHash(ctx, name, 'new') }, `New ${name.replace(/s$/, '')}`)))) : null);
}

async function renderTable(main, ctx, collection) {
  const slug = ctx.session.tenant.tenant.slug;
  const writable = ctx.can('records_write');
  const state = { records: [], cursor: null, done: false, text: '', filterField: '', filterValue: '' };
  const search = h('input', { type: 'search', 'aria-label': `Search ${collection}`, placeholder: 'Search these records' });
  const filterField = h('select', { 'aria-label': 'Filter field' });
  const filterValue = h('input', { type: 'text', 'aria-label': 'Filter value', placeholder: 'equals…' });
  const body = h('div', {});
  const more = h('button', { type: 'button', hidden: true, onclick: () => load() }, 'Load more');
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });

  fill(main, heading(collection, writable
    ? h('a', { class: 'button primary', href: recordHash(ctx, collection, 'new'), id: 'new-record' }, 'New record') : null),
  h('nav', { class: 'crumbs', 'aria-label': 'Records path' }, h('ol', {},
    h('li', {}, h('a', { href: ctx.tenantHash('records') }, 'Records')), h('li', {}, h('span', { 'aria-current': 'page' }, collection)))),
  h('form', { class: 'filters', role: 'search', 'aria-label': `Filter ${collection}`, onsubmit: (event) => {
    event.preventDefault();
    if (filterValue.value && !filterField.value) {
      status.textContent = 'Choose the field the value is for.';
      filterField.focus();
      return;
    }
    state.filterField = filterField.value;
    state.filterValue = filterValue.value;
    state.records = [];
    state.cursor = null;
    load();
  } }, search, filterField, filterValue, h('button', { type: 'submit' }, 'Filter')),
  status, body, more);

  // Typing filters what is loaded; when there is more on the server, its search finds
  // the rest of this collection's matches too.
  let searching = 0;
  search.addEventListener('input', async () => {
    state.text = search.value.trim().toLowerCase();
    draw();
    const mine = ++searching;
    if (state.done || state.text.length < 2) return;
    try {
      const { hits } = await api.get(`/tenants/${slug}/search`, { q: state.text, limit: 50 });
      const ids = hits.filter((x) => x.kind === 'record' && x.ref.startsWith(`${collection}/`))
        .map((x) => x.ref.slice(collection.length + 1))
        .filter((found) => !state.records.some((r) => r.id === found));
      const more = await Promise.all(ids.map((found) =>
        api.get(`/tenants/${slug}/records/${encodeURIComponent(collection)}/${encodeURIComponent(found)}`)));
      if (mine !== searching) return;
      state.records.push(...more);
      draw();
    } catch (e) {
      status.textContent = reason(e);
    }
  });

  function columns() {
    const counts = new Map();
    for (const r of state.records) for (const key of Object.keys(r.body)) counts.set(key, (counts.get(key) || 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 6).map(([k]) => k);
  }

  function draw() {
    const cols = columns();
    if (filterField.options.length === 0 || filterField.dataset.cols !== cols.join()) {
      fill(filterField, h('option', { value: '' }, 'Any field'), cols.map((c) => h('option', { value: c, selected: c === state.filterField }, c)));
      filterField.dataset.cols = cols.join();
    }
    const shown = state.text
      ? state.records.filter((r) => `${r.id} ${JSON.stringify(r.body)}`.toLowerCase().includes(state.text))
      : state.records;
    status.textContent = `${shown.length.toLocaleString()} shown${state.done ? '' : ' (more to load)'}`;
    if (shown.length === 0) return fill(body, empty(state.records.length ? 'Nothing matches.' : 'No records yet.'));
    return fill(body, h('table', { class: 'records' },
      h('caption', { class: 'visually-hidden' }, collection),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Id'), cols.map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, 'Updated'))),
      h('tbody', {}, shown.map((r) => h('tr', {},
        h('td', {}, h('a', { href: recordHash(ctx, collection, r.id) }, r.id)),
        cols.map((c) => h('td', {}, display(r.body[c]))),
        h('td', {}, time(r.updated_at)))))));
  }

  async function load() {
    more.hidden = true;
    const query = { limit: PAGE, cursor: state.cursor };
    if (state.filterField && state.filterValue) query[`eq.${state.filterField}`] = state.filterValue;
    try {
      const page = await api.get(`/tenants/${slug}/records/${encodeURIComponent(collection)}`, query);
      state.records.push(...page.records);
      state.cursor = page.next;
      state.done = !page.next;
      more.hidden = state.done;
      draw();
    } catch (e) {
      fill(body, h('p', { class: 'error', role: 'alert' }, reason(e)));
    }
  }
  await load();
}

// The form's fields: one per top-level key, typed by its value.
function fieldEditor(body, readOnly) {
  const rows = h('div', { class: 'record-fields' });
  function add(key, value) {
    const kind = value === null ? 'empty' : typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean'
      : typeof value === 'object' ? 'json' : 'text';
    const input = kind === 'boolean' ? h('input', { type: 'checkbox', checked: value, disabled: readOnly })
      : kind === 'json' ? h('textarea', { rows: 3, disabled: readOnly }, JSON.stringify(value, null, 2))
        : h('input', { type: kind === 'number' ? 'number' : 'text', step: 'any', value: display(value), disabled: readOnly,
          placeholder: kind === 'empty' ? 'empty' : null });
    input.dataset.key = key;
    input.dataset.kind = kind;
    const remove = readOnly ? null : h('button', { type: 'button', class: 'small', 'aria-label': `Remove field ${key}`,
      onclick: () => wrapper.remove() }, 'Remove');
    const wrapper = h('div', { class: 'record-field' }, field(key, input), remove);
    rows.append(wrapper);
  }
  for (const [key, value] of Object.entries(body)) add(key, value);
  const addField = readOnly ? null : h('button', { type: 'button', onclick: async () => {
    const key = await ask('Add a field', 'Field name', '', 'Add');
    if (key) add(key, '');
  } }, 'Add field');
  function read() {
    const out = {};
    for (const input of rows.querySelectorAll('[data-key]')) {
      const { key, kind } = input.dataset;
      if (kind === 'boolean') out[key] = input.checked;
      else if (kind === 'number') out[key] = input.value === '' ? null : Number(input.value);
      // A field that was empty (null) stays so unless something is typed into it.
      else if (kind === 'empty') out[key] = input.value === '' ? null : input.value;
      else if (kind === 'json') {
        try {
          out[key] = JSON.parse(input.value);
        } catch {
          throw new Error(`The field “${key}” is not valid JSON.`);
        }
      } else out[key] = input.value;
    }
    return out;
  }
  return { el: h('div', {}, rows, addField), read };
}

function versionTable(mine, theirs) {
  const keys = [...new Set([...Object.keys(mine), ...Object.keys(theirs)])];
  return h('table', { class: 'conflict' },
    h('caption', {}, 'Your version and the saved version'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Yours'), h('th', { scope: 'col' }, 'Saved'))),
    h('tbody', {}, keys.map((k) => {
      const differs = display(mine[k]) !== display(theirs[k]);
      return h('tr', { class: differs ? 'differs' : '' }, h('th', { scope: 'row' }, k, differs ? h('span', { class: 'visually-hidden' }, ' (differs)') : null),
        h('td', { class: 'mine' }, display(mine[k])), h('td', { class: 'theirs' }, display(theirs[k])));
    })));
}

async function renderRecord(main, ctx, collection, id) {
  const slug = ctx.session.tenant.tenant.slug;
  const writable = ctx.can('records_write');
  const base = `/tenants/${slug}/records/${encodeURIComponent(collection)}`;
  let record = null;
  let etag = null;
  if (id) {
    const answer = await api.call('GET', `${base}/${encodeURIComponent(id)}`);
    record = answer.data;
    etag = answer.etag;
  }
  const names = await api.actorNames(slug, ctx.can('members_read'));
  const editor = fieldEditor(record ? record.body : { name: '' }, !writable);
  const idInput = record ? null : h('input', { type: 'text', pattern: '[A-Za-z0-9_\\-]{1,128}', maxlength: 128, autocomplete: 'off' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const save = writable ? h('button', { type: 'submit', class: 'primary', id: 'save-record' }, record ? 'Save' : 'Create') : null;

  async function put(body, tag) {
    const answer = await api.call('PUT', `${base}/${encodeURIComponent(id)}`, { json: body, headers: { 'If-Match': tag } });
    return answer;
  }

  async function conflict(mine) {
    const current = await api.call('GET', `${base}/${encodeURIComponent(id)}`);
    const theirs = current.data;
    const by = theirs.updated_by ? names.get(theirs.updated_by) || theirs.updated_by : null;
    const choice = await dialog('Someone else saved this record first', [
      h('p', {}, `Version ${theirs.version} was saved ${by ? `by ${by} ` : ''}while you were editing. `,
        'Choose which to keep; nothing has been overwritten.'),
      versionTable(mine, theirs.body),
    ], [
      { value: 'theirs', label: 'Keep the saved version' },
      { value: 'mine', label: 'Save mine over it', class: 'primary' },
    ]);
    if (choice === 'mine') {
      const answer = await put(mine, current.etag);
      toast('Your version is saved');
      return answer;
    }
    if (choice === 'theirs') {
      toast('Kept the saved version');
      ctx.navigate(location.hash);
    }
    return null;
  }

  const form = h('form', { class: 'record', onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    save.disabled = true;
    try {
      const body = editor.read();
      if (record) {
        try {
          const answer = await put(body, etag);
          toast('Saved');
          record = answer.data;
          etag = answer.etag;
        } catch (e) {
          if (e.status !== 412) throw e;
          const answer = await conflict(body);
          if (answer) {
            record = answer.data;
            etag = answer.etag;
          }
        }
      } else {
        const created = await api.call('POST', base, { json: body, query: { id: idInput.value.trim() || undefined } });
        toast('Created');
        ctx.navigate(recordHash(ctx, collection, created.data.id));
      }
    } catch (e) {
      error.textContent = reason(e);
      error.hidden = false;
    } finally {
      save.disabled = false;
    }
  } },
  idInput ? field('Id (optional: one is made for you)', idInput, 'Letters, digits, hyphens and underscores.') : null,
  editor.el, error, h('div', { class: 'actions' }, save,
    record && writable ? h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!await confirm(`Delete ${collection} ${id}?`, 'This record will be deleted.', 'Delete')) return;
      try {
        await api.call('DELETE', `${base}/${encodeURIComponent(id)}`, { headers: { 'If-Match': etag } });
        toast('Deleted');
        ctx.navigate(recordHash(ctx, collection));
      } catch (e) {
        toast(e.status === 412 ? 'Someone changed this record since you opened it; reload to see it.' : reason(e), 'error');
      }
    } }, 'Delete') : null));

  fill(main, heading(record ? `${collection} · ${id}` : `New record in ${collection}`),
    h('nav', { class: 'crumbs', 'aria-label': 'Records path' }, h('ol', {},
      h('li', {}, h('a', { href: ctx.tenantHash('records') }, 'Records')),
      h('li', {}, h('a', { href: recordHash(ctx, collection) }, collection)),
      h('li', {}, h('span', { 'aria-current': 'page' }, id || 'new')))),
    record ? h('p', { class: 'meta' }, `Version ${record.version} · updated `, time(record.updated_at),
      record.updated_by ? ` by ${names.get(record.updated_by) || record.updated_by}` : '') : null,
    form);
}
