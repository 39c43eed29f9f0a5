import { messageId } from "./ids.js";
import { eventFieldsOf, idempotencyKey, type AcceptedMessage, type StoredMessage } from "./messages.js";

/**
 * Sequencing: the store is the only source of truth for a channel's last `seq`. Messages are
 * inserted, each as its own document keyed `(channelId, seq)`, in `seq` order; that key is the
 * compare-and-set (docs/architecture.md#the-message-path, step 4; I2, I3).
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

/** Another writer kept taking a channel's next seq (a stale owner): not the message's fault. */
export class SeqConflictError extends Error {
  constructor(channelId: string) {
    super(`seq conflict persisted on channel ${channelId}`);
    this.name = "SeqConflictError";
  }
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
      ...eventFieldsOf(m),
    };
  });
}

/**
 * Splits a batch into first occurrences and repeats of the same message (same channel, sender and
 * clientMsgId: a client that resent before its first attempt was consumed). `repeatOf[i]` is the
 * index of the first one.
 */
export function dedupeBatch<T extends { message: AcceptedMessage }>(
  items: readonly T[],
): { unique: T[]; repeatOf: Map<number, number> } {
  const firstIndex = new Map<string, number>();
  const unique: T[] = [];
  const repeatOf = new Map<number, number>();
  items.forEach((item, i) => {
    const key = `${item.message.channelId}\u0001${idempotencyKey(item.message)}`;
    const first = firstIndex.get(key);
    if (first === undefined) {
      firstIndex.set(key, i);
      unique.push(item);
    } else repeatOf.set(i, first);
  });
  return { unique, repeatOf };
}

export interface SequenceOptions {
  /** How many seq conflicts (another writer took our number) a channel absorbs before giving up. */
  maxConflicts: number;
}

/**
 * Stores a batch (any number of channels), in order, and says what became of each message. All
 * messages go into one ordered insert (in slices), so a batch costs the store one round trip in
 * the common case; the insert stops at its first failure and everything after it is planned
 * again, so a channel never gets a gap and one sender's messages never swap. A message already
 * stored (same channel, sender and clientMsgId) comes back with its stored `seq` and
 * `duplicate: true`. `lastSeqCache` holds each channel's last seq between batches; the store is
 * read for a channel on first sight and after a conflict.
 */
export async function sequenceBatch<T extends { message: AcceptedMessage }>(
  store: SequenceStore,
  items: readonly T[],
  lastSeqCache: Map<string, number>,
  options: SequenceOptions = { maxConflicts: 5 },
): Promise<SeqOutcome<T>[]> {
  const { unique, repeatOf } = dedupeBatch(items);
  const outcomes = new Map<T, SeqOutcome<T>>();
  const conflicts = new Map<string, number>();
  const fail = (item: T, error: unknown) => outcomes.set(item, { item, status: "failed", error });
  let pending = unique;
  try {
    const unknown = [...new Set(pending.map((p) => p.message.channelId))].filter((c) => !lastSeqCache.has(c));
    const read = await Promise.all(unknown.map((c) => store.lastSeq(c)));
    unknown.forEach((c, i) => lastSeqCache.set(c, read[i] as number));
    while (pending.length > 0) {
      const next = new Map<string, number>();
      const docs = pending.map((p) => {
        const c = p.message.channelId;
        const seq = (next.get(c) ?? (lastSeqCache.get(c) as number)) + 1;
        next.set(c, seq);
        return assignSeqs([p.message], seq - 1)[0] as StoredMessage;
      });
      const r = await store.insertOrdered(docs);
      for (let i = 0; i < r.inserted; i++) {
        const item = pending[i] as T;
        const doc = docs[i] as StoredMessage;
        outcomes.set(item, { item, status: "stored", message: doc, duplicate: false });
        lastSeqCache.set(doc.channelId, doc.seq);
      }
      if (!r.failure) break;
      const failed = pending[r.inserted] as T;
      if (!r.failure.duplicateKey) throw r.failure.error;
      const m = failed.message;
      const existing = await store.findByClientMsgId(m.channelId, m.senderId, m.clientMsgId);
      if (existing) {
        outcomes.set(failed, { item: failed, status: "stored", message: existing, duplicate: true });
        lastSeqCache.set(m.channelId, Math.max(lastSeqCache.get(m.channelId) ?? 0, existing.seq));
        pending = pending.slice(r.inserted + 1);
        continue;
      }
      // Someone else holds that seq: the store knows the truth.
      const n = (conflicts.get(m.channelId) ?? 0) + 1;
      conflicts.set(m.channelId, n);
      pending = pending.slice(r.inserted);
      if (n > options.maxConflicts) {
        const error = new SeqConflictError(m.channelId);
        const [gone, rest] = partition(pending, (p) => p.message.channelId === m.channelId);
        gone.forEach((p) => fail(p, error));
        lastSeqCache.delete(m.channelId);
        pending = rest;
        continue;
      }
      lastSeqCache.set(m.channelId, await store.lastSeq(m.channelId));
    }
  } catch (error) {
    for (const item of unique) {
      if (outcomes.has(item)) continue;
      fail(item, error);
      lastSeqCache.delete(item.message.channelId);
    }
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

function partition<T>(xs: readonly T[], pred: (x: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const x of xs) (pred(x) ? yes : no).push(x);
  return [yes, no];
}
