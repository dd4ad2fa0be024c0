// Activity, for owners, admins and auditors: storage used against the quota, recent
// logins with time and address, and the audit trail with filters (dates, action, who),
// a page at a time. An auditor reads all of this and no content.

import * as api from '../api.js';
import { h, fill, bytes, time, reason, heading, table, empty, field } from '../ui.js';

const ACTIONS = ['file.write', 'file.read', 'file.move', 'file.properties', 'file.delete', 'file.restore', 'file.purge', 'dir.create',
  'record.create', 'record.update', 'record.delete', 'member.add', 'member.role_change', 'member.remove',
  'auth.login', 'auth.login_failed', 'auth.logout', 'auth.session_revoke', 'token.create', 'token.revoke',
  'access.denied', 'export.start', 'export.finish', 'vault.import', 'tenant.state_change', 'usage.ai_report'];

function usagePanel(usage) {
  const used = usage.counters.bytes_stored || 0;
  const quota = usage.quota_bytes;
  const share = quota ? Math.min(100, (100 * used) / quota) : 0;
  return h('section', { class: 'usage' }, h('h2', {}, 'Storage'),
    quota ? h('meter', { min: 0, max: quota, value: used, 'aria-label': 'Storage used', id: 'storage-meter' }) : null,
    h('p', {}, `${bytes(used)} used`, quota ? ` of ${bytes(quota)} (${share.toFixed(share < 1 ? 2 : 0)}%)` : ' (no quota)',
      ` · ${(usage.counters.files_stored || 0).toLocaleString()} files · ${(usage.counters.records_stored || 0).toLocaleString()} records`,
      usage.counters.trash_bytes ? ` · ${bytes(usage.counters.trash_bytes)} in the trash` : ''));
}

function loginsPanel(usage) {
  return h('section', {}, h('h2', {}, 'Recent sign-ins'),
    usage.recent_logins.length === 0 ? empty('No sign-ins yet.')
      : table('Recent sign-ins', ['When', 'Who', 'Address', 'Result'],
        usage.recent_logins.map((l) => [time(l.at), l.email, l.ip || '', l.success ? 'signed in' : 'failed'])));
}

export async function render(main, ctx) {
  const slug = ctx.session.tenant.tenant.slug;
  const trail = h('div', {});
  const more = h('button', { type: 'button', hidden: true }, 'Older events');
  const since = h('input', { type: 'date' });
  const until = h('input', { type: 'date' });
  const action = h('select', {}, h('option', { value: '' }, 'Any action'), ACTIONS.map((a) => h('option', { value: a }, a)));
  const actor = h('input', { type: 'text', placeholder: 'user:… or token:…', autocomplete: 'off' });
  const rows = [];
  let after = null;

  async function load(reset) {
    if (reset) {
      rows.length = 0;
      after = null;
    }
    more.hidden = true;
    try {
      const page = await api.get(`/tenants/${slug}/audit`, {
        limit: 100, after,
        since: since.value ? `${since.value}T00:00:00Z` : null,
        until: until.value ? `${until.value}T23:59:59Z` : null,
        action: action.value || null, actor: actor.value.trim() || null,
      });
      rows.push(...page.events);
      after = page.next;
      more.hidden = page.next === null || page.next === undefined || page.events.length === 0;
      fill(trail, rows.length === 0 ? empty('No events match.') : table('Audit trail', ['When', 'Who', 'Action', 'Target', 'Result', 'Address'],
        rows.map((e) => [time(e.at), names.get(e.actor) || e.actor, e.action, [e.target, e.destination ? ` → ${e.destination}` : ''].join(''), e.outcome, e.ip || '']), 'audit'));
    } catch (e) {
      fill(trail, h('p', { class: 'error', role: 'alert' }, reason(e)));
    }
  }
  more.addEventListener('click', () => load(false));

  const usage = ctx.can('usage_read') ? await api.get(`/tenants/${slug}/usage`) : null;
  const names = await api.actorNames(slug, ctx.can('members_read'));
  fill(main, heading('Activity'),
    usage ? usagePanel(usage) : null,
    usage ? loginsPanel(usage) : null,
    h('section', {}, h('h2', {}, 'Audit trail'),
      h('form', { class: 'filters', onsubmit: (event) => {
        event.preventDefault();
        load(true);
      } }, field('From', since), field('To', until), field('Action', action), field('Who', actor),
      h('button', { type: 'submit' }, 'Filter')),
      trail, more));
  await load(true);
}
