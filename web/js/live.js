// Live updates (issue 24, docs/live.md): one Server-Sent Events stream per tab, GET /live/events
// through the gateway, read by a streaming fetch so the access token goes in the Authorization
// header (EventSource cannot send one, and a token never goes in a URL).
//
// 1. Signed in → open the stream; signed out → close it and forget where it was.
// 2. Every event's id is kept; a reconnect sends it as Last-Event-ID, so nothing inside the
//    server's window is missed. A `reset` (too old), or a `ready` that did not resume, tells the
//    pages to reload their lists.
// 3. `expired`: the access token ran out; refresh it and reconnect at once. `closing`: the
//    instance drains; reconnect at once (another instance answers). A 401 refreshes once.
// 4. Anything else that ends the stream (network, 5xx, 404 where no live service runs, 45 s of
//    silence = three missed heartbeats) reconnects after a backoff of 1 s doubling to 30 s, with
//    jitter so a restarted server is not met by every tab in the same instant. Back online → now.
// 5. While the stream is not open the pages do what they did before live updates existed
//    (the reports page polls its jobs); `#live-status` says "Live updates off", after a short
//    grace so a routine reconnect shows nothing.

import { accessToken, onChange, refresh, signedIn } from './auth.js';
import { SseParser } from './sse.js';

const PATH = '/live/events';
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const IDLE_MS = 45_000;
const QUIET_MS = 1500;
const OFF_TEXT = 'Live updates off';

const subscribers = new Set();
const stateListeners = new Set();
let running = false;
let started = false;
let controller = null; // the AbortController of the attempt in flight
let retryTimer = null;
let quietTimer = null;
let lastEventId = '';
let failures = 0; // attempts in a row that did not reach `ready`
let firstDelay = FIRST_DELAY_MS; // the server's `retry:` when it sent one
let state = 'off'; // 'connecting' | 'open' | 'down' | 'off' (signed out)

/** Events as they arrive ({type, id, data}, `data` parsed); type 'reset' means "reload your lists". */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

/** Called with true when the stream opens and false when it goes down. */
export function onLiveChange(fn) {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}

export const isLive = () => state === 'open';

/** Once, from the shell: follow the sign-in state from now on. */
export function startLive() {
  if (started) return;
  started = true;
  onChange((isIn) => (isIn ? start() : stop()));
  window.addEventListener('online', () => {
    if (running && state !== 'open') connectSoon(0);
  });
  window.addEventListener('offline', () => controller?.abort());
  if (signedIn()) start();
}

function start() {
  if (running) return; // every token refresh says "signed in" again
  running = true;
  failures = 0;
  connectSoon(0);
}

function stop() {
  running = false;
  lastEventId = '';
  clearTimeout(retryTimer);
  controller?.abort();
  controller = null;
  setState('off');
}

function emit(event) {
  for (const fn of [...subscribers]) {
    try {
      fn(event);
    } catch (error) {
      console.error(error); // one page's bug must not stop the others
    }
  }
}

function setState(next) {
  const wasOpen = state === 'open';
  state = next;
  const box = document.getElementById('live-status');
  if (box) box.dataset.state = next;
  clearTimeout(quietTimer);
  if (next === 'open' || next === 'off') {
    if (box) box.textContent = '';
  } else if (box && !box.textContent) {
    quietTimer = setTimeout(() => {
      if (state !== 'open' && state !== 'off') box.textContent = OFF_TEXT;
    }, QUIET_MS);
  }
  if (wasOpen !== (next === 'open')) for (const fn of [...stateListeners]) fn(next === 'open');
}

function connectSoon(delay) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function backoff() {
  const ceiling = Math.min(MAX_DELAY_MS, firstDelay * 2 ** Math.min(failures, 10));
  failures += 1;
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

async function connect() {
  if (!running) return;
  controller?.abort();
  const mine = new AbortController();
  controller = mine;
  if (state !== 'open') setState(state === 'off' ? 'connecting' : state);
  let next;
  try {
    next = await attempt(mine);
  } catch (error) {
    next = error?.sessionEnded ? 'stop' : { wait: null };
  }
  if (controller !== mine || !running) return; // stopped, or a newer attempt took over
  controller = null;
  if (next === 'stop') return;
  // An immediate reconnect (expired, closing) keeps the state: the pages need not fall back for it.
  if (next === 'now') return connectSoon(0);
  setState('down');
  return connectSoon(next.wait ?? backoff());
}

// One connection: how it ended says what comes next ('now', 'stop' or {wait}).
async function attempt(mine, refreshed = false) {
  const headers = { Authorization: `Bearer ${await accessToken()}`, Accept: 'text/event-stream' };
  if (lastEventId) headers['Last-Event-ID'] = lastEventId;
  const resp = await fetch(PATH, { headers, cache: 'no-store', signal: mine.signal });
  if (resp.status === 401 && !refreshed) {
    await refresh();
    return attempt(mine, true);
  }
  const type = resp.headers.get('Content-Type') ?? '';
  if (!resp.ok || !type.startsWith('text/event-stream') || !resp.body) {
    resp.body?.cancel().catch(() => {});
    const after = Number(resp.headers.get('Retry-After'));
    return { wait: after > 0 ? Math.min(after * 1000, MAX_DELAY_MS) + Math.random() * 1000 : null };
  }
  return read(resp.body, mine);
}

async function read(body, mine) {
  let ending = null;
  const parser = new SseParser({
    onRetry: (ms) => { firstDelay = Math.min(Math.max(ms, FIRST_DELAY_MS), MAX_DELAY_MS); },
    onEvent: (event) => {
      if (event.id) lastEventId = event.id;
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch { /* not JSON: passed on as text */ data = event.data; }
      if (event.type === 'ready') {
        failures = 0;
        setState('open');
        // Not resumed: whatever happened while this tab had no stream is unknown; reload.
        if (!data?.resumed) emit({ type: 'reset', id: '', data });
      } else if (event.type === 'expired') {
        ending = 'refresh';
      } else if (event.type === 'closing') {
        ending = 'now';
      } else {
        emit({ type: event.type, id: event.id, data });
      }
    },
  });
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let idle = null;
  const watch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => mine.abort(), IDLE_MS);
  };
  try {
    watch();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      watch();
      parser.push(value);
      if (ending) break;
    }
  } finally {
    clearTimeout(idle);
    reader.cancel().catch(() => {});
  }
  if (ending === 'refresh') {
    await refresh();
    return 'now';
  }
  return ending === 'now' ? 'now' : { wait: null };
}
