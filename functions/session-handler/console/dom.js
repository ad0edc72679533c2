// Small DOM and formatting helpers shared by the console's modules.

/**
 * Makes an element: `el('li', {class: 'msg', data: {turn: 1}, text: 'hi'}, child...)`.
 * Text always goes in as text (never as markup), so nothing the API returns can inject HTML.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** `320 ms`, `1.25 s`. */
export function ms(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

/** A cost in US dollars: `$0.0012`, `<$0.0001`, `$1.20`; `—` when unpriced. */
export function usd(value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  if (value === 0) return '$0';
  if (value < 0.0001) return '<$0.0001';
  return value < 1 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}

/** A count with thousands separators. */
export function count(value) {
  return typeof value === 'number' ? value.toLocaleString('en-US') : '0';
}

/** Tokens of a usage record: `1,234 in · 56 out` (and cache reads and writes when any). */
export function tokens(usage) {
  if (!usage) return '—';
  const parts = [`${count(usage.input_tokens)} in`, `${count(usage.output_tokens)} out`];
  if (usage.cache_read_tokens) parts.push(`${count(usage.cache_read_tokens)} cache read`);
  if (usage.cache_write_tokens) parts.push(`${count(usage.cache_write_tokens)} cache write`);
  return parts.join(' · ');
}

/** A value shown in one line, cut to `max` characters. */
export function oneLine(value, max = 120) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The text of a tool result's content blocks. */
export function resultText(content) {
  return (content ?? [])
    .map((block) => (block.type === 'text' ? block.text : JSON.stringify(block.json ?? block, null, 2)))
    .join('\n');
}
