// The image list and the image page: grants by source, recipient counts,
// instances launched from the image, and a time slider over the image's
// history that re-renders all of it as of the chosen seq (as_of_seq).
import * as api from './api.js';
import { h, replace, formatTime, actorOf } from './dom.js';

const kShareLimit = 50;  // account-id recipients per image (SPEC §1.3 rule 7)

export async function renderImages(view) {
  const events = await api.getNdjson('/v1/events', { after_seq: 0, limit: 10000 });
  const images = new Map();
  for (const e of events) {
    if (e.type === 'ImageCreated') images.set(e.data.image_id, { ...e.data, created: e.seq });
    const img = e.data && images.get(e.data.image_id);
    if (!img) continue;
    if (e.type === 'ImageBecameAvailable') img.status = 'Available';
    if (e.type === 'ImageDeleted') img.status = 'Deleted';
  }
  const open = h('form', { class: 'inline', onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/image/${ev.target.elements.id.value.trim()}`;
  } }, h('label', {}, 'Image id ', h('input', { name: 'id', placeholder: 'm-…', spellcheck: 'false' })),
  h('button', { type: 'submit' }, 'Open'));
  const rows = [...images.values()].reverse().map((i) => h('tr', {},
    h('td', {}, h('a', { href: `#/image/${i.image_id}` }, i.image_id)), h('td', {}, i.name), h('td', {}, i.owner),
    h('td', {}, i.region), h('td', {}, i.status), h('td', { class: 'num' }, i.created)));
  replace(view, h('h2', {}, 'Images'), open,
    rows.length ? h('table', { id: 'images' }, h('thead', {}, h('tr', {}, ['image', 'name', 'owner', 'region', 'status',
      'created at seq'].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
      : h('p', { class: 'hint' }, 'No custom images yet.'));
}

// Where each directory member sits as of `seq`, from its own history (admin
// only: accounts cannot read other accounts' histories). Cached per (account, seq).
const folderCache = new Map();
async function folderOf(account, seq) {
  if (!api.isAdmin()) return null;
  const key = `${account}@${seq}`;
  if (!folderCache.has(key)) {
    folderCache.set(key, api.getJson(`/v1/accounts/${account}/history`, { as_of_seq: seq }).then((r) => {
      let folder = null;
      for (const e of r.events) {
        if (e.data?.account_id !== account) continue;
        if (e.type === 'AccountJoinedDirectory' || e.type === 'AccountMoved') folder = e.data.folder_id;
        if (e.type === 'AccountLeftDirectory') folder = null;
      }
      return folder;
    }).catch(() => null));
  }
  return folderCache.get(key);
}

// Targets of each resource share that names the image, as of `seq`.
function shareTargets(events, seq) {
  const targets = new Map();
  for (const e of events) {
    if (e.seq > seq) break;
    const d = e.data || {};
    if (e.type === 'ResourceShareAssociated') {
      const set = targets.get(d.share_id) || new Set();
      for (const t of d.targets || []) set.add(t);
      targets.set(d.share_id, set);
    } else if (e.type === 'ResourceShareDisassociated') {
      for (const t of d.targets || []) targets.get(d.share_id)?.delete(t);
    }
  }
  return targets;
}

// Instances launched from (or switched to) the image up to `seq`.
function instanceIds(events, imageId, seq) {
  const ids = new Set();
  for (const e of events) {
    if (e.seq > seq) break;
    if ((e.type === 'InstanceCreated' || e.type === 'SystemDiskReplaced') && e.data.image_id === imageId) {
      ids.add(e.data.instance_id);
    }
  }
  return [...ids];
}

async function grantsSection(imageId, seq, events) {
  const perms = await api.getJson(`/v1/images/${imageId}/permissions`, { as_of_seq: seq });
  const byAccount = perms.grants.filter((g) => g.source === 'account');
  const shares = new Map();
  for (const g of perms.grants.filter((x) => x.source.startsWith('resource-share:'))) {
    const id = g.source.slice('resource-share:'.length);
    if (!shares.has(id)) shares.set(id, []);
    shares.get(id).push(g);
  }
  const grantRow = (g) => h('li', { class: 'grant', dataset: { account: g.account_id } },
    h('code', {}, g.account_id), h('span', { class: 'since' }, ` since seq ${g.since_seq}`));
  const targets = shareTargets(events, seq);
  const shareBlocks = await Promise.all([...shares.entries()].map(async ([shareId, grants]) => {
    const folders = new Map();
    for (const g of grants) {
      const folder = (await folderOf(g.account_id, seq)) || (api.isAdmin() ? 'no folder' : 'folder (admin only)');
      if (!folders.has(folder)) folders.set(folder, []);
      folders.get(folder).push(g);
    }
    return h('li', { class: 'share' }, h('strong', {}, shareId),
      h('span', { class: 'hint' }, ` targets: ${[...(targets.get(shareId) || [])].join(', ') || '—'}`),
      h('ul', {}, [...folders.entries()].map(([folder, gs]) =>
        h('li', { class: 'folder' }, h('code', {}, folder), h('ul', {}, gs.map(grantRow))))));
  }));
  return h('section', { id: 'grants', class: 'card' }, h('h3', {}, 'Grants by source'),
    h('h4', {}, 'Public'), h('p', { id: 'public' }, perms.public ? `yes, since seq ${perms.public.since_seq}` : 'no'),
    h('h4', {}, `Account (${byAccount.length})`),
    byAccount.length ? h('ul', { id: 'account-grants' }, byAccount.map(grantRow)) : h('p', { class: 'hint' }, 'none'),
    h('h4', {}, `Resource shares (${shares.size})`),
    shares.size ? h('ul', { id: 'share-grants' }, shareBlocks) : h('p', { class: 'hint' }, 'none'));
}

async function recipientsSection(imageId, seq) {
  const r = await api.getJson(`/v1/images/${imageId}/recipients`, { as_of_seq: seq });
  const direct = r.direct || 0;
  return h('section', { id: 'recipients', class: 'card' }, h('h3', {}, 'Recipients'),
    h('p', {}, h('meter', { min: 0, max: kShareLimit, high: kShareLimit * 0.8, value: direct }),
      ` ${direct} / ${r.limit || kShareLimit} account-id recipients`),
    h('dl', {}, h('dt', {}, 'via directory'), h('dd', {}, r.via_directory || 0),
      h('dt', {}, 'public'), h('dd', {}, r.public ? 'yes' : 'no'),
      h('dt', {}, 'effective'), h('dd', {}, r.effective || 0)));
}

async function instancesSection(imageId, seq, events) {
  const rows = await Promise.all(instanceIds(events, imageId, seq).map((id) =>
    api.getJson(`/v1/instances/${id}`, { as_of_seq: seq }).catch(() => ({ instance_id: id, deleted: true }))));
  return h('section', { id: 'instances', class: 'card' }, h('h3', {}, `Instances launched from it (${rows.length})`),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, ['instance', 'owner', 'current image', 'reinit'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.map((i) => h('tr', { dataset: { instance: i.instance_id } },
        h('td', {}, h('code', {}, i.instance_id)), h('td', {}, i.owner || ''),
        h('td', {}, i.deleted ? 'deleted' : i.image_id === imageId ? 'this image' : i.image_id),
        h('td', { class: i.reinit_blocked ? 'bad' : 'good' },
          i.deleted ? '—' : i.reinit_blocked ? `blocked (${i.reason}, since seq ${i.since_seq})` : 'ok')))))
      : h('p', { class: 'hint' }, 'none'));
}

function eventsSection(events, seq, pick) {
  return h('section', { id: 'events', class: 'card wide' }, h('h3', {}, 'History'),
    h('table', {}, h('thead', {}, h('tr', {}, ['seq', 'time', 'type', 'actor'].map((t) => h('th', {}, t)))),
      h('tbody', {}, events.map((e) => h('tr', {
        class: [e.seq === seq ? 'current' : '', e.seq > seq ? 'future' : ''].join(' ').trim() || null,
        dataset: { seq: e.seq }, onclick: () => pick(e.seq),
      }, h('td', { class: 'num' }, e.seq), h('td', {}, formatTime(e.time)), h('td', {}, e.type),
      h('td', {}, h('code', {}, actorOf(e))))))));
}

function impactSection(imageId, accountGrants) {
  const out = h('div', { id: 'impact-result' });
  const form = h('form', { id: 'impact', class: 'inline', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    replace(out, h('p', { class: 'hint' }, 'computing…'));
    try {
      const r = await api.getJson(`/v1/images/${imageId}/impact`, { action: f.action.value, accounts: f.accounts.value.replace(/\s+/g, '') });
      replace(out,
        h('p', {}, `${r.action} at seq ${r.seq}: `, h('strong', {}, `${r.instances.length} instance(s)`),
          ' would lose the ability to re-initialise; ', h('strong', {}, `${r.accounts_losing_access.length} account(s)`), ' would lose access.'),
        r.instances.length ? h('h4', {}, 'Instances that could no longer re-initialise') : null,
        r.instances.length ? h('ul', { class: 'blocked' }, r.instances.map((i) =>
          h('li', {}, h('code', {}, i.instance_id), ` (owner ${i.owner}) → ${i.reason}`))) : null,
        r.accounts_losing_access.length ? h('h4', {}, 'Accounts losing access') : null,
        r.accounts_losing_access.length ? h('ul', { class: 'losing' }, r.accounts_losing_access.map((a) =>
          h('li', {}, h('code', {}, a)))) : null);
    } catch (e) {
      replace(out, h('p', { class: 'error' }, e.message));
    }
  } },
  h('label', {}, 'Action ', h('select', { name: 'action' }, h('option', { value: 'unshare' }, 'unshare'), h('option', { value: 'delete' }, 'delete'))),
  h('label', {}, 'Accounts ', h('input', { name: 'accounts', size: 40, value: accountGrants.join(','), spellcheck: 'false' })),
  h('button', { type: 'submit' }, 'Preview impact'));
  return h('section', { class: 'card wide' }, h('h3', {}, 'Impact preview (dry run, as of now)'),
    h('p', { class: 'hint' }, 'What an unshare from these accounts, or a delete, would do now. Nothing is changed.'), form, out);
}

export async function renderImage(view, imageId, wantedSeq) {
  const { events } = await api.getJson(`/v1/images/${imageId}/history`);
  if (!events.length) throw new Error(`No history for ${imageId}.`);
  const seqs = events.map((e) => e.seq);
  let index = wantedSeq ? seqs.findLastIndex((s) => s <= wantedSeq) : seqs.length - 1;
  if (index < 0) index = 0;
  const created = events.find((e) => e.type === 'ImageCreated')?.data || {};
  const slider = h('input', { id: 'slider', type: 'range', min: 0, max: seqs.length - 1, value: index, step: 1 });
  const label = h('output', { id: 'as-of', for: 'slider' });
  const body = h('div', { class: 'grid', id: 'image-body' });
  const current = await api.getJson(`/v1/images/${imageId}/permissions`).catch(() => ({ grants: [] }));
  const accountGrants = current.grants.filter((g) => g.source === 'account').map((g) => g.account_id);
  replace(view, h('h2', {}, 'Image ', h('code', {}, imageId), ` ${created.name ? `“${created.name}”` : ''}`),
    h('p', { class: 'hint' }, `owner ${created.owner || '?'} · region ${created.region || '?'}`),
    h('div', { class: 'slider card wide' }, h('label', { for: 'slider' }, 'As of '), slider, label),
    body, impactSection(imageId, accountGrants));

  let generation = 0;
  async function renderAt(i) {
    const mine = ++generation;
    const seq = seqs[i];
    const e = events[i];
    label.value = `seq ${seq} · ${formatTime(e.time)} · ${e.type}${i === seqs.length - 1 ? ' (latest)' : ''}`;
    history.replaceState(null, '', `#/image/${imageId}/${seq}`);
    body.setAttribute('aria-busy', 'true');
    let parts;
    try {
      parts = await Promise.all([grantsSection(imageId, seq, events), recipientsSection(imageId, seq),
        instancesSection(imageId, seq, events)]);
    } catch (err) {
      parts = [h('p', { class: 'error card wide' }, err.code === 'InvalidImageId.NotFound'
        ? `The image does not exist as of seq ${seq} (deleted).` : err.message)];
    }
    if (mine !== generation) return;  // the slider moved on meanwhile
    replace(body, parts, eventsSection(events, seq, (s) => { slider.value = seqs.indexOf(s); renderAt(seqs.indexOf(s)); }));
    body.dataset.seq = seq;
    body.removeAttribute('aria-busy');
  }
  slider.addEventListener('input', () => renderAt(Number(slider.value)));
  await renderAt(index);
}
