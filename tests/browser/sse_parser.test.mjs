// The SPA's Server-Sent Events parser (web/js/sse.js), with node's own test runner
// (tests/browser/test_sse_parser.py runs it under pytest).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SseParser } from '../../web/js/sse.js';

function parse(chunks) {
  const seen = { events: [], retries: [], comments: [] };
  const parser = new SseParser({
    onEvent: (e) => seen.events.push(e),
    onRetry: (ms) => seen.retries.push(ms),
    onComment: (text) => seen.comments.push(text),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { ...seen, parser };
}

const STREAM = [
  'retry: 2000\n',
  'event: ready\ndata: {"resumed": false, "window_seconds": 300}\n\n',
  ': hb\n',
  'id: 1733230000000-0\nevent: todo.created\ndata: {"type":"todo.created","data":{"content":"x"}}\n\n',
  'event: expired\ndata: {}\n\n',
].join('');

test('the contract\'s frames: retry, ready, a heartbeat, an event with its id, expired', () => {
  const { events, retries, comments } = parse([STREAM]);
  assert.deepEqual(retries, [2000]);
  assert.deepEqual(comments, ['hb']);
  assert.deepEqual(events.map((e) => [e.type, e.id]), [['ready', ''], ['todo.created', '1733230000000-0'], ['expired', '1733230000000-0']]);
  assert.equal(JSON.parse(events[1].data).data.content, 'x');
});

test('any split into chunks gives the same events, down to one character at a time', () => {
  const whole = parse([STREAM]).events;
  assert.deepEqual(parse([...STREAM]).events, whole);
  for (let cut = 1; cut < STREAM.length; cut += 7) {
    assert.deepEqual(parse([STREAM.slice(0, cut), STREAM.slice(cut)]).events, whole, `cut at ${cut}`);
  }
});

test('nothing is dispatched before the blank line that ends the event', () => {
  const { events, parser } = parse(['id: 5\nevent: todo.updated\ndata: {}\n']);
  assert.equal(events.length, 0);
  parser.push('\n');
  assert.deepEqual(events.map((e) => e.type), ['todo.updated']);
});

test('multi-line data joins with newlines; one leading space is dropped, a second kept', () => {
  const { events } = parse(['data: first\ndata:second\ndata:  third\n\n']);
  assert.deepEqual(events, [{ type: 'message', data: 'first\nsecond\n third', id: '' }]);
});

test('CRLF, a CR alone and a CRLF split across chunks all end a line', () => {
  const { events, parser } = parse(['data: a\r', '\ndata: b\r\r\n', 'event: x\rdata: c\r\r']);
  assert.deepEqual(events.map((e) => e.data), ['a\nb']); // the last CR may be half of a CRLF: it waits
  parser.push(': hb\n');
  assert.deepEqual(events.map((e) => e.data), ['a\nb', 'c']);
  assert.equal(events[1].type, 'x');
});

test('the id persists across events, an empty id clears it, an id holding NUL is ignored', () => {
  const { events } = parse(['id: 7\ndata: a\n\ndata: b\n\nid: 8\0\ndata: c\n\nid\ndata: d\n\n']);
  assert.deepEqual(events.map((e) => e.id), ['7', '7', '7', '']);
});

test('an event without data is not dispatched, and its type does not leak into the next', () => {
  const { events } = parse(['event: lonely\n\ndata: x\n\n']);
  assert.deepEqual(events.map((e) => e.type), ['message']);
});

test('retry takes only digits; unknown fields and a field without colon are ignored', () => {
  const { events, retries } = parse(['retry: soon\nretry: 1500\nfoo: bar\ndata\n\n']);
  assert.deepEqual(retries, [1500]);
  assert.deepEqual(events, [{ type: 'message', data: '', id: '' }]);
});

test('a byte order mark at the start is dropped', () => {
  const { events } = parse(['\ufeff', 'data: x\n\n']);
  assert.deepEqual(events.map((e) => e.data), ['x']);
});
