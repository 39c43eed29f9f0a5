import assert from "node:assert/strict";
import { test } from "node:test";
import { createReconciler, TOPOLOGY_FINALIZER } from "../../src/controller/reconcile.js";
import { conditionOf } from "../../src/status.js";
import { FakeApi, fakeDeps, pod } from "../support/fake-api.js";
import { makeCluster } from "../support/fixtures.js";

function setup(spec: Parameters<typeof makeCluster>[0] = {}) {
  const api = new FakeApi();
  api.clusters.set("chat/demo", makeCluster(spec));
  const { deps, events, cleaned } = fakeDeps(api);
  return { api, events, cleaned, deps, reconcile: createReconciler(deps) };
}

test("a new cluster: objects applied, assignment published, status written with Ready=False until pods are Ready", async () => {
  const { api, events, reconcile } = setup({ partitions: 8 });
  const out = await reconcile("chat/demo");
  assert.equal(out.result, "success");
  assert.ok(out.requeueAfterMs, "not converged yet → requeue");
  for (const k of [
    "Deployment/chat/demo",
    "Service/chat/demo",
    "Service/chat/demo-headless",
    "ConfigMap/chat/demo-releases",
    "ConfigMap/chat/demo-partitions",
  ]) {
    assert.ok(api.objects.has(k), k);
  }
  const status = api.clusters.get("chat/demo")?.status;
  assert.equal(status?.observedGeneration, 1);
  assert.equal(conditionOf(status, "Ready")?.status, "False");
  assert.deepEqual(status?.partitionAssignment, { epoch: 0, owners: {} });
  assert.ok(events.some((e) => e.reason === "Applied"));
});

test("Ready pods get the partitions; a Rebalanced event and Ready status follow; no write when nothing changed", async () => {
  const { api, events, reconcile } = setup({ partitions: 8, replicas: 2 });
  await reconcile("chat/demo");
  api.rollOut("chat", "demo");
  api.pods = [pod("demo-a", { connections: 5 }), pod("demo-b", { connections: 7 })];
  const out = await reconcile("chat/demo");
  assert.equal(out.requeueAfterMs, undefined, "converged");
  const status = api.clusters.get("chat/demo")?.status;
  assert.equal(conditionOf(status, "Ready")?.status, "True");
  assert.equal(status?.connections, 12);
  assert.equal(status?.partitionAssignment?.epoch, 1);
  const cm = api.objects.get("ConfigMap/chat/demo-partitions") as { data?: Record<string, string> };
  assert.equal(cm.data?.["assignment.json"], JSON.stringify(status?.partitionAssignment));
  assert.ok(
    events.some((e) => e.reason === "Rebalanced" && /8 partitions over 2 Ready pods, 8 moved/.test(e.note)),
  );
  const writes = api.statusWrites;
  const applied = api.applied.length;
  await reconcile("chat/demo");
  assert.equal(api.statusWrites, writes, "unchanged status is not written");
  assert.equal(api.applied.length, applied, "unchanged objects are not re-applied before the resync period");
});

test("a pod leaving moves only its partitions", async () => {
  const { api, reconcile } = setup({ partitions: 9, replicas: 3 });
  await reconcile("chat/demo");
  api.rollOut("chat", "demo");
  api.pods = [pod("a"), pod("b"), pod("c")];
  await reconcile("chat/demo");
  const before = api.clusters.get("chat/demo")?.status?.partitionAssignment;
  api.pods = [pod("a"), pod("b"), pod("c", { terminating: true })];
  await reconcile("chat/demo");
  const after = api.clusters.get("chat/demo")?.status?.partitionAssignment;
  assert.equal(after?.epoch, (before?.epoch ?? 0) + 1);
  for (const [k, owner] of Object.entries(before?.owners ?? {})) {
    if (owner !== "c") assert.equal(after?.owners[k], owner, `partition ${k} stays with ${owner}`);
    else assert.notEqual(after?.owners[k], "c");
  }
});

test("an invalid spec applies nothing and reports Degraded/InvalidSpec", async () => {
  const { api, events, reconcile } = setup({ autoscaling: { minReplicas: 5, maxReplicas: 3 } });
  const out = await reconcile("chat/demo");
  assert.equal(out.result, "invalid");
  assert.equal(api.applied.length, 0);
  const status = api.clusters.get("chat/demo")?.status;
  assert.equal(conditionOf(status, "Degraded")?.reason, "InvalidSpec");
  assert.match(conditionOf(status, "Degraded")?.message ?? "", /minReplicas 5 exceeds maxReplicas 3/);
  assert.equal(status?.observedGeneration, undefined, "observedGeneration moves only on success");
  assert.ok(events.some((e) => e.type === "Warning" && e.reason === "InvalidSpec"));
});

test("changing partitions under a running Deployment is refused even without the CRD's CEL rule", async () => {
  const { api, reconcile } = setup({ partitions: 8 });
  await reconcile("chat/demo");
  const c = api.clusters.get("chat/demo");
  assert.ok(c);
  c.spec.partitions = 16;
  c.metadata.generation = 2;
  const applied = api.applied.length;
  assert.equal((await reconcile("chat/demo")).result, "invalid");
  assert.equal(api.applied.length, applied);
  assert.match(
    conditionOf(api.clusters.get("chat/demo")?.status, "Degraded")?.message ?? "",
    /partitions: changed from 8 to 16/,
  );
});

test("an apply failure is reported in Degraded and rethrown for backoff", async () => {
  const { api, reconcile } = setup();
  api.failApply = (obj) =>
    obj.kind === "Deployment"
      ? Object.assign(new Error("x"), { code: 403, body: { message: "deployments is forbidden" } })
      : undefined;
  await assert.rejects(reconcile("chat/demo"), /applying Deployment demo failed: deployments is forbidden/);
  const d = conditionOf(api.clusters.get("chat/demo")?.status, "Degraded");
  assert.equal(d?.reason, "ApplyFailed");
});

test("autoscaling off removes the HPA; on applies it", async () => {
  const { api, reconcile } = setup({ autoscaling: { enabled: true } });
  await reconcile("chat/demo");
  assert.ok(api.objects.has("HorizontalPodAutoscaler/chat/demo"));
  const c = api.clusters.get("chat/demo");
  assert.ok(c);
  c.spec.autoscaling.enabled = false;
  c.metadata.generation = 2;
  await reconcile("chat/demo");
  assert.ok(!api.objects.has("HorizontalPodAutoscaler/chat/demo"));
});

test("finalizer only with deletionPolicy Delete; deletion cleans the topology then releases the object", async () => {
  const { api, cleaned, reconcile } = setup({ deletionPolicy: "Delete" });
  await reconcile("chat/demo");
  const c = api.clusters.get("chat/demo");
  assert.deepEqual(c?.metadata.finalizers, [TOPOLOGY_FINALIZER]);
  assert.ok(c);
  c.metadata.deletionTimestamp = new Date().toISOString();
  assert.equal((await reconcile("chat/demo")).result, "deleted");
  assert.deepEqual(cleaned, ["demo"]);
  assert.deepEqual(api.clusters.get("chat/demo")?.metadata.finalizers, []);

  const retain = setup();
  await retain.reconcile("chat/demo");
  assert.equal(retain.api.clusters.get("chat/demo")?.metadata.finalizers, undefined);
});

test("a failing topology cleanup keeps the finalizer", async () => {
  const api = new FakeApi();
  api.clusters.set(
    "chat/demo",
    makeCluster({ deletionPolicy: "Delete" }, { finalizers: [TOPOLOGY_FINALIZER], deletionTimestamp: "now" }),
  );
  const { deps, events } = fakeDeps(api, { clean: async () => Promise.reject(new Error("ECONNREFUSED")) });
  await assert.rejects(createReconciler(deps)("chat/demo"), /ECONNREFUSED/);
  assert.deepEqual(api.clusters.get("chat/demo")?.metadata.finalizers, [TOPOLOGY_FINALIZER]);
  assert.ok(events.some((e) => e.reason === "TopologyCleanupFailed"));
});

test("release records of gone pods are freed; live holders are kept", async () => {
  const { api, reconcile } = setup({ partitions: 4, replicas: 1 });
  await reconcile("chat/demo");
  api.rollOut("chat", "demo");
  api.pods = [pod("alive")];
  const cm = api.objects.get("ConfigMap/chat/demo-releases") as { data?: Record<string, string> };
  cm.data = {
    "0": JSON.stringify({ holder: "gone", epoch: 1, at: "t" }),
    "1": JSON.stringify({ holder: "alive", epoch: 1, at: "t" }),
  };
  await reconcile("chat/demo");
  const data = (api.objects.get("ConfigMap/chat/demo-releases") as { data: Record<string, string> }).data;
  assert.equal((JSON.parse(data["0"] ?? "{}") as { holder: string; releasedBy: string }).holder, "");
  assert.equal((JSON.parse(data["0"] ?? "{}") as { releasedBy: string }).releasedBy, "operator");
  assert.equal((JSON.parse(data["1"] ?? "{}") as { holder: string }).holder, "alive");
});

test("a deleted ChatCluster is forgotten", async () => {
  const { api, reconcile } = setup();
  api.clusters.clear();
  assert.equal((await reconcile("chat/demo")).result, "gone");
});
