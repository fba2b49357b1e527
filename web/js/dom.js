// Tiny DOM helpers: build elements from plain calls, no templates (the CSP forbids inline code anyway).

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value' || key === 'checked') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An HTML element: h('button', {type: 'button', onclick}, 'Save'). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as h(). */
export function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

const flashBox = () => document.getElementById('flash');

/**
 * A message in the shared live region; errors are announced at once (role=alert). `action`
 * ({label, onclick, id}) adds a button (Undo, say) before the dismiss button. Returns the note.
 */
export function flash(message, kind = 'info', action = null) {
  const box = flashBox();
  box.replaceChildren();
  if (!message) return null;
  const actionButton = action
    ? h('button', { type: 'button', class: 'action', id: action.id ?? null, onclick: () => { box.replaceChildren(); action.onclick(); } }, action.label)
    : null;
  const note = h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : null },
    h('span', { class: 'text' }, message),
    h('span', { class: 'note-actions' }, actionButton,
      h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => box.replaceChildren() }, '×')));
  box.append(note);
  return note;
}

/** A short form of a long text for buttons' accessible names and messages ("Finish: buy milk"). */
export function shorten(text, max = 40) {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
}

export function clearFlash() {
  flashBox().replaceChildren();
}

/** A date without the time, for lists ("3 Dec 2026"); the full date and time go in the title. */
export function formatDay(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' });
}

export function formatDate(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
