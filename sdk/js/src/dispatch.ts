/** Routes a pushed event to the manager that emits it, in the public shapes. */
import { num, toInfoChange, toMessage, toMuteStatus, toUser } from './convert.js';
import type { Event } from './gen/liveim/v1/client_pb.js';
import type { ImGroupManager } from './group-manager.js';
import type { ImMessageManager } from './message-manager.js';

export function dispatchEvent(ev: Event, groups: ImGroupManager, messages: ImMessageManager): void {
  const b = ev.body;
  switch (b.case) {
    case 'groupMessage':
      messages.emit('recvgroupmessage', toMessage(b.value), b.value.groupId);
      return;
    case 'c2cMessage':
      messages.emit('recvc2cmessage', toMessage(b.value));
      return;
    case 'deleteGroupMessage':
      messages.emit('deletegroupmessage', b.value.messageId, b.value.groupId);
      return;
    case 'exit':
      groups.emit('exit', b.value.groupId, b.value.reason);
      return;
    case 'memberChange': {
      const e = b.value;
      groups.emit(
        'memberchange',
        e.groupId,
        num(e.memberCount),
        e.joinUsers.map(toUser),
        e.leaveUsers.map(toUser),
        Math.max(num(e.joinCount), e.joinUsers.length),
        Math.max(num(e.leaveCount), e.leaveUsers.length),
      );
      return;
    }
    case 'muteChange':
      groups.emit('mutechange', b.value.groupId, toMuteStatus(b.value.status));
      return;
    case 'infoChange':
      groups.emit('infochange', b.value.groupId, toInfoChange(b.value));
      return;
    default:
      return;
  }
}
