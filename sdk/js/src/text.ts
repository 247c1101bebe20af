/**
 * UTF-8 and base64url without TextEncoder, TextDecoder or atob, which some
 * mini-program runtimes lack. Protobuf-ES is pointed at these when the
 * runtime has no Text Encoding API.
 */
import { configureTextEncoding } from '@bufbuild/protobuf/wire';

/** utf8Encode encodes s as UTF-8 (lone surrogates become U+FFFD). */
export function utf8Encode(s: string): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/** utf8Decode decodes UTF-8; invalid sequences become U+FFFD, or throw when strict. */
export function utf8Decode(b: Uint8Array, strict = false): string {
  let s = '';
  const bad = (): number => {
    if (strict) throw new Error('invalid UTF-8');
    return 0xfffd;
  };
  for (let i = 0; i < b.length; ) {
    const x = b[i++] as number;
    let c: number;
    if (x < 0x80) c = x;
    else if (x >= 0xc2 && x < 0xe0 && i < b.length) c = ((x & 31) << 6) | ((b[i++] as number) & 63);
    else if (x >= 0xe0 && x < 0xf0 && i + 1 < b.length) {
      c = ((x & 15) << 12) | (((b[i] as number) & 63) << 6) | ((b[i + 1] as number) & 63);
      i += 2;
    } else if (x >= 0xf0 && x < 0xf5 && i + 2 < b.length) {
      c = ((x & 7) << 18) | (((b[i] as number) & 63) << 12) | (((b[i + 1] as number) & 63) << 6) | ((b[i + 2] as number) & 63);
      i += 3;
    } else c = bad();
    if (c > 0xffff) {
      c -= 0x10000;
      s += String.fromCharCode(0xd800 + (c >> 10), 0xdc00 + (c & 1023));
    } else {
      s += String.fromCharCode(c);
    }
  }
  return s;
}

/** ensureTextEncoding gives Protobuf-ES a UTF-8 codec where the runtime has none. */
export function ensureTextEncoding(): void {
  const g = globalThis as { TextEncoder?: unknown; TextDecoder?: unknown };
  if (typeof g.TextEncoder === 'function' && typeof g.TextDecoder === 'function') return;
  configureTextEncoding({
    checkUtf8: (text: string) => {
      try {
        encodeURIComponent(text);
        return true;
      } catch {
        return false;
      }
    },
    encodeUtf8: utf8Encode,
    decodeUtf8: utf8Decode,
  });
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** base64UrlDecode decodes base64url or standard base64, padded or not; it throws on bad input. */
export function base64UrlDecode(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of clean) {
    let v = B64.indexOf(ch);
    if (ch === '-' || ch === '+') v = 62;
    else if (ch === '_' || ch === '/') v = 63;
    if (v < 0) throw new Error(`invalid base64 character ${JSON.stringify(ch)}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) throw new Error('invalid base64 length');
  return new Uint8Array(out);
}
