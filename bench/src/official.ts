// `npm run bench -- --scenario=official [--write]`: the official group (docs/chat-node.md, "The official
// group"). Starts real Redis, RabbitMQ and FerretDB and two chat-nodes with a service token, registers
// BENCH_MEMBERS accounts (2000; each joins the group at registration; bounded concurrency over rotating
// loopback source addresses, since registration is limited per address), connects half of them (on both
// nodes), then posts BENCH_RATE (10) messages/s for BENCH_SECONDS (20) with `POST /official/messages` and the
// service token. Measured at the online members' sockets: send→deliver, deliveries seen/expected, lost,
// duplicated and reordered (a seq not above the socket's last); from each node's /metrics, the broker
// deliveries of kind "message" it received per message posted. Everything started is stopped at the end.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { io, type Socket } from "socket.io-client";
import { repoRoot, startMongo, startRabbitMQ, startRedis } from "@vibetalk/testkit";
import { inBatches, register, startChatNodes, wallNow } from "./chat.js";
import { table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec } from "./snapshot.js";
import { percentile } from "./stats.js";
import { cpuCell, cpuClasses, cpuPerMessage, cpuSample } from "./cpu.js";
import { cpuRecord, writeSummary, type ScenarioSummary } from "./summary.js";

const num = (name: string, d: number): number => Number(process.env[name] ?? d);

interface Member {
  token: string;
  node: number;
  socket?: Socket;
  seen: Set<string>;
  lastSeq: number;
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
    try {
      const tag = randomBytes(3).toString("hex");
      let registered = 0;
      const progress = setInterval(() => console.log(`[official] registered ${registered}/${members}`), 2000);
      let all: Member[];
      try {
        all = await inBatches(members, concurrency, async (i): Promise<Member> => {
          const node = i % 2;
          const r = await register(nodes.urls[node]!, `o${tag}_${i}`, `127.0.0.${2 + (i % 200)}`);
          registered++;
          if (registered % concurrency === 0) inTime("registration");
          return { token: r.token, node, seen: new Set(), lastSeq: 0 };
        });
      } finally {
        clearInterval(progress);
      }
      // Half online: users 0, 1, 4, 5, 8, 9, … (both nodes).
      const online = all.filter((_, i) => Math.floor(i / 2) % 2 === 0);
      const sentAt = new Map<string, number>();
      const deliverMs: number[] = [];
      let duplicated = 0;
      let reordered = 0;
      let deliveries = 0;
      console.log(`[official] connecting ${online.length} online members…`);
      await inBatches(
        online.length,
        100,
        (i) =>
          new Promise<void>((resolve, reject) => {
            const m = online[i]!;
            const s = io(nodes.urls[m.node]!, { auth: { token: m.token }, transports: ["websocket"] });
            sockets.push(s);
            s.on("message", (msg: { clientMsgId: string; channelId: string; seq: number }) => {
              const t = sentAt.get(msg.clientMsgId);
              if (msg.channelId !== "official" || t === undefined) return;
              deliveries++;
              deliverMs.push(wallNow() - t);
              if (m.seen.has(msg.clientMsgId)) duplicated++;
              m.seen.add(msg.clientMsgId);
              if (msg.seq <= m.lastSeq) reordered++;
              m.lastSeq = Math.max(m.lastSeq, msg.seq);
            });
            s.once("connect", () => resolve());
            s.once("connect_error", reject);
          }),
      );
      const before = await Promise.all(nodes.opsUrls.map(brokerMessageDeliveries));
      const classes = await cpuClasses({
        servers: { name: "chat-nodes", ports: nodes.urls.map((u) => Number(new URL(u).port)) },
        rabbitPort: rabbit.port,
        mongoPort: mongo.port,
        postgresPort: Number(new URL(mongo.postgresUrl).port),
        redisPort: redis.port,
      });
      const cpu0 = await cpuSample(classes);
      const total = Math.round(rate * seconds);
      const ackMs: number[] = [];
      const acked: string[] = [];
      let refused = 0;
      console.log(`[official] posting ${rate} messages/s for ${seconds} s (${total})…`);
      const pending: Promise<void>[] = [];
      const start = performance.now();
      for (let k = 0; k < total; k++) {
        const wait = start + (k * 1000) / rate - performance.now();
        if (wait > 0) await sleep(wait);
        if (k % (rate * 2) === 0)
          console.log(
            `[official] ${k}/${total} posted, ${deliveries}/${acked.length * online.length} deliveries so far`,
          );
        const clientMsgId = `${tag}-${k}`;
        sentAt.set(clientMsgId, wallNow());
        pending.push(
          fetch(`${nodes.urls[k % 2]}/api/v1/official/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${serviceToken}` },
            body: JSON.stringify({ clientMsgId, body: `official ${k}` }),
          }).then(
            async (res) => {
              await res.arrayBuffer();
              if (res.status !== 202) return void refused++;
              ackMs.push(wallNow() - sentAt.get(clientMsgId)!);
              acked.push(clientMsgId);
            },
            () => void refused++,
          ),
        );
      }
      await Promise.all(pending);
      const postS = (performance.now() - start) / 1000;
      const missing = () => acked.reduce((n, id) => n + online.filter((m) => !m.seen.has(id)).length, 0);
      for (let i = 0; i < 300 && missing() > 0; i++) await sleep(100);
      const after = await Promise.all(nodes.opsUrls.map(brokerMessageDeliveries));
      const cpu = cpuPerMessage(cpu0, await cpuSample(classes), acked.length);
      const lost = missing();
      const expected = acked.length * online.length;
      const pct = (p: number) => `${percentile(deliverMs, p).toFixed(1)} ms`;
      const perNode = after.map((a, i) => ((a - before[i]!) / Math.max(1, acked.length)).toFixed(2));
      const body = [
        `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${src.label}, this machine (2 cores, shared). Command:`,
        "",
        "```sh",
        `BENCH_MEMBERS=${members} BENCH_RATE=${rate} BENCH_SECONDS=${seconds} npm run bench -- --scenario=official --write`,
        "```",
        "",
        `Two chat-nodes (real Redis, RabbitMQ, FerretDB); ${members} accounts registered through the API (each joins the official`,
        `group at registration), alternating between the nodes; ${online.length} of them online (half, on both nodes). The service`,
        `posts ${rate} messages/s for ${seconds} s with \`POST /official/messages\` and the service token, alternating between the`,
        "nodes; send→deliver is from the post to each online member's socket (one clock). Broker deliveries per message:",
        'the node\'s `vibetalk_broker_deliveries_total{kind="message"}` over the run ÷ messages posted.',
        "",
        table(
          ["figure", "value"],
          [
            ["messages posted / accepted (202) / refused", `${total} / ${acked.length} / ${refused}`],
            ["posting rate reached (messages/s)", (total / postS).toFixed(1)],
            [
              "post→202 p50 / p99",
              `${percentile(ackMs, 50).toFixed(1)} ms / ${percentile(ackMs, 99).toFixed(1)} ms`,
            ],
            ["send→deliver p50 / p95 / p99 / max", `${pct(50)} / ${pct(95)} / ${pct(99)} / ${pct(100)}`],
            ["deliveries seen / expected", `${deliveries} / ${expected}`],
            ["lost / duplicated / reordered", `${lost} / ${duplicated} / ${reordered}`],
            ["broker deliveries per message, node 0 / node 1", perNode.join(" / ")],
            ["CPU per message posted, by process (posting and delivery)", cpuCell(cpu)],
          ],
        ),
        "",
        `- Zero lost, duplicated or reordered: ${lost + duplicated + reordered === 0 ? "met" : "not met"}.`,
      ].join("\n");
      console.log(body);
      await writeSummary(argv, {
        scenario: "official",
        load: `${members} members (${online.length} online over 2 chat-nodes), ${rate} posts/s for ${seconds} s`,
        accepted: acked.length / postS,
        delivered: (acked.length * online.length - lost) / online.length / postS,
        sendToAck: pcts(ackMs),
        sendToDeliver: pcts(deliverMs),
        lost,
        duplicated,
        reordered,
        cpuMsPerMessage: cpuRecord(cpu),
        targets: officialTargets(members, perNode.map(Number), percentile(deliverMs, 99)),
      });
      if (argv.includes("--write")) {
        await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading: "Official group", body });
        console.log("[official] wrote the Official group section of bench/RESULTS.md");
      }
    } finally {
      for (const s of sockets) s.disconnect();
      await nodes.stop();
    }
  } finally {
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
  }
}

const pcts = (xs: number[]) => ({
  p50: percentile(xs, 50),
  p95: percentile(xs, 95),
  p99: percentile(xs, 99),
  max: percentile(xs, 100),
});

/** Issue 17's targets for the official group (set at 10,000 members, half online, 10 posts/s). */
function officialTargets(
  members: number,
  perNode: number[],
  p99: number,
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
      measured: `${p99.toFixed(1)} ms`,
      met: p99 <= 250,
    },
  ];
}
