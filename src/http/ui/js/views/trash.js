// The trash: what was deleted, by whom and when; restore (to where it was, or elsewhere
// when that place is taken) and, for owners and admins, delete for good.

import * as api from '../api.js';
import { h, fill, bytes, time, toast, reason, ask, confirm, empty, heading, table } from '../ui.js';

export async function render(main, ctx) {
  const slug = ctx.session.tenant.tenant.slug;
  const restorable = ctx.can('files_write');
  const purgeable = ctx.can('trash_purge');
  const list = h('div', {});
  fill(main, heading('Trash'), h('p', { class: 'intro' },
    'Deleted files and folders wait here until they are restored or the retention period ends.'), list);
  const { items } = await api.get(`/tenants/${slug}/trash`);
  if (items.length === 0) return fill(list, empty('The trash is empty.'));

  const reload = () => ctx.navigate(location.hash);
  async function restore(item, to) {
    try {
      await api.post(`/tenants/${slug}/trash/${encodeURIComponent(item.id)}/restore`, to ? { to } : null);
      toast(`Restored ${to || item.original_path}`);
      reload();
    } catch (e) {
      if (e.status === 409) {
        const elsewhere = await ask('That place is taken', `Restore “${item.original_path}” as`, `${item.original_path} (restored)`, 'Restore');
        if (elsewhere) restore(item, elsewhere);
      } else {
        toast(`Not restored: ${reason(e)}`, 'error');
      }
    }
  }
  async function purge(item) {
    if (!await confirm(`Delete “${item.original_path}” for good?`, 'This cannot be undone.', 'Delete for good')) return;
    try {
      await api.del(`/tenants/${slug}/trash/${encodeURIComponent(item.id)}`);
      toast(`Deleted ${item.original_path} for good`);
      reload();
    } catch (e) {
      toast(`Not deleted: ${reason(e)}`, 'error');
    }
  }
  return fill(list, table('Items in the trash', ['Name', 'Size', 'Deleted', 'By', ''], items.map((item) => [
    h('span', { class: 'name' }, h('span', { class: `icon ${item.kind}`, 'aria-hidden': 'true' }), item.original_path),
    item.kind === 'dir' ? '' : bytes(item.size),
    time(item.deleted_at),
    item.deleted_by || '',
    h('span', { class: 'actions' },
      restorable ? h('button', { type: 'button', class: 'small', onclick: () => restore(item) }, 'Restore') : null,
      purgeable ? h('button', { type: 'button', class: 'small danger', onclick: () => purge(item) }, 'Delete for good') : null),
  ])));
}
