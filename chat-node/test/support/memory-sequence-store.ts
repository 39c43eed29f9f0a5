import { idempotencyKey, type StoredMessage } from "../../src/domain/messages.js";
import type { InsertOutcome, SequenceStore } from "../../src/domain/sequencing.js";

/** In-memory SequenceStore with the same two unique keys as the real one (unit tests only). */
export class MemorySequenceStore implements SequenceStore {
  readonly byId = new Map<string, StoredMessage>();
  readonly byKey = new Map<string, StoredMessage>();
  failNextInsertAt: number | undefined;
  /** While set, every insert fails with it before writing anything (a store outage). */
  down: Error | null = null;
  /** A document this returns an error for is refused, whole slice unwritten (like FerretDB's). */
  refuse: ((d: StoredMessage) => Error | undefined) | undefined;
  inserts = 0;
  lastSeqReads = 0;

  async lastSeq(channelId: string): Promise<number> {
    this.lastSeqReads++;
    let max = 0;
    for (const m of this.byId.values()) if (m.channelId === channelId) max = Math.max(max, m.seq);
    return max;
  }

  async insertOrdered(docs: StoredMessage[]): Promise<InsertOutcome> {
    this.inserts++;
    if (this.down) return { inserted: 0, failure: { index: 0, duplicateKey: false, error: this.down } };
    const refused = this.refuse && docs.map((d) => this.refuse?.(d)).find((e) => e !== undefined);
    if (refused) return { inserted: 0, failure: { index: 0, duplicateKey: false, error: refused } };
    for (let i = 0; i < docs.length; i++) {
      const d = docs[i] as StoredMessage;
      if (this.failNextInsertAt === i) {
        this.failNextInsertAt = undefined;
        return { inserted: i, failure: { index: i, duplicateKey: false, error: new Error("store down") } };
      }
      const k = `${d.channelId}\u0001${idempotencyKey(d)}`;
      if (this.byId.has(d.id) || this.byKey.has(k)) {
        return { inserted: i, failure: { index: i, duplicateKey: true, error: new Error("E11000") } };
      }
      this.byId.set(d.id, d);
      this.byKey.set(k, d);
    }
    return { inserted: docs.length };
  }

  async findByClientMsgId(
    channelId: string,
    senderId: string,
    clientMsgId: string,
  ): Promise<StoredMessage | null> {
    return this.byKey.get(`${channelId}\u0001${idempotencyKey({ senderId, clientMsgId })}`) ?? null;
  }

  seqsOf(channelId: string): number[] {
    return [...this.byId.values()]
      .filter((m) => m.channelId === channelId)
      .map((m) => m.seq)
      .sort((a, b) => a - b);
  }
}
