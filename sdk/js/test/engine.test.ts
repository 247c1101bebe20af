// Engine life cycle against the real server: init checks, login, events,
// the states before init/login, logout and unInit.
import { describe, expect, it } from 'vitest';
import { ImEngine, ImErrorCode, ImLogLevel } from '../src/index.js';
import { Recorder, loggedIn, newEngine, rejection, server, token, uid } from './helpers.js';

describe('init', () => {
  it('createEngine is a singleton; new ImEngine is independent', () => {
    expect(ImEngine.createEngine()).toBe(ImEngine.createEngine());
    expect(new ImEngine()).not.toBe(ImEngine.createEngine());
  });

  it('rejects a second init with 1001', async () => {
    const e = await newEngine();
    const c = token('x');
    const err = await rejection(e.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.NONE }));
    expect(err.code).toBe(1001);
    expect(err.msg).toMatch(/already/);
  });

  it.each([
    ['no appId', { appSign: 'lim1.x' }],
    ['bad appId', { appId: 'bad id!', appSign: 'lim1.x' }],
    ['garbage appSign', { appId: 'demo', appSign: 'nope' }],
    ['appSign of another app', { appId: 'other' }],
    ['empty appSign', { appId: 'demo', appSign: '' }],
    ['heartbeatTimeout out of range', { appId: 'demo', heartbeatTimeout: 5 }],
    ['bad serverUrl', { appId: 'demo', appSign: 'lim1.x', serverUrl: 'http://x' }],
  ])('rejects bad configuration with -2: %s', async (_name, opts) => {
    const c = token('x');
    const e = new ImEngine();
    const full = { appSign: c.appSign, ...opts } as Parameters<ImEngine['init']>[0];
    const err = await rejection(e.init(full));
    expect(err.code).toBe(-2);
    expect(e.isInitialized).toBe(false);
  });

  it('accepts deviceId, locateFile and a serverUrl override', async () => {
    const c = token('x');
    const e = new ImEngine();
    await e.init({
      deviceId: 'device-1',
      appId: c.appId,
      appSign: 'not-an-appsign-but-serverUrl-given',
      serverUrl: server.wsUrl,
      logLevel: ImLogLevel.NONE,
      locateFile: (url: string) => url,
    });
    const u = uid('srv');
    const cu = token(u);
    await e.login({ user: { userId: u, userExtension: '{}' }, userAuth: cu.auth });
    expect(e.isLoggedIn).toBe(true);
    e.unInit();
  });
});

describe('state errors', () => {
  it('rejects calls before init with 601 and before login with 602', async () => {
    const e = new ImEngine();
    const gm = e.getGroupManager();
    const mm = e.getMessageManager();
    expect((await rejection(gm.queryGroup('g1'))).code).toBe(ImErrorCode.SDK_INVALID_STATE);
    expect((await rejection(e.login({ user: { userId: 'u' }, userAuth: token('u').auth }))).code).toBe(601);
    expect((await rejection(e.logout())).code).toBe(601);
    const c = token('x');
    await e.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.NONE });
    expect((await rejection(gm.joinGroup('g1'))).code).toBe(ImErrorCode.SDK_NOT_LOGGED_IN);
    expect((await rejection(mm.sendGroupMessage({ groupId: 'g1', data: 'x', type: 10001 }))).code).toBe(602);
    expect((await rejection(e.logout())).code).toBe(602);
    e.unInit();
  });
});

describe('login', () => {
  it('emits connecting then connectsuccess, and 304 on a second login', async () => {
    const e = await newEngine();
    const order: string[] = [];
    e.on('connecting', () => order.push('connecting'));
    e.on('connectsuccess', () => order.push('connectsuccess'));
    const u = uid('login');
    const c = token(u);
    await e.login({ user: { userId: u, userExtension: '{"nick":"n"}' }, userAuth: c.auth });
    expect(order).toEqual(['connecting', 'connectsuccess']);
    expect(e.isLoggedIn).toBe(true);
    const err = await rejection(e.login({ user: { userId: u }, userAuth: c.auth }));
    expect(err.code).toBe(ImErrorCode.ALREADY_LOGGED_IN);
  });

  it('rejects a bad token with 401 and emits connectfailed', async () => {
    const e = await newEngine();
    const failed = new Recorder<[{ code: number; msg: string; message: string }]>();
    e.on('connectfailed', failed.fn);
    const u = uid('bad');
    const c = token(u);
    const err = await rejection(e.login({ user: { userId: u }, userAuth: { ...c.auth, token: '0'.repeat(64) } }));
    expect(err.code).toBe(ImErrorCode.UNAUTHORIZED);
    expect(failed.calls.length).toBe(1);
    expect(failed.calls[0]?.[0].code).toBe(401);
    expect(typeof failed.calls[0]?.[0].message).toBe('string');
    expect(e.isLoggedIn).toBe(false);
    // The engine can log in afterwards with good credentials.
    await e.login({ user: { userId: u }, userAuth: c.auth });
    expect(e.isLoggedIn).toBe(true);
  });

  it('rejects with 503 and connectfailed when the gateway is unreachable', async () => {
    const c = token('x');
    const e = new ImEngine();
    await e.init({ appId: c.appId, appSign: c.appSign, serverUrl: 'ws://127.0.0.1:1/ws', logLevel: ImLogLevel.NONE });
    const failed = new Recorder<[{ code: number }]>();
    e.on('connectfailed', failed.fn);
    const err = await rejection(e.login({ user: { userId: 'u1' }, userAuth: c.auth }));
    expect(err.code).toBe(ImErrorCode.UNAVAILABLE);
    expect(failed.calls.length).toBe(1);
    e.unInit();
  });

  it('rejects a login with no user with 400', async () => {
    const e = await newEngine();
    const err = await rejection(e.login({} as Parameters<ImEngine['login']>[0]));
    expect(err.code).toBe(400);
  });
});

describe('logout and unInit', () => {
  it('logout emits disconnect(1); unInit allows init again', async () => {
    const u = uid('out');
    const e = await loggedIn(u);
    const disc = new Recorder<[number]>();
    e.on('disconnect', disc.fn);
    await e.logout();
    expect(disc.calls).toEqual([[1]]);
    expect(e.isLoggedIn).toBe(false);
    expect((await rejection(e.getGroupManager().queryGroup('x'))).code).toBe(602);
    e.unInit();
    expect(e.isInitialized).toBe(false);
    const c = token(u);
    await e.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.NONE });
    await e.login({ user: { userId: u }, userAuth: c.auth });
    expect(e.isLoggedIn).toBe(true);
  });
});
