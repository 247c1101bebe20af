// A connection that goes silent without closing (a dead NAT entry, a
// suspended radio) is found by unanswered heartbeats and replaced.
import { describe, expect, it } from 'vitest';
import { ImMessageLevel, type ImGroupInfo, type ImMessage } from '../src/index.js';
import { Recorder, loggedIn, uid, waitFor } from './helpers.js';
import { CuttableTransport } from './transport-ws.js';

describe('dead link', () => {
  it('is detected by heartbeats; the SDK reconnects and resumes', async () => {
    const sender = await loggedIn(uid('sender'), { role: 'admin' });
    const groupId = uid('room');
    await sender.getGroupManager().createGroup({ groupId, groupName: 'dead', groupMeta: '' });
    await sender.getGroupManager().joinGroup(groupId);

    const net = new CuttableTransport();
    const e = await loggedIn(uid('stalled'), { extra: { heartbeatTimeout: 15, transport: net.factory, reconnect: { initialDelayMs: 100 } } });
    await e.getGroupManager().joinGroup(groupId);
    const got = new Recorder<[ImMessage, string]>();
    e.getMessageManager().on('recvgroupmessage', got.fn);
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    e.on('reconnectsuccess', reconnected.fn);

    const started = Date.now();
    net.stall();
    const id = await sender.getMessageManager().sendGroupMessage({ groupId, data: 'while stalled', type: 10001, level: ImMessageLevel.HIGH });
    await reconnected.next(() => true, 25_000);
    // Pings every 5 s; one unanswered for 5 s gives the link up.
    expect(Date.now() - started).toBeLessThan(16_000);
    await waitFor(() => expect(got.calls.map(([m]) => m.messageId)).toEqual([id]));
  });
});
