// A Server-Sent Events parser for a body read in chunks (the HTML standard's "event stream
// interpretation"): lines end in \n, \r\n or \r, also split across chunks; `data:` lines join with
// \n; `id:` sets the last event id (kept across events, ignored if it holds NUL); `retry:` only
// digits; lines starting with ':' are comments; a field's one leading space is dropped; a blank
// line dispatches (nothing if no data came). No DOM here, so node's test runner loads it too.

/**
 * Feed it decoded text with push(); it calls onEvent({type, data, id}) per event, onRetry(ms)
 * per valid retry field and onComment(text) per comment line (the server's heartbeats).
 */
export class SseParser {
  constructor({ onEvent = () => {}, onRetry = () => {}, onComment = () => {} } = {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.onComment = onComment;
    this.buffer = '';
    this.first = true; // a UTF-8 byte order mark may open the stream
    this.lastEventId = '';
    this.resetEvent();
  }

  resetEvent() {
    this.type = '';
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    if (this.first && this.buffer.length) {
      if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      this.first = false;
    }
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      // A \r at the end of the chunk may be the first half of \r\n: wait for the next chunk.
      if (end === cr && cr === this.buffer.length - 1) break;
      const step = end === cr && this.buffer[cr + 1] === '\n' ? 2 : 1;
      this.line(this.buffer.slice(start, end));
      start = end + step;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(text) {
    if (text === '') return this.dispatch();
    if (text.startsWith(':')) return this.onComment(text.slice(1).replace(/^ /, ''));
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    const value = colon === -1 ? '' : text.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.onRetry(Number(value));
    // Any other field is ignored, as the standard says.
    return undefined;
  }

  dispatch() {
    const { type, data } = this;
    this.resetEvent();
    if (!data.length) return;
    this.onEvent({ type: type || 'message', data: data.join('\n'), id: this.lastEventId });
  }
}
