/**
 * ImMessageManager sends and lists messages (SPEC §3) and emits the message
 * events: recvc2cmessage, recvgroupmessage, deletegroupmessage.
 */
import { randomId } from './config.js';
import { toMessageList } from './convert.js';
import { Emitter } from './emitter.js';
import type { ManagerContext } from './manager-context.js';
import { bool, int, int64, level, obj, pageToken, sortType, str } from './params.js';
import type {
  ImDeleteMessageReq,
  ImListHistoryMessageReq,
  ImListMessageReq,
  ImListMessageResult,
  ImListRecentMessageReq,
  ImMessageEvents,
  ImSendC2cMessageReq,
  ImSendGroupMessageReq,
} from './types.js';
import { replyBody } from './wire.js';

export class ImMessageManager extends Emitter<ImMessageEvents> {
  #ctx: ManagerContext;

  /** @internal */
  constructor(ctx: ManagerContext) {
    super((event, err) => ctx.log.error(`${event} listener threw`, err));
    this.#ctx = ctx;
  }

  /** sendC2cMessage sends to one user and resolves with the message ID; 424 when they are offline. */
  sendC2cMessage(req: ImSendC2cMessageReq): Promise<string> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const rep = replyBody(
        await s.send({
          case: 'sendC2cMessage',
          value: {
            receiverId: str(r.receiverId, 'receiverId'),
            data: typeof r.data === 'string' ? r.data : String(r.data ?? ''),
            type: int(r.type, 'type'),
            skipAudit: bool(r.skipAudit, 'skipAudit'),
            level: level(r.level),
            clientMsgId: randomId(),
          },
        }),
        'sendMessage',
      );
      return rep.messageId;
    });
  }

  /** sendGroupMessage sends to a joined group and resolves with the message ID; 425 when not joined, 442 when muted. */
  sendGroupMessage(req: ImSendGroupMessageReq): Promise<string> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const rep = replyBody(
        await s.send({
          case: 'sendGroupMessage',
          value: {
            groupId: str(r.groupId, 'groupId'),
            data: typeof r.data === 'string' ? r.data : String(r.data ?? ''),
            type: int(r.type, 'type'),
            skipAudit: bool(r.skipAudit, 'skipAudit'),
            skipMuteCheck: bool(r.skipMuteCheck, 'skipMuteCheck'),
            level: level(r.level),
            noStorage: bool(r.noStorage, 'noStorage'),
            repeatCount: int(r.repeatCount, 'repeatCount', 1),
            clientMsgId: randomId(),
          },
        }),
        'sendMessage',
      );
      return rep.messageId;
    });
  }

  /** deleteMessage deletes (owner, admins) or recalls (sender) a group message; members get deletegroupmessage. */
  deleteMessage(req: ImDeleteMessageReq): Promise<void> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      await s.request({ case: 'deleteMessage', value: { groupId: str(r.groupId, 'groupId'), messageId: str(r.messageId, 'messageId') } });
    });
  }

  /** listRecentMessage returns a joined group's last stored messages, oldest first. */
  listRecentMessage(req: ImListRecentMessageReq): Promise<ImListMessageResult> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const groupId = str(r.groupId, 'groupId');
      const rep = replyBody(
        await s.request({
          case: 'listRecentMessage',
          value: { groupId, seqnum: int64(r.seqnum, 'seqnum'), pageSize: int(r.pageSize, 'pageSize') },
        }),
        'listMessage',
      );
      return toMessageList(rep, groupId);
    });
  }

  /** listMessage pages through a group's stored messages (owner and admins). */
  listMessage(req: ImListMessageReq): Promise<ImListMessageResult> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const groupId = str(r.groupId, 'groupId');
      const rep = replyBody(
        await s.request({
          case: 'listMessage',
          value: {
            groupId,
            type: int(r.type, 'type'),
            nextPageToken: pageToken(r),
            pageSize: int(r.pageSize, 'pageSize'),
            sortType: sortType(r.sortType),
          },
        }),
        'listMessage',
      );
      return toMessageList(rep, groupId);
    });
  }

  /** listHistoryMessage lists a group's stored messages by time range, without joining. */
  listHistoryMessage(req: ImListHistoryMessageReq): Promise<ImListMessageResult> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const groupId = str(r.groupId, 'groupId');
      const rep = replyBody(
        await s.request({
          case: 'listHistoryMessage',
          value: {
            groupId,
            type: int(r.type, 'type'),
            nextPageToken: pageToken(r),
            pageSize: int(r.pageSize, 'pageSize'),
            sortType: sortType(r.sortType),
            beginTime: int64(r.beginTime, 'beginTime'),
            endTime: int64(r.endTime, 'endTime'),
          },
        }),
        'listMessage',
      );
      return toMessageList(rep, groupId);
    });
  }
}
