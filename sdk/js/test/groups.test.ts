// Every group operation and group event against the real server.
import { describe, expect, it } from 'vitest';
import { ImErrorCode, ImSortType, type ImInfoChange, type ImMuteStatus, type ImUser } from '../src/index.js';
import { Recorder, loggedIn, rejection, uid } from './helpers.js';

describe('group manager', () => {
  it('creates, joins, queries, modifies, lists, mutes, leaves and closes a group', async () => {
    const owner = uid('owner');
    const viewer = uid('viewer');
    const admin = await loggedIn(owner, { role: 'admin' });
    const member = await loggedIn(viewer);
    const gmA = admin.getGroupManager();
    const gmM = member.getGroupManager();
    const groupId = uid('room');

    // createGroup: new, then alreadyExist; an empty groupId is generated.
    expect(await gmA.createGroup({ groupId, groupName: 'Room', groupMeta: '{"a":1}' })).toEqual({ groupId, alreadyExist: false });
    expect(await gmA.createGroup({ groupId, groupName: 'Room', groupMeta: '' })).toEqual({ groupId, alreadyExist: true });
    const generated = await gmA.createGroup({ groupId: '', groupName: 'Generated', groupMeta: '' });
    expect(generated.groupId).toMatch(/^[A-Za-z0-9-]{1,64}$/);
    expect(generated.alreadyExist).toBe(false);
    // Not admin: 403. No name: 400.
    expect((await rejection(gmM.createGroup({ groupId: uid('x'), groupName: 'x' }))).code).toBe(ImErrorCode.FORBIDDEN);
    expect((await rejection(gmA.createGroup({ groupId: uid('x'), groupName: '' }))).code).toBe(ImErrorCode.INVALID_PARAMETER);
    expect((await rejection(gmM.joinGroup(uid('nope')))).code).toBe(ImErrorCode.GROUP_NOT_FOUND);

    const members = new Recorder<[string, number, ImUser[], ImUser[], number, number]>();
    gmA.on('memberchange', members.fn);
    const ownerInfo = await gmA.joinGroup(groupId);
    expect(ownerInfo).toMatchObject({ groupId, groupName: 'Room', groupMeta: '{"a":1}', creator: owner, admins: [], closed: false });
    const info = await gmM.joinGroup(groupId);
    expect(info.groupId).toBe(groupId);
    expect(typeof info.createTime).toBe('number');
    expect(info.createTime).toBeGreaterThan(1_600_000_000_000);
    expect(info.muteStatus).toEqual({ muteAll: false, muteUserList: [], whiteUserList: [] });
    const [, count, joins] = await members.next((g, n, j) => g === groupId && j.some((u) => u.userId === viewer));
    expect(count).toBeGreaterThanOrEqual(2);
    expect(joins.find((u) => u.userId === viewer)?.userExtension).toBe(JSON.stringify({ nick: viewer }));

    const q = await gmM.queryGroup(groupId);
    expect(q).toMatchObject({ groupId, groupName: 'Room', creator: owner });
    expect(q.statistics.pv).toBeGreaterThanOrEqual(2);
    expect(q.statistics.onlineCount).toBe(2);
    expect(q.statistics.msgAmount).toEqual({});

    // modifyGroup: owner only; members get infochange.
    const infos = new Recorder<[string, ImInfoChange]>();
    gmM.on('infochange', infos.fn);
    await gmA.modifyGroup({ groupId, forceUpdateAdmins: true, admins: [viewer], forceUpdateGroupMeta: true, groupMeta: 'meta-2' });
    const [g, change] = await infos.next();
    expect(g).toBe(groupId);
    expect(change).toEqual({ groupId, groupMeta: 'meta-2', adminList: [viewer] });
    expect((await gmA.queryGroup(groupId)).admins).toEqual([viewer]);
    await gmA.modifyGroup({ groupId, forceUpdateAdmins: true, admins: [], forceUpdateGroupMeta: false, groupMeta: 'ignored' });
    const after = await gmA.queryGroup(groupId);
    expect(after.admins).toEqual([]);
    expect(after.groupMeta).toBe('meta-2');
    expect((await rejection(gmM.modifyGroup({ groupId, forceUpdateGroupMeta: true, groupMeta: 'x' }))).code).toBe(403);

    // listRecentGroupUser: anyone; newest first.
    const recent = await gmM.listRecentGroupUser(groupId);
    expect(recent.groupId).toBe(groupId);
    expect(recent.total).toBe(2);
    expect(recent.userList.map((u) => u.userId)).toEqual([viewer, owner]);
    expect(recent.userList[0]?.joinTime).toBeGreaterThan(0);

    // listGroupUser: owner/admins; pages by join time; either token spelling.
    const p1 = await gmA.listGroupUser({ groupId, pageSize: 1, sortType: ImSortType.ASC });
    expect(p1.userList.map((u) => u.userId)).toEqual([owner]);
    expect(p1.hasMore).toBe(true);
    expect(p1.nextPageToken).not.toBe('');
    const p2 = await gmA.listGroupUser({ groupId, pageSize: 1, nextPageToken: p1.nextPageToken });
    expect(p2.userList.map((u) => u.userId)).toEqual([viewer]);
    expect(p2.hasMore).toBe(false);
    const desc = await gmA.listGroupUser({ groupId, nextpagetoken: 12, pageSize: 10, sortType: ImSortType.DESC });
    expect(desc.userList.map((u) => u.userId)).toEqual([viewer, owner]);
    expect((await rejection(gmM.listGroupUser({ groupId }))).code).toBe(403);
    expect((await rejection(gmA.listGroupUser({ groupId, pageSize: 51 }))).code).toBe(400);

    // Mutes: members get mutechange; the muted one cannot send (442).
    const mutes = new Recorder<[string, ImMuteStatus]>();
    gmM.on('mutechange', mutes.fn);
    const mm = member.getMessageManager();
    await gmA.muteAll(groupId);
    expect((await mutes.next((_g, s) => s.muteAll))[1].muteAll).toBe(true);
    expect((await rejection(mm.sendGroupMessage({ groupId, data: 'x', type: 10001 }))).code).toBe(ImErrorCode.MUTED);
    expect((await gmA.listMuteUsers(groupId)).muteAll).toBe(true);
    await gmA.cancelMuteAll(groupId);
    await mutes.next((_g, s) => !s.muteAll && mutes.calls.length >= 2);
    await mm.sendGroupMessage({ groupId, data: 'free again', type: 10001 });
    await gmA.muteUser({ groupId, userList: [viewer] });
    expect(await gmA.listMuteUsers(groupId)).toEqual({ muteAll: false, muteUserList: [viewer], whiteUserList: [] });
    await mutes.next((_g, s) => s.muteUserList.includes(viewer));
    expect((await rejection(mm.sendGroupMessage({ groupId, data: 'x', type: 10001 }))).code).toBe(442);
    await gmA.cancelMuteUser({ groupId, userList: [viewer] });
    expect((await gmA.listMuteUsers(groupId)).muteUserList).toEqual([]);
    // muteAll with a whitelist: the whitelisted user may still send.
    await gmA.muteAll(groupId, [viewer]);
    expect((await gmA.listMuteUsers(groupId)).whiteUserList).toEqual([viewer]);
    await mm.sendGroupMessage({ groupId, data: 'whitelisted', type: 10001 });
    await gmA.cancelMuteAll(groupId);
    expect((await rejection(gmM.muteAll(groupId))).code).toBe(403);
    expect((await rejection(gmM.listMuteUsers(groupId))).code).toBe(403);

    // leaveGroup: memberchange with the leaver; then sending is 425.
    await gmM.leaveGroup(groupId);
    await members.next((_g, _n, _j, leaves) => leaves.some((u) => u.userId === viewer));
    expect((await rejection(mm.sendGroupMessage({ groupId, data: 'x', type: 10001 }))).code).toBe(ImErrorCode.NOT_JOINED);
    expect((await rejection(gmM.leaveGroup(groupId))).code).toBe(425);

    // closeGroup: members get exit(groupId, 1); the group refuses joins (441).
    await gmM.joinGroup(groupId);
    const exits = new Recorder<[string, number]>();
    gmM.on('exit', exits.fn);
    expect((await rejection(gmM.closeGroup(groupId))).code).toBe(403);
    await gmA.closeGroup(groupId);
    expect(await exits.next()).toEqual([groupId, 1]);
    expect((await rejection(gmM.joinGroup(groupId))).code).toBe(ImErrorCode.GROUP_CLOSED);
    expect((await gmA.queryGroup(groupId)).closed).toBe(true);
  });

  it('checks its arguments locally with 400', async () => {
    const e = await loggedIn(uid('args'));
    const gm = e.getGroupManager();
    expect((await rejection(gm.joinGroup(''))).code).toBe(400);
    expect((await rejection(gm.muteUser({ groupId: 'g', userList: 'x' as unknown as string[] }))).code).toBe(400);
    expect((await rejection(gm.listGroupUser({ groupId: 'g', sortType: 7 }))).code).toBe(400);
    expect((await rejection(gm.joinGroup('bad id!'))).code).toBe(400);
  });
});
