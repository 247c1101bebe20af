/**
 * The WeChat mini-program transport: wx.connectSocket and its SocketTask,
 * and the reconnect triggers wx.onAppShow and wx.onNetworkStatusChange.
 * Only the parts of the mini-program API the SDK uses are typed here.
 */
import { type ImSocket, type ImSocketHandlers, type ImTransportFactory, type WakeWatcher, toArrayBuffer, toBytes } from './transport.js';

/** WxSocketTask is the part of WeChat's SocketTask the SDK uses. */
export interface WxSocketTask {
  onOpen(cb: (res?: unknown) => void): void;
  onMessage(cb: (res: { data: string | ArrayBuffer }) => void): void;
  onClose(cb: (res: { code?: number; reason?: string }) => void): void;
  onError(cb: (res: { errMsg?: string }) => void): void;
  send(opts: { data: string | ArrayBuffer; success?: () => void; fail?: (res: { errMsg?: string }) => void }): void;
  close(opts?: { code?: number; reason?: string; success?: () => void; fail?: (res: { errMsg?: string }) => void }): void;
}

/** WxConnectSocketOptions is the part of wx.connectSocket's options the SDK passes. */
export interface WxConnectSocketOptions {
  url: string;
  header?: Record<string, string>;
  protocols?: string[];
  timeout?: number;
  success?: () => void;
  fail?: (res: { errMsg?: string }) => void;
}

/** WxNetworkStatus is what wx.onNetworkStatusChange's listener gets. */
export interface WxNetworkStatus {
  isConnected: boolean;
  /** wifi, 2g, 3g, 4g, 5g, unknown, none. */
  networkType?: string;
}

/**
 * Wx is the part of the mini-program's global `wx` the SDK uses. The
 * listener functions are optional: without them (an old base library, a
 * runtime that imitates wx) the SDK only has its heartbeats and backoff.
 */
export interface Wx {
  connectSocket(opts: WxConnectSocketOptions): WxSocketTask;
  onAppShow?(listener: (res?: unknown) => void): void;
  offAppShow?(listener: (res?: unknown) => void): void;
  onNetworkStatusChange?(listener: (res: WxNetworkStatus) => void): void;
  offNetworkStatusChange?(listener: (res: WxNetworkStatus) => void): void;
}

/** wechatGlobal returns the mini-program's `wx` when the runtime has one with connectSocket. */
export function wechatGlobal(): Wx | undefined {
  const g = globalThis as { wx?: { connectSocket?: unknown } };
  let w: { connectSocket?: unknown } | undefined = g.wx;
  if (w === undefined && typeof wx !== 'undefined') w = wx as { connectSocket?: unknown };
  if (w !== undefined && w !== null && typeof w.connectSocket === 'function') return w as Wx;
  return undefined;
}

declare const wx: unknown;

/**
 * wechatWakeups calls wake when the mini-program comes back to the
 * foreground (wx.onAppShow) and when the network comes back
 * (wx.onNetworkStatusChange with isConnected; a change of network type
 * counts too: the old connection went over the old network). WeChat closes
 * a backgrounded mini-program's sockets after a few seconds, or leaves them
 * silent, and refuses new ones until it is shown again, so the reconnect
 * backoff has usually grown long by then. The returned function removes
 * the listeners (or, where wx has no off* functions, makes them inert).
 */
export const wechatWakeups: WakeWatcher = (wake) => {
  const w = wechatGlobal();
  if (w === undefined) return () => undefined;
  let on = true;
  const shown = () => {
    if (on) wake('mini-program shown');
  };
  const network = (res: WxNetworkStatus) => {
    if (on && res?.isConnected === true) wake(`network ${res.networkType ?? 'connected'}`);
  };
  w.onAppShow?.(shown);
  w.onNetworkStatusChange?.(network);
  return () => {
    on = false;
    w.offAppShow?.(shown);
    w.offNetworkStatusChange?.(network);
  };
};

/** wechatTransport opens connections with wx.connectSocket. */
export const wechatTransport: ImTransportFactory = (url: string, h: ImSocketHandlers): ImSocket => {
  const w = wechatGlobal();
  if (w === undefined) throw new Error('wx.connectSocket is not available');
  let closed = false;
  const finish = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    h.onClose(code, reason);
  };
  const task = w.connectSocket({
    url,
    fail: (res) => {
      h.onError(new Error(res?.errMsg ?? 'connectSocket failed'));
      finish(1006, res?.errMsg ?? 'connectSocket failed');
    },
  });
  task.onOpen(() => h.onOpen());
  task.onMessage((res) => {
    const b = toBytes(res.data);
    if (b !== undefined) h.onMessage(b);
  });
  task.onError((res) => h.onError(new Error(res?.errMsg ?? 'socket error')));
  task.onClose((res) => finish(res?.code ?? 1006, res?.reason ?? ''));
  return {
    send: (data) => {
      task.send({
        data: toArrayBuffer(data),
        fail: (res) => h.onError(new Error(res?.errMsg ?? 'send failed')),
      });
    },
    // WeChat accepts 1000 and 3000–4999 only.
    close: (code = 1000, reason = '') => task.close({ code: code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason }),
  };
};
