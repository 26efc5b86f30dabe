// The live view: the change feed as a scrolling table, filtered in the page
// (type, or any id the event names). It starts 50 events before the head and
// resumes from the last seq it has seen after any disconnect.
import * as api from './api.js';
import { FeedClient } from './feed.js';
import { h, replace, formatTime, actorOf } from './dom.js';

const kBacklog = 50;      // events shown from before the head at start
const kMaxRows = 2000;    // oldest rows are dropped past this

const kStateText = {
  connecting: 'connecting…', 'catching-up': 'catching up…', live: 'live', reconnecting: 'disconnected, reconnecting…',
  stopped: 'stopped', error: 'error',
};

function matches(event, type, text) {
  if (type && event.type !== type) return false;
  if (text && !JSON.stringify(event.data).includes(text) && !JSON.stringify(event.actor || {}).includes(text)) return false;
  return true;
}

export async function renderLive(view) {
  const head = await api.getJson('/v1/head');
  const state = h('span', { id: 'feed-state', class: 'state' }, 'connecting…');
  const resumes = h('ul', { id: 'resumes', class: 'hint' });
  const typeFilter = h('select', { name: 'type' }, h('option', { value: '' }, 'all types'));
  const textFilter = h('input', { name: 'text', placeholder: 'image / account / instance id', spellcheck: 'false' });
  const tbody = h('tbody');
  const scroller = h('div', { class: 'scroll' }, h('table', { id: 'feed' },
    h('thead', {}, h('tr', {}, ['seq', 'time', 'type', 'actor', 'data'].map((t) => h('th', {}, t)))), tbody));
  const types = new Set();

  const applyFilter = () => {
    for (const tr of tbody.children) tr.hidden = !matches(tr.event, typeFilter.value, textFilter.value.trim());
  };
  typeFilter.addEventListener('change', applyFilter);
  textFilter.addEventListener('input', applyFilter);

  const onEvent = (e) => {
    if (!types.has(e.type)) {
      types.add(e.type);
      typeFilter.append(h('option', { value: e.type }, e.type));
    }
    const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 4;
    const tr = h('tr', { dataset: { seq: e.seq, type: e.type } }, h('td', { class: 'num' }, e.seq),
      h('td', {}, formatTime(e.time)), h('td', {}, e.type), h('td', {}, h('code', {}, actorOf(e))),
      h('td', { class: 'data' }, JSON.stringify(e.data)));
    tr.event = e;
    tr.hidden = !matches(e, typeFilter.value, textFilter.value.trim());
    tbody.append(tr);
    while (tbody.children.length > kMaxRows) tbody.firstElementChild.remove();
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  };
  const client = new FeedClient({
    urlFor: api.feedUrl,
    afterSeq: Math.max(0, head.seq - kBacklog),
    onEvent,
    onState: (s, detail) => {
      state.textContent = detail ? `${kStateText[s]}: ${detail}` : kStateText[s];
      state.dataset.state = s;
    },
    onResume: ({ from, events, head: at }) => {
      resumes.append(h('li', {}, `${formatTime(Date.now() * 1000)}: reconnected after seq ${from}, caught up ${events} event(s), live at head ${at}`));
    },
  });
  replace(view, h('h2', {}, 'Live ', state),
    h('form', { class: 'inline', onsubmit: (ev) => ev.preventDefault() }, h('label', {}, 'Type ', typeFilter), h('label', {}, 'Text ', textFilter)),
    scroller, resumes);
  client.start();
  return () => client.stop();
}
