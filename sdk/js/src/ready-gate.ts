/**
 * ReadyGate lets requests made while the session reconnects wait for it:
 * wait() resolves when the gate opens, rejects when it fails or after
 * timeoutMs (503).
 */
import { ImError, ImErrorCode } from './errors.js';

interface Waiter {
  resolve: () => void;
  reject: (e: ImError) => void;
}

export class ReadyGate {
  #waiters: Waiter[] = [];
  #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new ImError(ImErrorCode.UNAVAILABLE, 'reconnecting: try again'));
      }, this.#timeoutMs);
      const w: Waiter = {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
      this.#waiters.push(w);
    });
  }

  /** open lets every waiter through. */
  open(): void {
    for (const w of this.#take()) w.resolve();
  }

  /** fail rejects every waiter with err. */
  fail(err: ImError): void {
    for (const w of this.#take()) w.reject(err);
  }

  #take(): Waiter[] {
    const ws = this.#waiters;
    this.#waiters = [];
    return ws;
  }
}
