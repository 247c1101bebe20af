/** Test helpers: credentials from the real server's CLI, engines, and waiting. */
import { execFileSync } from 'node:child_process';
import { afterEach, inject } from 'vitest';
import { ImEngine, ImLogLevel, type ImAuth, type ImInitOptions } from '../src/index.js';

export const server = inject('liveim');

/** Server is where credentials come from: the shared server, or one a test file started. */
export interface Server {
  bin: string;
  data: string;
  wsUrl: string;
}

/** Credentials as `liveim token` prints them. */
export interface Creds {
  appId: string;
  appSign: string;
  auth: ImAuth;
}

/** token issues credentials for user with the real CLI. */
export function token(user: string, opts: { role?: 'admin'; ttl?: string } = {}, srv: Server = server): Creds {
  const args = ['token', '--data', srv.data, '--user', user];
  if (opts.role !== undefined) args.push('--role', opts.role);
  if (opts.ttl !== undefined) args.push('--ttl', opts.ttl);
  const out = JSON.parse(execFileSync(srv.bin, args, { encoding: 'utf8' })) as {
    app_id: string;
    app_sign: string;
    app_token: string;
    auth: { user_id: string; nonce: string; timestamp: number; role: string };
  };
  return {
    appId: out.app_id,
    appSign: out.app_sign,
    auth: { timestamp: out.auth.timestamp, nonce: out.auth.nonce, role: out.auth.role, token: out.app_token },
  };
}

let seq = 0;
/** uid makes an ID unique to this run: prefix-<random>-<n>. */
export function uid(prefix: string): string {
  seq++;
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}-${seq}`;
}

const engines: ImEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.unInit();
});

/** newEngine makes an independent, initialised engine that is uninitialised after the test. */
export async function newEngine(extra: Partial<ImInitOptions> = {}, srv: Server = server): Promise<ImEngine> {
  const e = new ImEngine();
  engines.push(e);
  const c = token('probe', {}, srv);
  await e.init({ appId: c.appId, appSign: c.appSign, logLevel: ImLogLevel.NONE, ...extra });
  return e;
}

/** loggedIn makes an engine logged in as user. */
export async function loggedIn(user: string, opts: { role?: 'admin'; extra?: Partial<ImInitOptions> } = {}): Promise<ImEngine> {
  const e = await newEngine(opts.extra);
  const c = token(user, opts.role !== undefined ? { role: opts.role } : {});
  await e.login({ user: { userId: user, userExtension: JSON.stringify({ nick: user }) }, userAuth: c.auth });
  return e;
}

/**
 * loggedInOn makes an engine logged in as userId on srv; with net, its
 * socket goes through net and it reconnects quickly (200 ms to 1 s).
 */
export async function loggedInOn(
  srv: Server,
  userId: string,
  role: 'admin' | undefined,
  net?: { factory: NonNullable<ImInitOptions['transport']> },
): Promise<ImEngine> {
  const e = await newEngine(net === undefined ? {} : { transport: net.factory, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } }, srv);
  const c = token(userId, role === undefined ? {} : { role }, srv);
  await e.login({ user: { userId, userExtension: '' }, userAuth: c.auth });
  return e;
}

/** waitFor polls check until it returns without throwing, or fails after timeoutMs. */
export async function waitFor<T>(check: () => T, timeoutMs = 10_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Recorder records the calls of a listener. */
export class Recorder<A extends unknown[]> {
  calls: A[] = [];
  readonly fn = (...args: A): void => {
    this.calls.push(args);
  };
  /** next waits for a call matching pred and returns its arguments. */
  async next(pred: (...args: A) => boolean = () => true, timeoutMs = 10_000): Promise<A> {
    return waitFor(() => {
      const hit = this.calls.find((c) => pred(...c));
      if (hit === undefined) throw new Error(`no matching call among ${this.calls.length}`);
      return hit;
    }, timeoutMs);
  }
}

/** rejection awaits p and returns what it rejected with (failing when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ code: number; msg: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: number; msg: string };
  }
  throw new Error('expected a rejection');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
