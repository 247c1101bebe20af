/**
 * TokenRefresher asks the app for fresh credentials shortly before the
 * current ones expire: 60 s before, or halfway through the remaining
 * lifetime when that is shorter. The app answers through the callback of
 * the engine's `tokenexpired` event.
 */
import type { Logger } from './logger.js';
import type { ImAuth, ImTokenCallback } from './types.js';

/** Longest setTimeout delay. */
const MAX_DELAY = 0x7fffffff;
/** Most lead time before expiry. */
const MAX_LEAD_MS = 60_000;
/** A question younger than this is not asked again. */
const REASK_MS = 5_000;

export interface TokenRefresherHooks {
  /** ask emits tokenexpired(cb); false when nobody listens. */
  ask(cb: ImTokenCallback): boolean;
  /** got receives the app's new credentials. */
  got(auth: ImAuth): void;
  /** now is the server's clock, ms. */
  now(): number;
}

export class TokenRefresher {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #askedAt = 0;
  #waiters: Array<(ok: boolean) => void> = [];
  #hooks: TokenRefresherHooks;
  #log: Logger;

  constructor(hooks: TokenRefresherHooks, log: Logger) {
    this.#hooks = hooks;
    this.#log = log;
  }

  /** schedule sets the timer for credentials expiring at expirySec (Unix seconds). */
  schedule(expirySec: number): void {
    this.stop();
    if (!Number.isFinite(expirySec) || expirySec <= 0) return;
    const remaining = expirySec * 1000 - this.#hooks.now();
    const lead = Math.min(MAX_LEAD_MS, Math.max(0, remaining / 2));
    const delay = Math.max(0, remaining - lead);
    this.#log.debug(`token expires in ${Math.round(remaining / 1000)} s; asking in ${Math.round(delay / 1000)} s`);
    const t = setTimeout(() => {
      this.#timer = undefined;
      this.ask();
    }, Math.min(delay, MAX_DELAY));
    this.#timer = t;
  }

  /** stop cancels the timer and fails anyone waiting. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** reset stops and forgets a question in flight (logout). */
  reset(): void {
    this.stop();
    this.#askedAt = 0;
    this.#settle(false);
  }

  /**
   * ask emits tokenexpired now and resolves true when the app hands new
   * credentials, false when it cannot, nobody listens, or timeoutMs pass.
   * A question asked less than REASK_MS ago is not asked again: its answer
   * serves this call too. Any callback handed out may answer.
   */
  ask(timeoutMs = 60_000): Promise<boolean> {
    const p = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const done = (ok: boolean) => {
        clearTimeout(t);
        resolve(ok);
      };
      this.#waiters.push(done);
    });
    if (this.#askedAt !== 0 && Date.now() - this.#askedAt < REASK_MS) return p;
    this.#askedAt = Date.now();
    let answered = false;
    const cb: ImTokenCallback = (err, auth) => {
      if (answered) return;
      answered = true;
      this.#askedAt = 0;
      if (err !== null && err !== undefined) {
        this.#log.error('tokenexpired callback failed', err);
        this.#settle(false);
        return;
      }
      if (auth === undefined || typeof auth !== 'object' || typeof auth.token !== 'string') {
        this.#log.error('tokenexpired callback gave no credentials');
        this.#settle(false);
        return;
      }
      this.#hooks.got(auth);
      this.#settle(true);
    };
    if (!this.#hooks.ask(cb)) {
      this.#askedAt = 0;
      this.#log.warn('credentials expire soon and nobody listens to tokenexpired');
      this.#settle(false);
    }
    return p;
  }

  #settle(ok: boolean): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const done of w) done(ok);
  }
}
