// Organization sharing (SPEC §1.2 source 3, §1.3 organization targets, §3.1
// ResourceSharing 2020-01-10 / ResourceManager 2020-03-31) through the generic
// @alicloud/openapi-core client (RPC, POST, query), ECS calls through the
// official ECS SDK; once per signing mode.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('assert/strict');
const h = require('./harness');

const { REGION, expectError } = h;
const T = { timeout: 30000 };

async function imageIds(c, query) {
  const body = await c.describeImages(Object.assign({ regionId: REGION, pageSize: 100 }, query));
  assert.ok(Array.isArray(body.images.image));
  return body.images.image.map((x) => x.imageId);
}
async function launch(c, imageId) {
  const body = await c.runInstances({ regionId: REGION, imageId, amount: 1, instanceType: 'ecs.g7.large' });
  return body.instanceIdSets.instanceIdSet[0];
}
async function systemDisk(c, instanceId) {
  const body = await c.describeDisks({ regionId: REGION, instanceId, diskType: 'system' });
  assert.equal(body.disks.disk.length, 1);
  return body.disks.disk[0].diskId;
}
async function customImage(c, baseImage, name) {
  const instance = await launch(c, baseImage);
  return (await c.createImage({ regionId: REGION, instanceId: instance, imageName: name })).imageId;
}
function image(id) {
  return { ResourceId: id, ResourceType: 'Image' };
}

for (const mode of h.MODES) {
  describe(`Resource Directory sharing, ${mode} signing`, { timeout: 90000 }, () => {
    let server;
    let M, X, Y, Z, E;     // manager, members X and Y, outsider Z, external E
    let mEcs, xEcs, yEcs, zEcs;
    let mRpc, xRpc, yRpc, zRpc;
    let systemImage;
    let directoryId, rootId, folderId, subFolderId;
    let IMG, shareId;

    before(async () => {
      server = await h.startServer();
      [M, X, Y, Z, E] = await server.createAccounts(5, 'cn');
      [mEcs, xEcs, yEcs, zEcs] = [M, X, Y, Z].map((a) => h.ecs(server, a, mode));
      [mRpc, xRpc, yRpc, zRpc] = [M, X, Y, Z].map((a) => h.rpc(server, a, mode));
      const system = await mEcs.describeImages({ regionId: REGION, imageOwnerAlias: 'system' });
      systemImage = system.images.image[0].imageId;
    });
    after(async () => {
      if (server) assert.equal((await server.stop()).forced, false, 'server did not stop on SIGTERM');
    });

    test('without a directory: ResourceDirectoryNotEnabled and InvalidParameter.Targets', T, async () => {
      const own = await customImage(zEcs, systemImage, 'z-image');
      // Sharing with the directory is impossible before any directory exists.
      await expectError(zRpc.sharing('EnableSharingWithResourceDirectory', {}), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
      await expectError(zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'nope', Resources: [image(own)], Targets: ['fd-' + h.randomAlnum(10)],
      }), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
      // An account target with no directory needs AllowExternalTargets.
      await expectError(zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'nope', Resources: [image(own)], Targets: [E.id],
      }), 400, 'InvalidParameter.Targets');
      assert.ok(!(await imageIds(h.ecs(server, E, mode))).includes(own));
      const created = await zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'external', Resources: [image(own)], Targets: [E.id], AllowExternalTargets: true,
      });
      assert.match(created.ResourceShare.ResourceShareId, /^rs-[a-z0-9]{10}$/);
      assert.ok((await imageIds(h.ecs(server, E, mode), { imageOwnerAlias: 'others' })).includes(own));
      // More than 5 targets in one call.
      const six = Array.from({ length: 6 }, () => E.id);
      await expectError(zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'six', Resources: [image(own)], Targets: six, AllowExternalTargets: true,
      }), 400, 'InvalidParameter');
      // Resource-share grants do not count as account shares in DescribeImageSharePermission...
      const perm = await zEcs.describeImageSharePermission({ regionId: REGION, imageId: own });
      assert.equal(perm.totalCount, 0);
      // ...but they keep the image from being deleted.
      await expectError(zEcs.deleteImage({ regionId: REGION, imageId: own, force: true }), 403, 'ImageUseShared');
    });

    test('directory setup: enable, folders, invitation and handshake', T, async () => {
      const enabled = await mRpc.manager('EnableResourceDirectory', {});
      directoryId = enabled.ResourceDirectory.ResourceDirectoryId;
      rootId = enabled.ResourceDirectory.RootFolderId;
      assert.match(directoryId, /^rd-[A-Za-z0-9]{10}$/);
      assert.match(rootId, /^r-[A-Za-z0-9]{6}$/);
      assert.equal(enabled.ResourceDirectory.MasterAccountId, M.id);

      folderId = (await mRpc.manager('CreateFolder', { ParentFolderId: rootId, FolderName: 'apps' })).Folder.FolderId;
      assert.match(folderId, /^fd-[A-Za-z0-9]{10}$/);
      // Parameters in a form body (chunked, signed with the query) work as well as in the query.
      const tricky = "team *~!()' 中文+%&=/?";
      const viaBody = await mRpc.raw('CreateFolder', h.MANAGER, { ParentFolderId: folderId }, { FolderName: tricky });
      assert.equal(viaBody.statusCode, 200);
      assert.equal(viaBody.body.Folder.FolderName, tricky);
      subFolderId = viaBody.body.Folder.FolderId;
      await expectError(xRpc.manager('CreateFolder', { ParentFolderId: rootId, FolderName: 'x' }), 404, 'EntityNotExists.ResourceDirectory');

      for (const [member, rpcClient] of [[X, xRpc], [Y, yRpc]]) {
        const invited = await mRpc.manager('InviteAccountToResourceDirectory', { TargetEntity: member.id });
        const handshakeId = invited.Handshake.HandshakeId;
        assert.ok(handshakeId);
        // Only the invitee can accept.
        await expectError(zRpc.manager('AcceptHandshake', { HandshakeId: handshakeId }), 404, 'EntityNotExists.Handshake');
        const accepted = await rpcClient.manager('AcceptHandshake', { HandshakeId: handshakeId });
        assert.equal(accepted.Handshake.Status, 'Accepted');
      }
    });

    test('folder targets need EnableSharingWithResourceDirectory', T, async () => {
      IMG = await customImage(mEcs, systemImage, `org-${mode}`);
      await expectError(mRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'too-early', Resources: [image(IMG)], Targets: [folderId],
      }), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
      await expectError(mRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'too-early', Resources: [image(IMG)], Targets: [directoryId],
      }), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
      await mRpc.sharing('EnableSharingWithResourceDirectory', {});
      // Another account cannot target this directory's folders.
      const zImage = (await zEcs.describeImages({ regionId: REGION, imageOwnerAlias: 'self' })).images.image[0].imageId;
      await expectError(zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'foreign', Resources: [image(zImage)], Targets: [folderId],
      }), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
      // Z is outside M's directory: an account target needs AllowExternalTargets.
      await expectError(mRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'outside', Resources: [image(IMG)], Targets: [Z.id],
      }), 400, 'InvalidParameter.Targets');
      // Nobody got anything from the failed calls.
      assert.ok(!(await imageIds(zEcs)).includes(IMG));
      assert.ok(!(await imageIds(xEcs)).includes(IMG));
    });

    test('a folder share follows the member: in, launch, out, blocked, back', T, async () => {
      const created = await mRpc.sharing('CreateResourceShare', {
        ResourceShareName: `apps-${mode}`, Resources: [image(IMG)], Targets: [folderId],
      });
      shareId = created.ResourceShare.ResourceShareId;
      assert.equal(created.ResourceShare.ResourceShareStatus, 'Active');
      // X sits in the root folder: not covered yet.
      assert.ok(!(await imageIds(xEcs)).includes(IMG));
      await expectError(launch(xEcs, IMG), 404, 'InvalidImageId.NotFound');

      await mRpc.manager('MoveAccount', { AccountId: X.id, DestinationFolderId: folderId });
      assert.ok((await imageIds(xEcs, { imageOwnerAlias: 'others' })).includes(IMG));
      const shared = await xRpc.sharing('ListSharedResources', { ResourceOwner: 'OtherAccounts' });
      assert.ok(Array.isArray(shared.SharedResources));
      assert.ok(shared.SharedResources.some((r) => r.ResourceId === IMG && r.ResourceShareId === shareId));
      const instance = await launch(xEcs, IMG);
      const disk = await systemDisk(xEcs, instance);
      await xEcs.reInitDisk({ diskId: disk });
      // A recipient through the directory cannot re-share it either.
      await expectError(xEcs.modifyImageSharePermission({ regionId: REGION, imageId: IMG, addAccount: [Y.id] }),
        404, 'InvalidImageId.NotFound');

      // A member's account id is an internal target: no AllowExternalTargets needed.
      const direct = await mRpc.sharing('CreateResourceShare', {
        ResourceShareName: `direct-${mode}`, Resources: [image(IMG)], Targets: [Y.id],
      });
      assert.ok((await imageIds(yEcs, { imageOwnerAlias: 'others' })).includes(IMG));
      await mRpc.sharing('DeleteResourceShare', { ResourceShareId: direct.ResourceShare.ResourceShareId });
      assert.ok(!(await imageIds(yEcs)).includes(IMG));

      // A subfolder is covered transitively.
      await mRpc.manager('MoveAccount', { AccountId: Y.id, DestinationFolderId: subFolderId });
      assert.ok((await imageIds(yEcs, { imageOwnerAlias: 'others' })).includes(IMG));

      // Native view: grants per source, recipient counts.
      const perms = await h.native(server, M, 'GET', `/v1/images/${IMG}/permissions`);
      assert.equal(perms.status, 200, perms.text);
      const sources = perms.json.grants.filter((g) => g.account_id === X.id).map((g) => g.source);
      assert.deepEqual(sources, [`resource-share:${shareId}`]);
      const recipients = await h.native(server, M, 'GET', `/v1/images/${IMG}/recipients`);
      assert.equal(recipients.status, 200, recipients.text);
      assert.equal(recipients.json.direct, 0);
      assert.equal(recipients.json.via_directory, 2);
      assert.equal(recipients.json.effective, 2);

      // The image cannot be deleted while associated.
      await expectError(mEcs.deleteImage({ regionId: REGION, imageId: IMG, force: true }), 403, 'ImageUseShared');

      // Out of the folder: gone, and the disk cannot be re-initialised.
      await mRpc.manager('MoveAccount', { AccountId: X.id, DestinationFolderId: rootId });
      assert.ok(!(await imageIds(xEcs, { imageOwnerAlias: 'others' })).includes(IMG));
      assert.ok(!(await imageIds(xEcs, { imageId: IMG })).includes(IMG));
      await expectError(launch(xEcs, IMG), 404, 'InvalidImageId.NotFound');
      await expectError(xEcs.reInitDisk({ diskId: disk }), 403, 'OperationDenied.ImageNotValid');
      const status = await h.native(server, X, 'GET', `/v1/instances/${instance}`);
      assert.equal(status.status, 200, status.text);
      assert.equal(status.json.reinit_blocked, true);
      assert.equal(status.json.reason, 'image_unshared');

      // An account-id share held at the same time survives the move (grants per source).
      await mEcs.modifyImageSharePermission({ regionId: REGION, imageId: IMG, addAccount: [X.id] });
      await xEcs.reInitDisk({ diskId: disk });
      await mRpc.manager('MoveAccount', { AccountId: X.id, DestinationFolderId: folderId });
      await mEcs.modifyImageSharePermission({ regionId: REGION, imageId: IMG, removeAccount: [X.id] });
      await xEcs.reInitDisk({ diskId: disk });  // still covered by the folder
      assert.ok((await imageIds(xEcs, { imageOwnerAlias: 'others' })).includes(IMG));

      // Leaving the directory revokes it too.
      await mRpc.manager('RemoveCloudAccount', { AccountId: X.id });
      assert.ok(!(await imageIds(xEcs)).includes(IMG));
      await expectError(xEcs.reInitDisk({ diskId: disk }), 403, 'OperationDenied.ImageNotValid');
    });

    test('resource share listings and disassociation', T, async () => {
      const shares = await mRpc.sharing('ListResourceShares', {});
      assert.ok(Array.isArray(shares.ResourceShares));
      assert.ok(shares.ResourceShares.some((s) => s.ResourceShareId === shareId));
      const assoc = await mRpc.sharing('ListResourceShareAssociations', { AssociationType: 'Target' });
      assert.ok(Array.isArray(assoc.ResourceShareAssociations));
      const target = assoc.ResourceShareAssociations.find((a) => a.ResourceShareId === shareId && a.EntityId === folderId);
      assert.ok(target, 'the folder target is listed');
      assert.equal(target.AssociationStatus, 'Associated');
      // Other accounts do not see M's shares.
      const zShares = await zRpc.sharing('ListResourceShares', {});
      assert.ok(!zShares.ResourceShares.some((s) => s.ResourceShareId === shareId));

      await mRpc.sharing('DisassociateResourceShare', { ResourceShareId: shareId, Targets: [folderId] });
      assert.ok(!(await imageIds(yEcs)).includes(IMG));
      const after = await mRpc.sharing('ListResourceShareAssociations', { AssociationType: 'Target' });
      const gone = after.ResourceShareAssociations.find((a) => a.ResourceShareId === shareId && a.EntityId === folderId);
      assert.equal(gone && gone.AssociationStatus, 'Disassociated');
      await mRpc.sharing('AssociateResourceShare', { ResourceShareId: shareId, Targets: [directoryId] });
      assert.ok((await imageIds(yEcs)).includes(IMG), 'the directory target covers every member');
      await mRpc.sharing('DeleteResourceShare', { ResourceShareId: shareId });
      assert.ok(!(await imageIds(yEcs)).includes(IMG));
      await mEcs.deleteImage({ regionId: REGION, imageId: IMG, force: true });
    });

    test('a member can share its own image with its directory', T, async () => {
      // X left in the previous test; invite it back (it lands in the root folder).
      const invited = await mRpc.manager('InviteAccountToResourceDirectory', { TargetEntity: X.id });
      await xRpc.manager('AcceptHandshake', { HandshakeId: invited.Handshake.HandshakeId });
      const mine = await customImage(yEcs, systemImage, `member-${mode}`);
      const created = await yRpc.sharing('CreateResourceShare', {
        ResourceShareName: `from-member-${mode}`, Resources: [image(mine)], Targets: [directoryId],
      });
      assert.match(created.ResourceShare.ResourceShareId, /^rs-/);
      assert.ok((await imageIds(xEcs, { imageOwnerAlias: 'others' })).includes(mine));
      assert.ok(!(await imageIds(zEcs)).includes(mine), 'an outsider is not covered');
      // An outsider cannot target the directory.
      await expectError(zRpc.sharing('CreateResourceShare', {
        ResourceShareName: 'x', Resources: [image((await zEcs.describeImages({ regionId: REGION, imageOwnerAlias: 'self' })).images.image[0].imageId)],
        Targets: [directoryId],
      }), 403, 'OperationDenied.ResourceDirectoryNotEnabled');
    });
  });
}
