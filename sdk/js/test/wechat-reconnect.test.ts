// The WeChat transport's reconnect triggers, wx.onAppShow and
// wx.onNetworkStatusChange, through a fake `wx` whose sockets are real ones
// to the real server. The reconnect backoff is set far longer than the tests
// wait (first retry after 30-60 s) and heartbeats far apart (every 40 s), so
// only the triggers can bring a session back in time.
import { afterEach, describe, expect, it } from 'vitest';
import { type ImEngine, type ImGroupInfo, type ImMessage, ImMessageLevel, type Wx } from '../src/index.js';
import { type FakeWx, fakeWx } from './fake-wx.js';
import { Recorder, loggedIn, uid, waitFor } from './helpers.js';

const SLOW_BACKOFF = { initialDelayMs: 60_000, maxDelayMs: 60_000 };
const QUIET_HEARTBEAT = 120;

const g = globalThis as { wx?: Wx };
afterEach(() => {
  delete g.wx;
});

interface Room {
  wx: FakeWx;
  sender: ImEngine;
  me: ImEngine;
  groupId: string;
  got: Recorder<[ImMessage, string]>;
  connecting: Recorder<[]>;
  reconnected: Recorder<[ImGroupInfo[]]>;
}

/** room logs a sender in over Node's transport, then a mini-program user over the fake wx; both join one group. */
async function room(): Promise<Room> {
  const sender = await loggedIn(uid('sender'), { role: 'admin' }); // before wx exists
  const groupId = uid('room');
  await sender.getGroupManager().createGroup({ groupId, groupName: 'wx', groupMeta: '' });
  await sender.getGroupManager().joinGroup(groupId);
  const wx = fakeWx();
  g.wx = wx;
  const me = await loggedIn(uid('mini'), { extra: { heartbeatTimeout: QUIET_HEARTBEAT, reconnect: SLOW_BACKOFF } });
  await me.getGroupManager().joinGroup(groupId);
  const got = new Recorder<[ImMessage, string]>();
  me.getMessageManager().on('recvgroupmessage', got.fn);
  const connecting = new Recorder<[]>();
  me.on('connecting', connecting.fn);
  const reconnected = new Recorder<[ImGroupInfo[]]>();
  me.on('reconnectsuccess', reconnected.fn);
  expect(wx.urls.length).toBe(1);
  expect(wx.listening()).toEqual({ appShow: 1, network: 1 });
  return { wx, sender, me, groupId, got, connecting, reconnected };
}

/** highWhileAway sends a HIGH message and returns its ID. */
function highWhileAway(r: Room): Promise<string> {
  return r.sender.getMessageManager().sendGroupMessage({ groupId: r.groupId, data: 'while away', type: 10001, level: ImMessageLevel.HIGH });
}

describe('WeChat reconnect triggers', () => {
  it('wx.onAppShow: a reconnect waiting out its backoff starts at once', async () => {
    const r = await room();
    r.wx.cut(); // what WeChat does to a backgrounded mini-program's sockets
    await waitFor(() => expect(r.wx.closes).toBe(1));
    const id = await highWhileAway(r);
    expect(r.wx.urls.length).toBe(1); // waiting 30-60 s

    r.wx.show();
    expect(r.wx.urls.length).toBe(2); // connecting already
    r.wx.show();
    r.wx.network(true);
    expect(r.wx.urls.length).toBe(2); // one attempt at a time

    const [infos] = await r.reconnected.next(() => true, 15_000);
    expect(infos.map((i) => i.groupId)).toEqual([r.groupId]);
    await waitFor(() => expect(r.got.calls.map(([m]) => m.messageId)).toEqual([id]));
    expect(r.me.isLoggedIn).toBe(true);
  });

  it('wx.onNetworkStatusChange: the network back reconnects at once; losing it does nothing', async () => {
    const r = await room();
    r.wx.cut();
    await waitFor(() => expect(r.wx.closes).toBe(1));
    const id = await highWhileAway(r);

    r.wx.network(false);
    expect(r.wx.urls.length).toBe(1);
    r.wx.network(true, '4g');
    expect(r.wx.urls.length).toBe(2);

    await r.reconnected.next(() => true, 15_000);
    await waitFor(() => expect(r.got.calls.map(([m]) => m.messageId)).toEqual([id]));
  });

  it('a link that went silent in the background is checked when the app is shown, and replaced', async () => {
    const r = await room();
    r.wx.stall(); // no close event, nothing comes through
    const id = await highWhileAway(r);
    const started = Date.now();

    const pings = r.wx.pings;
    r.wx.show();
    expect(r.wx.pings).toBe(pings + 1); // first a ping on the link it has
    expect(r.wx.urls.length).toBe(1);

    await r.reconnected.next(() => true, 15_000);
    // The 5 s ping, then a connect; heartbeats alone would take 40 s or more.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.wx.urls.length).toBe(2);
    await waitFor(() => expect(r.got.calls.map(([m]) => m.messageId)).toEqual([id]));
  });

  it('a link that answers the check is kept', async () => {
    const r = await room();
    const pings = r.wx.pings;
    const pongs = r.wx.pongs;

    r.wx.show();
    expect(r.wx.pings).toBe(pings + 1);
    await waitFor(() => expect(r.wx.pongs).toBe(pongs + 1)); // answered: the check is over
    r.wx.network(true, 'wifi');
    expect(r.wx.pings).toBe(pings + 2);
    await waitFor(() => expect(r.wx.pongs).toBe(pongs + 2));

    const id = await r.me.getMessageManager().sendGroupMessage({ groupId: r.groupId, data: 'still here', type: 10001 });
    await r.got.next((m) => m.messageId === id);
    expect(r.wx.urls.length).toBe(1);
    expect(r.connecting.calls).toEqual([]);
  });

  it('listens only while logged in', async () => {
    const r = await room();
    await r.me.logout();
    expect(r.wx.listening()).toEqual({ appShow: 0, network: 0 });
    r.wx.show();
    r.wx.network(true);
    expect(r.wx.urls.length).toBe(1);
    expect(r.connecting.calls).toEqual([]);
  });
});
