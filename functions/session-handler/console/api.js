// The HTTP API as the console calls it: every request carries the caller's credentials, and
// every refusal becomes an ApiError holding its problem+json detail.

import { readEvents } from './sse.js';

/** A refused request: `status`, and the problem's `title` and `detail`. */
export class ApiError extends Error {
  constructor(status, title, detail, type) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
  }
}

/** The API base of a console page: its URL up to its first `console` segment. */
export function apiBase(location) {
  const segments = location.pathname.split('/');
  const at = segments.indexOf('console');
  return location.origin + segments.slice(0, at < 0 ? segments.length : at).join('/').replace(/\/$/, '');
}

/** An ApiError from a response that is not 2xx. */
async function refusal(response) {
  const text = await response.text().catch(() => '');
  try {
    const problem = JSON.parse(text);
    return new ApiError(response.status, problem.title, problem.detail, problem.type);
  } catch {
    return new ApiError(response.status, response.statusText, text.slice(0, 300));
  }
}

export class Api {
  /**
   * `base`: the API's URL; `caller`: `{mode: 'insecure-local', value: userId}` or
   * `{mode: 'jwt', value: token}`.
   */
  constructor(base, caller) {
    this.base = base;
    this.caller = caller;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.caller.mode === 'jwt') headers.authorization = `Bearer ${this.caller.value}`;
    else headers['x-user-id'] = this.caller.value;
    return headers;
  }

  async request(method, path, body, base = this.base) {
    const init = { method, headers: this.headers(body ? { 'content-type': 'application/json' } : {}) };
    if (body) init.body = JSON.stringify(body);
    const response = await fetch(`${base}/${path}`, init);
    if (!response.ok) throw await refusal(response);
    return response.status === 204 ? null : response.json();
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }

  /** Every item of a paged list (`key`) and the last page's other fields, 500 at a time. */
  async all(path, key, maxPages = 20) {
    const items = [];
    let page;
    let cursor = null;
    for (let i = 0; i < maxPages; i += 1) {
      const query = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      page = await this.get(`${path}?${query}`);
      items.push(...(page[key] ?? []));
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return { ...page, [key]: items };
  }

  /**
   * Runs one turn through the streaming function at `streamUrl`: `on[event](data)` is called
   * for each `text`, `tool_start` and `tool_end` event; resolves with the `done` event's turn
   * result, rejects with an ApiError on a refusal or an `error` event.
   */
  async stream(streamUrl, sessionId, body, on) {
    const response = await fetch(`${streamUrl}/sessions/${encodeURIComponent(sessionId)}/messages`, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await refusal(response);
    if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      return response.json(); // a buffered answer: the turn result itself
    }
    let result = null;
    let failure = null;
    await readEvents(response.body, ({ event, data }) => {
      let value;
      try {
        value = JSON.parse(data);
      } catch {
        return;
      }
      if (event === 'done') result = value;
      else if (event === 'error') failure = new ApiError(value.status, value.title, value.detail, value.type);
      else on[event]?.(value);
    });
    if (failure) throw failure;
    if (!result) throw new ApiError(502, 'Bad Gateway', 'the stream ended before the turn finished');
    return result;
  }
}
