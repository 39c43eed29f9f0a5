// I1: an acked message is never lost — the partition owner is SIGKILLed mid-stream and restarted;
// RabbitMQ restarts under load. Every acked message is stored once, gap-free, and delivered.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Message, MessageSendReply } from "@vibetalk/protocol";
import mongoose from "mongoose";
import type { ChatNode } from "../../src/node.js";
import { ChildNode } from "../support/child-node.js";
import type { TestSocket } from "../support/harness.js";
import { sleep, startNode, startServices, TestUser, waitFor, type Services } from "../support/harness.js";

let services: Services;
let gateway: ChatNode;
let owner: ChildNode | undefined;

before(async () => {
  services = await startServices();
  gateway = await startNode(services, { LIMIT_SEND_RATE: "1000", LIMIT_SEND_BURST: "1000" });
});
after(async () => {
  await owner?.stop();
  await gateway?.stop();
  await services?.stop();
});

/** A client that sends one message at a time and retries with the same clientMsgId until acked. */
async function sender(
  s: TestSocket,
  channelId: string,
  prefix: string,
  stop: () => boolean,
  acked: Set<string>,
): Promise<number> {
  let retries = 0;
  for (let i = 0; !stop(); i++) {
    const clientMsgId = `${prefix}-${String(i).padStart(5, "0")}`;
    for (;;) {
      let r: MessageSendReply;
      try {
        r = await s.send(channelId, `${prefix} ${i}`, clientMsgId);
      } catch {
        r = { ok: false, error: { code: "UNAVAILABLE", message: "timeout" } };
      }
      if (r.ok) break;
      assert.equal(r.error.code, "UNAVAILABLE", JSON.stringify(r));
      retries++;
      await sleep(50);
    }
    acked.add(clientMsgId);
  }
  return retries;
}

async function assertGapFree(stored: Message[]): Promise<void> {
  const bad = stored.findIndex((m, i) => m.seq !== i + 1);
  if (bad >= 0) {
    const around = stored.slice(Math.max(0, bad - 3), bad + 3).map((m) => `${m.seq}:${m.clientMsgId}`);
    const conn = await mongoose.createConnection(services.mongo.url).asPromise();
    const first = stored[bad - 1]?.seq ?? 0;
    const raw = await conn
      .db!.collection("messages")
      .find({ channelId: stored[0]?.channelId, seq: { $gt: first - 2, $lt: first + 40 } })
      .toArray();
    console.log(
      "DIAG raw docs:",
      raw.map((d) => `${String(d["_id"])}/${String(d["seq"])}/${String(d["clientMsgId"])}`).join(" "),
    );
    await conn.close();
    assert.fail(`seq not gap-free at index ${bad} of ${stored.length}: ${around.join(" ")}`);
  }
}

async function check(
  stored: Message[],
  acked: Set<string>,
  live: Message[][],
): Promise<{ duplicates: number }> {
  await assertGapFree(stored);
  const ids = stored.map((m) => m.clientMsgId);
  assert.equal(new Set(ids).size, ids.length, "each clientMsgId stored once");
  for (const id of acked) assert.ok(ids.includes(id), `acked ${id} is stored`);
  let duplicates = 0;
  for (const events of live) {
    const bySeq = new Map<number, Message>();
    for (const m of events) {
      const prev = bySeq.get(m.seq);
      if (prev) {
        duplicates++;
        assert.equal(prev.id, m.id);
        assert.equal(prev.clientMsgId, m.clientMsgId, "a seq never names two messages");
      }
      bySeq.set(m.seq, m);
    }
    assert.equal(bySeq.size, stored.length, "every stored message delivered live");
  }
  return { duplicates };
}

async function allStored(u: TestUser, channelId: string): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const after = out.length ? (out[out.length - 1] as Message).seq : 0;
    const r = await u.api<{ messages: Message[] }>(
      gateway,
      "GET",
      `/channels/${channelId}/messages?afterSeq=${after}&limit=100`,
    );
    out.push(...r.body.messages);
    if (r.body.messages.length < 100) return out;
  }
}

test("SIGKILL of the partition owner mid-stream, then restart", async () => {
  owner = await ChildNode.start(services, { OWNED_PARTITIONS: "all", NODE_ID: "owner-1" });
  const ann = await TestUser.register(gateway);
  const ben = await TestUser.register(gateway);
  const cid = await TestUser.register(gateway);
  const ch = await ann.group(gateway, "i1", [ben, cid]);
  const [sa, sb, sc] = await Promise.all([ann.connect(gateway), ben.connect(gateway), cid.connect(gateway)]);
  const acked = new Set<string>();
  let stop = false;
  const senders = Promise.all([
    sender(sa, ch.id, "ann", () => stop, acked),
    sender(sb, ch.id, "ben", () => stop, acked),
  ]);
  await waitFor("traffic", () => (sc.messages(ch.id).length > 150 ? true : undefined), 30_000);
  assert.equal(await owner.kill(), true, "owner killed");
  const killedAt = acked.size;
  await sleep(1500); // sends keep being acked: the partition queue holds them
  assert.ok(acked.size > killedAt, "sends are acked while the owner is down");
  await owner.stop(); // the killed process's folder (its log), which the restart below would leak
  owner = await ChildNode.start(services, { OWNED_PARTITIONS: "all", NODE_ID: "owner-1" });
  await sleep(1500);
  stop = true;
  const retries = await senders;
  const expected = acked.size;
  await waitFor(
    "all delivered",
    () => (new Set(sc.messages(ch.id).map((m) => m.seq)).size >= expected ? true : undefined),
    30_000,
  );
  await sleep(500);
  const stored = await allStored(ann, ch.id);
  assert.equal(stored.length, expected);
  const { duplicates } = await check(stored, acked, [
    sa.messages(ch.id),
    sb.messages(ch.id),
    sc.messages(ch.id),
  ]);
  console.log(
    `I1 owner kill: ${expected} acked, ${stored.length} stored, ${duplicates} duplicate live events (redeliveries), ${retries.join("+")} send retries`,
  );
  for (const u of [ann, ben, cid]) u.closeAll();
});

test("RabbitMQ restart under load", async () => {
  owner ??= await ChildNode.start(services, { OWNED_PARTITIONS: "all", NODE_ID: "owner-1" });
  const ann = await TestUser.register(gateway);
  const ben = await TestUser.register(gateway);
  const ch = await ann.direct(gateway, ben);
  const [sa, sb] = await Promise.all([ann.connect(gateway), ben.connect(gateway)]);
  const acked = new Set<string>();
  let stop = false;
  const running = sender(sa, ch.id, "r", () => stop, acked);
  await waitFor("traffic", () => (sb.messages(ch.id).length > 50 ? true : undefined), 30_000);
  await services.rabbit.restart();
  await waitFor(
    "acks after the restart",
    async () => {
      const n = acked.size;
      await sleep(500);
      return acked.size > n + 20 ? true : undefined;
    },
    60_000,
  );
  stop = true;
  const retries = await running;
  const expected = acked.size;
  // Live delivery across a broker restart is best effort; the client's sync covers the gap.
  await waitFor(
    "stored",
    async () => ((await allStored(ann, ch.id)).length >= expected ? true : undefined),
    30_000,
  );
  const stored = await allStored(ann, ch.id);
  assert.equal(stored.length, expected);
  await assertGapFree(stored);
  for (const id of acked)
    assert.ok(
      stored.some((m) => m.clientMsgId === id),
      id,
    );
  // After the restart live delivery works again.
  const last = await sa.send(ch.id, "after the restart", "after-restart");
  assert.equal(last.ok, true);
  await sb.waitEvent<Message>("message", (m) => m.clientMsgId === "after-restart", 20_000);
  console.log(
    `I1 broker restart: ${expected} acked and stored, ${retries} send retries, ${sb.messages(ch.id).length} live events`,
  );
  ann.closeAll();
  ben.closeAll();
});
