/**
 * ImGroupManager runs the group operations of SPEC §3 and emits the group
 * events: exit, memberchange, mutechange, infochange.
 */
import { toGroupInfo, toGroupUser, toMuteStatus } from './convert.js';
import { Emitter } from './emitter.js';
import type { ManagerContext } from './manager-context.js';
import { bool, int, obj, optStr, pageToken, sortType, str, strList } from './params.js';
import type {
  ImCreateGroupReq,
  ImCreateGroupResult,
  ImGroupEvents,
  ImGroupInfo,
  ImListGroupUserReq,
  ImListGroupUserResult,
  ImListRecentGroupUserResult,
  ImModifyGroupReq,
  ImMuteStatus,
  ImMuteUserReq,
} from './types.js';
import { replyBody } from './wire.js';

export class ImGroupManager extends Emitter<ImGroupEvents> {
  #ctx: ManagerContext;

  /** @internal */
  constructor(ctx: ManagerContext) {
    super((event, err) => ctx.log.error(`${event} listener threw`, err));
    this.#ctx = ctx;
  }

  /** createGroup creates a group (login role admin); an empty groupId gets a generated one. */
  createGroup(req: ImCreateGroupReq): Promise<ImCreateGroupResult> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const rep = replyBody(
        await s.request({
          case: 'createGroup',
          value: { groupId: optStr(r.groupId, 'groupId'), groupName: optStr(r.groupName, 'groupName'), groupMeta: optStr(r.groupMeta, 'groupMeta') },
        }),
        'createGroup',
      );
      return { groupId: rep.groupId, alreadyExist: rep.alreadyExist };
    });
  }

  /** closeGroup closes a group (owner and admins); every member gets exit(groupId, 1). */
  closeGroup(groupId: string): Promise<void> {
    return this.#ctx.run(async (s) => {
      await s.request({ case: 'closeGroup', value: { groupId: str(groupId, 'groupId') } });
    });
  }

  /** joinGroup joins a group and returns its info; the SDK rejoins it after reconnects. */
  joinGroup(groupId: string): Promise<ImGroupInfo> {
    return this.#ctx.run(async (s) => toGroupInfo(await s.join(str(groupId, 'groupId'))));
  }

  /** leaveGroup leaves a group. */
  leaveGroup(groupId: string): Promise<void> {
    return this.#ctx.run((s) => s.leave(str(groupId, 'groupId')));
  }

  /** queryGroup returns a group's info. */
  queryGroup(groupId: string): Promise<ImGroupInfo> {
    return this.#ctx.run(async (s) =>
      toGroupInfo(replyBody(await s.request({ case: 'queryGroup', value: { groupId: str(groupId, 'groupId') } }), 'groupInfo')),
    );
  }

  /** modifyGroup changes the admins and/or the meta (owner and admins); members get infochange. */
  modifyGroup(req: ImModifyGroupReq): Promise<void> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      await s.request({
        case: 'modifyGroup',
        value: {
          groupId: str(r.groupId, 'groupId'),
          forceUpdateAdmins: bool(r.forceUpdateAdmins, 'forceUpdateAdmins'),
          admins: strList(r.admins, 'admins'),
          forceUpdateGroupMeta: bool(r.forceUpdateGroupMeta, 'forceUpdateGroupMeta'),
          groupMeta: optStr(r.groupMeta, 'groupMeta'),
        },
      });
    });
  }

  /** listRecentGroupUser returns the online count and the most recent joiners. */
  listRecentGroupUser(groupId: string): Promise<ImListRecentGroupUserResult> {
    return this.#ctx.run(async (s) => {
      const id = str(groupId, 'groupId');
      const rep = replyBody(await s.request({ case: 'listRecentGroupUser', value: { groupId: id } }), 'listRecentGroupUser');
      return { groupId: rep.groupId !== '' ? rep.groupId : id, total: Number(rep.total), userList: rep.userList.map(toGroupUser) };
    });
  }

  /** listGroupUser pages through every member by join time (owner and admins). */
  listGroupUser(req: ImListGroupUserReq): Promise<ImListGroupUserResult> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      const id = str(r.groupId, 'groupId');
      const rep = replyBody(
        await s.request({
          case: 'listGroupUser',
          value: { groupId: id, nextPageToken: pageToken(r), pageSize: int(r.pageSize, 'pageSize'), sortType: sortType(r.sortType) },
        }),
        'listGroupUser',
      );
      return {
        groupId: rep.groupId !== '' ? rep.groupId : id,
        nextPageToken: rep.nextPageToken,
        hasMore: rep.hasMore,
        userList: rep.userList.map(toGroupUser),
      };
    });
  }

  /** muteAll mutes the group; whiteUserList, when given, replaces the users who may still send. */
  muteAll(groupId: string, whiteUserList?: string[]): Promise<void> {
    return this.#ctx.run(async (s) => {
      await s.request({ case: 'muteAll', value: { groupId: str(groupId, 'groupId'), whiteUserList: strList(whiteUserList, 'whiteUserList') } });
    });
  }

  /** cancelMuteAll lifts the group mute. */
  cancelMuteAll(groupId: string): Promise<void> {
    return this.#ctx.run(async (s) => {
      await s.request({ case: 'cancelMuteAll', value: { groupId: str(groupId, 'groupId') } });
    });
  }

  /** muteUser mutes users in the group. */
  muteUser(req: ImMuteUserReq): Promise<void> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      await s.request({ case: 'muteUser', value: { groupId: str(r.groupId, 'groupId'), userList: strList(r.userList, 'userList') } });
    });
  }

  /** cancelMuteUser unmutes users in the group. */
  cancelMuteUser(req: ImMuteUserReq): Promise<void> {
    return this.#ctx.run(async (s) => {
      const r = obj(req, 'request');
      await s.request({ case: 'cancelMuteUser', value: { groupId: str(r.groupId, 'groupId'), userList: strList(r.userList, 'userList') } });
    });
  }

  /** listMuteUsers returns the group's mute state. */
  listMuteUsers(groupId: string): Promise<ImMuteStatus> {
    return this.#ctx.run(async (s) =>
      toMuteStatus(replyBody(await s.request({ case: 'listMuteUsers', value: { groupId: str(groupId, 'groupId') } }), 'muteStatus')),
    );
  }
}
