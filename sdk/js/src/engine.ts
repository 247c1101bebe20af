/**
 * ImEngine is the SDK's entry point, with the hosted SDK's API:
 * createEngine() → init → login → managers → logout → unInit.
 */
import { resolveConfig } from './config.js';
import { dispatchEvent } from './dispatch.js';
import { Emitter } from './emitter.js';
import { ImError, ImErrorCode, toImError } from './errors.js';
import { ImGroupManager } from './group-manager.js';
import { Logger } from './logger.js';
import { ImMessageManager } from './message-manager.js';
import { Session } from './session.js';
import { ensureTextEncoding } from './text.js';
import type { ImEngineEvents, ImInitOptions, ImLoginOptions } from './types.js';

/**
 * ImEngine is one client. {@link ImEngine.createEngine} returns the shared
 * one, as the hosted SDK does; `new ImEngine()` makes an independent one
 * (for tests, or an app that logs in several users at once).
 */
export class ImEngine extends Emitter<ImEngineEvents> {
  static #shared: ImEngine | undefined;

  /** createEngine returns the engine singleton. */
  static createEngine(): ImEngine {
    ImEngine.#shared ??= new ImEngine();
    return ImEngine.#shared;
  }

  #log = new Logger();
  #session: Session | undefined;
  #groups: ImGroupManager;
  #messages: ImMessageManager;

  constructor() {
    super((event, err) => this.#log.error(`${event} listener threw`, err));
    const ctx = {
      log: this.#log,
      run: async <T>(fn: (s: Session) => Promise<T>): Promise<T> => {
        const s = this.#session;
        if (s === undefined) throw new ImError(ImErrorCode.SDK_INVALID_STATE, 'call init first');
        if (!s.loggedIn) throw new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, 'call login first');
        try {
          return await fn(s);
        } catch (e) {
          throw toImError(e);
        }
      },
    };
    this.#groups = new ImGroupManager(ctx);
    this.#messages = new ImMessageManager(ctx);
  }

  /** init checks the configuration; it rejects with 1001 when already initialised and -2 for bad options. */
  async init(opts: ImInitOptions): Promise<void> {
    if (this.#session !== undefined) throw new ImError(ImErrorCode.SDK_ALREADY_INITIALIZED, 'already initialised');
    let cfg;
    try {
      ensureTextEncoding();
      cfg = resolveConfig(opts, this.#log);
    } catch (e) {
      throw toImError(e, ImErrorCode.SDK_ENGINE_FAILED);
    }
    this.#log.level = cfg.logLevel;
    this.#session = new Session(cfg, {
      connecting: () => this.emit('connecting'),
      connectFailed: (err) => this.emit('connectfailed', err),
      connectSuccess: () => this.emit('connectsuccess'),
      disconnect: (code) => this.emit('disconnect', code),
      tokenExpired: (cb) => this.emit('tokenexpired', cb),
      reconnectSuccess: (infos) => this.emit('reconnectsuccess', infos),
      event: (ev) => dispatchEvent(ev, this.#groups, this.#messages),
    });
    this.#log.info(`initialised for app ${cfg.appId}, gateway ${cfg.urls.join(', ')}, transport ${cfg.transport.name}`);
  }

  /** login connects and logs in; 601 before init, 304 when already logged in, the server's code otherwise. */
  async login(opts: ImLoginOptions): Promise<void> {
    const s = this.#session;
    if (s === undefined) throw new ImError(ImErrorCode.SDK_INVALID_STATE, 'call init first');
    if (typeof opts !== 'object' || opts === null) throw new ImError(ImErrorCode.INVALID_PARAMETER, 'login: options required');
    const { user, userAuth } = opts;
    if (typeof user !== 'object' || user === null || typeof user.userId !== 'string') {
      throw new ImError(ImErrorCode.INVALID_PARAMETER, 'user.userId: required');
    }
    if (typeof userAuth !== 'object' || userAuth === null || typeof userAuth.token !== 'string') {
      throw new ImError(ImErrorCode.INVALID_PARAMETER, 'userAuth: required');
    }
    if (typeof userAuth.timestamp !== 'number' || !Number.isFinite(userAuth.timestamp)) {
      throw new ImError(ImErrorCode.INVALID_PARAMETER, 'userAuth.timestamp: must be a number');
    }
    await s.login(
      { userId: user.userId, userExtension: typeof user.userExtension === 'string' ? user.userExtension : '' },
      { timestamp: userAuth.timestamp, nonce: userAuth.nonce ?? '', role: userAuth.role ?? '', token: userAuth.token },
    );
  }

  /** logout ends the session and emits disconnect(1); 602 when not logged in. */
  async logout(): Promise<void> {
    const s = this.#session;
    if (s === undefined) throw new ImError(ImErrorCode.SDK_INVALID_STATE, 'call init first');
    await s.logout();
  }

  /**
   * unInit releases the engine: it drops any session without events and
   * removes every listener of the engine and its managers. init may be
   * called again afterwards.
   */
  unInit(): void {
    const s = this.#session;
    this.#session = undefined;
    s?.shutdown();
    this.removeAllListeners();
    this.#groups.removeAllListeners();
    this.#messages.removeAllListeners();
  }

  /** getGroupManager returns the group manager (its calls reject with 601/602 before init/login). */
  getGroupManager(): ImGroupManager {
    return this.#groups;
  }

  /** getMessageManager returns the message manager (its calls reject with 601/602 before init/login). */
  getMessageManager(): ImMessageManager {
    return this.#messages;
  }

  /** isInitialized reports whether init succeeded and unInit has not been called. */
  get isInitialized(): boolean {
    return this.#session !== undefined;
  }

  /** isLoggedIn reports whether the engine is logged in (also while it reconnects). */
  get isLoggedIn(): boolean {
    return this.#session?.loggedIn ?? false;
  }
}
