// Todos: newest first, "load more" with the cursor, optimistic add / edit / finish / delete.

import { api, apiJson } from '../api.js';
import { config } from '../config.js';
import { flash, formatDate, h } from '../dom.js';

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

  const list = h('ul', { id: 'todo-list', class: 'todos', 'aria-label': 'Todos' });
  const empty = h('p', { id: 'todo-empty', class: 'empty', hidden: true });
  const more = h('button', { type: 'button', id: 'load-more', hidden: true, onclick: () => load(false) }, 'Load more');
  const input = h('input', { id: 'new-todo', name: 'content', required: true, maxlength: 1000, autocomplete: 'off' });
  const addForm = h('form', { class: 'add', onsubmit: add },
    h('label', { for: 'new-todo' }, 'New todo'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Add')));
  const filters = h('fieldset', { class: 'filters' }, h('legend', {}, 'Show'),
    FILTERS.map(([value, label]) => h('label', {},
      h('input', { type: 'radio', name: 'filter', value, checked: value === state.filter, onchange: () => setFilter(value) }),
      ` ${label}`)));

  root.append(h('h1', {}, 'Todos'), addForm, filters, list, empty, h('p', {}, more));

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
    }
  }

  function setFilter(value) {
    state.filter = value;
    state.cursor = null;
    load(true);
  }

  const shows = (todo) => state.filter === 'all' || (state.filter === 'finished') === todo.is_finished;

  // Redraw the list, keeping keyboard focus on the control it was on.
  function draw() {
    const focused = document.activeElement?.dataset?.focusKey;
    list.replaceChildren(...state.items.map(item));
    empty.hidden = state.items.length > 0;
    empty.textContent = EMPTY[state.filter];
    more.hidden = !state.cursor;
    if (focused) {
      // The same control, else the first control of the same todo (Finish became Reopen).
      const todoId = focused.split(':')[0];
      (list.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)
        ?? list.querySelector(`li[data-id="${CSS.escape(todoId)}"] button`))?.focus();
    }
  }

  function item(todo) {
    const key = (name) => ({ 'data-focus-key': `${todo.id}:${name}` });
    if (state.editing === todo.id) return editor(todo);
    const meta = todo.pending ? 'saving…' : todo.is_finished ? `finished ${formatDate(todo.finished_at)}` : `added ${formatDate(todo.created_at)}`;
    return h('li', { class: `todo${todo.is_finished ? ' finished' : ''}${todo.pending ? ' pending' : ''}`, 'data-id': todo.id },
      h('span', { class: 'content' }, todo.content),
      h('span', { class: 'meta' }, meta),
      h('span', { class: 'actions' },
        todo.is_finished
          ? h('button', { type: 'button', ...key('reopen'), disabled: todo.pending, 'aria-label': `Reopen: ${todo.content}`, onclick: () => reopen(todo) }, 'Reopen')
          : h('button', { type: 'button', ...key('finish'), disabled: todo.pending, 'aria-label': `Finish: ${todo.content}`, onclick: () => finish(todo) }, 'Finish'),
        h('button', { type: 'button', ...key('edit'), disabled: todo.pending, 'aria-label': `Edit: ${todo.content}`, onclick: () => startEdit(todo) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', ...key('delete'), disabled: todo.pending, 'aria-label': `Delete: ${todo.content}`, onclick: () => remove(todo) }, 'Delete')));
  }

  function editor(todo) {
    const id = `edit-${todo.id}`;
    const field = h('input', { id, value: todo.content, required: true, maxlength: 1000, autocomplete: 'off' });
    const form = h('form', { class: 'edit' },
      h('label', { for: id, class: 'visually-hidden' }, 'Edit todo'),
      field,
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: cancelEdit }, 'Cancel'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
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
    const content = input.value.trim();
    if (!content) return;
    const temp = { id: `new-${crypto.randomUUID()}`, content, is_finished: false, pending: true, created_at: new Date().toISOString() };
    const before = state.items;
    input.value = '';
    await optimistic(
      () => {
        addedMeanwhile.add(temp.id);
        if (shows(temp)) state.items = [temp, ...state.items];
      },
      () => { state.items = before.filter((t) => t.id !== temp.id); input.value = input.value || content; },
      async () => {
        // The key makes a retried create (a lost response) return the same todo, not a second one.
        const resp = await api('/todos', { method: 'POST', json: { content }, headers: { 'Idempotency-Key': temp.id } });
        const created = remember(resp, await resp.json());
        addedMeanwhile.add(created.id);
        replaceItem(temp.id, created);
        draw();
      },
      'Could not add the todo');
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

  async function remove(todo) {
    const index = state.items.indexOf(todo);
    await optimistic(
      () => { state.items = state.items.filter((t) => t !== todo); },
      () => { state.items.splice(index, 0, todo); },
      async () => {
        try {
          await api(`/todos/${todo.id}`, { method: 'DELETE' });
        } catch (error) {
          if (error.status !== 404) throw error; // already gone (deleted elsewhere): that is what we wanted
        }
        etags.delete(todo.id);
      },
      'Could not delete the todo');
    input.focus();
  }

  await load(true);
  return () => { alive = false; };
}
