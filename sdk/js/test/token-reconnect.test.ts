// A reconnect that finds the token expired (the app ignored the first
// tokenexpired, and the network was down until after the expiry) is
// refused with 401; the SDK asks again, and once the app answers it logs in
// and the session resumes.
import { describe, expect, it } from 'vitest';
import type { ImGroupInfo, ImTokenCallback } from '../src/index.js';
import { Recorder, newEngine, sleep, token, uid, waitFor } from './helpers.js';
import { CuttableTransport } from './transport-ws.js';

describe('tokenexpired on reconnect', () => {
  it('asks again when a reconnect finds the token expired, then logs in', async () => {
    const u = uid('expired');
    const net = new CuttableTransport();
    const e = await newEngine({ transport: net.factory, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
    const calls: ImTokenCallback[] = [];
    e.on('tokenexpired', (cb: ImTokenCallback) => {
      calls.push(cb);
      // The first time the app does not answer; the second time it does.
      if (calls.length >= 2) cb(null, token(u, { ttl: '1h' }).auth);
    });
    const failed = new Recorder<[{ code: number }]>();
    e.on('connectfailed', failed.fn);
    const reconnected = new Recorder<[ImGroupInfo[]]>();
    e.on('reconnectsuccess', reconnected.fn);
    const first = token(u, { ttl: '16s' });
    await e.login({ user: { userId: u }, userAuth: first.auth });
    // The SDK asks halfway through the lifetime; the app does not answer.
    await waitFor(() => expect(calls.length).toBe(1), 15_000, 100);
    // The network goes down before the expiry and comes back after it.
    const expiryMs = first.auth.timestamp * 1000;
    expect(Date.now()).toBeLessThan(expiryMs);
    net.block(expiryMs - Date.now() + 1500);
    net.cut();
    await sleep(Math.max(0, expiryMs - Date.now() + 1500));
    expect(calls.length).toBe(1);
    await reconnected.next(() => true, 30_000);
    expect(failed.calls.some(([err]) => err.code === 401)).toBe(true);
    expect(calls.length).toBe(2);
    expect(e.isLoggedIn).toBe(true);
  });
});

describe('fresh credentials refused on reconnect', () => {
  it('backs off, and ends the session when the app keeps handing out credentials the server refuses', async () => {
    // The app's backend signs with a key the server no longer takes (a
    // rotation past its grace): the refresh is refused, the session ends
    // at its token's expiry, and every login after it is 401. The SDK
    // used to ask the app and reconnect at the first delay for ever,
    // every client of the app at once, whatever maxAttempts said.
    const u = uid('refused');
    const net = new CuttableTransport();
    const e = await newEngine({ transport: net.factory, reconnect: { initialDelayMs: 100, maxDelayMs: 400 } });
    let asked = 0;
    e.on('tokenexpired', (cb: ImTokenCallback) => {
      asked++;
      const bad = token(u, { ttl: '1h' }).auth;
      cb(null, { ...bad, token: '0'.repeat(bad.token.length) });
    });
    const failed = new Recorder<[{ code: number }]>();
    e.on('connectfailed', failed.fn);
    await e.login({ user: { userId: u }, userAuth: token(u, { ttl: '6s' }).auth });
    const opened = net.opened;
    await waitFor(() => expect(e.isLoggedIn).toBe(false), 40_000, 50);
    const attempts = net.opened - opened;
    await sleep(1500); // nothing more happens once it has ended
    expect(net.opened - opened).toBe(attempts);
    expect(failed.calls.length).toBeGreaterThan(0);
    expect(failed.calls.every(([err]) => err.code === 401)).toBe(true);
    expect(attempts).toBeLessThanOrEqual(4);
    expect(asked).toBeLessThanOrEqual(6);
  });
});
