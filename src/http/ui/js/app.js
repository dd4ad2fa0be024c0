// The web UI's shell: who is signed in, which tenant is open, the navigation (only what
// the caller's permissions allow: the server sends them with the tenant), and a
// hash router that hands each address to its view. Views live in ./views/.

import * as api from './api.js';
import { h, fill, toast, reason } from './ui.js';
import * as signin from './views/signin.js';
import * as files from './views/files.js';
import * as trash from './views/trash.js';
import * as records from './views/records.js';
import * as search from './views/search.js';
import * as people from './views/people.js';
import * as tokens from './views/tokens.js';
import * as activity from './views/activity.js';
import * as portability from './views/portability.js';
import * as account from './views/account.js';
import * as operator from './views/operator.js';

const root = document.getElementById('app');
const session = { me: null, tenant: null };

// The sections of a tenant, each shown when the caller holds its permission.
const sections = [
  { id: 'files', label: 'Files', needs: 'files_read', view: files },
  { id: 'trash', label: 'Trash', needs: 'files_read', view: trash },
  { id: 'records', label: 'Records', needs: 'records_read', view: records },
  { id: 'search', label: 'Search', needs: 'search', view: search },
  { id: 'people', label: 'People', needs: 'members_read', view: people },
  { id: 'activity', label: 'Activity', needs: 'audit_read', view: activity },
  { id: 'data', label: 'Your data', needs: ['export', 'import', 'lifecycle'], view: portability },
];

export function can(permission) {
  const held = session.tenant ? session.tenant.permissions : [];
  const wanted = Array.isArray(permission) ? permission : [permission];
  return wanted.some((p) => held.includes(p));
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function tenantHash(section, rest = '') {
  return `#/t/${session.tenant.tenant.slug}/${section}${rest ? `/${rest}` : ''}`;
}

async function loadMe() {
  try {
    session.me = await api.get('/auth/me');
    api.setCsrfToken(session.me.csrf_token);
  } catch (error) {
    if (error.status !== 401) toast(reason(error), 'error');
    session.me = null;
  }
  return session.me;
}

export async function signedIn(me) {
  session.me = me;
  api.setCsrfToken(me.csrf_token);
  const first = me.memberships[0];
  navigate(first ? `#/t/${first.slug}/${firstSection(first.role)}`
    : me.user.is_operator ? '#/operator' : '#/account');
}

function firstSection(role) {
  return role === 'auditor' ? 'activity' : 'files';
}

// Forgets who was signed in (after sign-out, account deletion or an ended session).
export function forget() {
  session.me = null;
  session.tenant = null;
  api.setCsrfToken(null);
  navigate('#/signin');
}

export async function signOut() {
  try {
    await api.post('/auth/logout');
  } catch (error) {
    if (error.status !== 401) toast(reason(error), 'error');
  }
  forget();
}

api.onSignedOut(() => {
  if (!session.me) return;
  toast('Your session has ended. Please sign in again.', 'error');
  forget();
});

// A file dropped outside a drop zone must not make the browser open it in place of Coffer.
for (const type of ['dragover', 'drop']) {
  window.addEventListener(type, (event) => {
    if (event.dataTransfer && event.dataTransfer.types.includes('Files')) event.preventDefault();
  });
}

async function openTenant(slug) {
  if (session.tenant && session.tenant.tenant.slug === slug) return session.tenant;
  session.tenant = await api.get(`/tenants/${encodeURIComponent(slug)}`);
  return session.tenant;
}

// The business in use, and (for members of several) links to the others: links, not a
// drop-down that acts on change, so browsing the list with the keyboard moves nobody.
function tenantPicker() {
  const memberships = session.me.memberships;
  if (memberships.length === 0) return null;
  if (memberships.length === 1) return h('span', { class: 'tenant-name' }, memberships[0].tenant_name);
  const current = session.tenant && memberships.find((m) => m.slug === session.tenant.tenant.slug);
  return h('details', { class: 'menu tenant-picker', id: 'tenant-picker' },
    h('summary', {}, current ? current.tenant_name : 'Choose a business',
      h('span', { class: 'visually-hidden' }, ' (switch business)')),
    h('div', { class: 'menu-items' }, memberships.map((m) => h('a', {
      href: `#/t/${m.slug}/${firstSection(m.role)}`,
      'aria-current': current === m ? 'true' : false,
      dataset: { slug: m.slug },
    }, `${m.tenant_name} (${m.role})`))));
}

function searchBox() {
  if (!session.tenant || !can('search')) return null;
  const input = h('input', { type: 'search', name: 'q', placeholder: 'Search records and files',
    'aria-label': 'Search records and files', id: 'global-search' });
  return h('form', { class: 'global-search', role: 'search', 'aria-label': 'Everything', onsubmit: (event) => {
    event.preventDefault();
    navigate(`${tenantHash('search')}?q=${encodeURIComponent(input.value.trim())}`);
  } }, input, h('button', { type: 'submit' }, 'Search'));
}

function shell(active) {
  const me = session.me;
  const nav = h('ul', {});
  if (session.tenant) {
    for (const section of sections) {
      if (!can(section.needs)) continue;
      nav.append(h('li', {}, h('a', {
        href: tenantHash(section.id),
        'aria-current': active === section.id ? 'page' : false,
      }, section.label)));
    }
  }
  nav.append(h('li', {}, h('a', { href: '#/tokens', 'aria-current': active === 'tokens' ? 'page' : false }, 'API tokens')));
  nav.append(h('li', {}, h('a', { href: '#/account', 'aria-current': active === 'account' ? 'page' : false }, 'Your account')));
  if (me.user.is_operator) {
    nav.append(h('li', {}, h('a', { href: '#/operator', 'aria-current': active === 'operator' ? 'page' : false }, 'Operator console')));
  }
  const main = h('main', { id: 'main', tabindex: '-1' });
  const skip = h('a', { class: 'skip', href: '#main', onclick: (event) => {
    event.preventDefault();
    main.focus();
  } }, 'Skip to content');
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'mark', 'aria-hidden': 'true' }), 'Coffer'),
    tenantPicker(),
    searchBox(),
    h('div', { class: 'who' },
      h('span', { class: 'user' }, me.user.name || me.user.email,
        session.tenant && session.tenant.role ? h('span', { class: 'role' }, session.tenant.role) : null),
      h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out')));
  fill(root, skip, header,
    h('div', { class: 'layout' }, h('nav', { 'aria-label': 'Sections' }, nav), main));
  return main;
}

function bare() {
  const main = h('main', { id: 'main', class: 'bare', tabindex: '-1' });
  fill(root, main);
  return main;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart] = raw.split('?');
  const parts = pathPart.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, query: new URLSearchParams(queryPart || '') };
}

let routing = 0;
async function route() {
  const turn = ++routing;
  const { parts, query } = parseHash();
  const [first, ...rest] = parts;
  if (['signin', 'reset', 'welcome'].includes(first)) {
    if (first === 'signin' && session.me) return navigate('#/');
    return signin.render(bare(), { mode: first, token: rest[0] || query.get('token') || '', signedIn });
  }
  if (!session.me && !(await loadMe())) {
    if (turn !== routing) return undefined;
    return navigate('#/signin');
  }
  if (turn !== routing) return undefined;
  const ctx = { session, can, navigate, tenantHash, query, signOut, forget, refreshMe: loadMe };
  try {
    if (first === 't' && rest[0]) {
      await openTenant(rest[0]);
      const section = sections.find((s) => s.id === rest[1] && can(s.needs)) || sections.find((s) => can(s.needs));
      if (!section) return fill(shell(), h('h1', { tabindex: '-1' }, 'Nothing to show'), h('p', {}, 'Your role has no sections here.'));
      return show(section.view, shell(section.id), ctx, rest.slice(2));
    }
    session.tenant = null;
    if (first === 'tokens') return show(tokens, shell('tokens'), ctx);
    if (first === 'account') return show(account, shell('account'), ctx);
    if (first === 'operator' && session.me.user.is_operator) return show(operator, shell('operator'), ctx, rest);
    const m = session.me.memberships;
    if (m.length === 1) return navigate(`#/t/${m[0].slug}/${firstSection(m[0].role)}`);
    return chooseTenant(shell('home'));
  } catch (error) {
    const main = document.getElementById('main') || shell();
    return fill(main, h('div', { class: 'problem', role: 'alert' },
      h('h1', {}, error.status === 404 ? 'Not found' : 'This page could not be shown'),
      h('p', {}, reason(error)), h('p', {}, h('a', { href: '#/' }, 'Back to the start'))));
  }
}

// Draws a view; then its heading takes focus, so keyboard and screen-reader users start
// at the top of what changed.
async function show(view, main, ctx, rest = []) {
  await view.render(main, ctx, rest);
  const heading = main.querySelector('h1');
  if (heading) heading.focus({ preventScroll: true });
}

function chooseTenant(main) {
  const m = session.me.memberships;
  fill(main, h('h1', { tabindex: '-1' }, 'Choose a business'),
    m.length === 0
      ? h('p', {}, 'You are not a member of any business yet. Ask its owner to invite you.')
      : h('ul', { class: 'cards' }, m.map((x) => h('li', {}, h('a', { href: `#/t/${x.slug}/${firstSection(x.role)}` },
        h('strong', {}, x.tenant_name), h('span', {}, ` your role: ${x.role}`))))));
}

window.addEventListener('hashchange', route);
route();
