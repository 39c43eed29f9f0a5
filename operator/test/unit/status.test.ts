import assert from "node:assert/strict";
import { test } from "node:test";
import { assignPartitions } from "../../src/assignment.js";
import { computeStatus, conditionOf, statusChanged, type Observed } from "../../src/status.js";
import { deployment } from "../support/deployments.js";
import { makeCluster } from "../support/fixtures.js";

const now = new Date("2026-11-23T12:00:00.000Z");
const later = new Date("2026-11-23T12:05:00.000Z");

function observed(o: Partial<Observed> = {}): Observed {
  const readyPods = o.readyPods ?? ["demo-1", "demo-2"];
  return {
    deployment: deployment(),
    readyPods,
    assignment: assignPartitions(undefined, readyPods, 64),
    connections: 0,
    now,
    ...o,
  };
}

test("a converged cluster is Ready, not Progressing, not Degraded, balanced", () => {
  const c = makeCluster({}, { generation: 4 });
  const s = computeStatus(c, observed({ connections: 42 }));
  assert.equal(s.observedGeneration, 4);
  assert.equal(s.replicas, 2);
  assert.equal(s.readyReplicas, 2);
  assert.equal(s.connections, 42);
  assert.equal(
    s.selector,
    "app.kubernetes.io/name=vibetalk,app.kubernetes.io/instance=demo,app.kubernetes.io/component=chat-node",
  );
  assert.equal(s.partitionAssignment?.epoch, 1);
  const byType = Object.fromEntries((s.conditions ?? []).map((x) => [x.type, x]));
  assert.equal(byType.Ready?.status, "True");
  assert.equal(byType.Ready?.reason, "AllReplicasReady");
  assert.equal(byType.Progressing?.status, "False");
  assert.equal(byType.Degraded?.status, "False");
  assert.equal(byType.PartitionsBalanced?.status, "True");
  assert.equal(byType.PartitionsBalanced?.message, "64 partitions over 2 pods (32 each), epoch 1.");
  for (const x of s.conditions ?? []) {
    assert.equal(x.observedGeneration, 4);
    assert.equal(x.lastTransitionTime, "2026-11-23T12:00:00Z");
  }
});

test("invalid spec: Degraded with the reason, observedGeneration unchanged, nothing else claimed", () => {
  const c = makeCluster({}, { generation: 3 });
  c.status = { observedGeneration: 2 };
  const s = computeStatus(
    c,
    observed({
      deployment: undefined,
      readyPods: [],
      assignment: undefined,
      problem: { reason: "InvalidSpec", message: "spec.autoscaling: minReplicas 5 exceeds maxReplicas 3" },
    }),
  );
  assert.equal(s.observedGeneration, 2);
  assert.deepEqual(
    [
      conditionOf(s, "Degraded")?.status,
      conditionOf(s, "Degraded")?.reason,
      conditionOf(s, "Degraded")?.message,
    ],
    ["True", "InvalidSpec", "spec.autoscaling: minReplicas 5 exceeds maxReplicas 3"],
  );
  assert.equal(conditionOf(s, "Ready")?.reason, "InvalidSpec");
  assert.equal(conditionOf(s, "Progressing")?.status, "False");
  assert.equal(conditionOf(s, "PartitionsBalanced")?.reason, "NoReadyPods");
});

test("Progressing reasons follow the Deployment's rollout", () => {
  const c = makeCluster({ replicas: 3 });
  const reason = (d: Observed["deployment"]) =>
    conditionOf(computeStatus(c, observed({ deployment: d })), "Progressing");
  assert.equal(reason(undefined)?.reason, "Creating");
  assert.equal(
    reason(deployment({ replicas: 3, generation: 2, observedGeneration: 1 }))?.reason,
    "RolloutPending",
  );
  assert.equal(reason(deployment({ replicas: 3, updated: 1 }))?.reason, "RollingOut");
  assert.equal(
    reason(deployment({ replicas: 3, updated: 1 }))?.message,
    "1 of 3 chat-node pods run the latest template.",
  );
  assert.equal(reason(deployment({ replicas: 3, statusReplicas: 4 }))?.reason, "ScalingDown");
  assert.equal(reason(deployment({ replicas: 3, available: 2 }))?.reason, "WaitingForPods");
  assert.equal(reason(deployment({ replicas: 3 }))?.status, "False");
});

test("Ready is False with an actionable reason until enough pods are Ready and partitions assigned", () => {
  const c = makeCluster({ replicas: 3 });
  const ready = (o: Partial<Observed>) =>
    conditionOf(computeStatus(c, observed({ deployment: deployment({ replicas: 3 }), ...o })), "Ready");
  assert.equal(ready({ readyPods: [] })?.reason, "NoReadyPods");
  assert.equal(ready({ readyPods: ["a", "b"] })?.message, "2 of 3 chat-node pods are Ready.");
  assert.equal(
    ready({ readyPods: ["a", "b", "c"], assignment: { epoch: 1, owners: { "0": "a" } } })?.reason,
    "PartitionsUnassigned",
  );
  assert.equal(
    ready({ readyPods: ["a", "b", "c"], assignment: assignPartitions(undefined, ["a", "b", "c"], 64) })
      ?.status,
    "True",
  );
  assert.equal(
    conditionOf(computeStatus(makeCluster({ replicas: 0 }), observed({ readyPods: [] })), "Ready")?.reason,
    "ScaledToZero",
  );
  assert.equal(
    conditionOf(computeStatus(c, observed({ deployment: undefined })), "Ready")?.reason,
    "NoDeployment",
  );
});

test("with autoscaling, the desired count is the Deployment's (the HPA's)", () => {
  const c = makeCluster({ autoscaling: { enabled: true }, replicas: 9 });
  const s = computeStatus(c, observed({ deployment: deployment({ replicas: 2 }) }));
  assert.equal(conditionOf(s, "Ready")?.status, "True");
});

test("Degraded reports a stuck rollout and failed replicas", () => {
  const c = makeCluster();
  const stuck = deployment({
    conditions: [
      {
        type: "Progressing",
        status: "False",
        reason: "ProgressDeadlineExceeded",
        message: "ReplicaSet demo-x has timed out progressing.",
      },
    ],
  });
  assert.equal(
    conditionOf(computeStatus(c, observed({ deployment: stuck })), "Degraded")?.reason,
    "RolloutStuck",
  );
  const failing = deployment({
    conditions: [
      { type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "quota exceeded" },
    ],
  });
  const d = conditionOf(computeStatus(c, observed({ deployment: failing })), "Degraded");
  assert.equal(d?.reason, "ReplicaFailure");
  assert.match(d?.message ?? "", /quota exceeded/);
  const apply = computeStatus(
    c,
    observed({ problem: { reason: "ApplyFailed", message: "Deployment demo: forbidden" } }),
  );
  assert.equal(conditionOf(apply, "Degraded")?.reason, "ApplyFailed");
});

test("PartitionsBalanced is False when an owner is no longer Ready", () => {
  const c = makeCluster();
  const s = computeStatus(
    c,
    observed({ readyPods: ["a"], assignment: assignPartitions(undefined, ["a", "b"], 64) }),
  );
  assert.equal(conditionOf(s, "PartitionsBalanced")?.reason, "OwnerNotReady");
});

test("lastTransitionTime moves only when a condition's status changes", () => {
  const c = makeCluster();
  const first = computeStatus(c, observed());
  c.status = first;
  const same = computeStatus(c, observed({ now: later }));
  assert.equal(statusChanged(first, same), false, "nothing changed → no write");
  const changed = computeStatus(c, observed({ now: later, readyPods: ["demo-1"] }));
  assert.equal(conditionOf(changed, "Ready")?.lastTransitionTime, "2026-11-23T12:05:00Z");
  assert.equal(conditionOf(changed, "Degraded")?.lastTransitionTime, "2026-11-23T12:00:00Z");
  assert.equal(statusChanged(first, changed), true);
});

test("statusChanged ignores key order and sees connection changes", () => {
  const c = makeCluster();
  const a = computeStatus(c, observed({ connections: 1 }));
  const reordered = JSON.parse(JSON.stringify({ conditions: a.conditions, ...a }));
  assert.equal(statusChanged(a, reordered), false);
  assert.equal(statusChanged(a, { ...a, connections: 2 }), true);
  assert.equal(statusChanged(undefined, a), true);
});
