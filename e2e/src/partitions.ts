import {
  decodeAssignment,
  decodeReleaseRecord,
  ASSIGNMENT_KEY,
  type PartitionAssignment,
} from "@vibetalk/protocol/cluster";
import type { VibeTalkCluster } from "./cluster.js";

/** The fewest partitions any balanced (±1) assignment of `partitions` over `pods` must move from `prev` (pure). */
export function minimumMoves(prev: PartitionAssignment, pods: string[], partitions: number): number {
  if (pods.length === 0) return 0;
  const counts = pods
    .map((p) => Object.values(prev.owners).filter((o) => o === p).length)
    .sort((a, b) => b - a);
  const floor = Math.floor(partitions / pods.length);
  const extra = partitions % pods.length;
  // Give the larger quota to the pods that already hold the most: that keeps the most partitions in place.
  const kept = counts.reduce((sum, c, i) => sum + Math.min(c, floor + (i < extra ? 1 : 0)), 0);
  return partitions - kept;
}

export function moved(a: PartitionAssignment, b: PartitionAssignment): number {
  return Object.keys(b.owners).filter((k) => a.owners[k] !== b.owners[k]).length;
}

export async function readAssignment(c: VibeTalkCluster): Promise<PartitionAssignment | undefined> {
  const cm = await c.core.readNamespacedConfigMap({ name: `${c.name}-partitions`, namespace: c.namespace });
  return decodeAssignment(cm.data?.[ASSIGNMENT_KEY]);
}

export async function readHolders(c: VibeTalkCluster): Promise<Record<string, string>> {
  const cm = await c.core.readNamespacedConfigMap({ name: `${c.name}-releases`, namespace: c.namespace });
  return Object.fromEntries(
    Object.entries(cm.data ?? {}).map(([k, v]) => [k, decodeReleaseRecord(v)?.holder ?? ""]),
  );
}

interface Consumer {
  queue: { name: string };
  active?: boolean;
  activity_status?: string;
}

/** Consumers per partition queue from the management API: all registered, and those active. */
export async function partitionConsumers(
  managementUrl: string,
): Promise<Map<string, { total: number; active: number }>> {
  const u = new URL(managementUrl);
  const res = await fetch(`${u.origin}/api/consumers`, {
    headers: { authorization: `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}` },
  });
  if (!res.ok) throw new Error(`management API: ${res.status}`);
  const out = new Map<string, { total: number; active: number }>();
  for (const c of (await res.json()) as Consumer[]) {
    if (!c.queue.name.startsWith("vibetalk.partition.")) continue;
    const e = out.get(c.queue.name) ?? { total: 0, active: 0 };
    e.total += 1;
    if (c.active !== false && c.activity_status !== "waiting") e.active += 1;
    out.set(c.queue.name, e);
  }
  return out;
}
