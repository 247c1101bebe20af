// Heartbeats keep an idle session alive past the server's silence timeout.
import { describe, expect, it } from 'vitest';
import { Recorder, loggedIn, sleep, uid } from './helpers.js';

describe('heartbeat', () => {
  it('keeps an idle session past heartbeatTimeout (15 s)', async () => {
    const e = await loggedIn(uid('idle'), { extra: { heartbeatTimeout: 15 } });
    const connecting = new Recorder<[]>();
    e.on('connecting', connecting.fn);
    const disc = new Recorder<[number]>();
    e.on('disconnect', disc.fn);
    await sleep(17_000);
    expect(disc.calls).toEqual([]);
    expect(connecting.calls).toEqual([]);
    await expect(e.getGroupManager().queryGroup(uid('none'))).rejects.toMatchObject({ code: 440 });
  });
});
