/**
 * Checks and normalises what the app passes, the way the hosted SDK's
 * samples use it: page tokens as numbers or strings under either spelling,
 * 0 time bounds as "no bound", a missing sortType as ASC.
 */
import { protoInt64 } from '@bufbuild/protobuf';
import { ImError, ImErrorCode } from './errors.js';
import type { ImPageToken } from './types.js';

/** bad returns ImError 400 naming field. */
export function bad(field: string, why: string): ImError {
  return new ImError(ImErrorCode.INVALID_PARAMETER, `${field}: ${why}`);
}

/** obj checks that v is an object (the request argument). */
export function obj<T extends object>(v: T | undefined | null, name: string): T {
  if (typeof v !== 'object' || v === null) throw bad(name, 'required');
  return v;
}

/** str checks a required string field (groupId, receiverId, ...). */
export function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') throw bad(field, 'required');
  return v;
}

/** optStr returns v as a string ('' when absent). */
export function optStr(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw bad(field, 'must be a string');
  return v;
}

/** int checks an optional integer field; absent is def. */
export function int(v: unknown, field: string, def = 0): number {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(field, 'must be an integer');
  return v;
}

/** int64 turns an optional integer field into the wire's int64. */
export function int64(v: unknown, field: string): bigint {
  return protoInt64.parse(int(v, field));
}

/** bool returns an optional boolean field; absent is false. */
export function bool(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(field, 'must be a boolean');
  return v;
}

/** strList checks an optional list of strings. */
export function strList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(field, 'must be a list of strings');
  return [...(v as string[])];
}

/** pageToken reads nextPageToken or nextpagetoken, a number or a string; absent or 0 is ''. */
export function pageToken(o: { nextPageToken?: ImPageToken; nextpagetoken?: ImPageToken }): string {
  const v: unknown = o.nextPageToken ?? o.nextpagetoken;
  if (v === undefined || v === null || v === '' || v === 0) return '';
  if (typeof v === 'number' && Number.isFinite(v)) return String(Math.trunc(v));
  if (typeof v === 'string') return v;
  throw bad('nextPageToken', 'must be a string or a number');
}

/** sortType reads an optional sortType: 0 ASC (default) or 1 DESC. */
export function sortType(v: unknown): number {
  const s = int(v, 'sortType', 0);
  if (s !== 0 && s !== 1) throw bad('sortType', 'must be ImSortType.ASC (0) or ImSortType.DESC (1)');
  return s;
}

/** level reads an optional message level: 0 NORMAL (default) or 1 HIGH. */
export function level(v: unknown): number {
  const l = int(v, 'level', 0);
  if (l !== 0 && l !== 1) throw bad('level', 'must be ImMessageLevel.NORMAL (0) or ImMessageLevel.HIGH (1)');
  return l;
}
