// The defaults sweep: `npm run bench -- --sweep [--write] [--chat-node=<commit>|worktree]`.
// Measures the chat at chat-node's defaults of BATCH_SIZE, FLUSH_INTERVAL_MS and CONSUMER_PREFETCH and
// with one of them changed at a time, under the same three loads each time, each point in a fresh
// database with fresh chat-nodes; every point is reported as a ratio to the defaults measured in the
// same round. Rounds run the points forwards, then backwards, so a drift of the (shared) machine
// weighs on every point alike. With --write, the "Defaults sweep" section of bench/RESULTS.md.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot, startMongo, startRabbitMQ, startRedis } from "@vibetalk/testkit";
import { runChatBench, startChatNodes, type ChatBenchOptions } from "./chat.js";
import { cpuSeconds, pidsListeningOn } from "./cpu.js";
import { fmt, median, table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec, type ChatNodeSource } from "./snapshot.js";

const VARS = ["BATCH_SIZE", "FLUSH_INTERVAL_MS", "CONSUMER_PREFETCH", "CONSUMER_PIPELINE"] as const;
type Var = (typeof VARS)[number];
const ALTERNATIVES: Record<Var, number[]> = {
  BATCH_SIZE: [20, 1000],
  FLUSH_INTERVAL_MS: [0, 20],
  CONSUMER_PREFETCH: [50],
  CONSUMER_PIPELINE: [0],
};

interface Point {
  key: string;
  variable: Var | null;
  value: number | null;
  env: Record<string, string>;
}

interface Metrics {
  steadyRate: number;
  steadyCpu: number;
  steadyP50: number;
  steadyP99: number;
  idleP50: number;
  lightP50: number;
  lightP99: number;
  backlogRate: number;
  backlogCpu: number;
  complete: boolean;
}

type MetricKey = Exclude<keyof Metrics, "complete">;
const METRICS: { key: MetricKey; label: string; higherIsBetter: boolean }[] = [
  { key: "steadyRate", label: "steady msgs/s", higherIsBetter: true },
  { key: "steadyCpu", label: "steady CPU ms/msg", higherIsBetter: false },
  { key: "steadyP50", label: "steady send→deliver p50 ms", higherIsBetter: false },
  { key: "steadyP99", label: "steady send→deliver p99 ms", higherIsBetter: false },
  { key: "idleP50", label: "idle send→deliver p50 ms", higherIsBetter: false },
  { key: "lightP50", label: "light send→deliver p50 ms", higherIsBetter: false },
  { key: "lightP99", label: "light send→deliver p99 ms", higherIsBetter: false },
  { key: "backlogRate", label: "backlog drain msgs/s", higherIsBetter: true },
  { key: "backlogCpu", label: "backlog CPU ms/msg", higherIsBetter: false },
];

const num = (name: string, d: number): number => Number(process.env[name] ?? d);

/** The defaults of the chat-node being measured, read from its config.ts. */
async function defaultsOf(src: ChatNodeSource): Promise<Record<Var, number>> {
  const text = await readFile(join(src.dir, "src/config.ts"), "utf8");
  const out = {} as Record<Var, number>;
  for (const v of VARS) {
    const m = new RegExp(`${v}: int\\([^)]*\\)\\.default\\((\\d[\\d_]*)\\)`).exec(text);
    if (!m) throw new Error(`cannot read the default of ${v} from ${src.dir}/src/config.ts`);
    out[v] = Number(m[1]!.replace(/_/g, ""));
  }
  return out;
}

function pointsFor(defaults: Record<Var, number>): Point[] {
  const base = Object.fromEntries(VARS.map((v) => [v, String(defaults[v])]));
  const points: Point[] = [{ key: "defaults", variable: null, value: null, env: base }];
  for (const v of VARS) {
    for (const value of ALTERNATIVES[v]) {
      if (value === defaults[v]) continue;
      points.push({ key: `${v}=${value}`, variable: v, value, env: { ...base, [v]: String(value) } });
    }
  }
  return points;
}

export async function runSweep(argv: string[]): Promise<void> {
  const write = argv.includes("--write");
  const nodelay = argv.includes("--nodelay");
  const rounds = num("BENCH_SWEEP_ROUNDS", 3);
  const steadyMessages = num("BENCH_SWEEP_MESSAGES", 1200);
  const lightMessages = num("BENCH_SWEEP_LIGHT", 100);
  const backlogMessages = num("BENCH_SWEEP_BACKLOG", 2000);
  const src = await chatNodeSource(chatNodeSpec(argv));
  const defaults = await defaultsOf(src);
  const points = pointsFor(defaults);
  const hashing = (await import(pathToFileURL(join(src.dir, "src/domain/hashing.ts")).href)) as {
    partitionOf(channelId: string, partitions: number): number;
  };
  console.log(`[sweep] ${src.label}; defaults ${VARS.map((v) => `${v}=${defaults[v]}`).join(", ")}`);
  console.log(`[sweep] ${points.length} points × ${rounds} rounds; starting Redis, RabbitMQ, FerretDB…`);
  const t0 = Date.now();
  const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
  const results = new Map<string, Metrics[]>(points.map((p) => [p.key, []]));
  let seq = 0;
  try {
    // Round 0 is one unrecorded point: the first chat-nodes declare the 64 quorum queues, the machine warms up.
    for (let round = -1; round < rounds; round++) {
      const order = round < 0 ? points.slice(0, 1) : roundOrder(points, round);
      for (const point of order) {
        seq += 1;
        const o: ChatBenchOptions = {
          redisUrl: redis.url,
          rabbitUrl: rabbit.url,
          mongoUrl: mongo.url.replace(/\/[^/]*$/, `/sweep_${seq}`),
          nodes: 2,
          users: 40,
          groupSize: 8,
          messages: steadyMessages,
          window: 4,
          chatNodeDir: src.dir,
          env: point.env,
          preload: nodelay ? [join(repoRoot, "bench/src/probe/nodelay.ts")] : [],
          partitionOf: (c) => hashing.partitionOf(c, 64),
        };
        const m = await measurePoint(
          o,
          [redis.port, rabbit.port, mongo.port, Number(new URL(mongo.postgresUrl).port)],
          { lightMessages, backlogMessages },
        );
        if (round >= 0) results.get(point.key)!.push(m);
        console.log(
          `[sweep] ${round < 0 ? "warm-up" : `round ${round + 1}`}, ${point.key}: ${METRICS.map((k) => `${k.label} ${fmt(m[k.key], k.key.endsWith("Cpu") ? 2 : 0)}`).join(", ")}${m.complete ? "" : " (DELIVERIES MISSING)"}`,
        );
      }
    }
  } finally {
    await Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]);
  }
  const minutes = (Date.now() - t0) / 60_000;
  const text = render(src, defaults, points, results, rounds, nodelay, {
    steadyMessages,
    lightMessages,
    backlogMessages,
    minutes,
    command: sweepCommand(argv, src),
  });
  console.log(text);
  if (write) {
    const heading = nodelay ? "Defaults sweep with TCP_NODELAY forced" : "Defaults sweep";
    await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading, body: text });
    console.log(`[sweep] wrote the "${heading}" section of bench/RESULTS.md`);
  }
}

/** One point: fresh chat-nodes, a warm-up, then the four loads; CPU of every server process around two of them. */
async function measurePoint(
  o: ChatBenchOptions,
  servicePorts: number[],
  sizes: { lightMessages: number; backlogMessages: number },
): Promise<Metrics> {
  const nodes = await startChatNodes(o);
  try {
    await runChatBench({ ...o, users: 8, messages: 40, window: 1 }, nodes.urls); // warm-up
    const servers = await pidsListeningOn([
      ...servicePorts,
      ...nodes.urls.map((u) => Number(new URL(u).port)),
    ]);
    const cpu0 = await cpuSeconds(servers);
    const steady = await runChatBench(o, nodes.urls);
    const cpu1 = await cpuSeconds(servers);
    const light = await runChatBench(
      { ...o, users: 8, messages: sizes.lightMessages, window: 1 },
      nodes.urls,
    );
    const idle = await runChatBench(
      { ...o, users: 8, messages: 30, window: 1, pace: "delivery", sendersPerGroup: 1 },
      nodes.urls,
    );
    const cpu2 = await cpuSeconds(servers);
    const backlog = await runChatBench({ ...o, messages: sizes.backlogMessages, via: "broker" }, nodes.urls);
    const cpu3 = await cpuSeconds(servers);
    return {
      steadyRate: steady.messagesPerSecond,
      steadyCpu: ((cpu1 - cpu0) * 1000) / steady.messages,
      steadyP50: steady.sendToDeliver.p50,
      steadyP99: steady.sendToDeliver.p99,
      idleP50: idle.sendToDeliver.p50,
      lightP50: light.sendToDeliver.p50,
      lightP99: light.sendToDeliver.p99,
      backlogRate: backlog.messagesPerSecond,
      backlogCpu: ((cpu3 - cpu2) * 1000) / backlog.messages,
      complete: [steady, idle, light, backlog].every((r) => r.deliveries === r.messages * o.groupSize),
    };
  } finally {
    await nodes.stop();
  }
}

function sweepCommand(argv: string[], src: ChatNodeSource): string {
  const envs = ["BENCH_SWEEP_ROUNDS", "BENCH_SWEEP_MESSAGES", "BENCH_SWEEP_LIGHT", "BENCH_SWEEP_BACKLOG"]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]} `)
    .join("");
  const pinned = chatNodeSpec(argv) === "worktree" ? "" : ` --chat-node=${src.commit}`;
  const nodelay = argv.includes("--nodelay") ? " --nodelay" : "";
  return `${envs}npm run bench -- --sweep${nodelay} --write${pinned}`;
}

/**
 * The defaults twice per round (first and in the middle), the alternatives around them; every other round
 * backwards. The machine is shared, and its disturbances come in bursts that can spoil any single run: a
 * configuration's value is the median of its runs, and the defaults get the most runs.
 */
function roundOrder(points: Point[], round: number): Point[] {
  const [defaults, ...others] = points;
  const half = Math.ceil(others.length / 2);
  const order = [defaults!, ...others.slice(0, half), defaults!, ...others.slice(half)];
  return round % 2 === 0 ? order : order.reverse();
}

const valueOf = (results: Map<string, Metrics[]>, key: string, metric: MetricKey): number =>
  median(results.get(key)!.map((m) => m[metric]));

/** The median of a point's runs ÷ the median of the defaults' runs. */
function ratio(results: Map<string, Metrics[]>, key: string, metric: MetricKey): number {
  return valueOf(results, key, metric) / valueOf(results, "defaults", metric);
}

/** Interquartile range ÷ median of the defaults' runs: how much one configuration moves by itself. */
function noiseOf(results: Map<string, Metrics[]>, metric: MetricKey): number {
  const v = results
    .get("defaults")!
    .map((m) => m[metric])
    .sort((a, b) => a - b);
  if (v.length < 3) return NaN;
  const q = (f: number) => v[Math.round(f * (v.length - 1))]!;
  return (q(0.75) - q(0.25)) / median(v);
}

function render(
  src: ChatNodeSource,
  defaults: Record<Var, number>,
  points: Point[],
  results: Map<string, Metrics[]>,
  rounds: number,
  nodelay: boolean,
  info: {
    steadyMessages: number;
    lightMessages: number;
    backlogMessages: number;
    minutes: number;
    command: string;
  },
): string {
  const noise = Object.fromEntries(METRICS.map((k) => [k.key, noiseOf(results, k.key)])) as Record<
    MetricKey,
    number
  >;
  const margin = (k: MetricKey) => Math.max(0.1, Number.isFinite(noise[k]) ? noise[k] : 0);
  const rows = points.map((p) => [
    p.variable
      ? `${p.variable} = ${p.value}`
      : `**defaults** (${VARS.map((v) => `${v} ${defaults[v]}`).join(", ")})`,
    ...METRICS.map((k) => {
      const v = valueOf(results, p.key, k.key);
      const digits = k.key.endsWith("Cpu") ? 2 : 0;
      return p.variable ? `${fmt(v, digits)} (×${fmt(ratio(results, p.key, k.key), 2)})` : fmt(v, digits);
    }),
  ]);
  rows.push([
    "_noise: the defaults' runs, interquartile range ÷ median_",
    ...METRICS.map((k) => (Number.isFinite(noise[k.key]) ? `${fmt(noise[k.key] * 100, 0)} %` : "–")),
  ]);
  const incomplete = points.filter((p) => results.get(p.key)!.some((m) => !m.complete)).map((p) => p.key);
  const verdicts = VARS.map((v) => verdict(v, defaults[v], points, results, margin));
  return [
    `Latest sweep: ${new Date().toISOString().slice(0, 10)}, ${src.label}, this machine (2 cores, shared with other work), ${fmt(info.minutes, 1)} min. Command:`,
    "",
    "```sh",
    info.command,
    "```",
    "",
    ...(nodelay
      ? [
          "Here every chat-node socket has TCP_NODELAY forced by a preload (`bench/src/probe/nodelay.ts`), as the",
          "fix proposed in docs/performance.md would do; chat-node itself is unchanged.",
          "",
        ]
      : []),
    `Each point: two fresh chat-nodes with the variables as shown (the others at chat-node's defaults, read`,
    `from its config.ts), a fresh database, a 40-message warm-up, then four loads: **steady** — ${info.steadyMessages}`,
    `messages from 40 users in groups of 8, 4 sends in flight each (the benchmark's load; throughput and`,
    `send→deliver); **idle** — 30 messages from one user of a group of 8, the next sent once all 8 sockets have`,
    `the last (one message in the system at a time); **light** — ${info.lightMessages} messages from 8 users in one group, one send`,
    `in flight each (paced by the ack, so one partition runs near its capacity); **backlog** — ${info.backlogMessages}`,
    "messages published straight into the 5 groups' partition queues at once (what an owner finds after a",
    "restart or a rebalance), throughput from the first publish to the last delivery. CPU ms/msg: CPU time of",
    "every server process (both chat-nodes, RabbitMQ, FerretDB, PostgreSQL and its backends, Redis; /proc)",
    "during that load, per message: it moves much less with the shared machine's other work than msgs/s do,",
    "and on 2 saturated cores it is what caps throughput. Each value is the median of a configuration's",
    `runs: ${rounds} rounds, each running the defaults first and again halfway, the alternatives around them,`,
    "every other round backwards, after one unrecorded warm-up point (the machine's disturbances come in",
    "bursts that spoil single runs; a median of several shrugs them off). (×r) is that median ÷ the defaults'",
    "median: above 1 is better for msgs/s, below 1 for CPU and latencies. A difference within the noise row",
    "(the defaults' own spread) or within 10 % is not read as one.",
    "",
    table(["configuration", ...METRICS.map((k) => k.label)], rows),
    ...(incomplete.length ? ["", `Deliveries were missing in: ${incomplete.join(", ")}.`] : []),
    "",
    "What the data says:",
    "",
    ...verdicts.map((v) => `- ${v}`),
  ].join("\n");
}

function verdict(
  v: Var,
  d: number,
  points: Point[],
  results: Map<string, Metrics[]>,
  margin: (k: MetricKey) => number,
): string {
  const parts: string[] = [];
  const kinds = new Map<string, "better" | "worse" | "mixed" | "same">();
  for (const p of points.filter((x) => x.variable === v)) {
    const gains: string[] = [];
    const losses: string[] = [];
    for (const k of METRICS) {
      const r = ratio(results, p.key, k.key);
      const change = k.higherIsBetter ? r - 1 : 1 - r;
      const text = `${k.label} ×${fmt(r, 2)}`;
      if (change > margin(k.key)) gains.push(text);
      else if (change < -margin(k.key)) losses.push(text);
    }
    const name = `${v}=${p.value}`;
    kinds.set(
      name,
      gains.length && losses.length ? "mixed" : gains.length ? "better" : losses.length ? "worse" : "same",
    );
    const said =
      gains.length === 0 && losses.length === 0
        ? "no different within the noise"
        : [
            gains.length ? `better on ${gains.join(", ")}` : "",
            losses.length ? `worse on ${losses.join(", ")}` : "",
          ]
            .filter(Boolean)
            .join(", ");
    parts.push(`${name} is ${said}`);
  }
  const of = (k: string) => [...kinds].filter(([, x]) => x === k).map(([n]) => n);
  const head = of("better").length
    ? `**${v}: the data does not support the default ${d}**: ${of("better").join(", ")} did better and nowhere worse`
    : of("mixed").length
      ? `**${v}: a trade-off around the default ${d}**: ${of("mixed").join(", ")} gained on some loads and lost on others`
      : of("worse").length
        ? `**${v}: the data supports the default ${d}**: no alternative beat it`
        : `**${v}: the data neither supports nor refutes the default ${d}**: no alternative differed beyond the noise`;
  return `${head}. ${parts.join("; ")}.`;
}
