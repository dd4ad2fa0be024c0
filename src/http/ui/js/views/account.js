// Your account: name and e-mail, password, the sessions signed in as you (with their
// address and browser, each revocable), a copy of everything held about you, and
// deleting the account.

import * as api from '../api.js';
import { h, fill, toast, reason, confirm, heading, field, time, table, busy } from '../ui.js';

export async function render(main, ctx) {
  const user = ctx.session.me.user;
  const { sessions } = await api.get('/auth/sessions');
  const reload = () => ctx.navigate(location.hash);

  const name = h('input', { type: 'text', value: user.name, maxlength: 200, autocomplete: 'name' });
  const email = h('input', { type: 'email', value: user.email, required: true, autocomplete: 'email' });
  const profile = h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    await busy(event.submitter, async () => {
      // Only what changed (an invited account may have no name yet).
      const changes = {};
      if (name.value.trim() && name.value.trim() !== user.name) changes.name = name.value.trim();
      if (email.value.trim() !== user.email) changes.email = email.value.trim();
      if (Object.keys(changes).length === 0) return;
      await api.patch('/auth/me', changes);
      await ctx.refreshMe();
      toast('Saved');
    });
  } }, h('h2', {}, 'Profile'), field('Name', name), field('E-mail address', email), h('button', { type: 'submit' }, 'Save'));

  const current = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const next = h('input', { type: 'password', required: true, minlength: 10, maxlength: 256, autocomplete: 'new-password' });
  const again = h('input', { type: 'password', required: true, autocomplete: 'new-password' });
  const password = h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    if (next.value !== again.value) return toast('The two new passwords differ.', 'error');
    return busy(event.submitter, async () => {
      const changed = await api.post('/auth/password', { current_password: current.value, new_password: next.value });
      api.setCsrfToken(changed.csrf_token);
      await ctx.refreshMe();
      toast('Password changed; every other session has been signed out.');
      reload();
    });
  } }, h('h2', {}, 'Password'), field('Current password', current),
  field('New password', next, 'At least 10 characters.'), field('New password again', again),
  h('button', { type: 'submit' }, 'Change password'));

  const sessionRows = sessions.map((s) => [time(s.created_at), time(s.last_seen_at), s.ip || '', s.user_agent || '',
    s.current ? h('strong', {}, 'this browser') : h('button', { type: 'button', class: 'small danger', onclick: async () => {
      try {
        await api.del(`/auth/sessions/${encodeURIComponent(s.id)}`);
        toast('Signed out there');
        reload();
      } catch (e) {
        toast(reason(e), 'error');
      }
    } }, 'Sign out')]);

  const deletePassword = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const remove = h('form', { class: 'inline-form danger-zone', onsubmit: async (event) => {
    event.preventDefault();
    if (!await confirm('Delete your account?', 'Your sign-in, sessions and tokens are deleted now. Businesses you own alone are cancelled and deleted after their grace period; export them first.', 'Delete my account')) return;
    try {
      await api.post('/auth/me/delete', { password: deletePassword.value });
      toast('Your account is deleted.');
      ctx.forget();
    } catch (e) {
      toast(reason(e), 'error');
    }
  } }, h('h2', {}, 'Delete your account'), field('Password', deletePassword), h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));

  fill(main, heading('Your account'), profile, password,
    h('section', {}, h('h2', {}, 'Where you are signed in'), table('Your sessions', ['Signed in', 'Last seen', 'Address', 'Browser', ''], sessionRows)),
    h('section', {}, h('h2', {}, 'Your data'), h('p', {}, 'Everything Coffer holds about you: profile, memberships, sessions, tokens, sign-ins and account events. '),
      h('a', { class: 'button', href: api.url('/auth/me/data'), download: 'my-coffer-data.json' }, 'Download my data (JSON)')),
    remove);
}
