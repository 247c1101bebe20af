// tokenexpired with short-lived tokens from the real CLI (`--ttl 20s`): the
// SDK asks shortly before expiry, the app hands new credentials, the SDK
// sends RefreshTokenRequest and the session goes on, across a reconnect too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImAuth, ImGroupInfo, ImTokenCallback } from '../src/index.js';
import { Recorder, newEngine, server, sleep, token, uid, waitFor } from './helpers.js';
import { type RunningLiveim, startLiveim } from './setup/server.js';
import { CuttableTransport } from './transport-ws.js';

// This file runs its own server: RefreshTokenRequest is the one request
// no other test sends, and a server that mishandles it must not take the
// other suites down with it.
let own: RunningLiveim;
beforeAll(async () => {
  own = await startLiveim(server.bin, server.tmp);
});
afterAll(async () => {
  await own?.stop();
});

describe('tokenexpired', () => {
  it('asks for a new token before expiry; the session continues past the old expiry', async () => {
    const u = uid('short');
    const net = new CuttableTransport();
    const e = await newEngine({ transport: net.factory, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } }, own);
    const asked: number[] = [];
    let fresh: ImAuth | undefined;
    e.on('tokenexpired', (cb: ImTokenCallback) => {
      asked.push(Date.now());
      fresh = token(u, { ttl: '1h' }, own).auth;
      cb(null, fresh);
    });
    const failed = new Recorder<[{ code: number }]>();
    e.on('connectfailed', failed.fn);
    const first = token(u, { ttl: '20s' }, own);
    const start = Date.now();
    await e.login({ user: { userId: u, userExtension: '' }, userAuth: first.auth });
    const connecting = new Recorder<[]>();
    e.on('connecting', connecting.fn);

    // Lifetime 20 s, so the SDK asks halfway: about 10 s after login.
    await waitFor(() => expect(asked.length).toBe(1), 20_000, 100);
    const after = ((asked[0] ?? 0) - start) / 1000;
    expect(after).toBeGreaterThan(5);
    expect(after).toBeLessThan(15);
    // The SDK sent RefreshTokenRequest; the connection must stay up.
    await sleep(1000);
    expect(connecting.calls.length, 'the connection dropped after RefreshTokenRequest').toBe(0);
    expect(failed.calls, 'RefreshTokenRequest was refused').toEqual([]);

    // Past the first token's expiry the session still works...
    const waitMs = first.auth.timestamp * 1000 - Date.now() + 1500;
    await sleep(Math.max(0, waitMs));
    const groups = e.getGroupManager();
    await expect(groups.listRecentGroupUser(uid('nogroup'))).rejects.toMatchObject({ code: 440 });
    // ...and a reconnect logs in with the refreshed credentials.
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    e.on('reconnectsuccess', reconnected.fn);
    net.cut();
    await reconnected.next(() => true, 15_000);
    expect(failed.calls).toEqual([]);
    expect(asked.length).toBe(1); // the refreshed token lasts an hour
    expect(e.isLoggedIn).toBe(true);
  });

  it('without new credentials the session ends at expiry with disconnect(5)', async () => {
    const u = uid('lapse');
    const e = await newEngine({}, own);
    let asked = 0;
    e.on('tokenexpired', (cb: ImTokenCallback) => {
      asked++;
      cb(new Error('the app server is down'));
    });
    const disconnects = new Recorder<[number]>();
    e.on('disconnect', disconnects.fn);
    const creds = token(u, { ttl: '6s' }, own);
    await e.login({ user: { userId: u, userExtension: '' }, userAuth: creds.auth });
    const [code] = await disconnects.next(() => true, 20_000);
    expect(code).toBe(5);
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(creds.auth.timestamp);
    expect(asked).toBeGreaterThanOrEqual(2); // before expiry, and once more when the server ended the session
    expect(e.isLoggedIn).toBe(false);
  });

  it('new credentials after the server ended the session log in again', async () => {
    const u = uid('late');
    const net = new CuttableTransport();
    const e = await newEngine({ transport: net.factory, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } }, own);
    const first = token(u, { ttl: '6s' }, own);
    let asked = 0;
    e.on('tokenexpired', (cb: ImTokenCallback) => {
      asked++;
      // Refuse until the first token has expired, then answer.
      if (Date.now() / 1000 < first.auth.timestamp) cb(new Error('not yet'));
      else cb(null, token(u, { ttl: '1h' }, own).auth);
    });
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    e.on('reconnectsuccess', reconnected.fn);
    const disconnects = new Recorder<[number]>();
    e.on('disconnect', disconnects.fn);
    await e.login({ user: { userId: u, userExtension: '' }, userAuth: first.auth });
    await reconnected.next(() => true, 30_000);
    expect(asked).toBeGreaterThanOrEqual(2);
    expect(disconnects.calls).toEqual([]);
    expect(e.isLoggedIn).toBe(true);
  });
});
