// h(tag, attrs, ...children): builds DOM nodes. Text is always set as text,
// never parsed as HTML, so ids and names from the ledger cannot inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// Event times are UTC microseconds.
export function formatTime(micros) {
  if (micros === undefined || micros === null) return '';
  return new Date(Number(micros) / 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function actorOf(event) {
  const a = event.actor || {};
  return a.account_id || (event.request_id === 'demo' ? 'demo setup' : 'system');
}
