// Poison messages and the parked queue on RabbitMQ 4 (the harness default): the partition queues'
// arguments, a message the store refuses parked mid-stream (gap-free seq, the sender told), the
// broker's own dead-lettering past the delivery limit, the admin command (list, replay, discard),
// and partition queues left by an older VibeTalk.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Message, MessageFailedEvent } from "@vibetalk/protocol";
import { connect } from "amqplib";
import {
  PARKED_QUEUE_ARGS,
  PARTITION_DELIVERY_LIMIT,
  PARTITION_QUEUE_ARGS,
} from "../../src/adapters/rabbit-broker.js";
import { discardParked, listParked, replayParked, type ParkedEntry } from "../../src/admin/parked.js";
import { partitionOf } from "../../src/domain/hashing.js";
import type { ChatNode } from "../../src/node.js";
import {
  management,
  publishToPartitionDirectly,
  sleep,
  startNode,
  startServices,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";

const PARTITIONS = 8;
/** Partition 7 has no consumer until a test starts one. */
const FREE = 7;
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

let services: Services;
let A: ChatNode;

before(async () => {
  services = await startServices();
  A = await startNode(services, { OWNED_PARTITIONS: "0-6" });
});
after(async () => {
  await A?.stop();
  await services?.stop();
});

async function stored(u: TestUser, node: ChatNode, channelId: string): Promise<Message[]> {
  const r = await u.api<{ messages: Message[] }>(
    node,
    "GET",
    `/channels/${channelId}/messages?afterSeq=0&limit=100`,
  );
  return r.body.messages;
}

/** A group of `owner` with `members` whose partition satisfies `want`. */
async function groupOn(owner: TestUser, members: TestUser[], want: (k: number) => boolean) {
  for (;;) {
    const ch = await owner.group(A, "g", members);
    if (want(partitionOf(ch.id, PARTITIONS))) return ch;
  }
}

async function metric(node: ChatNode, name: string): Promise<number> {
  const all = await node.metrics.registry.getMetricsAsJSON();
  return (all.find((m) => m.name === name)?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe("topology", () => {
  test("every partition queue has a delivery limit and the parked queue as dead-letter target", async () => {
    const q = await management<{ arguments: Record<string, unknown>; type: string }>(
      services,
      "/api/queues/%2F/vibetalk.partition.0",
    );
    assert.equal(q.type, "quorum");
    assert.deepEqual(q.arguments, PARTITION_QUEUE_ARGS);
    const parked = await management<{ arguments: Record<string, unknown>; type: string }>(
      services,
      "/api/queues/%2F/vibetalk.parked",
    );
    assert.equal(parked.type, "quorum");
    assert.deepEqual(parked.arguments, PARKED_QUEUE_ARGS);
    console.log(`parked queue tests on RabbitMQ ${services.rabbit.version}`);
  });
});

describe("parking", () => {
  test("a message the store refuses, mid-stream: parked, no seq taken, its sender told, the partition goes on", async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(A);
    const ch = await groupOn(ann, [ben], (k) => k !== FREE);
    const [sa1, sa2, sb] = await Promise.all([ann.connect(A), ann.connect(A), ben.connect(A)]);
    assert.equal((await sa1.send(ch.id, "before", "before")).ok, true);
    // The edge refuses NUL (INVALID_ARGUMENT) ...
    const refused = await sa1.send(ch.id, "a\u0000b", "nul-at-the-edge");
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.error.code, "INVALID_ARGUMENT");
    // ... so bypass it, as a message from an older node or another client of the broker would.
    await publishToPartitionDirectly(services, partitionOf(ch.id, PARTITIONS), {
      channelId: ch.id,
      senderId: ann.id,
      clientMsgId: "poison",
      body: "a\u0000b",
      fileIds: [],
      sentAt: Date.now(),
    });
    assert.equal((await sa1.send(ch.id, "after", "after")).ok, true);
    const got = await sb.waitMessages(ch.id, 2);
    assert.deepEqual(
      got.map((m) => [m.seq, m.clientMsgId]),
      [
        [1, "before"],
        [2, "after"],
      ],
    );
    for (const s of [sa1, sa2]) {
      const f = await s.waitEvent<MessageFailedEvent>("message:failed");
      assert.deepEqual(
        { ...f, message: typeof f.message },
        { channelId: ch.id, clientMsgId: "poison", code: "NOT_STORED", message: "string" },
      );
    }
    assert.equal(sb.of("message:failed").length, 0, "only the sender is told");
    assert.deepEqual(
      (await stored(ann, A, ch.id)).map((m) => m.seq),
      [1, 2],
    );
    const parked = (await listParked(services.rabbit.url)).filter((e) => e.clientMsgId === "poison");
    assert.equal(parked.length, 1);
    const p = parked[0] as ParkedEntry;
    assert.equal(p.reason, "refused");
    assert.equal(p.partition, partitionOf(ch.id, PARTITIONS));
    assert.match(p.error, /SQLSTATE 22P05/);
    assert.equal(p.body, "a\\u0000b");
    assert.equal(await metric(A, "vibetalk_messages_parked_total"), 1);
    await waitFor("parked gauge", async () => (await metric(A, "vibetalk_parked_messages")) >= 1, 10_000);
    // Discarded by id: gone from the queue.
    const gone = await discardParked(services.rabbit.url, { ids: [p.id] });
    assert.deepEqual(
      gone.map((e) => e.id),
      [p.id],
    );
    assert.equal((await listParked(services.rabbit.url)).filter((e) => e.id === p.id).length, 0);
    for (const u of [ann, ben]) u.closeAll();
  });

  test(`RabbitMQ dead-letters a message returned ${PARTITION_DELIVERY_LIMIT} times to the parked queue instead of dropping it; replay stores it`, async () => {
    const ann = await TestUser.register(A);
    const ben = await TestUser.register(A);
    const ch = await groupOn(ann, [ben], (k) => k === FREE);
    const [sa, sb] = await Promise.all([ann.connect(A), ben.connect(A)]);
    assert.equal((await sa.send(ch.id, "crashy", "crashy")).ok, true, "acked: durable in partition 7");
    // A consumer that keeps giving it back (crash loop): RabbitMQ 4 stops after the limit.
    const conn = await connect(services.rabbit.url);
    const rch = await conn.createChannel();
    await rch.prefetch(1);
    let deliveries = 0;
    await rch.consume(`vibetalk.partition.${FREE}`, (m) => {
      if (!m) return;
      deliveries++;
      rch.nack(m, false, true);
    });
    const entry = await waitFor(
      "dead-lettered to the parked queue",
      async () => (await listParked(services.rabbit.url)).find((e) => e.clientMsgId === "crashy"),
      30_000,
    );
    await conn.close();
    assert.equal(deliveries, PARTITION_DELIVERY_LIMIT + 1);
    assert.equal(entry.reason, "delivery_limit");
    assert.equal(entry.partition, FREE);
    // Replayed with the command a pod has (node dist/main.js parked …; here main.ts under tsx).
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "chat-node/src/main.ts", "parked", "replay", "--id", entry.id],
      { cwd: repoRoot, env: { ...process.env, RABBITMQ_URL: services.rabbit.url } },
    );
    assert.equal(JSON.parse(stdout.trim()).clientMsgId, "crashy");
    const B = await startNode(services, { OWNED_PARTITIONS: String(FREE) });
    try {
      const m = await sb.waitMessages(ch.id, 1, 20_000);
      assert.deepEqual(
        m.map((x) => [x.seq, x.clientMsgId]),
        [[1, "crashy"]],
      );
      // Replaying again (another copy) stores nothing new: the clientMsgId is known.
      await publishToPartitionDirectly(services, FREE, {
        channelId: ch.id,
        senderId: ann.id,
        clientMsgId: "crashy",
        body: "crashy",
        fileIds: [],
        sentAt: Date.now(),
      });
      await sleep(1000);
      assert.deepEqual(
        (await stored(ann, A, ch.id)).map((x) => [x.seq, x.clientMsgId]),
        [[1, "crashy"]],
      );
      assert.equal(
        (await listParked(services.rabbit.url)).filter((e) => e.clientMsgId === "crashy").length,
        0,
      );
    } finally {
      await B.stop();
    }
    ann.closeAll();
    ben.closeAll();
  });

  test("replay --all and list from the command line; replay needs --id or --all", async () => {
    const cli = (args: string[]) =>
      promisify(execFile)(process.execPath, ["--import", "tsx", "chat-node/src/admin/parked.ts", ...args], {
        cwd: repoRoot,
        env: { ...process.env, RABBITMQ_URL: services.rabbit.url },
      });
    await assert.rejects(cli(["replay"]), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr ?? "", /needs --id <id> or --all/);
      return true;
    });
    const { stdout } = await cli(["list"]);
    assert.equal(stdout.trim(), "", "nothing parked after the tests above");
    assert.deepEqual(await replayParked(services.rabbit.url, { all: true }), []);
  });
});

describe("upgrading from partition queues without delivery limits", () => {
  test("an older node's queues: the node starts, says what to do, consumes them; the documented policy covers them", async () => {
    const vhost = "legacy";
    await services.rabbit.ctl(["add_vhost", vhost]);
    await services.rabbit.ctl(["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
    const url = `${services.rabbit.url}/${vhost}`;
    const conn = await connect(url);
    const ch = await conn.createChannel();
    for (const k of [0, 1])
      await ch.assertQueue(`vibetalk.partition.${k}`, {
        durable: true,
        arguments: { "x-queue-type": "quorum", "x-single-active-consumer": true },
      });
    await conn.close();
    const C = await startNode(services, { RABBITMQ_URL: url, OWNED_PARTITIONS: "all" });
    try {
      assert.equal(await metric(C, "vibetalk_legacy_partition_queues"), 2);
      const ann = await TestUser.register(C);
      const ben = await TestUser.register(C);
      const [sa, sb] = await Promise.all([ann.connect(C), ben.connect(C)]);
      // A channel on a legacy partition still works.
      let chId = "";
      while (!chId) {
        const g = await ann.group(C, "legacy", [ben]);
        if (partitionOf(g.id, PARTITIONS) <= 1) chId = g.id;
      }
      assert.equal((await sa.send(chId, "still flowing")).ok, true);
      await sb.waitMessages(chId, 1);
      // docs/chat-node.md, "Upgrading the partition queues": the policy gives them the same protection.
      await services.rabbit.ctl([
        "set_policy",
        "-p",
        vhost,
        "--apply-to",
        "queues",
        "vibetalk-partitions",
        "^vibetalk\\.partition\\.",
        JSON.stringify({
          "delivery-limit": PARTITION_DELIVERY_LIMIT,
          "dead-letter-exchange": "",
          "dead-letter-routing-key": "vibetalk.parked",
          "dead-letter-strategy": "at-least-once",
          overflow: "reject-publish",
        }),
      ]);
      const q = await waitFor(
        "policy applied",
        async () => {
          const r = await management<{
            policy?: string;
            effective_policy_definition?: Record<string, unknown>;
          }>(services, `/api/queues/${vhost}/vibetalk.partition.0`);
          return r.policy === "vibetalk-partitions" ? r : undefined;
        },
        15_000,
      );
      assert.equal(q.effective_policy_definition?.["dead-letter-routing-key"], "vibetalk.parked");
      ann.closeAll();
      ben.closeAll();
    } finally {
      await C.stop();
    }
  });
});
