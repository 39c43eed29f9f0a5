// Connection scale (issue 17, items 3 and 4): `npm run bench -- --connections [--scenario=idle] [--write]`.
// Starts real Redis, RabbitMQ and FerretDB, K chat-node processes splitting the partitions, a bare Socket.IO
// server (bare-server.ts), Centrifugo (centrifugo.ts; the two baselines) and client processes
// (client-fleet.ts), then, in one run:
//   1. the baselines: N/K WebSocket clients to the bare server (as many as each chat-node will hold), then
//      N/K to Centrifugo, each connected and subscribed to a channel of its own;
//   2. the chat: N clients, each its own user with a session token, spread evenly over the chat-nodes.
// For each server process: connect rate, RSS per connection (RSS after a settle period minus RSS before,
// ÷ connections) with the V8 heap's share, event-loop delay p99 while connecting and while idle, CPU; Redis
// commands per connection. Every process gets the open-files hard limit as its soft limit, which caps one
// process at about that many sockets: K defaults to N / 18,000 rounded up (at least 2). Targets only the
// 127.0.0.0/8 servers it started. Ctrl-C stops the run; everything started is stopped and removed.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  freePort,
  ManagedProcess,
  repoRoot,
  startMongo,
  startRabbitMQ,
  startRedis,
  tempDir,
  waitUntil,
} from "@vibetalk/testkit";
import type { BareCommand, BareReport } from "./bare-server.js";
import {
  ClientFleet,
  forkRaised,
  nextMessage,
  openFilesLimit,
  withOpenFilesRaised,
  type FleetTarget,
} from "./client-fleet.js";
import { startCentrifugo } from "./centrifugo.js";
import { cpuSeconds } from "./cpu.js";
import { heapDiff, takeHeapSnapshot, type HeapDelta } from "./heap-diff.js";
import { prepareDirect, type DirectOptions, type DirectResult } from "./direct.js";
import { flag, median, table, writeSection } from "./report.js";
import { chatNodeSource, chatNodeSpec } from "./snapshot.js";
import { writeSummary, type ScenarioSummary } from "./summary.js";

const num = (name: string, d: number): number => Number(process.env[name] ?? d);
const MiB = 1024 * 1024;

/** One server process's figures over one phase. */
interface ServerFigures {
  name: string;
  pid: number;
  nofile: string;
  connections: number;
  idleRssMiB: number;
  rssMiB: number;
  rssPerConnKiB: number;
  heapPerConnKiB: number;
  eventLoopP99ConnectMs: number;
  eventLoopP99IdleMs: number;
  cpuConnectS: number;
  cpuIdlePerSecond: number;
}

interface PhaseResult {
  target: number;
  connected: number;
  errors: number;
  errorSamples: string[];
  seconds: number;
  rate: number;
  dropped: number;
  servers: ServerFigures[];
  clientCpuS: number;
  /** Redis commands run during the connect phase and during the settle period, by command. */
  redisConnect?: [string, number][];
  redisIdle?: [string, number][];
  /** What grew on the first server's heap, per connection (BENCH_HEAP_SNAPSHOTS=1). */
  heap?: { name: string; totalPerConnection: number; rows: HeapDelta[] };
}

interface Probe {
  name: string;
  pid: number;
  /** Memory and event-loop delay since the last call (which resets it). */
  stats(): Promise<{ rss: number; heapUsed: number; eventLoopP99Ms: number; connections: number }>;
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) * 1024;
}

/** A Prometheus sample by metric name (the first series). */
function sample(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return Number(m?.[1] ?? NaN);
}

/** Calls per Redis command so far (INFO commandstats), over a raw RESP connection. */
function redisCommandStats(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let buf = "";
    s.setTimeout(5000, () => s.destroy(new Error("redis INFO timed out")));
    s.on("data", (d) => {
      buf += d.toString();
      const len = /^\$(\d+)\r\n/.exec(buf);
      if (!len || Buffer.byteLength(buf) < len[0].length + Number(len[1])) return;
      const calls = new Map<string, number>();
      for (const m of buf.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
      resolve(calls);
      s.end();
    });
    s.on("error", reject);
    s.write("INFO commandstats\r\n");
  });
}

/** b − a per command, largest first. */
function commandDelta(a: Map<string, number>, b: Map<string, number>): [string, number][] {
  return [...b]
    .map(([k, v]): [string, number] => [k, v - (a.get(k) ?? 0)])
    .filter(([, v]) => v > 0)
    .sort((x, y) => y[1] - x[1]);
}

interface ChatNodeProc {
  proc: ManagedProcess;
  url: string;
  opsUrl: string;
}

/** K chat-nodes as chat.ts starts them (tsx, partitions split), each with an ops port and the limit raised. */
async function startNodes(
  k: number,
  env: Record<string, string>,
  chatNodeDir: string,
  logDir: string,
): Promise<ChatNodeProc[]> {
  return Promise.all(
    Array.from({ length: k }, async (_, i) => {
      const [port, opsPort] = [await freePort(), await freePort()];
      const from = Math.floor((i * 64) / k);
      const to = Math.floor(((i + 1) * 64) / k) - 1;
      const c = withOpenFilesRaised(process.execPath, ["--import", "tsx", join(chatNodeDir, "src/main.ts")]);
      const proc = new ManagedProcess({
        name: `chat-node-${i}`,
        ...c,
        cwd: repoRoot,
        logFile: join(logDir, `chat-node-${i}.log`),
        env: {
          ...process.env,
          ...env,
          PORT: String(port),
          HOST: "127.0.0.1",
          OPS_PORT: String(opsPort),
          OPS_HOST: "127.0.0.1",
          NODE_ID: `conn-${i}`,
          OWNED_PARTITIONS: `${from}-${to}`,
          LOG_LEVEL: "warn",
        },
      });
      const opsUrl = `http://127.0.0.1:${opsPort}`;
      await waitUntil(`chat-node-${i}`, proc, async () => (await fetch(`${opsUrl}/readyz`)).ok, 120_000, 250);
      return { proc, url: `http://127.0.0.1:${port}`, opsUrl };
    }),
  );
}

function chatNodeProbe(n: ChatNodeProc, i: number): Probe {
  return {
    name: `chat-node ${i}`,
    pid: n.proc.pid!,
    async stats() {
      const text = await (await fetch(`${n.opsUrl}/metrics`)).text();
      return {
        rss: rssBytes(n.proc.pid!),
        heapUsed: sample(text, "vibetalk_process_nodejs_heap_size_used_bytes"),
        eventLoopP99Ms: sample(text, "vibetalk_process_nodejs_eventloop_lag_p99_seconds") * 1000,
        connections: sample(text, "vibetalk_connections"),
      };
    },
  };
}

/** Runs one phase: the fleet opens `plan` against `probes`' servers, settles, and is closed again. */
async function phase(
  label: string,
  fleet: ClientFleet,
  plan: FleetTarget[][],
  probes: Probe[],
  o: {
    addresses: string[];
    concurrency: number;
    timeoutMs: number;
    settleS: number;
    deadlineS: number;
    /** Heap snapshots of the first server before and after (BENCH_HEAP_SNAPSHOTS=1): where they go. */
    snapshotDir?: string;
  },
  redisPort?: number,
  /** Runs while the clients are held, after the figures are read (the `direct` load). */
  during?: () => Promise<void>,
): Promise<PhaseResult> {
  const target = plan.flat().reduce((a, t) => a + t.count, 0);
  const fleetPids = fleet.procs.map((p) => p.pid);
  const before = await Promise.all(probes.map((p) => p.stats())); // also resets the event-loop histograms
  const snapBefore = o.snapshotDir ? await takeHeapSnapshot(probes[0]!.pid, o.snapshotDir) : undefined;
  const cpu0 = await Promise.all(probes.map((p) => cpuSeconds([p.pid])));
  const clientCpu0 = await cpuSeconds(fleetPids);
  const redis0 = redisPort ? await redisCommandStats(redisPort) : undefined;
  let last = { t: performance.now(), n: 0 };
  console.log(`[connections] ${label}: opening ${target} WebSocket clients…`);
  const deadline = sleep(o.deadlineS * 1000, "deadline" as const, { ref: false });
  const connecting = fleet.connect(plan, o, (connected, errors) => {
    const t = performance.now();
    const rate = ((connected - last.n) * 1000) / (t - last.t);
    last = { t, n: connected };
    console.log(
      `[connections] ${label}: ${connected}/${target} connected, ${rate.toFixed(0)}/s, ${errors} errors`,
    );
  });
  const r = await Promise.race([connecting, deadline]);
  if (r === "deadline")
    throw new Error(`${label}: not all connected within ${o.deadlineS} s (BENCH_DEADLINE_S)`);
  const atConnected = await Promise.all(probes.map((p) => p.stats()));
  const cpu1 = await Promise.all(probes.map((p) => cpuSeconds([p.pid])));
  const clientCpu1 = await cpuSeconds(fleetPids);
  const redis1 = redisPort ? await redisCommandStats(redisPort) : undefined;
  console.log(
    `[connections] ${label}: ${r.connected} connected in ${r.seconds.toFixed(1)} s (${(r.connected / r.seconds).toFixed(0)}/s), ${r.errors} errors; settling ${o.settleS} s…`,
  );
  await sleep(o.settleS * 1000);
  const after = await Promise.all(probes.map((p) => p.stats()));
  const cpu2 = await Promise.all(probes.map((p) => cpuSeconds([p.pid])));
  const redis2 = redisPort ? await redisCommandStats(redisPort) : undefined;
  const snapAfter = o.snapshotDir ? await takeHeapSnapshot(probes[0]!.pid, o.snapshotDir) : undefined;
  if (during) await during();
  const dropped = await fleet.disconnect();
  const servers = probes.map((p, i): ServerFigures => {
    const n = after[i]!.connections - before[i]!.connections;
    return {
      name: p.name,
      pid: p.pid,
      nofile: openFilesLimit(p.pid).soft,
      connections: n,
      idleRssMiB: before[i]!.rss / MiB,
      rssMiB: after[i]!.rss / MiB,
      rssPerConnKiB: (after[i]!.rss - before[i]!.rss) / n / 1024,
      heapPerConnKiB: (after[i]!.heapUsed - before[i]!.heapUsed) / n / 1024,
      eventLoopP99ConnectMs: atConnected[i]!.eventLoopP99Ms,
      eventLoopP99IdleMs: after[i]!.eventLoopP99Ms,
      cpuConnectS: cpu1[i]! - cpu0[i]!,
      cpuIdlePerSecond: (cpu2[i]! - cpu1[i]!) / o.settleS,
    };
  });
  const heap =
    snapBefore && snapAfter
      ? await heapDiff(snapBefore, snapAfter, after[0]!.connections - before[0]!.connections)
      : undefined;
  return {
    ...(heap ? { heap: { name: probes[0]!.name, ...heap } } : {}),
    target,
    connected: r.connected,
    errors: r.errors,
    errorSamples: r.errorSamples,
    seconds: r.seconds,
    rate: r.connected / r.seconds,
    dropped,
    servers,
    clientCpuS: clientCpu1 - clientCpu0,
    ...(redis0 && redis1 && redis2
      ? { redisConnect: commandDelta(redis0, redis1), redisIdle: commandDelta(redis1, redis2) }
      : {}),
  };
}

/** Splits `total` clients over `procs` client processes and `urls` evenly (remainders to the first ones). */
function spread(
  total: number,
  procs: number,
  urls: string[],
  extra: Partial<FleetTarget> = {},
): FleetTarget[][] {
  const share = (n: number, parts: number, i: number) => Math.floor(n / parts) + (i < n % parts ? 1 : 0);
  return Array.from({ length: procs }, (_, p) => {
    const mine = share(total, procs, p);
    return urls
      .map((url, u) => ({
        url,
        count: share(mine, urls.length, (u + p) % urls.length),
        ...extra,
      }))
      .filter((t) => t.count > 0);
  });
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "–");
const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "–");
/** The BENCH_* variables of this run, as they were set (BENCH_CONNECTIONS always). */
const benchEnv = () =>
  Object.entries({ BENCH_CONNECTIONS: process.env.BENCH_CONNECTIONS ?? "20000", ...process.env })
    .filter(([k]) => k.startsWith("BENCH_"))
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
const sum = (xs: [string, number][]) => xs.reduce((a, [, v]) => a + v, 0);
const top = (xs: [string, number][], per: number) =>
  xs
    .slice(0, 6)
    .map(([k, v]) => `${k} ${(v / per).toFixed(3)}`)
    .join(", ");

export async function runConnectionsBench(argv: string[]): Promise<void> {
  const scenario = flag(argv, "scenario") ?? "idle";
  if (scenario !== "idle" && scenario !== "direct")
    throw new Error(`--scenario=${scenario}: "idle" and "direct" are built so far`);
  const directOptions: DirectOptions = {
    pairs: num("BENCH_PAIRS", 100),
    rate: num("BENCH_DIRECT_RATE", 50),
    seconds: num("BENCH_DIRECT_SECONDS", 30),
  };
  const n = num("BENCH_CONNECTIONS", 20_000);
  const perProcess = num("BENCH_CLIENTS_PER_PROCESS", 18_000);
  const k = num("BENCH_NODES", Math.max(2, Math.ceil(n / perProcess)));
  const fleetProcs = Math.max(1, Math.ceil(n / perProcess));
  const addressCount = num("BENCH_SOURCE_ADDRESSES", Math.max(4, Math.ceil(n / 10_000)));
  const addresses = Array.from({ length: addressCount }, (_, i) => `127.0.0.${i + 2}`);
  const o = {
    addresses,
    concurrency: num("BENCH_CONCURRENCY", 64),
    timeoutMs: 30_000,
    settleS: num("BENCH_SETTLE_S", 15),
    deadlineS: num("BENCH_DEADLINE_S", 600),
  };
  const perNode = Math.ceil(n / k);
  const src = await chatNodeSource(chatNodeSpec(argv));
  const mine = openFilesLimit("self");
  console.log(
    `[connections] ${src.label}; ${n} connections over ${k} chat-nodes (${perNode} each), baselines ${perNode} to a bare Socket.IO server and ${perNode} to Centrifugo; ${fleetProcs} client processes, source addresses ${addresses[0]}–${addresses.at(-1)}; open files here ${mine.soft} (hard ${mine.hard})`,
  );
  if (Number(mine.hard) < perNode + 500)
    console.log(
      `[connections] the hard open-files limit ${mine.hard} is below the ${perNode} sockets each server holds: expect EMFILE (raise BENCH_NODES)`,
    );

  const stopping: (() => Promise<void> | void)[] = [];
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.log("[connections] interrupted: stopping everything (Ctrl-C again to kill)…");
    void cleanUp().then(() => process.exit(130));
  };
  const cleanUp = async () => {
    for (const s of stopping.splice(0).reverse()) await Promise.resolve(s()).catch(() => undefined);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    console.log("[connections] starting Redis, RabbitMQ, FerretDB…");
    const [redis, rabbit, mongo] = await Promise.all([startRedis(), startRabbitMQ(), startMongo()]);
    stopping.push(() => Promise.all([redis.stop(), rabbit.stop(), mongo.stop()]).then(() => undefined));
    const logs = await tempDir("bench-connections");
    stopping.push(() => logs.remove());
    const snapshotDir = process.env.BENCH_HEAP_SNAPSHOTS === "1" ? logs.path : undefined;
    const snapEnv: Record<string, string> = snapshotDir
      ? {
          NODE_OPTIONS:
            `${process.env.NODE_OPTIONS ?? ""} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`.trim(),
        }
      : {};
    const jwtSecret = randomBytes(24).toString("hex");
    console.log(
      `[connections] starting ${k} chat-nodes, the bare Socket.IO server, Centrifugo, ${fleetProcs} client processes…`,
    );
    const procs: ManagedProcess[] = [];
    stopping.push(() => Promise.all(procs.map((p) => p.stop(30_000))).then(() => undefined));
    const bare = forkRaised("bare-server.ts", { ...process.env, ...snapEnv });
    stopping.push(() => void bare.kill("SIGKILL"));
    const barePort = await nextMessage<BareReport, number>(
      bare,
      (m) => (m.t === "listening" ? m.port : undefined),
      60_000,
    );
    const fleet = await ClientFleet.start(fleetProcs);
    stopping.push(() => fleet.stop());
    const nodes = await startNodes(
      k,
      {
        REDIS_URL: redis.url,
        RABBITMQ_URL: rabbit.url,
        MONGODB_URL: mongo.url,
        JWT_SECRET: jwtSecret,
        ...snapEnv,
      },
      src.dir,
      logs.path,
    );
    procs.push(...nodes.map((x) => x.proc));
    const cf = await startCentrifugo(logs.path);
    procs.push(cf.proc);
    const cfProbe: Probe = {
      name: cf.binary,
      pid: cf.proc.pid!,
      async stats() {
        return {
          rss: rssBytes(cf.proc.pid!),
          heapUsed: NaN,
          eventLoopP99Ms: NaN,
          connections: await cf.clients(),
        };
      },
    };
    const bareProbe: Probe = {
      name: "bare Socket.IO",
      pid: bare.pid!,
      async stats() {
        bare.send({ t: "stats" } satisfies BareCommand);
        return nextMessage<BareReport, BareReport & { t: "stats" }>(
          bare,
          (m) => (m.t === "stats" ? m : undefined),
          30_000,
        );
      },
    };
    console.log(
      `[connections] open files: client processes ${fleet.procs.map((p) => p.nofile.soft).join(", ")}; chat-nodes ${nodes.map((x) => openFilesLimit(x.proc.pid!).soft).join(", ")}; bare ${openFilesLimit(bare.pid!).soft}; Centrifugo ${openFilesLimit(cf.proc.pid!).soft}`,
    );
    await sleep(5000); // the same quiet start for every server before its idle RSS is read
    const baseline = await phase(
      "bare Socket.IO",
      fleet,
      spread(perNode, fleetProcs, [`http://127.0.0.1:${barePort}`]),
      [bareProbe],
      { ...o, snapshotDir },
    );
    const centrifugo = await phase(
      "Centrifugo",
      fleet,
      spread(perNode, fleetProcs, [cf.wsUrl], { centrifugo: true }),
      [cfProbe],
      o,
    );
    let direct: { quiet: DirectResult; loaded?: DirectResult; options: DirectOptions } | undefined;
    let during: (() => Promise<void>) | undefined;
    if (scenario === "direct") {
      console.log(`[connections] direct: registering ${directOptions.pairs} pairs of users…`);
      const d = await prepareDirect(
        nodes.map((x) => x.url),
        directOptions.pairs,
      );
      stopping.push(() => d.close());
      console.log(
        `[connections] direct, no other connections (the baseline): ${directOptions.rate} messages/s for ${directOptions.seconds} s…`,
      );
      direct = { quiet: await d.run(directOptions), options: directOptions };
      during = async () => {
        console.log(`[connections] direct, beside the ${n} idle connections: the same load…`);
        direct!.loaded = await d.run(directOptions);
      };
    }
    const chat = await phase(
      "chat-nodes",
      fleet,
      spread(
        n,
        fleetProcs,
        nodes.map((x) => x.url),
        { jwtSecret },
      ),
      nodes.map(chatNodeProbe),
      { ...o, snapshotDir },
      redis.port,
      during,
    );
    const body = connectionsSection(
      {
        n,
        k,
        perNode,
        fleetProcs,
        addresses,
        concurrency: o.concurrency,
        settleS: o.settleS,
        src: src.label,
        nofile: mine,
        scenario,
      },
      baseline,
      centrifugo,
      chat,
      direct,
    );
    console.log(body);
    await writeSummary(argv, ...connectionsSummaries(n, baseline, centrifugo, chat, direct));
    if (argv.includes("--write")) {
      // The standard set's size (10,000) has its section; another size keeps its own beside it.
      const heading = n === 10_000 ? "Connection scale" : `Connection scale at ${n} connections`;
      await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading, body });
      console.log(`[connections] wrote the ${heading} section of bench/RESULTS.md`);
    }
  } finally {
    await cleanUp();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

interface RunInfo {
  n: number;
  k: number;
  perNode: number;
  fleetProcs: number;
  addresses: string[];
  concurrency: number;
  settleS: number;
  src: string;
  nofile: { soft: string; hard: string };
  scenario: string;
}

function heapSection(bare: PhaseResult, chat: PhaseResult): string[] {
  if (!bare.heap || !chat.heap) return [];
  const kinds = [...new Set([...chat.heap.rows, ...bare.heap.rows].map((r) => r.kind))];
  const get = (p: PhaseResult, k: string) => p.heap!.rows.find((r) => r.kind === k);
  const cell = (d?: HeapDelta) =>
    d ? `${f1(d.bytesPerConnection / 1024)} (${d.countPerConnection.toFixed(1)})` : "";
  return [
    `Heap snapshots (BENCH_HEAP_SNAPSHOTS=1; a diagnostic run, the snapshots stop the process for seconds): what`,
    `grew on the heap of ${bare.heap.name} and ${chat.heap.name}, KiB per connection (objects per connection), by node type and constructor:`,
    "",
    table(
      ["kind", bare.heap.name, chat.heap.name],
      [
        ["all", f1(bare.heap.totalPerConnection / 1024), f1(chat.heap.totalPerConnection / 1024)],
        ...kinds.map((k) => [k, cell(get(bare, k)), cell(get(chat, k))]),
      ],
    ),
    "",
  ];
}

function directSection(
  d: { quiet: DirectResult; loaded?: DirectResult; options: DirectOptions },
  n: number,
): string[] {
  const q = d.quiet;
  const l = d.loaded;
  const row = (
    name: string,
    f: (r: DirectResult) => string,
    ratio?: (a: DirectResult, b: DirectResult) => number,
  ) => [name, f(q), l ? f(l) : "–", l && ratio ? ratio(l, q).toFixed(2) : ""];
  const lat = (s: DirectResult["sendToAck"]) => `${f1(s.p50)} / ${f1(s.p99)} ms`;
  return [
    "",
    `Scenario \`direct\`: ${d.options.pairs} pairs of registered users, the two of a pair on different chat-nodes, one direct`,
    `channel each, ${d.options.rate} messages/s in all for ${d.options.seconds} s (round robin over the pairs, alternating sender),`,
    "from sockets in the benchmark process (one clock); send→deliver at the peer's socket. The baseline is the same",
    `load in the same run with no other connection open; then again while the ${n} idle clients above are held.`,
    "",
    table(
      ["direct", "no other connections", `beside ${n} idle connections`, "ratio"],
      [
        row("messages sent / acked / refused", (r) => `${r.sent} / ${r.acked} / ${r.refused}`),
        row("messages/s sent", (r) => f1(r.messagesPerSecond)),
        row(
          "send→ack p50 / p99",
          (r) => lat(r.sendToAck),
          (a, b) => a.sendToAck.p99 / b.sendToAck.p99,
        ),
        row(
          "send→deliver p50 / p99",
          (r) => lat(r.sendToDeliver),
          (a, b) => a.sendToDeliver.p99 / b.sendToDeliver.p99,
        ),
        row("send→deliver max", (r) => `${f1(r.sendToDeliver.max)} ms`),
        row(
          "lost / duplicated / reordered (deliveries)",
          (r) => `${r.lost} / ${r.duplicated} / ${r.reordered}`,
        ),
      ],
    ),
    "",
    "(ratio: p99 beside the idle connections ÷ p99 without them.)",
  ];
}

export function connectionsSection(
  r: RunInfo,
  bare: PhaseResult,
  cfp: PhaseResult,
  chat: PhaseResult,
  direct?: { quiet: DirectResult; loaded?: DirectResult; options: DirectOptions },
): string {
  const b = bare.servers[0]!;
  const c = cfp.servers[0]!;
  const perHandshake = (s: ServerFigures) => (s.cpuConnectS * 1e6) / s.connections;
  const chatCpu = median(chat.servers.map(perHandshake));
  const ratios = (x: number, bx: number, cx: number) => [(x / bx).toFixed(2), (x / cx).toFixed(2)];
  const chatRss = median(chat.servers.map((s) => s.rssPerConnKiB));
  const chatRatePerNode = chat.rate / r.k;
  const rows = (p: PhaseResult) =>
    p.servers.map((s) => [
      s.name,
      f0(s.connections),
      s.nofile,
      f0(s.idleRssMiB),
      f0(s.rssMiB),
      f1(s.rssPerConnKiB),
      f1(s.heapPerConnKiB),
      f1(s.eventLoopP99ConnectMs),
      f1(s.eventLoopP99IdleMs),
      f1(s.cpuConnectS),
      `${f1((s.cpuConnectS * 1e6) / s.connections)} µs`,
      `${f1(s.cpuIdlePerSecond * 100)} %`,
    ]);
  const maxLoop = Math.max(
    ...chat.servers.map((s) => Math.max(s.eventLoopP99ConnectMs, s.eventLoopP99IdleMs)),
  );
  return [
    `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${r.src}, this machine (2 cores, 24 GiB, shared with other sessions' tests). Command:`,
    "",
    "```sh",
    `${benchEnv()} npm run bench -- --connections --scenario=${r.scenario} --write`,
    "```",
    "",
    `${r.k} chat-nodes (\`node --import tsx\`, real Redis, RabbitMQ, FerretDB, the 64 partitions split) hold ${r.n} WebSocket`,
    `clients, each its own user with a session token; the baseline, in the same run and before them, is a bare Socket.IO`,
    `server (same Node.js, run the same way, no auth, adapter or handlers) holding ${r.perNode} clients, as many as each`,
    `chat-node; then ${cfp.servers[0]!.name} (built by scripts/centrifugo; \`client_insecure\`, JSON protocol over WebSocket)`,
    `holding as many, each client connected and subscribed to a channel of its own (\`u<i>\`; its heap and event loop`,
    `are not measured: "–"). Clients: ${r.fleetProcs} child processes, ${r.concurrency} handshakes in flight each, bound to source addresses`,
    `${r.addresses[0]}–${r.addresses.at(-1)}. Open-files limit: each process raises its soft limit to the hard limit, here ${r.nofile.hard},`,
    `which caps one process at about that many sockets (an unprivileged process cannot raise the hard limit). RSS per`,
    `connection: RSS ${r.settleS} s after the last handshake minus RSS just before the first, ÷ that process's connections; heap:`,
    "the same for V8's used heap (so RSS − heap is sockets, buffers and native memory). Event-loop p99: perf_hooks at 10 ms",
    "resolution (chat-node's `vibetalk_process_nodejs_eventloop_lag_p99_seconds`), over the connect phase and over the settle",
    "period. CPU from /proc. Ratios: chat-node median over the baseline.",
    "",
    table(
      ["", "bare Socket.IO", "Centrifugo", "chat-nodes", "ratio chat ÷ bare", "ratio chat ÷ Centrifugo"],
      [
        [
          "connections open / asked",
          `${bare.connected} / ${bare.target}`,
          `${cfp.connected} / ${cfp.target}`,
          `${chat.connected} / ${chat.target}`,
          "",
          "",
        ],
        [
          "handshake errors; dropped before close",
          `${bare.errors}; ${bare.dropped}`,
          `${cfp.errors}; ${cfp.dropped}`,
          `${chat.errors}; ${chat.dropped}`,
          "",
          "",
        ],
        [
          "connect rate, all processes (connections/s)",
          f0(bare.rate),
          f0(cfp.rate),
          f0(chat.rate),
          ...ratios(chat.rate, bare.rate, cfp.rate),
        ],
        [
          "connect rate per server process (connections/s)",
          f0(bare.rate),
          f0(cfp.rate),
          f0(chatRatePerNode),
          ...ratios(chatRatePerNode, bare.rate, cfp.rate),
        ],
        [
          "RSS per connection (KiB; chat: median over nodes)",
          f1(b.rssPerConnKiB),
          f1(c.rssPerConnKiB),
          f1(chatRss),
          ...ratios(chatRss, b.rssPerConnKiB, c.rssPerConnKiB),
        ],
        [
          "V8 heap per connection (KiB)",
          f1(b.heapPerConnKiB),
          "–",
          f1(median(chat.servers.map((s) => s.heapPerConnKiB))),
          "",
          "",
        ],
        [
          "server CPU per handshake (µs)",
          f1(perHandshake(b)),
          f1(perHandshake(c)),
          f1(chatCpu),
          ...ratios(chatCpu, perHandshake(b), perHandshake(c)),
        ],
        [
          "client processes' CPU over the connect phase (s)",
          f1(bare.clientCpuS),
          f1(cfp.clientCpuS),
          f1(chat.clientCpuS),
          "",
          "",
        ],
        [
          "Redis commands per connection during the connect phase",
          "–",
          "–",
          chat.redisConnect ? f1(sum(chat.redisConnect) / chat.connected) : "–",
          "",
          "",
        ],
        [
          "Redis commands per connection per second while idle",
          "–",
          "–",
          chat.redisIdle ? (sum(chat.redisIdle) / chat.connected / r.settleS).toFixed(3) : "–",
          "",
          "",
        ],
      ],
    ),
    "",
    table(
      [
        "process",
        "connections",
        "open files",
        "RSS before MiB",
        "RSS after MiB",
        "RSS/conn KiB",
        "heap/conn KiB",
        "loop p99 connecting ms",
        "loop p99 idle ms",
        "CPU connecting s",
        "CPU/handshake",
        "CPU idle",
      ],
      [...rows(bare), ...rows(cfp), ...rows(chat)],
    ),
    "",
    ...(chat.redisIdle && chat.redisConnect
      ? [
          `Redis commands by kind, per connection — while connecting: ${top(chat.redisConnect, chat.connected)}; idle, per second: ${top(chat.redisIdle, chat.connected * r.settleS)}.`,
          "",
        ]
      : []),
    ...heapSection(bare, chat),
    "Targets of issue 17, item 5:",
    "",
    `- ${r.n} connections across the chat-nodes of one machine: ${chat.connected >= 100_000 ? "met" : `not met in this run (${chat.connected} held; 100,000 is the target)`}.`,
    `- Event-loop p99 ≤ 50 ms on each chat-node: ${maxLoop <= 50 ? "met" : "not met"} (worst ${f1(maxLoop)} ms).`,
    `- Memory per connection ≤ 1.25× bare Socket.IO: ${chatRss / b.rssPerConnKiB <= 1.25 ? "met" : "not met"} (${(chatRss / b.rssPerConnKiB).toFixed(2)}×).`,
    `- Memory per connection ≤ 0.55× Centrifugo: ${chatRss / c.rssPerConnKiB <= 0.55 ? "met" : "not met"} (${(chatRss / c.rssPerConnKiB).toFixed(2)}×).`,
    ...(direct ? directSection(direct, r.n) : []),
    ...(direct
      ? [
          "",
          `- Zero lost, duplicated or reordered (direct): ${[direct.quiet, direct.loaded].every((x) => x && x.lost + x.duplicated + x.reordered === 0) ? "met" : "not met"}.`,
        ]
      : []),
    ...(chat.errorSamples.length ? ["", `Handshake errors seen: ${chat.errorSamples.join("; ")}`] : []),
  ].join("\n");
}

/** The standard set's rows (summary.ts): idle connections against both baselines, and direct beside them. */
function connectionsSummaries(
  n: number,
  bare: PhaseResult,
  cf: PhaseResult,
  chat: PhaseResult,
  direct?: { quiet: DirectResult; loaded?: DirectResult; options: DirectOptions },
): ScenarioSummary[] {
  const rss = median(chat.servers.map((s) => s.rssPerConnKiB));
  const bareRss = bare.servers[0]!.rssPerConnKiB;
  const cfRss = cf.servers[0]!.rssPerConnKiB;
  const loop = Math.max(...chat.servers.map((s) => Math.max(s.eventLoopP99ConnectMs, s.eventLoopP99IdleMs)));
  const idle: ScenarioSummary = {
    scenario: "idle",
    load: `${n} WebSocket clients over ${chat.servers.length} chat-nodes, connected at ${chat.rate.toFixed(0)}/s`,
    connections: chat.connected,
    rssPerConnectionKiB: rss,
    loopP99Ms: loop,
    ratios: {
      "RSS/conn ÷ bare Socket.IO": rss / bareRss,
      "÷ Centrifugo": rss / cfRss,
      "connect rate ÷ bare": chat.rate / bare.rate,
    },
    targets: [
      {
        target: "event-loop p99 ≤ 50 ms on each chat-node",
        measured: `${loop.toFixed(1)} ms`,
        met: loop <= 50,
      },
      {
        target: "memory per connection ≤ 1.25× bare Socket.IO",
        measured: `${(rss / bareRss).toFixed(2)}×`,
        met: rss / bareRss <= 1.25,
      },
      {
        target: "memory per connection ≤ 0.55× Centrifugo",
        measured: `${(rss / cfRss).toFixed(2)}×`,
        met: rss / cfRss <= 0.55,
      },
    ],
    notes: chat.errors + chat.dropped > 0 ? [`${chat.errors} handshake errors, ${chat.dropped} dropped`] : [],
  };
  if (!direct?.loaded) return [idle];
  const d = direct.loaded;
  const q = direct.quiet;
  return [
    idle,
    {
      scenario: "direct",
      load: `${direct.options.pairs} pairs on different chat-nodes, ${direct.options.rate} msg/s, beside the ${n} idle clients`,
      accepted: d.acked / direct.options.seconds,
      delivered: (d.acked - d.lost) / direct.options.seconds,
      sendToAck: d.sendToAck,
      sendToDeliver: d.sendToDeliver,
      lost: d.lost,
      duplicated: d.duplicated,
      reordered: d.reordered,
      ratios: { "send→deliver p99 ÷ without the idle clients": d.sendToDeliver.p99 / q.sendToDeliver.p99 },
    },
  ];
}
