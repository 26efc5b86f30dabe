// shareledger-tail against a real server (env SHARELEDGER_BIN, SHARELEDGER_TAIL_BIN):
// it prints every event once, in seq order, from genesis; it resumes after the
// last seq it printed across a server restart; a refused subscription ends it
// with exit 1. Every wait is bounded.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const path = require('path');
const { Server } = require('../console/server.js');

const TAIL = path.resolve(process.env.SHARELEDGER_TAIL_BIN || path.join(__dirname, '../../build/shareledger-tail'));
const REGION = 'cn-hangzhou';
const TAIL_TIMEOUT_MS = 30000;

let server;

// Runs shareledger-tail to exit; resolves {code, events (parsed stdout lines), stderr}.
// `during(child)` may act while it runs.
function tail(args, during = async () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(TAIL, ['--port', String(server.port), '--token', server.token, '--quiet', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`tail timed out:\n${out}\n${err}`)); },
      TAIL_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const events = out.split('\n').filter((l) => l).map((l) => JSON.parse(l));
      resolve({ code, events, stderr: err });
    });
    during(child).catch(reject);
  });
}

// Launches an instance from a system image, images it and shares it: several events.
async function someWrites() {
  const [owner, recipient] = server.accounts.filter((a) => a.site === 'cn');
  const sys = await server.ecs(owner, 'DescribeImages', { RegionId: REGION, ImageOwnerAlias: 'system' });
  const run = await server.ecs(owner, 'RunInstances',
    { RegionId: REGION, ImageId: sys.json.Images.Image[0].ImageId, Amount: 1 });
  const created = await server.ecs(owner, 'CreateImage',
    { RegionId: REGION, ImageName: `tail-${Date.now()}`, InstanceId: run.json.InstanceIdSets.InstanceIdSet[0] });
  const shared = await server.ecs(owner, 'ModifyImageSharePermission',
    { RegionId: REGION, ImageId: created.json.ImageId, 'AddAccount.1': recipient.id });
  return shared.seq;
}

function assertChain(events, firstSeq) {
  events.forEach((e, i) => {
    assert.strictEqual(e.seq, firstSeq + i, `event ${i} has seq ${e.seq}`);
    if (i > 0) assert.strictEqual(e.prev_hash, events[i - 1].hash, `seq ${e.seq} links to the event before`);
  });
}

before(async () => {
  server = new Server();
  await server.start();
});

after(async () => {
  if (server) await server.destroy();
});

test('--help describes the options and exits 0', async () => {
  const help = await new Promise((resolve) => {
    const child = spawn(TAIL, ['--help']);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', (code) => resolve({ code, out }));
  });
  assert.strictEqual(help.code, 0);
  assert.match(help.out, /--after-seq/);
});

test('from genesis it prints every event once, in seq order, chained', async () => {
  const head = await someWrites();
  const run = await tail(['--after-seq', '0', '--max-events', String(head)]);
  assert.strictEqual(run.code, 0, run.stderr);
  assert.strictEqual(run.events.length, head);
  assertChain(run.events, 1);
});

test('it resumes after the last seq it printed across a server restart', async () => {
  const start = (await server.admin('GET', '/v1/head')).json.seq;
  const total = 8;
  let written = start;
  const run = await tail(['--after-seq', String(start), '--max-events', String(total)], async () => {
    written = await someWrites();
    await server.restart();  // the tail is disconnected and reconnects on its own
    while (written < start + total) written = await someWrites();
  });
  assert.strictEqual(run.code, 0, run.stderr);
  assert.match(run.stderr, /disconnected/);
  assert.strictEqual(run.events.length, total);
  assertChain(run.events, start + 1);
});

test('a refused subscription ends it with exit 1 and the server\'s code', async () => {
  const child = spawn(TAIL, ['--port', String(server.port), '--token', 'not-the-token', '--after-seq', '0']);
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`tail kept retrying:\n${err}`)); },
      TAIL_TIMEOUT_MS);
    child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.strictEqual(code, 1, err);
  assert.match(err, /level=error code=\S+/);
});
