import { SERVICE_SENDER_ID } from "@vibetalk/protocol";
import type { Logger } from "../logger.js";
import type { Broker, MemberStore, MessageStore, PushThrottle } from "../ports.js";

export interface ReceiptCountsDeps {
  store: MemberStore & Pick<MessageStore, "messagesAfter">;
  broker: Broker;
  /** One node per channel per interval counts (the same SET NX PX key as push intervals, its own prefix). */
  throttle: PushThrottle;
  log: Logger;
}

/**
 * A large channel's receipts reach the sender as counts, not as one event per receipt to every member
 * (docs/chat-node.md, "Large channels"). Receipts noted here mark their channel; every `intervalMs`
 * each marked channel's newest receipted message is counted in the store (members delivered and read,
 * the sender left out) and the counts go to that message's sender. Whichever node takes the channel's
 * interval key counts; the others keep their mark for the next round, so a channel costs at most two
 * count queries and one event per interval over the whole cluster, whatever its receipt rate.
 */
export class ReceiptCounts {
  /** Channel → the newest receipted seq, and the rounds it was counted in since (counted twice: see note). */
  private readonly marked = new Map<string, { seq: number; rounds: number }>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly d: ReceiptCountsDeps,
    private readonly intervalMs: number,
  ) {}

  /**
   * A receipt for `seq` in a large channel. The channel is counted in the next round and once more in
   * the round after: receipts reach the store within RECEIPT_FLUSH_MS from whichever node took them,
   * so the second count catches the ones the first came too early for.
   */
  note(channelId: string, seq: number): void {
    const m = this.marked.get(channelId);
    this.marked.set(channelId, { seq: Math.max(seq, m?.seq ?? 0), rounds: 0 });
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.round().finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One round over the marked channels. */
  async round(): Promise<void> {
    for (const [channelId, mark] of [...this.marked]) {
      try {
        if (!(await this.d.throttle.acquire(`rc:${channelId}`, this.intervalMs))) continue;
        if (this.marked.get(channelId) === mark) {
          if (mark.rounds >= 1) this.marked.delete(channelId);
          else this.marked.set(channelId, { ...mark, rounds: 1 });
        }
        await this.send(channelId, mark.seq);
      } catch (err) {
        this.d.log.warn(
          { event: "receipts.counts_failed", channelId, err: (err as Error).message },
          "receipt counts not sent; retried next round",
        );
      }
    }
  }

  private async send(channelId: string, seq: number): Promise<void> {
    const [m] = await this.d.store.messagesAfter(channelId, seq - 1, 1, seq + 1);
    if (!m || m.seq !== seq || m.senderId === SERVICE_SENDER_ID) return;
    const counts = await this.d.store.countReceipts(channelId, seq, m.senderId);
    await this.d.broker.publishToUsers(
      { t: "receiptCounts", counts: { channelId, seq, delivered: counts.delivered, read: counts.read } },
      [m.senderId],
    );
  }
}
