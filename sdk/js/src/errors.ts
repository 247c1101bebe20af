/**
 * The error catalogue of liveim (SPEC §4), shared by the server, the wire
 * protocol and the SDKs. Every promise of the SDK rejects with an
 * {@link ImError}: `{code, msg}` (and `message`, as any `Error`).
 */

/** ImErrorCode names every code an SDK promise may reject with. */
export const ImErrorCode = {
  /** -2: the init configuration is invalid. */
  INIT_BAD_CONFIG: -2,
  /** 304: already logged in. */
  ALREADY_LOGGED_IN: 304,
  /** 400: invalid parameter; the message names the field. */
  INVALID_PARAMETER: 400,
  /** 401: token invalid or expired. */
  UNAUTHORIZED: 401,
  /** 403: no permission. */
  FORBIDDEN: 403,
  /** 404: no session on the server: reconnect. */
  NO_SESSION: 404,
  /** 412: sending too fast (or a NORMAL message shed by a busy group). */
  TOO_FAST: 412,
  /** 413: message too large. */
  TOO_LARGE: 413,
  /** 424: C2C receiver offline. */
  RECEIVER_OFFLINE: 424,
  /** 425: not joined to the group. */
  NOT_JOINED: 425,
  /** 440: group does not exist. */
  GROUP_NOT_FOUND: 440,
  /** 441: group closed. */
  GROUP_CLOSED: 441,
  /** 442: muted. */
  MUTED: 442,
  /** 443: limit reached. */
  LIMIT_REACHED: 443,
  /** 451: refused by moderation. */
  MODERATION_REFUSED: 451,
  /** 500: internal error. */
  INTERNAL: 500,
  /** 503: temporarily unavailable (includes connect failures and timeouts): retry. */
  UNAVAILABLE: 503,
  /** 601: SDK in the wrong state for the call (e.g. not initialised). */
  SDK_INVALID_STATE: 601,
  /** 602: SDK not logged in. */
  SDK_NOT_LOGGED_IN: 602,
  /** 603: the session that carried the request ended before its reply came; it may or may not have taken effect. */
  SDK_STALE_REPLY: 603,
  /** 604: a reply could not be parsed. */
  SDK_PARSE_ERROR: 604,
  /** 1001: init called twice. */
  SDK_ALREADY_INITIALIZED: 1001,
  /** 1002: the engine could not be created (no usable transport). */
  SDK_ENGINE_FAILED: 1002,
} as const;

/** ImErrorCodeValue is one of the catalogue's codes. */
export type ImErrorCodeValue = (typeof ImErrorCode)[keyof typeof ImErrorCode];

/**
 * ImError is what every SDK promise rejects with: `code` from
 * {@link ImErrorCode} (or a code a newer server sends) and `msg`.
 */
export class ImError extends Error {
  /** The catalogue code. */
  readonly code: number;
  /** What went wrong. */
  readonly msg: string;

  constructor(code: number, msg: string) {
    super(msg === '' ? `liveim error ${code}` : msg);
    this.name = 'ImError';
    this.code = code;
    this.msg = msg;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** isImError reports whether v is an {@link ImError} (or any `{code, msg}` object). */
export function isImError(v: unknown): v is ImError {
  if (v instanceof ImError) return true;
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { code?: unknown; msg?: unknown };
  return typeof o.code === 'number' && typeof o.msg === 'string';
}

/** toImError turns anything thrown into an ImError, keeping one that already is. */
export function toImError(v: unknown, fallbackCode: number = ImErrorCode.INTERNAL): ImError {
  if (v instanceof ImError) return v;
  if (isImError(v)) return new ImError(v.code, v.msg);
  const msg = v instanceof Error ? v.message : String(v);
  return new ImError(fallbackCode, msg);
}
