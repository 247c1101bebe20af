/**
 * The public shapes of the SDK: options the app passes and results it gets,
 * camelCase as in the hosted SDK's samples. Numbers are plain numbers.
 */
import type { ImError } from './errors.js';
import type { ImLogLevel, ImMessageLevel, ImSortType } from './enums.js';
import type { ImTransportFactory, ImTransportName } from './transport/transport.js';

/** ImUser is a user as others see it. */
export interface ImUser {
  userId: string;
  /** Opaque, JSON by convention (nickname, avatar); ≤512 bytes. */
  userExtension: string;
}

/** ImAuth is the login credential the app's server issues (SPEC §2). */
export interface ImAuth {
  /** Token expiry, Unix seconds. */
  timestamp: number;
  nonce: string;
  /** "admin" or empty. */
  role?: string;
  token: string;
}

/** ImReconnectOptions tunes the reconnect backoff. */
export interface ImReconnectOptions {
  /** First delay, ms (default 500). Each failed attempt doubles it, with jitter. */
  initialDelayMs?: number;
  /** Largest delay, ms (default 30000). */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** ImInitOptions configures {@link ImEngine.init}. */
export interface ImInitOptions {
  /** Device ID sent at login; a random one is made when absent. */
  deviceId?: string;
  /** The app's ID (≤64 of A-Za-z0-9-). */
  appId: string;
  /** The app's public credential; it carries the gateway URL(s). */
  appSign: string;
  /** What to log (default ImLogLevel.ERROR). */
  logLevel?: ImLogLevel | number;
  /** Accepted for compatibility with the hosted SDK (it locates its wasm); unused. */
  locateFile?: (url: string) => string;
  /** Seconds of silence after which the server drops the session: 15–120, default 99. */
  heartbeatTimeout?: number;
  /** Gateway WebSocket URL; overrides the URLs in appSign. */
  serverUrl?: string;
  /** Transport: "auto" (default), "websocket", "ws", "wechat", or a factory. */
  transport?: ImTransportName | ImTransportFactory;
  /** Milliseconds a request waits for its reply (default 15000), then 503. */
  requestTimeoutMs?: number;
  /** Reconnect backoff. */
  reconnect?: ImReconnectOptions;
}

/** ImLoginOptions is what {@link ImEngine.login} takes. */
export interface ImLoginOptions {
  user: { userId: string; userExtension?: string };
  userAuth: ImAuth;
}

/** ImTokenCallback is handed to `tokenexpired` listeners: call it with fresh credentials. */
export type ImTokenCallback = (err: unknown, auth?: ImAuth) => void;

/** ImMuteStatus is a group's mute state. */
export interface ImMuteStatus {
  muteAll: boolean;
  muteUserList: string[];
  whiteUserList: string[];
}

/** ImGroupStatistics counts a group's traffic. */
export interface ImGroupStatistics {
  /** Joins so far. */
  pv: number;
  onlineCount: number;
  /** Messages sent per message type (repeatCount included). */
  msgAmount: Record<number, number>;
}

/** ImGroupInfo is what queryGroup and joinGroup return. */
export interface ImGroupInfo {
  groupId: string;
  groupName: string;
  groupMeta: string;
  /** ms */
  createTime: number;
  creator: string;
  admins: string[];
  statistics: ImGroupStatistics;
  muteStatus: ImMuteStatus;
  closed: boolean;
}

/** ImCreateGroupResult is what createGroup returns. */
export interface ImCreateGroupResult {
  groupId: string;
  alreadyExist: boolean;
}

/** ImGroupUser is a member in a user listing. */
export interface ImGroupUser extends ImUser {
  /** ms */
  joinTime: number;
}

/** ImListRecentGroupUserResult is what listRecentGroupUser returns. */
export interface ImListRecentGroupUserResult {
  groupId: string;
  total: number;
  userList: ImGroupUser[];
}

/** ImListGroupUserResult is what listGroupUser returns. */
export interface ImListGroupUserResult {
  groupId: string;
  nextPageToken: string;
  hasMore: boolean;
  userList: ImGroupUser[];
}

/** ImInfoChange is the `info` argument of the `infochange` event. */
export interface ImInfoChange {
  groupId: string;
  groupMeta: string;
  adminList: string[];
}

/** ImMessage is a group or C2C message. */
export interface ImMessage {
  messageId: string;
  /** Empty for C2C. */
  groupId: string;
  type: number;
  sender: ImUser;
  data: string;
  /** Per group, increasing; 0 for C2C. */
  seqnum: number;
  /** ms */
  timestamp: number;
  level: ImMessageLevel;
  repeatCount: number;
  totalMsgs: number;
  /** C2C only: who it was sent to. */
  receiverId?: string;
}

/** ImListMessageResult is what the list*Message calls return. */
export interface ImListMessageResult {
  groupId: string;
  nextPageToken: string;
  hasMore: boolean;
  messageList: ImMessage[];
}

/** A page token as the seed passes it: a number or a string. */
export type ImPageToken = string | number;

/** ImCreateGroupReq is what createGroup takes. */
export interface ImCreateGroupReq {
  /** Empty or absent: the server makes a unique one. */
  groupId?: string;
  groupName: string;
  groupMeta?: string;
}

/** ImModifyGroupReq is what modifyGroup takes. */
export interface ImModifyGroupReq {
  groupId: string;
  forceUpdateAdmins?: boolean;
  admins?: string[];
  forceUpdateGroupMeta?: boolean;
  groupMeta?: string;
}

/** ImListGroupUserReq is what listGroupUser takes (either token spelling). */
export interface ImListGroupUserReq {
  groupId: string;
  nextPageToken?: ImPageToken;
  nextpagetoken?: ImPageToken;
  /** ≤50, default 20. */
  pageSize?: number;
  sortType?: ImSortType | number;
}

/** ImMuteUserReq is what muteUser and cancelMuteUser take. */
export interface ImMuteUserReq {
  groupId: string;
  userList: string[];
}

/** ImSendC2cMessageReq is what sendC2cMessage takes. */
export interface ImSendC2cMessageReq {
  receiverId: string;
  data: string;
  /** Above 10000. */
  type: number;
  skipAudit?: boolean;
  level?: ImMessageLevel | number;
}

/** ImSendGroupMessageReq is what sendGroupMessage takes. */
export interface ImSendGroupMessageReq {
  groupId: string;
  data: string;
  /** Above 10000. */
  type: number;
  skipAudit?: boolean;
  skipMuteCheck?: boolean;
  level?: ImMessageLevel | number;
  noStorage?: boolean;
  /** Default 1. */
  repeatCount?: number;
}

/** ImDeleteMessageReq is what deleteMessage takes. */
export interface ImDeleteMessageReq {
  groupId: string;
  messageId: string;
}

/** ImListRecentMessageReq is what listRecentMessage takes. */
export interface ImListRecentMessageReq {
  groupId: string;
  /** Messages below this seqnum; absent or 0: the newest. */
  seqnum?: number;
  /** Default and maximum 50. */
  pageSize?: number;
}

/** ImListMessageReq is what listMessage takes (either token spelling). */
export interface ImListMessageReq {
  groupId: string;
  /** 0 or absent: every type. */
  type?: number;
  nextPageToken?: ImPageToken;
  nextpagetoken?: ImPageToken;
  /** ≤30, default 10. */
  pageSize?: number;
  sortType?: ImSortType | number;
}

/** ImListHistoryMessageReq is what listHistoryMessage takes. */
export interface ImListHistoryMessageReq extends ImListMessageReq {
  /** Unix seconds, inclusive; 0 or absent: no bound. */
  beginTime?: number;
  /** Unix seconds, inclusive; 0 or absent: no bound. */
  endTime?: number;
}

/** ImEngineEvents lists the engine's events and their listener signatures. */
export interface ImEngineEvents {
  connecting: () => void;
  connectfailed: (err: ImError) => void;
  connectsuccess: () => void;
  /** 1 logout, 2 kicked, 3 timeout (the SDK reconnects), 4 logged in elsewhere. */
  disconnect: (code: number) => void;
  tokenexpired: (cb: ImTokenCallback) => void;
  /** After a reconnect: the groups rejoined, with their current info. */
  reconnectsuccess: (groupInfos: ImGroupInfo[]) => void;
}

/** ImGroupEvents lists the group manager's events. */
export interface ImGroupEvents {
  /** reason 1: group closed, 2: kicked. */
  exit: (groupId: string, reason: number) => void;
  memberchange: (
    groupId: string,
    memberCount: number,
    joinUsers: ImUser[],
    leaveUsers: ImUser[],
    joinCount: number,
    leaveCount: number,
  ) => void;
  mutechange: (groupId: string, status: ImMuteStatus) => void;
  infochange: (groupId: string, info: ImInfoChange) => void;
}

/** ImMessageEvents lists the message manager's events. */
export interface ImMessageEvents {
  recvc2cmessage: (msg: ImMessage) => void;
  recvgroupmessage: (msg: ImMessage, groupId: string) => void;
  deletegroupmessage: (msgId: string, groupId: string) => void;
}
