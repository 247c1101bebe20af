/**
 * Heartbeat sends a PingRequest every third of the session's heartbeat
 * timeout, so the gateway never sees the session silent; a ping left
 * unanswered for one interval means the connection is dead.
 */
import type { Connection } from './connection.js';
import { ImErrorCode, toImError } from './errors.js';
import type { Logger } from './logger.js';

export class Heartbeat {
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * start pings conn every timeoutSec/3 seconds; onDead runs once when a
   * ping times out.
   */
  start(conn: Connection, timeoutSec: number, log: Logger, onDead: (why: string) => void): void {
    this.stop();
    const intervalMs = Math.max(1000, (timeoutSec * 1000) / 3);
    let dead = false;
    this.#timer = setInterval(() => {
      if (dead || !conn.isOpen) return;
      conn.request({ case: 'ping', value: {} }, intervalMs).then(
        () => log.debug('pong'),
        (e: unknown) => {
          const err = toImError(e);
          if (err.code !== ImErrorCode.UNAVAILABLE || dead) return;
          dead = true;
          log.warn('heartbeat unanswered; reconnecting');
          onDead('heartbeat unanswered');
        },
      );
    }, intervalMs);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
