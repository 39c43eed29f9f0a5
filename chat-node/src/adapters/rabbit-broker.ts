import { once } from "node:events";
import { randomUUID } from "node:crypto";
import {
  connect,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type RecoveringChannelModel,
} from "amqplib";
import { fnv1a32 } from "../domain/hashing.js";
import { planFanOut, recipientsOf, topology, userBinding } from "../domain/fanout.js";
import { AcceptedMessageSchema, type AcceptedMessage } from "../domain/messages.js";
import type { Logger } from "../logger.js";
import {
  DependencyUnavailableError,
  type Broker,
  type ControlEvent,
  type NodeDelivery,
  type NodeEvent,
  type ParkRequest,
  type PartitionDelivery,
  type PartitionSubscription,
  type TraceCarrier,
} from "../ports.js";

export interface RabbitBrokerOptions {
  url: string;
  nodeId: string;
  partitions: number;
  userExchanges: number;
  /** AMQP channels that user bindings are spread over. */
  bindChannels: number;
  /** `x-expires` of this node's queue (ms). */
  nodeQueueExpiresMs: number;
  /** Prefetch of this node's queue consumer. */
  nodePrefetch: number;
  /** Routing keys per fan-out publish at most. */
  fanoutMaxRecipients: number;
  /** A publish not confirmed within this time fails (BrokerUnavailableError). */
  publishTimeoutMs: number;
  log: Logger;
}

/**
 * Deliveries of one message a partition queue allows (RabbitMQ's `x-delivery-limit`; 4.x defaults
 * to 20 and drops the message after that unless there is a dead-letter target). A delivery is
 * used up only when the broker gets the message back unacked: a crash, a lost connection, a
 * release that could not finish; store and broker outages are retried in process and cost none.
 * Fixed for a cluster's life: it is a queue argument.
 */
export const PARTITION_DELIVERY_LIMIT = 20;

/**
 * Partition queues: quorum (replicated, durable) with a single active consumer (a guard for I6),
 * an explicit delivery limit and the parked queue as dead-letter target, at-least-once (which
 * quorum queues accept only with `x-overflow: reject-publish`; there is no length limit, so it
 * never rejects). So the broker never drops a message: past the limit it moves to the parked queue.
 */
export const PARTITION_QUEUE_ARGS = {
  "x-queue-type": "quorum",
  "x-single-active-consumer": true,
  "x-delivery-limit": PARTITION_DELIVERY_LIMIT,
  "x-dead-letter-exchange": "",
  "x-dead-letter-routing-key": topology.parkedQueue,
  "x-dead-letter-strategy": "at-least-once",
  "x-overflow": "reject-publish",
} as const;

/**
 * The parked queue: quorum, with a delivery limit no operator reaches (each `list` or partial
 * `replay` returns every message it read once). It has no dead-letter target: the only one it
 * could have is itself, and RabbitMQ drops a message dead-lettered into a queue it already died
 * in (measured on 4.0.5).
 */
export const PARKED_QUEUE_ARGS = { "x-queue-type": "quorum", "x-delivery-limit": 1_000_000 } as const;

/** Headers a parked message carries besides its original ones. */
export const PARKED_HEADERS = {
  reason: "x-parked-reason",
  error: "x-parked-error",
  attempts: "x-parked-attempts",
  deliveries: "x-parked-deliveries",
  partition: "x-parked-partition",
  at: "x-parked-at",
  node: "x-parked-node",
} as const;

function traceOf(headers: unknown): TraceCarrier {
  const out: TraceCarrier = {};
  if (headers && typeof headers === "object") {
    for (const k of ["traceparent", "tracestate"]) {
      const v = (headers as Record<string, unknown>)[k];
      if (typeof v === "string") out[k] = v;
      else if (Buffer.isBuffer(v)) out[k] = v.toString();
    }
  }
  return out;
}

/** RabbitMQ is not connected, blocks publishing, or did not confirm in time. */
export class BrokerUnavailableError extends DependencyUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("broker", message, options);
    this.name = "BrokerUnavailableError";
  }
}

/** An amqplib failure (a closed channel or connection) as the port states it. */
function asPortError(err: unknown): DependencyUnavailableError {
  return err instanceof DependencyUnavailableError
    ? err
    : new BrokerUnavailableError(`RabbitMQ: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/**
 * RabbitMQ adapter (amqplib with automatic connection recovery). Topology (docs/architecture.md):
 * - `vibetalk.partitions` (direct) → quorum queues `vibetalk.partition.<k>` bound with key `<k>`;
 * - `vibetalk.users` (fanout) → exchange-bound to each `vibetalk.users.<u>` (direct) → this node's
 *   queue `vibetalk.node.<id>` bound with key `<userId>` for each user held here. One publish per
 *   event (routing key + `CC`) reaches each node holding a recipient exactly once (I5);
 * - `vibetalk.control` (fanout) → every node queue.
 */
export class RabbitBroker implements Broker {
  private model!: RecoveringChannelModel;
  private pub: ConfirmChannel | null = null;
  private admin: Channel | null = null;
  private bindChans: Array<Channel | null> = [];
  private nodeChan: Channel | null = null;
  private connected = false;
  private blocked = false;
  private firstConnect = true;
  /** Partition queues that exist with the arguments of an older VibeTalk (see declarePartitionQueues). */
  legacyPartitionQueues: number[] = [];
  private closing = false;
  private readonly bound = new Set<string>();
  private readonly boundChannels = new Set<string>();
  private readonly returned = new Set<string>();
  private nodeHandler: ((d: NodeDelivery) => void) | null = null;
  private controlHandler: ((e: ControlEvent) => void) | null = null;
  private readonly reconnectHandlers: Array<() => void> = [];
  private readonly nodeQueue: string;
  private setupDone: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: RabbitBrokerOptions) {
    this.nodeQueue = topology.nodeQueue(opts.nodeId);
  }

  static async connect(opts: RabbitBrokerOptions): Promise<RabbitBroker> {
    const b = new RabbitBroker(opts);
    await b.open();
    return b;
  }

  private async open(): Promise<void> {
    let resolveFirst!: () => void;
    let rejectFirst!: (e: Error) => void;
    const first = new Promise<void>((res, rej) => {
      resolveFirst = res;
      rejectFirst = rej;
    });
    this.model = await connect(this.opts.url, {
      // Without TCP_NODELAY, Nagle's algorithm holds small publishes back while earlier ones are
      // unacknowledged: tens of milliseconds per confirm under load.
      noDelay: true,
      recovery: {
        initialDelay: 200,
        maxDelay: 5000,
        initialMaxRetries: 20,
        waitForConnect: false,
        setup: async (m: ChannelModel) => {
          this.setupDone = this.setup(m);
          await this.setupDone;
        },
      },
    });
    this.model.on("connect", () => {
      this.connected = true;
      this.opts.log.info({ event: "broker.connected" }, "connected to RabbitMQ");
      resolveFirst();
      if (!this.firstConnect) for (const h of this.reconnectHandlers) h();
      this.firstConnect = false;
    });
    this.model.on("blocked", (reason: unknown) => {
      this.blocked = true;
      this.opts.log.warn(
        { event: "broker.blocked", reason: String(reason) },
        "RabbitMQ blocks publishing (resource alarm): sends answer UNAVAILABLE until it clears",
      );
    });
    this.model.on("unblocked", () => {
      this.blocked = false;
      this.opts.log.info({ event: "broker.unblocked" }, "RabbitMQ accepts publishes again");
    });
    this.model.on("disconnect", (err: Error) => {
      this.connected = false;
      this.blocked = false;
      this.pub = null;
      this.admin = null;
      this.nodeChan = null;
      this.bindChans = [];
      if (!this.closing)
        this.opts.log.warn({ event: "broker.disconnected", err: err.message }, "RabbitMQ connection lost");
    });
    this.model.on("reconnect-failed", (err: Error) => rejectFirst(err));
    this.model.on("error", (err: Error) => this.opts.log.warn({ err: err.message }, "RabbitMQ error"));
    await first;
  }

  /** Runs on every (re)connection, before `connect` is emitted. */
  private async setup(m: ChannelModel): Promise<void> {
    let ch = await m.createChannel();
    const { partitions, userExchanges } = this.opts;
    await ch.assertExchange(topology.partitionExchange, "direct", { durable: true });
    await ch.assertExchange(topology.usersRouter, "fanout", { durable: true });
    await ch.assertExchange(topology.controlExchange, "fanout", { durable: true });
    await ch.assertExchange(topology.channelsExchange, "direct", { durable: true });
    await ch.assertQueue(topology.parkedQueue, { durable: true, arguments: PARKED_QUEUE_ARGS });
    await ch.close();
    await this.declarePartitionQueues(m, partitions);
    ch = await m.createChannel();
    await Promise.all(
      Array.from({ length: userExchanges }, async (_, u) => {
        await ch.assertExchange(topology.userExchange(u), "direct", { durable: true });
        await ch.bindExchange(topology.userExchange(u), topology.usersRouter, "");
      }),
    );
    if (this.firstConnect) await ch.deleteQueue(this.nodeQueue); // a previous life's bindings go
    await ch.assertQueue(this.nodeQueue, {
      durable: false,
      autoDelete: false,
      arguments: { "x-expires": this.opts.nodeQueueExpiresMs },
    });
    await ch.bindQueue(this.nodeQueue, topology.controlExchange, "");
    await ch.close();

    await this.openPublisher(m);
    const admin = await m.createChannel();
    admin.on("error", () => undefined);
    admin.on("close", () => {
      if (this.admin === admin) this.admin = null;
    });
    this.admin = admin;
    this.bindChans = await Promise.all(
      Array.from({ length: this.opts.bindChannels }, async () => {
        const c = await m.createChannel();
        c.on("error", () => undefined);
        return c;
      }),
    );
    // Users held here before a reconnect get their bindings back.
    await this.rebindAll();
    await this.startNodeConsumer(m);
  }

  /** The confirm channel; reopened when the broker closes it while the connection stays up. */
  private async openPublisher(m: ChannelModel): Promise<void> {
    const pub = await m.createConfirmChannel();
    pub.on("return", (msg: { properties: { messageId?: string } }) => {
      if (msg.properties.messageId) this.returned.add(msg.properties.messageId);
    });
    pub.on("error", (err: Error) =>
      this.opts.log.warn({ event: "broker.publisher_error", err: err.message }, "publish channel error"),
    );
    pub.on("close", () => {
      if (this.pub !== pub) return;
      this.pub = null;
      if (this.connected && !this.closing)
        void this.openPublisher(m).catch((err: Error) =>
          this.opts.log.warn({ event: "broker.publisher_reopen_failed", err: err.message }, "cannot reopen"),
        );
    });
    this.pub = pub;
  }

  /**
   * Declares and binds every partition queue. A queue that already exists with other arguments (one
   * declared by a VibeTalk before delivery limits and the parked queue) makes RabbitMQ refuse the
   * declaration with PRECONDITION_FAILED and close the channel: such a queue is then checked
   * passively and used as it is, and the node logs what the operator has to do (docs/chat-node.md,
   * "Upgrading the partition queues"). Refusing to start would stop every message instead.
   */
  private async declarePartitionQueues(m: ChannelModel, partitions: number): Promise<void> {
    const legacy: number[] = [];
    const declare = async (ch: Channel, k: number) => {
      await ch.assertQueue(topology.partitionQueue(k), { durable: true, arguments: PARTITION_QUEUE_ARGS });
      await ch.bindQueue(topology.partitionQueue(k), topology.partitionExchange, String(k));
    };
    const all = Array.from({ length: partitions }, (_, k) => k);
    let ch = await openQuiet(m);
    const first = await Promise.allSettled(all.map((k) => declare(ch, k)));
    const retry = all.filter((k) => first[k]?.status === "rejected");
    for (const k of retry) {
      if (isClosed(ch)) ch = await openQuiet(m);
      try {
        await declare(ch, k);
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        ch = await openQuiet(m);
        await ch.checkQueue(topology.partitionQueue(k));
        await ch.bindQueue(topology.partitionQueue(k), topology.partitionExchange, String(k));
        legacy.push(k);
      }
    }
    await ch.close().catch(() => undefined);
    this.legacyPartitionQueues = legacy;
    if (legacy.length > 0) {
      this.opts.log.error(
        {
          event: "broker.legacy_partition_queues",
          queues: legacy.map((k) => topology.partitionQueue(k)),
          expected: PARTITION_QUEUE_ARGS,
        },
        `${legacy.length} partition queues exist without a delivery limit and dead-letter target: on RabbitMQ 4 ` +
          "they drop a message after 20 redeliveries. Apply the vibetalk-partitions policy or migrate them " +
          "(docs/chat-node.md, Upgrading the partition queues); they are used as they are meanwhile.",
      );
    }
  }

  private async startNodeConsumer(m: ChannelModel): Promise<void> {
    const ch = await m.createChannel();
    ch.on("error", () => undefined);
    await ch.prefetch(this.opts.nodePrefetch);
    await ch.consume(this.nodeQueue, (msg) => {
      if (!msg) return;
      try {
        this.dispatchNodeMessage(msg);
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, "bad node-queue message dropped");
      }
      ch.ack(msg);
    });
    this.nodeChan = ch;
  }

  private dispatchNodeMessage(msg: ConsumeMessage): void {
    const payload: unknown = JSON.parse(msg.content.toString("utf8"));
    if (msg.fields.exchange === topology.controlExchange) {
      this.controlHandler?.(payload as ControlEvent);
      return;
    }
    if (msg.fields.exchange === topology.channelsExchange) {
      const channel = msg.fields.routingKey;
      this.nodeHandler?.({
        event: payload as NodeEvent,
        recipients: [],
        channel,
        trace: traceOf(msg.properties.headers),
      });
      return;
    }
    const recipients = recipientsOf(msg.fields.routingKey, msg.properties.headers?.["CC"]);
    this.nodeHandler?.({ event: payload as NodeEvent, recipients, trace: traceOf(msg.properties.headers) });
  }

  private async rebindAll(): Promise<void> {
    const users = [...this.bound];
    const channels = [...this.boundChannels];
    if (users.length === 0 && channels.length === 0) return;
    await Promise.all([
      ...users.map((u) => this.bindOn(u, "bind")),
      ...channels.map((c) => this.bindChannelOn(c, "bind")),
    ]);
    this.opts.log.info(
      { event: "broker.rebound", users: users.length, channels: channels.length },
      "user and channel bindings restored",
    );
  }

  private bindChannelFor(key: string): Channel {
    const c = this.bindChans[fnv1a32(key) % Math.max(1, this.bindChans.length)];
    if (!c) throw new BrokerUnavailableError("RabbitMQ is not connected");
    return c;
  }

  private async bindOn(userId: string, op: "bind" | "unbind"): Promise<void> {
    const { exchange, routingKey } = userBinding(userId, this.opts.userExchanges);
    await this.bindingOn(exchange, routingKey, op);
  }

  /** A large channel's binding (channels exchange, key = channel id). */
  private async bindChannelOn(channelId: string, op: "bind" | "unbind"): Promise<void> {
    await this.bindingOn(topology.channelsExchange, channelId, op);
  }

  /** Binds or unbinds this node's queue, on the bind channel the routing key hashes to (its order kept). */
  private async bindingOn(exchange: string, routingKey: string, op: "bind" | "unbind"): Promise<void> {
    const ch = this.bindChannelFor(routingKey);
    try {
      if (op === "bind") await ch.bindQueue(this.nodeQueue, exchange, routingKey);
      else await ch.unbindQueue(this.nodeQueue, exchange, routingKey);
    } catch (err) {
      throw asPortError(err);
    }
  }

  // ---- Broker port ----

  isConnected(): boolean {
    return this.connected && this.pub !== null;
  }

  isBlocked(): boolean {
    return this.blocked;
  }

  /**
   * Publishes on the confirm channel and waits for the broker's confirm, at most
   * `publishTimeoutMs`. While RabbitMQ blocks the connection (a resource alarm) it fails at once
   * instead: nothing would be confirmed, and bytes queued now would only be published, unasked,
   * after the alarm (a message the caller already gave up on).
   */
  private async publishConfirmed(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: {
      persistent: boolean;
      mandatory: boolean;
      headers: Record<string, unknown>;
      messageId?: string;
      contentType?: string;
    },
  ): Promise<void> {
    const ch = this.pub;
    if (!ch || !this.connected) throw new BrokerUnavailableError("RabbitMQ is not connected");
    if (this.blocked) throw new BrokerUnavailableError("RabbitMQ blocks publishing (resource alarm)");
    const messageId = options.messageId ?? randomUUID();
    const timeoutMs = this.opts.publishTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new BrokerUnavailableError(`publish not confirmed within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const ok = ch.publish(
        exchange,
        routingKey,
        content,
        { contentType: "application/json", ...options, messageId },
        (err: unknown) => {
          const wasReturned = this.returned.delete(messageId);
          if (err)
            reject(new BrokerUnavailableError(`publish not confirmed: ${(err as Error).message ?? err}`));
          else if (wasReturned) reject(new BrokerUnavailableError(`unroutable: ${exchange}/${routingKey}`));
          else resolve();
        },
      );
      if (!ok) void once(ch, "drain").catch(() => undefined);
    });
    try {
      await confirmed;
    } catch (err) {
      throw asPortError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  async publishToPartition(partition: number, message: AcceptedMessage, trace: TraceCarrier): Promise<void> {
    await this.publishConfirmed(
      topology.partitionExchange,
      String(partition),
      Buffer.from(JSON.stringify(message)),
      {
        persistent: true,
        mandatory: true,
        headers: { ...trace },
      },
    );
  }

  async publishToUsers(
    event: NodeEvent,
    recipients: readonly string[],
    trace: TraceCarrier = {},
  ): Promise<number> {
    const plan = planFanOut(recipients, this.opts.fanoutMaxRecipients);
    const content = Buffer.from(JSON.stringify(event));
    await Promise.all(
      plan.map((p) =>
        this.publishConfirmed(topology.usersRouter, p.routingKey, content, {
          persistent: false,
          mandatory: false,
          headers: { ...trace, ...(p.cc.length > 0 ? { CC: p.cc } : {}) },
        }),
      ),
    );
    return plan.length;
  }

  async publishToChannel(event: NodeEvent, channelId: string, trace: TraceCarrier = {}): Promise<void> {
    await this.publishConfirmed(topology.channelsExchange, channelId, Buffer.from(JSON.stringify(event)), {
      persistent: false,
      mandatory: false,
      headers: { ...trace },
    });
  }

  async publishControl(event: ControlEvent): Promise<void> {
    await this.publishConfirmed(topology.controlExchange, "", Buffer.from(JSON.stringify(event)), {
      persistent: false,
      mandatory: false,
      headers: {},
    });
  }

  async subscribePartition(
    partition: number,
    prefetch: number,
    onDelivery: (d: PartitionDelivery) => void,
  ): Promise<PartitionSubscription> {
    await this.setupDone;
    const ch = await this.model.createChannel();
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    let isClosed = false;
    ch.on("close", () => {
      isClosed = true;
      closedResolve();
    });
    ch.on("error", (err: Error) =>
      this.opts.log.warn({ partition, err: err.message }, "partition channel error"),
    );
    await ch.prefetch(prefetch);
    const { consumerTag } = await ch.consume(
      topology.partitionQueue(partition),
      (msg) => {
        if (!msg) {
          void ch.close().catch(() => undefined); // cancelled by the server
          return;
        }
        const parsed = AcceptedMessageSchema.safeParse(safeJson(msg.content));
        const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
        const count = Number(headers["x-delivery-count"] ?? 0);
        onDelivery({
          message: parsed.success ? parsed.data : null,
          trace: traceOf(headers),
          redelivered: msg.fields.redelivered,
          deliveryCount: Number.isFinite(count) ? count : 0,
          raw: { content: msg.content, headers, messageId: msg.properties.messageId as string | undefined },
          ack: () => {
            if (!isClosed) ch.ack(msg);
          },
        });
      },
      { noAck: false },
    );
    return {
      closed,
      cancel: async () => {
        if (!isClosed) await ch.cancel(consumerTag).catch(() => undefined);
      },
      close: async () => {
        if (!isClosed) await ch.close().catch(() => undefined);
        await closed;
      },
    };
  }

  async partitionDepth(partition: number): Promise<number> {
    const ch = this.admin;
    if (!ch) throw new BrokerUnavailableError("RabbitMQ is not connected");
    const r = await ch.checkQueue(topology.partitionQueue(partition)).catch((err: unknown) => {
      throw asPortError(err);
    });
    return r.messageCount;
  }

  async park(r: ParkRequest): Promise<void> {
    const headers: Record<string, unknown> = {
      ...withoutBrokerHeaders(r.raw.headers),
      [PARKED_HEADERS.reason]: r.reason,
      [PARKED_HEADERS.error]: r.error.slice(0, 1000),
      [PARKED_HEADERS.attempts]: r.attempts,
      [PARKED_HEADERS.deliveries]: r.deliveryCount + 1,
      [PARKED_HEADERS.partition]: r.partition,
      [PARKED_HEADERS.at]: new Date().toISOString(),
      [PARKED_HEADERS.node]: this.opts.nodeId,
    };
    await this.publishConfirmed("", topology.parkedQueue, r.raw.content, {
      persistent: true,
      mandatory: true,
      headers,
      // A message parked twice (a crash between park and ack) keeps one id.
      ...(r.raw.messageId ? { messageId: r.raw.messageId } : {}),
    });
  }

  async parkedDepth(): Promise<number> {
    const ch = this.admin;
    if (!ch) throw new BrokerUnavailableError("RabbitMQ is not connected");
    const r = await ch.checkQueue(topology.parkedQueue).catch((err: unknown) => {
      throw asPortError(err);
    });
    return r.messageCount;
  }

  async bindUser(userId: string): Promise<void> {
    this.bound.add(userId);
    if (this.connected) await this.bindOn(userId, "bind");
  }

  async unbindUser(userId: string): Promise<void> {
    this.bound.delete(userId);
    if (this.connected) await this.bindOn(userId, "unbind");
  }

  async bindChannel(channelId: string): Promise<void> {
    this.boundChannels.add(channelId);
    if (this.connected) await this.bindChannelOn(channelId, "bind");
  }

  async unbindChannel(channelId: string): Promise<void> {
    this.boundChannels.delete(channelId);
    if (this.connected) await this.bindChannelOn(channelId, "unbind");
  }

  onNodeEvent(handler: (d: NodeDelivery) => void): void {
    this.nodeHandler = handler;
  }

  onControlEvent(handler: (e: ControlEvent) => void): void {
    this.controlHandler = handler;
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  async close(): Promise<void> {
    this.closing = true;
    // The node queue goes right away rather than after x-expires: nothing will consume it again.
    try {
      if (this.admin && this.connected) await this.admin.deleteQueue(this.nodeQueue);
    } catch {
      // best effort
    }
    await this.model.close().catch(() => undefined);
  }
}

/** Headers the broker sets on delivery (x-delivery-count) are not the message's own. */
function withoutBrokerHeaders(h: Record<string, unknown>): Record<string, unknown> {
  const { ["x-delivery-count"]: _count, ...rest } = h;
  return rest;
}

async function openQuiet(m: ChannelModel): Promise<Channel> {
  const ch = await m.createChannel();
  ch.on("error", () => undefined);
  ch.on("close", () => closedChannels.add(ch));
  return ch;
}

const closedChannels = new WeakSet<Channel>();
const isClosed = (ch: Channel) => closedChannels.has(ch);

function isPreconditionFailed(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 406 || /PRECONDITION.FAILED/.test(String(err));
}

function safeJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch {
    return null;
  }
}
