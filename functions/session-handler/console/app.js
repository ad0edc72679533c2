// The console: choose a caller and a session, talk to the agent, read each turn's trace.

import { Api, ApiError, apiBase } from './api.js';
import { el, ms, usd, tokens, count, oneLine, resultText } from './dom.js';
import { renderTurn, renderDetail, toolCalls } from './trace.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'lambda-agent-console-token';
const USER_KEY = 'lambda-agent-console-user';

const state = {
  base: apiBase(window.location),
  config: null,
  api: null,
  sessions: [],
  sessionId: null,
  session: null, // the chosen session's header, as GET sessions/{id} gives it
  messages: [],
  traces: [],
  calls: new Map(),
  busy: false,
};

const jwt = () => state.config?.auth_mode === 'jwt';

// ---- notices ----

function notice(message, kind = 'error') {
  const box = $('notice');
  box.hidden = !message;
  box.className = `notice notice-${kind}`;
  box.textContent = message ?? '';
}

function problemText(error) {
  if (error instanceof ApiError) {
    const title = [error.status, error.title].filter(Boolean).join(' ');
    return `${title || 'Error'}: ${error.detail || error.message}`;
  }
  return `The request failed: ${error.message}`;
}

// ---- the caller ----

function setupCaller() {
  const input = $('caller-input');
  $('caller-label').textContent = jwt() ? 'Bearer token' : 'User id';
  input.type = jwt() ? 'password' : 'text';
  input.placeholder = jwt() ? 'paste a JWT' : 'local-user';
  input.value = jwt() ? sessionStorage.getItem(TOKEN_KEY) ?? '' : sessionStorage.getItem(USER_KEY) ?? 'local-user';
  $('caller-hint').textContent = jwt()
    ? 'Sent as Authorization: Bearer; kept in this tab only.'
    : 'Sent as x-user-id (AUTH_MODE=insecure-local).';
}

function useCaller() {
  const value = $('caller-input').value.trim();
  const key = jwt() ? TOKEN_KEY : USER_KEY;
  if (value) sessionStorage.setItem(key, value);
  else sessionStorage.removeItem(key);
  state.api = value ? new Api(state.base, { mode: state.config.auth_mode, value }) : null;
  state.sessions = [];
  choose(null);
  loadSessions();
}

// ---- sessions ----

function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const today = date.toDateString() === new Date().toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString([], { month: 'short', day: 'numeric' });
}

function turns(n) {
  return `${count(n)} turn${n === 1 ? '' : 's'}`;
}

function renderSessions() {
  const list = $('sessions');
  const items = state.sessions.map((s) =>
    el(
      'li',
      {},
      el(
        'button',
        {
          type: 'button',
          class: 'session',
          'aria-current': s.session_id === state.sessionId ? 'true' : undefined,
          data: { sessionId: s.session_id },
          on: { click: () => choose(s.session_id) },
        },
        el('span', { class: 'session-title', text: s.title || 'Untitled session' }),
        el('span', {
          class: 'session-meta',
          text: `${turns(s.turns)} · ${usd(s.cost_usd)} · ${when(s.updated_at)}`,
        }),
      ),
    ),
  );
  if (!state.api) {
    items.push(el('li', { class: 'empty', text: jwt() ? 'Paste a bearer token above.' : 'Enter a user id above.' }));
  } else if (list.dataset.state === 'loaded' && items.length === 0) {
    items.push(el('li', { class: 'empty', text: 'No sessions yet.' }));
  }
  list.replaceChildren(...items);
}

async function loadSessions() {
  const { api } = state;
  const list = $('sessions');
  $('new-session').disabled = !api || state.busy;
  if (!api) {
    list.dataset.state = 'idle';
    renderSessions();
    return;
  }
  list.dataset.state = 'loading';
  try {
    const { sessions } = await api.get('sessions');
    if (api !== state.api) return; // the caller changed meanwhile
    state.sessions = sessions;
    list.dataset.state = 'loaded';
    renderSessions();
  } catch (error) {
    if (api !== state.api) return;
    list.dataset.state = 'error';
    notice(problemText(error));
  }
}

async function newSession() {
  notice(null);
  try {
    const created = await state.api.post('sessions');
    await loadSessions();
    await choose(created.session_id);
    $('message').focus();
  } catch (error) {
    notice(problemText(error));
  }
}

async function choose(id) {
  Object.assign(state, { sessionId: id, session: null, messages: [], traces: [], calls: new Map() });
  renderSessions();
  renderChat();
  renderTraces();
  closeDetail();
  setBusy(state.busy);
  if (id) await loadSession();
}

async function loadSession(openTurn) {
  const { api, sessionId: id } = state;
  try {
    const [session, trace] = await Promise.all([
      api.all(`sessions/${id}`, 'messages'),
      api.all(`sessions/${id}/trace`, 'turns'),
    ]);
    if (api !== state.api || id !== state.sessionId) return;
    Object.assign(state, {
      session,
      messages: session.messages,
      traces: trace.turns,
      calls: toolCalls(session.messages),
    });
    const listed = state.sessions.findIndex((s) => s.session_id === id);
    if (listed >= 0) state.sessions[listed] = { ...state.sessions[listed], ...session };
    renderSessions();
    renderChat();
    renderTraces(openTurn);
  } catch (error) {
    notice(problemText(error));
  }
}

// ---- the chat ----

function scrollToEnd() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function bubble(role, text) {
  return el(
    'li',
    { class: `msg ${role}`, data: { role } },
    el('span', { class: 'who', text: role === 'user' ? 'You' : 'Agent' }),
    el('div', { class: 'text', text }),
  );
}

function toolUseItem(id, name, input) {
  return el(
    'li',
    { class: 'event tool-use', data: { toolUseId: id } },
    el('span', { class: 'event-icon', 'aria-hidden': 'true', text: '⚙' }),
    el('code', { text: name }),
    el('span', { class: 'event-text', text: oneLine(input) }),
  );
}

function toolResultItem(block) {
  return el(
    'li',
    { class: `event tool-result status-${block.status}`, data: { toolUseId: block.tool_use_id } },
    el('span', { class: 'event-icon', 'aria-hidden': 'true', text: '↳' }),
    el('span', { class: 'event-text', text: oneLine(resultText(block.content), 160) }),
  );
}

function messageItems(message) {
  const items = [];
  let text = [];
  const flush = () => {
    if (text.length) items.push(bubble(message.role, text.join('\n')));
    text = [];
  };
  for (const block of message.content ?? []) {
    if (block.type === 'text') {
      text.push(block.text);
      continue;
    }
    flush();
    if (block.type === 'tool_use') items.push(toolUseItem(block.tool_use_id, block.name, block.input));
    else if (block.type === 'tool_result') items.push(toolResultItem(block));
    else if (block.type === 'reasoning') {
      items.push(el('li', { class: 'event reasoning' }, el('details', {}, el('summary', { text: 'Reasoning' }), el('p', { text: block.text }))));
    } else if (block.type === 'redacted_reasoning') {
      items.push(el('li', { class: 'event reasoning', text: 'Reasoning (redacted)' }));
    }
  }
  flush();
  return items;
}

function turnFooter(trace) {
  const calls = trace.steps.filter((s) => s.kind !== 'tool').length;
  return el(
    'li',
    { class: 'turn-foot', data: { turn: trace.turn } },
    el('span', {
      text: `Turn ${trace.turn} · ${calls} model call${calls === 1 ? '' : 's'} · ${ms(trace.duration_ms)} · ${tokens(trace.usage)} · ${usd(trace.cost?.total_usd)}`,
    }),
    el('button', { type: 'button', class: 'link open-trace', data: { turn: trace.turn }, text: 'View trace', on: { click: () => openTrace(trace.turn) } }),
  );
}

function renderChat() {
  const list = $('messages');
  const { session } = state;
  $('chat-heading').textContent = session ? session.title || 'Untitled session' : 'Chat';
  $('session-meta').textContent = session ? `${turns(session.turns)} · ${usd(session.cost_usd)}` : '';
  if (!state.sessionId) {
    list.replaceChildren(el('li', { class: 'empty', text: 'Choose a session, or start a new one.' }));
    return;
  }
  const items = [];
  let turn = null;
  const footer = () => {
    const trace = state.traces.find((t) => t.turn === turn);
    if (trace) items.push(turnFooter(trace));
  };
  for (const message of state.messages) {
    if (message.turn !== turn) {
      footer();
      turn = message.turn;
    }
    items.push(...messageItems(message));
  }
  footer();
  if (items.length === 0) items.push(el('li', { class: 'empty', text: session ? 'No messages yet: ask something below.' : 'Loading…' }));
  list.replaceChildren(...items);
  scrollToEnd();
}

/** What a turn in progress shows: streamed text, tool calls as they start and end. */
function liveTurn(list) {
  const working = el(
    'li',
    { class: 'working', role: 'status' },
    el('span', { class: 'spinner', 'aria-hidden': 'true' }),
    state.config.stream_url ? 'The agent is working…' : 'The agent is working… (the answer comes whole: no streaming here)',
  );
  list.append(working);
  scrollToEnd();
  let answer = null;
  const tools = new Map();
  const insert = (node) => {
    working.before(node);
    scrollToEnd();
    return node;
  };
  return {
    handlers: {
      text({ delta }) {
        // How many pieces of text arrived as events (the browser test reads it).
        document.body.dataset.textEvents = String(Number(document.body.dataset.textEvents ?? 0) + 1);
        answer ??= insert(bubble('assistant', ''));
        answer.querySelector('.text').textContent += delta ?? '';
        scrollToEnd();
      },
      tool_start({ tool_use_id: id, name, input }) {
        answer = null;
        const item = insert(toolUseItem(id, name, input));
        item.classList.add('running');
        tools.set(id, item);
      },
      tool_end({ tool_use_id: id, status, latency_ms: latency }) {
        const item = tools.get(id);
        if (!item) return;
        item.classList.remove('running');
        item.classList.add(`status-${status}`);
        item.append(el('span', { class: 'event-meta', text: `${status} · ${ms(latency)}` }));
      },
    },
    finish(result) {
      working.remove();
      if (!answer && result?.answer) insert(bubble('assistant', result.answer));
    },
    fail() {
      working.remove();
    },
  };
}

function setBusy(busy) {
  state.busy = busy;
  const none = !state.sessionId;
  $('message').disabled = none;
  $('send').disabled = none || busy;
  $('send').textContent = busy ? 'Sending…' : 'Send';
  $('composer').setAttribute('aria-busy', String(busy));
  $('new-session').disabled = busy || !state.api;
}

async function send(event) {
  event.preventDefault();
  const input = $('message');
  const text = input.value.trim();
  const id = state.sessionId;
  if (!text || state.busy || !id) return;
  notice(null);
  setBusy(true);
  const list = $('messages');
  list.querySelector('.empty')?.remove();
  list.append(bubble('user', text));
  input.value = '';
  const live = liveTurn(list);
  let failed = false;
  try {
    const body = { message: text };
    const result = state.config.stream_url
      ? await state.api.stream(state.config.stream_url, id, body, live.handlers)
      : await state.api.post(`sessions/${encodeURIComponent(id)}/messages`, body);
    live.finish(result);
    if (result.error) notice(`The turn ended early (${result.stop_reason}): ${result.error}`, 'warning');
    else if (result.stop_reason && result.stop_reason !== 'end_turn') notice(`The turn ended early: ${result.stop_reason}`, 'warning');
  } catch (error) {
    failed = true;
    live.fail();
    notice(problemText(error));
  } finally {
    setBusy(false);
  }
  if (id === state.sessionId) await loadSession();
  if (failed && !input.value) input.value = text; // nothing was lost: send it again
  input.focus();
}

// ---- the trace ----

function renderTraces(openTurn) {
  const box = $('traces');
  $('session-cost').textContent = state.session ? `session ${usd(state.session.cost_usd)}` : '';
  $('session-cost').title = 'the session\'s cost so far';
  if (state.traces.length === 0) {
    box.replaceChildren(
      el('p', { class: 'empty', text: state.sessionId ? 'Each turn\'s model and tool calls will show here.' : 'No session chosen.' }),
    );
    return;
  }
  const open = openTurn ?? state.traces.at(-1).turn;
  box.replaceChildren(...state.traces.map((trace) => renderTurn(trace, { open: trace.turn === open, select })));
}

function openTrace(turn) {
  const details = $('traces').querySelector(`.turn-trace[data-turn="${Number(turn)}"]`);
  if (!details) return;
  details.open = true;
  details.scrollIntoView({ block: 'nearest' });
  details.querySelector('summary').focus();
}

function select(step, bar) {
  for (const pressed of document.querySelectorAll('.bar[aria-pressed="true"]')) pressed.setAttribute('aria-pressed', 'false');
  bar.setAttribute('aria-pressed', 'true');
  const detail = $('step-detail');
  detail.hidden = false;
  detail.dataset.kind = step.kind;
  $('detail-body').replaceChildren(el('div', {}, renderDetail(step, state.calls)));
}

function closeDetail() {
  $('step-detail').hidden = true;
  $('detail-body').replaceChildren();
  for (const pressed of document.querySelectorAll('.bar[aria-pressed="true"]')) pressed.setAttribute('aria-pressed', 'false');
}

// ---- start ----

// The console's configuration, read with a deadline and retried: a request that hangs (a busy or
// restarting function) must not leave the page waiting for ever.
async function readConfig(attempts = 4, timeoutMs = 8000) {
  let last;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      const response = await fetch(`${state.base}/console/config.json`, {
        signal: AbortSignal.timeout(timeoutMs),
        cache: 'no-store',
      });
      if (response.ok) {
        const config = await response.json();
        notice(null);
        return config;
      }
      last = new Error(`HTTP ${response.status}`);
      if (response.status < 500 && response.status !== 429) break;
    } catch (error) {
      last = error;
    }
    if (attempt < attempts) {
      notice(`Reading the console's configuration (attempt ${attempt + 1} of ${attempts})…`, 'warning');
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
  notice(`The console's configuration could not be read: ${last.message}`);
  return null;
}

async function start() {
  $('caller-form').addEventListener('submit', (event) => {
    event.preventDefault();
    notice(null);
    useCaller();
  });
  $('new-session').addEventListener('click', newSession);
  $('composer').addEventListener('submit', send);
  $('message').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('step-detail').hidden) closeDetail();
  });
  state.config = await readConfig();
  if (!state.config) return;
  const mode = $('mode');
  mode.textContent = state.config.stream_url ? 'streaming' : 'buffered';
  mode.title = state.config.stream_url
    ? `Turns stream from ${state.config.stream_url}`
    : 'No streaming function is configured (STREAM_URL): each answer comes whole';
  setupCaller();
  useCaller();
  document.body.dataset.ready = 'true';
}

start();
