/**
 * A transport opens one binary WebSocket-like connection. The SDK ships
 * three: the browser's WebSocket, Node's `ws` package and WeChat
 * mini-programs' wx.connectSocket; an app may pass its own factory.
 */

/** ImSocketHandlers are the callbacks a transport calls; onClose comes once, last. */
export interface ImSocketHandlers {
  onOpen(): void;
  /** One binary message. */
  onMessage(data: Uint8Array): void;
  /** The connection ended (or never opened): WebSocket close status and reason. */
  onClose(code: number, reason: string): void;
  /** A transport error; onClose follows. */
  onError(err: Error): void;
}

/** ImSocket is one open or opening connection. */
export interface ImSocket {
  /** send writes one binary message. */
  send(data: Uint8Array): void;
  /** close starts a close handshake; onClose follows. */
  close(code?: number, reason?: string): void;
}

/** ImTransportFactory opens a connection to url and reports on it through handlers. */
export type ImTransportFactory = (url: string, handlers: ImSocketHandlers) => ImSocket;

/**
 * WakeWatcher subscribes to the platform's hints that the connection deserves
 * a look now rather than at the next heartbeat (the app back in the
 * foreground, the network back); wake gets a reason for the log. It returns
 * the function that unsubscribes.
 */
export type WakeWatcher = (wake: (why: string) => void) => () => void;

/** ImTransportName names a built-in transport; "auto" picks one for the runtime. */
export type ImTransportName = 'auto' | 'websocket' | 'ws' | 'wechat';

/** toArrayBuffer returns exactly data's bytes as an ArrayBuffer (copying when it is a view). */
export function toArrayBuffer(data: Uint8Array): ArrayBuffer {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !isShared(data.buffer)) {
    return data.buffer as ArrayBuffer;
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy.buffer;
}

function isShared(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer;
}

/** toBytes turns a received binary payload (ArrayBuffer, view, or Node Buffer list) into bytes; it returns undefined for text. */
export function toBytes(data: unknown): Uint8Array | undefined {
  if (typeof data === 'string' || data === null || data === undefined) return undefined;
  if (Array.isArray(data)) {
    const parts = data.map(toBytes).filter((p): p is Uint8Array => p !== undefined);
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out;
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // An ArrayBuffer, possibly from another realm: duck-type it.
  const ab = data as { byteLength?: unknown; slice?: unknown };
  if (typeof ab.byteLength === 'number' && typeof ab.slice === 'function') return new Uint8Array(data as ArrayBuffer);
  return undefined;
}
