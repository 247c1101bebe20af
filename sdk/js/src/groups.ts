/**
 * GroupTracker remembers the groups a session joined, so a reconnect can
 * rejoin them, and delivers each group's HIGH messages once and in order
 * across reconnects: it records the last HIGH seqnum delivered, drops what
 * it has seen, and holds a group's live events while that group resumes.
 * It also records the last message deletion known per group, so a resume
 * reports the deletions missed while away. (The Go client's HighTracker
 * does the same.)
 */
import type { Event, Message } from './gen/liveim/v1/client_pb.js';
import { MessageLevel } from './gen/liveim/v1/client_pb.js';
import { num } from './convert.js';

/** TrackedGroup is one joined group. */
export interface TrackedGroup {
  /** The group's last seqnum when it was joined: nothing at or below it was the member's. */
  joinBase: number;
  /** The last HIGH seqnum delivered, 0 before any. */
  lastHigh: number;
  /** The last deletion known (delete_seq): the join point, then each deletion event or resume. */
  lastDelete: number;
  /** While true the group's live events wait in held. */
  holding: boolean;
  held: Event[];
}

export class GroupTracker {
  #groups = new Map<string, TrackedGroup>();

  /** joined records a join (or a rejoin after leaving) with the group's last seqnum and deletion. */
  joined(groupId: string, lastSeqnum: number, lastDeleteSeq: number): void {
    const g = this.#groups.get(groupId);
    if (g !== undefined) return; // joined again while joined: keep what was delivered
    this.#groups.set(groupId, { joinBase: lastSeqnum, lastHigh: 0, lastDelete: lastDeleteSeq, holding: false, held: [] });
  }

  /**
   * deleted records a deletion the session heard of (live or by resume);
   * it reports whether the session had not heard of it.
   */
  deleted(groupId: string, deleteSeq: number): boolean {
    const g = this.#groups.get(groupId);
    if (g === undefined || deleteSeq <= 0) return true;
    if (deleteSeq <= g.lastDelete) return false;
    g.lastDelete = deleteSeq;
    return true;
  }

  /** deleteFrom is the deletion to resume after. */
  deleteFrom(groupId: string): number {
    return this.#groups.get(groupId)?.lastDelete ?? 0;
  }

  /** left forgets a group (left, closed, kicked). */
  left(groupId: string): void {
    this.#groups.delete(groupId);
  }

  clear(): void {
    this.#groups.clear();
  }

  get(groupId: string): TrackedGroup | undefined {
    return this.#groups.get(groupId);
  }

  ids(): string[] {
    return [...this.#groups.keys()];
  }

  /** resumeFrom is the seqnum to resume after: the last HIGH delivered, or the join point. */
  resumeFrom(groupId: string): number {
    const g = this.#groups.get(groupId);
    if (g === undefined) return 0;
    return Math.max(g.joinBase, g.lastHigh);
  }

  /**
   * accept reports whether a group message should be delivered, recording
   * HIGH ones: a HIGH message at or below the last delivered is a duplicate.
   * NORMAL messages (and those of groups not tracked) always pass.
   */
  accept(m: Message): boolean {
    if (m.level !== MessageLevel.HIGH) return true;
    const g = this.#groups.get(m.groupId);
    const seq = num(m.seqnum);
    if (g === undefined || seq <= 0) return true;
    if (seq <= g.lastHigh) return false;
    g.lastHigh = seq;
    return true;
  }

  /** hold starts holding a group's live events (during resume). */
  hold(groupId: string): void {
    const g = this.#groups.get(groupId);
    if (g !== undefined) g.holding = true;
  }

  /** holding reports whether a group's live events are held. */
  holding(groupId: string): boolean {
    return this.#groups.get(groupId)?.holding ?? false;
  }

  /** release stops holding and returns the held events, oldest first. */
  release(groupId: string): Event[] {
    const g = this.#groups.get(groupId);
    if (g === undefined) return [];
    g.holding = false;
    const out = g.held;
    g.held = [];
    return out;
  }

  /** maybeHold keeps ev back when its group is holding; it reports whether it did. */
  maybeHold(groupId: string, ev: Event): boolean {
    const g = this.#groups.get(groupId);
    if (g === undefined || !g.holding) return false;
    g.held.push(ev);
    return true;
  }
}
