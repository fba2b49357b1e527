// Sign-in for the public client quartet-web: authorization code + PKCE (S256) against /auth.
//
// The access token lives in this module's memory only. The rotating refresh token is kept in
// sessionStorage so a reload of the tab does not sign the user out; it is gone when the tab
// closes and is never shared with other tabs. The strict CSP (scripts from this origin only)
// is what keeps other code from reading it.

const CLIENT_ID = 'quartet-web';
export const SCOPES = 'profile todos:read todos:write reports:read reports:write';
const REFRESH_KEY = 'quartet.refresh_token';
const PENDING_KEY = 'quartet.pending_login';
// Refresh this long before the access token expires (at most a quarter of its lifetime).
const REFRESH_LEAD_SECONDS = 60;

let session = null; // {accessToken, expiresAt (ms since epoch)}
let endedReason = null; // why the session ended underneath the user (a refused refresh), said once
let refreshTimer = null;
let inflight = null;
const listeners = new Set();

export class AuthError extends Error {
  constructor(message, sessionEnded = false) {
    super(message);
    this.sessionEnded = sessionEnded;
  }
}

export const redirectUri = () => `${location.origin}/app/callback`;
export const signedIn = () => session !== null;
export const hasStoredSession = () => sessionStorage.getItem(REFRESH_KEY) !== null;

/** Called with true/false whenever the user signs in or out. */
export function onChange(listener) {
  listeners.add(listener);
}

function notify() {
  for (const listener of listeners) listener(signedIn());
}

function base64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * Leave for the auth service's sign-in form (or, with `register`, its registration form: the same
 * authorization request, so a new account comes back signed in); it returns to /app/callback.
 */
export async function startLogin(returnTo = '/app/', { register = false } = {}) {
  const verifier = randomString(48);
  const state = randomString(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo }));
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri(),
    scope: SCOPES,
    state,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  });
  if (register) params.set('prompt', 'create'); // OpenID Connect's "initiate user registration"
  location.assign(`/auth/authorize?${params}`);
}

/** On /app/callback: check state, exchange the code. Returns where the user was going. */
export async function completeLogin(search) {
  const query = new URLSearchParams(search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? 'null');
  sessionStorage.removeItem(PENDING_KEY);
  if (query.get('error') === 'access_denied') throw new AuthError('Sign-in was cancelled. You are not signed in.');
  if (query.get('error')) {
    throw new AuthError(query.get('error_description') || `Sign-in did not complete (${query.get('error')}).`);
  }
  if (!pending || !query.get('code') || query.get('state') !== pending.state) {
    throw new AuthError('This sign-in was not started from this tab, or it was already used. Please log in again.');
  }
  accept(await tokenRequest({
    grant_type: 'authorization_code',
    code: query.get('code'),
    redirect_uri: redirectUri(),
    client_id: CLIENT_ID,
    code_verifier: pending.verifier,
  }));
  return pending.returnTo || '/app/';
}

async function tokenRequest(form) {
  let resp;
  try {
    resp = await fetch('/auth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
      cache: 'no-store',
    });
  } catch {
    throw new AuthError('Could not reach the sign-in service. Check your connection and try again.');
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    // invalid_grant: the refresh token expired, was revoked, or was already used.
    const ended = body.error === 'invalid_grant' || body.error === 'invalid_client';
    throw new AuthError(body.error_description || body.detail || `Sign-in failed (HTTP ${resp.status}).`, ended);
  }
  return body;
}

function accept(tokens) {
  session = { accessToken: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
  if (tokens.refresh_token) sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  clearTimeout(refreshTimer);
  const lead = Math.min(REFRESH_LEAD_SECONDS, tokens.expires_in / 4);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(1, tokens.expires_in - lead) * 1000);
  notify();
}

/** A new access token from the rotating refresh token; concurrent callers share one request. */
export function refresh() {
  inflight ??= rotate().finally(() => {
    inflight = null;
  });
  return inflight;
}

async function rotate() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  if (!refreshToken) {
    forget();
    throw new AuthError('Please log in.', true);
  }
  try {
    accept(await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID }));
  } catch (error) {
    if (error.sessionEnded) {
      endedReason = 'Your session has ended (it expired or was signed out elsewhere). Please sign in again.';
      forget();
    }
    throw error;
  }
  return session.accessToken;
}

/** The access token to send now: refreshed first when it is about to expire (a tab that slept). */
export async function accessToken() {
  if (session && Date.now() < session.expiresAt - 10_000) return session.accessToken;
  return refresh();
}

/** Why the last session ended, once (then null): the login page says it instead of leaving at once. */
export function takeEndedReason() {
  const reason = endedReason;
  endedReason = null;
  return reason;
}

/** On page load: pick up the tab's session, if it has one. */
export async function resume() {
  if (!hasStoredSession()) return false;
  try {
    await refresh();
    return true;
  } catch {
    return false;
  }
}

function forget() {
  const had = session !== null;
  session = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
  if (had) notify();
}

/** Sign out: revoke the refresh token (and with it its whole family) and forget everything. */
export async function logout() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (!refreshToken) return;
  await fetch('/auth/revoke', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token', client_id: CLIENT_ID }),
  }).catch(() => {});
}
