import { messageId } from "./ids.js";
import { idempotencyKey, type AcceptedMessage, type StoredMessage } from "./messages.js";

/**
 * Sequencing: the store is the only source of truth for a channel's last `seq`. Messages are
 * inserted, each as its own document keyed `(channelId, seq)`, in `seq` order; that key is the
 * compare-and-set. See DESIGN.md §2 step 4.
 */

/** Result of an ordered insert: the first `inserted` documents were written; then `failure`. */
export interface InsertOutcome {
  inserted: number;
  failure?: { index: number; duplicateKey: boolean; error: unknown };
}

/** What sequencing needs from the store. */
export interface SequenceStore {
  /** The highest stored `seq` of a channel (0 when none). */
  lastSeq(channelId: string): Promise<number>;
  /** Inserts in order, stopping at the first failure. */
  insertOrdered(docs: StoredMessage[]): Promise<InsertOutcome>;
  /** The stored message with this idempotency key, if any. */
  findByClientMsgId(channelId: string, senderId: string, clientMsgId: string): Promise<StoredMessage | null>;
}

export type SeqOutcome<T> =
  | { item: T; status: "stored"; message: StoredMessage; duplicate: boolean }
  | { item: T; status: "failed"; error: unknown };

/** Gives `items` the sequence numbers after `lastSeq`, in order (pure). */
export function assignSeqs(items: readonly AcceptedMessage[], lastSeq: number): StoredMessage[] {
  return items.map((m, i) => {
    const seq = lastSeq + 1 + i;
    return {
      id: messageId(m.channelId, seq),
      channelId: m.channelId,
      seq,
      senderId: m.senderId,
      clientMsgId: m.clientMsgId,
      body: m.body,
      fileIds: m.fileIds,
      createdAt: new Date(m.sentAt),
    };
  });
}

/**
 * Splits a batch into first occurrences and repeats of the same idempotency key (a client that
 * resent before its first attempt was consumed). `repeatOf[i]` is the index of the first one.
 */
export function dedupeBatch<T extends { message: AcceptedMessage }>(
  items: readonly T[],
): { unique: T[]; repeatOf: Map<number, number> } {
  const firstIndex = new Map<string, number>();
  const unique: T[] = [];
  const repeatOf = new Map<number, number>();
  items.forEach((item, i) => {
    const key = idempotencyKey(item.message);
    const first = firstIndex.get(key);
    if (first === undefined) {
      firstIndex.set(key, i);
      unique.push(item);
    } else repeatOf.set(i, first);
  });
  return { unique, repeatOf };
}

/** Groups messages by channel, keeping arrival order inside each channel (pure). */
export function groupByChannel<T extends { message: AcceptedMessage }>(
  items: readonly T[],
): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(item.message.channelId);
    if (list) list.push(item);
    else out.set(item.message.channelId, [item]);
  }
  return out;
}

export interface SequenceOptions {
  /** How many seq conflicts (another writer took our number) to absorb before giving up. */
  maxConflicts: number;
}

/**
 * Stores one channel's messages of a batch, in order, and says what became of each. The channel
 * stops at its first non-duplicate failure: later messages are reported failed, so nobody's
 * messages swap. A message already stored (same sender and clientMsgId) comes back with its stored
 * `seq` and `duplicate: true`. `lastSeqCache` holds the channel's last seq between batches.
 */
export async function sequenceChannel<T extends { message: AcceptedMessage }>(
  store: SequenceStore,
  channelId: string,
  items: readonly T[],
  lastSeqCache: Map<string, number>,
  options: SequenceOptions = { maxConflicts: 5 },
): Promise<SeqOutcome<T>[]> {
  const { unique, repeatOf } = dedupeBatch(items);
  const outcomes = new Map<T, SeqOutcome<T>>();
  let last = lastSeqCache.get(channelId) ?? (await store.lastSeq(channelId));
  let pending = unique;
  let conflicts = 0;
  try {
    while (pending.length > 0) {
      const docs = assignSeqs(
        pending.map((p) => p.message),
        last,
      );
      const r = await store.insertOrdered(docs);
      for (let i = 0; i < r.inserted; i++) {
        const item = pending[i] as T;
        outcomes.set(item, { item, status: "stored", message: docs[i] as StoredMessage, duplicate: false });
      }
      last += r.inserted;
      if (!r.failure) break;
      const failed = pending[r.inserted] as T;
      if (!r.failure.duplicateKey) throw r.failure.error;
      const m = failed.message;
      const existing = await store.findByClientMsgId(channelId, m.senderId, m.clientMsgId);
      if (existing) {
        outcomes.set(failed, { item: failed, status: "stored", message: existing, duplicate: true });
        last = Math.max(last, existing.seq);
        pending = pending.slice(r.inserted + 1);
        continue;
      }
      // Someone else holds seq `last + 1`: the store knows the truth.
      if (++conflicts > options.maxConflicts)
        throw new Error(`seq conflict persisted on channel ${channelId}`);
      last = await store.lastSeq(channelId);
      pending = pending.slice(r.inserted);
    }
    lastSeqCache.set(channelId, last);
  } catch (error) {
    lastSeqCache.delete(channelId);
    for (const item of unique) if (!outcomes.has(item)) outcomes.set(item, { item, status: "failed", error });
  }
  return items.map((item, i) => {
    const firstIdx = repeatOf.get(i);
    if (firstIdx === undefined) return outcomes.get(item) as SeqOutcome<T>;
    const first = outcomes.get(items[firstIdx] as T) as SeqOutcome<T>;
    return first.status === "stored"
      ? { item, status: "stored", message: first.message, duplicate: true }
      : { item, status: "failed", error: first.error };
  });
}
