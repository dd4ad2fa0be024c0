// A tenant's files: one folder at a time, with breadcrumbs, sorting by name, size and
// date, and pages of rows (a 10,000-entry folder arrives in pages of 1,000 and only 100
// rows are drawn at once, so the page never freezes). Uploads are ./upload.js's,
// previews ./preview.js's; everything else is a call to /api/v1.

import * as api from '../api.js';
import { h, fill, bytes, time, toast, reason, ask, confirm, empty, heading } from '../ui.js';
import { uploader } from './upload.js';
import { preview } from './preview.js';

const FETCH_PAGE = 1000;
const SHOWN_PAGE = 100;

function folderIcon(kind) {
  return h('span', { class: `icon ${kind}`, 'aria-hidden': 'true' });
}

function parentOf(path) {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at);
}

function join(dir, name) {
  return dir ? `${dir}/${name}` : name;
}

function breadcrumbs(ctx, path) {
  const parts = path ? path.split('/') : [];
  const items = [h('li', {}, parts.length ? h('a', { href: ctx.tenantHash('files') }, 'All files')
    : h('span', { 'aria-current': 'page' }, 'All files'))];
  parts.forEach((part, i) => {
    const here = parts.slice(0, i + 1).join('/');
    items.push(h('li', {}, i === parts.length - 1
      ? h('span', { 'aria-current': 'page' }, part)
      : h('a', { href: ctx.tenantHash('files', here.split('/').map(encodeURIComponent).join('/')) }, part)));
  });
  return h('nav', { 'aria-label': 'Folder path', class: 'crumbs' }, h('ol', {}, items));
}

const sorters = {
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }),
  size: (a, b) => a.size - b.size,
  date: (a, b) => a.modified_at.localeCompare(b.modified_at),
};

export async function render(main, ctx, rest) {
  const slug = ctx.session.tenant.tenant.slug;
  const path = rest.filter(Boolean).join('/');
  const writable = ctx.can('files_write');
  const state = { entries: [], complete: false, sort: 'name', ascending: true, page: 0 };
  const listing = h('div', { class: 'listing' });
  const progress = h('p', { class: 'status', id: 'listing-status', role: 'status', 'aria-live': 'polite' });

  // Changes redraw the listing only: the upload panel keeps each file's outcome.
  const reload = () => load();
  const queue = writable ? uploader(slug, () => path, reload) : null;

  const toolbar = h('div', { class: 'toolbar' },
    writable ? queue.pickFiles : null,
    writable ? queue.pickFolder : null,
    writable ? h('button', { type: 'button', id: 'new-folder', onclick: async () => {
      const name = await ask('New folder', 'Folder name', '', 'Create');
      if (!name) return;
      try {
        await api.post(`/tenants/${slug}/dirs`, { path: join(path, name) });
        toast(`Folder “${name}” created`);
        reload();
      } catch (e) {
        toast(`Folder not created: ${reason(e)}`, 'error');
      }
    } }, 'New folder') : null);

  fill(main,
    heading(path ? path.split('/').pop() : 'All files', toolbar),
    breadcrumbs(ctx, path),
    writable ? queue.panel : null,
    progress, listing);
  if (writable) queue.dropOn(main);

  function sortHeader(key, label) {
    const active = state.sort === key;
    return h('th', { scope: 'col', 'aria-sort': active ? (state.ascending ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort', onclick: () => {
        state.ascending = active ? !state.ascending : true;
        state.sort = key;
        state.page = 0;
        draw();
      } }, label, h('span', { class: 'arrow', 'aria-hidden': 'true' }, active ? (state.ascending ? ' ▲' : ' ▼') : '')));
  }

  function sorted() {
    const by = sorters[state.sort];
    const sign = state.ascending ? 1 : -1;
    // Folders first, as in every file manager.
    return [...state.entries].sort((a, b) => (a.kind === b.kind ? sign * by(a, b) || sorters.name(a, b)
      : a.kind === 'dir' ? -1 : 1));
  }

  function actions(entry) {
    const items = [];
    if (entry.kind === 'file') {
      items.push(h('a', { href: api.fileUrl(slug, entry.path), download: entry.name, dataset: { action: 'download' } }, 'Download'));
      items.push(h('button', { type: 'button', dataset: { action: 'preview' }, onclick: () => preview(slug, entry) }, 'Preview'));
    }
    if (writable) {
      items.push(h('button', { type: 'button', dataset: { action: 'rename' }, onclick: () => rename(entry) }, 'Rename'));
      items.push(h('button', { type: 'button', dataset: { action: 'move' }, onclick: () => move(entry) }, 'Move'));
      items.push(h('button', { type: 'button', class: 'danger', dataset: { action: 'delete' }, onclick: () => trash(entry) }, 'Delete'));
    }
    return h('details', { class: 'menu' },
      h('summary', { 'aria-label': `Actions for ${entry.name}` }, '⋯'),
      h('div', { class: 'menu-items' }, items));
  }

  async function rename(entry) {
    const name = await ask(`Rename “${entry.name}”`, 'New name', entry.name, 'Rename');
    if (!name || name === entry.name) return;
    try {
      await api.post(`/tenants/${slug}/move`, { from: entry.path, to: join(parentOf(entry.path), name) });
      toast(`Renamed to “${name}”`);
      reload();
    } catch (e) {
      toast(`Not renamed: ${reason(e)}`, 'error');
    }
  }

  async function move(entry) {
    const dest = await ask(`Move “${entry.name}”`, 'To folder (empty for the top level)', path, 'Move');
    if (dest === null) return;
    const to = join(dest.replace(/^\/+|\/+$/g, ''), entry.name);
    try {
      await api.post(`/tenants/${slug}/move`, { from: entry.path, to });
      toast(`Moved to ${dest || 'the top level'}`);
      reload();
    } catch (e) {
      toast(`Not moved: ${reason(e)}`, 'error');
    }
  }

  async function trash(entry) {
    if (!await confirm(`Delete “${entry.name}”?`, 'It goes to the trash, where you can restore it.', 'Delete')) return;
    try {
      await api.del(`/tenants/${slug}/files/${api.segments(entry.path)}`);
      toast(`“${entry.name}” moved to the trash`);
      reload();
    } catch (e) {
      toast(`Not deleted: ${reason(e)}`, 'error');
    }
  }

  function row(entry) {
    const name = entry.kind === 'dir'
      ? h('a', { href: ctx.tenantHash('files', entry.path.split('/').map(encodeURIComponent).join('/')) }, entry.name)
      : h('button', { type: 'button', class: 'link', onclick: () => preview(slug, entry) }, entry.name);
    return h('tr', { dataset: { path: entry.path } },
      h('td', { class: 'name' }, folderIcon(entry.kind), name),
      h('td', { class: 'num' }, entry.kind === 'dir' ? '' : bytes(entry.size)),
      h('td', {}, time(entry.modified_at)),
      h('td', { class: 'actions' }, actions(entry)));
  }

  function pager(total) {
    const pages = Math.ceil(total / SHOWN_PAGE);
    if (pages <= 1) return null;
    const first = state.page * SHOWN_PAGE;
    const go = (page) => () => {
      state.page = page;
      draw();
      listing.querySelector('table').focus();
    };
    return h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', disabled: state.page === 0, onclick: go(state.page - 1) }, 'Previous'),
      h('span', {}, `${first + 1}–${Math.min(first + SHOWN_PAGE, total)} of ${total.toLocaleString()}${state.complete ? '' : '+'}`),
      h('button', { type: 'button', disabled: state.page >= pages - 1, onclick: go(state.page + 1) }, 'Next'));
  }

  function draw() {
    if (state.entries.length === 0) {
      fill(listing, state.complete ? empty(writable
        ? 'This folder is empty. Drop files here, or use Upload files.' : 'This folder is empty.') : null);
      return;
    }
    const all = sorted();
    const shown = all.slice(state.page * SHOWN_PAGE, (state.page + 1) * SHOWN_PAGE);
    fill(listing,
      h('table', { class: 'files', tabindex: '-1' },
        h('caption', { class: 'visually-hidden' }, `Contents of ${path || 'the top level'}`),
        h('thead', {}, h('tr', {}, sortHeader('name', 'Name'), sortHeader('size', 'Size'),
          sortHeader('date', 'Modified'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, shown.map(row))),
      pager(all.length));
  }

  // Pages of the folder, drawn as soon as the first arrives; a newer load supersedes.
  const base = path ? `/tenants/${slug}/tree/${api.segments(path)}` : `/tenants/${slug}/tree`;
  let loads = 0;
  async function load() {
    const mine = ++loads;
    const entries = [];
    let after = null;
    progress.textContent = 'Loading…';
    try {
      for (;;) {
        const page = await api.get(base, { limit: FETCH_PAGE, after });
        if (!main.isConnected || mine !== loads) return;
        entries.push(...page.entries);
        after = page.next;
        state.entries = entries;
        state.complete = !after;
        draw();
        if (!after) break;
        progress.textContent = `Loading… ${entries.length.toLocaleString()} items so far`;
      }
      progress.textContent = `${entries.length.toLocaleString()} ${entries.length === 1 ? 'item' : 'items'}`;
    } catch (e) {
      progress.textContent = '';
      fill(listing, h('p', { class: 'error', role: 'alert' }, e.status === 404
        ? 'This folder does not exist (it may have been moved or deleted).' : reason(e)));
    }
  }
  await load();
}
