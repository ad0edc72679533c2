// A turn's trace as a timeline: one row a step, its bar placed on the turn's time axis.

import { el, ms, usd, tokens, count, resultText } from './dom.js';

/**
 * Where each step of a turn sits in time: `{bars: [{step, start, end}], span, timed}` in ms
 * from the turn's start. A step's `start_ms` is used when it has one; otherwise steps are laid
 * out in order of their step number: each step's model call, then its tools, which run
 * together. With offsets (`timed`) the axis spans the whole turn; without, only the steps (the
 * turn's other time, loading history, listing tools, storing, has no known place on it).
 */
export function layout(trace) {
  const steps = trace.steps ?? [];
  const numbers = [...new Set(steps.map((s) => s.step))].sort((a, b) => a - b);
  const at = new Map();
  let cursor = 0;
  for (const number of numbers) {
    const group = steps.filter((s) => s.step === number);
    for (const model of group.filter((s) => s.kind !== 'tool')) {
      at.set(model, cursor);
      cursor += model.latency_ms ?? 0;
    }
    let longest = 0;
    for (const tool of group.filter((s) => s.kind === 'tool')) {
      at.set(tool, cursor);
      longest = Math.max(longest, tool.latency_ms ?? 0);
    }
    cursor += longest;
  }
  const bars = steps.map((step) => {
    const start = typeof step.start_ms === 'number' ? step.start_ms : at.get(step);
    return { step, start, end: start + (step.latency_ms ?? 0) };
  });
  const timed = steps.some((step) => typeof step.start_ms === 'number');
  const span = Math.max(timed ? trace.duration_ms ?? 0 : 0, ...bars.map((bar) => bar.end), 1);
  return { bars, span, timed };
}

/** What each tool call got and gave, by tool_use_id, from a session's messages. */
export function toolCalls(messages) {
  const calls = new Map();
  const call = (id) => {
    if (!calls.has(id)) calls.set(id, {});
    return calls.get(id);
  };
  for (const message of messages) {
    for (const block of message.content ?? []) {
      if (block.type === 'tool_use') Object.assign(call(block.tool_use_id), { name: block.name, input: block.input });
      if (block.type === 'tool_result') {
        Object.assign(call(block.tool_use_id), { status: block.status, result: resultText(block.content) });
      }
    }
  }
  return calls;
}

/** Axis ticks at a round interval: about five over `span` ms. */
function ticks(span) {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out = [];
  // The last tenth is left bare, so no label runs past the end.
  for (let t = 0; t <= span * 0.9; t += step) out.push(t);
  return out;
}

function percent(value, span) {
  return `${Math.min(100, (100 * value) / span).toFixed(3)}%`;
}

/** A model id as people say it: `us.anthropic.claude-haiku-4-5-20251001-v1:0` → `claude-haiku-4-5`. */
export function modelName(id) {
  return (id ?? 'model')
    .replace(/^arn:[^/]*\//, '')
    .replace(/^(us|eu|apac|jp|au|global)\./, '')
    .replace(/^[a-z]+\.(?=[a-z])/, '')
    .replace(/(-\d{8})?(-v\d+(:\d+)?)?$/, '');
}

function label(step) {
  if (step.kind === 'tool') return step.name;
  if (step.kind === 'model_failed') return `${step.step} · model failed`;
  return `${step.step} · ${modelName(step.model_id)}`;
}

function metrics(step) {
  if (step.kind === 'tool') return [ms(step.latency_ms), step.status];
  if (step.kind === 'model_failed') return [ms(step.latency_ms), `${step.failed_attempts?.length ?? 0} attempts`];
  return [ms(step.latency_ms), tokens(step.usage), usd(step.cost?.total_usd)];
}

function describe(step) {
  const kind = step.kind === 'tool' ? `Tool call ${step.name}` : `Model call ${step.step}`;
  return `${kind}: ${metrics(step).join(', ')}`;
}

/**
 * One turn's trace: a `<details>` whose summary gives the turn's totals, with a row per step.
 * `select(step, bar)` is called when a bar is chosen.
 */
export function renderTurn(trace, { open, select }) {
  const { bars, span, timed } = layout(trace);
  const axis = el(
    'div',
    { class: 'axis', 'aria-hidden': 'true' },
    ticks(span).map((t) => {
      const tick = el('span', { class: 'tick', text: ms(t) });
      tick.style.left = percent(t, span);
      return tick;
    }),
  );
  const rows = bars.map(({ step, start, end }) => {
    const bar = el('button', {
      type: 'button',
      class: 'bar',
      'aria-label': describe(step),
      'aria-pressed': 'false',
      title: describe(step),
      data: {
        kind: step.kind,
        step: step.step,
        name: step.kind === 'tool' ? step.name : undefined,
        toolUseId: step.tool_use_id,
        status: step.status,
      },
      on: { click: () => select(step, bar) },
    });
    bar.style.left = percent(start, span);
    bar.style.width = percent(Math.max(end - start, 0), span);
    return el(
      'li',
      { class: 'row', data: { kind: step.kind } },
      el(
        'div',
        { class: 'row-info' },
        el('span', { class: 'row-label', title: step.model_id ?? step.name }, el('span', { class: 'dot' }), label(step)),
        el('span', { class: 'row-metrics', text: metrics(step).join(' · ') }),
      ),
      el('div', { class: 'track' }, bar),
    );
  });
  const summary = el(
    'summary',
    {},
    el('span', { class: 'turn-no', text: `Turn ${trace.turn}` }),
    el('span', { class: 'chip', text: ms(trace.duration_ms) }),
    el('span', { class: 'chip', text: tokens(trace.usage) }),
    el('span', { class: 'chip cost', text: usd(trace.cost?.total_usd), title: 'cost of the turn' }),
    el('span', { class: `chip stop stop-${trace.stop_reason}`, text: trace.stop_reason }),
  );
  const untimed = timed || bars.length === 0
    ? null
    : el('p', {
      class: 'muted caption',
      text: `Steps in order, ${ms(span)} of the turn's ${ms(trace.duration_ms)} (this trace has no step offsets).`,
    });
  const omitted = trace.omitted_tool_steps
    ? el('p', { class: 'muted', text: `${count(trace.omitted_tool_steps)} tool steps left out of the stored trace` })
    : null;
  return el(
    'details',
    { class: 'turn-trace', open, data: { turn: trace.turn, traceId: trace.trace_id } },
    summary,
    el('div', { class: 'timeline' }, axis, el('ol', { class: 'rows', 'aria-label': `Steps of turn ${trace.turn}` }, rows), untimed, omitted),
  );
}

function pair(term, value) {
  return [el('dt', { text: term }), el('dd', {}, value)];
}

/** The detail of one step: a tool's input and result, or a model call's numbers. */
export function renderDetail(step, calls) {
  if (step.kind === 'tool') {
    const call = calls.get(step.tool_use_id) ?? {};
    return [
      el('h3', {}, `Tool ${step.name}`, el('span', { class: `chip status-${step.status}`, text: step.status })),
      el('dl', {}, pair('Step', String(step.step)), pair('Latency', ms(step.latency_ms)), pair('Tool use id', step.tool_use_id)),
      step.error ? el('p', { class: 'error-text', text: step.error }) : null,
      el('h4', { text: 'Input' }),
      el('pre', { class: 'detail-input', text: call.input === undefined ? '(not in the loaded messages)' : JSON.stringify(call.input, null, 2) }),
      el('h4', { text: 'Result' }),
      el('pre', { class: 'detail-result', text: call.result ?? '(not in the loaded messages)' }),
    ];
  }
  const attempts = step.failed_attempts ?? [];
  return [
    el('h3', {}, step.kind === 'model_failed' ? `Model call ${step.step} failed` : `Model call ${step.step}`),
    el(
      'dl',
      {},
      step.model_id ? pair('Model', step.model_id) : [],
      pair('Latency', ms(step.latency_ms)),
      step.stop_reason ? pair('Stop reason', step.stop_reason) : [],
      step.usage ? pair('Tokens', tokens(step.usage)) : [],
      step.kind === 'model' ? pair('Cost', usd(step.cost?.total_usd)) : [],
    ),
    attempts.length
      ? [el('h4', { text: 'Failed attempts' }), el('ul', {}, attempts.map((a) => el('li', { text: `${a.model_id}: ${a.error}` })))]
      : null,
  ];
}
