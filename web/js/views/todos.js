// Todos: newest first, "load more" with the cursor, optimistic add / edit / finish, and a delete
// that can be undone for a few seconds (the DELETE is sent only when that time is up, or when the
// user leaves the page). Every refused action says why beside the field (docs/web.md). Changes made
// elsewhere (another tab, another device) arrive as live events and are patched into the list
// in place, keeping an edit in progress, the focus and the scroll position (docs/live.md).

import { api, apiJson } from '../api.js';
import { config } from '../config.js';
import { flash, formatDate, formatDay, h, shorten } from '../dom.js';
import { subscribe } from '../live.js';

const MAX = 1000; // what the API accepts (services/todos/schemas.py)
const UNDO_MS = 5000;
// A todo longer than this (or with more lines) is clamped to three lines, with "Show all".
const CLAMP_CHARS = 180;

/** Why a todo's text is refused before it is sent, or null. */
function refusal(text, { editing = false } = {}) {
  if (!text.trim() && editing) return 'A todo cannot be empty or only spaces. Change the text, or press Cancel (Esc) to keep it as it was.';
  if (!text.trim()) return 'Write something first: a todo cannot be empty or only spaces.';
  if (text.length > MAX) return `A todo can have at most ${MAX} characters; this one has ${text.length}. Shorten it by ${text.length - MAX}.`;
  return null;
}

/** A text field's character counter and error line, tied to it by aria-describedby. */
function fieldHelp(field, id) {
  const counter = h('span', { id: `${id}-count`, class: 'counter', 'aria-live': 'off' });
  const error = h('p', { id: `${id}-error`, class: 'field-error', role: 'alert', hidden: true });
  field.setAttribute('aria-describedby', `${id}-count ${id}-error`);
  const count = () => {
    const n = field.value.length;
    counter.textContent = n > MAX ? `${n} / ${MAX}: ${n - MAX} too many` : `${n} / ${MAX}`;
    counter.classList.toggle('over', n > MAX);
    if (!error.hidden && !refusal(field.value)) show(null);
  };
  const show = (message) => {
    error.hidden = !message;
    error.textContent = message ?? '';
    if (message) field.setAttribute('aria-invalid', 'true');
    else field.removeAttribute('aria-invalid');
  };
  field.addEventListener('input', count);
  count();
  return { counter, error, show, count };
}

const FILTERS = [['all', 'All'], ['open', 'Open'], ['finished', 'Finished']];
const EMPTY = {
  all: 'Nothing to do yet. Add your first todo above.',
  open: 'No open todos. Well done!',
  finished: 'No finished todos yet.',
};

export async function todosView(root) {
  const { pageSize } = await config();
  const state = { items: [], cursor: null, filter: 'all', loading: false, editing: null };
  const etags = new Map(); // todo id → ETag from the last response that carried one
  let alive = true;
  // Todos added here while a first page was loading: that page may predate them, keep them.
  let addedMeanwhile = new Set();
  let reloadWanted = false; // a live `reset` came while a page was loading: load the first page again after
  let editorNode = null; // the open editor, kept across redraws so the text being typed stays
  let deferred = []; // live events of new todos while one added here is still unconfirmed

  const list = h('ul', { id: 'todo-list', class: 'todos', 'aria-label': 'Todos' });
  const empty = h('p', { id: 'todo-empty', class: 'empty', hidden: true });
  const more = h('button', { type: 'button', id: 'load-more', hidden: true, onclick: () => load(false) }, 'Load more');
  const deleting = new Map(); // todo id → {timer, commit}: deleted here, undoable until the timer fires
  // No maxlength: a paste longer than the limit is kept and the counter says by how much.
  const input = h('input', { id: 'new-todo', name: 'content', autocomplete: 'off' });
  const addHelp = fieldHelp(input, 'new-todo');
  const addForm = h('form', { class: 'add', onsubmit: add, novalidate: true },
    h('label', { for: 'new-todo' }, 'New todo'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Add')),
    h('div', { class: 'field-help' }, addHelp.counter),
    addHelp.error);
  const count = h('p', { id: 'todo-count', class: 'count' });
  const filters = h('fieldset', { class: 'filters' }, h('legend', {}, 'Show'),
    FILTERS.map(([value, label]) => h('label', {},
      h('input', { type: 'radio', name: 'filter', value, checked: value === state.filter, onchange: () => setFilter(value) }),
      ` ${label}`)));

  root.append(h('h1', {}, 'Todos'), addForm, filters, count, list, empty, h('p', {}, more));

  async function load(reset) {
    if (state.loading) return;
    state.loading = true;
    more.disabled = true;
    const params = new URLSearchParams({ limit: pageSize, status: state.filter });
    if (!reset && state.cursor) params.set('cursor', state.cursor);
    if (reset) addedMeanwhile = new Set();
    try {
      const page = await apiJson(`/todos?${params}`);
      if (!alive) return;
      page.items = page.items.filter((t) => !deleting.has(t.id));
      const known = new Set(page.items.map((t) => t.id));
      const kept = reset ? state.items.filter((t) => addedMeanwhile.has(t.id) && !known.has(t.id)) : state.items;
      state.items = [...kept, ...page.items.filter((t) => !kept.some((k) => k.id === t.id))];
      state.cursor = page.next_cursor;
      draw();
    } catch (error) {
      flash(`Could not load your todos: ${error.message}`, 'error');
    } finally {
      state.loading = false;
      more.disabled = false;
      if (reloadWanted && alive) {
        reloadWanted = false;
        load(true);
      }
    }
  }

  function setFilter(value) {
    state.filter = value;
    state.cursor = null;
    load(true);
  }

  // "3 todos: 2 open, 1 finished" once everything is loaded; until then what is shown.
  function counted() {
    const n = state.items.length;
    const noun = (k, word) => `${k} ${word}${k === 1 ? '' : 's'}`;
    if (!n) return '';
    if (state.cursor) return `${noun(n, 'todo')} shown; more below.`;
    const done = state.items.filter((t) => t.is_finished).length;
    if (state.filter === 'open') return `${noun(n, 'open todo')}.`;
    if (state.filter === 'finished') return `${noun(n, 'finished todo')}.`;
    return `${noun(n, 'todo')}: ${n - done} open, ${done} finished.`;
  }

  const shows = (todo) => state.filter === 'all' || (state.filter === 'finished') === todo.is_finished;

  // Redraw the list, keeping keyboard focus on the control it was on (and the caret in a field).
  function draw() {
    const active = document.activeElement;
    const focused = active?.dataset?.focusKey;
    const caret = active instanceof HTMLInputElement ? [active.selectionStart, active.selectionEnd] : null;
    if (!state.editing) editorNode = null;
    list.replaceChildren(...state.items.map(item));
    empty.hidden = state.items.length > 0;
    empty.textContent = EMPTY[state.filter];
    more.hidden = !state.cursor;
    count.textContent = counted();
    if (focused) {
      // The same control, else the first control of the same todo (Finish became Reopen).
      const todoId = focused.split(':')[0];
      const again = list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)
        ?? list.querySelector(`li[data-id="${CSS.escape(todoId)}"] button`);
      again?.focus({ preventScroll: true });
      if (again === active && caret) active.setSelectionRange(...caret);
    }
  }

  // A live redraw keeps what the user looks at where it is: the first todo in view stays put
  // when todos appear or go above it.
  function keepingScroll(change) {
    const anchor = window.scrollY > 0 ? [...list.children].find((li) => li.getBoundingClientRect().bottom > 0) : null;
    const before = anchor?.getBoundingClientRect().top;
    change();
    draw();
    if (!anchor?.isConnected) return;
    const moved = anchor.getBoundingClientRect().top - before;
    if (moved) window.scrollBy(0, moved);
  }

  const when = (iso) => (iso ? Date.parse(iso) : 0);
  // The list's order (services/todos/store.py: created_at DESC, id DESC); < 0 when a comes first.
  const newestFirst = (a, b) => when(b.created_at) - when(a.created_at) || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0);

  // A todo.* event carries the todo's whole state; the newest updated_at wins (events may repeat).
  function applyLive(event) {
    if (event.type === 'reset') {
      if (state.loading) reloadWanted = true;
      else load(true);
      return;
    }
    const todo = event.data?.data;
    if (!event.type.startsWith('todo.') || !todo?.id || deleting.has(todo.id)) return;
    const current = state.items.find((t) => t.id === todo.id);
    if (current && when(current.updated_at) > when(todo.updated_at)) return; // older than what is shown
    if (!current && state.items.some((t) => t.pending && t.content === todo.content)) {
      deferred.push(event); // most likely the one being added here: decide when its POST answers
      return;
    }
    if (current && (current.content !== todo.content || current.is_finished !== todo.is_finished)) {
      etags.delete(todo.id); // changed elsewhere: the ETag we hold is stale now
    }
    if (event.type === 'todo.deleted') {
      if (!current || state.editing === todo.id) return; // the editor stays; saving says it is gone
      keepingScroll(() => { state.items = state.items.filter((t) => t.id !== todo.id); });
      return;
    }
    if (current) {
      if (state.editing === todo.id) {
        replaceItem(todo.id, { ...current, ...todo }); // the editor keeps the user's text
        return;
      }
      keepingScroll(() => {
        state.items = shows(todo) ? state.items.map((t) => (t.id === todo.id ? { ...t, ...todo } : t)) : state.items.filter((t) => t.id !== todo.id);
      });
      return;
    }
    if (!shows(todo)) return;
    // Only inside what is loaded: older than the last shown todo it comes with "Load more".
    const last = state.items.at(-1);
    if (state.cursor && last && !last.pending && newestFirst(todo, last) > 0) return;
    keepingScroll(() => {
      const pending = state.items.filter((t) => t.pending);
      state.items = [...pending, ...[...state.items.filter((t) => !t.pending), todo].sort(newestFirst)];
    });
  }

  function flushDeferred() {
    const waiting = deferred;
    deferred = [];
    for (const event of waiting) applyLive(event);
  }

  function item(todo) {
    const key = (name) => ({ 'data-focus-key': `${todo.id}:${name}` });
    if (state.editing === todo.id) {
      if (editorNode?.dataset.id !== todo.id) editorNode = editor(todo);
      return editorNode;
    }
    const name = shorten(todo.content);
    const button = (verb, onclick, extra = {}) => h('button', {
      type: 'button', ...key(verb.toLowerCase()), disabled: todo.pending, 'aria-label': `${verb}: ${name}`, onclick, ...extra,
    }, verb);
    const long = todo.content.length > CLAMP_CHARS || todo.content.split('\n').length > 3;
    const content = h('span', { class: `content${long ? ' clamped' : ''}`, id: `content-${todo.id}` }, todo.content);
    const toggle = long ? h('button', { type: 'button', class: 'link more', 'aria-expanded': 'false', 'aria-controls': content.id, onclick: (event) => {
      const open = content.classList.toggle('clamped') === false;
      event.currentTarget.setAttribute('aria-expanded', String(open));
      event.currentTarget.textContent = open ? 'Show less' : 'Show all';
    } }, 'Show all') : null;
    // Always the creation date (the list's order); finishing is shown beside it, not instead.
    const meta = todo.pending
      ? [h('span', {}, 'saving…')]
      : [h('span', { title: formatDate(todo.created_at) }, `added ${formatDay(todo.created_at)}`),
        todo.is_finished ? h('span', { class: 'badge done', title: formatDate(todo.finished_at) }, `finished ${formatDay(todo.finished_at)}`) : null];
    return h('li', { class: `todo${todo.is_finished ? ' finished' : ''}${todo.pending ? ' pending' : ''}`, 'data-id': todo.id },
      h('div', { class: 'body' }, content, toggle, h('div', { class: 'meta' }, meta)),
      h('div', { class: 'actions' },
        todo.is_finished ? button('Reopen', () => reopen(todo)) : button('Finish', () => finish(todo)),
        button('Edit', () => startEdit(todo)),
        button('Delete', () => remove(todo), { class: 'danger' })));
  }

  function editor(todo) {
    const id = `edit-${todo.id}`;
    const field = h('input', { id, value: todo.content, autocomplete: 'off', 'data-focus-key': `${todo.id}:editor` });
    const help = fieldHelp(field, id);
    const form = h('form', { class: 'edit', novalidate: true },
      h('label', { for: id, class: 'visually-hidden' }, 'Edit todo'),
      h('div', { class: 'row' }, field,
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: cancelEdit }, 'Cancel')),
      h('div', { class: 'field-help' }, help.counter),
      help.error);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const why = refusal(field.value, { editing: true });
      if (why) {
        help.show(why);
        field.focus();
        return;
      }
      save(todo, field.value.trim());
    });
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') cancelEdit();
    });
    queueMicrotask(() => {
      field.focus();
      field.select();
    });
    return h('li', { class: 'todo editing', 'data-id': todo.id }, form);
  }

  function startEdit(todo) {
    state.editing = todo.id;
    draw();
  }

  function cancelEdit() {
    const id = state.editing;
    state.editing = null;
    draw();
    list.querySelector(`[data-focus-key="${CSS.escape(`${id}:edit`)}"]`)?.focus();
  }

  // Optimistic change: apply at once, undo and say why if the server refuses.
  async function optimistic(apply, undo, request, failure) {
    apply();
    draw();
    try {
      await request();
    } catch (error) {
      if (!alive) return;
      undo();
      draw();
      flash(`${failure}: ${error.message}`, 'error');
    }
  }

  function replaceItem(id, next) {
    state.items = state.items.map((t) => (t.id === id ? next : t));
  }

  function remember(resp, todo) {
    const etag = resp.headers.get('ETag');
    if (etag) etags.set(todo.id, etag);
    return todo;
  }

  async function add(event) {
    event.preventDefault();
    const why = refusal(input.value);
    if (why) {
      addHelp.show(why);
      input.focus();
      return;
    }
    addHelp.show(null);
    const content = input.value.trim();
    const temp = { id: `new-${crypto.randomUUID()}`, content, is_finished: false, pending: true, created_at: new Date().toISOString() };
    const before = state.items;
    input.value = '';
    addHelp.count();
    await optimistic(
      () => {
        addedMeanwhile.add(temp.id);
        if (shows(temp)) state.items = [temp, ...state.items];
      },
      () => { state.items = before.filter((t) => t.id !== temp.id); input.value = input.value || content; addHelp.count(); },
      async () => {
        // The key makes a retried create (a lost response) return the same todo, not a second one.
        const resp = await api('/todos', { method: 'POST', json: { content }, headers: { 'Idempotency-Key': temp.id } });
        const created = remember(resp, await resp.json());
        addedMeanwhile.add(created.id);
        // Its live event may have come first (from another tab's view it is just a new todo).
        if (state.items.some((t) => t.id === created.id)) state.items = state.items.filter((t) => t.id !== temp.id);
        else replaceItem(temp.id, created);
        draw();
      },
      'Could not add the todo');
    flushDeferred();
  }

  async function save(todo, content) {
    state.editing = null;
    if (!content || content === todo.content) return draw();
    const headers = etags.has(todo.id) ? { 'If-Match': etags.get(todo.id) } : {};
    await optimistic(
      () => replaceItem(todo.id, { ...todo, content }),
      () => replaceItem(todo.id, todo),
      async () => {
        try {
          const resp = await api(`/todos/${todo.id}`, { method: 'PATCH', json: { content }, headers });
          replaceItem(todo.id, remember(resp, await resp.json()));
          draw();
        } catch (error) {
          if (error.status === 412) refetch(todo.id);
          throw error;
        }
      },
      'Could not save the change');
  }

  // After a 412 show what the server has now (the undo would otherwise restore our stale copy).
  async function refetch(id) {
    try {
      const resp = await api(`/todos/${id}`);
      const fresh = remember(resp, await resp.json());
      setTimeout(() => { replaceItem(id, fresh); draw(); });
    } catch { /* the error message is already shown */ }
  }

  async function finish(todo) {
    const index = state.items.indexOf(todo);
    const done = { ...todo, is_finished: true, finished_at: new Date().toISOString() };
    await optimistic(
      () => { state.items = shows(done) ? state.items.map((t) => (t === todo ? done : t)) : state.items.filter((t) => t !== todo); },
      () => { state.items = state.items.filter((t) => t.id !== todo.id); state.items.splice(index, 0, todo); },
      async () => {
        const resp = await api(`/todos/${todo.id}/finish`, { method: 'PUT' });
        const saved = remember(resp, await resp.json());
        if (shows(saved)) { replaceItem(todo.id, saved); draw(); }
      },
      'Could not finish the todo');
  }

  async function reopen(todo) {
    const index = state.items.indexOf(todo);
    const open = { ...todo, is_finished: false, finished_at: null };
    await optimistic(
      () => { state.items = shows(open) ? state.items.map((t) => (t === todo ? open : t)) : state.items.filter((t) => t !== todo); },
      () => { state.items = state.items.filter((t) => t.id !== todo.id); state.items.splice(index, 0, todo); },
      async () => {
        const resp = await api(`/todos/${todo.id}`, { method: 'PATCH', json: { is_finished: false } });
        const saved = remember(resp, await resp.json());
        if (shows(saved)) { replaceItem(todo.id, saved); draw(); }
      },
      'Could not reopen the todo');
  }

  // Gone from the list at once; the DELETE waits UNDO_MS so "Undo" can put it back.
  function remove(todo) {
    const index = state.items.indexOf(todo);
    state.items = state.items.filter((t) => t !== todo);
    draw();
    input.focus();
    const commit = async ({ keepalive = false } = {}) => {
      clearTimeout(entry.timer);
      deleting.delete(todo.id);
      try {
        await api(`/todos/${todo.id}`, { method: 'DELETE', keepalive });
      } catch (error) {
        if (error.status === 404) return; // already gone (deleted elsewhere): that is what we wanted
        if (!alive) return;
        state.items.splice(Math.min(index, state.items.length), 0, todo);
        draw();
        flash(`Could not delete the todo: ${error.message}`, 'error');
        return;
      }
      etags.delete(todo.id);
    };
    const entry = { commit, timer: setTimeout(() => commit(), UNDO_MS) };
    deleting.set(todo.id, entry);
    flash(`Deleted “${shorten(todo.content)}”.`, 'info', {
      label: 'Undo', id: 'undo-delete',
      onclick: () => {
        clearTimeout(entry.timer);
        deleting.delete(todo.id);
        state.items.splice(Math.min(index, state.items.length), 0, todo);
        draw();
        list.querySelector(`li[data-id="${CSS.escape(todo.id)}"] button`)?.focus();
      },
    });
  }

  // Leaving the page (or the tab) ends the undo window: the pending deletes go now.
  const flushDeletes = () => { for (const entry of [...deleting.values()]) entry.commit({ keepalive: true }); };
  window.addEventListener('pagehide', flushDeletes);

  const unsubscribe = subscribe((event) => { if (alive) applyLive(event); });
  await load(true);
  return () => {
    unsubscribe();
    flushDeletes();
    window.removeEventListener('pagehide', flushDeletes);
    alive = false;
  };
}
