// Calls to the public REST API with the bearer token; errors become plain sentences.

import { accessToken, refresh } from './auth.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }

  /** The service is absent or down (not a problem with the request). */
  get unavailable() {
    return this.status === 0 || this.status === 404 || this.status >= 502;
  }
}

const STATUS_WORDS = {
  401: 'You are not signed in any more. Please log in again.',
  403: 'You are not allowed to do that.',
  404: 'That was not found.',
  409: 'That conflicts with the current state; reload and try again.',
  412: 'It changed elsewhere since you loaded it.',
  429: 'Too many requests; wait a moment and try again.',
  502: 'The service is not answering right now. Try again in a moment.',
  503: 'The service is not available right now. Try again in a moment.',
  504: 'The service took too long to answer. Try again in a moment.',
};

/** What went wrong, in words: problem+json `detail` (plus field errors), else a sentence per status. */
export async function describe(resp) {
  let body = null;
  if ((resp.headers.get('Content-Type') ?? '').includes('json')) body = await resp.json().catch(() => null);
  if (body && typeof body === 'object') {
    // The API's detail is a sentence that already says what each field's error says.
    const main = body.detail || body.error_description || body.title;
    if (main) return main;
  }
  return STATUS_WORDS[resp.status] ?? `The request failed (HTTP ${resp.status}).`;
}

async function send(path, { method, json, headers, keepalive }, token) {
  const all = { ...headers };
  if (token) all.Authorization = `Bearer ${token}`;
  if (json !== undefined) all['Content-Type'] = 'application/json';
  try {
    return await fetch(path, {
      method,
      headers: all,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: 'no-store',
      keepalive: Boolean(keepalive),
    });
  } catch {
    throw new ApiError(0, 'Could not reach the server. Check your connection and try again.');
  }
}

/**
 * One API call with the user's token. A 401 (the token expired in flight, or the clock is off)
 * refreshes once and retries, so the user never sees it. Returns the Response; throws ApiError.
 */
export async function api(path, { method = 'GET', json, headers = {}, auth = true, keepalive = false } = {}) {
  const request = { method, json, headers, keepalive };
  let resp = await send(path, request, auth ? await accessToken() : null);
  if (auth && resp.status === 401) resp = await send(path, request, await refresh());
  if (!resp.ok) throw new ApiError(resp.status, await describe(resp));
  return resp;
}

export async function apiJson(path, options) {
  const resp = await api(path, options);
  return resp.status === 204 ? null : resp.json();
}
