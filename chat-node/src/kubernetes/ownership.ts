import { decodeReleaseRecord, type PartitionAssignment } from "@vibetalk/protocol/cluster";

/** What a chat-node does next about partition ownership, from what it consumes and what it reads (pure). */
export interface OwnershipPlan {
  /** Consuming but no longer assigned here, or claimed by someone else: stop, then release. */
  stop: number[];
  /** Assigned here and free (never held, released, or already held by this pod): claim, then consume. */
  claim: number[];
  /** Assigned here but still held by the previous owner: wait for its release (or its pod's end). */
  waiting: number[];
  /**
   * Recorded as held by this pod, but neither consumed nor assigned here: left by an earlier run of this pod
   * (a crash and restart under the same name). Release them, or their new owner would wait forever.
   */
  release: number[];
}

export function assignedTo(pod: string, assignment: PartitionAssignment | undefined): Set<number> {
  const out = new Set<number>();
  for (const [k, owner] of Object.entries(assignment?.owners ?? {})) if (owner === pod) out.add(Number(k));
  return out;
}

export function planOwnership(
  pod: string,
  consuming: ReadonlySet<number>,
  assignment: PartitionAssignment | undefined,
  releases: Record<string, string>,
): OwnershipPlan {
  const assigned = assignedTo(pod, assignment);
  const holderOf = (k: number): string | undefined => decodeReleaseRecord(releases[String(k)])?.holder;
  const stop: number[] = [];
  for (const k of consuming) {
    const holder = holderOf(k);
    if (!assigned.has(k) || (holder !== undefined && holder !== pod)) stop.push(k);
  }
  const claim: number[] = [];
  const waiting: number[] = [];
  for (const k of assigned) {
    if (consuming.has(k)) continue;
    const holder = holderOf(k);
    if (holder === undefined || holder === "" || holder === pod) claim.push(k);
    else waiting.push(k);
  }
  const release: number[] = [];
  for (const [key, text] of Object.entries(releases)) {
    const k = Number(key);
    if (decodeReleaseRecord(text)?.holder === pod && !consuming.has(k) && !assigned.has(k)) release.push(k);
  }
  const asc = (a: number, b: number): number => a - b;
  return {
    stop: stop.sort(asc),
    claim: claim.sort(asc),
    waiting: waiting.sort(asc),
    release: release.sort(asc),
  };
}
