/** Picks the transport for the runtime, or the one the app names. */
import { ImError, ImErrorCode } from '../errors.js';
import { isNode, nodeWsAvailable, nodeWsTransport } from './node-ws.js';
import type { ImTransportFactory, ImTransportName, WakeWatcher } from './transport.js';
import { wechatGlobal, wechatTransport, wechatWakeups } from './wechat.js';
import { hasWebSocket, webSocketTransport } from './websocket.js';

/** SelectedTransport is a transport factory, its name for logs, and its platform's wake-up hints. */
export interface SelectedTransport {
  name: string;
  open: ImTransportFactory;
  /** Present where the platform tells of returns to the foreground and of the network (WeChat). */
  watch?: WakeWatcher;
}

/**
 * selectTransport returns the transport to use. "auto" prefers a WeChat
 * mini-program's wx.connectSocket, then Node's `ws`, then the standard
 * WebSocket. It throws ImError 1002 when none is available.
 */
export function selectTransport(choice: ImTransportName | ImTransportFactory = 'auto'): SelectedTransport {
  if (typeof choice === 'function') return { name: 'custom', open: choice };
  const fail = (why: string) => new ImError(ImErrorCode.SDK_ENGINE_FAILED, why);
  switch (choice) {
    case 'wechat':
      if (wechatGlobal() === undefined) throw fail('transport "wechat": wx.connectSocket is not available');
      return { name: 'wechat', open: wechatTransport, watch: wechatWakeups };
    case 'ws':
      if (!nodeWsAvailable) throw fail('transport "ws": this build has no Node transport');
      return { name: 'ws', open: nodeWsTransport };
    case 'websocket':
      if (!hasWebSocket()) throw fail('transport "websocket": the runtime has no WebSocket');
      return { name: 'websocket', open: webSocketTransport };
    case 'auto':
      if (wechatGlobal() !== undefined) return { name: 'wechat', open: wechatTransport, watch: wechatWakeups };
      if (isNode() && nodeWsAvailable) return { name: 'ws', open: nodeWsTransport };
      if (hasWebSocket()) return { name: 'websocket', open: webSocketTransport };
      throw fail('no WebSocket transport in this runtime');
    default:
      throw new ImError(ImErrorCode.INIT_BAD_CONFIG, `unknown transport ${JSON.stringify(choice)}`);
  }
}
