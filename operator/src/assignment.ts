/**
 * Partition assignment (pure): P partitions over the Ready chat-node pods, balanced to ±1, moving the
 * fewest partitions from the previous assignment, independent of the order pods are listed in.
 *
 * 1. Quotas: with n pods, every pod gets ⌊P/n⌋ and P mod n pods get one more. The extra ones go to the
 *    pods that already hold the most partitions (ties: pod name), which minimises what must move.
 * 2. Keep: every partition whose previous owner is still Ready stays, unless that owner holds more
 *    than its quota; then it keeps its lowest-numbered ones and frees the rest.
 * 3. Hand out: freed and orphaned partitions (owner gone or never owned), in ascending order, each to
 *    the least-loaded pod still under its quota (ties: pod name).
 *
 * Moves = orphans + Σ max(0, keptᵢ − quotaᵢ), the minimum for a balanced result.
 * The epoch increases by one exactly when some owner changes.
 */
import type { PartitionAssignment } from "./api/v1alpha1.js";

type Owners = PartitionAssignment["owners"];

/** Ready pods' previously owned partitions below `partitions`, in ascending order. */
function keptByPod(previous: PartitionAssignment | undefined, pods: string[], partitions: number) {
  const kept = new Map<string, number[]>(pods.map((p) => [p, []]));
  for (let k = 0; k < partitions; k++) {
    const owner = previous?.owners[String(k)];
    if (owner !== undefined) kept.get(owner)?.push(k);
  }
  return kept;
}

/** Quota per pod: the P mod n ceilings go to the pods keeping the most partitions (then by name). */
export function quotas(
  kept: ReadonlyMap<string, readonly number[]>,
  partitions: number,
): Map<string, number> {
  const pods = [...kept.keys()];
  const base = Math.floor(partitions / pods.length);
  const extra = partitions % pods.length;
  const order = [...pods].sort(
    (a, b) => (kept.get(b)?.length ?? 0) - (kept.get(a)?.length ?? 0) || cmp(a, b),
  );
  return new Map(order.map((p, i) => [p, base + (i < extra ? 1 : 0)]));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function balancedOwners(
  previous: PartitionAssignment | undefined,
  pods: string[],
  partitions: number,
): Owners {
  const kept = keptByPod(previous, pods, partitions);
  const quota = quotas(kept, partitions);
  const owner: (string | undefined)[] = new Array<string | undefined>(partitions).fill(undefined);
  const load = new Map<string, number>();
  for (const pod of pods) {
    const keep = (kept.get(pod) ?? []).slice(0, quota.get(pod) ?? 0);
    for (const k of keep) owner[k] = pod;
    load.set(pod, keep.length);
  }
  for (let k = 0; k < partitions; k++) {
    if (owner[k] !== undefined) continue;
    const to = leastLoaded(pods, load, quota);
    owner[k] = to;
    load.set(to, (load.get(to) ?? 0) + 1);
  }
  const out: Owners = {};
  owner.forEach((pod, k) => {
    if (pod !== undefined) out[String(k)] = pod;
  });
  return out;
}

function leastLoaded(pods: string[], load: Map<string, number>, quota: Map<string, number>): string {
  let best: string | undefined;
  for (const pod of pods) {
    const l = load.get(pod) ?? 0;
    if (l >= (quota.get(pod) ?? 0)) continue;
    if (best === undefined || l < (load.get(best) ?? 0)) best = pod;
  }
  if (best === undefined) throw new Error("assignPartitions: quotas exhausted (bug)");
  return best;
}

export function sameOwners(a: Owners, b: Owners): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}

export function assignPartitions(
  previous: PartitionAssignment | undefined,
  readyPods: readonly string[],
  partitions: number,
): PartitionAssignment {
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new RangeError(`partitions must be ≥ 1, got ${partitions}`);
  const pods = [...new Set(readyPods)].sort(cmp);
  const owners = pods.length === 0 ? {} : balancedOwners(previous, pods, partitions);
  if (previous && sameOwners(previous.owners, owners))
    return { epoch: previous.epoch, owners: previous.owners };
  if (!previous && pods.length === 0) return { epoch: 0, owners };
  return { epoch: (previous?.epoch ?? 0) + 1, owners };
}

/** Partitions whose owner differs between two assignments (newly owned ones included). */
export function movedPartitions(
  previous: PartitionAssignment | undefined,
  next: PartitionAssignment,
): number[] {
  const keys = new Set([...Object.keys(previous?.owners ?? {}), ...Object.keys(next.owners)]);
  return [...keys]
    .filter((k) => previous?.owners[k] !== next.owners[k] && next.owners[k] !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Partition counts per pod (pods with none included when listed). */
export function partitionCounts(a: PartitionAssignment, pods: readonly string[] = []): Map<string, number> {
  const counts = new Map<string, number>(pods.map((p) => [p, 0]));
  for (const pod of Object.values(a.owners)) counts.set(pod, (counts.get(pod) ?? 0) + 1);
  return counts;
}
