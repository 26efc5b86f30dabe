// The audit view: the head (seq, hash) and a chain verification run by the
// server (GET /v1/verify, admin only), its NDJSON progress read as a stream.
import * as api from './api.js';
import { h, replace, formatTime } from './dom.js';

async function verify(progress, result) {
  replace(result, h('p', { class: 'hint' }, 'verifying…'));
  progress.value = 0;
  try {
    const res = await api.request('/v1/verify');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if ('ok' in line) {
          progress.value = line.ok ? 1 : progress.value;
          replace(result, line.ok
            ? h('p', { class: 'good', id: 'verify-ok' }, `Chain verified: ${line.checked} events, head seq ${line.head_seq}, hash `, h('code', {}, line.head_hash))
            : h('p', { class: 'bad', id: 'verify-bad' }, `Problem at seq ${line.seq}: ${line.problem} (${line.checked} events verified before it)`));
        } else {
          progress.value = line.head ? line.checked / line.head : 0;
          replace(result, h('p', { class: 'hint' }, `verified ${line.checked} of ${line.head}…`));
        }
      }
    }
  } catch (e) {
    replace(result, h('p', { class: 'error' }, e.message));
  }
}

export async function renderAudit(view) {
  const head = await api.getJson('/v1/head');
  const progress = h('progress', { id: 'verify-progress', max: 1, value: 0 });
  const result = h('div', { id: 'verify-result' });
  replace(view, h('h2', {}, 'Audit'),
    h('section', { class: 'card' }, h('h3', {}, 'Head'), h('dl', { id: 'head' },
      h('dt', {}, 'seq'), h('dd', { id: 'head-seq' }, head.seq),
      h('dt', {}, 'time'), h('dd', {}, head.time_us ? formatTime(head.time_us) : '—'),
      h('dt', {}, 'hash'), h('dd', {}, h('code', { id: 'head-hash' }, head.hash)))),
    h('section', { class: 'card' }, h('h3', {}, 'Chain verification'),
      h('p', { class: 'hint' }, 'Dense seqs, every hash and link, every event\'s schema, from seq 1 to the head. Admin only.'),
      h('button', { id: 'verify', type: 'button', onclick: () => verify(progress, result) }, 'Verify chain'), ' ', progress, result));
}
