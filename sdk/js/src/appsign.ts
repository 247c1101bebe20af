/**
 * appSign is the app's public client credential (auth/appsign.go):
 * "lim1." + base64url-no-padding(JSON {"a": appId, "u": [gatewayWsUrl, ...]}).
 */
import { base64UrlDecode, utf8Decode } from './text.js';

const PREFIX = 'lim1.';

/** AppSign is a decoded appSign. */
export interface AppSign {
  appId: string;
  urls: string[];
}

/** parseAppSign decodes an appSign; it throws an Error saying why it cannot. */
export function parseAppSign(v: string): AppSign {
  if (!v.startsWith(PREFIX)) throw new Error(`appSign must start with "${PREFIX}"`);
  const json: unknown = JSON.parse(utf8Decode(base64UrlDecode(v.slice(PREFIX.length)), true));
  if (typeof json !== 'object' || json === null) throw new Error('appSign is not an object');
  const o = json as { a?: unknown; u?: unknown };
  if (typeof o.a !== 'string' || o.a === '') throw new Error('appSign names no app');
  const urls = Array.isArray(o.u) ? o.u.filter((u): u is string => typeof u === 'string' && u !== '') : [];
  return { appId: o.a, urls };
}
