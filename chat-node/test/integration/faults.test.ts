// Faults under steady traffic, on RabbitMQ 4 (the harness default), two chat-nodes (A owns partitions
// 0-3, B 4-7), one channel per partition whose sender is on one node and receiver on the other:
// (a) the store down for longer than 20 redeliveries would survive; (b) a broker restart; (c) a broker
// memory alarm raised and cleared; (d) Redis down then back; (e) a NUL message (refused at the edge)
// and a message the store refuses (published past the edge) in the middle of the stream.
// Each ends with every acked message accounted for one by one: stored exactly once, gap-free and
// delivered (live, or by the client's sync), or parked with its sender told: acked = stored + parked,
// lost = 0. Each prints acked, stored, parked, lost and the time from the fault's end until every
// partition consumes again (a message sent after the end is stored on each of them).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Message, MessageFailedEvent, MessageSendReply } from "@vibetalk/protocol";
import { listParked } from "../../src/admin/parked.js";
import { partitionOf } from "../../src/domain/hashing.js";
import type { ChatNode } from "../../src/node.js";
import {
  http,
  publishToPartitionDirectly,
  sleep,
  startNode,
  startServices,
  TestSocket,
  TestUser,
  waitFor,
  type Services,
} from "../support/harness.js";
import { TcpProxy } from "../support/tcp-proxy.js";

const PARTITIONS = 8;
const PUBLISH_TIMEOUT_MS = 5000;
const STORE_TIMEOUT_MS = 2000;
/** Pause between one sender's acked messages: 8 senders ≈ 60–80 messages/s in all. */
const PAUSE_MS = 100;
const STORE_OUTAGE_MS = Number(process.env["FAULTS_STORE_OUTAGE_MS"] ?? 45_000);

let services: Services;
let storeProxy: TcpProxy;
let redisProxy: TcpProxy;
let A: ChatNode;
let B: ChatNode;
const lanes: Lane[] = [];

/** A connected user whose received events carry their arrival time; reconnects when dropped. */
class Client {
  socket!: TestSocket;
  /** Messages this client holds by seq: received live, or by its sync after a gap. */
  readonly live = new Map<number, Message>();
  readonly failed: MessageFailedEvent[] = [];
  constructor(
    readonly user: TestUser,
    readonly node: ChatNode,
  ) {}

  async open(): Promise<void> {
    const s = await TestSocket.open(this.node.url, this.user.token);
    s.socket.on("message", (m: Message) => this.live.set(m.seq, m));
    s.socket.on("message:failed", (f: MessageFailedEvent) => this.failed.push(f));
    this.socket = s;
  }

  async ensure(): Promise<void> {
    while (!this.socket.socket.connected) {
      try {
        this.socket.close();
        await this.open();
      } catch {
        await sleep(200);
      }
    }
  }
}

interface SendStats {
  unavailable: number;
  timeouts: number;
  maxAnswerMs: number;
  unexpected: string[];
  /** Sends answered while `window` is true: their slowest answer. */
  windowMaxAnswerMs: number;
  windowUnavailable: number;
}

/** One channel on one partition: a sender on one node, a receiver on the other. */
interface Lane {
  partition: number;
  channelId: string;
  sender: Client;
  receiver: Client;
  /** Every clientMsgId acked so far (all faults), in order. */
  acked: string[];
  /** Broker-confirmed messages published past the edge. */
  injected: string[];
}

function newStats(): SendStats {
  return {
    unavailable: 0,
    timeouts: 0,
    maxAnswerMs: 0,
    unexpected: [],
    windowMaxAnswerMs: 0,
    windowUnavailable: 0,
  };
}

/** Sends until told to stop; each message is resent with its clientMsgId until acked (I3). */
async function sendLoop(
  lane: Lane,
  prefix: string,
  stop: () => boolean,
  stats: SendStats,
  window: () => boolean,
) {
  for (let i = 0; !stop(); i++) {
    const clientMsgId = `${prefix}-p${lane.partition}-${String(i).padStart(5, "0")}`;
    for (;;) {
      await lane.sender.ensure();
      const t0 = Date.now();
      let r: MessageSendReply;
      try {
        r = await lane.sender.socket.emit<MessageSendReply>(
          "message:send",
          { channelId: lane.channelId, clientMsgId, body: `${prefix} ${i}` },
          15_000,
        );
      } catch {
        stats.timeouts++;
        r = { ok: false, error: { code: "UNAVAILABLE", message: "no answer" } };
      }
      const ms = Date.now() - t0;
      stats.maxAnswerMs = Math.max(stats.maxAnswerMs, ms);
      if (window()) stats.windowMaxAnswerMs = Math.max(stats.windowMaxAnswerMs, ms);
      if (r.ok) break;
      if (r.error.code !== "UNAVAILABLE") {
        stats.unexpected.push(`${clientMsgId}: ${r.error.code} ${r.error.message}`);
        break;
      }
      stats.unavailable++;
      if (window()) stats.windowUnavailable++;
      await sleep(100);
    }
    lane.acked.push(clientMsgId);
    await sleep(PAUSE_MS);
  }
}

async function storedOf(lane: Lane): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const afterSeq = out.length ? (out[out.length - 1] as Message).seq : 0;
    const r = await lane.sender.user.api<{ messages: Message[] }>(
      A,
      "GET",
      `/channels/${lane.channelId}/messages?afterSeq=${afterSeq}&limit=100`,
    );
    if (r.status !== 200) throw new Error(`read ${r.status} ${JSON.stringify(r.body)}`);
    out.push(...r.body.messages);
    if (r.body.messages.length < 100) return out;
  }
}

/** Newest stored message of each lane created after `since`: resolves with the time every partition has one. */
async function allPartitionsConsuming(since: number, timeoutMs = 120_000): Promise<number> {
  const seen = new Map<number, number>();
  const deadline = Date.now() + timeoutMs;
  while (seen.size < lanes.length) {
    if (Date.now() > deadline)
      throw new Error(
        `partitions not consuming ${timeoutMs} ms after the fault: ${lanes.filter((l) => !seen.has(l.partition)).map((l) => l.partition)}`,
      );
    await Promise.all(
      lanes
        .filter((l) => !seen.has(l.partition))
        .map(async (l) => {
          const r = await l.sender.user
            .api<{ messages: Message[] }>(A, "GET", `/channels/${l.channelId}/messages?limit=1`)
            .catch(() => null);
          const m = r?.status === 200 ? r.body.messages[0] : undefined;
          if (m && Date.parse(m.createdAt) >= since) seen.set(l.partition, Date.now());
        }),
    );
    await sleep(200);
  }
  return Math.max(...seen.values());
}

interface Fault {
  name: string;
  /** Starts the fault; resolves when it has ended (the time of its end is taken then). */
  run(): Promise<void>;
  /** Messages published past the edge during the fault (clientMsgId → lane). */
  expectParked?: string[];
}

interface Figures {
  fault: string;
  acked: number;
  stored: number;
  parked: number;
  lost: number;
  recoveryMs: number;
  viaSync: number;
  sendRetries: number;
  maxAnswerMs: number;
}

/** Steady traffic on every lane around a fault, then the accounting. */
async function underTraffic(
  fault: Fault,
  opts: { window?: () => boolean } = {},
): Promise<{ figures: Figures; stats: SendStats }> {
  const prefix = fault.name.replace(/[^A-Za-z0-9]/g, "");
  const before = new Map(lanes.map((l) => [l.partition, l.acked.length]));
  const injectedBefore = new Map(lanes.map((l) => [l.partition, l.injected.length]));
  const stats = newStats();
  let stop = false;
  const senders = lanes.map((l) => sendLoop(l, prefix, () => stop, stats, opts.window ?? (() => false)));
  await sleep(3000); // warm: traffic flows on every partition
  await fault.run();
  const ended = Date.now();
  const consumingAt = await allPartitionsConsuming(ended);
  await sleep(2000);
  stop = true;
  await Promise.all(senders);
  const figures = await account(fault.name, before, injectedBefore, consumingAt - ended, stats);
  return { figures, stats };
}

/** Every acked message of the fault accounted for one by one (module comment). */
async function account(
  name: string,
  before: Map<number, number>,
  injectedBefore: Map<number, number>,
  recoveryMs: number,
  stats: SendStats,
): Promise<Figures> {
  const parkedNow = await listParked(services.rabbit.url);
  const parkedIds = new Set(parkedNow.map((p) => p.clientMsgId));
  let acked = 0;
  let stored = 0;
  let parked = 0;
  let viaSync = 0;
  const lost: string[] = [];
  for (const lane of lanes) {
    const all = [...lane.acked, ...lane.injected];
    const mine = [
      ...lane.acked.slice(before.get(lane.partition)),
      ...lane.injected.slice(injectedBefore.get(lane.partition)),
    ];
    const expected = all.filter((id) => !parkedIds.has(id));
    const messages = await waitFor(
      `partition ${lane.partition}: ${expected.length} stored`,
      async () => {
        const m = await storedOf(lane).catch(() => [] as Message[]);
        return m.length >= expected.length ? m : undefined;
      },
      120_000,
    );
    // Stored exactly once, gap-free.
    assert.deepEqual(
      messages.map((m) => m.seq),
      Array.from({ length: messages.length }, (_, i) => i + 1),
      `partition ${lane.partition}: gap-free`,
    );
    const ids = messages.map((m) => m.clientMsgId);
    assert.equal(new Set(ids).size, ids.length, `partition ${lane.partition}: each clientMsgId stored once`);
    assert.deepEqual(
      [...ids].sort(),
      [...expected].sort(),
      `partition ${lane.partition}: stored = acked − parked`,
    );
    // Delivered: live, and by sync for what the live stream missed (as a client does).
    const missing = messages.filter((m) => !lane.receiver.live.has(m.seq));
    if (missing.length > 0) {
      await lane.receiver.ensure();
      const from = (missing[0] as Message).seq - 1;
      const synced = new Set<number>();
      for (let afterSeq = from; ;) {
        const r = await lane.receiver.socket.emit<{ ok: boolean; messages: Message[]; more: string[] }>(
          "sync",
          {
            channels: [{ channelId: lane.channelId, afterSeq }],
          },
        );
        assert.equal(r.ok, true, "sync");
        for (const m of r.messages) synced.add(m.seq);
        if (r.more.length === 0 || r.messages.length === 0) break;
        afterSeq = (r.messages[r.messages.length - 1] as Message).seq;
      }
      for (const m of missing) {
        assert.ok(synced.has(m.seq), `partition ${lane.partition}: seq ${m.seq} delivered`);
        lane.receiver.live.set(m.seq, m); // the client holds it now
      }
      viaSync += missing.length;
    }
    const storedIds = new Set(ids);
    for (const id of mine) {
      acked++;
      if (storedIds.has(id)) stored++;
      else if (parkedIds.has(id)) {
        parked++;
        assert.ok(
          lane.sender.failed.some((f) => f.clientMsgId === id && f.code === "NOT_STORED"),
          `the sender of parked ${id} got message:failed`,
        );
        assert.equal(
          lane.receiver.live.size === 0
            ? true
            : [...lane.receiver.live.values()].every((m) => m.clientMsgId !== id),
          true,
          `parked ${id} was not delivered`,
        );
      } else lost.push(id);
    }
  }
  assert.deepEqual(stats.unexpected, [], "sends answered only ok or UNAVAILABLE");
  assert.deepEqual(lost, [], "lost");
  const figures: Figures = {
    fault: name,
    acked,
    stored,
    parked,
    lost: lost.length,
    recoveryMs,
    viaSync,
    sendRetries: stats.unavailable + stats.timeouts,
    maxAnswerMs: stats.maxAnswerMs,
  };
  console.log(
    `FAULT ${name}: acked ${acked}, stored ${stored}, parked ${parked}, lost ${lost.length}; all partitions consuming ${recoveryMs} ms after the fault ended; ${viaSync} delivered by sync, ${figures.sendRetries} sends retried (${stats.timeouts} unanswered in 15 s), slowest answer ${stats.maxAnswerMs} ms`,
  );
  return figures;
}

async function metric(node: ChatNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const all = await node.metrics.registry.getMetricsAsJSON();
  return (all.find((m) => m.name === name)?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

const readiness = async (n: ChatNode) =>
  (await http<{ ready: boolean; checks: Record<string, boolean> }>(n.opsUrl, "GET", "/readyz")).body;

before(async () => {
  services = await startServices();
  storeProxy = await TcpProxy.start({ host: "127.0.0.1", port: services.mongo.port });
  redisProxy = await TcpProxy.start({ host: "127.0.0.1", port: services.redis.port });
  const env = (owned: string) => ({
    OWNED_PARTITIONS: owned,
    MONGODB_URL: TcpProxy.rewrite(services.mongo.url, storeProxy.port),
    REDIS_URL: TcpProxy.rewrite(services.redis.url, redisProxy.port),
    LIMIT_SEND_RATE: "1000",
    LIMIT_SEND_BURST: "1000",
    PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
    STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS),
    // Membership is read from the store; a cache that outlives the outage lets sends be acked during it.
    MEMBERS_CACHE_TTL_MS: "600000",
  });
  A = await startNode(services, env("0-3"));
  B = await startNode(services, env("4-7"));
  for (let p = 0; p < PARTITIONS; p++) {
    const [home, away] = p % 2 === 0 ? [A, B] : [B, A];
    const su = await TestUser.register(home, "fs");
    const ru = await TestUser.register(away, "fr");
    let channelId = "";
    while (!channelId) {
      const g = await su.group(home, `p${p}`, [ru]);
      if (partitionOf(g.id, PARTITIONS) === p) channelId = g.id;
    }
    const sender = new Client(su, home);
    const receiver = new Client(ru, away);
    await Promise.all([sender.open(), receiver.open()]);
    lanes.push({ partition: p, channelId, sender, receiver, acked: [], injected: [] });
  }
  // RabbitMQ 4 unless VIBETALK_RABBITMQ says otherwise (docs/versions.md); the figures name it.
  console.log(`faults on RabbitMQ ${services.rabbit.version}, Redis ${services.redis.version}`);
});

after(async () => {
  for (const l of lanes) {
    l.sender.socket?.close();
    l.receiver.socket?.close();
  }
  await A?.stop();
  await B?.stop();
  await storeProxy?.stop();
  await redisProxy?.stop();
  await services?.stop();
});

test("(e) a NUL message refused at the edge and a message the store refuses, mid-stream: parked, sender told, nothing else lost", async () => {
  const lane = lanes[2] as Lane;
  const { figures } = await underTraffic({
    name: "poison",
    run: async () => {
      const r = await lane.sender.socket.emit<MessageSendReply>("message:send", {
        channelId: lane.channelId,
        clientMsgId: "nul-at-the-edge",
        body: "before\u0000after",
      });
      assert.equal(!r.ok && r.error.code, "INVALID_ARGUMENT", "NUL refused at the edge");
      // Past the edge (an older node, another publisher): the broker confirms it, the store refuses it.
      await publishToPartitionDirectly(services, lane.partition, {
        channelId: lane.channelId,
        senderId: lane.sender.user.id,
        clientMsgId: "refused-by-the-store",
        body: "before\u0000after",
        fileIds: [],
        sentAt: Date.now(),
      });
      lane.injected.push("refused-by-the-store");
      await lane.sender.socket.waitEvent<MessageFailedEvent>(
        "message:failed",
        (f) => f.clientMsgId === "refused-by-the-store",
        10_000,
      );
    },
  });
  assert.equal(figures.parked, 1);
  const p = (await listParked(services.rabbit.url)).find((e) => e.clientMsgId === "refused-by-the-store");
  assert.equal(p?.reason, "refused");
  assert.match(p?.error ?? "", /SQLSTATE 22P05/);
  assert.equal(
    (await storedOf(lane)).some((m) => m.clientMsgId === "nul-at-the-edge"),
    false,
    "refused at the edge: never stored",
  );
});

test("(c) a broker memory alarm, raised and cleared: sends answer UNAVAILABLE within the publish timeout, nothing hangs or is lost", async () => {
  let alarm = false;
  let sawNotPublishing = false;
  const { stats } = await underTraffic(
    {
      name: "memory-alarm",
      run: async () => {
        await services.rabbit.ctl(["set_vm_memory_high_watermark", "0.0000001"]);
        alarm = true;
        const until = Date.now() + 10_000;
        while (Date.now() < until) {
          const r = await readiness(A);
          if (r.checks["publishing"] === false) sawNotPublishing = true;
          assert.equal(r.ready, true, "still ready: the node holds its sockets and partitions");
          await sleep(500);
        }
        await services.rabbit.ctl([
          "set_vm_memory_high_watermark",
          services.rabbit.version.startsWith("3.") ? "0.4" : "0.6",
        ]);
        alarm = false;
      },
    },
    { window: () => alarm },
  );
  assert.ok(stats.windowUnavailable > 0, "sends during the alarm were answered UNAVAILABLE");
  assert.equal(stats.timeouts, 0, "every send was answered");
  assert.ok(
    stats.windowMaxAnswerMs <= PUBLISH_TIMEOUT_MS + 2000,
    `answers during the alarm within the publish timeout (slowest ${stats.windowMaxAnswerMs} ms)`,
  );
  console.log(
    `memory alarm: ${stats.windowUnavailable} sends answered UNAVAILABLE during it, slowest ${stats.windowMaxAnswerMs} ms; /readyz checks.publishing false seen: ${sawNotPublishing}`,
  );
});

test("(d) Redis down for 10 s, then back: messages keep flowing, nothing lost", async () => {
  let downChecks: Record<string, boolean> | undefined;
  await underTraffic({
    name: "redis-down",
    run: async () => {
      await redisProxy.cut();
      await sleep(3000);
      const r = await readiness(B);
      downChecks = r.checks;
      assert.equal(r.ready, true, "messages do not need Redis: still ready");
      await sleep(7000);
      await redisProxy.restore();
    },
  });
  assert.equal(downChecks?.["redis"], false, "readiness reports Redis down");
  await waitFor(
    "redis check back",
    async () => (await readiness(B)).checks["redis"] === true || undefined,
    30_000,
  );
});

test("(b) a broker restart under traffic: nothing lost", async () => {
  await underTraffic({
    name: "broker-restart",
    run: () => services.rabbit.restart(),
  });
  const parked = await listParked(services.rabbit.url);
  assert.deepEqual(
    parked.map((p) => p.clientMsgId),
    ["refused-by-the-store"],
    "a restart parks nothing (one delivery used)",
  );
});

test(`(a) the store down for ${STORE_OUTAGE_MS / 1000} s under traffic: retried in process, no delivery used, nothing parked or lost; reads answer UNAVAILABLE promptly`, async () => {
  const restarts = async () =>
    (await metric(A, "vibetalk_partition_consumer_restarts_total")) +
    (await metric(B, "vibetalk_partition_consumer_restarts_total"));
  const restartsBefore = await restarts();
  const reads: number[] = [];
  const readStatuses = new Set<string>();
  let down: { ready: boolean; checks: Record<string, boolean> } | undefined;
  await underTraffic({
    name: `store-down-${STORE_OUTAGE_MS / 1000}s`,
    run: async () => {
      await storeProxy.cut();
      const until = Date.now() + STORE_OUTAGE_MS;
      const lane = lanes[1] as Lane;
      while (Date.now() < until) {
        const t0 = Date.now();
        const r = await lane.sender.user.api<{ error?: { code: string } }>(
          B,
          "GET",
          `/channels/${lane.channelId}/messages?limit=5`,
        );
        reads.push(Date.now() - t0);
        readStatuses.add(`${r.status} ${r.body.error?.code ?? ""}`);
        down = await readiness(A);
        await sleep(1000);
      }
      await storeProxy.restore();
    },
  });
  assert.equal(await restarts(), restartsBefore, "no consumer gave its deliveries back: no redelivery used");
  assert.ok(
    (await metric(A, "vibetalk_partition_retries_total", { step: "store" })) > 0,
    "retried in process",
  );
  assert.deepEqual([...readStatuses], ["503 UNAVAILABLE"], "reads during the outage answer UNAVAILABLE");
  const sorted = [...reads].sort((x, y) => x - y);
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const max = sorted[sorted.length - 1] ?? 0;
  assert.ok(
    max <= STORE_TIMEOUT_MS + 1500,
    `every read answered within the store timeout (slowest ${max} ms)`,
  );
  assert.ok(p50 < 200, `reads answered at once once the breaker is open (median ${p50} ms)`);
  assert.equal(down?.ready, true, "still ready during the outage: sends are still acked");
  assert.equal(down?.checks["store"], false, "readiness reports the store down");
  const parked = await listParked(services.rabbit.url);
  assert.deepEqual(
    parked.map((p) => p.clientMsgId),
    ["refused-by-the-store"],
    "nothing parked by the outage",
  );
  console.log(
    `store outage reads: ${reads.length} answered UNAVAILABLE, median ${p50} ms, slowest ${max} ms`,
  );
});
