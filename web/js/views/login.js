import { startLogin } from '../auth.js';
import { h } from '../dom.js';

export function loginView(root, { returnTo }) {
  const target = returnTo.startsWith('/app/login') || returnTo.startsWith('/app/register') ? '/app/' : returnTo;
  root.append(
    h('h1', {}, 'Log in'),
    h('p', {}, 'Sign in with your Quartet account. You will enter your email and password on the sign-in page.'),
    h('p', {}, h('button', { type: 'button', id: 'login', class: 'primary', onclick: () => startLogin(target) }, 'Log in')),
    h('p', {}, 'No account yet? ', h('a', { href: '/app/register', 'data-link': '' }, 'Create an account'), '.'),
  );
}
