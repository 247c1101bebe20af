/**
 * @liveim/im: the TypeScript client SDK of liveim, with the API of the
 * hosted interactive-messaging SDK (ImEngine, group and message managers).
 */
import './text-setup.js'; // first: before the generated code loads
export { ImEngine } from './engine.js';
export { ImGroupManager } from './group-manager.js';
export { ImMessageManager } from './message-manager.js';
export { ImLogLevel, ImMessageLevel, ImSortType, ImDisconnectCode } from './enums.js';
export { ImError, ImErrorCode, isImError } from './errors.js';
export type { ImErrorCodeValue } from './errors.js';
export { parseAppSign } from './appsign.js';
export type { AppSign } from './appsign.js';
export type { ImSocket, ImSocketHandlers, ImTransportFactory, ImTransportName } from './transport/transport.js';
export type { Wx, WxSocketTask, WxConnectSocketOptions, WxNetworkStatus } from './transport/wechat.js';
export { SDK_VERSION } from './version.js';
export type * from './types.js';
