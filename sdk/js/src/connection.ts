/**
 * Connection is one socket to a gateway: it encodes ClientFrames, matches
 * Replies to requests by id, and hands pushed events on. It knows nothing of
 * login or reconnects (session.ts does).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ImError, ImErrorCode } from './errors.js';
import {
  ClientFrameSchema,
  type DisconnectEvent,
  type Event,
  type Reply,
  ServerFrameSchema,
} from './gen/liveim/v1/client_pb.js';
import type { Logger } from './logger.js';
import type { ImSocket, ImTransportFactory } from './transport/transport.js';
import type { RequestBody } from './wire.js';

/** CloseInfo says how a connection ended. */
export interface CloseInfo {
  /** WebSocket close status (1006 when the socket just dropped). */
  code: number;
  reason: string;
  /** The DisconnectEvent the gateway sent before closing, if any. */
  disconnect?: DisconnectEvent;
  /** True when this side closed it (close() was called). */
  local: boolean;
}

/** ConnectionHandlers receive a connection's events and its end. */
export interface ConnectionHandlers {
  onEvent(ev: Event): void;
  onClose(info: CloseInfo): void;
}

interface Pending {
  resolve(rep: Reply): void;
  reject(err: ImError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Connection is one socket; create it with {@link Connection.open}. */
export class Connection {
  #socket: ImSocket | undefined;
  #handlers: ConnectionHandlers;
  #log: Logger;
  #requestTimeoutMs: number;
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #open = false;
  #closed = false;
  #closingLocally = false;
  #disconnect: DisconnectEvent | undefined;
  /** Date.now() of the last frame received. */
  lastReceived = Date.now();

  private constructor(handlers: ConnectionHandlers, log: Logger, requestTimeoutMs: number) {
    this.#handlers = handlers;
    this.#log = log;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  /**
   * open connects to url and resolves once the socket is open; it rejects
   * with ImError 503 when it cannot connect within timeoutMs.
   */
  static open(
    transport: ImTransportFactory,
    url: string,
    handlers: ConnectionHandlers,
    log: Logger,
    opts: { requestTimeoutMs: number; connectTimeoutMs: number },
  ): Promise<Connection> {
    const c = new Connection(handlers, log, opts.requestTimeoutMs);
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      let lastError = '';
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        c.close(1000, 'connect timeout');
        reject(new ImError(ImErrorCode.UNAVAILABLE, `connect to ${url}: timed out`));
      }, opts.connectTimeoutMs);
      try {
        c.#socket = transport(url, {
          onOpen: () => {
            c.#open = true;
            c.lastReceived = Date.now();
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(c);
          },
          onMessage: (data) => c.#receive(data),
          onError: (err) => {
            lastError = err.message;
            log.debug('socket error', err.message);
          },
          onClose: (code, reason) => {
            c.#ended(code, reason);
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const why = lastError !== '' ? lastError : `closed with ${code}${reason !== '' ? ` ${reason}` : ''}`;
            reject(new ImError(ImErrorCode.UNAVAILABLE, `connect to ${url}: ${why}`));
          },
        });
      } catch (err) {
        settled = true;
        clearTimeout(timer);
        c.#closed = true;
        reject(new ImError(ImErrorCode.UNAVAILABLE, `connect to ${url}: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** isOpen reports whether the socket is open and not closing. */
  get isOpen(): boolean {
    return this.#open && !this.#closed && !this.#closingLocally;
  }

  /**
   * request sends one ClientFrame and resolves with its Reply; it rejects
   * with the reply's {code, msg}, 503 on timeout, 603 when the connection
   * ends first.
   */
  request(body: RequestBody, timeoutMs = this.#requestTimeoutMs): Promise<Reply> {
    if (!this.isOpen || this.#socket === undefined) {
      return Promise.reject(new ImError(ImErrorCode.SDK_STALE_REPLY, 'connection closed'));
    }
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const id = this.#nextId;
    const bytes = toBinary(ClientFrameSchema, create(ClientFrameSchema, { id, body }));
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ImError(ImErrorCode.UNAVAILABLE, `${body.case}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        this.#log.debug('send', id, body.case);
        this.#socket?.send(bytes);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new ImError(ImErrorCode.SDK_STALE_REPLY, `send: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** close closes the socket; pending requests reject with 603. */
  close(code = 1000, reason = ''): void {
    if (this.#closed || this.#closingLocally) return;
    this.#closingLocally = true;
    this.#failPending('connection closed');
    try {
      this.#socket?.close(code, reason);
    } catch (err) {
      this.#log.debug('close', err);
      this.#ended(1006, 'close failed');
    }
  }

  #receive(data: Uint8Array): void {
    this.lastReceived = Date.now();
    let frame;
    try {
      frame = fromBinary(ServerFrameSchema, data);
    } catch (err) {
      this.#log.warn('unreadable server frame', err);
      return;
    }
    switch (frame.body.case) {
      case 'reply':
        this.#reply(frame.body.value);
        break;
      case 'event':
        this.#event(frame.body.value);
        break;
      case 'batch':
        for (const ev of frame.body.value.events) this.#event(ev);
        break;
      default:
        this.#log.debug('empty server frame');
    }
  }

  #reply(rep: Reply): void {
    const p = this.#pending.get(rep.id);
    if (p === undefined) {
      if (rep.code !== 0) this.#log.warn(`error reply ${rep.code} ${rep.msg} (id ${rep.id})`);
      return;
    }
    this.#pending.delete(rep.id);
    clearTimeout(p.timer);
    this.#log.debug('reply', rep.id, rep.code, rep.body.case);
    if (rep.code !== 0) p.reject(new ImError(rep.code, rep.msg));
    else p.resolve(rep);
  }

  #event(ev: Event): void {
    if (ev.body.case === 'disconnect') {
      this.#disconnect = ev.body.value;
      this.#log.info('disconnect event', ev.body.value.code, ev.body.value.reason);
      return;
    }
    if (this.#closingLocally) return;
    this.#handlers.onEvent(ev);
  }

  #ended(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failPending(`connection closed (${code}${reason !== '' ? ` ${reason}` : ''})`);
    this.#log.info('connection closed', code, reason);
    const info: CloseInfo = { code, reason, local: this.#closingLocally };
    if (this.#disconnect !== undefined) info.disconnect = this.#disconnect;
    if (this.#open) this.#handlers.onClose(info);
  }

  #failPending(why: string): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new ImError(ImErrorCode.SDK_STALE_REPLY, why));
      this.#pending.delete(id);
    }
  }
}
