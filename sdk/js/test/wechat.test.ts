// The WeChat mini-program transport over a real socket: a global `wx` whose
// connectSocket returns a SocketTask built on the `ws` package. The SDK
// must pick it by itself and work through it.
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type * as LiveIMNamespace from '../src/index.js';
import type { ImMessage, Wx } from '../src/index.js';
import { fakeWx } from './fake-wx.js';
import { Recorder, loggedIn, server, token, uid } from './helpers.js';

const g = globalThis as { wx?: Wx };
afterEach(() => {
  delete g.wx;
});

describe('WeChat transport', () => {
  it('is chosen when wx.connectSocket exists and carries a whole session', async () => {
    const wx = fakeWx();
    g.wx = wx;
    const peerId = uid('peer');
    const peer = await loggedIn(peerId, { role: 'admin' }); // also over wx
    const meId = uid('mini');
    const me = await loggedIn(meId);
    expect(wx.urls.length).toBe(2);
    expect(wx.sent).toBeGreaterThanOrEqual(2);

    const groupId = uid('room');
    await peer.getGroupManager().createGroup({ groupId, groupName: 'wx', groupMeta: '' });
    await peer.getGroupManager().joinGroup(groupId);
    const info = await me.getGroupManager().joinGroup(groupId);
    expect(info.groupId).toBe(groupId);

    const got = new Recorder<[ImMessage, string]>();
    me.getMessageManager().on('recvgroupmessage', got.fn);
    const id = await peer.getMessageManager().sendGroupMessage({ groupId, data: '来自小程序 ✓', type: 10001 });
    const [m] = await got.next((x) => x.messageId === id);
    expect(m.data).toBe('来自小程序 ✓');

    const c2c = new Recorder<[ImMessage]>();
    peer.getMessageManager().on('recvc2cmessage', c2c.fn);
    const cid = await me.getMessageManager().sendC2cMessage({ receiverId: peerId, data: 'hi', type: 10001 });
    await c2c.next((x) => x.messageId === cid);

    const disc = new Recorder<[number]>();
    me.on('disconnect', disc.fn);
    await me.logout();
    expect(disc.calls).toEqual([[1]]);
  });

  it('can be asked for explicitly, and refused when wx is missing', async () => {
    const { ImEngine } = await import('../src/index.js');
    const e = new ImEngine();
    const err = await e.init({ appId: 'demo', appSign: '', serverUrl: 'ws://127.0.0.1:1/ws', transport: 'wechat' }).catch((x: unknown) => x);
    expect(err).toMatchObject({ code: 1002 });
  });

  it('runs the browser bundle in a mini-program-like scope: require, wx, no TextEncoder, no window', async () => {
    const wx = fakeWx();
    // A fresh realm with only what a mini-program's JS engine offers.
    const mod: { exports: unknown } = { exports: {} };
    const sandbox = { wx, module: mod, exports: mod.exports, console, setTimeout, clearTimeout, setInterval, clearInterval };
    runInNewContext(readFileSync(server.iife, 'utf8'), sandbox);
    expect(runInNewContext('typeof TextEncoder + typeof window + typeof WebSocket + typeof process', sandbox)).toBe('undefinedundefinedundefinedundefined');

    // As in the hosted SDK's mini-program page: require the file, destructure.
    const { ImEngine, ImLogLevel } = mod.exports as typeof LiveIMNamespace;
    const engine = ImEngine.createEngine();
    const meId = uid('mp');
    const c = token(meId);
    await engine.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.ERROR });
    await engine.login({ user: { userId: meId, userExtension: '{"nick":"小程序"}' }, userAuth: c.auth });
    expect(wx.urls).toEqual([server.wsUrl]);

    const peerId = uid('peer');
    const peer = await loggedIn(peerId, { role: 'admin' }); // Node transport (no global wx here)
    const groupId = uid('room');
    await peer.getGroupManager().createGroup({ groupId, groupName: '直播间', groupMeta: '' });
    await peer.getGroupManager().joinGroup(groupId);
    const info = await engine.getGroupManager().joinGroup(groupId);
    expect(info.groupName).toBe('直播间');

    const got: Array<{ data: string; nick: string }> = [];
    engine.getMessageManager().on('recvgroupmessage', (msg) => got.push({ data: msg.data, nick: msg.sender.userExtension }));
    const peerGot = new Recorder<[ImMessage, string]>();
    peer.getMessageManager().on('recvgroupmessage', peerGot.fn);
    await peer.getMessageManager().sendGroupMessage({ groupId, data: '弹幕 ❤ 😀', type: 10001 });
    const mine = await engine.getMessageManager().sendGroupMessage({ groupId, data: '你好 😀', type: 10001 });
    const [m] = await peerGot.next((x) => x.messageId === mine);
    expect(m.data).toBe('你好 😀');
    expect(m.sender.userExtension).toBe('{"nick":"小程序"}');
    await expect.poll(() => got.map((x) => x.data)).toEqual(['弹幕 ❤ 😀', '你好 😀']);
    await engine.logout();
    engine.unInit();
  });
});
