// API tokens, for programs and desktop clients: create one (its secret shown once, with
// a copy button, and the address that maps the business's files as a drive), see when
// each was last used, revoke.

import * as api from '../api.js';
import { h, fill, toast, reason, confirm, heading, field, time, table, dialog, empty } from '../ui.js';

export async function render(main, ctx) {
  const { tokens } = await api.get('/auth/tokens');
  const memberships = ctx.session.me.memberships;
  const byId = new Map(memberships.map((m) => [m.tenant_id, m]));
  const reload = () => ctx.navigate(location.hash);

  const name = h('input', { type: 'text', required: true, maxlength: 100, placeholder: 'backup script' });
  const tenant = h('select', {}, memberships.map((m) => h('option', { value: m.slug }, m.tenant_name)));
  const role = h('select', {});
  const days = h('input', { type: 'number', min: 1, max: 3650, value: 90 });
  function rolesFor() {
    const m = memberships.find((x) => x.slug === tenant.value);
    const at = m ? api.ROLES.indexOf(m.role) : api.ROLES.length;
    fill(role, api.ROLES.filter((r, i) => (m && m.role === 'auditor' ? r === 'auditor' : i >= at && r !== 'auditor'))
      .map((r) => h('option', { value: r, selected: r === 'viewer' }, r)));
  }
  tenant.addEventListener('change', rolesFor);
  rolesFor();

  const form = memberships.length ? h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      const created = await api.post('/auth/tokens', {
        tenant: tenant.value, role: role.value, name: name.value.trim(),
        expires_in_days: days.value ? Number(days.value) : null,
      });
      const secret = h('input', { type: 'text', readonly: true, value: created.token, class: 'secret', 'aria-label': 'The token' });
      const copied = h('span', { role: 'status' });
      const copy = h('button', { type: 'button', id: 'copy-token', onclick: async () => {
        secret.select();
        try {
          await navigator.clipboard.writeText(created.token);
          copied.textContent = 'Copied';
        } catch {
          copied.textContent = 'Select the text and copy it';
        }
      } }, 'Copy');
      // The address to map the business's files as a drive (WebDAV), with this token.
      const drive = `${location.origin}/dav/${encodeURIComponent(tenant.value)}/`;
      await dialog('Your new token', [
        h('p', {}, 'Copy it now: it is shown only this once. Use it as a bearer token, or as the password with your e-mail address.'),
        h('div', { class: 'copy-row' }, secret, copy, copied),
        h('p', {}, 'To open these files as a drive (Windows "Map network drive", macOS "Connect to Server", rclone), use the address ',
          h('code', { id: 'drive-address' }, drive), ', your e-mail address as the user name and this token as the password.')],
      [{ value: 'done', label: 'Done', class: 'primary' }]);
      reload();
    } catch (e) {
      toast(`Token not created: ${reason(e)}`, 'error');
    }
  } }, h('h2', {}, 'Create a token'), field('Name', name), field('Business', tenant), field('Role', role, 'No higher than yours.'),
  field('Expires after (days)', days), h('button', { type: 'submit', class: 'primary' }, 'Create token')) : null;

  const live = tokens.filter((t) => !t.revoked_at);
  fill(main, heading('API tokens'),
    h('p', { class: 'intro' }, 'Tokens let programs and desktop clients reach one business with a role you choose.'),
    live.length === 0 ? empty('You have no tokens.') : table('Your API tokens', ['Name', 'Business', 'Role', 'Created', 'Last used', 'Expires', ''],
      live.map((t) => [t.name, (byId.get(t.tenant_id) || {}).tenant_name || t.tenant_id, t.role, time(t.created_at),
        t.last_used_at ? time(t.last_used_at) : 'never', t.expires_at ? time(t.expires_at) : 'never',
        h('button', { type: 'button', class: 'small danger', onclick: async () => {
          if (!await confirm(`Revoke “${t.name}”?`, 'Programs using it stop working at once.', 'Revoke')) return;
          try {
            await api.del(`/auth/tokens/${t.id}`);
            toast('Token revoked');
            reload();
          } catch (e) {
            toast(reason(e), 'error');
          }
        } }, 'Revoke')])),
    form);
}
