import type { ReceiptKind } from "@vibetalk/protocol";

/** A member's receipt high-water marks to raise in the store (with `$max`). */
export interface ReceiptMarks {
  channelId: string;
  userId: string;
  lastDeliveredSeq: number;
  lastReadSeq: number;
}

interface Entry extends ReceiptMarks {
  dirty: boolean;
  lastFlushAt: number;
}

const keyOf = (channelId: string, userId: string) => `${channelId}|${userId}`;

/**
 * Coalesces receipts in memory so a burst of receipts becomes at most one store update per member
 * per `intervalMs` (docs/architecture.md#the-message-path). Marks only rise; `read` implies `delivered`.
 */
export class ReceiptCoalescer {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly intervalMs: number) {}

  /** Records a receipt; true when it raised the mark (so it is worth telling the other members). */
  record(channelId: string, userId: string, kind: ReceiptKind, seq: number): boolean {
    const key = keyOf(channelId, userId);
    let e = this.entries.get(key);
    if (!e) {
      e = { channelId, userId, lastDeliveredSeq: 0, lastReadSeq: 0, dirty: false, lastFlushAt: -Infinity };
      this.entries.set(key, e);
    }
    const before = kind === "read" ? e.lastReadSeq : e.lastDeliveredSeq;
    if (kind === "read") e.lastReadSeq = Math.max(e.lastReadSeq, seq);
    e.lastDeliveredSeq = Math.max(e.lastDeliveredSeq, seq);
    const raised = seq > before;
    if (raised) e.dirty = true;
    return raised;
  }

  /** The marks known here for a member (pending or flushed), or undefined. */
  peek(channelId: string, userId: string): ReceiptMarks | undefined {
    const e = this.entries.get(keyOf(channelId, userId));
    return e && { channelId, userId, lastDeliveredSeq: e.lastDeliveredSeq, lastReadSeq: e.lastReadSeq };
  }

  /** Pending marks whose member was last flushed at least `intervalMs` ago; marks them flushed. */
  takeDue(now: number): ReceiptMarks[] {
    return this.take((e) => e.dirty && now - e.lastFlushAt >= this.intervalMs, now);
  }

  /** All pending marks of a user (their last socket went), regardless of the interval. */
  takeUser(userId: string, now: number): ReceiptMarks[] {
    const out = this.take((e) => e.dirty && e.userId === userId, now);
    for (const [k, e] of this.entries) if (e.userId === userId && !e.dirty) this.entries.delete(k);
    return out;
  }

  takeAll(now: number): ReceiptMarks[] {
    return this.take((e) => e.dirty, now);
  }

  /** Puts marks back after a failed flush (they will be retried). */
  restore(marks: readonly ReceiptMarks[]): void {
    for (const m of marks) {
      this.record(m.channelId, m.userId, "delivered", m.lastDeliveredSeq);
      if (m.lastReadSeq > 0) this.record(m.channelId, m.userId, "read", m.lastReadSeq);
      const e = this.entries.get(keyOf(m.channelId, m.userId));
      if (e) {
        e.dirty = true;
        e.lastFlushAt = -Infinity;
      }
    }
  }

  /** Forgets clean entries not flushed for `idleMs` (bounds memory). */
  prune(now: number, idleMs: number): void {
    for (const [k, e] of this.entries) if (!e.dirty && now - e.lastFlushAt > idleMs) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }

  private take(pred: (e: Entry) => boolean, now: number): ReceiptMarks[] {
    const out: ReceiptMarks[] = [];
    for (const e of this.entries.values()) {
      if (!pred(e)) continue;
      out.push({
        channelId: e.channelId,
        userId: e.userId,
        lastDeliveredSeq: e.lastDeliveredSeq,
        lastReadSeq: e.lastReadSeq,
      });
      e.dirty = false;
      e.lastFlushAt = now;
    }
    return out;
  }
}

/** Splits `items` into chunks of at most `size` (store batches stay under FerretDB's limit). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Unread count from a channel's last seq and a member's read mark. */
export function unreadCount(lastSeq: number, lastReadSeq: number): number {
  return Math.max(0, lastSeq - lastReadSeq);
}
