// `npm run bench -- --scenario=official [--write]`: the official group (docs/chat-node.md, "The official
// group"). Starts real Redis, RabbitMQ and FerretDB and two chat-nodes with a service token, registers
// BENCH_MEMBERS accounts (2000; each joins the group at registration; bounded concurrency over rotating
// loopback source addresses, since registration is limited per address), connects half of them (on both
// nodes), then posts BENCH_RATE (10) messages/s for BENCH_SECONDS (20) with `POST /official/messages` and the
// service token. Measured at the online members' sockets: send→deliver, deliveries seen/expected, lost,
// duplicated and reordered (a seq not above the socket's last); from each node's /metrics, the broker
// deliveries of kind "message" it received per message posted. Then the textbook design under the same load
// (one room of as many sockets, textbook-server.ts) as the same run's baseline. Everything started is stopped.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { io, type Socket } from "socket.io-client";
import { repoRoot, startMongo, startRabbitMQ, startRedis } from "@vibetalk/testkit";
import { inBatches, register, startChatNodes, wallNow } from "./chat.js";
import { table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec } from "./snapshot.js";
import { ms, summarize, type Summary } from "./stats.js";
import { cpuCell, cpuClasses, cpuPerMessage, cpuSample, type CpuClass, type CpuPerMessage } from "./cpu.js";
import { startTextbook } from "./textbook.js";
import { cpuRecord, writeSummary, type ScenarioSummary } from "./summary.js";

const num = (name: string, d: number): number => Number(process.env[name] ?? d);

/** An online member: the server (index) it connects to and its handshake's auth. */
interface Reader {
  node: number;
  auth: Record<string, unknown>;
}

/** One design's posting run: what was posted and acked, and what the readers' sockets saw. */
interface BroadcastRun {
  total: number;
  acked: number;
  refused: number;
  /** Seconds the posting took (the rate reached is total ÷ postS). */
  postS: number;
  ack: Summary;
  deliver: Summary;
  deliveries: number;
  lost: number;
  duplicated: number;
  reordered: number;
  cpu: CpuPerMessage;
}

/**
 * Connects the readers (100 at a time, kept in `sockets` for the caller to close), posts `rate` messages/s
 * for `seconds` with `post` (true when accepted), then waits up to 30 s for every accepted message at every
 * reader. Latencies are on this process's clock; CPU of `classes` from the first post to the last delivery.
 * A seq not above the socket's last counts as reordered where the design numbers its messages (`seqs`).
 */
async function broadcastRun(o: {
  label: string;
  urls: string[];
  readers: Reader[];
  channelId: string;
  tag: string;
  rate: number;
  seconds: number;
  classes: CpuClass[];
  seqs: boolean;
  sockets: Socket[];
  post: (k: number, clientMsgId: string) => Promise<boolean>;
}): Promise<BroadcastRun> {
  const sentAt = new Map<string, number>();
  const deliverMs: number[] = [];
  const seen = o.readers.map(() => new Set<string>());
  const lastSeq = o.readers.map(() => 0);
  let duplicated = 0;
  let reordered = 0;
  let deliveries = 0;
  console.log(`[official] ${o.label}: connecting ${o.readers.length} online members…`);
  await inBatches(
    o.readers.length,
    100,
    (i) =>
      new Promise<void>((resolve, reject) => {
        const r = o.readers[i]!;
        const s = io(o.urls[r.node]!, { auth: r.auth, transports: ["websocket"] });
        o.sockets.push(s);
        s.on("message", (msg: { clientMsgId: string; channelId: string; seq: number }) => {
          const t = sentAt.get(msg.clientMsgId);
          if (msg.channelId !== o.channelId || t === undefined) return;
          deliveries++;
          deliverMs.push(wallNow() - t);
          if (seen[i]!.has(msg.clientMsgId)) duplicated++;
          seen[i]!.add(msg.clientMsgId);
          if (o.seqs && msg.seq <= lastSeq[i]!) reordered++;
          lastSeq[i] = Math.max(lastSeq[i]!, msg.seq);
        });
        s.once("connect", () => resolve());
        s.once("connect_error", reject);
      }),
  );
  const cpu0 = await cpuSample(o.classes);
  const total = Math.round(o.rate * o.seconds);
  const ackMs: number[] = [];
  const acked: string[] = [];
  let refused = 0;
  console.log(`[official] ${o.label}: posting ${o.rate} messages/s for ${o.seconds} s (${total})…`);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let k = 0; k < total; k++) {
    const wait = start + (k * 1000) / o.rate - performance.now();
    if (wait > 0) await sleep(wait);
    if (k % (o.rate * 2) === 0)
      console.log(
        `[official] ${o.label}: ${k}/${total} posted, ${deliveries}/${acked.length * o.readers.length} deliveries so far`,
      );
    const clientMsgId = `${o.tag}-${k}`;
    sentAt.set(clientMsgId, wallNow());
    pending.push(
      o.post(k, clientMsgId).then(
        (ok) => {
          if (!ok) return void refused++;
          ackMs.push(wallNow() - sentAt.get(clientMsgId)!);
          acked.push(clientMsgId);
        },
        () => void refused++,
      ),
    );
  }
  await Promise.all(pending);
  const postS = (performance.now() - start) / 1000;
  const missing = () => acked.reduce((n, id) => n + seen.filter((m) => !m.has(id)).length, 0);
  for (let i = 0; i < 300 && missing() > 0; i++) await sleep(100);
  const cpu = cpuPerMessage(cpu0, await cpuSample(o.classes), acked.length);
  return {
    total,
    acked: acked.length,
    refused,
    postS,
    ack: summarize(ackMs),
    deliver: summarize(deliverMs),
    deliveries,
    lost: missing(),
    duplicated,
    reordered,
    cpu,
  };
}

/**
 * The textbook design (textbook-server.ts) under the same load: two Socket.IO processes on the run's Redis
 * (streams adapter) and FerretDB, the online members in one room, and a poster socket per process sending
 * `message:send` in turn (one `insertOne`, then `io.to(room).emit`).
 */
async function textbookRun(
  o: { redisUrl: string; mongoUrl: string; postgresPort: number; redisPort: number; mongoPort: number },
  run: Omit<
    Parameters<typeof broadcastRun>[0],
    "label" | "urls" | "readers" | "classes" | "seqs" | "sockets" | "post"
  >,
  readers: number,
): Promise<BroadcastRun> {
  const tb = await startTextbook({ nodes: 2, redisUrl: o.redisUrl, mongoUrl: o.mongoUrl });
  const sockets: Socket[] = [];
  try {
    const classes = await cpuClasses({
      servers: { name: "textbook servers", ports: tb.urls.map((u) => Number(new URL(u).port)) },
      rabbitPort: 0,
      mongoPort: o.mongoPort,
      postgresPort: o.postgresPort,
      redisPort: o.redisPort,
    });
    const posters = tb.urls.map((u) =>
      io(u, { auth: { user: "service", rooms: [] }, transports: ["websocket"] }),
    );
    sockets.push(...posters);
    await Promise.all(posters.map((p) => new Promise((r) => p.once("connect", () => r(undefined)))));
    return await broadcastRun({
      ...run,
      label: "textbook design",
      urls: tb.urls,
      readers: Array.from({ length: readers }, (_, i) => ({
        node: i % 2,
        auth: { user: `r${i}`, rooms: [run.channelId] },
      })),
      classes,
      seqs: false,
      sockets,
      post: async (k, clientMsgId) => {
        const r = (await posters[k % posters.length]!.timeout(30_000).emitWithAck("message:send", {
          channelId: run.channelId,
          clientMsgId,
          body: `official ${k}`,
        })) as { ok?: boolean };
        return r.ok === true;
      },
    });
  } finally {
    for (const s of sockets) s.disconnect();
    await tb.stop();
  }
}

/** vibetalk_broker_deliveries_total{kind="message"} of one node. */
async function brokerMessageDeliveries(opsUrl: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith("vibetalk_broker_deliveries_total{") && l.includes('kind="message"'));
  return Number(line?.split(" ").at(-1) ?? 0);
}

export async function runOfficialBench(argv: string[]): Promise<void> {
  const members = num("BENCH_MEMBERS", 2000);
  const rate = num("BENCH_RATE", 10);
  const seconds = num("BENCH_SECONDS", 20);
  const concurrency = num("BENCH_REGISTER_CONCURRENCY", 16);
  const deadlineS = num("BENCH_DEADLINE_S", 900);
  const serviceToken = randomBytes(32).toString("hex");
  const t0 = performance.now();
  const inTime = (what: string) => {
    if (performance.now() - t0 > deadlineS * 1000)
      throw new Error(`official: ${what} not done within ${deadlineS} s (BENCH_DEADLINE_S)`);
  };
  const src = await chatNodeSource(chatNodeSpec(argv));
  console.log(`[official] ${src.label}; starting Redis, RabbitMQ, FerretDB and 2 chat-nodes…`);
  const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
  const ports = {
    redisPort: redis.port,
    mongoPort: mongo.port,
    postgresPort: Number(new URL(mongo.postgresUrl).port),
  };
  const sockets: Socket[] = [];
  try {
    const nodes = await startChatNodes({
      redisUrl: redis.url,
      rabbitUrl: rabbit.url,
      mongoUrl: mongo.url,
      nodes: 2,
      users: 0,
      groupSize: 0,
      messages: 0,
      window: 1,
      chatNodeDir: src.dir,
      env: { OFFICIAL_SERVICE_TOKEN: serviceToken },
    });
    const tag = randomBytes(3).toString("hex");
    let chat: BroadcastRun;
    let perNode: string[];
    let online: number;
    try {
      let registered = 0;
      const progress = setInterval(() => console.log(`[official] registered ${registered}/${members}`), 2000);
      let all: Reader[];
      try {
        all = await inBatches(members, concurrency, async (i): Promise<Reader> => {
          const node = i % 2;
          const r = await register(nodes.urls[node]!, `o${tag}_${i}`, `127.0.0.${2 + (i % 200)}`);
          registered++;
          if (registered % concurrency === 0) inTime("registration");
          return { node, auth: { token: r.token } };
        });
      } finally {
        clearInterval(progress);
      }
      // Half online: users 0, 1, 4, 5, 8, 9, … (both nodes).
      const readers = all.filter((_, i) => Math.floor(i / 2) % 2 === 0);
      online = readers.length;
      const before = await Promise.all(nodes.opsUrls.map(brokerMessageDeliveries));
      const classes = await cpuClasses({
        servers: { name: "chat-nodes", ports: nodes.urls.map((u) => Number(new URL(u).port)) },
        rabbitPort: rabbit.port,
        ...ports,
      });
      chat = await broadcastRun({
        label: "VibeTalk",
        urls: nodes.urls,
        readers,
        channelId: "official",
        tag,
        rate,
        seconds,
        classes,
        seqs: true,
        sockets,
        post: async (k, clientMsgId) => {
          const res = await fetch(`${nodes.urls[k % 2]}/api/v1/official/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${serviceToken}` },
            body: JSON.stringify({ clientMsgId, body: `official ${k}` }),
          });
          await res.arrayBuffer();
          return res.status === 202;
        },
      });
      const after = await Promise.all(nodes.opsUrls.map(brokerMessageDeliveries));
      perNode = after.map((a, i) => ((a - before[i]!) / Math.max(1, chat.acked)).toFixed(2));
    } finally {
      for (const s of sockets.splice(0)) s.disconnect();
      await nodes.stop();
    }
    inTime("the VibeTalk run");
    const tb = await textbookRun(
      { redisUrl: redis.url, mongoUrl: mongo.url, ...ports },
      { channelId: "official", tag: `${tag}t`, rate, seconds },
      online,
    );
    const row = (r: BroadcastRun) => [
      `${r.total} / ${r.acked} / ${r.refused}`,
      (r.total / r.postS).toFixed(1),
      `${ms(r.ack.p50)} / ${ms(r.ack.p99)}`,
      [r.deliver.p50, r.deliver.p95, r.deliver.p99, r.deliver.max].map((x) => ms(x)).join(" / "),
      `${r.deliveries} / ${r.acked * online}`,
      `${r.lost} / ${r.duplicated} / ${r.reordered}`,
      cpuCell(r.cpu),
    ];
    const [c, t] = [row(chat), row(tb)];
    const figures = [
      "messages posted / accepted / refused",
      "posting rate reached (messages/s)",
      "post→accepted p50 / p99",
      "send→deliver p50 / p95 / p99 / max",
      "deliveries seen / expected",
      "lost / duplicated / reordered",
      "CPU per message posted, by process (posting and delivery)",
    ];
    const p99Ratio = chat.deliver.p99 / tb.deliver.p99;
    const lost = chat.lost;
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${src.label}, this machine (2 cores, shared). Command:`,
      "",
      "```sh",
      `BENCH_MEMBERS=${members} BENCH_RATE=${rate} BENCH_SECONDS=${seconds} npm run bench -- --scenario=official --write`,
      "```",
      "",
      `Two chat-nodes (real Redis, RabbitMQ, FerretDB); ${members} accounts registered through the API (each joins the official`,
      `group at registration), alternating between the nodes; ${online} of them online (half, on both nodes). The service`,
      `posts ${rate} messages/s for ${seconds} s with \`POST /official/messages\` and the service token, alternating between the`,
      "nodes (accepted: 202); send→deliver is from the post to each online member's socket (one clock). Broker deliveries",
      'per message: the node\'s `vibetalk_broker_deliveries_total{kind="message"}` over the run ÷ messages posted. Then the',
      `textbook design (two Socket.IO processes, Redis streams adapter, one \`insertOne\` per message) under the same load in`,
      `the same run: ${online} sockets in one room over both processes, a poster socket per process sending in turn (accepted:`,
      "its ack); it numbers nothing, so it has no reorder count. CPU per message is over the posting and delivery only.",
      "",
      table(
        ["figure", "VibeTalk", "textbook design"],
        figures.map((f, i) => [f, c[i]!, t[i]!]),
      ),
      "",
      `- Broker deliveries per message, node 0 / node 1: ${perNode.join(" / ")}.`,
      `- send→deliver p99, VibeTalk ÷ textbook design: ${p99Ratio.toFixed(2)}×.`,
      `- Zero lost, duplicated or reordered: ${lost + chat.duplicated + chat.reordered === 0 ? "met" : "not met"}.`,
    ].join("\n");
    console.log(body);
    await writeSummary(argv, {
      scenario: "official",
      load: `${members} members (${online} online over 2 chat-nodes), ${rate} posts/s for ${seconds} s`,
      accepted: chat.acked / chat.postS,
      delivered: (chat.acked * online - lost) / online / chat.postS,
      sendToAck: chat.ack,
      sendToDeliver: chat.deliver,
      lost,
      duplicated: chat.duplicated,
      reordered: chat.reordered,
      cpuMsPerMessage: cpuRecord(chat.cpu),
      ratios: {
        "send→deliver p99 ÷ textbook": p99Ratio,
        "CPU/msg ÷ textbook": chat.cpu.total / tb.cpu.total,
      },
      targets: officialTargets(members, perNode.map(Number), chat.deliver.p99, tb.deliver.p99),
    });
    if (argv.includes("--write")) {
      // The standard size (2,000) has its section; another size keeps its own beside it.
      const heading = members === 2000 ? "Official group" : `Official group at ${members} members`;
      await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading, body });
      console.log("[official] wrote the Official group section of bench/RESULTS.md");
    }
  } finally {
    for (const s of sockets) s.disconnect();
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
  }
}

/** Issue 17's targets for the official group (set at 10,000 members, half online, 10 posts/s). */
function officialTargets(
  members: number,
  perNode: number[],
  p99: number,
  textbookP99: number,
): NonNullable<ScenarioSummary["targets"]> {
  const at = members === 10_000 ? "" : ` (measured at ${members} members)`;
  return [
    {
      target: `official group: one broker delivery per node per message${at}`,
      measured: perNode.map((n) => n.toFixed(2)).join(" / "),
      met: perNode.every((n) => Math.abs(n - 1) < 0.01),
    },
    {
      target: `official group: send→deliver p99 ≤ 250 ms at 10 msg/s${at}`,
      measured: `${p99.toFixed(1)} ms (the textbook design ${textbookP99.toFixed(1)} ms in the same run)`,
      met: p99 <= 250,
    },
  ];
}
