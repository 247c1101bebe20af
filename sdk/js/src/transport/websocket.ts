/** The browser transport: the standard WebSocket with binaryType "arraybuffer". */
import { type ImSocket, type ImSocketHandlers, type ImTransportFactory, toBytes } from './transport.js';

/** hasWebSocket reports whether the runtime has a standard WebSocket. */
export function hasWebSocket(): boolean {
  return typeof WebSocket === 'function';
}

/** webSocketTransport opens connections with the runtime's WebSocket. */
export const webSocketTransport: ImTransportFactory = (url: string, h: ImSocketHandlers): ImSocket => {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  let closed = false;
  ws.onopen = () => h.onOpen();
  ws.onmessage = (ev: MessageEvent) => {
    const b = toBytes(ev.data);
    if (b !== undefined) h.onMessage(b);
  };
  ws.onerror = () => h.onError(new Error('WebSocket error'));
  ws.onclose = (ev: CloseEvent) => {
    if (closed) return;
    closed = true;
    h.onClose(ev.code, ev.reason);
  };
  return {
    send: (data) => ws.send(data),
    close: (code, reason) => {
      try {
        ws.close(code ?? 1000, reason);
      } catch {
        ws.close();
      }
    },
  };
};
