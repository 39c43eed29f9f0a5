// One scenario's figures in the shape of the standard set's table (issue 17, item 4): every scenario
// run with `--summary=<file>` writes this JSON; `npm run bench` (standard.ts) collects and renders them.
import { writeFile } from "node:fs/promises";
import { flag } from "./report.js";

/** Latency percentiles on one clock, ms. */
export interface Percentiles {
  p50: number;
  p95?: number;
  p99: number;
  max: number;
}

export interface ScenarioSummary {
  scenario: string;
  /** The load, in words (members, rates, nodes). */
  load: string;
  /** Messages per second sent and acked, stored, delivered (each message once, however many sockets). */
  accepted?: number;
  stored?: number;
  delivered?: number;
  sendToAck?: Percentiles;
  sendToDeliver?: Percentiles;
  lost?: number;
  duplicated?: number;
  reordered?: number;
  /** Open connections at the measurement, and RSS per connection of the chat-nodes (KiB). */
  connections?: number;
  rssPerConnectionKiB?: number;
  /** CPU ms per message by process class (chat-nodes, RabbitMQ, store, Redis, bench clients, total). */
  cpuMsPerMessage?: Record<string, number>;
  /** Worst chat-node event-loop delay p99 during the load, ms. */
  loopP99Ms?: number;
  /** Ratios against the baselines of the same run, e.g. {"msgs/s ÷ textbook": 1.21}. */
  ratios?: Record<string, number>;
  /** The targets this scenario checks: what was measured and whether it met the target. */
  targets?: Array<{ target: string; measured: string; met: boolean }>;
  /** Anything else worth a line. */
  notes?: string[];
}

/** Writes `summaries` to the file named by `--summary=<file>`, if given (one scenario may give several). */
export async function writeSummary(argv: string[], ...summaries: ScenarioSummary[]): Promise<void> {
  const file = flag(argv, "summary");
  if (!file) return;
  await writeFile(file, JSON.stringify(summaries, null, 2));
}

/** cpu.ts's per-message figures as the summary's record (the total under "total"). */
export const cpuRecord = (c: { perClass: [string, number][]; total: number }): Record<string, number> => ({
  ...Object.fromEntries(c.perClass),
  total: c.total,
});
