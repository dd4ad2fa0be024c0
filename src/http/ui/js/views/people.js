// People: the members of a business and their roles. Owners and admins invite by e-mail
// (someone without an account gets an invitation to set a password), change roles and
// remove members; the server's rules hold (an admin never touches owners, the last owner
// stays), and a refusal is shown in its words.

import * as api from '../api.js';
import { h, fill, toast, reason, confirm, heading, field, table } from '../ui.js';

const { ROLES } = api;
const ABOUT = {
  owner: 'everything, including the business itself',
  admin: 'all files and records, and people (not owners)',
  member: 'reads and writes files and records',
  viewer: 'reads files and records',
  auditor: 'the activity log and usage, no content',
};

export async function render(main, ctx) {
  const slug = ctx.session.tenant.tenant.slug;
  const manage = ctx.can('members_manage');
  const me = ctx.session.me.user.id;
  const { members } = await api.get(`/tenants/${slug}/members`);
  const reload = () => ctx.navigate(location.hash);

  async function change(member, role, select) {
    try {
      await api.patch(`/tenants/${slug}/members/${member.user_id}`, { role });
      toast(`${member.name || member.email} is now ${role}`);
      reload();
    } catch (e) {
      select.value = member.role;
      toast(`Role not changed: ${reason(e)}`, 'error');
    }
  }
  async function remove(member) {
    if (!await confirm(`Remove ${member.name || member.email}?`, 'They lose access to this business at once.', 'Remove')) return;
    try {
      await api.del(`/tenants/${slug}/members/${member.user_id}`);
      toast(`${member.name || member.email} removed`);
      reload();
    } catch (e) {
      toast(`Not removed: ${reason(e)}`, 'error');
    }
  }

  // The same rule as the server's: only an owner grants, changes or removes owners.
  const isOwner = ctx.session.tenant.role === 'owner';
  const grantable = ROLES.filter((r) => r !== 'owner' || isOwner);
  const rows = members.map((m) => {
    const editable = manage && m.user_id !== me && (m.role !== 'owner' || isOwner);
    const who = m.name || m.email;
    let role = m.role;
    if (editable) {
      // A role changes on its button, never while the list is browsed with the keyboard.
      const select = h('select', { 'aria-label': `Role of ${who}` },
        grantable.map((r) => h('option', { value: r, selected: r === m.role }, r)));
      role = h('span', { class: 'actions' }, select,
        h('button', { type: 'button', class: 'small', onclick: () => {
          if (select.value !== m.role) change(m, select.value, select);
        } }, h('span', {}, 'Change role'), h('span', { class: 'visually-hidden' }, ` of ${who}`)));
    }
    return [h('span', {}, m.name || '—', m.user_id === me ? ' (you)' : ''), m.email, role,
      editable ? h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${who}`, onclick: () => remove(m) }, 'Remove') : ''];
  });

  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const role = h('select', {}, grantable
    .map((r) => h('option', { value: r, selected: r === 'member' }, `${r}: ${ABOUT[r]}`)));
  const invite = manage ? h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api.call('POST', `/tenants/${slug}/members`, { json: { email: email.value.trim(), role: role.value } });
      toast(answer.data && answer.data.invited
        ? `Invitation sent to ${email.value.trim()}` : `${email.value.trim()} added`);
      reload();
    } catch (e) {
      toast(`Not invited: ${reason(e)}`, 'error');
    }
  } }, h('h2', {}, 'Invite someone'), field('E-mail address', email), field('Role', role),
  h('button', { type: 'submit', class: 'primary' }, 'Invite')) : null;

  fill(main, heading('People'),
    table('Members and roles', ['Name', 'E-mail', 'Role', ''], rows),
    invite,
    h('section', {}, h('h2', {}, 'What each role may do'),
      h('dl', { class: 'roles' }, ROLES.map((r) => [h('dt', {}, r), h('dd', {}, ABOUT[r])]))));
}
