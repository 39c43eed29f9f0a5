// PartitionConsumer on fakes: batching, ack after store + fan-out, release, transient failures retried
// in process, poison messages parked (no seq, sender told), failures that lose the channel → requeue.
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
  ParkRequest,
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

function brokerDown(): Error {
  const e = new Error("broker down");
  e.name = "BrokerUnavailableError";
  return e;
}

class FakeBroker {
  subs: Array<{ sub: FakeSubscription; deliver: (d: PartitionDelivery) => void }> = [];
  published: Array<{ event: NodeEvent; recipients: readonly string[] }> = [];
  parked: ParkRequest[] = [];
  acked: string[] = [];
  failFanOut = false;
  failPark = 0;
  /** While set, message publishes are recorded when issued but confirmed only at `release()`. */
  private held: Array<() => void> | null = null;
  hold(): void {
    this.held = [];
  }
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const confirm of held) confirm();
  }
  async park(r: ParkRequest): Promise<void> {
    if (this.failPark > 0) {
      this.failPark--;
      throw brokerDown();
    }
    this.parked.push(r);
  }
  failed(): Array<{ clientMsgId: string; code: string; to: readonly string[] }> {
    return this.published.flatMap((p) =>
      p.event.t === "failed"
        ? [{ clientMsgId: p.event.failed.clientMsgId, code: p.event.failed.code, to: p.recipients }]
        : [],
    );
  }
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
    if (this.failFanOut && event.t === "message") throw brokerDown();
    this.published.push({ event, recipients });
    const held = this.held;
    if (held && event.t === "message") await new Promise<void>((r) => held.push(r));
    return 1;
  }
  /** Delivers to the newest subscription; returns whether the delivery was acked by then. */
  send(message: AcceptedMessage | null, redelivered = false, deliveryCount = redelivered ? 1 : 0): void {
    const s = this.subs[this.subs.length - 1];
    if (!s) throw new Error("no subscription");
    const sub = s.sub;
    s.deliver({
      message,
      trace: {},
      redelivered,
      deliveryCount,
      raw: { content: Buffer.from(JSON.stringify(message)), headers: {}, messageId: message?.clientMsgId },
      ack: () => {
        if (!sub.isClosed) this.acked.push(message?.clientMsgId ?? "malformed");
      },
    });
  }
}

function setup(
  opts: {
    flushIntervalMs?: number;
    batchSize?: number;
    maxStoreAttempts?: number;
    maxDeliveries?: number;
  } = {},
) {
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
  /** What the owner wrote besides messages, in order: mentions and scrubs. */
  const writes: string[] = [];
  const store = {
    addMentions: async (c: string, q: number, users: string[]) =>
      void writes.push(`mention ${c}:${q} ${users}`),
    scrubDeleted: async (c: string, q: number) =>
      void writes.push(`scrub ${c}:${q} after ${heads.length} heads`),
    reviseHead: async (c: string, q: number, e: number, body: string) =>
      void writes.push(`revise ${c}:${q} by ${e} "${body}" after ${heads.length} heads`),
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
    ping: async () => !seq.down,
  } as unknown as Store;
  const broker = new FakeBroker();
  const metrics = createMetrics("test", { defaultMetrics: false });
  /** The seqs handed to push notifications, in order. */
  const notified: number[] = [];
  const consumer = new PartitionConsumer(
    0,
    {
      broker: broker as unknown as Broker,
      store,
      members: new MembersCache(store, 60_000),
      heads: new ChannelHeadsWriter(store, log, 10),
      metrics,
      log,
      push: { notify: (ms) => void notified.push(...ms.map((m) => m.seq)) },
    },
    {
      prefetch: 100,
      batchSize: opts.batchSize ?? 10,
      flushIntervalMs: opts.flushIntervalMs ?? 1,
      retryDelayMs: 10,
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 5,
      maxStoreAttempts: opts.maxStoreAttempts ?? 3,
      maxDeliveries: opts.maxDeliveries ?? 20,
    },
  );
  return { seq, broker, consumer, heads, metrics, writes, notified };
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

test("stores in order, fans out to the members, hands the batch to push notifications, then acks", async () => {
  const { seq, broker, consumer, notified } = setup();
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
  assert.deepEqual(notified, [1, 2, 3]);
  await consumer.stop();
});

test("after storing: mentions recorded (an edit's on its message), an edit's preview revised and a delete's target scrubbed after the heads", async () => {
  const { broker, consumer, writes, heads } = setup({ batchSize: 10, flushIntervalMs: 20 });
  await consumer.start();
  broker.send({ ...msg("a"), mentions: ["v"] });
  broker.send({ ...msg("e"), kind: "edit", targetSeq: 1, mentions: ["w"] });
  broker.send({ ...msg("r"), kind: "reaction", targetSeq: 1, emoji: "x", on: true, mentions: ["z"] });
  broker.send({ ...msg("d"), kind: "delete", targetSeq: 1, body: "" });
  await until("acked", () => broker.acked.length === 4);
  assert.deepEqual(writes, [
    "mention c:1 v",
    "mention c:1 w",
    'revise c:1 by 2 "e" after 1 heads',
    "scrub c:1 after 1 heads",
  ]);
  assert.deepEqual(
    (heads as Array<{ lastSeq: number; lastMessage: { seq: number } | null }>).map((h) => [
      h.lastSeq,
      h.lastMessage?.seq,
    ]),
    [[4, 1]],
    "events raise lastSeq; the preview stays the plain message's",
  );
  await consumer.stop();
});

test("a malformed delivery is parked (reason malformed), acked, and nobody is told", async () => {
  const { broker, consumer } = setup();
  await consumer.start();
  broker.send(null);
  broker.send(msg("ok"));
  await until("both acked", () => broker.acked.length === 2);
  assert.deepEqual(
    broker.parked.map((p) => p.reason),
    ["malformed"],
  );
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

test("a failed fan-out is retried in process: the batch stays unacked, the channel open", async () => {
  const { broker, consumer, seq, metrics } = setup();
  await consumer.start();
  broker.failFanOut = true;
  broker.send(msg("p"));
  await until("retried", () => seq.seqsOf("c").length === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(broker.acked, []);
  assert.equal(broker.subs[0]?.sub.isClosed, false, "not returned to the queue");
  broker.failFanOut = false;
  broker.send(msg("q"));
  await until("acked", () => broker.acked.length === 2);
  assert.equal(broker.subs.length, 1, "no resubscription");
  assert.deepEqual(seq.seqsOf("c"), [1, 2]);
  const seqs = broker.published.map((p) =>
    p.event.t === "message" ? `${p.event.message.clientMsgId}@${p.event.message.seq}` : "",
  );
  assert.deepEqual(seqs, ["p@1", "q@2"]);
  const retries = (await metrics.transientRetries.get()).values.find((v) => v.labels["step"] === "fanout");
  assert.ok((retries?.value ?? 0) > 0);
  await consumer.stop();
});

test("a store outage is waited out in process, however long: nothing acked, parked or requeued", async () => {
  const { broker, consumer, seq } = setup({ batchSize: 10, flushIntervalMs: 20 });
  await consumer.start();
  seq.down = Object.assign(new Error("connect ECONNREFUSED"), { name: "MongoServerSelectionError" });
  for (const id of ["m1", "m2", "m3"]) broker.send(msg(id));
  await until("many attempts", () => seq.inserts > 20);
  assert.deepEqual(broker.acked, []);
  assert.equal(broker.parked.length, 0);
  assert.equal(broker.subs[0]?.sub.isClosed, false);
  seq.down = null;
  await until("acked", () => broker.acked.length === 3);
  assert.deepEqual(seq.seqsOf("c"), [1, 2, 3]);
  assert.equal(broker.subs.length, 1);
  await consumer.stop();
});

test("an unknown failure while the store answers pings counts as transient too", async () => {
  const { broker, consumer, seq } = setup();
  await consumer.start();
  seq.down = new Error("something odd"); // ping() answers false while down
  broker.send(msg("a"));
  await until("attempts", () => seq.inserts > 10);
  assert.equal(broker.parked.length, 0);
  seq.down = null;
  await until("acked", () => broker.acked.length === 1);
  await consumer.stop();
});

test("a message the store refuses is parked, takes no seq, its sender is told, the rest is stored in order", async () => {
  const { broker, consumer, seq, metrics } = setup({ batchSize: 10, flushIntervalMs: 20 });
  await consumer.start();
  const sqlstate = Object.assign(new Error("ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)"), {
    name: "MongoBulkWriteError",
    code: 1,
  });
  seq.refuse = (d) => (d.body.includes("\u0000") ? sqlstate : undefined);
  const bad = { ...msg("bad"), body: "a\u0000b" };
  for (const m of [msg("before"), bad, msg("after"), msg("other", "d")]) broker.send(m);
  await until("all acked", () => broker.acked.length === 4);
  assert.deepEqual(seq.seqsOf("c"), [1, 2], "gap-free: the parked message has no seq");
  assert.deepEqual(seq.seqsOf("d"), [1]);
  assert.deepEqual(
    broker.parked.map((p) => [p.reason, p.partition, p.attempts]),
    [["refused", 0, 1]],
  );
  assert.match(broker.parked[0]?.error ?? "", /SQLSTATE 22P05/);
  assert.deepEqual(JSON.parse(broker.parked[0]?.raw.content.toString() ?? "{}").clientMsgId, "bad");
  assert.deepEqual(broker.failed(), [{ clientMsgId: "bad", code: "NOT_STORED", to: ["u"] }]);
  const stored = broker.published.flatMap((p) =>
    p.event.t === "message" ? [`${p.event.message.clientMsgId}@${p.event.message.seq}`] : [],
  );
  assert.deepEqual(stored.sort(), ["after@2", "before@1", "other@1"]);
  assert.equal(broker.subs.length, 1);
  const parked = (await metrics.messagesParked.get()).values.filter((v) => v.value > 0);
  assert.deepEqual(
    parked.map((v) => [v.labels["reason"], v.value]),
    [["refused", 1]],
  );
  await consumer.stop();
});

test("a message failing for an unknown reason while the store is healthy is parked after maxStoreAttempts", async () => {
  const { broker, consumer, seq } = setup({ maxStoreAttempts: 4 });
  await consumer.start();
  seq.refuse = (d) => (d.clientMsgId === "odd" ? new Error("weird") : undefined);
  broker.send(msg("odd"));
  broker.send(msg("fine"));
  await until("acked", () => broker.acked.length === 2);
  assert.deepEqual(
    broker.parked.map((p) => [p.reason, p.attempts]),
    [["attempts", 4]],
  );
  assert.deepEqual(seq.seqsOf("c"), [1]);
  await consumer.stop();
});

test("a delivery the broker returned maxDeliveries times is parked without a try; a failed park is retried", async () => {
  const { broker, consumer, seq } = setup({ maxDeliveries: 5 });
  await consumer.start();
  broker.failPark = 3;
  broker.send(msg("crashy"), true, 5);
  broker.send(msg("next"), true, 4);
  await until("acked", () => broker.acked.length === 2);
  assert.deepEqual(
    broker.parked.map((p) => [p.reason, p.deliveryCount, p.attempts]),
    [["deliveries", 5, 0]],
  );
  assert.deepEqual(seq.seqsOf("c"), [1]);
  assert.deepEqual(
    broker.failed().map((f) => f.clientMsgId),
    ["crashy"],
  );
  await consumer.stop();
});

test("a release during an outage gives the deliveries back instead of waiting", async () => {
  const { broker, consumer, seq } = setup();
  await consumer.start();
  seq.down = Object.assign(new Error("down"), { name: "MongoNetworkError" });
  broker.send(msg("w"));
  await until("attempts", () => seq.inserts > 3);
  const t0 = Date.now();
  await consumer.stop();
  assert.ok(Date.now() - t0 < 1000, "released promptly");
  assert.equal(broker.subs[0]?.sub.isClosed, true);
  assert.deepEqual(broker.acked, []);
});

test("a channel lost during a retry abandons the batch; the consumer resubscribes and stores the redelivery", async () => {
  const { broker, consumer, seq } = setup();
  await consumer.start();
  seq.down = Object.assign(new Error("down"), { name: "MongoNetworkError" });
  broker.send(msg("x"));
  await until("attempts", () => seq.inserts > 3);
  await broker.subs[0]?.sub.close(); // the broker connection went
  await until("resubscribed", () => broker.subs.length === 2);
  seq.down = null;
  broker.send(msg("x"), true);
  await until("acked", () => broker.acked.length === 1);
  assert.deepEqual(seq.seqsOf("c"), [1]);
  await consumer.stop();
});

const publishedSeqs = (broker: FakeBroker): string[] =>
  broker.published.flatMap((p) =>
    p.event.t === "message" ? [`${p.event.message.clientMsgId}@${p.event.message.seq}`] : [],
  );

test("pipelined: the next batch is stored while the previous batch's fan-out awaits its confirms; its publishes and acks follow", async () => {
  const { broker, consumer, seq } = setup({ batchSize: 2 });
  await consumer.start();
  try {
    broker.hold();
    broker.send(msg("m1"));
    broker.send(msg("m2"));
    await until("batch 1 published", () => publishedSeqs(broker).length === 2);
    broker.send(msg("m3"));
    broker.send(msg("m4"));
    await until("batch 2 stored behind the unconfirmed fan-out", () => seq.seqsOf("c").length === 4);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(
      publishedSeqs(broker),
      ["m1@1", "m2@2"],
      "batch 2 is published only after batch 1's acks",
    );
    assert.deepEqual(broker.acked, []);
    broker.send(msg("m5"));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(seq.seqsOf("c").length, 4, "one batch ahead at most: m5 waits for batch 1's fan-out");
    broker.release();
    await until("all acked", () => broker.acked.length === 5);
    assert.deepEqual(broker.acked, ["m1", "m2", "m3", "m4", "m5"]);
    assert.deepEqual(publishedSeqs(broker), ["m1@1", "m2@2", "m3@3", "m4@4", "m5@5"]);
  } finally {
    broker.failFanOut = false;
    broker.release(); // a failed assertion must not leave the consumer waiting
    await consumer.stop();
  }
});

test("pipelined: a fan-out failing while the next batch is stored is published again before anything later", async () => {
  const { broker, consumer, seq } = setup({ batchSize: 1 });
  await consumer.start();
  try {
    broker.failFanOut = true;
    broker.send(msg("a"));
    broker.send(msg("b"));
    await until("b stored while a's fan-out is retried", () => seq.seqsOf("c").length === 2);
    assert.deepEqual(publishedSeqs(broker), []);
    broker.failFanOut = false;
    await until("both acked", () => broker.acked.length === 2);
    assert.deepEqual(publishedSeqs(broker), ["a@1", "b@2"]);
  } finally {
    broker.failFanOut = false;
    broker.release(); // a failed assertion must not leave the consumer waiting
    await consumer.stop();
  }
});

test("pipelined: a batch with a delete is fanned out and scrubbed before the next batch is stored", async () => {
  const { broker, consumer, seq, writes } = setup({ batchSize: 2 });
  await consumer.start();
  try {
    broker.send(msg("a"));
    await until("a acked", () => broker.acked.length === 1);
    broker.hold();
    broker.send({ ...msg("d"), kind: "delete", targetSeq: 1, body: "" });
    await until("d published", () => publishedSeqs(broker).length === 2);
    broker.send(msg("e"));
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(seq.seqsOf("c"), [1, 2], "e waits for the delete's fan-out and scrub");
    assert.deepEqual(writes, []);
    broker.release();
    await until("scrubbed", () => writes.length === 1);
    await until("e stored and published", () => publishedSeqs(broker).length === 3);
    broker.release();
    await until("all acked", () => broker.acked.length === 3);
    assert.deepEqual(writes, ["scrub c:1 after 1 heads"]);
  } finally {
    broker.failFanOut = false;
    broker.release(); // a failed assertion must not leave the consumer waiting
    await consumer.stop();
  }
});

test("pipelined: a channel lost with a batch stored behind an unconfirmed fan-out acks neither; the redelivery is stored once, in order", async () => {
  const { broker, consumer, seq } = setup({ batchSize: 1 });
  await consumer.start();
  try {
    broker.hold();
    broker.send(msg("a"));
    await until("a published", () => publishedSeqs(broker).length === 1);
    broker.send(msg("b"));
    await until("b stored", () => seq.seqsOf("c").length === 2);
    await broker.subs[0]?.sub.close(); // the broker connection went
    broker.release();
    await until("resubscribed", () => broker.subs.length === 2);
    assert.deepEqual(broker.acked, [], "nothing acked on the lost channel");
    assert.deepEqual(publishedSeqs(broker), ["a@1"], "b was never published");
    broker.send(msg("a"), true);
    broker.send(msg("b"), true);
    await until("acked after redelivery", () => broker.acked.length === 2);
    assert.deepEqual(seq.seqsOf("c"), [1, 2]);
    assert.deepEqual(publishedSeqs(broker), ["a@1", "a@1", "b@2"]);
  } finally {
    broker.failFanOut = false;
    broker.release(); // a failed assertion must not leave the consumer waiting
    await consumer.stop();
  }
});
