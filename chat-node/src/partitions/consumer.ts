import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Broker, PartitionDelivery, PartitionSubscription, Store } from "../ports.js";
import type { AcceptedMessage, StoredMessage } from "../domain/messages.js";
import { toWire } from "../domain/messages.js";
import { sequenceBatch, type SeqOutcome, type SequenceStore } from "../domain/sequencing.js";
import type { MembersCache } from "../services/members-cache.js";
import { endSpan, inject, startSpan } from "../tracing.js";
import { headOf, headsOf, type ChannelHeadsWriter } from "./channel-heads.js";

export interface PartitionConsumerOptions {
  prefetch: number;
  batchSize: number;
  flushIntervalMs: number;
  /** Wait before resubscribing after a failure. */
  retryDelayMs: number;
}

export interface PartitionConsumerDeps {
  broker: Broker;
  store: Store;
  members: MembersCache;
  heads: ChannelHeadsWriter;
  metrics: Metrics;
  log: Logger;
}

interface Item {
  message: AcceptedMessage;
  delivery: PartitionDelivery;
}

/**
 * Consumes one partition queue: batches deliveries, stores them with gap-free per-channel seq
 * (store = truth), fans each stored message out to its channel's members, then acks. Any failure
 * closes the channel so every unacked message returns to the queue in order, and the consumer
 * resubscribes after a pause; redelivered messages already stored are recognised and fanned out
 * again. `stop()` is the release: cancel, finish and ack what was received, close.
 */
export class PartitionConsumer {
  private sub: PartitionSubscription | null = null;
  private buffer: PartitionDelivery[] = [];
  private timer: NodeJS.Timeout | null = null;
  private processing: Promise<void> | null = null;
  private stopping = false;
  private failed = false;
  private readonly lastSeq = new Map<string, number>();
  private runLoop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  /** The store as sequencing sees it: a first read of a channel also repairs its head. */
  private readonly sequenceStore: SequenceStore;

  constructor(
    readonly partition: number,
    private readonly deps: PartitionConsumerDeps,
    private readonly opts: PartitionConsumerOptions,
  ) {
    const { store, heads } = deps;
    this.sequenceStore = {
      lastSeq: async (channelId) => {
        const last = await store.lastMessage(channelId);
        if (last) heads.raise([headOf(last)]);
        return last?.seq ?? 0;
      },
      insertOrdered: (docs) => store.insertOrdered(docs),
      findByClientMsgId: (c, s, m) => store.findByClientMsgId(c, s, m),
    };
  }

  /** Subscribes; resolves once the first subscription is up (or failed once: it keeps retrying). */
  async start(): Promise<void> {
    let firstAttempt!: () => void;
    const first = new Promise<void>((r) => (firstAttempt = r));
    this.runLoop = this.run(firstAttempt);
    await first;
  }

  private async run(firstAttempt: () => void): Promise<void> {
    while (!this.stopping) {
      try {
        this.failed = false;
        const sub = await this.deps.broker.subscribePartition(this.partition, this.opts.prefetch, (d) =>
          this.onDelivery(d),
        );
        this.sub = sub;
        if (this.stopping) {
          await sub.close();
          return;
        }
        this.deps.log.info(
          { event: "partition.consuming", partition: this.partition },
          "consuming partition",
        );
        firstAttempt();
        await sub.closed;
        this.sub = null;
        if (this.stopping) return;
        this.deps.log.warn(
          { event: "partition.channel_closed", partition: this.partition },
          "partition channel closed",
        );
      } catch (err) {
        firstAttempt();
        this.deps.log.warn(
          { event: "partition.subscribe_failed", partition: this.partition, err: (err as Error).message },
          "cannot consume partition",
        );
      }
      // Deliveries of a closed channel cannot be acked: they come back from the queue.
      this.buffer = [];
      await this.processing;
      this.lastSeq.clear();
      this.deps.metrics.consumerRestarts.inc();
      await this.pause(this.opts.retryDelayMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private onDelivery(d: PartitionDelivery): void {
    if (this.failed) return; // the channel is being closed; this one will be redelivered
    this.buffer.push(d);
    if (this.buffer.length >= this.opts.batchSize) this.kick();
    else if (!this.timer) this.timer = setTimeout(() => this.kick(), this.opts.flushIntervalMs);
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.processing) return;
    this.processing = this.drainBuffer().finally(() => {
      this.processing = null;
      if (this.buffer.length > 0 && !this.failed) this.kick();
    });
  }

  private async drainBuffer(): Promise<void> {
    while (this.buffer.length > 0 && !this.failed) {
      const batch = this.buffer.splice(0, this.opts.batchSize);
      try {
        await this.processBatch(batch);
      } catch (err) {
        await this.fail(err);
      }
    }
  }

  private async fail(err: unknown): Promise<void> {
    this.failed = true;
    this.buffer = [];
    this.deps.log.error(
      {
        event: "partition.batch_failed",
        partition: this.partition,
        err: (err as Error)?.message ?? String(err),
      },
      "batch failed; returning unacked messages to the queue",
    );
    await this.sub?.close();
  }

  private async processBatch(batch: PartitionDelivery[]): Promise<void> {
    const t0 = process.hrtime.bigint();
    const items: Item[] = [];
    for (const d of batch) {
      if (d.message) items.push({ message: d.message, delivery: d });
      else {
        this.deps.log.warn(
          { event: "partition.malformed", partition: this.partition },
          "malformed message dropped",
        );
        d.ack();
      }
    }
    const outcomes = await sequenceBatch(this.sequenceStore, items, this.lastSeq);
    this.deps.metrics.batchStoreSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    if (this.deps.log.isLevelEnabled("debug")) {
      this.deps.log.debug(
        {
          event: "partition.batch",
          partition: this.partition,
          outcomes: outcomes.map((o) =>
            o.status === "stored"
              ? `${o.item.message.clientMsgId}@${o.message.seq}${o.duplicate ? "d" : ""}${o.item.delivery.redelivered ? "r" : ""}`
              : `${o.item.message.clientMsgId}!`,
          ),
        },
        "batch stored",
      );
    }
    const stored = outcomes.filter(
      (o): o is Extract<SeqOutcome<Item>, { status: "stored" }> => o.status === "stored",
    );
    const failures = outcomes.filter((o) => o.status === "failed");

    this.deps.heads.raise(headsOf(stored.map((o) => o.message)));
    await this.fanOut(stored);
    for (const o of stored) o.item.delivery.ack();

    const m = this.deps.metrics;
    const dupes = stored.filter((o) => o.duplicate).length;
    m.messagesStored.inc({ result: "new" }, stored.length - dupes);
    if (dupes > 0) m.messagesStored.inc({ result: "duplicate" }, dupes);
    m.batchSize.observe(batch.length);
    m.batchSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    if (failures.length > 0) {
      const first = failures[0];
      throw first && first.status === "failed" ? first.error : new Error("store failure");
    }
  }

  /** One publish (normally) per stored message, in seq order per channel. */
  private async fanOut(stored: Array<{ item: Item; message: StoredMessage }>): Promise<void> {
    const seen = new Set<string>();
    const publishes: Promise<unknown>[] = [];
    for (const { item, message } of stored) {
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      const entry = await this.deps.members.get(message.channelId);
      const recipients = entry ? [...entry.members.keys()] : [];
      const span = startSpan("message.store", item.delivery.trace, {
        "vibetalk.channel": message.channelId,
        "vibetalk.seq": message.seq,
      });
      const p = this.deps.broker
        .publishToUsers(
          { t: "message", message: toWire(message), sentAt: item.message.sentAt },
          recipients,
          inject(span),
        )
        .then(
          (n) => {
            this.deps.metrics.fanoutPublishes.observe(n);
            endSpan(span);
          },
          (err: unknown) => {
            endSpan(span, err);
            throw err;
          },
        );
      publishes.push(p);
    }
    await Promise.all(publishes);
  }

  /** Release: no more deliveries, finish and ack what was received, close the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const sub = this.sub;
    if (sub) {
      await sub.cancel();
      if (this.timer) this.kick();
      while (this.processing) await this.processing;
      if (this.buffer.length > 0 && !this.failed) {
        this.kick();
        while (this.processing) await this.processing;
      }
      await sub.close();
    }
    await this.runLoop;
    this.deps.log.info({ event: "partition.released", partition: this.partition }, "partition released");
  }

  get bufferedCount(): number {
    return this.buffer.length;
  }
}
