/**
 * A fake of the mini-program platform API, `wx`, for tests: connectSocket
 * returns a SocketTask built on a real WebSocket (the `ws` package) to the
 * real server; onAppShow and onNetworkStatusChange keep their listeners for
 * the test to fire. The test can also do to the sockets what WeChat does to
 * a backgrounded mini-program: close them, or leave them silent.
 */
import { fromBinary } from '@bufbuild/protobuf';
import WebSocket from 'ws';
import { ClientFrameSchema, ServerFrameSchema } from '../src/gen/liveim/v1/client_pb.js';
import type { Wx, WxConnectSocketOptions, WxNetworkStatus, WxSocketTask } from '../src/index.js';

export interface FakeWx extends Wx {
  /** The URL of every connectSocket call, in order. */
  urls: string[];
  /** Messages the SDK sent. */
  sent: number;
  /** Messages handed to the SDK. */
  received: number;
  /** Close events handed to the SDK. */
  closes: number;
  /** Pings the SDK sent (stalled sockets included) and pongs it was handed. */
  pings: number;
  pongs: number;
  /** How many listeners the SDK has registered and not removed. */
  listening(): { appShow: number; network: number };
  /** show fires the onAppShow listeners: the mini-program is back in the foreground. */
  show(): void;
  /** network fires the onNetworkStatusChange listeners. */
  network(isConnected: boolean, networkType?: string): void;
  /** cut terminates every open socket (the SDK gets a close event). */
  cut(): void;
  /** stall makes every open socket a black hole: nothing sent or received, no close event but the SDK's own. */
  stall(): void;
}

/** fakeWx makes a fresh fake `wx`; put it on globalThis.wx before the SDK's init. */
export function fakeWx(): FakeWx {
  const sockets = new Set<WebSocket>();
  const stalled = new WeakSet<WebSocket>();
  const closedHere = new WeakSet<WebSocket>();
  const appShow = new Set<(res?: unknown) => void>();
  const network = new Set<(res: WxNetworkStatus) => void>();
  const w: FakeWx = {
    urls: [],
    sent: 0,
    received: 0,
    closes: 0,
    pings: 0,
    pongs: 0,
    connectSocket(opts: WxConnectSocketOptions): WxSocketTask {
      w.urls.push(opts.url);
      const ws = new WebSocket(opts.url);
      ws.binaryType = 'arraybuffer';
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      return {
        onOpen: (cb) => ws.on('open', () => cb({})),
        onMessage: (cb) =>
          ws.on('message', (data: ArrayBuffer, isBinary: boolean) => {
            if (stalled.has(ws)) return;
            w.received++;
            if (isBinary) {
              const f = fromBinary(ServerFrameSchema, new Uint8Array(data));
              if (f.body.case === 'reply' && f.body.value.body.case === 'pong') w.pongs++;
            }
            cb({ data: isBinary ? data : String(data) });
          }),
        onClose: (cb) =>
          ws.on('close', (code, reason) => {
            // A stalled socket reports only the close the SDK asked for.
            if (stalled.has(ws) && !closedHere.has(ws)) return;
            w.closes++;
            cb({ code, reason: reason.toString() });
          }),
        onError: (cb) => ws.on('error', (err) => cb({ errMsg: err.message })),
        send: ({ data, success, fail }) => {
          // WeChat sends an ArrayBuffer as one binary message (the check
          // works across realms: the mini-program test runs the SDK in one).
          if (Object.prototype.toString.call(data) !== '[object ArrayBuffer]') {
            fail?.({ errMsg: 'send: data must be an ArrayBuffer' });
            return;
          }
          const bytes = new Uint8Array(data as ArrayBuffer);
          if (fromBinary(ClientFrameSchema, bytes).body.case === 'ping') w.pings++;
          if (stalled.has(ws)) return;
          w.sent++;
          ws.send(Buffer.from(bytes), (err) => (err ? fail?.({ errMsg: err.message }) : success?.()));
        },
        close: (o) => {
          closedHere.add(ws);
          if (stalled.has(ws)) ws.terminate();
          else ws.close(o?.code ?? 1000, o?.reason ?? '');
        },
      };
    },
    onAppShow: (cb) => appShow.add(cb),
    offAppShow: (cb) => appShow.delete(cb),
    onNetworkStatusChange: (cb) => network.add(cb),
    offNetworkStatusChange: (cb) => network.delete(cb),
    listening: () => ({ appShow: appShow.size, network: network.size }),
    show: () => {
      for (const cb of [...appShow]) cb({ path: 'pages/index/index', scene: 1001, query: {} });
    },
    network: (isConnected, networkType = isConnected ? 'wifi' : 'none') => {
      for (const cb of [...network]) cb({ isConnected, networkType });
    },
    cut: () => {
      for (const s of sockets) s.terminate();
    },
    stall: () => {
      for (const s of sockets) stalled.add(s);
    },
  };
  return w;
}
