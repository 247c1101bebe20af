import { ImLogLevel } from './enums.js';

/** Logger writes the SDK's log lines to the console at or above a level. */
export class Logger {
  level: number;

  constructor(level: number = ImLogLevel.ERROR) {
    this.level = level;
  }

  #on(level: number): boolean {
    return this.level !== ImLogLevel.NONE && level >= this.level;
  }

  debug(...args: unknown[]): void {
    if (this.#on(ImLogLevel.DBUG)) console.debug('[liveim]', ...args);
  }

  info(...args: unknown[]): void {
    if (this.#on(ImLogLevel.INFO)) console.info('[liveim]', ...args);
  }

  warn(...args: unknown[]): void {
    if (this.#on(ImLogLevel.WARN)) console.warn('[liveim]', ...args);
  }

  error(...args: unknown[]): void {
    if (this.#on(ImLogLevel.ERROR)) console.error('[liveim]', ...args);
  }
}
