#!/usr/bin/env node
// Crash harness: real ECS traffic through the official SDK, SIGKILL at random
// moments, restart, and check that every acknowledged write survived.
//
//   node tests/crash/crash_harness.js [--cycles 25] [--seed N] [--workers 8] [--json]
//
// Each cycle starts `shareledger serve` on the same data directory, drives
// concurrent share / unshare / run / replace / reinit / delete / create-image
// traffic from several accounts, kills the server with SIGKILL after a random
// delay, restarts it, and checks:
//   - every acknowledged write (its x-shareledger-seq) is in the log at that seq
//     with the same request id and a matching event type (lost must be 0);
//   - every request's events are one contiguous run of seqs and a RunInstances
//     request has exactly Amount InstanceCreated events (nothing half-applied);
//   - shareledger-audit verify and replay pass (read-only, beside the live server).
// Bounded: each cycle's traffic lasts at most --max-ms; the whole run prints a
// report and exits non-zero on any lost write or audit failure.
'use strict';

const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const h = require('../sdk/harness.js');

function flag(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : fallback;
}
const CYCLES = flag('cycles', 25);
const SEED = flag('seed', Date.now() % 1000000);
const WORKERS = flag('workers', 8);
const MIN_MS = flag('min-ms', 150);
const MAX_MS = flag('max-ms', 900);
const JSON_OUT = process.argv.includes('--json');
const AUDIT = process.env.SHARELEDGER_AUDIT_BIN || path.join(path.dirname(h.BIN), 'shareledger-audit');

// Deterministic choices from the printed seed (mulberry32).
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(rand() * list.length)];

async function start(dir, token) {
  const child = spawn(h.BIN, ['serve', '--data', dir, '--listen', '127.0.0.1:0', '--admin-token', token],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr.on('data', (c) => { err = (err + c).slice(-4000); });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start: ' + err)), 30000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${err}`)); });
  });
  return { child, port, endpoint: `127.0.0.1:${port}`, adminToken: token };
}

async function admin(server, method, target, body) {
  const res = await h.httpRequest(server.port, method, target,
    { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body ? JSON.stringify(body) : undefined);
  return { status: res.status, headers: res.headers, body: res.text };
}

// Every event in the log, by seq (admin NDJSON pages).
async function allEvents(server) {
  const events = new Map();
  let after = 0;
  for (;;) {
    const page = await admin(server, 'GET', `/v1/events?after_seq=${after}&limit=10000`);
    const lines = page.body.split('\n').filter(Boolean);
    if (!lines.length) return events;
    for (const line of lines) {
      const e = JSON.parse(line);
      events.set(e.seq, e);
      after = e.seq;
    }
  }
}

const EXPECTED_TYPE = {
  ModifyImageSharePermission: ['ImageShared', 'ImageUnshared', 'ImagePublicityChanged'],
  RunInstances: ['InstanceCreated'],
  DeleteInstance: ['InstanceDeleted'],
  ReInitDisk: ['SystemDiskReinitialized'],
  ReplaceSystemDisk: ['SystemDiskReplaced'],
  CreateImage: ['ImageCreated'],
  DeleteImage: ['ImageDeleted'],
};

// One worker: random ECS calls as random accounts until `stop` is set.
async function worker(server, world, acked, stop) {
  while (!stop.now) {
    const who = pick(world.accounts);
    const c = h.ecs(server, who, rand() < 0.5 ? 'acs3' : 'v1');
    const roll = rand();
    let action, query;
    if (roll < 0.35 && who.images.length) {
      const image = pick(who.images);
      const others = world.accounts.filter((a) => a !== who && a.site === who.site);
      query = { RegionId: h.REGION, ImageId: image };
      const adds = others.filter(() => rand() < 0.3).slice(0, 3);
      const removes = others.filter((a) => !adds.includes(a) && rand() < 0.3).slice(0, 3);
      adds.forEach((a, i) => { query[`AddAccount.${i + 1}`] = a.id; });
      removes.forEach((a, i) => { query[`RemoveAccount.${i + 1}`] = a.id; });
      action = 'ModifyImageSharePermission';
    } else if (roll < 0.55) {
      const usable = [world.systemImage, ...world.accounts.flatMap((a) => a.images)];
      query = { RegionId: h.REGION, ImageId: pick(usable), Amount: String(1 + Math.floor(rand() * 3)) };
      action = 'RunInstances';
    } else if (roll < 0.65 && who.instances.length) {
      query = { InstanceId: pick(who.instances).id };
      action = 'DeleteInstance';
    } else if (roll < 0.8 && who.instances.length) {
      query = { DiskId: pick(who.instances).disk || 'd-unknown' };
      action = 'ReInitDisk';
    } else if (roll < 0.88 && who.instances.length) {
      query = { InstanceId: pick(who.instances).id, ImageId: world.systemImage };
      action = 'ReplaceSystemDisk';
    } else if (roll < 0.95 && who.instances.length && who.images.length < 4) {
      query = { RegionId: h.REGION, InstanceId: pick(who.instances).id };
      action = 'CreateImage';
    } else if (who.images.length > 1) {
      query = { RegionId: h.REGION, ImageId: pick(who.images), Force: 'true' };
      action = 'DeleteImage';
    } else {
      continue;
    }
    let res;
    try {
      res = await c.raw(action, query);
    } catch (e) {
      if (e.statusCode && e.statusCode < 500) continue;  // a rejected request appends nothing
      if (stop.now || e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED' || /socket|ECONN|EPIPE/i.test(String(e))) return;
      continue;
    }
    const seq = Number(res.headers['x-shareledger-seq']);
    if (Number(res.headers['x-shareledger-appended']) > 0) {  // a no-op answers with the head seq
      acked.push({ seq, requestId: res.body.RequestId, action, amount: Number(query.Amount || 1) });
    }
    if (action === 'RunInstances') {
      for (const id of res.body.InstanceIdSets.InstanceIdSet) who.instances.push({ id });
    } else if (action === 'CreateImage') {
      who.images.push(res.body.ImageId);
    } else if (action === 'DeleteInstance') {
      who.instances = who.instances.filter((i) => i.id !== query.InstanceId);
    } else if (action === 'DeleteImage') {
      who.images = who.images.filter((i) => i !== query.ImageId);
    }
  }
}

// Learns the system disks of every account's instances (for ReInitDisk).
async function refreshDisks(server, world) {
  for (const who of world.accounts) {
    const c = h.ecs(server, who, 'acs3');
    const disks = await c.describeDisks({ regionId: h.REGION, diskType: 'system', pageSize: 100 });
    const byInstance = new Map(disks.disks.disk.map((d) => [d.instanceId, d.diskId]));
    who.instances = who.instances.filter((i) => byInstance.has(i.id));
    for (const i of who.instances) i.disk = byInstance.get(i.id);
  }
}

function audit(dir, command) {
  try {
    return JSON.parse(execFileSync(AUDIT, [command, '--db', dir, '--json'], { encoding: 'utf8', timeout: 120000 }));
  } catch (e) {
    return { ok: false, error: String(e.stdout || e.message).slice(0, 2000) };
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shareledger-crash-'));
  const token = crypto.randomBytes(16).toString('hex');
  const acked = [];
  const report = { seed: SEED, cycles: 0, acknowledged: 0, lost: 0, half_applied: 0, audit_failures: 0 };
  console.error(`crash harness: seed=${SEED} cycles=${CYCLES} workers=${WORKERS} dir=${dir}`);
  let server = await start(dir, token);
  const world = { accounts: [] };
  try {
    for (let i = 0; i < 6; ++i) {
      const r = JSON.parse((await admin(server, 'POST', '/v1/admin/accounts', { site: i < 5 ? 'cn' : 'intl' })).body);
      world.accounts.push({ id: r.account_id, keyId: r.access_key_id, secret: r.access_key_secret, site: r.site,
        images: [], instances: [] });
    }
    const first = h.ecs(server, world.accounts[0], 'acs3');
    world.systemImage = (await first.describeImages({ regionId: h.REGION, imageOwnerAlias: 'system' })).images.image[0].imageId;

    for (let cycle = 1; cycle <= CYCLES; ++cycle) {
      await refreshDisks(server, world);
      const stop = { now: false };
      const workers = Array.from({ length: WORKERS }, () => worker(server, world, acked, stop));
      await new Promise((r) => setTimeout(r, MIN_MS + rand() * (MAX_MS - MIN_MS)));
      server.child.kill('SIGKILL');
      stop.now = true;
      await Promise.allSettled(workers);
      await new Promise((r) => server.child.exitCode !== null || server.child.signalCode ? r() : server.child.once('exit', r));

      server = await start(dir, token);
      const events = await allEvents(server);
      for (const w of acked) {
        const e = events.get(w.seq);
        if (!e || e.request_id !== w.requestId || !EXPECTED_TYPE[w.action].includes(e.type)) {
          report.lost++;
          console.error(`LOST: ${JSON.stringify(w)} found ${e ? JSON.stringify({ type: e.type, request_id: e.request_id }) : 'nothing'}`);
        }
      }
      // Nothing half-applied: one request's events are contiguous, and RunInstances made all of its instances.
      const byRequest = new Map();
      for (const [seq, e] of events) {
        if (!byRequest.has(e.request_id)) byRequest.set(e.request_id, []);
        byRequest.get(e.request_id).push(seq);
      }
      for (const w of acked.filter((x) => x.action === 'RunInstances')) {
        const seqs = byRequest.get(w.requestId) || [];
        if (seqs.length !== w.amount) { report.half_applied++; console.error(`HALF: ${w.requestId} has ${seqs.length}/${w.amount}`); }
      }
      for (const [id, seqs] of byRequest) {
        if (['catalog', 'demo'].includes(id)) continue;
        const sorted = [...seqs].sort((a, b) => a - b);
        if (sorted[sorted.length - 1] - sorted[0] !== sorted.length - 1) {
          report.half_applied++;
          console.error(`SPLIT: request ${id} at seqs ${sorted.join(',')}`);
        }
      }
      const verify = audit(dir, 'verify');
      const replay = audit(dir, 'replay');
      if (!verify.ok || !replay.ok) {
        report.audit_failures++;
        console.error(`AUDIT: verify=${JSON.stringify(verify).slice(0, 500)} replay=${JSON.stringify(replay).slice(0, 500)}`);
      }
      report.cycles = cycle;
      report.acknowledged = acked.length;
      console.error(`cycle ${cycle}: acknowledged=${acked.length} head=${Math.max(0, ...events.keys())} lost=${report.lost}`);
    }
  } finally {
    server.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON_OUT ? JSON.stringify(report) : `cycles=${report.cycles} acknowledged=${report.acknowledged} lost=${report.lost} half_applied=${report.half_applied} audit_failures=${report.audit_failures} seed=${report.seed}`);
  const ok = report.lost === 0 && report.half_applied === 0 && report.audit_failures === 0 && report.cycles === CYCLES;
  console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(2); });
