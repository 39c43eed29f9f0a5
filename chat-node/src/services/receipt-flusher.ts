import type { ReceiptCoalescer, ReceiptMarks } from "../domain/receipts.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { MemberStore } from "../ports.js";

/** Writes coalesced receipt marks: each member at most once per interval, on demand for a user. */
export class ReceiptFlusher {
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly coalescer: ReceiptCoalescer,
    private readonly store: MemberStore,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    const tick = Math.max(10, Math.floor(this.intervalMs / 4));
    this.timer = setInterval(() => {
      void this.write(this.coalescer.takeDue(Date.now()));
      this.coalescer.prune(Date.now(), 10 * 60_000);
    }, tick);
    this.timer.unref();
  }

  /** A user's last socket went: write their marks now. */
  flushUser(userId: string): Promise<void> {
    return this.write(this.coalescer.takeUser(userId, Date.now()));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.write(this.coalescer.takeAll(Date.now()));
  }

  private write(marks: ReceiptMarks[]): Promise<void> {
    if (marks.length === 0) return this.flushing;
    // One flush at a time: batches stay small and in order.
    this.flushing = this.flushing.then(async () => {
      try {
        await this.store.raiseReceipts(marks);
        this.metrics.receiptFlushes.inc(marks.length);
      } catch (err) {
        this.coalescer.restore(marks);
        this.log.warn(
          { event: "receipts.flush_failed", marks: marks.length, err: (err as Error).message },
          "receipt marks kept for retry",
        );
      }
    });
    return this.flushing;
  }
}
