// The shell: routes under /app/, the account area, and who may see what.

import { completeLogin, logout, onChange, resume, signedIn, takeEndedReason } from './auth.js';
import { apiJson } from './api.js';
import { clearFlash, h } from './dom.js';
import { startLive } from './live.js';
import { loginView } from './views/login.js';
import { registerView } from './views/register.js';
import { todosView } from './views/todos.js';
import { diagnosticsView } from './views/diagnostics.js';
import { reportsView } from './views/reports.js';

// path → [view, needs a signed-in user, nav key, title]
const ROUTES = {
  '/app/': [todosView, true, 'todos', 'Todos'],
  '/app/todos': [todosView, true, 'todos', 'Todos'],
  '/app/diagnostics': [diagnosticsView, false, 'diagnostics', 'Diagnostics'],
  '/app/reports': [reportsView, true, 'reports', 'Reports'],
  '/app/login': [loginView, false, null, 'Log in'],
  '/app/register': [registerView, false, null, 'Create an account'],
};

const view = document.getElementById('view');
let cleanup = null;
let profile = null;
// What the login page says before the user goes on (logged out, sign-in cancelled or failed); once.
let loginReason = null;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

let renderRound = 0;

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const round = ++renderRound;
  const path = location.pathname;
  if (signedIn() && (path === '/app/login' || path === '/app/register')) {
    history.replaceState(null, '', '/app/');
    return render();
  }
  const [routeView, needsUser, navKey, title] = ROUTES[path] ?? [notFoundView, false, null, 'Not found'];
  const showLogin = needsUser && !signedIn();
  const [shown, shownTitle] = showLogin ? [loginView, 'Log in'] : [routeView, title];
  const reason = shown === loginView ? (loginReason ?? takeEndedReason()) : null;
  if (shown === loginView) loginReason = null;
  document.title = `${shownTitle} · Quartet`;
  for (const link of document.querySelectorAll('[data-nav]')) {
    // The login page is none of the tabs, even when it stands in for one.
    if (link.dataset.nav === navKey && !showLogin) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each page draws into its own box: one still loading when the user moves on draws nowhere.
  const page = h('div', { class: 'page' });
  view.replaceChildren(page);
  const stop = (await shown(page, { navigate, returnTo: path + location.search, reason })) ?? null;
  if (round !== renderRound) {
    stop?.();
    return;
  }
  cleanup = stop;
  // Move focus to the new page's heading so keyboard and screen-reader users start there.
  const heading = page.querySelector('h1');
  heading?.setAttribute('tabindex', '-1');
  if (document.activeElement === document.body || !view.contains(document.activeElement)) {
    heading?.focus({ preventScroll: true });
  }
}

function notFoundView(root) {
  root.append(h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/app/', 'data-link': '' }, 'Go to your todos')));
}

let accountRound = 0;

async function renderAccount() {
  const box = document.getElementById('account');
  const round = ++accountRound;
  if (!signedIn()) {
    box.replaceChildren(h('a', { href: '/app/login', 'data-link': '' }, 'Log in'));
    return;
  }
  if (!profile) profile = await apiJson('/auth/me').catch(() => null);
  if (round !== accountRound) return; // a later call drew it already
  const name = profile ? profile.name || profile.email : '';
  box.replaceChildren(
    h('span', { class: 'who', title: profile?.email ?? '' }, name),
    h('button', { type: 'button', id: 'logout', onclick: onLogout }, 'Log out'),
  );
}

async function onLogout() {
  // On the login page first, so the sign-out does not redraw the protected page underneath.
  history.pushState(null, '', '/app/login');
  await logout();
  loginReason = 'You are logged out.';
  render();
}

// Same-origin links marked data-link stay inside the app.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-link]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  clearFlash();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', render);

onChange((isIn) => {
  if (!isIn) profile = null;
  renderAccount();
  // Signed out underneath a protected page (the session ended): the login page says so.
  if (!isIn && ROUTES[location.pathname]?.[1]) render();
});

async function boot() {
  if (location.pathname === '/app/callback') {
    try {
      const returnTo = await completeLogin(location.search);
      history.replaceState(null, '', returnTo);
    } catch (error) {
      history.replaceState(null, '', '/app/login');
      loginReason = error.message;
    }
  } else {
    await resume();
  }
  startLive();
  await renderAccount();
  await render();
}

boot();
