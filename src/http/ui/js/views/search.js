// One box over records and file names: results grouped by kind, each linked to its
// record or its folder. Words match as prefixes, so results come while typing.

import * as api from '../api.js';
import { h, fill, empty, heading, reason } from '../ui.js';

// The snippet with the server's [matched] words marked (as text nodes: never markup).
function marked(snippet) {
  return snippet.split(/(\[[^\]]*\])/).map((part) => (part.startsWith('[') && part.endsWith(']')
    ? h('mark', {}, part.slice(1, -1)) : part));
}

export async function render(main, ctx) {
  const slug = ctx.session.tenant.tenant.slug;
  const input = h('input', { type: 'search', value: ctx.query.get('q') || '', 'aria-label': 'Search records and files', id: 'search-page-box' });
  const results = h('div', { 'aria-live': 'polite' });
  let turn = 0;

  async function run() {
    const q = input.value.trim();
    const mine = ++turn;
    if (!q) return fill(results, empty('Type a name, a number, a word from a record or a file name.'));
    try {
      const { hits } = await api.get(`/tenants/${slug}/search`, { q, limit: 50 });
      if (mine !== turn) return undefined;
      const records = hits.filter((x) => x.kind === 'record');
      const files = hits.filter((x) => x.kind !== 'record');
      if (hits.length === 0) return fill(results, empty(`Nothing found for “${q}”.`));
      return fill(results,
        records.length ? h('section', { class: 'hits' }, h('h2', {}, `Records (${records.length})`),
          h('ul', {}, records.map((hit) => {
            const [collection, ...id] = hit.ref.split('/');
            return h('li', {}, h('a', { href: ctx.tenantHash('records', [collection, id.join('/')].map(encodeURIComponent).join('/')) }, hit.ref),
              h('p', { class: 'snippet' }, marked(hit.snippet)));
          }))) : null,
        files.length ? h('section', { class: 'hits' }, h('h2', {}, `Files (${files.length})`),
          h('ul', {}, files.map((hit) => {
            const folder = hit.ref.includes('/') ? hit.ref.slice(0, hit.ref.lastIndexOf('/')) : '';
            return h('li', {}, h('a', { href: ctx.tenantHash('files', folder.split('/').filter(Boolean).map(encodeURIComponent).join('/')) }, hit.ref),
              h('p', { class: 'snippet' }, marked(hit.snippet)));
          }))) : null);
    } catch (e) {
      return fill(results, h('p', { class: 'error', role: 'alert' }, reason(e)));
    }
  }

  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  });
  fill(main, heading('Search'), h('form', { role: 'search', 'aria-label': 'Search page', onsubmit: (event) => {
    event.preventDefault();
    run();
  } }, input, h('button', { type: 'submit' }, 'Search')), results);
  await run();
}
