// `npm run bench -- --scenario=ramp [--write]`: open-loop load in steps of increasing offered rate up to the
// knee (docs/performance.md, "The ramp"). Real Redis, RabbitMQ and FerretDB, two chat-nodes; BENCH_RAMP_USERS
// (64) users alternating between the nodes in groups of 8 (members on both nodes). Each step sends on a
// schedule (message k at start + k/rate, whatever the acks do) for BENCH_RAMP_STEP_S seconds, then stops
// sending and lets the step drain (BENCH_RAMP_DRAIN_S at most) so every step starts from empty queues.
// Steps start at BENCH_RAMP_START (100) msg/s and grow ×BENCH_RAMP_FACTOR (1.4) until the knee (kneeOf),
// plus BENCH_RAMP_PAST (1) step past it, BENCH_RAMP_MAX_STEPS (12) steps, or BENCH_DEADLINE_S (900) overall.
// The same ramp then runs on the textbook design (textbook.ts) on the same Redis and FerretDB.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import mongoose from "mongoose";
import { io, type Socket } from "socket.io-client";
import { repoRoot, startMongo, startRabbitMQ, startRedis } from "@vibetalk/testkit";
import {
  chatNodeBackend,
  inBatches,
  startChatNodes,
  wallNow,
  type ChatBackend,
  type ChatBenchOptions,
  type User,
} from "./chat.js";
import { cpuCell, cpuClasses, cpuPerMessage, cpuSample, type CpuClass, type CpuPerMessage } from "./cpu.js";
import { fmt, table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec } from "./snapshot.js";
import { summarize, type Summary } from "./stats.js";
import { startTextbook, textbookBackend } from "./textbook.js";
import { kneeOf, pastKnee } from "./knee.js";
import { cpuRecord, writeSummary, type ScenarioSummary } from "./summary.js";

export { kneeOf, pastKnee };

const num = (name: string, d: number): number => Number(process.env[name] ?? d);

export interface RampOptions {
  /** First step's offered rate (messages/s). */
  startRate: number;
  factor: number;
  stepSeconds: number;
  /** Longest wait after a step for its messages to arrive. */
  drainSeconds: number;
  maxSteps: number;
  /** Steps run past the knee (at most). */
  past: number;
  users: number;
  groupSize: number;
  /** The knee: send→deliver p99 above this (ms). */
  p99LimitMs: number;
  /** …or fewer accepted than this share of the offered rate. */
  acceptedShare: number;
  /** Seconds connected and quiet before the warm-up, for the idle CPU of each class. */
  idleSeconds: number;
  /** A first step at startRate, not reported (JIT, connections, queues). */
  warmupSeconds: number;
  /** Seconds from the start of runRamp after which no new step begins. */
  deadlineS: number;
}

export const rampDefaults = (): RampOptions => ({
  startRate: num("BENCH_RAMP_START", 100),
  factor: num("BENCH_RAMP_FACTOR", 1.4),
  stepSeconds: num("BENCH_RAMP_STEP_S", 12),
  drainSeconds: num("BENCH_RAMP_DRAIN_S", 10),
  maxSteps: num("BENCH_RAMP_MAX_STEPS", 12),
  past: num("BENCH_RAMP_PAST", 1),
  users: num("BENCH_RAMP_USERS", 64),
  groupSize: num("BENCH_GROUP", 8),
  p99LimitMs: num("BENCH_RAMP_P99_MS", 250),
  acceptedShare: 0.9,
  warmupSeconds: num("BENCH_RAMP_WARMUP_S", 5),
  idleSeconds: num("BENCH_RAMP_IDLE_S", 5),
  deadlineS: num("BENCH_DEADLINE_S", 900),
});

export interface RampStep {
  offeredRate: number;
  /** Messages sent in the step, ÷ its length: the rate reached (the timer can fall behind). */
  sentRate: number;
  /** Acks, stored messages (the servers' count), and messages delivered (deliveries ÷ members) per second. */
  acceptedRate: number;
  storedRate: number;
  deliveredRate: number;
  sendToAck: Summary;
  sendToDeliver: Summary;
  /** Of the step's acked messages after its drain: deliveries missing, duplicated, out of seq order. */
  lost: number;
  duplicated: number;
  reordered: number;
  refused: number;
  /** Chat-node event-loop delay p99 over the step, the worst node (NaN where the servers expose none). */
  eventLoopP99Ms: number;
  /** ms of CPU per accepted message, by process class (the bench process included), and the total. */
  cpu: CpuPerMessage;
}

export interface RampResult {
  steps: RampStep[];
  /** Index of the first step past the knee, or −1 when none was reached. */
  kneeIndex: number;
  /** The offered rate of the last step under the knee (0 when the first step was past it). */
  kneeRate: number;
  /** CPU of each class while the clients were connected and nothing was sent (ms per second), and total. */
  idleCpu: CpuPerMessage;
  /** After the last drain: messages acked, delivered to every member, stored (the store's count). */
  acked: number;
  fullyDelivered: number;
  stored: number;
  lost: number;
  duplicated: number;
  reordered: number;
}

/** The servers a ramp drives: URLs, how accounts are made, their own figures (stored count, event loop). */
export interface RampTarget {
  urls: string[];
  backend: ChatBackend;
  /**
   * Messages stored so far, by the servers' own count, and the event-loop delay p99 (ms) since the last call,
   * the worst server (NaN when not exposed); one read, since reading resets the servers' histograms.
   */
  figures(): Promise<{ stored: number; eventLoopP99Ms: number }>;
  cpu: CpuClass[];
}

interface Sent {
  step: number;
  sentAt: number;
  ackMs: number;
  members: number;
  deliveries: number;
}

const countOf = (m: Map<number, number>, k: number): number => m.get(k) ?? 0;

/** What the sockets saw: each first delivery (time, latency, step), and duplicates and seq regressions by step. */
function receiver(sent: Map<string, Sent>) {
  const deliverTimes: { at: number; ms: number; step: number }[] = [];
  const duplicated = new Map<number, number>();
  const reordered = new Map<number, number>();
  const lastSeq = new Map<string, number>(); // socket index + channel → last seq delivered
  const bump = (m: Map<number, number>, step: number) => m.set(step, countOf(m, step) + 1);
  return {
    deliverTimes,
    duplicated,
    reordered,
    /** The `message` handler of user `ui`'s socket. */
    on(ui: number) {
      const got = new Set<string>();
      return (m: { clientMsgId: string; channelId: string; seq: number }) => {
        const t = sent.get(m.clientMsgId);
        if (!t) return;
        const now = wallNow();
        if (got.has(m.clientMsgId)) return void bump(duplicated, t.step);
        got.add(m.clientMsgId);
        const key = `${ui}/${m.channelId}`;
        const last = lastSeq.get(key) ?? 0;
        // seq 0: the textbook design numbers nothing, so it has no order to check
        if (m.seq > 0 && m.seq <= last) bump(reordered, t.step);
        lastSeq.set(key, Math.max(m.seq, last));
        t.deliveries++;
        deliverTimes.push({ at: now, ms: now - t.sentAt, step: t.step });
      };
    },
  };
}

/** The ramp on one set of servers: users, groups, sockets, then the steps; everything is closed at the end. */
export async function runRamp(o: RampOptions, target: RampTarget, label = "ramp"): Promise<RampResult> {
  const t0 = performance.now();
  const run = randomBytes(3).toString("hex");
  const users = await inBatches(o.users, 50, async (i): Promise<User> => {
    const node = i % target.urls.length;
    return { ...(await target.backend.register(`r${run}_${i}`, node)), node };
  });
  const groups: { id: string; members: User[] }[] = [];
  for (let g = 0; g + 1 < users.length; g += o.groupSize) {
    const members = users.slice(g, g + o.groupSize);
    groups.push({ id: await target.backend.createGroup(members, `ramp ${g}`), members });
  }
  const sent = new Map<string, Sent>();
  const rx = receiver(sent);
  const { deliverTimes } = rx;
  const ackTimes: number[] = [];
  const sockets: Socket[] = [];
  try {
    await Promise.all(
      users.map(
        (u, ui) =>
          new Promise<void>((resolve, reject) => {
            const mine = groups.filter((g) => g.members.includes(u)).map((g) => g.id);
            const s = io(target.urls[u.node]!, {
              auth: target.backend.auth(u, mine),
              transports: ["websocket"],
            });
            s.on("message", rx.on(ui));
            s.once("connect", () => resolve());
            s.once("connect_error", reject);
            sockets.push(s);
            u.socket = s;
          }),
      ),
    );
    // connected and quiet: the CPU the processes use without messages, spread over every step's messages
    const idle0 = await cpuSample(target.cpu);
    await sleep(o.idleSeconds * 1000);
    const idleCpu = cpuPerMessage(idle0, await cpuSample(target.cpu), o.idleSeconds);
    console.log(`[${label}] idle, connected: ${cpuCell(idleCpu).replace(/ ms/, " ms/s")}`);
    const steps: RampStep[] = [];
    let kneeAt = -1;
    let k = 0;
    for (let step = o.warmupSeconds > 0 ? -1 : 0; step < o.maxSteps; step++) {
      if ((performance.now() - t0) / 1000 + o.stepSeconds + o.drainSeconds > o.deadlineS) {
        console.log(`[${label}] stopping: the next step would end past BENCH_DEADLINE_S=${o.deadlineS}`);
        break;
      }
      const warm = step < 0;
      const rate = o.startRate * o.factor ** Math.max(0, step);
      const total = Math.round(rate * (warm ? o.warmupSeconds : o.stepSeconds));
      const { stored: stored0 } = await target.figures(); // also resets the event-loop histograms
      const cpu0 = await cpuSample(target.cpu);
      const acks0 = ackTimes.length;
      const dt0 = deliverTimes.length;
      const ids: string[] = [];
      const start = wallNow();
      const pending: Promise<void>[] = [];
      let refusedStep = 0;
      console.log(
        `[${label}] ${warm ? "warm-up" : `step ${step + 1}`}: ${rate.toFixed(0)} msg/s, ${total} messages…`,
      );
      for (let i = 0; i < total; i++, k++) {
        const wait = start + (i * 1000) / rate - wallNow();
        if (wait > 1) await sleep(wait);
        const g = groups[k % groups.length]!;
        const sender = g.members[Math.floor(k / groups.length) % g.members.length]!;
        const clientMsgId = `${run}-${k}`;
        const t: Sent = { step, sentAt: wallNow(), ackMs: NaN, members: g.members.length, deliveries: 0 };
        sent.set(clientMsgId, t);
        ids.push(clientMsgId);
        pending.push(
          (
            sender.socket!.timeout(30_000).emitWithAck("message:send", {
              channelId: g.id,
              clientMsgId,
              body: `ramp ${clientMsgId}`,
            }) as Promise<{ ok: boolean }>
          ).then(
            (r) => {
              if (!r.ok) return void refusedStep++;
              const now = wallNow();
              t.ackMs = now - t.sentAt;
              ackTimes.push(now);
            },
            () => void refusedStep++,
          ),
        );
      }
      const end = wallNow();
      const seconds = (end - start) / 1000;
      const cpu1 = await cpuSample(target.cpu);
      const { stored: stored1, eventLoopP99Ms: loop } = await target.figures();
      // the drain: every acked message of the step at every member, or the drain's time is up
      const drainUntil = performance.now() + o.drainSeconds * 1000;
      const missing = () =>
        ids.reduce((n, id) => {
          const t = sent.get(id)!;
          return n + (Number.isNaN(t.ackMs) ? 0 : t.members - t.deliveries);
        }, 0);
      await Promise.race([Promise.all(pending), sleep(o.drainSeconds * 1000)]);
      while (performance.now() < drainUntil && missing() > 0) await sleep(50);
      const acked = ids.filter((id) => !Number.isNaN(sent.get(id)!.ackMs));
      const inWindow = (at: number) => at >= start && at <= end;
      const deliveredInWindow = deliverTimes.slice(dt0).filter((d) => inWindow(d.at)).length;
      const deliverMs = deliverTimes
        .slice(dt0)
        .filter((d) => d.step === step)
        .map((d) => d.ms);
      const lostStep = missing();
      if (warm) continue;
      const s: RampStep = {
        offeredRate: rate,
        sentRate: total / seconds,
        acceptedRate: ackTimes.slice(acks0).filter(inWindow).length / seconds,
        storedRate: (stored1 - stored0) / seconds,
        deliveredRate: deliveredInWindow / o.groupSize / seconds,
        sendToAck: summarize(acked.map((id) => sent.get(id)!.ackMs)),
        // a delivery still missing after the drain counts as past any limit
        sendToDeliver: lostStep > 0 ? { ...summarize(deliverMs), p99: Infinity } : summarize(deliverMs),
        lost: lostStep,
        duplicated: countOf(rx.duplicated, step),
        reordered: countOf(rx.reordered, step),
        refused: refusedStep,
        eventLoopP99Ms: loop,
        cpu: cpuPerMessage(cpu0, cpu1, acked.length),
      };
      steps.push(s);
      console.log(
        `[${label}] step ${step + 1}: offered ${fmt(s.offeredRate, 0)}, sent ${fmt(s.sentRate, 0)}, accepted ${fmt(s.acceptedRate, 0)}, stored ${fmt(s.storedRate, 0)}, delivered ${fmt(s.deliveredRate, 0)} msg/s; send→deliver p50/p99 ${fmt(s.sendToDeliver.p50)}/${fmt(s.sendToDeliver.p99)} ms; lost/dup/reordered ${s.lost}/${s.duplicated}/${s.reordered}; event loop p99 ${fmt(loop)} ms; CPU ${s.cpu.total.toFixed(2)} ms/msg`,
      );
      if (kneeAt < 0 && pastKnee(s, o)) kneeAt = step;
      if (kneeAt >= 0 && step - kneeAt >= o.past) break;
    }
    // the whole run after the last drain
    await sleep(500);
    const all = [...sent.values()].filter((t) => !Number.isNaN(t.ackMs));
    const lost = all.reduce((n, t) => n + t.members - t.deliveries, 0);
    return {
      steps,
      ...kneeOf(steps, o),
      idleCpu,
      acked: all.length,
      fullyDelivered: all.filter((t) => t.deliveries === t.members).length,
      stored: (await target.figures()).stored,
      lost,
      duplicated: [...rx.duplicated.values()].reduce((a, b) => a + b, 0),
      reordered: [...rx.reordered.values()].reduce((a, b) => a + b, 0),
    };
  } finally {
    for (const s of sockets) s.disconnect();
  }
}

/** A Prometheus counter or gauge summed over every series of `name`, optionally only those with `label`. */
function metricSum(text: string, name: string, label?: string): number {
  return text
    .split("\n")
    .filter((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && (!label || l.includes(label)))
    .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
}

const scrape = (opsUrls: string[]) =>
  Promise.all(opsUrls.map(async (u) => (await fetch(`${u}/metrics`)).text()));

/** Messages in a FerretDB database's `messages` collection (the textbook design's store count). */
async function storeCount(
  mongoUrl: string,
  db: string,
): Promise<(() => Promise<number>) & { close(): Promise<void> }> {
  const conn = await mongoose.createConnection(mongoUrl, { dbName: db }).asPromise();
  const base = await conn.db!.collection("messages").countDocuments();
  const count = async () => (await conn.db!.collection("messages").countDocuments()) - base;
  return Object.assign(count, { close: () => conn.close() });
}

const stepRows = (r: RampResult): string[][] =>
  r.steps.map((s, i) => [
    `${i + 1}${i === r.kneeIndex ? " (knee)" : ""}`,
    fmt(s.offeredRate, 0),
    `${fmt(s.acceptedRate, 0)} / ${fmt(s.storedRate, 0)} / ${fmt(s.deliveredRate, 0)}`,
    `${fmt(s.sendToAck.p50)} / ${fmt(s.sendToAck.p95)} / ${fmt(s.sendToAck.p99)} / ${fmt(s.sendToAck.max)}`,
    `${fmt(s.sendToDeliver.p50)} / ${fmt(s.sendToDeliver.p95)} / ${Number.isFinite(s.sendToDeliver.p99) ? fmt(s.sendToDeliver.p99) : "missing"} / ${fmt(s.sendToDeliver.max)}`,
    `${s.lost} / ${s.duplicated} / ${s.reordered}`,
    fmt(s.eventLoopP99Ms),
    s.cpu.total.toFixed(2),
    ...s.cpu.perClass.map(([, v]) => v.toFixed(2)),
  ]);

function rampTable(r: RampResult): string {
  const classes = r.steps[0]?.cpu.perClass.map(([k]) => k) ?? [];
  return table(
    [
      "step",
      "offered msg/s",
      "accepted / stored / delivered msg/s",
      "send→ack p50 / p95 / p99 / max ms",
      "send→deliver p50 / p95 / p99 / max ms",
      "lost / dup / reordered",
      "event loop p99 ms",
      "CPU ms/msg total",
      ...classes.map((c) => `CPU ms/msg ${c}`),
    ],
    stepRows(r),
  );
}

const verdict = (r: RampResult, members: number) =>
  `Idle (connected, nothing sent, before the steps): CPU ${cpuCell(r.idleCpu).replace(/ ms/, " ms/s")}. After the drain: ${r.acked} acked, ${r.fullyDelivered} delivered to all ${members} members, ${r.stored} stored; lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}`;

/** The CLI: `--scenario=ramp [--write]`, the chat then the textbook design, one section of bench/RESULTS.md. */
export async function runRampBench(argv: string[]): Promise<void> {
  const o = rampDefaults();
  const began = performance.now();
  const src = await chatNodeSource(chatNodeSpec(argv));
  console.log(`[ramp] ${src.label}; starting Redis, RabbitMQ, FerretDB…`);
  const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
  const services = {
    rabbitPort: rabbit.port,
    mongoPort: mongo.port,
    postgresPort: Number(new URL(mongo.postgresUrl).port),
    redisPort: redis.port,
  };
  try {
    const opts: ChatBenchOptions = {
      redisUrl: redis.url,
      rabbitUrl: rabbit.url,
      mongoUrl: mongo.url,
      nodes: 2,
      users: o.users,
      groupSize: o.groupSize,
      messages: 0,
      window: 1,
      chatNodeDir: src.dir,
    };
    const nodes = await startChatNodes(opts);
    let chat: RampResult;
    try {
      const ports = nodes.urls.map((u) => Number(new URL(u).port));
      chat = await runRamp(
        { ...o, deadlineS: o.deadlineS / 2 - (performance.now() - began) / 1000 },
        {
          urls: nodes.urls,
          backend: chatNodeBackend(nodes.urls),
          figures: async () => {
            const texts = await scrape(nodes.opsUrls);
            return {
              stored: texts.reduce(
                (a, t) => a + metricSum(t, "vibetalk_messages_stored_total", 'result="new"'),
                0,
              ),
              eventLoopP99Ms: Math.max(
                ...texts.map((t) => metricSum(t, "vibetalk_process_nodejs_eventloop_lag_p99_seconds") * 1000),
              ),
            };
          },
          cpu: await cpuClasses({ servers: { name: "chat-nodes", ports }, ...services }),
        },
        "ramp chat",
      );
    } finally {
      await nodes.stop();
    }
    console.log("[ramp] the textbook design: 2 Socket.IO servers, the same ramp…");
    const tb = await startTextbook({ nodes: 2, redisUrl: redis.url, mongoUrl: mongo.url });
    const count = await storeCount(mongo.url, "bench_textbook");
    let textbook: RampResult;
    try {
      textbook = await runRamp(
        { ...o, deadlineS: o.deadlineS - (performance.now() - began) / 1000 },
        {
          urls: tb.urls,
          backend: textbookBackend,
          figures: async () => ({ stored: await count(), eventLoopP99Ms: NaN }),
          cpu: await cpuClasses({
            servers: { name: "textbook servers", ports: tb.urls.map((u) => Number(new URL(u).port)) },
            ...services,
            rabbitPort: 0,
          }),
        },
        "ramp textbook",
      );
    } finally {
      await count.close();
      await tb.stop();
    }
    const ratio = textbook.kneeRate > 0 ? (chat.kneeRate / textbook.kneeRate).toFixed(2) : "–";
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${src.label}, this machine (2 cores, shared). Command:`,
      "",
      "```sh",
      `BENCH_RAMP_START=${o.startRate} BENCH_RAMP_FACTOR=${o.factor} BENCH_RAMP_STEP_S=${o.stepSeconds} BENCH_RAMP_DRAIN_S=${o.drainSeconds} BENCH_RAMP_MAX_STEPS=${o.maxSteps} BENCH_RAMP_USERS=${o.users} BENCH_DEADLINE_S=${o.deadlineS} npm run bench -- --scenario=ramp --write`,
      "```",
      "",
      `Open loop: ${o.users} users alternating between 2 chat-nodes, groups of ${o.groupSize} (members on both nodes); each step sends`,
      `on a schedule for ${o.stepSeconds} s whatever the acks do, from ${o.startRate} msg/s ×${o.factor} per step, then stops and drains`,
      `(${o.drainSeconds} s at most). The knee is the first step whose send→deliver p99 passes ${o.p99LimitMs} ms (a delivery still`,
      `missing after the drain counts as past it) or that accepts under ${o.acceptedShare * 100} % of the offered rate; the knee rate is the step`,
      "before it. Accepted, stored and delivered are per second of the step's sending (delivered = socket deliveries ÷",
      "members); latencies and lost/dup/reordered are of the messages sent in the step, one clock. CPU: ms per accepted",
      "message of each process class during the step's sending (bench process = this process, the clients); the idle",
      `line is each class's CPU over ${o.idleSeconds} s connected and quiet before the steps, in ms per second.`,
      "Then the same ramp on the textbook design (bench/src/textbook-server.ts) on the same Redis and FerretDB.",
      "",
      `**Knee: VibeTalk ${fmt(chat.kneeRate, 0)} msg/s, textbook ${fmt(textbook.kneeRate, 0)} msg/s; ratio ${ratio}.**`,
      "",
      "VibeTalk:",
      "",
      rampTable(chat),
      "",
      `${verdict(chat, o.groupSize)}.`,
      "",
      "Textbook design (seq not numbered: no order check; no event-loop metric):",
      "",
      rampTable(textbook),
      "",
      `${verdict(textbook, o.groupSize)}.`,
    ].join("\n");
    console.log(body);
    await writeSummary(argv, rampSummary(chat, textbook, o));
    if (argv.includes("--write")) {
      await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading: "Ramp to the knee", body });
      console.log("[ramp] wrote the Ramp to the knee section of bench/RESULTS.md");
    }
  } finally {
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
  }
}

/** The standard set's row (summary.ts): the last step under the knee, beside the textbook design's knee. */
function rampSummary(
  chat: RampResult,
  textbook: RampResult,
  o: ReturnType<typeof rampDefaults>,
): ScenarioSummary {
  const at =
    chat.steps[chat.kneeIndex > 0 ? chat.kneeIndex - 1 : chat.kneeIndex < 0 ? chat.steps.length - 1 : 0]!;
  const sum = (f: (s: RampStep) => number) =>
    [chat, textbook].reduce((a, r) => a + r.steps.reduce((b, s) => b + f(s), 0), 0);
  return {
    scenario: "ramp",
    load: `open loop from ${o.startRate} msg/s ×${o.factor} per ${o.stepSeconds} s step, groups of ${o.groupSize}; knee ${fmt(chat.kneeRate, 0)} msg/s (figures of that step)`,
    accepted: at.acceptedRate,
    stored: at.storedRate,
    delivered: at.deliveredRate,
    sendToAck: at.sendToAck,
    sendToDeliver: at.sendToDeliver,
    lost: sum((s) => s.lost),
    duplicated: sum((s) => s.duplicated),
    reordered: sum((s) => s.reordered),
    loopP99Ms: at.eventLoopP99Ms,
    cpuMsPerMessage: cpuRecord(at.cpu),
    ratios:
      textbook.kneeRate > 0 ? { "knee ÷ textbook design's knee": chat.kneeRate / textbook.kneeRate } : {},
  };
}
