/** Turns wire messages into the SDK's public shapes (plain numbers, camelCase). */
import type {
  GroupInfo,
  GroupUser,
  InfoChangeEvent,
  ListMessageReply,
  Message,
  MuteStatus,
  User,
} from './gen/liveim/v1/client_pb.js';
import type { ImMessageLevel } from './enums.js';
import type {
  ImGroupInfo,
  ImGroupUser,
  ImInfoChange,
  ImListMessageResult,
  ImMessage,
  ImMuteStatus,
  ImUser,
} from './types.js';

/** num turns an int64 (bigint, or string where BigInt is missing) into a number. */
export function num(v: bigint | number | string): number {
  return typeof v === 'number' ? v : Number(v);
}

export function toUser(u: User | undefined): ImUser {
  return { userId: u?.userId ?? '', userExtension: u?.userExtension ?? '' };
}

export function toGroupUser(u: GroupUser): ImGroupUser {
  return { userId: u.userId, userExtension: u.userExtension, joinTime: num(u.joinTime) };
}

export function toMuteStatus(s: MuteStatus | undefined): ImMuteStatus {
  return {
    muteAll: s?.muteAll ?? false,
    muteUserList: [...(s?.muteUserList ?? [])],
    whiteUserList: [...(s?.whiteUserList ?? [])],
  };
}

export function toGroupInfo(g: GroupInfo): ImGroupInfo {
  const msgAmount: Record<number, number> = {};
  for (const [type, n] of Object.entries(g.statistics?.msgAmount ?? {})) msgAmount[Number(type)] = num(n);
  return {
    groupId: g.groupId,
    groupName: g.groupName,
    groupMeta: g.groupMeta,
    createTime: num(g.createTime),
    creator: g.creator,
    admins: [...g.admins],
    statistics: {
      pv: num(g.statistics?.pv ?? 0),
      onlineCount: num(g.statistics?.onlineCount ?? 0),
      msgAmount,
    },
    muteStatus: toMuteStatus(g.muteStatus),
    closed: g.closed,
  };
}

export function toMessage(m: Message): ImMessage {
  const out: ImMessage = {
    messageId: m.messageId,
    groupId: m.groupId,
    type: m.type,
    sender: toUser(m.sender),
    data: m.data,
    seqnum: num(m.seqnum),
    timestamp: num(m.timestamp),
    level: m.level as number as ImMessageLevel,
    repeatCount: m.repeatCount === 0 ? 1 : m.repeatCount,
    totalMsgs: num(m.totalMsgs),
  };
  if (m.receiverId !== '') out.receiverId = m.receiverId;
  return out;
}

export function toMessageList(r: ListMessageReply, groupId: string): ImListMessageResult {
  return {
    groupId: r.groupId !== '' ? r.groupId : groupId,
    nextPageToken: r.nextPageToken,
    hasMore: r.hasMore,
    messageList: r.messageList.map(toMessage),
  };
}

export function toInfoChange(e: InfoChangeEvent): ImInfoChange {
  return { groupId: e.groupId, groupMeta: e.groupMeta, adminList: [...e.adminList] };
}
