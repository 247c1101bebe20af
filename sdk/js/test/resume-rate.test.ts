// A resume the server holds back (412: the app's resumes read the HIGH
// stream too fast) is asked again on the same link, the group's events held
// meanwhile: every missed HIGH message arrives once, in order, after one
// reconnect. The server keeps no HIGH message in memory (--resume-memory 1),
// so every resume reads the stream, at 40 gets a second for the app.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImGroupInfo, ImMessageLevel, type ImMessage } from '../src/index.js';
import { Recorder, loggedInOn, server, sleep, uid, waitFor } from './helpers.js';
import { type RunningLiveim, startLiveim } from './setup/server.js';
import { CuttableTransport } from './transport-ws.js';

let own: RunningLiveim;
beforeAll(async () => {
  own = await startLiveim(server.bin, server.tmp, ['--resume-memory', '1', '--resume-read-rate', '40']);
});
afterAll(async () => {
  await own?.stop();
});

describe('resume held back', () => {
  it('asks again after a 412 instead of reconnecting, and loses nothing', async () => {
    const login = (userId: string, role: 'admin' | undefined, net?: CuttableTransport) => loggedInOn(own, userId, role, net);
    const sender = await login(uid('sender'), 'admin');
    const groupId = uid('room');
    await sender.getGroupManager().createGroup({ groupId, groupName: 'Resume', groupMeta: '' });
    await sender.getGroupManager().joinGroup(groupId);
    const net = new CuttableTransport();
    const receiver = await login(uid('receiver'), undefined, net);
    const got = new Recorder<[ImMessage, string]>();
    receiver.getMessageManager().on('recvgroupmessage', got.fn);
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    receiver.on('reconnectsuccess', reconnected.fn);
    const connecting = new Recorder<[]>();
    receiver.on('connecting', connecting.fn);
    await receiver.getGroupManager().joinGroup(groupId);

    const mm = sender.getMessageManager();
    const sent: string[] = [];
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        sent.push(await mm.sendGroupMessage({ groupId, data: `h${sent.length}`, type: 10001, level: ImMessageLevel.HIGH }));
      }
    };
    await send(5);
    await waitFor(() => expect(got.calls.length).toBe(5));

    // Away while 120 HIGH messages go out: the resume needs three seconds
    // of the app's stream reads, so pages end early and then the server
    // answers 412 until reads come back.
    net.block(60_000);
    net.cut();
    await connecting.next();
    await send(120);
    net.block(0);
    await reconnected.next(() => true, 30_000);
    await waitFor(() => expect(got.calls.length).toBe(sent.length), 40_000);
    await sleep(300); // nothing more may arrive
    expect(got.calls.map(([m]) => m.messageId)).toEqual(sent);
    // One socket for the login, one for the reconnect: none for a link
    // given up over a 412.
    expect(reconnected.calls.length).toBe(1);
    expect(net.opened).toBe(2);
  });
});
