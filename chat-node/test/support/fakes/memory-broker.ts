// The Broker port in memory (docs/chat-node.md#ports-and-fakes): what RabbitBroker does on RabbitMQ,
// as brokerContract states it. One MemoryBrokerServer is the RabbitMQ cluster; `connect(nodeId)`
// is one chat-node's adapter on it.
import { randomUUID } from "node:crypto";
import { planFanOut } from "../../../src/domain/fanout.js";
import { AcceptedMessageSchema, type AcceptedMessage } from "../../../src/domain/messages.js";
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
} from "../../../src/ports.js";

interface QueuedMessage {
  /** Position in the queue (messages given back go back in this order). */
  n: number;
  content: Buffer;
  headers: Record<string, unknown>;
  messageId: string;
  deliveryCount: number;
  redelivered: boolean;
}

interface Consumer {
  prefetch: number;
  onDelivery: (d: PartitionDelivery) => void;
  unacked: Map<number, QueuedMessage>;
  cancelled: boolean;
  closed: boolean;
  resolveClosed: () => void;
}

/** A quorum partition queue with a single active consumer (the first one still subscribed). */
class PartitionQueue {
  ready: QueuedMessage[] = [];
  consumers: Consumer[] = [];
}

const traceOf = (headers: Record<string, unknown>): TraceCarrier => {
  const out: TraceCarrier = {};
  for (const k of ["traceparent", "tracestate"]) if (typeof headers[k] === "string") out[k] = headers[k];
  return out;
};

function parse(content: Buffer): AcceptedMessage | null {
  try {
    const r = AcceptedMessageSchema.safeParse(JSON.parse(content.toString("utf8")));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export class MemoryBrokerServer {
  private readonly queues = new Map<number, PartitionQueue>();
  private readonly nodes = new Set<MemoryBroker>();
  private seq = 0;
  readonly parked: Array<{ raw: QueuedMessage; request: ParkRequest }> = [];
  /** While true (a resource alarm) every publish rejects and `isBlocked()` is true. */
  blocked = false;

  constructor(
    readonly partitions: number,
    readonly fanoutMaxRecipients = 500,
  ) {}

  async connect(nodeId: string): Promise<MemoryBroker> {
    const b = new MemoryBroker(this, nodeId);
    this.nodes.add(b);
    return b;
  }

  /** @internal */ detach(b: MemoryBroker): void {
    this.nodes.delete(b);
  }

  /** @internal */ queue(partition: number): PartitionQueue {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions)
      throw new DependencyUnavailableError("broker", `unroutable: partition ${partition}`);
    let q = this.queues.get(partition);
    if (!q) this.queues.set(partition, (q = new PartitionQueue()));
    return q;
  }

  /** @internal */ enqueue(partition: number, content: Buffer, headers: Record<string, unknown>): void {
    const q = this.queue(partition);
    q.ready.push({
      n: this.seq++,
      content,
      headers,
      messageId: randomUUID(),
      deliveryCount: 0,
      redelivered: false,
    });
    this.dispatch(q);
  }

  /** @internal */ dispatch(q: PartitionQueue): void {
    const active = q.consumers.find((c) => !c.cancelled && !c.closed);
    if (!active) return;
    while (q.ready.length > 0 && active.unacked.size < active.prefetch) {
      const m = q.ready.shift() as QueuedMessage;
      active.unacked.set(m.n, m);
      const headers = m.deliveryCount > 0 ? { ...m.headers, "x-delivery-count": m.deliveryCount } : m.headers;
      const delivery: PartitionDelivery = {
        message: parse(m.content),
        trace: traceOf(m.headers),
        redelivered: m.redelivered,
        deliveryCount: m.deliveryCount,
        raw: { content: Buffer.from(m.content), headers: { ...headers }, messageId: m.messageId },
        ack: () => {
          if (active.closed || !active.unacked.delete(m.n)) return;
          this.dispatch(q);
        },
      };
      setImmediate(() => {
        if (!active.closed) active.onDelivery(delivery);
      });
    }
  }

  /** @internal */ fanOut(publish: { recipients: string[]; event: NodeEvent; trace: TraceCarrier }): void {
    for (const node of this.nodes) {
      if (publish.recipients.some((u) => node.bindings.has(u))) {
        node.receive({
          event: structuredClone(publish.event),
          recipients: [...publish.recipients],
          trace: { ...publish.trace },
        });
      }
    }
  }

  /** @internal */ toChannel(publish: { channelId: string; event: NodeEvent; trace: TraceCarrier }): void {
    for (const node of this.nodes) {
      if (node.channelBindings.has(publish.channelId)) {
        node.receive({
          event: structuredClone(publish.event),
          recipients: [],
          channel: publish.channelId,
          trace: { ...publish.trace },
        });
      }
    }
  }

  /** @internal */ control(event: ControlEvent): void {
    for (const node of this.nodes) node.receiveControl(structuredClone(event));
  }

  /** Ready (undelivered) messages of a partition. */
  depth(partition: number): number {
    return this.queue(partition).ready.length;
  }
}

export class MemoryBroker implements Broker {
  readonly bindings = new Set<string>();
  readonly channelBindings = new Set<string>();
  private nodeHandler: ((d: NodeDelivery) => void) | null = null;
  private controlHandler: ((e: ControlEvent) => void) | null = null;
  private readonly reconnectHandlers: Array<() => void> = [];
  private closed = false;
  private readonly subscriptions = new Set<PartitionSubscription>();

  constructor(
    readonly server: MemoryBrokerServer,
    readonly nodeId: string,
  ) {}

  private checkPublish(): void {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    if (this.server.blocked)
      throw new DependencyUnavailableError("broker", "RabbitMQ blocks publishing (resource alarm)");
  }

  async publishToPartition(partition: number, message: AcceptedMessage, trace: TraceCarrier): Promise<void> {
    this.checkPublish();
    this.server.enqueue(partition, Buffer.from(JSON.stringify(message)), { ...trace });
  }

  async publishToUsers(
    event: NodeEvent,
    recipients: readonly string[],
    trace: TraceCarrier = {},
  ): Promise<number> {
    this.checkPublish();
    const plan = planFanOut(recipients, this.server.fanoutMaxRecipients);
    for (const p of plan) this.server.fanOut({ recipients: [p.routingKey, ...p.cc], event, trace });
    return plan.length;
  }

  async publishToChannel(event: NodeEvent, channelId: string, trace: TraceCarrier = {}): Promise<void> {
    this.checkPublish();
    this.server.toChannel({ channelId, event, trace });
  }

  async publishControl(event: ControlEvent): Promise<void> {
    this.checkPublish();
    this.server.control(event);
  }

  async subscribePartition(
    partition: number,
    prefetch: number,
    onDelivery: (d: PartitionDelivery) => void,
  ): Promise<PartitionSubscription> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    const q = this.server.queue(partition);
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const c: Consumer = {
      prefetch,
      onDelivery,
      unacked: new Map(),
      cancelled: false,
      closed: false,
      resolveClosed,
    };
    q.consumers.push(c);
    const close = async () => {
      if (c.closed) return closed;
      c.closed = true;
      q.consumers = q.consumers.filter((x) => x !== c);
      // Unacked deliveries go back to the queue, ahead of the rest, in their order, counted.
      const back = [...c.unacked.values()].map((m) => ({
        ...m,
        redelivered: true,
        deliveryCount: m.deliveryCount + 1,
      }));
      c.unacked.clear();
      q.ready = [...back, ...q.ready].sort((a, b) => a.n - b.n);
      this.subscriptions.delete(sub);
      c.resolveClosed();
      this.server.dispatch(q);
      return closed;
    };
    const sub: PartitionSubscription = {
      closed,
      cancel: async () => {
        c.cancelled = true;
        q.consumers = q.consumers.filter((x) => x !== c);
        this.server.dispatch(q);
      },
      close,
    };
    this.subscriptions.add(sub);
    this.server.dispatch(q);
    return sub;
  }

  async partitionDepth(partition: number): Promise<number> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    return this.server.depth(partition);
  }

  async park(request: ParkRequest): Promise<void> {
    this.checkPublish();
    const { ["x-delivery-count"]: _count, ...headers } = request.raw.headers;
    this.server.parked.push({
      raw: {
        n: -1,
        content: Buffer.from(request.raw.content),
        headers,
        messageId: request.raw.messageId ?? randomUUID(),
        deliveryCount: 0,
        redelivered: false,
      },
      request,
    });
  }

  async parkedDepth(): Promise<number> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    return this.server.parked.length;
  }

  isBlocked(): boolean {
    return this.server.blocked;
  }

  async bindUser(userId: string): Promise<void> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    this.bindings.add(userId);
  }

  async unbindUser(userId: string): Promise<void> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    this.bindings.delete(userId);
  }

  async bindChannel(channelId: string): Promise<void> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    this.channelBindings.add(channelId);
  }

  async unbindChannel(channelId: string): Promise<void> {
    if (this.closed) throw new DependencyUnavailableError("broker", "RabbitMQ is not connected");
    this.channelBindings.delete(channelId);
  }

  /** @internal A node-queue delivery (in publish order, after the publish resolved). */
  receive(d: NodeDelivery): void {
    setImmediate(() => {
      if (!this.closed) this.nodeHandler?.(d);
    });
  }

  /** @internal */ receiveControl(e: ControlEvent): void {
    setImmediate(() => {
      if (!this.closed) this.controlHandler?.(e);
    });
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

  /** Simulates a lost and restored connection: subscriptions close (their deliveries go back), handlers run. */
  async reconnect(): Promise<void> {
    for (const s of [...this.subscriptions]) await s.close();
    for (const h of this.reconnectHandlers) h();
  }

  isConnected(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const s of [...this.subscriptions]) await s.close();
    this.closed = true;
    this.bindings.clear();
    this.server.detach(this);
  }
}
