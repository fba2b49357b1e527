// Log in: straight to the auth service's sign-in form (one step). The page stays only when it
// has something to say first (logged out, the session ended, sign-in cancelled or failed): then
// it says it, with the buttons to go on.

import { startLogin } from '../auth.js';
import { h } from '../dom.js';

export function appTarget(returnTo) {
  return returnTo.startsWith('/app/login') || returnTo.startsWith('/app/register') ? '/app/' : returnTo;
}

export function loginView(root, { returnTo, reason }) {
  const target = appTarget(returnTo);
  if (!reason) {
    root.append(h('h1', {}, 'Log in'), h('p', { role: 'status' }, 'Taking you to the sign-in page…'));
    startLogin(target);
    return;
  }
  root.append(
    h('h1', {}, 'Log in'),
    h('p', {}, reason),
    h('p', { class: 'row' },
      h('button', { type: 'button', id: 'login', class: 'primary', onclick: () => startLogin(target) }, 'Sign in'),
      h('button', { type: 'button', id: 'register', onclick: () => startLogin('/app/', { register: true }) }, 'Create an account')),
  );
}
