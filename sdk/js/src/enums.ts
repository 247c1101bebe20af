/** ImLogLevel selects what the SDK logs to the console. */
export const ImLogLevel = {
  /** Nothing. */
  NONE: 0,
  /** Everything, frames included: for debugging. */
  DBUG: 1,
  /** Connection life cycle and the above. */
  INFO: 2,
  /** Recoverable problems and the above. */
  WARN: 3,
  /** Errors only. */
  ERROR: 4,
} as const;
/** A value of {@link ImLogLevel}. */
export type ImLogLevel = (typeof ImLogLevel)[keyof typeof ImLogLevel];

/** ImMessageLevel: NORMAL may be dropped under overload; HIGH is stored and resumed, never dropped. */
export const ImMessageLevel = {
  NORMAL: 0,
  HIGH: 1,
} as const;
/** A value of {@link ImMessageLevel}. */
export type ImMessageLevel = (typeof ImMessageLevel)[keyof typeof ImMessageLevel];

/** ImSortType orders list results: ASC oldest (or first joined) first. */
export const ImSortType = {
  ASC: 0,
  DESC: 1,
} as const;
/** A value of {@link ImSortType}. */
export type ImSortType = (typeof ImSortType)[keyof typeof ImSortType];

/** ImDisconnectCode is the argument of the engine's `disconnect` event. */
export const ImDisconnectCode = {
  /** The app logged out. */
  LOGOUT: 1,
  /** The server kicked the session. */
  KICKED: 2,
  /** The server closed a silent session (the SDK reconnects). */
  TIMEOUT: 3,
  /** The same user logged in elsewhere (no automatic reconnect). */
  LOGGED_IN_ELSEWHERE: 4,
} as const;
/** A value of {@link ImDisconnectCode}. */
export type ImDisconnectCode = (typeof ImDisconnectCode)[keyof typeof ImDisconnectCode];
