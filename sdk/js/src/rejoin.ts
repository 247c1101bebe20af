/**
 * After a reconnect: rejoin every group the session had joined and fetch,
 * per group, the HIGH messages missed since the last one delivered and the
 * messages deleted since the last deletion known (ResumeGroupRequest,
 * looping while has_more); each deletion is emitted as deletegroupmessage.
 * A group's live events are held from before its rejoin until its resume
 * is done, then released through the normal path, which drops what resume
 * already delivered.
 */
import { create, protoInt64 } from '@bufbuild/protobuf';
import { backoffDelay } from './backoff.js';
import type { Connection } from './connection.js';
import { num, toGroupInfo } from './convert.js';
import { ImErrorCode, toImError } from './errors.js';
import { type Event, EventSchema, type Message, MessageLevel, type ResumeGroupReply } from './gen/liveim/v1/client_pb.js';
import type { GroupTracker } from './groups.js';
import type { Logger } from './logger.js';
import type { Link } from './session.js';
import type { ImGroupInfo } from './types.js';
import { replyBody } from './wire.js';

export interface RejoinHooks {
  /** deliver passes an event through the session's normal event path (hold, dedupe). */
  deliver(ev: Event): void;
  /** emit hands an event to the app directly (resumed messages, already accepted). */
  emit(ev: Event): void;
  /** current reports whether the link is still the session's live one. */
  current(): boolean;
  /** giveUp drops the link so that the session reconnects again. */
  giveUp(why: string): void;
  log: Logger;
}

/** Codes that mean the group is gone for this user: stop tracking it. */
const GONE: ReadonlySet<number> = new Set([
  ImErrorCode.GROUP_NOT_FOUND,
  ImErrorCode.GROUP_CLOSED,
  ImErrorCode.FORBIDDEN,
  ImErrorCode.INVALID_PARAMETER,
]);

/**
 * rejoinGroups rejoins and resumes every tracked group on link; it returns
 * the groups' infos, or undefined when the link was lost on the way (the
 * session is then reconnecting again).
 */
export async function rejoinGroups(link: Link, groups: GroupTracker, h: RejoinHooks): Promise<ImGroupInfo[] | undefined> {
  const conn = link.conn;
  const ids = groups.ids();
  for (const id of ids) groups.hold(id);
  const infos: ImGroupInfo[] = [];
  for (const [i, groupId] of ids.entries()) {
    if (conn === undefined || !h.current()) {
      abort(ids.slice(i), groups, h);
      return undefined;
    }
    try {
      // Two requests a group, back to back, run past the session's
      // request rate (412) from about 50 groups: ask again on the same
      // link, the group's events held, rather than reconnect, which met
      // the same limit at the same group, for ever.
      const info = replyBody(
        await askAgainWhenTooFast(`rejoin ${groupId}`, h, () => conn.request({ case: 'joinGroup', value: { groupId } })),
        'groupInfo',
      );
      infos.push(toGroupInfo(info));
      for (;;) {
        const after = groups.resumeFrom(groupId);
        const afterDelete = groups.deleteFrom(groupId);
        const rep = await resumePage(conn, groupId, after, afterDelete, h);
        for (const messageId of rep.deletedMessageIds) h.emit(deletion(groupId, messageId));
        groups.deleted(groupId, num(rep.lastDeleteSeq));
        for (const m of rep.messages) {
          if (m.groupId === '') m.groupId = groupId;
          if (groups.accept(m)) h.emit(groupMessage(m));
        }
        h.log.debug(
          `resumed ${rep.messages.length} HIGH messages of ${groupId} after ${after}, ${rep.deletedMessageIds.length} deletions after ${afterDelete}`,
        );
        if (!rep.hasMore || (rep.messages.length === 0 && rep.deletedMessageIds.length === 0)) break;
      }
      for (const ev of groups.release(groupId)) h.deliver(ev);
    } catch (e) {
      if (!h.current()) {
        abort(ids.slice(i), groups, h);
        return undefined;
      }
      const err = toImError(e);
      if (GONE.has(err.code)) {
        h.log.warn(`rejoin ${groupId}: ${err.code} ${err.msg}; the group is left`);
        for (const ev of groups.release(groupId)) h.deliver(ev);
        if (groups.get(groupId) !== undefined) {
          groups.left(groupId);
          const reason = err.code === ImErrorCode.FORBIDDEN ? 2 : 1;
          h.deliver(create(EventSchema, { body: { case: 'exit', value: { groupId, reason } } }));
        }
        continue;
      }
      // Anything else (timeout, unavailable) could leave a gap: start over.
      h.log.warn(`rejoin ${groupId}: ${err.code} ${err.msg}; reconnecting again`);
      abort(ids.slice(i), groups, h);
      h.giveUp(`rejoin failed: ${err.msg}`);
      return undefined;
    }
  }
  return infos;
}

/**
 * TOO_FAST_ATTEMPTS is how often a rejoin's join or resume page is asked
 * for while the server answers 412: the session's request rate (50/s
 * after a burst of 100, and a rejoin asks twice per group), or its app's
 * resumes reading the HIGH stream too fast. The group's events stay held
 * meanwhile, so asking again on the same link leaves no gap, and a
 * reconnect would only ask again later at more cost.
 */
const TOO_FAST_ATTEMPTS = 6;

/** askAgainWhenTooFast runs ask, again after a 412 with growing waits. */
async function askAgainWhenTooFast<T>(what: string, h: RejoinHooks, ask: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ask();
    } catch (e) {
      const err = toImError(e);
      if (err.code !== ImErrorCode.TOO_FAST || attempt >= TOO_FAST_ATTEMPTS || !h.current()) throw e;
      const delay = backoffDelay({ initialDelayMs: 250, maxDelayMs: 4000, maxAttempts: TOO_FAST_ATTEMPTS }, attempt);
      h.log.warn(`${what}: ${err.code} ${err.msg}; asking again in ${delay} ms (${attempt + 1} of ${TOO_FAST_ATTEMPTS})`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** resumePage asks for one page of a group's resume, again after a 412. */
async function resumePage(conn: Connection, groupId: string, after: number, afterDelete: number, h: RejoinHooks): Promise<ResumeGroupReply> {
  return replyBody(
    await askAgainWhenTooFast(`resume ${groupId}`, h, () =>
      conn.request({
        case: 'resumeGroup',
        value: { groupId, afterSeqnum: protoInt64.parse(after), afterDeleteSeq: protoInt64.parse(afterDelete) },
      }),
    ),
    'resumeGroup',
  );
}

/**
 * abort stops holding the groups not yet resumed. Their held HIGH messages
 * are dropped, not delivered: delivering them would move the resume point
 * past the gap; the next resume brings them back in order.
 */
function abort(ids: string[], groups: GroupTracker, h: RejoinHooks): void {
  for (const id of ids) {
    for (const ev of groups.release(id)) {
      if (ev.body.case === 'groupMessage' && ev.body.value.level === MessageLevel.HIGH) continue;
      h.deliver(ev);
    }
  }
}

function deletion(groupId: string, messageId: string): Event {
  return create(EventSchema, { body: { case: 'deleteGroupMessage', value: { groupId, messageId } } });
}

function groupMessage(m: Message): Event {
  return create(EventSchema, { body: { case: 'groupMessage', value: m } });
}
