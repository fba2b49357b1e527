// Create an account: the auth service's registration form for a sign-in of this app
// (prompt=create), so the new account comes back signed in.

import { startLogin } from '../auth.js';
import { h } from '../dom.js';

export function registerView(root) {
  root.append(h('h1', {}, 'Create an account'), h('p', { role: 'status' }, 'Taking you to the registration page…'));
  startLogin('/app/', { register: true });
}
