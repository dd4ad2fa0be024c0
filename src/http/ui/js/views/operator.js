// The operator console: every tenant with its state and usage, creating tenants, the
// lifecycle actions (restrict, cancel, reactivate, legal hold, delete with a signed
// receipt), every user, and the isolation report. Operators see no tenant content.

import * as api from '../api.js';
import { h, fill, toast, reason, confirm, heading, field, time, table, bytes, busy, dialog } from '../ui.js';

const ACTIONS = {
  active: ['restrict', 'cancel', 'hold', 'delete'],
  restricted: ['unrestrict', 'cancel', 'hold', 'delete'],
  cancelled: ['reactivate', 'hold', 'delete'],
};

// A deletion's signed receipt, to keep: shown once the purge is done, and downloadable.
async function showReceipt(tenant, receipt) {
  const text = JSON.stringify(receipt, null, 2);
  const link = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  await dialog(`Deletion receipt for ${tenant.slug}`, [
    h('p', {}, 'Signed with the server\'s key: anyone can check it with the public key. Keep it with your records.'),
    h('p', {}, h('a', { class: 'button primary', href: link, download: `${tenant.slug}-deletion-receipt.json` }, 'Download the receipt')),
    h('pre', { tabindex: '0', class: 'receipt' }, text),
  ], [{ value: 'done', label: 'Done', class: 'primary' }]);
  URL.revokeObjectURL(link);
}

export async function render(main, ctx) {
  const [{ tenants }, { users }] = await Promise.all([api.get('/admin/tenants'), api.get('/admin/users')]);
  const reload = () => ctx.navigate(location.hash);

  async function act(tenant, action) {
    const words = action === 'delete' ? 'Its files and records are erased now and a signed receipt is kept. This cannot be undone.'
      : `The tenant will be ${action === 'hold' ? 'put under legal hold' : `${action}ed`}.`;
    if (!await confirm(`${action} ${tenant.slug}?`, words, action, ['delete', 'cancel'].includes(action))) return;
    try {
      const out = await api.post(`/admin/tenants/${tenant.slug}/lifecycle`, { action });
      toast(`${tenant.slug}: ${action} done`);
      if (out.receipt) await showReceipt(tenant, out.receipt);
      reload();
    } catch (e) {
      toast(reason(e), 'error');
    }
  }

  const slug = h('input', { type: 'text', required: true, pattern: '[a-z][a-z0-9]*(-[a-z0-9]+)*', minlength: 2, maxlength: 63 });
  const name = h('input', { type: 'text', required: true, maxlength: 200 });
  const owner = h('input', { type: 'email', autocomplete: 'off' });
  const quota = h('input', { type: 'number', min: 0, step: 'any', placeholder: 'no limit' });
  const create = h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    await busy(event.submitter, async () => {
      const created = await api.post('/admin/tenants', {
        slug: slug.value, name: name.value.trim(), owner_email: owner.value.trim() || null,
        quota_bytes: quota.value ? Math.round(Number(quota.value) * 1e9) : null,
      });
      toast(`Tenant ${slug.value} created${created.owner_invited ? `; ${owner.value.trim()} is invited to set a password` : ''}`);
      reload();
    });
  } }, h('h2', {}, 'Create a tenant'), field('Short name', slug), field('Name', name),
  field('Owner e-mail (invited if new)', owner), field('Quota (GB)', quota),
  h('button', { type: 'submit', class: 'primary' }, 'Create tenant'));

  const report = h('div', { 'aria-live': 'polite' });
  const check = h('button', { type: 'button', onclick: () => busy(check, async () => {
    const r = await api.get('/admin/audit/isolation');
    fill(report, h('p', { role: 'status' }, `${r.tenants_checked} tenants and ${r.files_checked.toLocaleString()} files checked: `,
      r.findings.length ? `${r.findings.length} findings.` : 'no findings.'),
    r.findings.length ? table('Findings', ['Check', 'Tenant', 'Path', 'Detail', 'What to do'],
      r.findings.map((f) => [f.check, f.tenant || '', f.path || '', f.detail, f.hint || ''])) : null);
  }) }, 'Run the isolation check');

  fill(main, heading('Operator console'),
    h('section', {}, h('h2', {}, 'Tenants'), table('Tenants', ['Tenant', 'State', 'Quota', 'Created', 'Actions'],
      tenants.map((t) => [h('span', {}, h('strong', {}, t.slug), ` ${t.name}`), `${t.state}${t.legal_hold ? ' (hold)' : ''}`,
        t.quota_bytes ? bytes(t.quota_bytes) : 'none', time(t.created_at),
        h('span', { class: 'actions' }, (ACTIONS[t.state] || []).map((a) => (a === 'hold' && t.legal_hold ? 'release' : a))
          .map((a) => h('button', { type: 'button', class: `small${['delete', 'cancel'].includes(a) ? ' danger' : ''}`,
            'aria-label': `${a} ${t.slug}`, onclick: () => act(t, a) }, a)),
        t.state === 'purged' ? h('a', { class: 'button small', href: api.url(`/admin/tenants/${t.id}/receipt`),
          download: `${t.slug}-deletion-receipt.json` }, 'Deletion receipt') : null)]))),
    create,
    h('section', {}, h('h2', {}, 'Users'), table('Users', ['Name', 'E-mail', 'Operator', 'Created'],
      users.map((u) => [u.name, u.email, u.is_operator ? 'yes' : '', time(u.created_at)]))),
    h('section', {}, h('h2', {}, 'Isolation'), h('p', {}, 'Checks that every vault belongs to one tenant and holds nothing it should not.'), check, report));
}
