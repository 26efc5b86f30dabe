// Tenant isolation (SPEC §1.4 "answer exactly like ids that do not exist",
// §3.2 scoping): account C must learn nothing about A's private image, its
// shares, instances, disks or history through any read route, ECS (official
// SDK, both signing modes) or native (ACS3 signed with C's key); every
// "not yours" answer equals the answer for a non-existent id of the same shape.
// B, the recipient, sees only its own grant.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('assert/strict');
const h = require('./harness');

const { REGION, OTHER_REGION, expectError } = h;
const T = { timeout: 30000 };

const fakeImage = () => 'm-' + h.randomAlnum(20);
const fakeInstance = () => 'i-' + h.randomAlnum(20);
const fakeDisk = () => 'd-' + h.randomAlnum(20);

// Status, header names and body of an error answer, with the id replaced: the
// answer for a hidden object must equal the answer for a missing one.
function shape(res, id) {
  const headers = Object.keys(res.headers)
    .filter((k) => !['date', 'content-length'].includes(k))
    .sort();
  let body = res.json;
  if (body && typeof body === 'object') {
    body = Object.assign({}, body);
    for (const k of ['request_id', 'RequestId']) if (k in body) body[k] = '<rid>';
    body = JSON.parse(JSON.stringify(body).split(id).join('<id>'));
  } else {
    body = res.text.split(id).join('<id>');
  }
  return { status: res.status, headers, body };
}

// An SDK error, normalised the same way.
function errorShape(e, id) {
  if (!e || !e.data) return { unexpected: String(e) };
  const body = Object.assign({}, e.data, { RequestId: '<rid>' });
  return { status: e.statusCode, body: JSON.parse(JSON.stringify(body).split(id).join('<id>')) };
}
async function caught(promise) {
  try {
    const value = await promise;
    return { succeeded: value };
  } catch (e) {
    return e;
  }
}

describe('isolation between accounts', { timeout: 90000 }, () => {
  let server;
  let A, B, C, D;          // A owner; B and D recipients (one call); C outsider
  let systemImage, X, ownerInstance, ownerDisk, xInstance, xDisk, bInstance, bDisk;
  let cleanStreamHead;

  before(async () => {
    server = await h.startServer();
    [A, B, C, D] = await server.createAccounts(4, 'cn');
    const a = h.ecs(server, A, 'acs3');
    const b = h.ecs(server, B, 'acs3');
    systemImage = (await a.describeImages({ regionId: REGION, imageOwnerAlias: 'system' })).images.image[0].imageId;
    ownerInstance = (await a.runInstances({ regionId: REGION, imageId: systemImage, amount: 1 })).instanceIdSets.instanceIdSet[0];
    ownerDisk = (await a.describeDisks({ regionId: REGION, instanceId: ownerInstance, diskType: 'system' })).disks.disk[0].diskId;
    X = (await a.createImage({ regionId: REGION, instanceId: ownerInstance, imageName: 'private' })).imageId;
    xInstance = (await a.runInstances({ regionId: REGION, imageId: X, amount: 1 })).instanceIdSets.instanceIdSet[0];
    xDisk = (await a.describeDisks({ regionId: REGION, instanceId: xInstance, diskType: 'system' })).disks.disk[0].diskId;
    await a.modifyImageSharePermission({ regionId: REGION, imageId: X, addAccount: [B.id, D.id] });
    bInstance = (await b.runInstances({ regionId: REGION, imageId: X, amount: 1 })).instanceIdSets.instanceIdSet[0];
    bDisk = (await b.describeDisks({ regionId: REGION, instanceId: bInstance, diskType: 'system' })).disks.disk[0].diskId;
    // A does something to its own history that C never took part in.
    await a.reInitDisk({ diskId: xDisk });
    const head = await server.admin('GET', '/v1/head');
    cleanStreamHead = head.json.seq;
  });
  after(async () => {
    if (server) assert.equal((await server.stop()).forced, false, 'server did not stop on SIGTERM');
  });

  test('sanity: the owner and the admin do see everything C must not', T, async () => {
    for (const route of ['permissions', 'recipients', 'launchers', 'history']) {
      const mine = await h.native(server, A, 'GET', `/v1/images/${X}/${route}`);
      assert.equal(mine.status, 200, `${route}: ${mine.text}`);
    }
    const impact = await h.native(server, A, 'GET', `/v1/images/${X}/impact`, { action: 'delete' });
    assert.equal(impact.status, 200, impact.text);
    assert.ok(impact.json.instances.some((i) => i.instance_id === bInstance));
    const inst = await h.native(server, A, 'GET', `/v1/instances/${xInstance}`);
    assert.equal(inst.status, 200, inst.text);
    const admin = await server.admin('GET', `/v1/images/${X}/permissions`);
    assert.equal(admin.status, 200);
    assert.deepEqual(admin.json.grants.map((g) => g.account_id).sort(), [B.id, D.id].sort());
  });

  for (const mode of h.MODES) {
    test(`ECS reads through the SDK (${mode}): C sees nothing of A`, T, async () => {
      const c = h.ecs(server, C, mode);
      for (const alias of [undefined, 'self', 'others', 'system', 'marketplace']) {
        for (const region of [REGION, OTHER_REGION]) {
          const body = await c.describeImages({ regionId: region, imageOwnerAlias: alias, pageSize: 100 });
          assert.ok(!body.images.image.some((i) => i.imageId === X), `alias ${alias}: C sees X`);
        }
      }
      const byId = await c.raw('DescribeImages', { RegionId: REGION, ImageId: X, Status: 'Available,Creating,Deleted' });
      assert.deepEqual(byId.body.Images, { Image: [] });
      assert.equal(byId.body.TotalCount, 0);

      // DescribeImageSharePermission: identical to a missing image.
      const missing = fakeImage();
      const hidden = await caught(c.describeImageSharePermission({ regionId: REGION, imageId: X }));
      const absent = await caught(c.describeImageSharePermission({ regionId: REGION, imageId: missing }));
      assert.equal(hidden.code, 'InvalidImageId.NotFound');
      assert.deepEqual(errorShape(hidden, X), errorShape(absent, missing));

      // Instances and disks.
      const all = await c.describeInstances({ regionId: REGION, pageSize: 100 });
      assert.deepEqual(all.instances.instance, []);
      const named = await c.raw('DescribeInstances', { RegionId: REGION, InstanceIds: JSON.stringify([xInstance, bInstance]) });
      assert.deepEqual(named.body.Instances, { Instance: [] });
      for (const q of [{ InstanceId: xInstance }, { DiskIds: JSON.stringify([xDisk, bDisk]) }, { InstanceId: bInstance, DiskType: 'system' }]) {
        const disks = await c.raw('DescribeDisks', Object.assign({ RegionId: REGION }, q));
        assert.deepEqual(disks.body.Disks, { Disk: [] }, JSON.stringify(q));
      }
      // Write routes naming A's objects fail exactly like missing ids (and change nothing).
      const pairs = [
        [(id) => c.reInitDisk({ diskId: id }), xDisk, fakeDisk()],
        [(id) => c.deleteInstance({ instanceId: id }), xInstance, fakeInstance()],
        [(id) => c.deleteInstance({ instanceId: id, force: true }), bInstance, fakeInstance()],
        [(id) => c.replaceSystemDisk({ instanceId: id, imageId: systemImage }), xInstance, fakeInstance()],
        [(id) => c.createImage({ regionId: REGION, instanceId: id }), xInstance, fakeInstance()],
        [(id) => c.deleteImage({ regionId: REGION, imageId: id, force: true }), X, fakeImage()],
        [(id) => c.modifyImageSharePermission({ regionId: REGION, imageId: id, addAccount: [C.id] }), X, fakeImage()],
        [(id) => c.runInstances({ regionId: REGION, imageId: id, amount: 1 }), X, fakeImage()],
        [(id) => c.replaceSystemDisk({ instanceId: bInstance, imageId: id }), X, fakeImage()],
        [(id) => c.copyImage({ regionId: REGION, imageId: id, destinationRegionId: REGION }), X, fakeImage()],
      ];
      for (const [call, id, fake] of pairs) {
        const r = await caught(call(id));
        assert.ok(r instanceof Error, `C's call on ${id} succeeded: ${JSON.stringify(r.succeeded)}`);
        const f = await caught(call(fake));
        assert.equal(r.statusCode, 404, `${id}: ${r.message}`);
        assert.deepEqual(errorShape(r, id), errorShape(f, fake), `answer for A's ${id} differs from a missing id`);
      }
      // And A's instance is intact.
      const st = await h.native(server, A, 'GET', `/v1/instances/${xInstance}`);
      assert.equal(st.status, 200, st.text);
    });
  }

  test('native reads signed by C: each hidden id answers like a missing one', T, async () => {
    // Every read route, now and under each as-of variant (SPEC §2.3).
    const variants = [{}, { as_of_seq: cleanStreamHead }, { as_of_time: new Date().toISOString() }];
    const cases = [];
    const add = (realPath, query, id, fakePath, makeFake) => {
      for (const v of variants) cases.push([realPath, Object.assign({}, query, v), id, fakePath, makeFake]);
    };
    for (const route of ['permissions', 'recipients', 'launchers', 'history']) {
      add(`/v1/images/${X}/${route}`, {}, X, (f) => `/v1/images/${f}/${route}`, fakeImage);
    }
    for (const action of ['delete', 'unshare']) {
      add(`/v1/images/${X}/impact`, { action, accounts: B.id }, X, (f) => `/v1/images/${f}/impact`, fakeImage);
    }
    for (const inst of [xInstance, ownerInstance, bInstance]) {
      add(`/v1/instances/${inst}`, {}, inst, (f) => `/v1/instances/${f}`, fakeInstance);
      add(`/v1/instances/${inst}/history`, {}, inst, (f) => `/v1/instances/${f}/history`, fakeInstance);
    }
    for (const acct of [A, B, D]) {
      add(`/v1/accounts/${acct.id}/history`, {}, acct.id, (f) => `/v1/accounts/${f}/history`, h.unknownAccountId);
    }
    for (const [realPath, query, id, fakePath, makeFake] of cases) {
      const real = await h.native(server, C, 'GET', realPath, query);
      const fake = makeFake();
      const other = await h.native(server, C, 'GET', fakePath(fake), query);
      assert.ok(real.status >= 400, `${realPath}: C got ${real.status} ${real.text}`);
      assert.equal(real.status, 404, `${realPath}: ${real.text}`);
      assert.deepEqual(shape(real, id), shape(other, fake), `${realPath} answers differently from a missing id`);
      const scrubbed = real.text.split(id).join('');  // the id C asked about may be echoed
      for (const other of [A.id, B.id, D.id, X, xInstance, bInstance, ownerInstance]) {
        assert.ok(!scrubbed.includes(other), `${realPath} leaks ${other}`);
      }
    }

    // /v1/check about A (or B): like asking about an account that does not exist.
    for (const acct of [A, B, D]) {
      const real = await h.native(server, C, 'GET', '/v1/check', { account: acct.id, image: X });
      const fake = h.unknownAccountId();
      const other = await h.native(server, C, 'GET', '/v1/check', { account: fake, image: X });
      assert.ok(real.status >= 400, `/v1/check account=${acct.id}: ${real.status} ${real.text}`);
      assert.deepEqual(shape(real, acct.id), shape(other, fake));
    }
    // ...and about itself: allowed false, no sources, same as a missing image.
    const self = await h.native(server, C, 'GET', '/v1/check', { image: X });
    const missing = fakeImage();
    const selfMissing = await h.native(server, C, 'GET', '/v1/check', { image: missing });
    assert.equal(self.status, 200, self.text);
    assert.equal(self.json.allowed, false);
    assert.deepEqual(self.json.sources, []);
    assert.deepEqual(shape(self, X), shape(selfMissing, missing));
  });

  test("C's event stream holds only C's own events", T, async () => {
    const stream = await h.native(server, C, 'GET', '/v1/events', { after_seq: 0, limit: 10000 });
    assert.equal(stream.status, 200, stream.text);
    const events = stream.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(events.length >= 1, 'C sees at least its own registration');
    for (const e of events) {
      const raw = JSON.stringify(e);
      for (const secret of [A.id, B.id, D.id, X, ownerInstance, xInstance, bInstance, ownerDisk, xDisk, bDisk, A.keyId, B.keyId, D.keyId]) {
        assert.ok(!raw.includes(secret), `C's stream has event seq ${e.seq} (${e.type}) mentioning ${secret}`);
      }
    }
    // An as-of read of the stream is scoped the same way.
    const asOf = await h.native(server, C, 'GET', '/v1/events', { after_seq: 0, as_of_seq: cleanStreamHead });
    assert.equal(asOf.status, 200);
    for (const line of asOf.text.split('\n').filter(Boolean)) {
      assert.ok(!line.includes(X) && !line.includes(A.id), `as-of stream leaks: ${line.slice(0, 200)}`);
    }
  });

  test('B sees only its own grant, its own instance, and no other account', T, async () => {
    const perms = await h.native(server, B, 'GET', `/v1/images/${X}/permissions`);
    assert.equal(perms.status, 200, perms.text);
    assert.ok(perms.json.grants.length >= 1);
    for (const g of perms.json.grants) assert.equal(g.account_id, B.id);
    assert.deepEqual(perms.json.grants.map((g) => g.source), ['account']);
    const check = await h.native(server, B, 'GET', '/v1/check', { image: X });
    assert.equal(check.status, 200);
    assert.equal(check.json.allowed, true);
    assert.deepEqual(check.json.sources, ['account']);
    // Owner-only routes: like a missing image.
    for (const route of ['recipients', 'launchers', 'history']) {
      const real = await h.native(server, B, 'GET', `/v1/images/${X}/${route}`);
      const fake = fakeImage();
      const other = await h.native(server, B, 'GET', `/v1/images/${fake}/${route}`);
      assert.equal(real.status, 404, `${route}: ${real.text}`);
      assert.deepEqual(shape(real, X), shape(other, fake));
    }
    const impact = await h.native(server, B, 'GET', `/v1/images/${X}/impact`, { action: 'delete' });
    assert.equal(impact.status, 404);
    // A's instances are not B's business, even those running B's shared image.
    for (const inst of [xInstance, ownerInstance]) {
      const real = await h.native(server, B, 'GET', `/v1/instances/${inst}`);
      assert.equal(real.status, 404, real.text);
    }
    const own = await h.native(server, B, 'GET', `/v1/instances/${bInstance}`);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json.image_id, X);
    const history = await h.native(server, B, 'GET', `/v1/accounts/${A.id}/history`);
    assert.equal(history.status, 404);
    // ECS: B cannot read A's share list; its DescribeImages shows X under others.
    const b = h.ecs(server, B, 'acs3');
    await expectError(b.describeImageSharePermission({ regionId: REGION, imageId: X }), 404, 'InvalidImageId.NotFound');
    const others = await b.describeImages({ regionId: REGION, imageOwnerAlias: 'others' });
    assert.deepEqual(others.images.image.map((i) => i.imageId), [X]);
    const instances = await b.describeInstances({ regionId: REGION });
    assert.deepEqual(instances.instances.instance.map((i) => i.instanceId), [bInstance]);
    // B's stream: its grant and its instance, never A's instances or A's keys.
    const stream = await h.native(server, B, 'GET', '/v1/events', { after_seq: 0 });
    const events = stream.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.type === 'ImageShared' && e.data.image_id === X), 'B sees the grant to it');
    for (const e of events) {
      const raw = JSON.stringify(e);
      for (const secret of [ownerInstance, xInstance, ownerDisk, xDisk]) {
        assert.ok(!raw.includes(secret), `B's stream has seq ${e.seq} (${e.type}) mentioning ${secret}`);
      }
    }
  });
  // A recipient receives grant events redacted: no other recipient, no foreign
  // AccessKeyId (projections/queries.cc envelope_for).
  test('B learns no other recipient and no foreign AccessKeyId from its stream or history',
    T, async () => {
      const stream = await h.native(server, B, 'GET', '/v1/events', { after_seq: 0 });
      const history = await h.native(server, B, 'GET', `/v1/accounts/${B.id}/history`);
      assert.equal(stream.status, 200);
      assert.equal(history.status, 200, history.text);
      for (const [name, text] of [['/v1/events', stream.text], ['account history', history.text]]) {
        assert.ok(!text.includes(D.id), `${name} of B names the other recipient D`);
        assert.ok(!text.includes(A.keyId), `${name} of B contains A's AccessKeyId`);
      }
    });
});
