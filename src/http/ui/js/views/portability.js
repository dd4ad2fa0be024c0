// Your data: the whole vault as one ZIP (a plain link, so the browser's own download
// manager shows progress and resumes an interrupted download with Range), importing a
// ZIP with a report of what was skipped and why, and, for the owner, the business's
// lifecycle (restrict processing, cancel, reactivate).

import * as api from '../api.js';
import { h, fill, toast, reason, confirm, heading, field, bytes } from '../ui.js';

const LIFECYCLE = {
  active: [['restrict', 'Restrict processing', 'Automations and programs stop changing data; people can still work and export.'],
    ['cancel', 'Cancel this business', 'Nothing can be changed any more; everything stays readable and exportable until it is deleted after the grace period.']],
  restricted: [['unrestrict', 'Lift the restriction', 'Programs may change data again.'],
    ['cancel', 'Cancel this business', 'Nothing can be changed any more; it is deleted after the grace period.']],
  cancelled: [['reactivate', 'Reactivate', 'Undo the cancellation before the deletion date.']],
};

export async function render(main, ctx) {
  const tenant = ctx.session.tenant.tenant;
  const slug = tenant.slug;
  const parts = [heading('Your data')];

  if (ctx.can('export')) {
    parts.push(h('section', {}, h('h2', {}, 'Export everything'),
      h('p', {}, 'One ZIP with every file, every record and a manifest of hashes that proves it is complete. ',
        'It opens on any computer; Coffer can import it again.'),
      h('a', { class: 'button primary', id: 'export', href: api.url(`/tenants/${slug}/export`), download: `${slug}.zip` }, 'Download everything (ZIP)')));
  }

  if (ctx.can('import')) {
    const file = h('input', { type: 'file', accept: '.zip,application/zip', required: true });
    const conflict = h('select', {}, h('option', { value: 'fail' }, 'Stop if anything already exists'),
      h('option', { value: 'skip' }, 'Skip what already exists'));
    const report = h('div', { 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Import');
    parts.push(h('section', {}, h('h2', {}, 'Import a ZIP'),
      h('p', {}, 'A Coffer export, or any ZIP of folders and files.'),
      h('form', { class: 'inline-form', onsubmit: async (event) => {
        event.preventDefault();
        if (!file.files[0]) return;
        submit.disabled = true;
        fill(report, h('p', { role: 'status' }, 'Importing…'));
        try {
          const { data } = await api.call('POST', `/tenants/${slug}/import`, {
            body: file.files[0], headers: { 'Content-Type': 'application/zip' }, query: { conflict: conflict.value },
          });
          fill(report, h('div', { class: 'report', role: 'status' },
            h('p', {}, `Imported ${data.files.toLocaleString()} files (${bytes(data.bytes)}), ${data.dirs.toLocaleString()} folders and ${data.records.toLocaleString()} records.`),
            data.skipped.length ? [h('p', {}, `Skipped ${data.skipped.length}, because they already exist:`),
              h('ul', { class: 'skipped' }, data.skipped.slice(0, 200).map((s) => h('li', {}, s)))] : null));
        } catch (e) {
          fill(report, h('p', { class: 'error', role: 'alert' }, `Nothing was imported: ${reason(e)}`));
        } finally {
          submit.disabled = false;
        }
      } }, field('ZIP file', file), field('If something already exists', conflict), submit), report));
  }

  if (ctx.can('lifecycle')) {
    const choices = LIFECYCLE[tenant.state] || [];
    parts.push(h('section', {}, h('h2', {}, 'This business'),
      h('p', {}, `State: ${tenant.state}`, tenant.purge_after ? ` · to be deleted after ${new Date(tenant.purge_after).toLocaleDateString()}` : '',
        tenant.legal_hold ? ' · under legal hold' : ''),
      h('ul', { class: 'lifecycle' }, choices.map(([action, label, about]) => h('li', {},
        h('button', { type: 'button', class: action === 'cancel' ? 'danger' : '', onclick: async () => {
          if (!await confirm(`${label}?`, about, label, action === 'cancel')) return;
          try {
            await api.post(`/tenants/${slug}/lifecycle`, { action });
            toast(`${label}: done`);
            ctx.session.tenant = null;
            ctx.navigate(location.hash);
          } catch (e) {
            toast(reason(e), 'error');
          }
        } }, label), h('span', { class: 'hint' }, ` ${about}`))))));
  }
  fill(main, ...parts);
}
