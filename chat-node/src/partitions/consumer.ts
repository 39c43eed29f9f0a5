import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type {
  Broker,
  NodeEvent,
  ParkReason,
  PartitionDelivery,
  PartitionSubscription,
  Store,
} from "../ports.js";
import type { AcceptedMessage, StoredMessage } from "../domain/messages.js";
import { previewOf, toWire } from "../domain/messages.js";
import { backoffMs, classifyFailure, describeFailure, type FailureKind } from "../domain/failures.js";
import { sequenceBatch, type SeqOutcome, type SequenceStore } from "../domain/sequencing.js";
import type { MembersCache } from "../services/members-cache.js";
import { endSpan, inject, startSpan } from "../tracing.js";
import { headOf, headsOf, type ChannelHeadsWriter } from "./channel-heads.js";

export interface PartitionConsumerOptions {
  prefetch: number;
  batchSize: number;
  /** Store a full waiting batch while the previous batch's fan-out confirms (default on). */
  pipeline?: boolean;
  flushIntervalMs: number;
  /** Wait before resubscribing after a failure. */
  retryDelayMs: number;
  /** First wait of the in-process retry of a transient failure; doubles up to `retryMaxDelayMs`. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** A group marked large goes by channel binding this long after (LARGE_CHANNEL_SWITCH_MS). */
  largeChannelSwitchMs?: number;
  /** Store attempts of a message failing for an unknown reason (the store otherwise healthy) before it is parked. */
  maxStoreAttempts?: number;
  /** A delivery whose `x-delivery-count` reached this is parked without another try (the queue's delivery limit). */
  maxDeliveries?: number;
}

/** The consumer lost its subscription (or is being stopped): its deliveries return to the queue. */
class Abandoned extends Error {
  constructor() {
    super("subscription lost; the deliveries return to the queue");
    this.name = "Abandoned";
  }
}

export interface PartitionConsumerDeps {
  broker: Broker;
  store: Store;
  members: MembersCache;
  heads: ChannelHeadsWriter;
  metrics: Metrics;
  log: Logger;
  /** Push notifications of stored batches: queued, never awaited (docs/chat-node.md, "Push notifications"). */
  push?: { notify(messages: readonly StoredMessage[]): void };
}

/** What the sender of a parked message is told (`message:failed`). */
const PARK_MESSAGES: Record<ParkReason, string> = {
  refused: "the store refused this message; it was set aside and will not be delivered",
  attempts: "this message could not be stored; it was set aside and will not be delivered",
  deliveries: "this message could not be stored; it was set aside and will not be delivered",
  malformed: "this message is malformed; it was set aside and will not be delivered",
};

interface Item {
  message: AcceptedMessage;
  delivery: PartitionDelivery;
}

/**
 * Consumes one partition queue: batches deliveries, stores them with gap-free per-channel seq
 * (store = truth), fans each stored message out to its channel's members, then acks.
 *
 * Failures never give deliveries back to the broker while the subscription lives (on RabbitMQ 4
 * every return uses up one of the queue's deliveries):
 * - transient ones (store or broker unreachable, slow, failing over) are retried in process, the
 *   deliveries kept unacked, with exponential backoff up to `retryMaxDelayMs`, for as long as it takes;
 * - a batch the store refuses for another reason is retried one message at a time, so the message
 *   at fault is found; that message is **parked** (published with confirms to the parked queue, its
 *   sender told with `message:failed`, then acked) when the failure is known to be permanent or after
 *   `maxStoreAttempts`, and the partition moves on. A parked message takes no seq;
 * - a malformed delivery, or one the broker has delivered `maxDeliveries` times already (crashes
 *   while holding it), is parked without a try.
 * Only a lost channel (crash, broker restart) returns messages to the queue; the consumer then
 * resubscribes, and redelivered messages already stored are recognised and fanned out again.
 * `stop()` is the release: cancel, finish and ack what was received (a release during an outage
 * gives the rest back), close.
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
  /** Wake the backoff sleeps (stop, lost subscription): the batch being stored and the one fanning out. */
  private readonly wakeRetry = new Set<() => void>();
  /**
   * The previous batch's fan-out, push hand-off and acks, still running while the next batch is
   * stored (a pipeline one batch deep; docs/chat-node.md "The message path as built", step 6).
   */
  private tail: Promise<void> | null = null;
  /** Wakes the drain waiting on `tail` when a full batch has come. */
  private arrived: (() => void) | null = null;
  /** The subscription whose deliveries are being processed is gone. */
  private lost = false;
  private readonly retryBase: number;
  private readonly retryMax: number;
  private readonly maxStoreAttempts: number;
  private readonly maxDeliveries: number;

  /** The store as sequencing sees it: a first read of a channel also repairs its head. */
  private readonly sequenceStore: SequenceStore;

  constructor(
    readonly partition: number,
    private readonly deps: PartitionConsumerDeps,
    private readonly opts: PartitionConsumerOptions,
  ) {
    const { store, heads } = deps;
    this.retryBase = opts.retryBaseDelayMs ?? 100;
    this.retryMax = opts.retryMaxDelayMs ?? 3000;
    this.maxStoreAttempts = opts.maxStoreAttempts ?? 5;
    this.maxDeliveries = opts.maxDeliveries ?? Number.POSITIVE_INFINITY;
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
        this.lost = false;
        const sub = await this.deps.broker.subscribePartition(this.partition, this.opts.prefetch, (d) =>
          this.onDelivery(d),
        );
        this.sub = sub;
        void sub.closed.then(() => this.loseSubscription());
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

  private loseSubscription(): void {
    this.lost = true;
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const wake of [...this.wakeRetry]) wake();
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
    if (this.buffer.length >= this.opts.batchSize) {
      this.arrived?.();
      this.kick();
    } else if (!this.timer) this.timer = setTimeout(() => this.kick(), this.opts.flushIntervalMs);
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
    try {
      while (!this.failed) {
        if (this.buffer.length === 0 && !this.tail) break;
        if (this.tail && this.buffer.length < this.opts.batchSize) {
          // A full batch waiting (a backlog) is stored while the last batch's fan-out confirms; a
          // partial one grows meanwhile instead: one insert of many costs the store less than many.
          await Promise.race([this.settle(), new Promise<void>((r) => (this.arrived = r))]);
          this.arrived = null;
          continue;
        }
        await this.processBatch(this.buffer.splice(0, this.opts.batchSize));
      }
      await this.settle();
    } catch (err) {
      if (err instanceof Abandoned) {
        this.buffer = [];
        await this.settle().catch(() => undefined);
        return;
      }
      await this.fail(err);
    }
  }

  /** Waits for the pipelined batch's fan-out and acks; throws what it failed with. */
  private async settle(): Promise<void> {
    const tail = this.tail;
    if (!tail) return;
    try {
      await tail;
    } finally {
      if (this.tail === tail) this.tail = null;
    }
  }

  /** Throws Abandoned once the deliveries at hand can no longer be acked. */
  private checkLive(): void {
    if (this.lost || this.failed) throw new Abandoned();
  }

  /**
   * Waits before a retry. A release (stop) does not wait out a failure: the deliveries go back to
   * the queue for the next owner instead of holding the release up.
   */
  private async sleepRetry(attempt: number): Promise<void> {
    if (this.stopping) throw new Abandoned();
    const ms = backoffMs(attempt, this.retryBase, this.retryMax);
    let wake!: () => void;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
      this.wakeRetry.add(wake);
    });
    this.wakeRetry.delete(wake);
    if (this.stopping) throw new Abandoned();
    this.checkLive();
  }

  /** A transient failure, or an unknown one while the store does not answer, is waited out. */
  private async kindOf(err: unknown): Promise<FailureKind> {
    const kind = classifyFailure(err);
    if (kind !== "unknown") return kind;
    const healthy = await this.deps.store.ping().catch(() => false);
    return healthy ? "unknown" : "transient";
  }

  /** Runs `op` until it succeeds, retrying transient failures with backoff; other failures throw. */
  private async retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.checkLive();
      try {
        return await op();
      } catch (err) {
        if (err instanceof Abandoned || classifyFailure(err) !== "transient") throw err;
        this.noteTransient(what, err, attempt);
        await this.sleepRetry(attempt);
      }
    }
  }

  private noteTransient(what: string, err: unknown, attempt: number): void {
    this.deps.metrics.transientRetries.inc({ step: what });
    // One line when an outage starts, then one every ten retries.
    if (attempt % 10 === 0)
      this.deps.log.warn(
        {
          event: "partition.retry",
          partition: this.partition,
          step: what,
          attempt,
          err: describeFailure(err),
        },
        "transient failure; retrying in process with the deliveries held",
      );
  }

  private async fail(err: unknown): Promise<void> {
    this.failed = true;
    this.buffer = [];
    // A batch still fanning out stops short of its acks; its deliveries return with the channel.
    this.wakeAll();
    await this.settle().catch(() => undefined);
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
    let pending: Item[] = [];
    for (const d of batch) {
      if (!d.message) await this.park(d, null, "malformed", "not a VibeTalk message", 0);
      else if (d.deliveryCount >= this.maxDeliveries)
        await this.park(
          d,
          d.message,
          "deliveries",
          `delivered ${d.deliveryCount + 1} times without being stored`,
          0,
        );
      else pending.push({ message: d.message, delivery: d });
    }
    const attempts = new Map<Item, number>();
    let isolating = false;
    let transient = 0;
    while (pending.length > 0) {
      this.checkLive();
      // After a refusal, one message at a time finds the one at fault (the store may not say which).
      const work = isolating ? pending.slice(0, 1) : pending;
      const outcomes = await sequenceBatch(this.sequenceStore, work, this.lastSeq);
      const stored = outcomes.filter(
        (o): o is Extract<SeqOutcome<Item>, { status: "stored" }> => o.status === "stored",
      );
      this.logBatch(outcomes);
      if (stored.length > 0) await this.deliverAndAck(stored);
      const done = new Set<Item>(stored.map((o) => o.item));
      pending = pending.filter((i) => !done.has(i));
      const failed = outcomes.find((o) => o.status === "failed");
      if (!failed || failed.status !== "failed") {
        transient = 0;
        continue;
      }
      const kind = await this.kindOf(failed.error);
      if (kind === "transient") {
        this.noteTransient("store", failed.error, transient);
        await this.sleepRetry(transient++);
        continue;
      }
      transient = 0;
      if (!isolating && work.length > 1) {
        isolating = true;
        continue;
      }
      const item = failed.item;
      const n = (attempts.get(item) ?? 0) + 1;
      attempts.set(item, n);
      if (kind === "permanent" || n >= this.maxStoreAttempts) {
        const reason: ParkReason = kind === "permanent" ? "refused" : "attempts";
        await this.park(item.delivery, item.message, reason, describeFailure(failed.error), n);
        pending = pending.filter((i) => i !== item);
        isolating = false;
      } else await this.sleepRetry(n - 1);
    }
    const m = this.deps.metrics;
    m.batchStoreSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    m.batchSize.observe(batch.length);
    const done = () => m.batchSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    if (this.tail) this.tail.then(done, () => undefined);
    else done();
  }

  /**
   * Starts the fan-out and acks of what was stored, after the previous batch's have finished (so
   * publishes keep seq order, and a failed fan-out is retried before anything later is published),
   * and returns: the next batch is stored meanwhile. A batch with edits or deletes is waited for,
   * since what it revises and scrubs must be done before a later message is stored.
   */
  private async deliverAndAck(stored: Array<Extract<SeqOutcome<Item>, { status: "stored" }>>): Promise<void> {
    await this.settle();
    this.checkLive();
    const tail = this.fanOutAndAck(stored);
    tail.catch(() => undefined); // surfaces at the next settle
    this.tail = tail;
    if (this.opts.pipeline === false) await this.settle();
    else if (stored.some((o) => o.message.kind === "edit" || o.message.kind === "delete"))
      await this.settle();
  }

  /** Fans out what was stored (retrying transient failures), then acks it. */
  private async fanOutAndAck(stored: Array<Extract<SeqOutcome<Item>, { status: "stored" }>>): Promise<void> {
    this.deps.heads.raise(headsOf(stored.map((o) => o.message)));
    await this.retrying("fanout", () => this.fanOut(stored));
    this.deps.push?.notify(stored.map((o) => o.message));
    await this.recordMentions(stored.map((o) => o.message));
    await this.reviseHeads(stored.map((o) => o.message));
    await this.scrubDeleted(stored.map((o) => o.message));
    this.checkLive();
    for (const o of stored) o.item.delivery.ack();
    const m = this.deps.metrics;
    const dupes = stored.filter((o) => o.duplicate).length;
    m.messagesStored.inc({ result: "new" }, stored.length - dupes);
    if (dupes > 0) m.messagesStored.inc({ result: "duplicate" }, dupes);
  }

  /** Mentions of plain messages and edits (counted on the message they belong to), for unread mentions. */
  private async recordMentions(messages: readonly StoredMessage[]): Promise<void> {
    for (const m of messages) {
      if (!m.mentions?.length || (m.kind !== undefined && m.kind !== "edit")) continue;
      const seq = m.kind === "edit" ? (m.targetSeq as number) : m.seq;
      const ids = m.mentions;
      await this.retrying("mentions", () => this.deps.store.addMentions(m.channelId, seq, ids));
    }
  }

  /**
   * An edit of a channel's last plain message shows in its preview (the recent-chats list): after the
   * pending heads are written, so the preview it revises is the one stored.
   */
  private async reviseHeads(messages: readonly StoredMessage[]): Promise<void> {
    const edits = messages.filter((m) => m.kind === "edit" && m.targetSeq !== undefined);
    if (edits.length === 0) return;
    await this.deps.heads.flush();
    for (const m of edits)
      await this.retrying("preview", () =>
        this.deps.store.reviseHead(m.channelId, m.targetSeq as number, m.seq, previewOf(m.body)),
      );
  }

  /**
   * The node that took a delete scrubbed its target before publishing it; the owner does it again
   * once the delete is stored, after the pending channel heads are written, so neither an edit queued
   * before the delete nor a preview written late keeps the content (docs/protocol.md, "Conversations").
   */
  private async scrubDeleted(messages: readonly StoredMessage[]): Promise<void> {
    const deletes = messages.filter((m) => m.kind === "delete" && m.targetSeq !== undefined);
    if (deletes.length === 0) return;
    await this.deps.heads.flush();
    for (const m of deletes)
      await this.retrying("scrub", () => this.deps.store.scrubDeleted(m.channelId, m.targetSeq as number));
  }

  /**
   * Parks a delivery: published unchanged to the parked queue with why (confirmed), its sender's
   * devices told with `message:failed`, then acked. A crash in between parks it again on redelivery
   * (the same message id) and tells the sender again.
   */
  private async park(
    d: PartitionDelivery,
    message: Item["message"] | null,
    reason: ParkReason,
    error: string,
    attempts: number,
  ): Promise<void> {
    const request = {
      partition: this.partition,
      raw: d.raw,
      reason,
      error,
      attempts,
      deliveryCount: d.deliveryCount,
    };
    await this.retrying("park", () => this.deps.broker.park(request));
    this.deps.log.error(
      {
        event: "partition.parked",
        partition: this.partition,
        reason,
        attempts,
        deliveries: d.deliveryCount + 1,
        err: error,
        ...(message
          ? { channelId: message.channelId, senderId: message.senderId, clientMsgId: message.clientMsgId }
          : {}),
      },
      "message parked: it will not be stored unless replayed (docs/observability.md#vibetalkmessagesparked)",
    );
    if (message) {
      const failed = {
        channelId: message.channelId,
        clientMsgId: message.clientMsgId,
        code: "NOT_STORED" as const,
        message: PARK_MESSAGES[reason],
      };
      await this.retrying("notify", () =>
        this.deps.broker.publishToUsers({ t: "failed", failed }, [message.senderId]),
      );
    }
    this.checkLive();
    d.ack();
    this.deps.metrics.messagesParked.inc({ reason });
  }

  private logBatch(outcomes: SeqOutcome<Item>[]): void {
    if (!this.deps.log.isLevelEnabled("debug")) return;
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

  /**
   * One publish (normally) per stored message, in seq order per channel: to the members' nodes by
   * routing key + CC, or, for a large channel, once to the nodes bound to it (docs/chat-node.md,
   * "Large channels"), with no member list read.
   */
  private async fanOut(stored: Array<{ item: Item; message: StoredMessage }>): Promise<void> {
    const seen = new Set<string>();
    const publishes: Promise<unknown>[] = [];
    const switchMs = this.opts.largeChannelSwitchMs ?? 3000;
    for (const { item, message } of stored) {
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      const entry = await this.deps.members.get(message.channelId);
      // A group that just became large still goes to its members until every node has bound it.
      const to = entry ? await this.deps.members.audience(entry, switchMs) : [];
      const span = startSpan("message.store", item.delivery.trace, {
        "vibetalk.channel": message.channelId,
        "vibetalk.seq": message.seq,
      });
      const event: NodeEvent = { t: "message", message: toWire(message), sentAt: item.message.sentAt };
      const p = (
        to === "channel"
          ? this.deps.broker.publishToChannel(event, message.channelId, inject(span)).then(() => 1)
          : this.deps.broker.publishToUsers(event, to, inject(span))
      ).then(
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

  /**
   * Release: no more deliveries, finish and ack what was received, close the channel. A batch
   * waiting out an outage gives its deliveries back instead (the new owner retries them).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeAll();
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
