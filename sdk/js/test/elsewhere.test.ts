// A second login of the same user closes the older session with
// disconnect(4), and the older engine does not reconnect.
import { describe, expect, it } from 'vitest';
import { ImErrorCode } from '../src/index.js';
import { Recorder, loggedIn, rejection, sleep, uid } from './helpers.js';

describe('logged in elsewhere', () => {
  it('emits disconnect(4) on the older session and does not reconnect', async () => {
    const u = uid('twice');
    const first = await loggedIn(u);
    const disc = new Recorder<[number]>();
    first.on('disconnect', disc.fn);
    const connecting = new Recorder<[]>();
    first.on('connecting', connecting.fn);

    const second = await loggedIn(u);
    expect(await disc.next()).toEqual([4]);
    expect(first.isLoggedIn).toBe(false);
    await sleep(1500);
    expect(connecting.calls.length).toBe(0);
    expect(disc.calls.length).toBe(1);
    expect((await rejection(first.getGroupManager().queryGroup('g'))).code).toBe(ImErrorCode.SDK_NOT_LOGGED_IN);

    // The newer session is unaffected.
    expect(second.isLoggedIn).toBe(true);
    await expect(second.getGroupManager().queryGroup(uid('none'))).rejects.toMatchObject({ code: 440 });
  });
});
