// `npm run bench [-- --write] [--only=a,b] [--skip=a,b]`: the standard set (issue 17, item 4). Runs each
// scenario as its own process at a standard size, in turn, each within a time budget (the whole set within
// 15 minutes on this machine), passing its progress through; each writes its figures with --summary
// (summary.ts) and, with --write, its own section of bench/RESULTS.md. Then one table of every scenario
// beside the baselines of its own run, CPU per message by process, and the issue's targets, met or not.
// Exits 1 if a scenario failed, ran out of its budget, or lost, duplicated or reordered a message.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { repoRoot, tempDir } from "@vibetalk/testkit";
import { flag, table, writeSection } from "./report.js";
import type { Percentiles, ScenarioSummary } from "./summary.js";

interface Step {
  name: string;
  args: string[];
  env: Record<string, string>;
  /** Seconds this scenario may take, set-up included; it is stopped past that. */
  budgetS: number;
}

/** The standard sizes: small enough for the set to finish in 15 minutes, large enough to say something. */
export const STANDARD: Step[] = [
  { name: "throughput", args: ["--throughput"], env: { BENCH_MESSAGES: "2000" }, budgetS: 120 },
  {
    name: "idle+direct",
    args: ["--connections", "--scenario=direct"],
    env: { BENCH_CONNECTIONS: "10000", BENCH_DIRECT_SECONDS: "20", BENCH_SETTLE_S: "10" },
    budgetS: 300,
  },
  { name: "group", args: ["--scenario=group"], env: { BENCH_MESSAGES: "300" }, budgetS: 150 },
  {
    name: "official",
    args: ["--scenario=official"],
    env: { BENCH_MEMBERS: "2000", BENCH_RATE: "10", BENCH_SECONDS: "20" },
    budgetS: 200,
  },
  {
    name: "ramp",
    args: ["--scenario=ramp"],
    env: { BENCH_RAMP_STEP_S: "8", BENCH_RAMP_DRAIN_S: "6", BENCH_DEADLINE_S: "200" },
    budgetS: 240,
  },
  {
    name: "autoscale",
    args: ["--scenario=autoscale"],
    // 10 s of baseline and of hold (20 s each by default) pay for the official scenario's textbook run
    env: { BENCH_AUTOSCALE_BASELINE_SECONDS: "10", BENCH_AUTOSCALE_HOLD_SECONDS: "10" },
    budgetS: 480,
  },
];

interface Outcome {
  step: Step;
  seconds: number;
  summaries: ScenarioSummary[];
  error?: string;
}

const log = (m: string): void => console.log(`[standard] ${m}`);

/** Runs one scenario process; its output is passed through as it comes. */
function runStep(step: Step, summaryFile: string, write: boolean, extra: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const args = ["--import", "tsx", join(repoRoot, "bench/src/main.ts"), ...step.args, ...extra];
    args.push(`--summary=${summaryFile}`);
    if (write) args.push("--write");
    const child = spawn(process.execPath, args, {
      cwd: join(repoRoot, "bench"),
      env: { ...process.env, ...step.env },
      stdio: ["ignore", "inherit", "inherit"],
      detached: true, // its own process group: a scenario out of time is stopped with everything it started
    });
    let timedOut = false;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        // gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      log(`${step.name}: over its budget of ${step.budgetS} s; stopping it`);
      kill("SIGTERM");
      setTimeout(() => kill("SIGKILL"), 20_000).unref();
    }, step.budgetS * 1000);
    const forward = () => kill("SIGTERM");
    process.once("SIGINT", forward);
    process.once("SIGTERM", forward);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      if (timedOut) resolve(`over its budget of ${step.budgetS} s`);
      else if (code === 0) resolve(null);
      else resolve(`exited with ${signal ?? `code ${code}`}`);
    });
  });
}

const f = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits);
const lat = (p?: Percentiles): string =>
  p ? `${f(p.p50, 1)} / ${f(p.p95, 1)} / ${f(p.p99, 1)} / ${f(p.max, 0)}` : "–";
const rates = (s: ScenarioSummary): string =>
  s.accepted === undefined && s.delivered === undefined
    ? "–"
    : `${f(s.accepted)} / ${f(s.stored)} / ${f(s.delivered)}`;
const faults = (s: ScenarioSummary): string =>
  s.lost === undefined ? "–" : `${s.lost} / ${s.duplicated ?? "–"} / ${s.reordered ?? "–"}`;

/** The tables of a finished set. */
export function renderStandard(outcomes: Outcome[]): string {
  const all = outcomes.flatMap((o) => o.summaries);
  const main = table(
    [
      "scenario",
      "load",
      "msgs/s accepted / stored / delivered",
      "send→ack p50 / p95 / p99 / max ms",
      "send→deliver p50 / p95 / p99 / max ms",
      "lost / dup / reordered",
      "conns",
      "RSS/conn KiB",
      "loop p99 ms",
      "CPU ms/msg (all)",
      "against the baselines of the same run",
    ],
    all.map((s) => [
      s.scenario,
      s.load,
      rates(s),
      lat(s.sendToAck),
      lat(s.sendToDeliver),
      faults(s),
      f(s.connections),
      f(s.rssPerConnectionKiB, 1),
      f(s.loopP99Ms, 1),
      f(s.cpuMsPerMessage?.["total"], 2),
      Object.entries(s.ratios ?? {})
        .map(([k, v]) => `${k} ${v.toFixed(2)}×`)
        .join("; ") || "–",
    ]),
  );
  const classes = [...new Set(all.flatMap((s) => Object.keys(s.cpuMsPerMessage ?? {})))];
  const withCpu = all.filter((s) => s.cpuMsPerMessage);
  const cpu =
    withCpu.length === 0
      ? ""
      : table(
          ["CPU ms per message", ...classes],
          withCpu.map((s) => [s.scenario, ...classes.map((c) => f(s.cpuMsPerMessage?.[c], 2))]),
        );
  const targets = all.flatMap((s) => (s.targets ?? []).map((t) => ({ ...t, scenario: s.scenario })));
  const targetTable =
    targets.length === 0
      ? ""
      : table(
          ["target", "scenario", "measured", "met"],
          targets.map((t) => [t.target, t.scenario, t.measured, t.met ? "met" : "**not met**"]),
        );
  const runs = table(
    ["scenario run", "seconds", "result"],
    outcomes.map((o) => [o.step.name, f(o.seconds), o.error ? `**failed: ${o.error}**` : "ok"]),
  );
  const notes = all.flatMap((s) => (s.notes ?? []).map((n) => `- ${s.scenario}: ${n}`));
  return [main, "", cpu, "", targetTable, "", runs, "", ...notes]
    .filter((x, i, a) => x || a[i - 1])
    .join("\n");
}

export async function runStandardSet(argv: string[]): Promise<void> {
  const write = argv.includes("--write");
  const only = flag(argv, "only")?.split(",");
  const skip = flag(argv, "skip")?.split(",") ?? [];
  const steps = STANDARD.filter((s) => (!only || only.includes(s.name)) && !skip.includes(s.name));
  const extra = argv.filter((a) => a.startsWith("--chat-node="));
  const budget = steps.reduce((a, s) => a + s.budgetS, 0);
  log(`${steps.map((s) => s.name).join(", ")}; at most ${Math.round(budget / 60)} min in all`);
  const dir = await tempDir("bench-standard");
  const outcomes: Outcome[] = [];
  const t0 = Date.now();
  try {
    for (const [i, step] of steps.entries()) {
      log(
        `${i + 1}/${steps.length} ${step.name} (budget ${step.budgetS} s, ${Math.round((Date.now() - t0) / 1000)} s so far)`,
      );
      const file = join(dir.path, `${step.name}.json`);
      const ts = Date.now();
      const error = await runStep(step, file, write, extra);
      let summaries: ScenarioSummary[] = [];
      try {
        summaries = JSON.parse(await readFile(file, "utf8")) as ScenarioSummary[];
      } catch {
        // no figures: the error says why
      }
      const o: Outcome = { step, seconds: (Date.now() - ts) / 1000, summaries };
      if (error) o.error = error;
      else if (summaries.length === 0) o.error = "wrote no figures";
      outcomes.push(o);
      log(`${step.name}: ${o.error ? `FAILED (${o.error})` : "done"} in ${o.seconds.toFixed(0)} s`);
    }
  } finally {
    await dir.remove();
  }
  const minutes = (Date.now() - t0) / 60_000;
  const tables = renderStandard(outcomes);
  console.log(tables);
  const broken = outcomes.filter(
    (o) => o.error || o.summaries.some((s) => (s.lost ?? 0) + (s.duplicated ?? 0) + (s.reordered ?? 0) > 0),
  );
  if (write) {
    const commit = (await import("node:child_process"))
      .execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" })
      .trim();
    const body = [
      `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, commit ${commit}, this machine (2 cores,`,
      `shared), ${minutes.toFixed(1)} min. Command:`,
      "",
      "```sh",
      `npm run bench -- --write${only ? ` --only=${only.join(",")}` : ""}${skip.length ? ` --skip=${skip.join(",")}` : ""}`,
      "```",
      "",
      "Each scenario runs as its own process at the sizes in bench/src/standard.ts, its baselines in the same",
      "process (bare Socket.IO and Centrifugo for connections, the textbook design, the broker floor and the store",
      "ceiling for messages); its own section below has the details. Latencies are on one clock (the benchmark",
      "process). CPU ms per message is the CPU time of each process class while the messages are sent and delivered",
      "÷ messages (registrations and connections left out; the bench process's share is its clients'); the machine",
      "is shared and noisy: read the ratios.",
      "",
      tables,
    ].join("\n");
    await writeSection(join(repoRoot, "bench/RESULTS.md"), { heading: "Standard set", body });
    log("wrote the Standard set section of bench/RESULTS.md");
  }
  log(`${outcomes.length - broken.length} of ${outcomes.length} scenarios ok in ${minutes.toFixed(1)} min`);
  if (broken.length > 0) process.exitCode = 1;
}
