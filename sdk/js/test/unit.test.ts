// Pure pieces without a server: appSign, encodings, parameter rules,
// backoff, the error catalogue against the generated enum, HIGH tracking.
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { parseAppSign } from '../src/appsign.js';
import { backoffDelay, reconnectPolicy } from '../src/backoff.js';
import { ImError, ImErrorCode, isImError, toImError } from '../src/errors.js';
import { EventSchema, MessageLevel, MessageSchema } from '../src/gen/liveim/v1/client_pb.js';
import { ErrorCode } from '../src/gen/liveim/v1/errors_pb.js';
import { GroupTracker } from '../src/groups.js';
import { pageToken, sortType } from '../src/params.js';
import { base64UrlDecode, utf8Decode, utf8Encode } from '../src/text.js';
import { server, token } from './helpers.js';

describe('appSign', () => {
  it('reads the server-made appSign', () => {
    const c = token('x');
    const s = parseAppSign(c.appSign);
    expect(s.appId).toBe(c.appId);
    expect(s.urls).toEqual([server.wsUrl]);
  });

  it('refuses what is not one', () => {
    expect(() => parseAppSign('lim2.abc')).toThrow(/lim1/);
    expect(() => parseAppSign('lim1.!!!')).toThrow();
    const noApp = `lim1.${Buffer.from('{"u":["ws://x"]}').toString('base64url')}`;
    expect(() => parseAppSign(noApp)).toThrow(/no app/);
  });
});

describe('encodings', () => {
  it('round-trips UTF-8 like TextEncoder', () => {
    for (const s of ['', 'plain', 'héllo', '弹幕 ❤', '😀 astral', 'a\u0000b']) {
      const b = utf8Encode(s);
      expect(b).toEqual(new TextEncoder().encode(s));
      expect(utf8Decode(b)).toBe(s);
    }
    expect(() => utf8Decode(new Uint8Array([0xff]), true)).toThrow();
  });

  it('decodes base64url with and without padding', () => {
    const raw = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
    expect(base64UrlDecode(Buffer.from(raw).toString('base64url'))).toEqual(raw);
    expect(base64UrlDecode(Buffer.from(raw.slice(0, 7)).toString('base64'))).toEqual(raw.slice(0, 7));
  });
});

describe('parameters', () => {
  it('accepts page tokens the seed way', () => {
    expect(pageToken({ nextpagetoken: 12 })).toBe('12');
    expect(pageToken({ nextPageToken: '12' })).toBe('12');
    expect(pageToken({ nextPageToken: 0 })).toBe('');
    expect(pageToken({})).toBe('');
    expect(pageToken({ nextPageToken: 'abc_1', nextpagetoken: 5 })).toBe('abc_1');
    expect(sortType(undefined)).toBe(0);
    expect(() => sortType(2)).toThrow(ImError);
  });
});

describe('backoff', () => {
  it('doubles, caps and jitters', () => {
    const p = reconnectPolicy({ initialDelayMs: 100, maxDelayMs: 1000 });
    expect(backoffDelay(p, 1, () => 0)).toBe(50);
    expect(backoffDelay(p, 1, () => 0.999999)).toBe(100);
    expect(backoffDelay(p, 3, () => 0.999999)).toBe(400);
    expect(backoffDelay(p, 50, () => 0.999999)).toBe(1000);
    expect(reconnectPolicy(undefined)).toEqual({ initialDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Number.POSITIVE_INFINITY });
  });
});

describe('error catalogue', () => {
  it('holds exactly the codes of errors.proto', () => {
    const proto = Object.values(ErrorCode).filter((v): v is number => typeof v === 'number' && v !== 0).sort((a, b) => a - b);
    const sdk = Object.values(ImErrorCode).map(Number).sort((a, b) => a - b);
    expect(sdk).toEqual(proto);
  });

  it('ImError is an Error with {code, msg}', () => {
    const e = new ImError(425, 'not joined');
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(ImError);
    expect({ code: e.code, msg: e.msg, message: e.message }).toEqual({ code: 425, msg: 'not joined', message: 'not joined' });
    expect(isImError({ code: 1, msg: '' })).toBe(true);
    expect(toImError(new Error('boom')).code).toBe(500);
    expect(toImError(e)).toBe(e);
  });
});

describe('GroupTracker', () => {
  const high = (groupId: string, seqnum: number) =>
    create(MessageSchema, { groupId, seqnum: BigInt(seqnum), level: MessageLevel.HIGH });

  it('drops HIGH duplicates, passes NORMAL, resumes from the join point', () => {
    const t = new GroupTracker();
    t.joined('g', 10, 3);
    expect(t.resumeFrom('g')).toBe(10);
    expect(t.deleteFrom('g')).toBe(3);
    t.deleted('g', 5);
    t.deleted('g', 4); // an older deletion heard late changes nothing
    expect(t.deleteFrom('g')).toBe(5);
    expect(t.accept(high('g', 11))).toBe(true);
    expect(t.accept(high('g', 11))).toBe(false);
    expect(t.accept(high('g', 9))).toBe(false);
    expect(t.accept(create(MessageSchema, { groupId: 'g', seqnum: 5n }))).toBe(true);
    expect(t.resumeFrom('g')).toBe(11);
    expect(t.accept(high('other', 1))).toBe(true); // not tracked
    t.hold('g');
    expect(t.maybeHold('g', create(EventSchema, { body: { case: 'groupMessage', value: high('g', 12) } }))).toBe(true);
    expect(t.release('g').length).toBe(1);
    expect(t.holding('g')).toBe(false);
    t.left('g');
    expect(t.ids()).toEqual([]);
  });
});
