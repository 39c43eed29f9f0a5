// Large channels on real Redis, RabbitMQ 4 and FerretDB with three chat-nodes (docs/chat-node.md,
// "Large channels"): the official group with 2,000 members and a group that grows past
// LARGE_CHANNEL_MEMBERS are published once per message to `vibetalk.channels`, each node bound to the
// channel while it holds a member; counted here: deliveries per message = nodes holding online members
// (I5), every online device gets every message once in seq order (I2, I4), offline ones by sync, and the
// broker's bindings follow the sockets under random connects and disconnects.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, afterEach, before, describe, test } from "node:test";
import {
  OFFICIAL_CHANNEL_ID,
  type ChannelDetailsReply,
  type Message,
  type SyncReply,
} from "@vibetalk/protocol";
import { closeBackends } from "../../src/node/backends.js";
import type { ChatNode } from "../../src/node.js";
import {
  http,
  management,
  serviceLayerOn,
  sleep,
  startNode,
  startServices,
  TestUser,
  waitFor,
  type Services,
  type TestSocket,
} from "../support/harness.js";

const SERVICE_TOKEN = `service-${randomBytes(24).toString("hex")}`;
const THRESHOLD = 20;
const GRACE_S = 1;
const ENV = {
  OFFICIAL_GROUP: "true",
  OFFICIAL_SERVICE_TOKEN: SERVICE_TOKEN,
  LARGE_CHANNEL_MEMBERS: String(THRESHOLD),
  LARGE_CHANNEL_SWITCH_MS: "1000",
  BINDING_GRACE_SECONDS: String(GRACE_S),
  RECEIPT_FLUSH_MS: "100",
  RECEIPT_COUNTS_INTERVAL_MS: "300",
};

let services: Services;
let nodes: ChatNode[] = [];
const opened: TestUser[] = [];

before(async () => {
  services = await startServices();
  nodes = await Promise.all(
    ["0-2", "3-5", "6-7"].map((owned) => startNode(services, { ...ENV, OWNED_PARTITIONS: owned })),
  );
});
afterEach(() => {
  for (const u of opened.splice(0)) u.closeAll();
});
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await services?.stop();
});

async function users(n: number, at: ChatNode): Promise<TestUser[]> {
  const out = await Promise.all(Array.from({ length: n }, () => TestUser.register(at, "lc")));
  opened.push(...out);
  return out;
}

/** Messages a node's queue received, by kind "message" (vibetalk_broker_deliveries_total). */
async function deliveries(n: ChatNode): Promise<number> {
  const v = (await n.metrics.brokerDeliveries.get()).values.find((x) => x.labels["kind"] === "message");
  return v?.value ?? 0;
}
const allDeliveries = () => Promise.all(nodes.map(deliveries));

/** The node queues bound to a channel on `vibetalk.channels`, as RabbitMQ lists them. */
async function boundQueues(channelId: string): Promise<string[]> {
  const b = await management<Array<{ destination: string; routing_key: string }>>(
    services,
    "/api/exchanges/%2F/vibetalk.channels/bindings/source",
  );
  return b
    .filter((x) => x.routing_key === channelId)
    .map((x) => x.destination)
    .sort();
}
const queueOf = (n: ChatNode) => `vibetalk.node.${n.config.nodeId}`;

/** Seqs of a socket's copies of a channel's messages, and the check that they are one each, in order. */
function assertOnceInOrder(got: Message[], want: string[], who: string): void {
  const ids = got.map((m) => m.clientMsgId);
  assert.deepEqual(ids, want, `${who}: every message once, in send order`);
  for (let i = 1; i < got.length; i++)
    assert.equal(got[i]?.seq, (got[i - 1]?.seq ?? 0) + 1, `${who}: seqs gap-free and increasing`);
}

describe("the official group, 2,000 members over three nodes", () => {
  test("one publish and one delivery per node holding online members per message; online devices once in order, offline by sync", async () => {
    const side = await serviceLayerOn(services, new URL(services.mongo.url).pathname.slice(1), ENV);
    try {
      const official = side.layer.official;
      assert.ok(official);
      const fake = Array.from({ length: 2000 }, () => randomBytes(12).toString("hex"));
      for (let i = 0; i < fake.length; i += 500) await official.join(fake.slice(i, i + 500));
    } finally {
      await closeBackends(side.b);
    }
    const [A, B, C] = nodes as [ChatNode, ChatNode, ChatNode];
    const [u0, u1, u2, u3, off1, off2] = await users(6, A);
    // Online: u0 with a device on A and one on B, u1 on A, u2 and u3 on B; C holds no member.
    const sockets: Array<[string, TestSocket]> = [
      ["u0@A", await u0!.connect(A)],
      ["u0@B", await u0!.connect(B)],
      ["u1@A", await u1!.connect(A)],
      ["u2@B", await u2!.connect(B)],
      ["u3@B", await u3!.connect(B)],
    ];
    const members = (await u0!.api<ChannelDetailsReply>(A, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`)).body
      .channel.memberCount;
    assert.ok(members >= 2006, `${members} members`);
    assert.deepEqual(
      await boundQueues(OFFICIAL_CHANNEL_ID),
      [queueOf(A), queueOf(B)].sort(),
      "A and B bound, not C",
    );
    const publishesBefore = await publishes();
    const before = await allDeliveries();
    const lastSeq = (await off1!.api<ChannelDetailsReply>(A, "GET", `/channels/${OFFICIAL_CHANNEL_ID}`)).body
      .channel.lastSeq;
    const ids: string[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const clientMsgId = randomUUID();
      ids.push(clientMsgId);
      const r = await http(C.url, "POST", "/api/v1/official/messages", {
        token: SERVICE_TOKEN,
        body: { clientMsgId, body: `announcement ${i}` },
      });
      assert.equal(r.status, 202);
    }
    for (const [who, s] of sockets) {
      const got = await s.waitMessages(OFFICIAL_CHANNEL_ID, 20);
      assert.equal(got[0]?.seq, lastSeq + 1, who);
    }
    const ms = Date.now() - t0;
    await waitFor("the deliveries counted", async () => (await allDeliveries())[1]! - before[1]! >= 20);
    await sleep(500);
    for (const [who, s] of sockets) assertOnceInOrder(s.messages(OFFICIAL_CHANNEL_ID), ids, who);
    const after = await allDeliveries();
    assert.deepEqual(
      after.map((n, i) => n - before[i]!),
      [20, 20, 0],
      "one delivery per message to A and to B (members online), none to C",
    );
    const p = await publishes();
    assert.equal(p.count - publishesBefore.count, 20);
    assert.equal(p.sum - publishesBefore.sum, 20, "one publish per message, whatever the member count");
    for (const u of [off1!, off2!]) {
      const r = await u.connect(C);
      const sync = await r.emit<SyncReply>("sync", {
        channels: [{ channelId: OFFICIAL_CHANNEL_ID, afterSeq: lastSeq }],
      });
      assert.equal(sync.ok, true);
      assert.deepEqual(
        sync.messages.map((m) => m.clientMsgId),
        ids,
        "an offline member gets all 20 by sync",
      );
    }
    console.log(
      `# official group: ${members} members, 20 posts, 5 online devices on 2 of 3 nodes, ${ms} ms for all`,
    );
  });
});

describe("a group past the threshold", () => {
  test("switches to channel bindings; bindings follow sockets under random connects and disconnects; removal stops delivery", async () => {
    const [A] = nodes as [ChatNode, ChatNode, ChatNode];
    const all = await users(THRESHOLD + 4, A);
    const [owner, ...rest] = all as [TestUser, ...TestUser[]];
    const group = await owner.group(A, "big", rest.slice(0, 9));
    const ownerSocket = await owner.connect(A);
    // Small: goes by routing key + CC, so nothing is bound to the channel.
    await ownerSocket.send(group.id, "while small");
    await ownerSocket.waitMessages(group.id, 1);
    assert.deepEqual(await boundQueues(group.id), []);
    const added = await owner.api<ChannelDetailsReply>(A, "POST", `/channels/${group.id}/members`, {
      userIds: rest.slice(9).map((u) => u.id),
    });
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.ok(added.body.channel.memberCount >= THRESHOLD);
    await waitFor("A bound for the owner", async () => (await boundQueues(group.id)).length === 1);
    await sleep(1100); // LARGE_CHANNEL_SWITCH_MS

    // A seeded walk: each round connects or disconnects six random members on random nodes.
    let seed = 17;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const open = new Map<TestUser, Array<{ node: number; socket: TestSocket }>>([
      [owner, [{ node: 0, socket: ownerSocket }]],
    ]);
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 6; k++) {
        const u = rest[rand(rest.length)]!;
        const mine = open.get(u) ?? [];
        if (mine.length > 0 && rand(2) === 0) {
          mine.pop()!.socket.close();
        } else {
          const node = rand(nodes.length);
          mine.push({ node, socket: await u.connect(nodes[node]!) });
        }
        open.set(u, mine);
      }
      const holding = new Set([...open.values()].flat().map((x) => x.node));
      const want = [...holding].map((i) => queueOf(nodes[i]!)).sort();
      // A node whose last member went keeps the binding for the grace period, then drops it.
      const seen = await waitFor(
        `round ${round}: bindings ${want.join(",")}`,
        async () => {
          const b = await boundQueues(group.id);
          return b.join(",") === want.join(",") ? b : undefined;
        },
        (GRACE_S + 5) * 1000,
      );
      assert.deepEqual(seen, want);
      await sleep(GRACE_S * 1000 + 300); // nothing further changes after the grace
      assert.deepEqual(await boundQueues(group.id), want, `round ${round}: stable after the grace`);

      const before = await allDeliveries();
      const clientMsgId = randomUUID();
      assert.equal((await ownerSocket.send(group.id, `round ${round}`, clientMsgId)).ok, true);
      for (const [u, socks] of open)
        for (const { socket } of socks)
          await waitFor(`${u.username} gets round ${round}`, () =>
            socket.messages(group.id).some((m) => m.clientMsgId === clientMsgId),
          );
      await sleep(300);
      const after = await allDeliveries();
      assert.deepEqual(
        after.map((n, i) => n - before[i]!),
        nodes.map((_, i) => (holding.has(i) ? 1 : 0)),
        `round ${round}: one delivery to each node holding members (${[...holding].join(",")}), none elsewhere`,
      );
      for (const socks of open.values())
        for (const { socket } of socks)
          assert.equal(socket.messages(group.id).filter((m) => m.clientMsgId === clientMsgId).length, 1);
    }

    // Receipts reach the sender as counts at a bounded rate, and no member gets the others' receipts.
    const last = ownerSocket.messages(group.id).at(-1)!;
    const readers = [...open].filter(([u, socks]) => u !== owner && socks.length > 0).slice(0, 3);
    assert.ok(readers.length >= 2, "members online to read");
    for (const [, socks] of readers)
      assert.equal(
        (
          await socks[0]!.socket.emit<{ ok: boolean }>("receipt", {
            channelId: group.id,
            kind: "read",
            seq: last.seq,
          })
        ).ok,
        true,
      );
    const counts = await ownerSocket.waitEvent<{ seq: number; delivered: number; read: number }>(
      "receipt:counts",
      (c) => c.seq === last.seq && c.read === readers.length,
    );
    assert.equal(counts.delivered, readers.length, "a read counts as delivered");
    await sleep(700);
    const countEvents = ownerSocket.of("receipt:counts").length;
    assert.ok(
      countEvents <= 3,
      `${countEvents} count events for one message: at most one per interval, counted twice`,
    );
    for (const socks of open.values())
      for (const { socket } of socks)
        assert.equal(
          socket.of("receipt").filter((r) => (r as { channelId: string }).channelId === group.id).length,
          0,
        );

    // A removed member stops receiving at once, on whichever node holds them.
    const victim = rest.find((u) => (open.get(u) ?? []).length > 0) ?? rest[0]!;
    const vs = (open.get(victim) ?? [])[0]?.socket ?? (await victim.connect(nodes[2]!));
    const removed = await owner.api(A, "DELETE", `/channels/${group.id}/members/${victim.id}`);
    assert.equal(removed.status, 200);
    await sleep(300);
    const clientMsgId = randomUUID();
    assert.equal((await ownerSocket.send(group.id, "after the removal", clientMsgId)).ok, true);
    await ownerSocket.waitEvent<Message>("message", (m) => m.clientMsgId === clientMsgId);
    await sleep(500);
    assert.equal(
      vs.messages(group.id).filter((m) => m.clientMsgId === clientMsgId).length,
      0,
      "a removed member's socket gets nothing more",
    );
  });
});

/** Sum and count of vibetalk_fanout_publishes_per_message over the nodes. */
async function publishes(): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const n of nodes) {
    const h = await n.metrics.fanoutPublishes.get();
    for (const v of h.values) {
      if (v.metricName?.endsWith("_sum")) sum += v.value;
      if (v.metricName?.endsWith("_count")) count += v.value;
    }
  }
  return { sum, count };
}
