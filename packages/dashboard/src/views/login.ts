/** The sign-in page. */
import { loginErrorText, signIn } from '../auth.js';
import { h } from '../dom.js';
import type { Me } from '../types.js';

export function loginView(onSignedIn: (me: Me) => void, message?: string): HTMLElement {
  const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, maxlength: 256, spellcheck: 'false', autocapitalize: 'none' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const error = h('p', { id: 'login-error', class: 'form-error', role: 'alert', hidden: true });
  const info = h('p', { class: 'login-info', role: 'status', hidden: !message }, message ?? '');
  const form = h(
    'form',
    { class: 'login-form', 'aria-labelledby': 'login-title' },
    h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    error,
    submit,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (submit.getAttribute('aria-busy') === 'true') return;
    submit.setAttribute('aria-busy', 'true');
    submit.textContent = 'Signing in…';
    error.hidden = true;
    info.hidden = true;
    signIn(username.value.trim(), password.value).then(
      (me) => onSignedIn(me),
      (err) => {
        submit.removeAttribute('aria-busy');
        submit.textContent = 'Sign in';
        error.textContent = loginErrorText(err);
        error.hidden = false;
        password.value = '';
        password.focus();
      },
    );
  });
  const main = h(
    'main',
    { class: 'login' },
    h(
      'div',
      { class: 'login-card' },
      h('div', { class: 'brand brand-large' }, h('img', { src: 'favicon.svg', alt: '', width: 32, height: 32 }), h('span', {}, 'Greenroom')),
      h('h1', { id: 'login-title' }, 'Sign in to the dashboard'),
      info,
      form,
    ),
  );
  queueMicrotask(() => username.focus());
  return main;
}
