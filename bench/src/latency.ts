// The latency probe: `npm run bench -- --latency [--write] [--chat-node=<commit>|worktree]`.
// Where does a message's send→deliver time go at light load? Runs the light-load scenario of the
// benchmark (and an unloaded one) against two chat-nodes whose methods on the message path are timed
// from outside by a preload (probe/timing.ts), with PostgreSQL's statement log on, then once more with
// TCP_NODELAY forced on chat-node's sockets (probe/nodelay.ts); times the store's calls directly at the
// same collection size, and the broker pattern in isolation. With --write, the tables go to
// docs/performance.md (section "Latency probe: measurements").
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import amqp from "amqplib";
import { repoRoot, startMongo, startRabbitMQ, startRedis } from "@vibetalk/testkit";
import { runChatBench, startChatNodes, type ChatBenchOptions, type MessageTrace } from "./chat.js";
import { PgStatementLog, type PgStatement } from "./pglog.js";
import type { ProbeRecord } from "./probe/timing.js";
import { fmt, median, table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec, type ChatNodeSource } from "./snapshot.js";

interface Scenario {
  key: string;
  title: string;
  opts: Pick<ChatBenchOptions, "messages" | "window" | "pace" | "sendersPerGroup">;
}

const SCENARIOS: Scenario[] = [
  {
    key: "unloaded",
    title: "unloaded (1 sender, next send after all 8 deliveries)",
    opts: { messages: 60, window: 1, pace: "delivery", sendersPerGroup: 1 },
  },
  {
    key: "light",
    title: "light load as in RESULTS.md (8 senders, 1 send in flight each, paced by the ack)",
    opts: { messages: 200, window: 1, pace: "ack" },
  },
];

const probeDir = join(repoRoot, "bench/src/probe");
interface Variant {
  key: string;
  title: string;
  preload: string[];
  env: Record<string, string>;
}
const VARIANTS: Variant[] = [
  { key: "as-is", title: "as is", preload: [], env: {} },
  { key: "nodelay", title: "TCP_NODELAY forced", preload: [join(probeDir, "nodelay.ts")], env: {} },
  {
    key: "nodelay-flush0",
    title: "TCP_NODELAY forced, FLUSH_INTERVAL_MS=0",
    preload: [join(probeDir, "nodelay.ts")],
    env: { FLUSH_INTERVAL_MS: "0" },
  },
];

type Rec = ProbeRecord & { node: number };

interface Run {
  scenario: Scenario;
  variant: Variant;
  trace: MessageTrace[];
  probe: Rec[];
  sql: PgStatement[];
}

async function readProbe(dir: string, nodes: number): Promise<Rec[]> {
  const out: Rec[] = [];
  for (let i = 0; i < nodes; i++) {
    const f = join(dir, `probe-bench-${i}.jsonl`);
    if (!existsSync(f)) continue;
    for (const line of (await readFile(f, "utf8")).split("\n")) {
      if (line) out.push({ ...(JSON.parse(line) as ProbeRecord), node: i });
    }
  }
  return out;
}

/** The stages of one message's path, in ms; NaN where the probe saw no such step. */
interface Stages {
  [stage: string]: number;
}

const STAGES: [string, string][] = [
  ["clientToGateway", "client → gateway (Socket.IO)"],
  ["memberCheck", "gateway: session, membership check"],
  ["partitionConfirm", "publish to partition, until confirmed"],
  ["ackToClient", "confirm → client has the ack"],
  ["sendToAck", "**send → ack**"],
  ["brokerToOwner", "publish → owner's consumer has it"],
  ["batchWait", "waits for its batch (flush timer, busy consumer)"],
  ["beforeInsert", "batch start → insert (lastSeq when uncached)"],
  ["insert", "insertOrdered (FerretDB)"],
  ["headsGap", "insert done → raiseChannelHeads"],
  ["heads", "raiseChannelHeads (FerretDB update)"],
  ["toFanout", "→ its fan-out publish starts"],
  ["brokerToNode", "fan-out publish → recipient node's gateway"],
  ["nodeToClient", "gateway emit → client has it"],
  ["sendToDeliver", "**send → deliver (mean over recipients)**"],
  ["sum", "sum of the stages on the delivery path"],
  ["fanoutConfirm", "(fan-out publish, until confirmed)"],
  ["batchTotal", "(its batch: store + fan-out + ack)"],
  ["batchSize", "(its batch: messages)"],
];
const ON_PATH = [
  "clientToGateway",
  "memberCheck",
  "brokerToOwner",
  "batchWait",
  "beforeInsert",
  "insert",
  "headsGap",
  "heads",
  "toFanout",
  "brokerToNode",
  "nodeToClient",
];

function index(recs: Rec[], name: string): Map<string, Rec> {
  const m = new Map<string, Rec>();
  for (const r of recs) if (r.name === name) for (const id of r.ids ?? []) if (!m.has(id)) m.set(id, r);
  return m;
}

const mean = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};

function stagesOf(run: Run): Stages[] {
  const send = index(run.probe, "ChatService.send");
  const pubPart = index(run.probe, "RabbitBroker.publishToPartition");
  const arrive = index(run.probe, "PartitionConsumer.onDelivery");
  const batch = index(run.probe, "PartitionConsumer.processBatch");
  const insert = index(run.probe, "MongoStore.insertOrdered");
  const pubUsers = index(run.probe, "RabbitBroker.publishToUsers");
  const heads = run.probe.filter((r) => r.name === "MongoStore.raiseChannelHeads");
  const deliver = new Map<string, Rec[]>();
  for (const r of run.probe) {
    if (r.name !== "SocketGateway.deliver") continue;
    for (const id of r.ids ?? []) deliver.set(id, [...(deliver.get(id) ?? []), r]);
  }
  const at = (r: Rec | undefined, k: "start" | "end") => (r ? r[k] : NaN);
  return run.trace.map((t) => {
    const id = t.clientMsgId;
    const b = batch.get(id);
    const ins = insert.get(id);
    const pu = pubUsers.get(id);
    // Channel heads count on the path only when written between the insert and the fan-out (in line);
    // a writer that runs on its own timer overlaps batches without holding them.
    const h =
      b && ins && pu
        ? heads.find((r) => r.node === b.node && r.start >= ins.end && r.end <= pu.start)
        : undefined;
    const dl = deliver.get(id) ?? [];
    const byNode = new Map(dl.map((r) => [r.node, r.start]));
    const s: Stages = {
      clientToGateway: at(send.get(id), "start") - t.sentAt,
      memberCheck: at(pubPart.get(id), "start") - at(send.get(id), "start"),
      partitionConfirm: at(pubPart.get(id), "end") - at(pubPart.get(id), "start"),
      ackToClient: t.ackedAt - at(send.get(id), "end"),
      sendToAck: t.ackedAt - t.sentAt,
      brokerToOwner: at(arrive.get(id), "start") - at(pubPart.get(id), "start"),
      batchWait: at(b, "start") - at(arrive.get(id), "start"),
      beforeInsert: at(ins, "start") - at(b, "start"),
      insert: at(ins, "end") - at(ins, "start"),
      headsGap: h ? h.start - at(ins, "end") : 0,
      heads: h ? h.end - h.start : 0,
      toFanout: at(pu, "start") - (h ? h.end : at(ins, "end")),
      brokerToNode: mean(dl.map((r) => r.start - at(pu, "start"))),
      nodeToClient: mean(t.deliveredAt.map((d, k) => d - (byNode.get(t.deliveredNode[k]!) ?? NaN))),
      sendToDeliver: mean(t.deliveredAt.map((d) => d - t.sentAt)),
      fanoutConfirm: at(pu, "end") - at(pu, "start"),
      batchTotal: at(b, "end") - at(b, "start"),
      batchSize: b?.n ?? NaN,
    };
    s.sum = ON_PATH.reduce((acc, k) => acc + (s[k] ?? NaN), 0);
    return s;
  });
}

/** SQL that PostgreSQL ran for FerretDB during a run: per table and statement kind. */
function sqlSummary(sql: PgStatement[], messages: number): string {
  const groups = new Map<string, { n: number; ms: number }>();
  for (const s of sql) {
    const table = /"[^"]+"\."([a-z]+)_[0-9a-f]+"/.exec(s.sql)?.[1] ?? "";
    const verb = /^(\w+)/.exec(s.sql)?.[1]?.toUpperCase() ?? "?";
    const key = table ? `${verb} ${table}` : verb;
    const g = groups.get(key) ?? { n: 0, ms: 0 };
    if (s.phase === "execute" || s.phase === "statement") g.n += 1;
    g.ms += s.durationMs;
    groups.set(key, g);
  }
  const rows = [...groups]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([k, g]) => [k, String(g.n), fmt(g.ms, 2), fmt(g.ms / messages, 3)]);
  const total = [...groups.values()].reduce((a, g) => a + g.ms, 0);
  rows.push(["**all**", "", fmt(total, 2), fmt(total / messages, 3)]);
  return table(["statement (table)", "executions", "server time ms", "ms per message"], rows);
}

interface StoreLike {
  insertOrdered(docs: unknown[]): Promise<unknown>;
  raiseChannelHeads(heads: unknown[]): Promise<void>;
  lastSeq(channelId: string): Promise<number>;
  lastMessage?(channelId: string): Promise<unknown>;
  listMembers(channelId: string): Promise<unknown[]>;
  getChannel(channelId: string): Promise<unknown>;
  close(): Promise<void>;
}

/** chat-node's own store calls, timed one at a time against the database a run left behind. */
async function storeCalls(src: ChatNodeSource, mongoUrl: string, channelId: string): Promise<string[][]> {
  const mod = (await import(pathToFileURL(join(src.dir, "src/adapters/mongo-store.ts")).href)) as {
    MongoStore: { connect(url: string): Promise<StoreLike> };
  };
  const store = await mod.MongoStore.connect(mongoUrl);
  const probeChannel = `latencyprobe${Date.now().toString(16)}`;
  let seq = 0;
  const doc = () => {
    seq += 1;
    return {
      id: `${probeChannel}:${String(seq).padStart(12, "0")}`,
      channelId: probeChannel,
      seq,
      senderId: "probe",
      clientMsgId: `probe-${seq}`,
      body: "bench message probe",
      fileIds: [],
      createdAt: new Date(),
    };
  };
  const head = () => ({
    channelId,
    lastSeq: 0, // never raises anything: the filter `lastSeq < 0` matches no document, as a no-op
    lastMessage: { seq: 0, senderId: "probe", body: "x", hasFiles: false, createdAt: new Date() },
  });
  const calls: [string, () => Promise<unknown>][] = [
    ["insertOrdered, 1 message", () => store.insertOrdered([doc()])],
    ["insertOrdered, 8 messages", () => store.insertOrdered(Array.from({ length: 8 }, doc))],
    ["raiseChannelHeads, 1 channel (bulkWrite of 1 update)", () => store.raiseChannelHeads([head()])],
    ["lastSeq (newest message of the channel)", () => store.lastSeq(channelId)],
    ...(store.lastMessage
      ? ([
          [
            "lastMessage (what a consumer reads on first sight of a channel)",
            () => store.lastMessage!(channelId),
          ],
        ] as [string, () => Promise<unknown>][])
      : []),
    ["getChannel", () => store.getChannel(channelId)],
    ["listMembers", () => store.listMembers(channelId)],
  ];
  const rows: string[][] = [];
  try {
    for (const [name, call] of calls) {
      const ms: number[] = [];
      for (let i = 0; i < 30; i++) {
        const t = performance.now();
        await call();
        ms.push(performance.now() - t);
      }
      rows.push([name, fmt(median(ms), 2), fmt(Math.max(...ms), 1)]);
    }
  } finally {
    await store.close();
  }
  return rows;
}

/**
 * The broker pattern in isolation: a consumer acks (a write that gets no reply) and then the same
 * connection publishes and waits for the confirm, as chat-node's partition consumer does between batches.
 */
async function brokerPattern(url: string): Promise<string[][]> {
  const rows: string[][] = [];
  for (const noDelay of [false, true]) {
    const conn = await amqp.connect(url, { noDelay });
    try {
      const pub = await conn.createConfirmChannel();
      const sub = await conn.createChannel();
      const q = `bench.latency.${noDelay}`;
      await pub.assertQueue(q, { durable: false, autoDelete: true });
      await sub.prefetch(100);
      let arrived: (() => void) | null = null;
      await sub.consume(q, (m) => {
        if (!m) return;
        sub.ack(m);
        arrived?.();
      });
      const ms: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        const here = new Promise<void>((r) => (arrived = r));
        await new Promise<void>((resolve, reject) =>
          pub.publish("", q, Buffer.from("x".repeat(200)), {}, (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
          ),
        );
        await here;
        ms.push(performance.now() - t);
      }
      rows.push([
        `amqplib, noDelay ${noDelay}${noDelay ? "" : " (amqplib's default)"}`,
        fmt(median(ms)),
        fmt(Math.max(...ms)),
      ]);
    } finally {
      await conn.close();
    }
  }
  return rows;
}

/** One scenario on running chat-nodes: the clients' trace, the probe's records and the SQL of that window. */
async function probeRun(
  base: ChatBenchOptions,
  urls: string[],
  pg: PgStatementLog,
  scenario: Scenario,
  variant: Variant,
): Promise<Run> {
  const mark = await pg.mark();
  const r = await runChatBench({ ...base, ...scenario.opts }, urls);
  await new Promise((res) => setTimeout(res, 600)); // the probe flushes every 250 ms
  const ids = new Set(r.trace.map((t) => t.clientMsgId));
  const first = Math.min(...r.trace.map((t) => t.sentAt));
  const last = Math.max(...r.trace.flatMap((t) => t.deliveredAt));
  const probe = (await readProbe(base.logDir!, base.nodes)).filter(
    (p) =>
      (!p.ids || p.ids.length === 0 || p.ids.some((id) => ids.has(id))) && p.end >= first && p.start <= last,
  );
  const sql = (await pg.since(mark)).filter((s) => s.at >= first - 1 && s.at <= last + 1);
  return { scenario, variant, trace: r.trace, probe, sql };
}

export async function runLatencyProbe(argv: string[]): Promise<void> {
  const write = argv.includes("--write");
  const src = await chatNodeSource(chatNodeSpec(argv));
  console.log(`[latency] ${src.label} (${src.dir})`);
  const outDir = join(repoRoot, "bench/out/latency");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  console.log("[latency] starting Redis, RabbitMQ, FerretDB…");
  const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
  const runs: Run[] = [];
  let storeRows: string[][] = [];
  let brokerRows: string[][] = [];
  try {
    const pg = await PgStatementLog.enable(mongo.postgresUrl);
    for (const variant of VARIANTS) {
      const logDir = join(outDir, variant.key);
      await mkdir(logDir, { recursive: true });
      const mongoUrl = mongo.url.replace(/\/[^/]*$/, `/latency_${variant.key.replace(/\W/g, "_")}`);
      const base: ChatBenchOptions = {
        redisUrl: redis.url,
        rabbitUrl: rabbit.url,
        mongoUrl,
        nodes: 2,
        users: 8,
        groupSize: 8,
        messages: 20,
        window: 1,
        chatNodeDir: src.dir,
        logDir,
        trace: true,
        preload: [join(probeDir, "timing.ts"), ...variant.preload],
        env: { PROBE_FILE: join(logDir, "probe-{node}.jsonl"), PROBE_CHAT_NODE_DIR: src.dir, ...variant.env },
      };
      console.log(`[latency] ${variant.title}: starting 2 chat-nodes…`);
      const nodes = await startChatNodes(base);
      try {
        await runChatBench({ ...base, pace: "delivery", sendersPerGroup: 1 }, nodes.urls); // warm-up
        for (const scenario of SCENARIOS) {
          console.log(`[latency] ${variant.title}: ${scenario.title}…`);
          runs.push(await probeRun(base, nodes.urls, pg, scenario, variant));
        }
      } finally {
        await nodes.stop();
      }
      const light = runs.find((r) => r.variant === variant && r.scenario.key === "light");
      if (variant.key === "as-is" && light) {
        console.log("[latency] chat-node's store calls at the same collection size…");
        storeRows = await storeCalls(src, mongoUrl, light.trace[0]!.channelId);
      }
    }
    console.log("[latency] the broker pattern in isolation…");
    brokerRows = await brokerPattern(rabbit.url);
    await pg.disable();
  } finally {
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
  }

  const missing = [...new Set(runs.flatMap((r) => r.probe.map((p) => p.name)))].filter((n) =>
    n.startsWith("missing:"),
  );
  const stages = runs.map((r) => stagesOf(r));
  const head = ["stage (mean ms per message)", ...runs.map((r) => `${r.scenario.key}, ${r.variant.title}`)];
  const rows = STAGES.map(([k, label]) => [
    label,
    ...stages.map((s) => fmt(mean(s.map((x) => x[k] ?? NaN)), k === "batchSize" ? 1 : 1)),
  ]);
  const e2e = [
    ["send→ack p50 / p99", ...runs.map((r) => pct(r.trace.map((t) => t.ackedAt - t.sentAt)))],
    [
      "send→deliver p50 / p99",
      ...runs.map((r) => pct(r.trace.flatMap((t) => t.deliveredAt.map((d) => d - t.sentAt)))),
    ],
    [
      "send→deliver p50, first / second half of the sends",
      ...runs.map((r) => {
        const sorted = [...r.trace].sort((a, b) => a.sentAt - b.sentAt);
        const half = Math.floor(sorted.length / 2);
        const p50 = (ts: MessageTrace[]) => median(ts.flatMap((t) => t.deliveredAt.map((d) => d - t.sentAt)));
        return `${fmt(p50(sorted.slice(0, half)))} / ${fmt(p50(sorted.slice(half)))}`;
      }),
    ],
    [
      "messages / s",
      ...runs.map((r) => {
        const first = Math.min(...r.trace.map((t) => t.sentAt));
        const last = Math.max(...r.trace.flatMap((t) => t.deliveredAt));
        return fmt((r.trace.length / (last - first)) * 1000, 0);
      }),
    ],
  ];
  const light = runs.find((r) => r.scenario.key === "light" && r.variant.key === "as-is");
  const text = [
    `Command: \`npm run bench -- --latency --write${src.dirty || chatNodeSpec(argv) === "worktree" ? "" : ` --chat-node=${src.commit}`}\`, ` +
      `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${src.label}, this machine (2 cores, shared).`,
    "",
    "Two chat-nodes, 8 users in one group of 8 (4 sockets on each node), every message delivered to all 8",
    "sockets. Columns: the scenario, and whether chat-node's sockets had TCP_NODELAY forced (preload",
    "`bench/src/probe/nodelay.ts`; chat-node itself unchanged) and FLUSH_INTERVAL_MS set. Stage times come",
    "from chat-node's own methods timed by the preload `bench/src/probe/timing.ts` and the clients' clocks",
    "(same host); each column is one run, and the shared machine makes the light-load columns vary by ±50 %",
    "from run to run, the unloaded ones far less.",
    "",
    table(["end to end", ...head.slice(1)], e2e),
    "",
    table(head, rows),
    "",
    `SQL that PostgreSQL ran for FerretDB during the light-load run (as is, ${light?.trace.length ?? 0} messages; statement log, server-side durations):`,
    "",
    light ? sqlSummary(light.sql, light.trace.length) : "(no run)",
    "",
    "chat-node's store calls (its `MongoStore`, one call at a time, 30 each) against the database that run left behind:",
    "",
    table(["call", "median ms", "max ms"], storeRows),
    "",
    "The broker pattern in isolation: a consumer acks a delivery, then the same connection publishes with a",
    "confirm and waits for the message to come back (40 in a row):",
    "",
    table(["connection", "publish → confirm → consumed, median ms", "max ms"], brokerRows),
    ...(missing.length ? ["", `Probe points not found in this chat-node: ${missing.join(", ")}.`] : []),
  ].join("\n");
  console.log(text);
  if (write) {
    const file = join(repoRoot, "docs/performance.md");
    await writeSection(file, { heading: `Latency probe: measurements at ${src.commit}`, body: text });
    console.log(`[latency] wrote the measurements to ${file}`);
  }
}

function pct(xs: number[]): string {
  const v = [...xs].sort((a, b) => a - b);
  const p = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))] ?? NaN;
  return `${fmt(p(0.5))} / ${fmt(p(0.99))}`;
}
