// HIGH recovery across a forced reconnect: the receiver's socket is cut and
// new connections refused for a while, during which another engine sends
// HIGH messages; the SDK reconnects with backoff, logs in, rejoins, resumes,
// and delivers every HIGH message once, in order.
import { describe, expect, it } from 'vitest';
import { ImMessageLevel, type ImGroupInfo, type ImMessage } from '../src/index.js';
import { Recorder, loggedIn, sleep, uid, waitFor } from './helpers.js';
import { CuttableTransport } from './transport-ws.js';

describe('reconnect', () => {
  it('rejoins and recovers missed HIGH messages without gap or duplicate', async () => {
    const senderId = uid('sender');
    const receiverId = uid('receiver');
    const sender = await loggedIn(senderId, { role: 'admin' });
    const groupId = uid('room');
    await sender.getGroupManager().createGroup({ groupId, groupName: 'Resume', groupMeta: '' });
    await sender.getGroupManager().joinGroup(groupId);

    const net = new CuttableTransport();
    const receiver = await loggedIn(receiverId, { extra: { transport: net.factory, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } } });
    const events: string[] = [];
    receiver.on('connecting', () => events.push('connecting'));
    receiver.on('connectfailed', () => events.push('connectfailed'));
    receiver.on('connectsuccess', () => events.push('connectsuccess'));
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    receiver.on('reconnectsuccess', reconnected.fn);
    const disconnects = new Recorder<[number]>();
    receiver.on('disconnect', disconnects.fn);
    const got = new Recorder<[ImMessage, string]>();
    receiver.getMessageManager().on('recvgroupmessage', got.fn);
    await receiver.getGroupManager().joinGroup(groupId);

    const mm = sender.getMessageManager();
    const sent: string[] = [];
    const send = async (n: number, gapMs: number) => {
      for (let i = 0; i < n; i++) {
        sent.push(await mm.sendGroupMessage({ groupId, data: `h${sent.length}`, type: 10001, level: ImMessageLevel.HIGH }));
        if (gapMs > 0) await sleep(gapMs);
      }
    };
    await send(10, 0);
    await waitFor(() => expect(got.calls.length).toBe(10));

    // Cut the network and keep it down for 1.5 s while 100 HIGH messages go out.
    const lost = new Recorder<[]>();
    receiver.on('connecting', lost.fn);
    net.block(1500);
    net.cut();
    const sending = send(100, 20);
    // A request made while reconnecting waits for the session to come back.
    await lost.next();
    const queried = receiver.getGroupManager().queryGroup(groupId);
    await sending;
    await reconnected.next(() => true, 20_000);
    expect((await queried).groupId).toBe(groupId);
    await send(10, 0);

    await waitFor(() => expect(got.calls.length).toBe(sent.length), 20_000);
    await sleep(300); // nothing more may arrive
    const ids = got.calls.map(([m]) => m.messageId);
    expect(ids).toEqual(sent);
    const seqs = got.calls.map(([m]) => m.seqnum);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[0] ?? 0) + i);
    expect(got.calls.every(([m, g]) => g === groupId && m.level === ImMessageLevel.HIGH)).toBe(true);

    expect(net.refused).toBeGreaterThan(0);
    expect(events.filter((e) => e === 'connectfailed').length).toBe(net.refused);
    expect(events.at(-1)).toBe('connectsuccess');
    expect(reconnected.calls.length).toBe(1);
    expect(reconnected.calls[0]?.[0].map((g) => g.groupId)).toEqual([groupId]);
    expect(disconnects.calls).toEqual([]);
    expect(receiver.isLoggedIn).toBe(true);

    // The session goes on: the receiver can still send to the rejoined group.
    await receiver.getMessageManager().sendGroupMessage({ groupId, data: 'back', type: 10001 });
  });

  it('recovers HIGH messages of several groups and keeps NORMAL ones flowing', async () => {
    const senderId = uid('sender');
    const sender = await loggedIn(senderId, { role: 'admin' });
    const groups = [uid('g'), uid('g')];
    for (const g of groups) {
      await sender.getGroupManager().createGroup({ groupId: g, groupName: g, groupMeta: '' });
      await sender.getGroupManager().joinGroup(g);
    }
    const net = new CuttableTransport();
    const receiver = await loggedIn(uid('receiver'), { extra: { transport: net.factory, reconnect: { initialDelayMs: 100, maxDelayMs: 400 } } });
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    receiver.on('reconnectsuccess', reconnected.fn);
    const got = new Recorder<[ImMessage, string]>();
    receiver.getMessageManager().on('recvgroupmessage', got.fn);
    for (const g of groups) await receiver.getGroupManager().joinGroup(g);

    const mm = sender.getMessageManager();
    net.block(800);
    net.cut();
    const high: string[] = [];
    for (let i = 0; i < 30; i++) {
      const g = groups[i % 2] as string;
      high.push(await mm.sendGroupMessage({ groupId: g, data: `x${i}`, type: 10001, level: ImMessageLevel.HIGH }));
      await sleep(30);
    }
    await reconnected.next(() => true, 20_000);
    const normal = await mm.sendGroupMessage({ groupId: groups[0] as string, data: 'normal', type: 10001 });
    await waitFor(() => expect(got.calls.some(([m]) => m.messageId === normal)).toBe(true));
    const highGot = got.calls.filter(([m]) => m.level === ImMessageLevel.HIGH).map(([m]) => m.messageId);
    expect([...highGot].sort()).toEqual([...high].sort());
    expect(new Set(highGot).size).toBe(highGot.length);
    for (const g of groups) {
      const seqs = got.calls.filter(([m]) => m.groupId === g && m.level === ImMessageLevel.HIGH).map(([m]) => m.seqnum);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    }
    expect(reconnected.calls[0]?.[0].map((g) => g.groupId).sort()).toEqual([...groups].sort());
  });

  it('tells of messages deleted while away and never brings them back', async () => {
    const sender = await loggedIn(uid('sender'), { role: 'admin' });
    const groupId = uid('room');
    await sender.getGroupManager().createGroup({ groupId, groupName: 'Deletes', groupMeta: '' });
    await sender.getGroupManager().joinGroup(groupId);
    const net = new CuttableTransport();
    const receiver = await loggedIn(uid('receiver'), { extra: { transport: net.factory, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } } });
    const got = new Recorder<[ImMessage, string]>();
    receiver.getMessageManager().on('recvgroupmessage', got.fn);
    const deleted = new Recorder<[string, string]>();
    receiver.getMessageManager().on('deletegroupmessage', deleted.fn);
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    receiver.on('reconnectsuccess', reconnected.fn);
    await receiver.getGroupManager().joinGroup(groupId);

    const mm = sender.getMessageManager();
    const seen = await mm.sendGroupMessage({ groupId, data: 'seen, then deleted while away', type: 10001 });
    await waitFor(() => expect(got.calls.length).toBe(1));

    net.block(1500);
    net.cut();
    const missed = await mm.sendGroupMessage({ groupId, data: 'HIGH, deleted while away', type: 10001, level: ImMessageLevel.HIGH });
    const kept = await mm.sendGroupMessage({ groupId, data: 'HIGH, kept', type: 10001, level: ImMessageLevel.HIGH });
    await mm.deleteMessage({ groupId, messageId: seen });
    await mm.deleteMessage({ groupId, messageId: missed });
    await reconnected.next(() => true, 20_000);

    await waitFor(() => expect(deleted.calls.map(([id]) => id)).toEqual([seen, missed]), 10_000);
    expect(deleted.calls.every(([, g]) => g === groupId)).toBe(true);
    await waitFor(() => expect(got.calls.map(([m]) => m.messageId)).toEqual([seen, kept]), 10_000);
  });
});
