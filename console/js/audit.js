// The audit view: the head (seq, hash) and a chain verification run by the
// server (GET /v1/verify, admin only), its NDJSON progress read as it streams.
import * as api from './api.js';
import { h, replace, formatTime } from './dom.js';

// The server sends each line as the scan reaches it (a chunked answer), so
// the progress bar moves while the scan runs. Leaving the view cancels the
// read, which closes the connection, and the server stops the scan.
async function verify(button, progress, result) {
  replace(result, h('p', { class: 'hint' }, 'verifying…'));
  progress.value = 0;
  button.disabled = true;  // one scan at a time: a second click would be a 409
  try {
    const res = await api.request('/v1/verify');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    let ended = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!result.isConnected) return reader.cancel();
      buffered += value;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if ('ok' in line) {
          ended = true;
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
    if (!ended) replace(result, h('p', { class: 'error' }, 'The answer ended before the verification did.'));
  } catch (e) {
    replace(result, h('p', { class: 'error' }, e.message));
  } finally {
    button.disabled = false;
  }
}

export async function renderAudit(view) {
  const head = await api.getJson('/v1/head');
  const progress = h('progress', { id: 'verify-progress', max: 1, value: 0 });
  const result = h('div', { id: 'verify-result' });
  const button = h('button', { id: 'verify', type: 'button' }, 'Verify chain');
  button.onclick = () => verify(button, progress, result);
  replace(view, h('h2', {}, 'Audit'),
    h('section', { class: 'card' }, h('h3', {}, 'Head'), h('dl', { id: 'head' },
      h('dt', {}, 'seq'), h('dd', { id: 'head-seq' }, head.seq),
      h('dt', {}, 'time'), h('dd', {}, head.time_us ? formatTime(head.time_us) : '—'),
      h('dt', {}, 'hash'), h('dd', {}, h('code', { id: 'head-hash' }, head.hash)))),
    h('section', { class: 'card' }, h('h3', {}, 'Chain verification'),
      h('p', { class: 'hint' }, 'Dense seqs, every hash and link, every event\'s schema, from seq 1 to the head. Admin only.'),
      button, ' ', progress, result));
}
