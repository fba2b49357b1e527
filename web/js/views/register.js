import { describe } from '../api.js';
import { startLogin } from '../auth.js';
import { h } from '../dom.js';

export function registerView(root) {
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const field = (id, label, attrs, hint) => [
    h('label', { for: id }, label),
    h('input', { id, name: id, ...attrs, 'aria-describedby': hint ? `${id}-hint` : null }),
    hint ? h('p', { id: `${id}-hint`, class: 'hint' }, hint) : null,
  ];
  const form = h('form', { class: 'stack', novalidate: false },
    field('email', 'Email', { type: 'email', autocomplete: 'username', required: true, maxlength: 320 }),
    field('name', 'Name (optional)', { type: 'text', autocomplete: 'name', maxlength: 200 }),
    field('password', 'Password', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 1024 },
      'At least 8 characters.'),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector('button');
    button.disabled = true;
    message.replaceChildren();
    try {
      let resp;
      try {
        resp = await fetch('/auth/register', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ email: data.email, password: data.password, name: data.name || null }),
        });
      } catch {
        throw new Error('Could not reach the server. Check your connection and try again.');
      }
      if (!resp.ok) throw new Error(await describe(resp));
      const user = await resp.json();
      form.reset();
      const login = h('button', { type: 'button', class: 'primary', id: 'login-after-register', onclick: () => startLogin('/app/') }, 'Log in');
      message.append(h('p', { class: 'note ok' }, `Account created for ${user.email}. `, login));
      login.focus();
    } catch (error) {
      message.append(h('p', { class: 'note error', role: 'alert' }, error.message));
    } finally {
      button.disabled = false;
    }
  });
  root.append(
    h('h1', {}, 'Create an account'),
    form,
    message,
    h('p', {}, 'Already registered? ', h('a', { href: '/app/login', 'data-link': '' }, 'Log in'), '.'),
  );
}
