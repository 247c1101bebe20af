/**
 * The Node transport: the `ws` package (an optional peer dependency),
 * loaded on first use so bundles for browsers and mini-programs never need
 * it (the browser builds replace this module with node-ws-stub.ts). Where
 * `ws` is not installed, the runtime's own WebSocket (Node.js 22 and later)
 * stands in.
 */
import { type ImSocket, type ImSocketHandlers, type ImTransportFactory, toBytes } from './transport.js';
import { hasWebSocket, webSocketTransport } from './websocket.js';

/** isNode reports whether the SDK runs on Node.js. */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions === 'object' && typeof process.versions.node === 'string';
}

/** nodeWsAvailable tells whether this build carries the `ws` transport. */
export const nodeWsAvailable = true;

type WsModule = typeof import('ws');

/** WS_MISSING is the error when neither `ws` nor a WebSocket of the runtime is there. */
const WS_MISSING = 'the ws package is not installed (npm install ws) and this Node.js has no WebSocket of its own';

/** nodeWsTransport opens connections with the `ws` package, or else the runtime's WebSocket. */
export const nodeWsTransport: ImTransportFactory = (url: string, h: ImSocketHandlers): ImSocket => {
  type WsSocket = import('ws').WebSocket;
  let sock: WsSocket | undefined;
  let fallback: ImSocket | undefined;
  let closed = false;
  let closeRequested: { code: number; reason: string } | undefined;
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    h.onClose(code, reason);
  };
  // Not cached across connections: a failed import is retried by the next
  // connection (Node caches a successful one itself).
  const wsModule: Promise<WsModule> = import('ws');
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
      if (closeRequested !== undefined) {
        finish(closeRequested.code, closeRequested.reason);
        return;
      }
      if (hasWebSocket()) {
        fallback = webSocketTransport(url, { onOpen: h.onOpen, onMessage: h.onMessage, onError: h.onError, onClose: finish });
        return;
      }
      h.onError(new Error(`${WS_MISSING}: ${err instanceof Error ? err.message : String(err)}`));
      finish(1006, WS_MISSING);
    },
  );
  return {
    send: (data) => {
      if (fallback !== undefined) {
        fallback.send(data);
        return;
      }
      if (sock === undefined) throw new Error('socket not open');
      sock.send(data);
    },
    close: (code = 1000, reason = '') => {
      if (fallback !== undefined) {
        fallback.close(code, reason);
        return;
      }
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
