// Every message operation and message event against the real server.
import { describe, expect, it } from 'vitest';
import { ImErrorCode, ImMessageLevel, ImSortType, type ImMessage } from '../src/index.js';
import { Recorder, loggedIn, rejection, uid, waitFor } from './helpers.js';
import { CuttableTransport } from './transport-ws.js';

const CHAT = 10001;
const LIKE = 10002;

async function room() {
  const ownerId = uid('owner');
  const viewerId = uid('viewer');
  const owner = await loggedIn(ownerId, { role: 'admin' });
  const viewer = await loggedIn(viewerId);
  const groupId = uid('room');
  await owner.getGroupManager().createGroup({ groupId, groupName: 'Messages', groupMeta: '' });
  await owner.getGroupManager().joinGroup(groupId);
  await viewer.getGroupManager().joinGroup(groupId);
  return { owner, viewer, ownerId, viewerId, groupId };
}

describe('message manager', () => {
  it('sends and receives group messages with every option', async () => {
    const { owner, viewer, ownerId, groupId } = await room();
    const got = new Recorder<[ImMessage, string]>();
    viewer.getMessageManager().on('recvgroupmessage', got.fn);
    const echo = new Recorder<[ImMessage, string]>();
    owner.getMessageManager().on('recvgroupmessage', echo.fn);
    const mmO = owner.getMessageManager();

    const id = await mmO.sendGroupMessage({
      groupId,
      data: '{"text":"hello ✓"}',
      type: CHAT,
      skipAudit: false,
      skipMuteCheck: false,
      level: ImMessageLevel.NORMAL,
      noStorage: false,
      repeatCount: 1,
    });
    expect(typeof id).toBe('string');
    const [msg, g] = await got.next((m) => m.messageId === id);
    expect(g).toBe(groupId);
    expect(msg).toMatchObject({
      messageId: id,
      groupId,
      type: CHAT,
      sender: { userId: ownerId, userExtension: JSON.stringify({ nick: ownerId }) },
      data: '{"text":"hello ✓"}',
      level: ImMessageLevel.NORMAL,
      repeatCount: 1,
      totalMsgs: 1,
    });
    expect(msg.seqnum).toBeGreaterThan(0);
    expect(Math.abs(msg.timestamp - Date.now())).toBeLessThan(60_000);
    // The sender's own session gets the echo.
    await echo.next((m) => m.messageId === id);

    // repeatCount: one delivery standing for 5; counted 5 times.
    const likeId = await mmO.sendGroupMessage({ groupId, data: '❤', type: LIKE, repeatCount: 5, noStorage: true });
    const [like] = await got.next((m) => m.messageId === likeId);
    expect(like.repeatCount).toBe(5);
    expect(like.totalMsgs).toBe(5);
    const stats = (await owner.getGroupManager().queryGroup(groupId)).statistics;
    expect(stats.msgAmount[LIKE]).toBe(5);
    expect(stats.msgAmount[CHAT]).toBe(1);

    // HIGH carries a seqnum above the earlier ones.
    const highId = await mmO.sendGroupMessage({ groupId, data: 'important', type: CHAT, level: ImMessageLevel.HIGH });
    const [high] = await got.next((m) => m.messageId === highId);
    expect(high.level).toBe(ImMessageLevel.HIGH);
    expect(high.seqnum).toBeGreaterThan(msg.seqnum);

    // noStorage messages are not in history.
    const recent = await viewer.getMessageManager().listRecentMessage({ groupId });
    expect(recent.groupId).toBe(groupId);
    expect(recent.messageList.map((m) => m.messageId)).toEqual([id, highId]);
    expect(recent.messageList[0]?.sender.userId).toBe(ownerId);

    // Errors: 400 for a system type, 413 for big data, 425 when not joined.
    expect((await rejection(mmO.sendGroupMessage({ groupId, data: 'x', type: 100 }))).code).toBe(400);
    expect((await rejection(mmO.sendGroupMessage({ groupId, data: 'x'.repeat(16 * 1024), type: CHAT }))).code).toBe(ImErrorCode.TOO_LARGE);
    const outsider = await loggedIn(uid('outsider'));
    const err = await rejection(outsider.getMessageManager().sendGroupMessage({ groupId, data: 'x', type: CHAT }));
    expect(err.code).toBe(ImErrorCode.NOT_JOINED);
    expect(err.msg).not.toBe('');
    expect((await rejection(mmO.sendGroupMessage({ groupId, data: 'x', type: CHAT, level: 5 }))).code).toBe(400);
  });

  it('sends C2C messages; 424 when the receiver is offline', async () => {
    const aId = uid('a');
    const bId = uid('b');
    const a = await loggedIn(aId);
    const b = await loggedIn(bId);
    const got = new Recorder<[ImMessage]>();
    b.getMessageManager().on('recvc2cmessage', got.fn);
    const id = await a.getMessageManager().sendC2cMessage({
      receiverId: bId,
      data: 'psst',
      type: 88888,
      skipAudit: false,
      level: ImMessageLevel.NORMAL,
    });
    const [m] = await got.next((x) => x.messageId === id);
    expect(m).toMatchObject({ messageId: id, groupId: '', type: 88888, data: 'psst', sender: { userId: aId }, seqnum: 0 });
    const err = await rejection(a.getMessageManager().sendC2cMessage({ receiverId: uid('nobody'), data: 'x', type: 88888 }));
    expect(err.code).toBe(ImErrorCode.RECEIVER_OFFLINE);
  });

  it('deletes and recalls messages; members get deletegroupmessage', async () => {
    const { owner, viewer, groupId } = await room();
    const mmO = owner.getMessageManager();
    const mmV = viewer.getMessageManager();
    const deleted = new Recorder<[string, string]>();
    mmV.on('deletegroupmessage', deleted.fn);
    const a = await mmO.sendGroupMessage({ groupId, data: 'to delete', type: CHAT });
    const b = await mmV.sendGroupMessage({ groupId, data: 'to recall', type: CHAT });
    const c = await mmO.sendGroupMessage({ groupId, data: 'owner keeps', type: CHAT });
    // A member may not delete someone else's message.
    expect((await rejection(mmV.deleteMessage({ groupId, messageId: c }))).code).toBe(ImErrorCode.FORBIDDEN);
    await mmO.deleteMessage({ groupId, messageId: a });
    expect(await deleted.next()).toEqual([a, groupId]);
    await mmV.deleteMessage({ groupId, messageId: b }); // recall within the window
    await deleted.next((id) => id === b);
    expect((await rejection(mmO.deleteMessage({ groupId, messageId: a }))).code).toBe(400);
    const recent = await mmV.listRecentMessage({ groupId });
    expect(recent.messageList.map((m) => m.messageId)).toEqual([c]);
  });

  it('lists recent, all and history messages with paging', async () => {
    const { owner, viewer, groupId } = await room();
    const mmO = owner.getMessageManager();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await mmO.sendGroupMessage({ groupId, data: `m${i}`, type: i % 2 === 0 ? CHAT : LIKE }));

    // listRecentMessage: oldest first; seqnum pages backwards.
    const recent = await viewer.getMessageManager().listRecentMessage({ groupId, pageSize: 3 });
    expect(recent.messageList.map((m) => m.data)).toEqual(['m4', 'm5', 'm6']);
    const older = await viewer.getMessageManager().listRecentMessage({ groupId, seqnum: recent.messageList[0]?.seqnum ?? 0, pageSize: 50 });
    expect(older.messageList.map((m) => m.data)).toEqual(['m0', 'm1', 'm2', 'm3']);

    // listMessage: owner/admins; ASC by default; token continues; type filters.
    const p1 = await mmO.listMessage({ groupId, pageSize: 4 });
    expect(p1.messageList.map((m) => m.data)).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(p1.hasMore).toBe(true);
    const p2 = await mmO.listMessage({ groupId, pageSize: 4, nextPageToken: p1.nextPageToken });
    expect(p2.messageList.map((m) => m.data)).toEqual(['m4', 'm5', 'm6']);
    expect(p2.hasMore).toBe(false);
    const numeric = await mmO.listMessage({ groupId, pageSize: 10, nextPageToken: Number(p1.nextPageToken) });
    expect(numeric.messageList.map((m) => m.data)).toEqual(['m4', 'm5', 'm6']);
    const desc = await mmO.listMessage({ groupId, type: CHAT, pageSize: 10, sortType: ImSortType.DESC });
    expect(desc.messageList.map((m) => m.data)).toEqual(['m6', 'm4', 'm2', 'm0']);
    expect((await rejection(viewer.getMessageManager().listMessage({ groupId }))).code).toBe(403);
    expect((await rejection(mmO.listMessage({ groupId, pageSize: 31 }))).code).toBe(400);

    // listHistoryMessage: no membership needed; 0 bounds are open; a range in seconds.
    const stranger = await loggedIn(uid('stranger'));
    const mmS = stranger.getMessageManager();
    const all = await mmS.listHistoryMessage({ groupId, pageSize: 30, beginTime: 0, endTime: 0 });
    expect(all.messageList.map((m) => m.data)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    const nowSec = Math.floor(Date.now() / 1000);
    const ranged = await mmS.listHistoryMessage({ groupId, type: LIKE, pageSize: 2, sortType: ImSortType.ASC, beginTime: nowSec - 3600, endTime: nowSec + 60 });
    expect(ranged.messageList.map((m) => m.data)).toEqual(['m1', 'm3']);
    expect(ranged.hasMore).toBe(true);
    const rest = await mmS.listHistoryMessage({ groupId, type: LIKE, pageSize: 2, nextpagetoken: ranged.nextPageToken, beginTime: nowSec - 3600 });
    expect(rest.messageList.map((m) => m.data)).toEqual(['m5']);
    const future = await mmS.listHistoryMessage({ groupId, beginTime: nowSec + 3600 });
    expect(future.messageList).toEqual([]);
  });

  it('delivers concurrent sends once each, in seqnum order', async () => {
    const { owner, viewer, groupId } = await room();
    const got = new Recorder<[ImMessage, string]>();
    viewer.getMessageManager().on('recvgroupmessage', got.fn);
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) => owner.getMessageManager().sendGroupMessage({ groupId, data: `n${i}`, type: CHAT })),
    );
    await waitFor(() => expect(got.calls.length).toBe(20));
    const seqs = got.calls.map(([m]) => m.seqnum);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(new Set(got.calls.map(([m]) => m.messageId))).toEqual(new Set(sent));
  });

  it('a send whose reply is lost is retried with its client message ID: stored and delivered once', async () => {
    const net = new CuttableTransport();
    const senderId = uid('sender');
    const sender = await loggedIn(senderId, { role: 'admin', extra: { transport: net.factory, requestTimeoutMs: 1500 } });
    const viewer = await loggedIn(uid('viewer'));
    const groupId = uid('room');
    await sender.getGroupManager().createGroup({ groupId, groupName: 'Retry', groupMeta: '' });
    await sender.getGroupManager().joinGroup(groupId);
    await viewer.getGroupManager().joinGroup(groupId);
    const got = new Recorder<[ImMessage, string]>();
    viewer.getMessageManager().on('recvgroupmessage', got.fn);

    net.deafen(true); // the request goes out, its reply is lost
    const sending = sender.getMessageManager().sendGroupMessage({ groupId, data: 'once', type: CHAT, level: ImMessageLevel.HIGH });
    await waitFor(() => expect(got.calls.length).toBe(1)); // the server took it
    net.deafen(false); // the SDK's retry hears the first send's reply
    const id = await sending;
    expect(id).toBe(got.calls[0]?.[0].messageId);
    const recent = await viewer.getMessageManager().listRecentMessage({ groupId });
    expect(recent.messageList.map((m) => m.data)).toEqual(['once']);
    await sender.getMessageManager().sendGroupMessage({ groupId, data: 'sentinel', type: CHAT });
    await waitFor(() => expect(got.calls.map(([m]) => m.data)).toEqual(['once', 'sentinel']));
  });
});
