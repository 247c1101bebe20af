/** What the managers need from the engine: its session, gated by the engine's state. */
import type { Logger } from './logger.js';
import type { Session } from './session.js';

export interface ManagerContext {
  /**
   * run calls fn with the logged-in session; it rejects with 601 before
   * init, 602 before login, and turns anything thrown into an ImError.
   */
  run<T>(fn: (s: Session) => Promise<T>): Promise<T>;
  log: Logger;
}
