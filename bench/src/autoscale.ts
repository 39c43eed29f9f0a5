// Autoscaling on live connections (issue 17, item 4): `npm run bench -- --scenario=autoscale [--write]`.
// On the real node (e2e's startVibeTalkCluster) a ChatCluster with spec.autoscaling on (the HPA reads the
// operator's External metric `vibetalk_connections`, docs/operator.md "HPA behaviour") and spec.rebalance on.
// A steady sender (10 msg/s) runs throughout; Socket.IO clients in this process ramp up in steps past the
// target, hold, and ramp down. Measured per HPA decision: load crossing the target → decision → pods Ready
// (or gone) → every pod within ±20 % of the average; send→deliver per phase beside the baseline phase before
// the ramp; messages acked / stored / delivered / lost / duplicated / reordered; the pods' counts per phase.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { repoRoot } from "@vibetalk/testkit";
import {
  cachedNodes,
  clientsOf,
  connectAll,
  describeCounts,
  podCounts,
  registerMany,
  withinBand,
} from "../../e2e/src/balance.js";
import { startVibeTalkCluster, type VibeTalkCluster } from "../../e2e/src/index.js";
import { createGroup, history, register, RoamingClient, SteadySender } from "../../e2e/src/traffic.js";
import { table, writeSection } from "./report.js";
import { writeSummary, type ScenarioSummary } from "./summary.js";
import { ms, summarize } from "./stats.js";

const num = (name: string, d: number): number => Number(process.env[name] ?? d);
const log = (m: string): void => console.log(`[bench] ${m}`);

interface Sample {
  t: number;
  phase: string;
  /** Sockets of this process that are connected. */
  connected: number;
  /** The HPA's status.desiredReplicas (0 before its first sync). */
  desired: number;
  /** `vibetalk.io/connections` of the Ready, non-terminating pods. */
  counts: Record<string, number>;
  /** chat-node pods that exist at all (terminating ones included). */
  pods: number;
}

interface ScaleEvent {
  from: number;
  to: number;
  decisionAt: number;
  crossingAt?: number;
  readyAt?: number;
  balancedAt?: number;
}

class AutoscaleError extends Error {}

/** The load crossing of each HPA decision, the pods Ready (up) or gone (down), and the balance, from the samples. */
export function scaleEvents(samples: Sample[], target: number, tolerance = 0.2): ScaleEvent[] {
  const events: ScaleEvent[] = [];
  for (let i = 1; i < samples.length; i++) {
    const [prev, cur] = [samples[i - 1]!, samples[i]!];
    if (prev.desired > 0 && cur.desired !== prev.desired)
      events.push({ from: prev.desired, to: cur.desired, decisionAt: cur.t });
  }
  events.forEach((e, k) => {
    const up = e.to > e.from;
    // up: the total passed what the current pods are meant to hold; down: it fell to what fewer pods hold
    const level = up ? e.from * target : e.to * target;
    const above = (s: Sample) => s.connected > level;
    for (let i = samples.length - 1; i > 0; i--) {
      const [prev, cur] = [samples[i - 1]!, samples[i]!];
      if (cur.t > e.decisionAt) continue;
      if (up ? !above(prev) && above(cur) : above(prev) && !above(cur)) {
        e.crossingAt = cur.t;
        break;
      }
    }
    const until = events[k + 1]?.decisionAt ?? Number.POSITIVE_INFINITY;
    const after = samples.filter((s) => s.t >= e.decisionAt && s.t < until);
    e.readyAt = after.find((s) => (up ? Object.keys(s.counts).length >= e.to : s.pods <= e.to))?.t;
    e.balancedAt = after.find((s) => {
      const sum = Object.values(s.counts).reduce((a, b) => a + b, 0);
      return (
        Object.keys(s.counts).length === e.to &&
        s.pods === e.to &&
        Math.abs(sum - s.connected) <= Math.max(5, s.connected * 0.01) &&
        withinBand(s.counts, tolerance)
      );
    })?.t;
  });
  return events;
}

const secs = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined ? "–" : `${((b - a) / 1000).toFixed(1)} s`;

/** Stored, delivered, lost, duplicated and reordered messages of the steady sender, over the reader sockets. */
async function deliveryCounts(
  url: string,
  reader: { id: string; token: string },
  readers: RoamingClient[],
  steady: SteadySender,
  channels: string[],
  phaseAt: (t: number) => string,
) {
  const acked = steady.sent.filter((s) => s.acked);
  const sentAt = new Map(steady.sent.map((s, i) => [s.clientMsgId, { at: s.sentAt, index: i }]));
  let stored = 0;
  let delivered = 0;
  let missing = 0;
  let duplicated = 0;
  let reordered = 0;
  const latency = new Map<string, number[]>();
  const storedIds = new Set<string>();
  for (const channelId of channels) {
    const messages = await history(url, reader, channelId);
    stored += messages.length;
    for (const m of messages) storedIds.add(m.clientMsgId);
    const ids = messages.map((m) => m.clientMsgId);
    duplicated += ids.length - new Set(ids).size;
    messages.forEach((m, i) => {
      const prev = messages[i - 1];
      const out =
        m.seq !== i + 1 ||
        (prev && (sentAt.get(prev.clientMsgId)?.index ?? -1) > (sentAt.get(m.clientMsgId)?.index ?? -1));
      if (out) reordered += 1;
    });
    for (const r of readers) {
      const seen = new Map<number, string>();
      for (const m of r.received.filter((x) => x.channelId === channelId)) {
        if (seen.has(m.seq) && seen.get(m.seq) !== m.clientMsgId) duplicated += 1;
        seen.set(m.seq, m.clientMsgId);
      }
      for (const m of messages) {
        const at = r.firstSeen.get(`${channelId}:${m.seq}`);
        if (at === undefined) {
          missing += 1;
          continue;
        }
        delivered += 1;
        const sent = sentAt.get(m.clientMsgId);
        if (!sent) continue;
        const phase = phaseAt(sent.at);
        latency.set(phase, [...(latency.get(phase) ?? []), at - sent.at]);
      }
    }
  }
  const notStored = acked.filter((s) => !storedIds.has(s.clientMsgId)).length;
  return {
    acked: acked.length,
    retried: steady.sent.filter((s) => s.attempts > 1).length,
    stored,
    delivered,
    expected: stored * readers.length,
    lost: notStored + missing,
    duplicated,
    reordered,
    latency,
  };
}

export async function runAutoscaleBench(argv: string[]): Promise<void> {
  const min = num("BENCH_AUTOSCALE_MIN", 2);
  const max = num("BENCH_AUTOSCALE_MAX", 4);
  const target = num("BENCH_AUTOSCALE_TARGET", 1000);
  const start = num("BENCH_AUTOSCALE_START", 1000);
  const peak = num("BENCH_AUTOSCALE_PEAK", 3500);
  const end = num("BENCH_AUTOSCALE_END", 1500);
  const step = num("BENCH_AUTOSCALE_STEP", 500);
  const stepSeconds = num("BENCH_AUTOSCALE_STEP_SECONDS", 10);
  const holdSeconds = num("BENCH_AUTOSCALE_HOLD_SECONDS", 20);
  const baselineSeconds = num("BENCH_AUTOSCALE_BASELINE_SECONDS", 20);
  const downWindow = num("BENCH_AUTOSCALE_DOWN_WINDOW_SECONDS", 30);
  const users = num("BENCH_AUTOSCALE_USERS", 40);
  const deadlineSeconds = num("BENCH_AUTOSCALE_DEADLINE_SECONDS", 720);
  const started = Date.now();
  const deadline = started + deadlineSeconds * 1000;
  const peakPods = Math.min(max, Math.ceil(peak / target));
  const endPods = Math.max(min, Math.ceil(end / target));
  if (peakPods <= min || endPods >= peakPods)
    throw new Error(
      `BENCH_AUTOSCALE_PEAK ${peak} must need more than ${min} pods of ${target} and BENCH_AUTOSCALE_END ${end} fewer than ${peakPods}`,
    );
  log(
    `autoscale: HPA ${min}–${max} pods at ${target} connections each; ${start} → ${peak} → ${end} sockets in steps of ${step} every ${stepSeconds} s; deadline ${deadlineSeconds} s`,
  );

  let cluster: VibeTalkCluster | undefined;
  const clients: RoamingClient[] = [];
  let monitor: Promise<void> = Promise.resolve();
  let monitoring = true;
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      monitoring = false;
      await monitor;
      for (const c of clients) c.close();
      await cluster?.stop();
    })());
  const onSignal = (): void => {
    log("interrupted: stopping the clients and the cluster…");
    void stopAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let phase = "start";
  const phases: { name: string; at: number }[] = [];
  const enter = (name: string): void => {
    phase = name;
    phases.push({ name, at: Date.now() });
    log(`phase: ${name} (+${((Date.now() - started) / 1000).toFixed(0)} s)`);
  };
  const phaseAt = (t: number): string => phases.filter((p) => p.at <= t).at(-1)?.name ?? "start";
  const samples: Sample[] = [];
  const countsAtEnd = new Map<string, Record<string, number>>();
  const connected = (): number => clients.filter((c) => c.socket?.connected).length;
  /** Waits for `done` on the latest sample, failing clearly past the deadline. */
  const until = async (what: string, done: (s: Sample) => boolean): Promise<Sample> => {
    for (;;) {
      const s = samples.at(-1);
      if (s && done(s)) return s;
      if (Date.now() > deadline)
        throw new AutoscaleError(
          `autoscale: ${what} not reached within BENCH_AUTOSCALE_DEADLINE_SECONDS=${deadlineSeconds} (phase ${phase}; last sample: ${s ? `HPA desired ${s.desired}, ${s.pods} pods, ${s.connected} connected, ${describeCounts(s.counts)}` : "none"})`,
        );
      await sleep(250);
    }
  };
  const pause = async (seconds: number): Promise<void> => {
    if (Date.now() + seconds * 1000 > deadline)
      throw new AutoscaleError(`autoscale: the deadline (${deadlineSeconds} s) falls within phase ${phase}`);
    await sleep(seconds * 1000);
  };

  try {
    cluster = await startVibeTalkCluster({
      replicas: min,
      partitions: 16,
      drainSeconds: 10,
      spec: {
        autoscaling: {
          enabled: true,
          minReplicas: min,
          maxReplicas: max,
          targetConnectionsPerPod: target,
          behavior: { scaleDown: { stabilizationWindowSeconds: downWindow } },
        },
        rebalance: { enabled: true },
      },
      log: (m) => console.log(`[cluster] ${m}`),
    });
    const c = cluster;
    const hpaApi = c.kubeConfig.makeApiClient(k8s.AutoscalingV2Api);
    const sample = async (): Promise<Sample> => {
      const [hpa, counts, pods] = await Promise.all([
        hpaApi.readNamespacedHorizontalPodAutoscaler({ name: c.name, namespace: c.namespace }),
        podCounts(c),
        c.core.listNamespacedPod({
          namespace: c.namespace,
          labelSelector: `app.kubernetes.io/instance=${c.name},app.kubernetes.io/component=chat-node`,
        }),
      ]);
      return {
        t: Date.now(),
        phase,
        connected: connected(),
        desired: hpa.status?.desiredReplicas ?? 0,
        counts,
        pods: pods.items.length,
      };
    };
    let printed = "";
    let printedAt = 0;
    monitor = (async () => {
      while (monitoring) {
        try {
          const s = await sample();
          samples.push(s);
          const line = `HPA desired ${s.desired}, pods ${s.pods}, connected ${s.connected}: ${describeCounts(s.counts)}`;
          const key = `${s.desired} ${s.pods} ${Object.keys(s.counts).length}`;
          if (key !== printed || Date.now() - printedAt > 5000) {
            log(`+${((s.t - started) / 1000).toFixed(0)} s ${line}`);
            printed = key;
            printedAt = Date.now();
          }
        } catch {
          /* the API server is busy: the next sample */
        }
        await sleep(500);
      }
    })();

    const nodes = cachedNodes(c, 2000);
    const [first] = await nodes();
    if (!first) throw new Error("no Ready chat-node");
    const sender = await register(first.url, "as_sender");
    const readerUsers = await registerMany(first.url, "as_reader", 4);
    const fillerUsers = await registerMany(first.url, "as_filler", users);
    const channels: string[] = [];
    for (let i = 0; i < 4; i++)
      channels.push(await createGroup(first.url, sender, `autoscale ${i}`, readerUsers));
    const quiet = await createGroup(first.url, sender, "quiet", fillerUsers);
    const senderClient = new RoamingClient(sender, nodes, channels);
    const readers = clientsOf(readerUsers, 20, nodes, channels);
    const fillers = clientsOf(fillerUsers, peak - readers.length - 1, nodes, [quiet]);
    const open = new Set<RoamingClient>();
    const rampTo = async (total: number): Promise<void> => {
      const want = total - readers.length - 1;
      const opened = [...open];
      if (opened.length < want) {
        const more = fillers.filter((f) => !open.has(f)).slice(0, want - opened.length);
        more.forEach((f) => open.add(f));
        clients.push(...more);
        await connectAll(more, 50);
      } else {
        // random sockets, so the pods lose load alike
        for (const f of opened.sort(() => Math.random() - 0.5).slice(0, opened.length - want)) {
          f.close();
          open.delete(f);
          clients.splice(clients.indexOf(f), 1);
        }
      }
      log(`${total} sockets (${connected()} connected)`);
    };
    clients.push(senderClient, ...readers);
    await connectAll([senderClient, ...readers], 10);
    const tc = Date.now();
    await rampTo(start);
    const connectRate = (start - readers.length - 1) / ((Date.now() - tc) / 1000);
    const counted = (s: Sample, pods: number): boolean => {
      const sum = Object.values(s.counts).reduce((a, b) => a + b, 0);
      return Object.keys(s.counts).length === pods && s.pods === pods && Math.abs(sum - s.connected) <= 5;
    };
    // The baseline starts balanced: a rebalance round inside it sheds sockets and spoils its latencies.
    await until(
      `${start} sockets counted on ${min} pods within ±20 %`,
      (s) => counted(s, min) && s.connected >= start && withinBand(s.counts),
    );

    const steady = new SteadySender(senderClient, channels, 10);
    steady.start();
    enter("baseline");
    await pause(baselineSeconds);
    countsAtEnd.set("baseline", samples.at(-1)!.counts);

    /** Ramps from `from` to `to` in steps, then waits until the HPA's `pods` hold them within ±20 %. */
    const rampAndScale = async (name: string, from: number, to: number, pods: number): Promise<void> => {
      enter(`ramp ${name}`);
      const dir = Math.sign(to - from);
      for (let level = from + dir * step; ; level += dir * step) {
        await rampTo(dir > 0 ? Math.min(level, to) : Math.max(level, to));
        await pause(stepSeconds);
        if (dir * (level - to) >= 0) break;
      }
      countsAtEnd.set(`ramp ${name}`, samples.at(-1)!.counts);
      enter(`scaling ${name}`);
      await until(
        `${pods} pods within ±20 % with all ${to} sockets counted`,
        (s) => s.desired === pods && counted(s, pods) && withinBand(s.counts),
      );
      countsAtEnd.set(`scaling ${name}`, samples.at(-1)!.counts);
    };
    await rampAndScale("up", start, peak, peakPods);
    enter("hold");
    await pause(holdSeconds);
    countsAtEnd.set("hold", samples.at(-1)!.counts);
    await rampAndScale("down", peak, end, endPods);
    enter("after");
    await pause(5);
    await steady.stop();
    await sleep(3000);
    monitoring = false;
    await monitor;

    const [anyNode] = await nodes();
    const d = await deliveryCounts(anyNode!.url, readerUsers[0]!, readers, steady, channels, phaseAt);
    const events = scaleEvents(samples, target);
    const rel = (t: number | undefined): string =>
      t === undefined ? "–" : `+${((t - started) / 1000).toFixed(1)} s`;
    const eventRows = events.map((e) => [
      `HPA ${e.from} → ${e.to} (${e.to > e.from ? "up" : "down"}) at ${rel(e.decisionAt)}: crossing → decision / → pods ${e.to > e.from ? "Ready" : "gone"} / → balanced ±20 %`,
      `${secs(e.crossingAt, e.decisionAt)} / ${secs(e.crossingAt, e.readyAt)} / ${secs(e.crossingAt, e.balancedAt)}`,
    ]);
    const ups = events.filter((e) => e.to > e.from);
    const downs = events.filter((e) => e.to < e.from);
    const baseline = summarize(d.latency.get("baseline") ?? []);
    const latencyRows = ["baseline", "ramp up", "scaling up", "hold", "ramp down", "scaling down", "after"]
      .filter((p) => d.latency.has(p))
      .map((p) => {
        const s = summarize(d.latency.get(p)!);
        return [
          `send→deliver p50 / p99 (${s.count} deliveries), ${p}`,
          `${ms(s.p50)} / ${ms(s.p99)} (${(s.p50 / baseline.p50).toFixed(2)}× / ${(s.p99 / baseline.p99).toFixed(2)}× baseline)`,
        ];
      });
    const countRows = [...countsAtEnd].map(([p, counts]) => [
      `pods' connections at the end of ${p}`,
      describeCounts(counts),
    ]);
    const readerReconnects = readers.reduce((s, r) => s + r.reconnects, 0);
    const rows = [
      [
        "HPA",
        `${min}–${max} pods, External vibetalk_connections, AverageValue ${target}; scale-down window ${downWindow} s, scale-up and policies the defaults`,
      ],
      [
        "sockets: start → peak → end",
        `${start} → ${peak} → ${end} (steps of ${step} every ${stepSeconds} s, hold ${holdSeconds} s)`,
      ],
      ...eventRows,
      [
        "scale-up overall: first crossing → balanced on " + peakPods,
        secs(ups[0]?.crossingAt, ups.at(-1)?.balancedAt),
      ],
      [
        "scale-down overall: first crossing → balanced on " + endPods,
        secs(downs[0]?.crossingAt, downs.at(-1)?.balancedAt),
      ],
      ...latencyRows,
      ...countRows,
      ["messages acked / stored / retried", `${d.acked} / ${d.stored} / ${d.retried}`],
      [
        `deliveries to ${readers.length} reader sockets (live or by sync) / expected`,
        `${d.delivered} / ${d.expected}`,
      ],
      ["lost / duplicated / reordered", `${d.lost} / ${d.duplicated} / ${d.reordered}`],
      ["reader reconnects (drained or shed)", String(readerReconnects)],
      ["baseline: connect rate at start (50 at a time)", `${connectRate.toFixed(0)}/s`],
    ];
    const minutes = ((Date.now() - started) / 60000).toFixed(1);
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: repoRoot,
      encoding: "utf8",
    }).trim();
    const env = `BENCH_AUTOSCALE_TARGET=${target} BENCH_AUTOSCALE_MIN=${min} BENCH_AUTOSCALE_MAX=${max} BENCH_AUTOSCALE_START=${start} BENCH_AUTOSCALE_PEAK=${peak} BENCH_AUTOSCALE_END=${end} BENCH_AUTOSCALE_STEP=${step} BENCH_AUTOSCALE_STEP_SECONDS=${stepSeconds} BENCH_AUTOSCALE_HOLD_SECONDS=${holdSeconds} BENCH_AUTOSCALE_BASELINE_SECONDS=${baselineSeconds} BENCH_AUTOSCALE_DOWN_WINDOW_SECONDS=${downWindow}`;
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, images built from ${head}, this machine (2 cores, shared; the cluster and the clients on it), ${minutes} min. Command:`,
      "",
      "```sh",
      `${env} npm run bench -- --scenario=autoscale --write`,
      "```",
      "",
      `The real node with a ChatCluster whose HPA scales on the operator's External metric \`vibetalk_connections\` (the sum of the pods' \`vibetalk.io/connections\`, reported every 2 s; the HPA controller syncs every 5 s here) and spec.rebalance on with its defaults. Socket.IO clients in the benchmark process (each on a random Ready pod, reconnecting to another when drained or shed) ramp up in steps past ${min} × ${target}, hold, and ramp down (random sockets closed); a steady sender (10 messages/s, retried with its clientMsgId until acked) writes to 4 groups read by 20 sockets of 4 users throughout. Crossing = the sockets connected passing the pods' target (up: current pods × ${target}; down: new pods × ${target}); decision = the HPA's desiredReplicas changing; balanced = every Ready pod's count within ±20 % of the average with all sockets counted. Latency ratios are against the baseline phase (${min} pods, ${start} sockets, before the ramp) of the same run.`,
      "",
      table(["figure", "value"], rows),
    ].join("\n");
    console.log(body);
    await writeSummary(
      argv,
      autoscaleSummary(
        { min, max, target, start, peak, end, peakPods, endPods },
        d,
        steady,
        readers.length,
        events,
        baseline,
      ),
    );
    if (argv.includes("--write")) {
      await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading: "Autoscaling on connections", body });
      log("wrote the autoscaling section of bench/RESULTS.md");
    }
    if (d.lost > 0 || d.duplicated > 0 || d.reordered > 0)
      throw new Error(
        `messages lost ${d.lost}, duplicated ${d.duplicated}, reordered ${d.reordered} (must be 0)`,
      );
    if (ups.length === 0 || downs.length === 0)
      throw new Error(`the HPA made ${ups.length} scale-up and ${downs.length} scale-down decisions`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await stopAll();
  }
}

/** The standard set's row (summary.ts). */
function autoscaleSummary(
  o: {
    min: number;
    max: number;
    target: number;
    start: number;
    peak: number;
    end: number;
    peakPods: number;
    endPods: number;
  },
  d: Awaited<ReturnType<typeof deliveryCounts>>,
  steady: SteadySender,
  readers: number,
  events: ScaleEvent[],
  baseline: { p50: number },
): ScenarioSummary {
  const { min, max, target, start, peak, end, peakPods, endPods } = o;
  const ups = events.filter((e) => e.to > e.from);
  const downs = events.filter((e) => e.to < e.from);
  const all = summarize([...d.latency.values()].flat());
  const sentTimes = steady.sent.map((x) => x.sentAt);
  const span = (Math.max(...sentTimes) - Math.min(...sentTimes)) / 1000 || 1;
  const upS = (ups.at(-1)?.balancedAt ?? NaN) - (ups[0]?.crossingAt ?? NaN);
  const downS = (downs.at(-1)?.balancedAt ?? NaN) - (downs[0]?.crossingAt ?? NaN);
  return {
    scenario: "autoscale",
    load: `real node, HPA ${min}–${max} pods at ${target}/pod; sockets ${start} → ${peak} → ${end}; 10 msg/s to 4 groups`,
    accepted: d.acked / span,
    stored: d.stored / span,
    delivered: d.delivered / readers / span,
    sendToDeliver: all,
    lost: d.lost,
    duplicated: d.duplicated,
    reordered: d.reordered,
    connections: peak,
    ratios: { "send→deliver p50 over the run ÷ baseline": all.p50 / baseline.p50 },
    notes: [
      `scale-up: first crossing → balanced on ${peakPods} pods ${(upS / 1000).toFixed(1)} s; scale-down → ${endPods} pods ${(downS / 1000).toFixed(1)} s (${events.length} HPA decisions)`,
    ],
  };
}
