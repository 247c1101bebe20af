/**
 * A transport for tests, built on the `ws` package like the SDK's Node
 * transport, that the test can cut (terminate the real socket) and block
 * (refuse new connections for a while) to force reconnects.
 */
import WebSocket from 'ws';
import type { ImSocket, ImSocketHandlers, ImTransportFactory } from '../src/index.js';

export class CuttableTransport {
  sockets: WebSocket[] = [];
  opened = 0;
  refused = 0;
  #blockedUntil = 0;
  #stalled = new WeakSet<WebSocket>();
  #deaf = false;

  /** deafen drops what the server sends (replies, events) while on; requests still go out. */
  deafen(on: boolean): void {
    this.#deaf = on;
  }

  /** block refuses new connections for ms. */
  block(ms: number): void {
    this.#blockedUntil = Date.now() + ms;
  }

  /** stall makes the open sockets a black hole: nothing sent or received, no close (a dead NAT entry). */
  stall(): void {
    for (const s of this.sockets) this.#stalled.add(s);
  }

  /** cut terminates every open socket at once, as a network failure would. */
  cut(): void {
    for (const s of this.sockets.splice(0)) s.terminate();
  }

  readonly factory: ImTransportFactory = (url: string, h: ImSocketHandlers): ImSocket => {
    if (Date.now() < this.#blockedUntil) {
      this.refused++;
      setTimeout(() => {
        h.onError(new Error('refused by the test'));
        h.onClose(1006, 'refused by the test');
      }, 10);
      return { send: () => undefined, close: () => undefined };
    }
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.sockets.push(ws);
    let closed = false;
    ws.on('open', () => {
      this.opened++;
      h.onOpen();
    });
    ws.on('message', (data: ArrayBuffer) => {
      if (!this.#stalled.has(ws) && !this.#deaf) h.onMessage(new Uint8Array(data));
    });
    ws.on('error', (err) => h.onError(err));
    ws.on('close', (code, reason) => {
      if (closed) return;
      closed = true;
      h.onClose(code, reason.toString());
    });
    return {
      send: (d) => {
        if (!this.#stalled.has(ws)) ws.send(d);
      },
      close: (code, reason) => {
        if (this.#stalled.has(ws)) ws.terminate();
        else ws.close(code, reason);
      },
    };
  };
}
