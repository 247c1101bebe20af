/** Checks init's options and turns them into a session configuration (-2 when they are wrong). */
import { parseAppSign } from './appsign.js';
import { reconnectPolicy } from './backoff.js';
import { ImLogLevel } from './enums.js';
import { ImError, ImErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import type { SessionConfig } from './session.js';
import { selectTransport } from './transport/select.js';
import type { ImInitOptions } from './types.js';
import { SDK_VERSION } from './version.js';

const ID = /^[A-Za-z0-9-]{1,64}$/;

function badConfig(why: string): ImError {
  return new ImError(ImErrorCode.INIT_BAD_CONFIG, `init: ${why}`);
}

/** resolveConfig validates opts; it throws ImError -2 (or 1002 when no transport fits). */
export function resolveConfig(opts: ImInitOptions | undefined, log: Logger): SessionConfig & { logLevel: number } {
  if (typeof opts !== 'object' || opts === null) throw badConfig('options required');
  if (typeof opts.appId !== 'string' || !ID.test(opts.appId)) throw badConfig('appId must be 1-64 of A-Za-z0-9-');
  if (opts.serverUrl !== undefined && (typeof opts.serverUrl !== 'string' || !/^wss?:\/\//.test(opts.serverUrl))) {
    throw badConfig('serverUrl must be a ws:// or wss:// URL');
  }
  let urls: string[] = [];
  if (typeof opts.appSign !== 'string' || opts.appSign === '') {
    if (opts.serverUrl === undefined) throw badConfig('appSign required');
  } else {
    try {
      const sign = parseAppSign(opts.appSign);
      if (sign.appId !== opts.appId) throw badConfig(`appSign is for app "${sign.appId}", not "${opts.appId}"`);
      urls = sign.urls;
    } catch (e) {
      if (e instanceof ImError) throw e;
      if (opts.serverUrl === undefined) throw badConfig(`appSign: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (opts.serverUrl !== undefined) urls = [opts.serverUrl];
  urls = urls.filter((u) => /^wss?:\/\//.test(u));
  if (urls.length === 0) throw badConfig('no gateway URL: appSign names none and serverUrl is absent');
  const hb = opts.heartbeatTimeout ?? 0;
  if (typeof hb !== 'number' || !Number.isInteger(hb) || (hb !== 0 && (hb < 15 || hb > 120))) {
    throw badConfig('heartbeatTimeout must be 15-120 seconds');
  }
  const logLevel = opts.logLevel ?? ImLogLevel.ERROR;
  if (typeof logLevel !== 'number') throw badConfig('logLevel must be an ImLogLevel');
  if (opts.deviceId !== undefined && typeof opts.deviceId !== 'string') throw badConfig('deviceId must be a string');
  if (opts.locateFile !== undefined && typeof opts.locateFile !== 'function') throw badConfig('locateFile must be a function');
  const timeout = opts.requestTimeoutMs ?? 15_000;
  if (typeof timeout !== 'number' || !(timeout > 0)) throw badConfig('requestTimeoutMs must be positive');
  const reconnect = reconnectPolicy(opts.reconnect);
  if (!(reconnect.initialDelayMs > 0) || !(reconnect.maxDelayMs >= reconnect.initialDelayMs) || !(reconnect.maxAttempts >= 0)) {
    throw badConfig('reconnect: delays must be positive, maxDelayMs ≥ initialDelayMs');
  }
  return {
    appId: opts.appId,
    urls,
    deviceId: opts.deviceId !== undefined && opts.deviceId !== '' ? opts.deviceId : randomId(),
    heartbeatTimeout: hb,
    transport: selectTransport(opts.transport),
    requestTimeoutMs: timeout,
    reconnect,
    sdkVersion: SDK_VERSION,
    log,
    logLevel,
  };
}

/** randomId returns 32 random hex characters (a device ID, a client message ID). */
export function randomId(): string {
  const bytes = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?: (b: Uint8Array) => Uint8Array } }).crypto;
  if (c?.getRandomValues !== undefined) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
