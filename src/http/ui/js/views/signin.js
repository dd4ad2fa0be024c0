// Signing in, creating an account with a new business, asking for a password reset, and
// setting a password from a reset or invitation token (the link in the message).

import * as api from '../api.js';
import { h, fill, field, reason, statusLine } from '../ui.js';

function card(title, intro, form, links) {
  return h('section', { class: 'card signin' },
    h('div', { class: 'brand big' }, h('span', { class: 'mark', 'aria-hidden': 'true' }), 'Coffer'),
    h('h1', { tabindex: '-1' }, title),
    intro ? h('p', { class: 'intro' }, intro) : null,
    form,
    h('p', { class: 'links' }, links));
}

function failure() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

function show(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

export function render(main, ctx) {
  if (ctx.mode === 'reset' || ctx.mode === 'welcome') return renderSetPassword(main, ctx);
  return renderSignIn(main, ctx);
}

function renderSignIn(main, ctx) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = failure();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    show(error, '');
    try {
      const me = await api.post('/auth/login', { email: email.value.trim(), password: password.value });
      await ctx.signedIn(me);
    } catch (e) {
      show(error, e.status === 401 ? 'That e-mail address and password do not match an account.' : reason(e));
      password.select();
    } finally {
      submit.disabled = false;
    }
  } }, field('E-mail address', email), field('Password', password), error, submit);
  fill(main, card('Sign in', 'Your business\'s files and records, kept safe.', form, [
    h('a', { href: '#/reset' }, 'Forgot your password?'), ' · ',
    h('a', { href: '#/signin?new=1', onclick: (event) => {
      event.preventDefault();
      renderSignUp(main, ctx);
    } }, 'Create an account'),
  ]));
  email.focus();
}

function renderSignUp(main, ctx) {
  const name = h('input', { type: 'text', autocomplete: 'name' });
  const email = h('input', { type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 10, maxlength: 256 });
  const business = h('input', { type: 'text', required: true, maxlength: 200 });
  const slug = h('input', { type: 'text', required: true, pattern: '[a-z][a-z0-9]*(-[a-z0-9]+)*', minlength: 2, maxlength: 63 });
  business.addEventListener('input', () => {
    if (!slug.dataset.touched) {
      slug.value = business.value.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').replace(/^[0-9-]+/, '');
    }
  });
  slug.addEventListener('input', () => { slug.dataset.touched = '1'; });
  const error = failure();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create account');
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    show(error, '');
    try {
      const created = await api.post('/auth/signup', {
        email: email.value.trim(), name: name.value.trim() || null, password: password.value,
        tenant_slug: slug.value, tenant_name: business.value.trim(),
      });
      api.setCsrfToken(created.csrf_token);
      await ctx.signedIn(await api.get('/auth/me'));
    } catch (e) {
      show(error, reason(e));
    } finally {
      submit.disabled = false;
    }
  } },
  field('Your name', name), field('E-mail address', email),
  field('Password', password, 'At least 10 characters.'),
  field('Business name', business),
  field('Short name (in addresses)', slug, 'Lower-case letters, digits and hyphens, such as greenleaf-landscaping.'),
  error, submit);
  fill(main, card('Create an account', 'Start a vault for your business; you will be its owner.', form,
    [h('a', { href: '#/signin' }, 'I already have an account')]));
  main.querySelector('h1').focus();
}

function renderSetPassword(main, ctx) {
  const welcome = ctx.mode === 'welcome';
  // The one-time code leaves the address bar (and the history) once it is in the form.
  if (ctx.token && ctx.token !== '-') history.replaceState(null, '', `#/${ctx.mode}/-`);
  if (!ctx.token && !welcome) return renderAskReset(main);
  const given = ctx.token === '-' ? '' : ctx.token;
  const token = h('input', { type: 'text', value: given, required: true, autocomplete: 'one-time-code', spellcheck: 'false' });
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 10, maxlength: 256 });
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  const error = failure();
  const done = statusLine();
  const submit = h('button', { type: 'submit', class: 'primary' }, welcome ? 'Set my password' : 'Change password');
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    show(error, '');
    if (password.value !== again.value) return show(error, 'The two passwords differ.');
    submit.disabled = true;
    try {
      await api.post('/auth/password-reset/confirm', { token: token.value.trim(), new_password: password.value });
      fill(form, h('p', { role: 'status' }, 'Your password is set. '), h('a', { href: '#/signin' }, 'Sign in'));
    } catch (e) {
      show(error, e.code === 'bad-reset-token'
        ? 'This link has expired or was already used. Ask for a new one.' : reason(e));
    } finally {
      submit.disabled = false;
    }
  } },
  field(welcome ? 'Invitation code' : 'Reset code', token, 'From the message Coffer sent you.'),
  field('New password', password, 'At least 10 characters.'),
  field('New password again', again), error, done, submit);
  fill(main, card(welcome ? 'Welcome to Coffer' : 'Choose a new password',
    welcome ? 'Choose a password to finish setting up your account.' : null, form,
    [h('a', { href: '#/signin' }, 'Back to sign in')]));
  (given ? password : token).focus();
  return undefined;
}

function renderAskReset(main) {
  const email = h('input', { type: 'email', autocomplete: 'username', required: true });
  const error = failure();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Send reset message');
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    show(error, '');
    try {
      await api.post('/auth/password-reset', { email: email.value.trim() });
      fill(form, h('p', { role: 'status' },
        'If an account has this address, a message with a reset code is on its way. ',
        'It works once, for one hour. '), h('a', { href: '#/reset/-' }, 'I have a code'));
    } catch (e) {
      show(error, reason(e));
    } finally {
      submit.disabled = false;
    }
  } }, field('E-mail address', email), error, submit);
  fill(main, card('Forgot your password?', 'We will send a reset code to your e-mail address.', form, [
    h('a', { href: '#/signin' }, 'Back to sign in'), ' · ', h('a', { href: '#/reset/-' }, 'I have a code'),
  ]));
  email.focus();
}
