/**
 * Session is one logged-in user: it opens connections, logs in, keeps the
 * connection alive, refreshes the token, and after an unexpected close
 * reconnects with backoff, logs in again, rejoins the groups it had joined
 * and resumes their HIGH messages (rejoin.ts). The engine owns one.
 *
 * A "link" is one connection attempt; when a link is given up it is marked
 * dead and nothing it reports afterwards is acted on.
 */
import { backoffDelay, type ReconnectPolicy } from './backoff.js';
import { type CloseInfo, Connection } from './connection.js';
import { num } from './convert.js';
import { ImError, ImErrorCode, toImError } from './errors.js';
import { DisconnectCode, type Event, type GroupInfo, type Reply } from './gen/liveim/v1/client_pb.js';
import { GroupTracker } from './groups.js';
import { Heartbeat } from './heartbeat.js';
import type { Logger } from './logger.js';
import { rejoinGroups } from './rejoin.js';
import { TokenRefresher } from './token.js';
import type { SelectedTransport } from './transport/select.js';
import type { ImAuth, ImGroupInfo, ImTokenCallback, ImUser } from './types.js';
import { ReadyGate } from './ready-gate.js';
import { type RequestBody, replyBody, wireAuth } from './wire.js';

/** SessionConfig is what a session needs from init. */
export interface SessionConfig {
  appId: string;
  urls: string[];
  deviceId: string;
  /** Seconds asked at login; 0 = the server's default. */
  heartbeatTimeout: number;
  transport: SelectedTransport;
  requestTimeoutMs: number;
  reconnect: ReconnectPolicy;
  sdkVersion: string;
  log: Logger;
}

/** SessionSink receives what a session reports (the engine forwards it to the app). */
export interface SessionSink {
  connecting(): void;
  connectFailed(err: ImError): void;
  connectSuccess(): void;
  disconnect(code: number): void;
  tokenExpired(cb: ImTokenCallback): boolean;
  reconnectSuccess(infos: ImGroupInfo[]): void;
  /** A pushed event, already filtered (duplicates dropped, held events released in order). */
  event(ev: Event): void;
}

/** Link is one connection attempt. */
export interface Link {
  conn: Connection | undefined;
  dead: boolean;
  loggedIn: boolean;
}

type State = 'idle' | 'loggingIn' | 'online' | 'reconnecting';

/** C2C_REMEMBERED is how many C2C message IDs a session remembers to drop repeats. */
const C2C_REMEMBERED = 256;

/** SEND_ATTEMPTS is how often Session.send tries one message. */
const SEND_ATTEMPTS = 4;

/** GIVE_UP_CLOSE is the close status the SDK uses when it gives a connection up. */
const GIVE_UP_CLOSE = 4000;

/**
 * MAX_REFUSED_LOGINS is how many reconnect logins in a row may be refused
 * (401) before the session ends: the first finds its token expired, and
 * the app's new credentials are refused too after that.
 */
const MAX_REFUSED_LOGINS = 3;

/** WAKE_PROBE_MS is how long a ping sent on a platform's wake-up hint may go unanswered. */
const WAKE_PROBE_MS = 5000;

export class Session {
  readonly groups = new GroupTracker();
  #cfg: SessionConfig;
  #sink: SessionSink;
  #log: Logger;
  #state: State = 'idle';
  #link: Link | undefined;
  #user: ImUser | undefined;
  #auth: ImAuth | undefined;
  #offsetMs = 0;
  #epoch = 0;
  #attempt = 0;
  /** #refused counts reconnect logins refused with 401 in a row. */
  #refused = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat = new Heartbeat();
  #token: TokenRefresher;
  #gate: ReadyGate;
  #c2cSeen = new Set<string>();
  /** Stops the transport's wake-up hints (set while logged in). */
  #unwatch: (() => void) | undefined;
  /** The link a wake-up ping is checking, if any. */
  #probing: Link | undefined;

  constructor(cfg: SessionConfig, sink: SessionSink) {
    this.#cfg = cfg;
    this.#sink = sink;
    this.#log = cfg.log;
    this.#gate = new ReadyGate(cfg.requestTimeoutMs);
    this.#token = new TokenRefresher(
      {
        ask: (cb) => this.#sink.tokenExpired(cb),
        got: (auth) => this.#gotAuth(auth),
        now: () => Date.now() + this.#offsetMs,
      },
      cfg.log,
    );
  }

  /** loggedIn is true from a successful login until logout, even while reconnecting. */
  get loggedIn(): boolean {
    return this.#state === 'online' || this.#state === 'reconnecting';
  }

  /** login connects and logs in; it rejects with the server's {code, msg} or 503. */
  async login(user: ImUser, auth: ImAuth): Promise<void> {
    if (this.#state !== 'idle') {
      throw new ImError(ImErrorCode.ALREADY_LOGGED_IN, this.#state === 'loggingIn' ? 'login in progress' : 'already logged in');
    }
    this.#state = 'loggingIn';
    const epoch = ++this.#epoch;
    this.#user = user;
    this.#auth = auth;
    this.#attempt = 0;
    this.#sink.connecting();
    try {
      await this.#open(epoch);
    } catch (e) {
      const err = toImError(e);
      if (epoch === this.#epoch) this.#end(err);
      this.#sink.connectFailed(err);
      throw err;
    }
    this.#state = 'online';
    this.#unwatch = this.#cfg.transport.watch?.((why) => this.#wake(why));
    this.#sink.connectSuccess();
  }

  /** logout tells the server, closes the connection and emits disconnect(1). */
  async logout(): Promise<void> {
    if (this.#state === 'idle') throw new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, 'not logged in');
    this.#epoch++;
    const link = this.#link;
    this.#end(new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, 'logged out'));
    if (link?.conn !== undefined && link.conn.isOpen) {
      try {
        await link.conn.request({ case: 'logout', value: {} }, 5000);
      } catch (e) {
        this.#log.debug('logout', e);
      }
      link.conn.close(1000, 'logout');
    }
    this.#sink.disconnect(1);
  }

  /** shutdown drops the session without a word (unInit). */
  shutdown(): void {
    this.#epoch++;
    const link = this.#link;
    this.#end(new ImError(ImErrorCode.SDK_INVALID_STATE, 'engine uninitialised'));
    link?.conn?.close(1000, 'uninit');
  }

  /**
   * request sends one request on the session, waiting (up to the request
   * timeout) while a reconnect is under way.
   */
  async request(body: RequestBody): Promise<Reply> {
    if (this.#state === 'idle') throw new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, 'not logged in');
    if (this.#state !== 'online') await this.#gate.wait();
    const conn = this.#link?.conn;
    if (conn === undefined) throw new ImError(ImErrorCode.SDK_STALE_REPLY, 'connection lost');
    return conn.request(body);
  }

  /**
   * send sends a message request carrying a client message ID, retrying
   * it, with the same ID, when the answer is lost (503: a timeout, a
   * router failover; 603: the connection dropped): the server answers a
   * repeat with the first send's reply, so the message is stored and
   * delivered once. At most SEND_ATTEMPTS tries.
   */
  async send(body: RequestBody): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request(body);
      } catch (e) {
        const err = toImError(e);
        const retriable = err.code === ImErrorCode.UNAVAILABLE || err.code === ImErrorCode.SDK_STALE_REPLY;
        if (!retriable || attempt >= SEND_ATTEMPTS || this.#state === 'idle') throw err;
        this.#log.warn(`send: ${err.code} ${err.msg}; retrying (${attempt + 1} of ${SEND_ATTEMPTS})`);
        await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
      }
    }
  }

  /** join joins a group and starts tracking it for rejoin and HIGH resume. */
  async join(groupId: string): Promise<GroupInfo> {
    const info = replyBody(await this.request({ case: 'joinGroup', value: { groupId } }), 'groupInfo');
    this.groups.joined(groupId, num(info.lastSeqnum), num(info.lastDeleteSeq));
    return info;
  }

  /** leave leaves a group and stops tracking it. */
  async leave(groupId: string): Promise<void> {
    try {
      await this.request({ case: 'leaveGroup', value: { groupId } });
    } catch (e) {
      if (toImError(e).code === ImErrorCode.NOT_JOINED) this.groups.left(groupId);
      throw e;
    }
    this.groups.left(groupId);
  }

  /** #open opens a connection and logs in on it; the link becomes current. */
  async #open(epoch: number): Promise<Link> {
    const urls = this.#cfg.urls;
    const url = urls[this.#attempt % urls.length] as string;
    const link: Link = { conn: undefined, dead: false, loggedIn: false };
    this.#log.info(`connecting to ${url} (${this.#cfg.transport.name})`);
    const conn = await Connection.open(
      this.#cfg.transport.open,
      url,
      {
        onEvent: (ev) => {
          if (!link.dead) this.#onEvent(ev);
        },
        onClose: (info) => {
          if (link.dead) return;
          link.dead = true;
          if (link.loggedIn) this.#lost(link, info);
        },
      },
      this.#log,
      { requestTimeoutMs: this.#cfg.requestTimeoutMs, connectTimeoutMs: Math.max(this.#cfg.requestTimeoutMs, 10_000) },
    );
    link.conn = conn;
    const fail = (err: ImError): never => {
      link.dead = true;
      conn.close(1000, 'login failed');
      throw err;
    };
    if (epoch !== this.#epoch) fail(new ImError(ImErrorCode.SDK_INVALID_STATE, 'logged out while connecting'));
    const user = this.#user as ImUser;
    const auth = this.#auth as ImAuth;
    let rep;
    try {
      rep = replyBody(
        await conn.request({
          case: 'login',
          value: {
            appId: this.#cfg.appId,
            user: { userId: user.userId, userExtension: user.userExtension },
            auth: wireAuth(auth),
            deviceId: this.#cfg.deviceId,
            heartbeatTimeout: this.#cfg.heartbeatTimeout,
            sdkVersion: this.#cfg.sdkVersion,
          },
        }),
        'login',
      );
    } catch (e) {
      return fail(toImError(e));
    }
    if (epoch !== this.#epoch) fail(new ImError(ImErrorCode.SDK_INVALID_STATE, 'logged out while logging in'));
    if (link.dead) fail(new ImError(ImErrorCode.SDK_STALE_REPLY, 'connection closed after login'));
    link.loggedIn = true;
    this.#link = link;
    this.#offsetMs = num(rep.serverTime) - Date.now();
    const hb = rep.heartbeatTimeout !== 0 ? rep.heartbeatTimeout : this.#cfg.heartbeatTimeout || 99;
    this.#heartbeat.start(conn, hb, this.#log, (why) => this.#giveUp(link, why));
    this.#token.schedule(auth.timestamp);
    this.#log.info(`logged in as ${user.userId}, session ${rep.sessionId}`);
    return link;
  }

  /** #giveUp abandons a link that seems dead and reconnects. */
  #giveUp(link: Link, why: string): void {
    if (link.dead) return;
    link.dead = true;
    link.conn?.close(GIVE_UP_CLOSE, why);
    this.#lost(link, { code: 1006, reason: why, local: true });
  }

  /** #lost handles the end of the current logged-in link. */
  #lost(link: Link, info: CloseInfo): void {
    if (link !== this.#link) return;
    this.#link = undefined;
    this.#heartbeat.stop();
    const d = info.disconnect;
    const code = d?.code ?? 0;
    if (info.code === 4004 || code === DisconnectCode.LOGGED_IN_ELSEWHERE) {
      this.#end(new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, 'logged in elsewhere'));
      this.#sink.disconnect(4);
      return;
    }
    if (code === DisconnectCode.TOKEN_EXPIRED) {
      void this.#renewAndReconnect(link);
      return;
    }
    if (code !== 0) this.#sink.disconnect(code);
    if (code !== 0 && d?.reconnect !== true) {
      this.#end(new ImError(ImErrorCode.SDK_NOT_LOGGED_IN, `disconnected (${code})`));
      return;
    }
    this.#log.info(`connection lost (${info.code} ${info.reason}); reconnecting`);
    this.#scheduleReconnect();
  }

  /**
   * #renewAndReconnect handles a session the server ended because its
   * token expired: the app is asked once more (tokenexpired); with new
   * credentials the SDK reconnects as after any lost connection, without
   * them the session ends with disconnect(5).
   */
  async #renewAndReconnect(link: Link): Promise<void> {
    const epoch = this.#epoch;
    this.#state = 'reconnecting';
    this.#log.warn('the session ended: token expired; asking the app for a new one');
    const ok = await this.#token.ask();
    if (epoch !== this.#epoch || this.#link !== undefined || link.dead !== true) return;
    if (!ok) {
      this.#end(new ImError(ImErrorCode.UNAUTHORIZED, 'token expired'));
      this.#sink.disconnect(DisconnectCode.TOKEN_EXPIRED);
      return;
    }
    this.#scheduleReconnect();
  }

  /**
   * #wake acts on the platform's hint that the network may have changed (a
   * mini-program back in the foreground, the network back). A reconnect
   * waiting out its backoff starts now; an online link is checked with a
   * ping, and replaced at once when the ping goes unanswered for
   * WAKE_PROBE_MS (a link that died in the background may never report its
   * close). An attempt already under way is left alone.
   */
  #wake(why: string): void {
    if (this.#state === 'reconnecting') {
      this.#reconnectNow(why);
      return;
    }
    const link = this.#link;
    const conn = link?.conn;
    if (this.#state !== 'online' || link === undefined || conn === undefined || this.#probing === link) return;
    if (!conn.isOpen) {
      this.#giveUp(link, `${why}: connection closed`);
      this.#reconnectNow(why);
      return;
    }
    this.#probing = link;
    this.#log.debug(`${why}: checking the connection`);
    conn.request({ case: 'ping', value: {} }, WAKE_PROBE_MS).then(
      () => {
        if (this.#probing === link) this.#probing = undefined;
      },
      (e: unknown) => {
        if (this.#probing === link) this.#probing = undefined;
        // 603: the link ended meanwhile, and its end is handled already.
        if (toImError(e).code !== ImErrorCode.UNAVAILABLE || link.dead) return;
        this.#log.warn(`${why}: ping unanswered for ${WAKE_PROBE_MS} ms; reconnecting`);
        this.#giveUp(link, `ping unanswered after ${why}`);
        this.#reconnectNow(why);
      },
    );
  }

  /** #reconnectNow starts a reconnect that is waiting out its backoff, counting attempts from 1 again. */
  #reconnectNow(why: string): void {
    if (this.#state !== 'reconnecting' || this.#reconnectTimer === undefined) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#attempt = 0;
    this.#log.info(`${why}: reconnecting now`);
    void this.#reconnect(this.#epoch);
  }

  #scheduleReconnect(): void {
    this.#state = 'reconnecting';
    this.#attempt++;
    if (this.#attempt > this.#cfg.reconnect.maxAttempts) {
      this.#log.error('giving up reconnecting');
      this.#end(new ImError(ImErrorCode.UNAVAILABLE, 'reconnect attempts exhausted'));
      return;
    }
    const delay = backoffDelay(this.#cfg.reconnect, this.#attempt);
    const epoch = this.#epoch;
    this.#log.debug(`reconnect attempt ${this.#attempt} in ${delay} ms`);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnect(epoch);
    }, delay);
  }

  async #reconnect(epoch: number): Promise<void> {
    if (epoch !== this.#epoch) return;
    this.#sink.connecting();
    let link: Link;
    try {
      link = await this.#open(epoch);
    } catch (e) {
      if (epoch !== this.#epoch) return;
      const err = toImError(e);
      this.#sink.connectFailed(err);
      if (err.code === ImErrorCode.UNAUTHORIZED) {
        // The credentials expired while away: ask the app for new ones.
        // When the server refuses what the app hands out too (its key
        // rotated past the grace period, the app disabled), asking again
        // cannot help: after MAX_REFUSED_LOGINS refusals in a row the
        // session ends. The backoff goes on meanwhile, so the app's
        // clients do not all hammer the cluster and its backend.
        if (++this.#refused >= MAX_REFUSED_LOGINS) {
          this.#end(err);
          return;
        }
        const ok = await this.#token.ask();
        if (epoch !== this.#epoch) return;
        if (!ok) {
          this.#end(err);
          return;
        }
      }
      this.#scheduleReconnect();
      return;
    }
    this.#refused = 0;
    this.#sink.connectSuccess();
    const infos = await rejoinGroups(link, this.groups, {
      deliver: (ev) => this.#onEvent(ev),
      emit: (ev) => this.#sink.event(ev),
      log: this.#log,
      current: () => epoch === this.#epoch && link === this.#link && !link.dead,
      giveUp: (why) => this.#giveUp(link, why),
    });
    if (infos === undefined || epoch !== this.#epoch || link !== this.#link) return;
    this.#attempt = 0;
    this.#state = 'online';
    this.#gate.open();
    this.#sink.reconnectSuccess(infos);
  }

  #onEvent(ev: Event): void {
    const b = ev.body;
    switch (b.case) {
      case 'groupMessage':
        if (this.groups.maybeHold(b.value.groupId, ev)) return;
        if (!this.groups.accept(b.value)) return;
        break;
      case 'deleteGroupMessage':
        if (this.groups.maybeHold(b.value.groupId, ev)) return;
        // One a resume listed already (it came live while the group
        // resumed, held) is not told twice.
        if (!this.groups.deleted(b.value.groupId, num(b.value.deleteSeq))) return;
        break;
      case 'memberChange':
      case 'muteChange':
      case 'infoChange':
        if (this.groups.maybeHold(b.value.groupId, ev)) return;
        break;
      case 'exit':
        if (this.groups.maybeHold(b.value.groupId, ev)) return;
        this.groups.left(b.value.groupId);
        break;
      case 'c2cMessage':
        // A sender's retry carries the same message ID: deliver it once.
        if (this.#c2cSeen.has(b.value.messageId)) return;
        this.#c2cSeen.add(b.value.messageId);
        if (this.#c2cSeen.size > C2C_REMEMBERED) {
          const oldest = this.#c2cSeen.values().next().value;
          if (oldest !== undefined) this.#c2cSeen.delete(oldest);
        }
        break;
      case 'tokenExpiring':
        void this.#token.ask();
        return;
      case 'disconnect':
      case undefined:
        return;
    }
    this.#sink.event(ev);
  }

  #gotAuth(auth: ImAuth): void {
    this.#auth = auth;
    const conn = this.#link?.conn;
    if (this.#state !== 'online' || conn === undefined) return; // the next login uses it
    conn.request({ case: 'refreshToken', value: { auth: wireAuth(auth) } }).then(
      () => {
        this.#log.info('token refreshed');
        this.#token.schedule(auth.timestamp);
      },
      (e: unknown) => {
        const err = toImError(e);
        this.#log.error(`token refresh refused: ${err.code} ${err.msg}`);
        this.#sink.connectFailed(err);
      },
    );
  }

  /** #end returns to idle: timers stopped, groups forgotten, waiters failed. */
  #end(err: ImError): void {
    this.#state = 'idle';
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#probing = undefined;
    if (this.#link !== undefined) this.#link.dead = true;
    this.#link = undefined;
    this.#heartbeat.stop();
    this.#token.reset();
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.groups.clear();
    this.#gate.fail(err);
  }
}
