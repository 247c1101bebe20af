/**
 * The Node transport: the `ws` package, loaded on first use so bundles for
 * browsers and mini-programs never need it (the IIFE build replaces this
 * module with node-ws-stub.ts).
 */
import { type ImSocket, type ImSocketHandlers, type ImTransportFactory, toBytes } from './transport.js';

/** isNode reports whether the SDK runs on Node.js. */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions === 'object' && typeof process.versions.node === 'string';
}

/** nodeWsAvailable tells whether this build carries the `ws` transport. */
export const nodeWsAvailable = true;

type WsModule = typeof import('ws');
let wsModule: Promise<WsModule> | undefined;

/** nodeWsTransport opens connections with the `ws` package. */
export const nodeWsTransport: ImTransportFactory = (url: string, h: ImSocketHandlers): ImSocket => {
  type WsSocket = import('ws').WebSocket;
  let sock: WsSocket | undefined;
  let closed = false;
  let closeRequested: { code: number; reason: string } | undefined;
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    h.onClose(code, reason);
  };
  wsModule ??= import('ws');
  wsModule.then(
    (mod) => {
      if (closeRequested !== undefined) {
        finish(closeRequested.code, closeRequested.reason);
        return;
      }
      const Ctor = (mod.WebSocket ?? mod.default) as typeof import('ws').WebSocket;
      const s = new Ctor(url, { perMessageDeflate: false });
      s.binaryType = 'arraybuffer';
      sock = s;
      s.on('open', () => h.onOpen());
      s.on('message', (data: unknown, isBinary: boolean) => {
        if (!isBinary) return;
        const b = toBytes(data);
        if (b !== undefined) h.onMessage(b);
      });
      s.on('error', (err: Error) => h.onError(err));
      s.on('close', (code: number, reason: Buffer) => finish(code, reason.toString()));
    },
    (err: unknown) => {
      h.onError(err instanceof Error ? err : new Error(String(err)));
      finish(1006, 'ws package unavailable');
    },
  );
  return {
    send: (data) => {
      if (sock === undefined) throw new Error('socket not open');
      sock.send(data);
    },
    close: (code = 1000, reason = '') => {
      if (sock === undefined) {
        closeRequested = { code, reason };
        return;
      }
      if (sock.readyState === sock.CONNECTING) {
        sock.terminate();
        return;
      }
      sock.close(code, reason);
    },
  };
};
