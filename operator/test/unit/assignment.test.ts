import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { PartitionAssignment } from "../../src/api/v1alpha1.js";
import { assignPartitions, movedPartitions, partitionCounts } from "../../src/assignment.js";

const POD_UNIVERSE = Array.from({ length: 12 }, (_, i) => `chat-${String.fromCharCode(97 + i)}`);

/** A membership change: a pod joins or leaves, or the whole Ready set is replaced. */
type Step = { join: string } | { leave: string } | { replace: string[] };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...POD_UNIVERSE).map((join) => ({ join })) },
  { weight: 3, arbitrary: fc.constantFrom(...POD_UNIVERSE).map((leave) => ({ leave })) },
  { weight: 1, arbitrary: fc.subarray(POD_UNIVERSE).map((replace) => ({ replace })) },
);

function applyStep(ready: Set<string>, step: Step): Set<string> {
  if ("join" in step) return new Set([...ready, step.join]);
  if ("leave" in step) return new Set([...ready].filter((p) => p !== step.leave));
  return new Set(step.replace);
}

/** What each Ready pod keeps from the previous assignment, and the orphans. */
function keptAndOrphans(prev: PartitionAssignment | undefined, ready: string[], P: number) {
  const kept = new Map(ready.map((p) => [p, 0]));
  let orphans = 0;
  for (let k = 0; k < P; k++) {
    const owner = prev?.owners[String(k)];
    if (owner !== undefined && kept.has(owner)) kept.set(owner, (kept.get(owner) ?? 0) + 1);
    else orphans++;
  }
  return { kept: [...kept.values()], orphans };
}

/** The exact minimum: orphans + Σ max(0, keptᵢ − quotaᵢ), ceilings given to the largest holders. */
function minimumMoves(prev: PartitionAssignment | undefined, ready: string[], P: number): number {
  if (ready.length === 0) return 0;
  const { kept, orphans } = keptAndOrphans(prev, ready, P);
  const base = Math.floor(P / ready.length);
  const extra = P % ready.length;
  const sorted = [...kept].sort((a, b) => b - a);
  return orphans + sorted.reduce((s, k, i) => s + Math.max(0, k - (base + (i < extra ? 1 : 0))), 0);
}

/** The same minimum by brute force over every choice of which pods get the ceiling (small n). */
function bruteForceMinimum(prev: PartitionAssignment | undefined, ready: string[], P: number): number {
  const { kept, orphans } = keptAndOrphans(prev, ready, P);
  const n = kept.length;
  const base = Math.floor(P / n);
  const extra = P % n;
  let best = Infinity;
  for (let mask = 0; mask < 1 << n; mask++) {
    let bits = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) bits++;
    if (bits !== extra) continue;
    let excess = 0;
    kept.forEach((k, i) => (excess += Math.max(0, k - (base + (mask & (1 << i) ? 1 : 0)))));
    best = Math.min(best, orphans + excess);
  }
  return best;
}

function checkInvariants(
  prev: PartitionAssignment | undefined,
  next: PartitionAssignment,
  ready: string[],
  P: number,
) {
  if (ready.length === 0) {
    assert.deepEqual(next.owners, {});
    return;
  }
  const keys = Object.keys(next.owners)
    .map(Number)
    .sort((a, b) => a - b);
  assert.deepEqual(
    keys,
    Array.from({ length: P }, (_, k) => k),
    "every partition owned, no others",
  );
  const readySet = new Set(ready);
  for (const pod of Object.values(next.owners)) assert.ok(readySet.has(pod), `owner ${pod} is Ready`);
  const counts = [...partitionCounts(next, ready).values()];
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${counts.join(",")}`);
  const moved = movedPartitions(prev, next).length;
  assert.equal(moved, minimumMoves(prev, ready, P), "moves exactly the minimum");
  if (ready.length <= 8) assert.equal(moved, bruteForceMinimum(prev, ready, P));
  const changed = !prev || JSON.stringify(prev.owners) !== JSON.stringify(next.owners);
  const prevEpoch = prev?.epoch ?? 0;
  assert.equal(
    next.epoch,
    changed && !(prev === undefined && ready.length === 0) ? prevEpoch + 1 : prevEpoch,
  );
}

test("over random join/leave sequences: balanced, minimal moves, all owned, epochs", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200 }),
      fc.array(stepArb, { minLength: 1, maxLength: 25 }),
      (P, steps) => {
        let ready = new Set<string>();
        let prev: PartitionAssignment | undefined;
        for (const step of steps) {
          ready = applyStep(ready, step);
          const pods = [...ready];
          const next = assignPartitions(prev, pods, P);
          checkInvariants(prev, next, pods, P);
          prev = next;
        }
      },
    ),
    { numRuns: 400 },
  );
});

test("deterministic: independent of input order and duplicates", () => {
  const prevArb = fc.option(
    fc.record({
      epoch: fc.nat({ max: 100 }),
      owners: fc.dictionary(
        fc.nat({ max: 80 }).map(String),
        fc.constantFrom(...POD_UNIVERSE, "gone-1", "gone-2"),
        { noNullPrototype: true },
      ),
    }),
    { nil: undefined },
  );
  fc.assert(
    fc.property(
      prevArb,
      fc.subarray(POD_UNIVERSE),
      fc.integer({ min: 1, max: 64 }),
      fc.infiniteStream(fc.nat()),
      (prev, pods, P, rnd) => {
        const shuffled = [...pods, ...pods.slice(0, 2)]
          .map((p) => ({ p, r: rnd.next().value }))
          .sort((a, b) => a.r - b.r)
          .map((x) => x.p);
        assert.deepEqual(assignPartitions(prev, shuffled, P), assignPartitions(prev, pods, P));
        checkInvariants(prev, assignPartitions(prev, pods, P), pods, P);
      },
    ),
    { numRuns: 400 },
  );
});

test("same Ready set → same assignment and epoch (idempotent)", () => {
  const a = assignPartitions(undefined, ["b", "a", "c"], 64);
  const b = assignPartitions(a, ["c", "a", "b"], 64);
  assert.equal(b.epoch, a.epoch);
  assert.deepEqual(b.owners, a.owners);
});

test("examples: first assignment, a join, a leave, everyone gone", () => {
  const one = assignPartitions(undefined, ["a"], 4);
  assert.deepEqual(one, { epoch: 1, owners: { "0": "a", "1": "a", "2": "a", "3": "a" } });
  const two = assignPartitions(one, ["a", "b"], 4);
  assert.deepEqual(two, { epoch: 2, owners: { "0": "a", "1": "a", "2": "b", "3": "b" } });
  assert.deepEqual(movedPartitions(one, two), [2, 3]);
  const three = assignPartitions(two, ["b", "c", "a"], 4);
  assert.equal(movedPartitions(two, three).length, 1);
  const left = assignPartitions(three, ["b", "c"], 4);
  assert.equal(movedPartitions(three, left).length, 2, "a's two partitions move, nothing else");
  assert.deepEqual(assignPartitions(left, [], 4), { epoch: left.epoch + 1, owners: {} });
  assert.deepEqual(assignPartitions(undefined, [], 4), { epoch: 0, owners: {} });
});

test("a previous owner above its quota keeps its lowest partitions", () => {
  const prev = { epoch: 5, owners: { "0": "a", "1": "a", "2": "a", "3": "b" } };
  const next = assignPartitions(prev, ["a", "b"], 4);
  assert.deepEqual(next.owners, { "0": "a", "1": "a", "2": "b", "3": "b" });
  assert.equal(next.epoch, 6);
});

test("rejects a partition count below 1", () => {
  assert.throws(() => assignPartitions(undefined, ["a"], 0), RangeError);
});
