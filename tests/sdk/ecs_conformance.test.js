// ECS 2014-05-26 conformance through the UNMODIFIED official Node SDK
// (@alicloud/ecs20140526), once per signing mode: ACS3-HMAC-SHA256 (default)
// and HMAC-SHA1 v1 (signatureAlgorithm 'v2'). SPEC §1.2-§1.5, §3.1.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('assert/strict');
const h = require('./harness');

const { REGION, OTHER_REGION, SHARED_TIME, expectError } = h;
const T = { timeout: 30000 };

// ---- small SDK helpers ----------------------------------------------------------

async function images(c, query) {
  const body = await c.describeImages(Object.assign({ regionId: REGION, pageSize: 100 }, query));
  assert.ok(Array.isArray(body.images.image), 'Images.Image must be an array');
  return body.images.image;
}
async function imageIds(c, query) {
  return (await images(c, query)).map((i) => i.imageId);
}
async function launch(c, imageId, region = REGION) {
  const body = await c.runInstances({ regionId: region, imageId, amount: 1, instanceType: 'ecs.g7.large' });
  const ids = body.instanceIdSets.instanceIdSet;
  assert.ok(Array.isArray(ids) && ids.length === 1, 'InstanceIdSets.InstanceIdSet must be a one-element array');
  assert.match(ids[0], /^i-[a-z0-9]{20}$/);
  return ids[0];
}
async function systemDisk(c, instanceId, region = REGION) {
  const body = await c.describeDisks({ regionId: region, instanceId, diskType: 'system' });
  assert.ok(Array.isArray(body.disks.disk));
  assert.equal(body.disks.disk.length, 1, 'one system disk per instance');
  assert.equal(body.disks.disk[0].instanceId, instanceId);
  assert.match(body.disks.disk[0].diskId, /^d-[a-z0-9]{20}$/);
  return body.disks.disk[0].diskId;
}
async function createImage(c, instanceId, name) {
  const body = await c.createImage({ regionId: REGION, instanceId, imageName: name });
  assert.match(body.imageId, /^m-[a-z0-9]{20}$/);
  return body.imageId;
}
// A fresh custom image of `c`, from an instance of `baseImage`.
async function customImage(c, baseImage, name) {
  return createImage(c, await launch(c, baseImage), name);
}
async function share(c, imageId, add, remove, extra) {
  const body = await c.modifyImageSharePermission(Object.assign(
    { regionId: REGION, imageId, addAccount: add, removeAccount: remove }, extra));
  assert.match(String(body.requestId), /.+/);
  return body;
}
async function permissions(c, imageId, extra) {
  return c.describeImageSharePermission(Object.assign({ regionId: REGION, imageId }, extra));
}

// ---- one full run per signing mode ------------------------------------------------

for (const mode of h.MODES) {
  describe(`ECS via the official SDK, ${mode} signing`, { timeout: 120000 }, () => {
    let server;
    let A, B, C, I;          // accounts: A owner (cn), B and C (cn), I (intl)
    let a, b, c, i;          // their SDK clients
    let systemImage, paidCn, freeCn, paidIntl;

    before(async () => {
      server = await h.startServer();
      [A, B, C] = await server.createAccounts(3, 'cn');
      I = await server.createAccount('intl');
      [a, b, c, i] = [A, B, C, I].map((x) => h.ecs(server, x, mode));
    });
    after(async () => {
      if (!server) return;
      const stopped = await server.stop();
      assert.equal(stopped.forced, false, 'server did not stop on SIGTERM');
    });

    test('catalog: system and marketplace images by ImageOwnerAlias', T, async () => {
      const system = await images(a, { imageOwnerAlias: 'system' });
      assert.ok(system.length >= 1, 'at least one system image');
      for (const x of system) assert.equal(x.imageOwnerAlias, 'system');
      systemImage = system[0].imageId;

      const cnMarket = await images(a, { imageOwnerAlias: 'marketplace' });
      for (const x of cnMarket) assert.equal(x.imageOwnerAlias, 'marketplace');
      const paid = cnMarket.filter((x) => x.productCode);
      const free = cnMarket.filter((x) => !x.productCode);
      assert.ok(paid.length >= 1 && free.length >= 1, 'a free and a paid cn marketplace image');
      paidCn = paid[0];
      freeCn = free[0];

      const intlMarket = await images(i, { imageOwnerAlias: 'marketplace' });
      const intlPaid = intlMarket.filter((x) => x.productCode);
      assert.ok(intlPaid.length >= 1, 'a paid intl marketplace image');
      paidIntl = intlPaid[0];
      const cnIds = new Set(cnMarket.map((x) => x.imageId));
      for (const x of intlMarket) assert.ok(!cnIds.has(x.imageId), 'marketplace images belong to one site');
      // An account cannot launch the other site's marketplace image: it does not exist for it.
      await expectError(launch(i, paidCn.imageId), 404, 'InvalidImageId.NotFound');
      // self and others are empty for a fresh account, and still arrays.
      assert.deepEqual(await imageIds(a, { imageOwnerAlias: 'self' }), []);
      assert.deepEqual(await imageIds(a, { imageOwnerAlias: 'others' }), []);
      const raw = await a.raw('DescribeImages', { RegionId: REGION, ImageOwnerAlias: 'others' });
      assert.deepEqual(raw.body.Images, { Image: [] });
      assert.equal(raw.body.TotalCount, 0);
    });

    test('full story: share, launch, unshare, reinit, re-share, force delete', T, async () => {
      const ownerInstance = await launch(a, systemImage);
      const X = await createImage(a, ownerInstance, `story-${mode}`);
      let self = await images(a, { imageOwnerAlias: 'self' });
      assert.deepEqual(self.map((x) => x.imageId), [X]);
      assert.equal(self[0].imageOwnerAlias, 'self');
      assert.equal(self[0].status, 'Available');
      assert.equal(self[0].isSelfShared, 'False');
      assert.match(self[0].creationTime, SHARED_TIME);

      // Before the share B cannot see or use X.
      assert.ok(!(await imageIds(b)).includes(X));
      await expectError(launch(b, X), 404, 'InvalidImageId.NotFound');

      const shared = await a.raw('ModifyImageSharePermission', { RegionId: REGION, ImageId: X, 'AddAccount.1': B.id });
      assert.deepEqual(Object.keys(shared.body), ['RequestId'], 'ModifyImageSharePermission answers RequestId only');
      assert.match(String(shared.headers['x-shareledger-seq']), /^\d+$/, 'a write carries x-shareledger-seq');
      self = await images(a, { imageOwnerAlias: 'self' });
      assert.equal(self[0].isSelfShared, 'True');
      const others = await images(b, { imageOwnerAlias: 'others' });
      assert.deepEqual(others.map((x) => x.imageId), [X]);
      assert.equal(others[0].imageOwnerAlias, 'others');
      assert.ok(!(await imageIds(b, { imageOwnerAlias: 'self' })).includes(X));
      assert.ok(!(await imageIds(b, { imageOwnerAlias: 'system' })).includes(X));
      assert.ok(!(await imageIds(c)).includes(X), 'C was not shared');
      // One element is still an array on the wire.
      const raw = await b.raw('DescribeImages', { RegionId: REGION, ImageId: X });
      assert.ok(Array.isArray(raw.body.Images.Image) && raw.body.Images.Image.length === 1);

      const recipientInstance = await launch(b, X);
      const disk = await systemDisk(b, recipientInstance);
      const inst = await b.describeInstances({ regionId: REGION, instanceIds: JSON.stringify([recipientInstance]) });
      assert.equal(inst.instances.instance.length, 1);
      assert.equal(inst.instances.instance[0].imageId, X);
      await b.reInitDisk({ diskId: disk });
      // One instance, one disk: still arrays on the wire.
      const rawInst = await b.raw('DescribeInstances', { RegionId: REGION });
      assert.ok(Array.isArray(rawInst.body.Instances.Instance) && rawInst.body.Instances.Instance.length === 1);
      assert.equal(rawInst.body.Instances.Instance[0].InstanceId, recipientInstance);
      const rawDisk = await b.raw('DescribeDisks', { RegionId: REGION, InstanceId: recipientInstance, DiskType: 'system' });
      assert.ok(Array.isArray(rawDisk.body.Disks.Disk) && rawDisk.body.Disks.Disk.length === 1);
      assert.equal(rawDisk.body.Disks.Disk[0].DiskId, disk);

      // A recipient cannot re-share or copy it.
      await expectError(share(b, X, [C.id]), 404, 'InvalidImageId.NotFound');
      await expectError(b.copyImage({ regionId: REGION, imageId: X, destinationRegionId: REGION }),
        403, 'OperationDenied.SameRegionOnly');
      await expectError(b.copyImage({ regionId: OTHER_REGION, imageId: X, destinationRegionId: REGION }),
        404, 'InvalidImageId.NotFound');
      // Nobody else can touch B's disk or instance: it does not exist for them.
      await expectError(c.reInitDisk({ diskId: disk }), 404, 'InvalidDiskId.NotFound');
      await expectError(a.reInitDisk({ diskId: disk }), 404, 'InvalidDiskId.NotFound');
      await expectError(c.deleteInstance({ instanceId: recipientInstance }), 404, 'InvalidInstanceId.NotFound');

      // Shared images cannot be deleted, with or without Force.
      await expectError(a.deleteImage({ regionId: REGION, imageId: X }), 403, 'ImageUseShared');
      await expectError(a.deleteImage({ regionId: REGION, imageId: X, force: true }), 403, 'ImageUseShared');

      // Unshare: B loses it and its instance becomes reinit-blocked.
      await share(a, X, undefined, [B.id]);
      assert.ok(!(await imageIds(b, { imageOwnerAlias: 'others' })).includes(X));
      assert.ok(!(await imageIds(b, { imageId: X })).includes(X));
      await expectError(launch(b, X), 404, 'InvalidImageId.NotFound');
      await expectError(b.reInitDisk({ diskId: disk }), 403, 'OperationDenied.ImageNotValid');
      await expectError(b.replaceSystemDisk({ instanceId: recipientInstance, imageId: X }), 404, 'InvalidImageId.NotFound');

      // Re-share unblocks.
      await share(a, X, [B.id]);
      assert.ok((await imageIds(b, { imageOwnerAlias: 'others' })).includes(X));
      await b.reInitDisk({ diskId: disk });

      // Delete: unshare first (ImageUseShared otherwise), then the instance still uses it.
      await share(a, X, [], [B.id]);
      await expectError(a.deleteImage({ regionId: REGION, imageId: X }), 403, 'ImageUsingByInstance');
      await expectError(c.deleteImage({ regionId: REGION, imageId: X, force: true }), 404, 'InvalidImageId.NotFound');
      await a.deleteImage({ regionId: REGION, imageId: X, force: true });
      await expectError(b.reInitDisk({ diskId: disk }), 403, 'SharedImageDeleted');
      // Deleted is gone for everyone, the owner included.
      assert.ok(!(await imageIds(a, { imageId: X, status: 'Available,Creating,Deleted' })).includes(X));
      await expectError(a.deleteImage({ regionId: REGION, imageId: X, force: true }), 404, 'InvalidImageId.NotFound');
      await expectError(share(a, X, [B.id]), 404, 'InvalidImageId.NotFound');
      await expectError(permissions(a, X), 404, 'InvalidImageId.NotFound');
      await expectError(launch(b, X), 404, 'InvalidImageId.NotFound');
      // Deletion is permanent, but ReplaceSystemDisk with a usable image gives a working disk.
      const replaced = await b.replaceSystemDisk({ instanceId: recipientInstance, imageId: systemImage });
      assert.match(replaced.diskId, /^d-[a-z0-9]{20}$/);
      await b.reInitDisk({ diskId: await systemDisk(b, recipientInstance) });
    });

    test('public images: others lists them, ShareGroup all, unpublishing blocks launched instances', T, async () => {
      const P = await customImage(a, systemImage, `public-${mode}`);
      await share(a, P, undefined, undefined, { isPublic: true });
      for (const viewer of [b, c, i]) {
        const others = await images(viewer, { imageOwnerAlias: 'others' });
        assert.ok(others.map((x) => x.imageId).includes(P), `${viewer.account.id} sees the public image under others`);
      }
      const perm = await permissions(a, P);
      assert.equal(perm.shareGroups.shareGroup.length, 1);
      assert.equal(perm.shareGroups.shareGroup[0].group, 'all');
      assert.equal(perm.totalCount, 0);
      const raw = await a.raw('DescribeImageSharePermission', { RegionId: REGION, ImageId: P });
      assert.deepEqual(raw.body.ShareGroups, { ShareGroup: [{ Group: 'all' }] });
      assert.deepEqual(raw.body.Accounts, { Account: [] });
      await expectError(a.deleteImage({ regionId: REGION, imageId: P, force: true }), 403, 'ImageUseShared');

      const cInstance = await launch(c, P);
      const cDisk = await systemDisk(c, cInstance);
      await share(a, P, undefined, undefined, { isPublic: false });
      assert.ok(!(await imageIds(c, { imageOwnerAlias: 'others' })).includes(P));
      await expectError(c.reInitDisk({ diskId: cDisk }), 403, 'OperationDenied.ImageNotValid');
      const after = await a.raw('DescribeImageSharePermission', { RegionId: REGION, ImageId: P });
      assert.deepEqual(after.body.ShareGroups, { ShareGroup: [] });
      await expectError(a.deleteImage({ regionId: REGION, imageId: P }), 403, 'ImageUsingByInstance');
      await c.deleteInstance({ instanceId: cInstance });
      await expectError(c.reInitDisk({ diskId: cDisk }), 404, 'InvalidDiskId.NotFound');
      await a.deleteImage({ regionId: REGION, imageId: P });
      await expectError(permissions(a, P), 404, 'InvalidImageId.NotFound');
    });

    test('ModifyImageSharePermission rule errors and atomicity', T, async () => {
      const X = await customImage(a, systemImage, `rules-${mode}`);
      const unknown = h.unknownAccountId();
      // Rule 1: system / marketplace images, other regions, other owners.
      await expectError(share(a, systemImage, [B.id]), 404, 'InvalidImageId.NotFound');
      await expectError(share(a, paidCn.imageId, [B.id]), 404, 'InvalidImageId.NotFound');
      await expectError(share(a, freeCn.imageId, [B.id]), 404, 'InvalidImageId.NotFound');
      await expectError(share(a, X, [B.id], undefined, { regionId: OTHER_REGION }), 404, 'InvalidImageId.NotFound');
      await expectError(share(c, X, [B.id]), 404, 'InvalidImageId.NotFound');
      await expectError(share(a, 'm-' + h.randomAlnum(20), [B.id]), 404, 'InvalidImageId.NotFound');
      // Rule 3: 11 AddAccount (checked before the accounts themselves).
      const eleven = Array.from({ length: 11 }, () => h.unknownAccountId());
      await expectError(share(a, X, eleven), 400, 'InvalidParameter');
      await expectError(share(a, X, undefined, eleven), 400, 'InvalidParameter');
      // Rule 4, in parameter order.
      await expectError(share(a, X, [unknown]), 404, 'InvalidAccount.NotFound');
      await expectError(share(a, X, [A.id]), 404, 'InvalidAccount.Forbbiden');
      await expectError(share(a, X, [B.id, unknown, A.id]), 404, 'InvalidAccount.NotFound');
      await expectError(share(a, X, [B.id, A.id, unknown]), 404, 'InvalidAccount.Forbbiden');
      await expectError(share(a, X, [B.id], [B.id]), 400, 'InvalidParameter');
      // Nothing of a failed call applied.
      assert.equal((await permissions(a, X)).totalCount, 0);
      assert.ok(!(await imageIds(b)).includes(X));
      // A no-op call succeeds; re-adding is idempotent; removing a non-recipient (even unknown) is a no-op.
      await share(a, X, undefined, [B.id]);
      await share(a, X, undefined, [unknown]);
      await share(a, X, [B.id]);
      await share(a, X, [B.id, B.id]);
      assert.equal((await permissions(a, X)).totalCount, 1);
      // Region checks.
      await expectError(share(a, X, [C.id], undefined, { regionId: 'xx-nowhere-1' }), 404, 'InvalidRegionId.NotFound');
      await expectError(a.describeImages({ regionId: 'xx-nowhere-1' }), 404, 'InvalidRegionId.NotFound');
      // An image in another region is shared in that region.
      const copy = await a.copyImage({ regionId: REGION, imageId: X, destinationRegionId: OTHER_REGION });
      await expectError(share(a, copy.imageId, [B.id]), 404, 'InvalidImageId.NotFound');
      await share(a, copy.imageId, [B.id], undefined, { regionId: OTHER_REGION });
      const seen = await images(b, { regionId: OTHER_REGION, imageOwnerAlias: 'others' });
      assert.deepEqual(seen.map((x) => x.imageId), [copy.imageId]);
      assert.ok(!(await imageIds(b, { imageOwnerAlias: 'others' })).includes(copy.imageId), 'an image lives in one region');
    });

    test('encrypted images: service key unsupported, customer key needs the role', T, async () => {
      const base = await customImage(a, systemImage, `plain-${mode}`);
      const serviceKey = (await a.copyImage({ regionId: REGION, imageId: base, destinationRegionId: REGION, encrypted: true })).imageId;
      const [svc] = await images(a, { imageId: serviceKey });
      assert.equal(svc.diskDeviceMappings.diskDeviceMapping[0].encrypted, true);
      await expectError(share(a, serviceKey, [B.id]), 403, 'InvalidOperation.ServiceKeyEncryptedImageUnsupported');
      await expectError(share(a, serviceKey, undefined, undefined, { isPublic: true }), 403,
        'InvalidOperation.ServiceKeyEncryptedImageUnsupported');

      const customerKey = (await a.copyImage({
        regionId: REGION, imageId: base, destinationRegionId: REGION, encrypted: true, KMSKeyId: `key-${h.randomAlnum(12)}`,
      })).imageId;
      await expectError(share(a, customerKey, [B.id]), 403, 'AssumeRoleError');
      assert.equal((await permissions(a, customerKey)).totalCount, 0);
      await server.setEncryptRole(A.id, true);
      await share(a, customerKey, [B.id]);
      assert.ok((await imageIds(b, { imageOwnerAlias: 'others' })).includes(customerKey));
      // Revoked: removing is still allowed (rules 5-6 only check new recipients), adding is not.
      await server.setEncryptRole(A.id, false);
      await share(a, customerKey, [B.id]);  // re-adding a current recipient is not checked
      await share(a, customerKey, undefined, [B.id]);
      await expectError(share(a, customerKey, [B.id]), 403, 'AssumeRoleError');
      await server.setEncryptRole(A.id, true);
      await share(a, customerKey, [C.id]);
      await server.setEncryptRole(A.id, false);
    });

    test('marketplace-derived images cannot cross sites (BidMismatch)', T, async () => {
      const W = await customImage(a, paidCn.imageId, `paid-derived-${mode}`);
      const [w] = await images(a, { imageId: W });
      assert.equal(w.productCode, paidCn.productCode, 'a derived image inherits the product code');
      await expectError(share(a, W, [I.id]), 403, 'InvalidImageId.BidMismatch');
      await expectError(share(a, W, [B.id, I.id]), 403, 'InvalidImageId.BidMismatch');
      assert.equal((await permissions(a, W)).totalCount, 0, 'the failed call shared with nobody');
      await expectError(share(a, W, undefined, undefined, { isPublic: true }), 403, 'InvalidImageId.BidMismatch');
      await share(a, W, [B.id]);
      const launched = await launch(b, W);
      assert.ok(launched);
      const L = await customImage(a, freeCn.imageId, `free-derived-${mode}`);
      await expectError(share(a, L, [I.id]), 403, 'InvalidImageId.BidMismatch');
      // The same rule from the intl side.
      const WI = await customImage(i, paidIntl.imageId, `intl-derived-${mode}`);
      await expectError(share(i, WI, [B.id]), 403, 'InvalidImageId.BidMismatch');
      // A plain custom image crosses sites freely.
      const plain = await customImage(a, systemImage, `plain-cross-${mode}`);
      await share(a, plain, [I.id]);
      assert.ok((await imageIds(i, { imageOwnerAlias: 'others' })).includes(plain));
    });

    test('50-recipient limit and DescribeImageSharePermission paging', T, async () => {
      const Q = await customImage(a, systemImage, `quota-${mode}`);
      const many = await server.createAccounts(51, 'cn');
      const ids = many.map((x) => x.id);
      for (let k = 0; k < 50; k += 10) await share(a, Q, ids.slice(k, k + 10));
      await expectError(share(a, Q, [ids[50]]), 403, 'QuotaExceed.ShareImageUser');
      assert.equal((await permissions(a, Q)).totalCount, 50);
      // Removes apply before adds: swapping one recipient at the limit is fine.
      await share(a, Q, [ids[50]], [ids[0]]);
      const current = new Set(ids.slice(1));

      const all = await a.raw('DescribeImageSharePermission', { RegionId: REGION, ImageId: Q, PageSize: 100 });
      assert.equal(all.statusCode, 200);
      const body = all.body;
      assert.equal(body.ImageId, Q);
      assert.equal(body.RegionId, REGION);
      assert.equal(body.TotalCount, 50);
      assert.equal(body.PageSize, 100);
      assert.equal(body.PageNumber, 1);
      assert.ok(Array.isArray(body.Accounts.Account));
      assert.equal(body.Accounts.Account.length, 50);
      assert.deepEqual(body.ShareGroups, { ShareGroup: [] });
      for (const acc of body.Accounts.Account) {
        assert.deepEqual(Object.keys(acc).sort(), ['AliyunId', 'SharedTime']);
        assert.equal(typeof acc.AliyunId, 'string');
        assert.ok(current.has(acc.AliyunId), `unexpected recipient ${acc.AliyunId}`);
        assert.match(acc.SharedTime, SHARED_TIME);
        assert.ok(Math.abs(Date.parse(acc.SharedTime) - Date.now()) < 10 * 60 * 1000, `SharedTime ${acc.SharedTime} is not now`);
      }
      assert.equal(new Set(body.Accounts.Account.map((x) => x.AliyunId)).size, 50);

      // PageSize 1 walks the same list, one per page, no gap and no duplicate.
      const walked = [];
      for (let page = 1; page <= 50; ++page) {
        const p = await permissions(a, Q, { pageSize: 1, pageNumber: page });
        assert.equal(p.totalCount, 50);
        assert.equal(p.pageSize, 1);
        assert.equal(p.pageNumber, page);
        assert.equal(p.accounts.account.length, 1);
        walked.push(p.accounts.account[0].aliyunId);
      }
      assert.deepEqual(walked, body.Accounts.Account.map((x) => x.AliyunId));
      const past = await a.raw('DescribeImageSharePermission', { RegionId: REGION, ImageId: Q, PageSize: 1, PageNumber: 51 });
      assert.deepEqual(past.body.Accounts, { Account: [] });
      assert.equal(past.body.TotalCount, 50);
      const dflt = await permissions(a, Q);
      assert.equal(dflt.pageSize, 10);
      assert.equal(dflt.accounts.account.length, 10);

      await expectError(permissions(a, Q, { pageSize: 0 }), 400, 'InvalidParameter', 'PageSize');
      await expectError(permissions(a, Q, { pageSize: 101 }), 400, 'InvalidParameter', 'PageSize');
      await expectError(permissions(b, Q), 404, 'InvalidImageId.NotFound');
      await expectError(permissions(h.ecs(server, many[5], mode), Q), 404, 'InvalidImageId.NotFound');

      // One recipient: still an array.
      const one = await customImage(a, systemImage, `one-${mode}`);
      await share(a, one, [B.id]);
      const single = await a.raw('DescribeImageSharePermission', { RegionId: REGION, ImageId: one });
      assert.equal(single.body.TotalCount, 1);
      assert.ok(Array.isArray(single.body.Accounts.Account));
      assert.equal(single.body.Accounts.Account[0].AliyunId, B.id);
      // The whole share must be removed before the image can go.
      await share(a, Q, undefined, ids.slice(1, 11));
      await expectError(a.deleteImage({ regionId: REGION, imageId: Q }), 403, 'ImageUseShared');
    });

    test('request errors: MissingParameter, InvalidAction, auth failures', T, async () => {
      await expectError(a.describeImageSharePermission({ regionId: REGION }), 400, 'MissingParameter', 'ImageId');
      await expectError(a.runInstances({ regionId: REGION, amount: 1 }), 400, 'MissingParameter', 'ImageId');
      await expectError(a.reInitDisk({}), 400, 'MissingParameter', 'DiskId');
      await expectError(a.describeImages({ regionId: REGION, imageOwnerAlias: 'nobody' }), 400, 'InvalidParameter');
      await expectError(a.raw('NoSuchAction', { RegionId: REGION }), 404, 'InvalidAction.NotFound');

      const unknownKey = h.ecs(server, { keyId: 'LTAI' + h.randomAlnum(20, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'), secret: A.secret }, mode);
      await expectError(unknownKey.describeImages({ regionId: REGION }), 404, 'InvalidAccessKeyId.NotFound');
      const wrongSecret = h.ecs(server, { keyId: A.keyId, secret: A.secret.slice(0, -1) + (A.secret.endsWith('x') ? 'y' : 'x') }, mode);
      await expectError(wrongSecret.describeImages({ regionId: REGION }), 400, 'SignatureDoesNotMatch');
      await expectError(wrongSecret.modifyImageSharePermission({ regionId: REGION, imageId: systemImage, addAccount: [B.id] }),
        400, 'SignatureDoesNotMatch');
      // Extra parameters real clients send are accepted.
      await a.describeImages({ regionId: REGION, ownerId: 1234567, resourceOwnerAccount: 'someone', ownerAccount: 'x', resourceOwnerId: 7 });
      // Tricky characters survive signing in both modes.
      const tricky = await images(a, { imageName: "my image *~!()' 中文+%&=/?" });
      assert.ok(Array.isArray(tricky));
    });

    test('freshness: reused nonce and skewed clock (SDK helpers pinned as in make_vectors.js)', T, async () => {
      const Utils = require('@alicloud/openapi-core/dist/utils').default;
      const { getNonce, getTimestamp } = Utils;
      try {
        const nonce = `nonce-${mode}-${h.randomAlnum(16)}`;
        Utils.getNonce = () => nonce;
        await a.describeImages({ regionId: REGION });
        await expectError(a.describeImages({ regionId: REGION }), 400, 'SignatureNonceUsed');
        // Another key may use the same nonce.
        await b.describeImages({ regionId: REGION });
        Utils.getNonce = getNonce;
        Utils.getTimestamp = () => new Date(Date.now() - 20 * 60 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        await expectError(a.describeImages({ regionId: REGION }), 400, 'InvalidTimeStamp.Expired');
        Utils.getTimestamp = () => new Date(Date.now() + 20 * 60 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        await expectError(a.describeImages({ regionId: REGION }), 400, 'InvalidTimeStamp.Expired');
      } finally {
        Utils.getNonce = getNonce;
        Utils.getTimestamp = getTimestamp;
      }
      await a.describeImages({ regionId: REGION });
    });

    test('QuotaExceed.Image with --image-quota 1', T, async () => {
      const small = await h.startServer({ imageQuota: 1 });
      try {
        const [Q1, Q2] = await small.createAccounts(2, 'cn');
        const q1 = h.ecs(small, Q1, mode);
        const q2 = h.ecs(small, Q2, mode);
        const sys = (await images(q1, { imageOwnerAlias: 'system' }))[0].imageId;
        const inst = await launch(q1, sys);
        // A share received does not count against the recipient's quota.
        const fromQ2 = await customImage(q2, sys, 'q2');
        await share(q2, fromQ2, [Q1.id]);
        const first = await createImage(q1, inst, 'first');
        await expectError(q1.createImage({ regionId: REGION, instanceId: inst }), 403, 'QuotaExceed.Image');
        await expectError(q1.copyImage({ regionId: REGION, imageId: first, destinationRegionId: REGION }), 403, 'QuotaExceed.Image');
        // The quota is per region.
        const copied = await q1.copyImage({ regionId: REGION, imageId: first, destinationRegionId: OTHER_REGION });
        assert.match(copied.imageId, /^m-/);
        // Deleting frees the slot.
        await q1.deleteImage({ regionId: REGION, imageId: first });
        await createImage(q1, inst, 'second');
      } finally {
        assert.equal((await small.stop()).forced, false, 'quota server did not stop on SIGTERM');
      }
    });

    test('OperationDenied.InvalidImageStatus with --image-build-ms 60000', T, async () => {
      const slow = await h.startServer({ imageBuildMs: 60000 });
      try {
        const [S1, S2] = await slow.createAccounts(2, 'cn');
        const s1 = h.ecs(slow, S1, mode);
        const sys = (await images(s1, { imageOwnerAlias: 'system' }))[0].imageId;
        const creating = await customImage(s1, sys, 'slow');
        assert.ok(!(await imageIds(s1, { imageOwnerAlias: 'self' })).includes(creating), 'default Status filter is Available');
        const listed = await images(s1, { imageOwnerAlias: 'self', status: 'Creating' });
        assert.deepEqual(listed.map((x) => [x.imageId, x.status]), [[creating, 'Creating']]);
        await expectError(share(s1, creating, [S2.id]), 403, 'OperationDenied.InvalidImageStatus');
        await expectError(share(s1, creating, undefined, undefined, { isPublic: true }), 403, 'OperationDenied.InvalidImageStatus');
        await expectError(s1.copyImage({ regionId: REGION, imageId: creating, destinationRegionId: REGION }),
          403, 'OperationDenied.InvalidImageStatus');
        // Rule 1 before rule 2: another account gets NotFound, not the status.
        await expectError(share(h.ecs(slow, S2, mode), creating, [S1.id]), 404, 'InvalidImageId.NotFound');
      } finally {
        assert.equal((await slow.stop()).forced, false, 'server with a pending image build did not stop on SIGTERM');
      }
    });
  });
}

// The ECS SDK's response model types ImageOwnerId as a number and parses the
// server's string with parseInt: account ids must stay below 2^53 (real
// Alibaba Cloud uids start with 1), or the SDK reports a wrong owner.
describe('ImageOwnerId survives the SDK model', { timeout: 60000 }, () => {
  let server;
  before(async () => { server = await h.startServer(); });
  after(async () => { if (server) await server.stop(); });

  test('every account id is below 2^53 and is read back exactly by the SDK', T, async () => {
      const batch = await server.createAccounts(40, 'cn');
      for (const x of batch) assert.ok(BigInt(x.id) < 2n ** 53n, `account id ${x.id} is above 2^53`);
      const owner = batch.find((x) => BigInt(x.id) % 2n === 1n) || batch[0];
      const c = h.ecs(server, owner, 'acs3');
      const sys = (await images(c, { imageOwnerAlias: 'system' }))[0].imageId;
      const mine = await customImage(c, sys, 'big-owner');
      const raw = await c.raw('DescribeImages', { RegionId: REGION, ImageId: mine });
      assert.equal(raw.body.Images.Image[0].ImageOwnerId, owner.id, 'the wire carries the id as a string');
      const [model] = await images(c, { imageId: mine });
      assert.equal(String(model.imageOwnerId), owner.id, `the SDK reads ImageOwnerId ${owner.id} as ${model.imageOwnerId}`);
    });
});
