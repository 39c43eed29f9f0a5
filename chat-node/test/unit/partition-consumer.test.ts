// PartitionConsumer on fakes: batching, ack after store + fan-out, release, failure → requeue.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { AcceptedMessage, StoredMessage } from "../../src/domain/messages.js";
import { createMetrics } from "../../src/metrics.js";
import { ChannelHeadsWriter } from "../../src/partitions/channel-heads.js";
import { PartitionConsumer } from "../../src/partitions/consumer.js";
import type {
  Broker,
  ChannelRecord,
  MemberRecord,
  NodeEvent,
  PartitionDelivery,
  PartitionSubscription,
  Store,
} from "../../src/ports.js";
import { MembersCache } from "../../src/services/members-cache.js";
import { MemorySequenceStore } from "../support/memory-sequence-store.js";

const log = pino({ level: "silent" });

class FakeSubscription implements PartitionSubscription {
  cancelled = false;
  isClosed = false;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  async cancel(): Promise<void> {
    this.cancelled = true;
  }
  async close(): Promise<void> {
    this.isClosed = true;
    this.resolveClosed();
  }
}

class FakeBroker {
  subs: Array<{ sub: FakeSubscription; deliver: (d: PartitionDelivery) => void }> = [];
  published: Array<{ event: NodeEvent; recipients: readonly string[] }> = [];
  acked: string[] = [];
  failFanOut = false;
  async subscribePartition(
    _k: number,
    _prefetch: number,
    onDelivery: (d: PartitionDelivery) => void,
  ): Promise<PartitionSubscription> {
    const sub = new FakeSubscription();
    this.subs.push({ sub, deliver: onDelivery });
    return sub;
  }
  async publishToUsers(event: NodeEvent, recipients: readonly string[]): Promise<number> {
    if (this.failFanOut) throw new Error("broker down");
    this.published.push({ event, recipients });
    return 1;
  }
  /** Delivers to the newest subscription; returns whether the delivery was acked by then. */
  send(message: AcceptedMessage | null, redelivered = false): void {
    const s = this.subs[this.subs.length - 1];
    if (!s) throw new Error("no subscription");
    const sub = s.sub;
    s.deliver({
      message,
      trace: {},
      redelivered,
      ack: () => {
        if (!sub.isClosed) this.acked.push(message?.clientMsgId ?? "malformed");
      },
    });
  }
}

function setup(opts: { flushIntervalMs?: number; batchSize?: number } = {}) {
  const seq = new MemorySequenceStore();
  const now = new Date();
  const channel: ChannelRecord = {
    id: "c",
    type: "group",
    name: "g",
    createdBy: "u",
    createdAt: now,
    lastSeq: 0,
    lastMessage: null,
    lastMessageAt: now,
    memberCount: 2,
  };
  const member = (userId: string): MemberRecord => ({
    channelId: "c",
    userId,
    role: "member",
    joinedAt: now,
    lastDeliveredSeq: 0,
    lastReadSeq: 0,
  });
  const heads: unknown[] = [];
  const store = {
    lastSeq: (c: string) => seq.lastSeq(c),
    insertOrdered: (d: StoredMessage[]) => seq.insertOrdered(d),
    findByClientMsgId: (c: string, s: string, m: string) => seq.findByClientMsgId(c, s, m),
    lastMessage: async (c: string) => {
      const n = await seq.lastSeq(c);
      return [...seq.byId.values()].find((m) => m.channelId === c && m.seq === n) ?? null;
    },
    raiseChannelHeads: async (h: unknown[]) => void heads.push(...h),
    getChannel: async () => channel,
    listMembers: async () => [member("u"), member("v")],
  } as unknown as Store;
  const broker = new FakeBroker();
  const metrics = createMetrics("test", { defaultMetrics: false });
  const consumer = new PartitionConsumer(
    0,
    {
      broker: broker as unknown as Broker,
      store,
      members: new MembersCache(store, 60_000),
      heads: new ChannelHeadsWriter(store, log, 10),
      metrics,
      log,
    },
    {
      prefetch: 100,
      batchSize: opts.batchSize ?? 10,
      flushIntervalMs: opts.flushIntervalMs ?? 1,
      retryDelayMs: 10,
    },
  );
  return { seq, broker, consumer, heads };
}

const msg = (id: string, channelId = "c"): AcceptedMessage => ({
  channelId,
  senderId: "u",
  clientMsgId: id,
  body: id,
  fileIds: [],
  sentAt: Date.now(),
});
const until = async (what: string, f: () => boolean) => {
  for (let i = 0; i < 400 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(f(), what);
};

test("stores in order, fans out to the members, then acks", async () => {
  const { seq, broker, consumer } = setup();
  await consumer.start();
  for (const id of ["a", "b", "c"]) broker.send(msg(id));
  await until("acked", () => broker.acked.length === 3);
  assert.deepEqual(seq.seqsOf("c"), [1, 2, 3]);
  assert.deepEqual(
    broker.published.map((p) =>
      p.event.t === "message" ? `${p.event.message.clientMsgId}@${p.event.message.seq}` : "",
    ),
    ["a@1", "b@2", "c@3"],
  );
  assert.deepEqual(broker.published[0]?.recipients, ["u", "v"]);
  await consumer.stop();
});

test("a malformed delivery is acked and dropped", async () => {
  const { broker, consumer } = setup();
  await consumer.start();
  broker.send(null);
  broker.send(msg("ok"));
  await until("both acked", () => broker.acked.length === 2);
  assert.equal(broker.published.length, 1);
  await consumer.stop();
});

test("release: stop cancels, finishes what was received, acks it, then closes", async () => {
  const { broker, consumer, seq } = setup({ flushIntervalMs: 10_000, batchSize: 100 });
  await consumer.start();
  for (const id of ["x", "y"]) broker.send(msg(id));
  assert.equal(consumer.bufferedCount, 2, "waiting for the flush interval");
  const sub = broker.subs[0]?.sub as FakeSubscription;
  await consumer.stop();
  assert.equal(sub.cancelled, true);
  assert.equal(sub.isClosed, true);
  assert.deepEqual(broker.acked, ["x", "y"], "acked before the channel closed");
  assert.deepEqual(seq.seqsOf("c"), [1, 2]);
});

test("a failed fan-out leaves the batch unacked, closes the channel and resubscribes; redelivery is recognised", async () => {
  const { broker, consumer, seq } = setup();
  await consumer.start();
  broker.failFanOut = true;
  broker.send(msg("p"));
  await until("channel closed", () => broker.subs[0]?.sub.isClosed === true);
  assert.deepEqual(broker.acked, []);
  assert.deepEqual(seq.seqsOf("c"), [1], "stored before the fan-out failed");
  broker.failFanOut = false;
  await until("resubscribed", () => broker.subs.length === 2);
  broker.send(msg("p"), true); // the broker redelivers it
  broker.send(msg("q"));
  await until("acked", () => broker.acked.length === 2);
  assert.deepEqual(seq.seqsOf("c"), [1, 2]);
  const seqs = broker.published.map((p) =>
    p.event.t === "message" ? `${p.event.message.clientMsgId}@${p.event.message.seq}` : "",
  );
  assert.deepEqual(seqs, ["p@1", "q@2"], "the redelivered message keeps its seq");
  await consumer.stop();
});

test("a store failure stops the channel and requeues everything unacked", async () => {
  const { broker, consumer, seq } = setup({ batchSize: 10, flushIntervalMs: 20 });
  await consumer.start();
  seq.failNextInsertAt = 1;
  for (const id of ["m1", "m2", "m3"]) broker.send(msg(id));
  await until("closed", () => broker.subs[0]?.sub.isClosed === true);
  assert.deepEqual(broker.acked, ["m1"], "only what was stored and fanned out is acked");
  await until("resubscribed", () => broker.subs.length === 2);
  for (const id of ["m2", "m3"]) broker.send(msg(id), true);
  await until("acked", () => broker.acked.length === 3);
  assert.deepEqual(seq.seqsOf("c"), [1, 2, 3]);
  await consumer.stop();
});
