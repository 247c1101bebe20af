/** Stands in for node-ws.ts in the browser bundle, which carries no `ws`. */
import type { ImSocket, ImSocketHandlers, ImTransportFactory } from './transport.js';

/** isNode is false in the browser bundle: it never picks the Node transport. */
export function isNode(): boolean {
  return false;
}

/** nodeWsAvailable tells whether this build carries the `ws` transport. */
export const nodeWsAvailable = false;

/** nodeWsTransport fails: the browser bundle has no `ws`. */
export const nodeWsTransport: ImTransportFactory = (_url: string, _h: ImSocketHandlers): ImSocket => {
  throw new Error('the browser bundle has no Node transport; use the npm package on Node');
};
