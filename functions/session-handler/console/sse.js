// Server-sent events, read from a fetch() body: the text/event-stream format of the HTML
// standard (fields `event`, `data`, `id`; comments; CR, LF or CRLF line ends), parsed here
// because EventSource can neither POST nor send an Authorization header.

/**
 * A parser that calls `onEvent({event, data, id})` for each complete event.
 * `push(text)` feeds decoded text in chunks of any size; `end()` flushes an event that the
 * stream left unterminated (the standard drops it; a last `done` is worth keeping).
 */
export function sseParser(onEvent) {
  let buffer = '';
  let started = false;
  let event = '';
  let data = [];
  let id;

  function dispatch() {
    if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id });
    event = '';
    data = [];
  }

  function line(text) {
    if (text === '') return dispatch();
    if (text.startsWith(':')) return undefined; // a comment (keep-alive)
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    return undefined;
  }

  return {
    push(text) {
      buffer += text;
      if (!started && buffer.length > 0) {
        started = true;
        if (buffer.startsWith('\uFEFF')) buffer = buffer.slice(1);
      }
      for (;;) {
        const end = /\r\n|\r|\n/.exec(buffer);
        if (!end) break;
        // A CR at the very end may be the first half of a CRLF split across chunks.
        if (end[0] === '\r' && end.index === buffer.length - 1) break;
        line(buffer.slice(0, end.index));
        buffer = buffer.slice(end.index + end[0].length);
      }
    },
    end() {
      if (buffer.length > 0) line(buffer.replace(/\r$/, ''));
      buffer = '';
      dispatch();
    },
  };
}

/** Reads a `text/event-stream` body to its end, calling `onEvent` for each event. */
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = sseParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
  parser.end();
}
