// The Broker contract (docs/chat-node.md#ports-and-fakes), run against RabbitBroker on RabbitMQ 4
// (integration) and MemoryBroker (unit). `connect(nodeId)` gives one chat-node's adapter; all of
// them share one broker with `partitions` partitions and `fanoutMaxRecipients` recipients per
// publish. Each test takes partitions of its own, so one server serves them all.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import type { AcceptedMessage } from "../../../src/domain/messages.js";
import {
  DependencyUnavailableError,
  type Broker,
  type ControlEvent,
  type NodeDelivery,
  type NodeEvent,
  type PartitionDelivery,
} from "../../../src/ports.js";

export interface BrokerContractOptions {
  partitions: number;
  fanoutMaxRecipients: number;
  /** How long "nothing more arrives" is watched for (a server's round trips, a fake's next tick). */
  quietMs: number;
}

const id = () => randomBytes(6).toString("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const accepted = (channelId: string, n: number): AcceptedMessage => ({
  channelId,
  senderId: "s1",
  clientMsgId: `c${n}`,
  body: `message ${n} ✓`,
  fileIds: n % 2 ? [] : ["f1"],
  sentAt: 1_700_000_000_000 + n,
});
const event = (n: number): NodeEvent => ({
  t: "receipt",
  receipt: { channelId: "ch", userId: "u", kind: "read", seq: n },
});
const seqOf = (d: NodeDelivery) => (d.event.t === "receipt" ? d.event.receipt.seq : -1);

export function brokerContract(
  name: string,
  connect: (nodeId: string) => Promise<Broker>,
  opts: BrokerContractOptions,
): void {
  let nextPartition = 0;
  const partition = () => {
    assert.ok(nextPartition < opts.partitions, "the contract needs more partitions");
    return nextPartition++;
  };
  const node = async (t: TestContext) => {
    const b = await connect(`contract-${id()}`);
    t.after(() => b.close());
    return b;
  };
  const collect = (b: Broker) => {
    const got: NodeDelivery[] = [];
    b.onNodeEvent((d) => got.push(d));
    return got;
  };
  const subscribe = async (b: Broker, p: number, prefetch = 100) => {
    const got: PartitionDelivery[] = [];
    const sub = await b.subscribePartition(p, prefetch, (d) => got.push(d));
    return { sub, got };
  };

  test(`${name}: a partition delivers in publish order, with message, trace and ids`, async (t) => {
    const b = await node(t);
    const p = partition();
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
    const sent = [1, 2, 3, 4, 5].map((n) => accepted(`ch-${p}`, n));
    for (const m of sent) await b.publishToPartition(p, m, trace);
    const { sub, got } = await subscribe(b, p);
    await until("5 deliveries", () => got.length === 5);
    assert.deepEqual(
      got.map((d) => d.message),
      sent,
    );
    for (const d of got) {
      assert.deepEqual(d.trace, trace);
      assert.equal(d.redelivered, false);
      assert.equal(d.deliveryCount, 0);
      assert.equal(typeof d.raw.messageId, "string");
      assert.deepEqual(JSON.parse(d.raw.content.toString("utf8")), d.message);
    }
    assert.equal(new Set(got.map((d) => d.raw.messageId)).size, 5, "each publish has its own message id");
    for (const d of got) d.ack();
    await sub.close();
  });

  test(`${name}: depth counts ready messages; acked ones are gone for good`, async (t) => {
    const b = await node(t);
    const p = partition();
    assert.equal(await b.partitionDepth(p), 0);
    for (const n of [1, 2, 3]) await b.publishToPartition(p, accepted("d", n), {});
    await until("depth 3", async () => (await b.partitionDepth(p)) === 3);
    const first = await subscribe(b, p);
    await until("3 deliveries", () => first.got.length === 3);
    for (const d of first.got) d.ack();
    await until("depth 0", async () => (await b.partitionDepth(p)) === 0);
    await first.sub.close();
    const again = await subscribe(b, p);
    await sleep(opts.quietMs);
    assert.equal(again.got.length, 0, "an acked message is never delivered again");
    await again.sub.close();
  });

  test(`${name}: closing without acks gives the rest back, in order, redelivered and counted`, async (t) => {
    const b = await node(t);
    const p = partition();
    for (const n of [1, 2, 3, 4, 5]) await b.publishToPartition(p, accepted("r", n), {});
    const first = await subscribe(b, p);
    await until("5 deliveries", () => first.got.length === 5);
    first.got[0]?.ack();
    first.got[1]?.ack();
    await first.sub.close();
    await first.sub.closed;
    await b.publishToPartition(p, accepted("r", 6), {});
    const second = await subscribe(b, p);
    await until("4 deliveries", () => second.got.length === 4);
    assert.deepEqual(
      second.got.map((d) => d.message?.clientMsgId),
      ["c3", "c4", "c5", "c6"],
    );
    assert.deepEqual(
      second.got.map((d) => [d.redelivered, d.deliveryCount]),
      [
        [true, 1],
        [true, 1],
        [true, 1],
        [false, 0],
      ],
    );
    for (const d of second.got) d.ack();
    await second.sub.close();
  });

  test(`${name}: prefetch bounds the unacked deliveries; an ack lets the next one through`, async (t) => {
    const b = await node(t);
    const p = partition();
    for (const n of [1, 2, 3, 4, 5]) await b.publishToPartition(p, accepted("f", n), {});
    const { sub, got } = await subscribe(b, p, 2);
    await until("2 deliveries", () => got.length === 2);
    await sleep(opts.quietMs);
    assert.equal(got.length, 2);
    got[0]?.ack();
    await until("a third delivery", () => got.length === 3);
    assert.equal(got[2]?.message?.clientMsgId, "c3");
    await sleep(opts.quietMs);
    assert.equal(got.length, 3);
    await sub.close();
  });

  test(`${name}: one active consumer per partition; the next takes over when it closes`, async (t) => {
    const [a, b] = [await node(t), await node(t)];
    const p = partition();
    const first = await subscribe(a, p);
    const second = await subscribe(b, p);
    for (const n of [1, 2, 3]) await a.publishToPartition(p, accepted("s", n), {});
    await until("3 deliveries to the first", () => first.got.length === 3);
    await sleep(opts.quietMs);
    assert.equal(second.got.length, 0, "the second consumer waits");
    first.got[0]?.ack();
    await first.sub.close();
    await until("2 deliveries to the second", () => second.got.length === 2);
    assert.deepEqual(
      second.got.map((d) => [d.message?.clientMsgId, d.redelivered]),
      [
        ["c2", true],
        ["c3", true],
      ],
    );
    for (const d of second.got) d.ack();
    await second.sub.close();
  });

  test(`${name}: after cancel nothing new arrives, and what arrived can still be acked`, async (t) => {
    const b = await node(t);
    const p = partition();
    await b.publishToPartition(p, accepted("c", 1), {});
    const first = await subscribe(b, p);
    await until("1 delivery", () => first.got.length === 1);
    await first.sub.cancel();
    await b.publishToPartition(p, accepted("c", 2), {});
    await sleep(opts.quietMs);
    assert.equal(first.got.length, 1);
    first.got[0]?.ack();
    await sleep(50);
    await first.sub.close();
    const second = await subscribe(b, p);
    await until("1 delivery to the next consumer", () => second.got.length === 1);
    await sleep(opts.quietMs);
    assert.deepEqual(
      second.got.map((d) => d.message?.clientMsgId),
      ["c2"],
    );
    second.got[0]?.ack();
    await second.sub.close();
  });

  test(`${name}: a user event reaches each node holding a recipient once, no other node`, async (t) => {
    const [a, b, c] = [await node(t), await node(t), await node(t)];
    const [u1, u2, u3, u4] = [id(), id(), id(), id()];
    const [ga, gb, gc] = [collect(a), collect(b), collect(c)];
    await a.bindUser(u1);
    await b.bindUser(u2);
    await b.bindUser(u3);
    await b.bindUser(u3);
    await c.bindUser(id());
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01" };
    assert.equal(await a.publishToUsers(event(1), [u3, u1, u2, u4, u1], trace), 1);
    await until("a and b receive it", () => ga.length === 1 && gb.length === 1);
    for (const d of [ga[0], gb[0]]) {
      assert.deepEqual(d?.event, event(1));
      assert.deepEqual([...(d?.recipients ?? [])].sort(), [u1, u2, u3, u4].sort());
      assert.deepEqual(d?.trace, trace);
    }
    // a later event to b alone: when it has arrived, anything doubled of the first would have too
    await a.publishToUsers(event(2), [u2], {});
    await until("b receives the second", () => gb.length === 2);
    await sleep(opts.quietMs);
    assert.deepEqual(ga.map(seqOf), [1]);
    assert.deepEqual(gb.map(seqOf), [1, 2]);
    assert.equal(gc.length, 0);
  });

  test(`${name}: unbinding stops a user's events; a node's events keep their publish order`, async (t) => {
    const [a, b] = [await node(t), await node(t)];
    const [u1, u2] = [id(), id()];
    const gb = collect(b);
    await b.bindUser(u1);
    await b.bindUser(u2);
    for (let n = 1; n <= 20; n++) await a.publishToUsers(event(n), [n % 2 ? u1 : u2], {});
    await until("20 events", () => gb.length === 20);
    assert.deepEqual(
      gb.map(seqOf),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    await b.unbindUser(u1);
    await b.unbindUser(id());
    await a.publishToUsers(event(21), [u1], {});
    await a.publishToUsers(event(22), [u2], {});
    await until("the event for u2", () => gb.length === 21);
    await sleep(opts.quietMs);
    assert.deepEqual(gb.slice(20).map(seqOf), [22]);
  });

  test(`${name}: more recipients than one publish carries take several publishes, each delivered once`, async (t) => {
    const [a, b] = [await node(t), await node(t)];
    const users = Array.from({ length: opts.fanoutMaxRecipients * 2 + 1 }, () => id());
    const gb = collect(b);
    for (const u of users) await b.bindUser(u);
    const publishes = await a.publishToUsers(event(1), users, {});
    assert.equal(publishes, 3);
    await until("3 deliveries", () => gb.length === 3);
    await sleep(opts.quietMs);
    assert.equal(gb.length, 3);
    const all = gb.flatMap((d) => d.recipients);
    assert.deepEqual([...all].sort(), [...users].sort(), "every recipient in exactly one publish");
    for (const d of gb) assert.ok(d.recipients.length <= opts.fanoutMaxRecipients);
  });

  test(`${name}: a channel event reaches each node bound to the channel once, whatever else it binds`, async (t) => {
    const [a, b, c] = [await node(t), await node(t), await node(t)];
    const [ch, other, u1] = [`g${id()}`, `g${id()}`, id()];
    const [ga, gb, gc] = [collect(a), collect(b), collect(c)];
    await a.bindChannel(ch);
    await b.bindChannel(ch);
    await b.bindChannel(ch);
    await b.bindUser(u1);
    await c.bindChannel(other);
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01" };
    await a.publishToChannel(event(1), ch, trace);
    await until("a and b receive it", () => ga.length === 1 && gb.length === 1);
    for (const d of [ga[0], gb[0]]) {
      assert.deepEqual(d?.event, event(1));
      assert.equal(d?.channel, ch);
      assert.deepEqual(d?.recipients, []);
      assert.deepEqual(d?.trace, trace);
    }
    // Nobody bound is not an error; unbinding stops the channel's events, order is kept.
    await a.publishToChannel(event(2), `g${id()}`, {});
    await b.unbindChannel(ch);
    await b.unbindChannel(`g${id()}`);
    for (let n = 3; n <= 12; n++) await c.publishToChannel(event(n), ch, {});
    await a.publishToUsers(event(13), [u1], {});
    await until("a's ten and b's user event", () => ga.length === 11 && gb.length === 2);
    await sleep(opts.quietMs);
    assert.deepEqual(ga.map(seqOf), [1, ...Array.from({ length: 10 }, (_, i) => i + 3)]);
    assert.deepEqual(gb.map(seqOf), [1, 13]);
    assert.equal(gb[1]?.channel, undefined);
    assert.equal(gc.length, 0);
  });

  test(`${name}: a control event reaches every node, the sender's too`, async (t) => {
    const [a, b] = [await node(t), await node(t)];
    const got: Array<[string, ControlEvent]> = [];
    a.onControlEvent((e) => got.push(["a", e]));
    b.onControlEvent((e) => got.push(["b", e]));
    const e: ControlEvent = { t: "sessions", userId: id(), before: 123 };
    await a.publishControl(e);
    await until(
      "both nodes",
      () => got.filter(([, x]) => x.t === "sessions" && x.userId === e.userId).length === 2,
    );
    const mine = got.filter(([, x]) => x.t === "sessions" && x.userId === e.userId);
    assert.deepEqual(mine.map(([n]) => n).sort(), ["a", "b"]);
    for (const [, x] of mine) assert.deepEqual(x, e);
  });

  test(`${name}: a parked message is confirmed into the parked queue`, async (t) => {
    const b = await node(t);
    const p = partition();
    await b.publishToPartition(p, accepted("pk", 1), {});
    const { sub, got } = await subscribe(b, p);
    await until("a delivery", () => got.length === 1);
    const d = got[0] as PartitionDelivery;
    const before = await b.parkedDepth();
    await b.park({
      partition: p,
      raw: d.raw,
      reason: "refused",
      error: "E: no",
      attempts: 1,
      deliveryCount: 0,
    });
    d.ack();
    await until("the parked queue grew by one", async () => (await b.parkedDepth()) === before + 1);
    await sub.close();
  });

  test(`${name}: a closed broker refuses publishes with DependencyUnavailableError`, async (t) => {
    const b = await node(t);
    assert.equal(b.isConnected(), true);
    assert.equal(b.isBlocked(), false);
    const p = partition();
    const { sub } = await subscribe(b, p);
    await b.close();
    await sub.closed;
    const unavailable = (e: unknown) => e instanceof DependencyUnavailableError && e.dependency === "broker";
    await assert.rejects(b.publishToPartition(p, accepted("x", 1), {}), unavailable);
    await assert.rejects(b.publishToUsers(event(1), [id()], {}), unavailable);
    await assert.rejects(b.publishControl({ t: "members", channelId: "c", origin: "o" }), unavailable);
  });
}
