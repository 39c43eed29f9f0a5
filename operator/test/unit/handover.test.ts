/**
 * The replicas hand-over to and from the HPA, on the fake API whose Deployments model server-side apply's
 * field ownership of spec.replicas (a field no manager sends any more resets to 1).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Deployment } from "@kubernetes/client-node";
import { createReconciler } from "../../src/controller/reconcile.js";
import { FakeApi, fakeDeps, pod } from "../support/fake-api.js";
import { makeCluster } from "../support/fixtures.js";

function setup(spec: Parameters<typeof makeCluster>[0]) {
  const api = new FakeApi();
  api.clusters.set("chat/demo", makeCluster(spec));
  const { deps, events } = fakeDeps(api);
  return { api, events, reconcile: createReconciler(deps) };
}
const replicasOf = async (api: FakeApi) =>
  ((await api.getDeployment("chat", "demo")) as V1Deployment | undefined)?.spec?.replicas;
const change = (api: FakeApi, f: (spec: ReturnType<typeof makeCluster>["spec"]) => void) => {
  const c = api.clusters.get("chat/demo");
  assert.ok(c);
  f(c.spec);
  c.metadata.generation = (c.metadata.generation ?? 1) + 1;
};

test("turning autoscaling on keeps the live count: the apply that drops replicas does not reset it to 1", async () => {
  const { api, events, reconcile } = setup({ replicas: 3, partitions: 6 });
  await reconcile("chat/demo");
  api.rollOut("chat", "demo");
  api.pods = [pod("a"), pod("b"), pod("c")];
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 3);
  change(api, (s) => (s.autoscaling = { ...s.autoscaling, enabled: true, minReplicas: 2 }));
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 3, "still 3 pods after the hand-over");
  assert.ok(api.objects.has("HorizontalPodAutoscaler/chat/demo"));
  assert.deepEqual(
    [...(api.replicaOwners.get("Deployment/chat/demo") ?? [])],
    ["vibetalk-operator-handover"],
  );
  assert.ok(
    events.some((e) => e.reason === "ReplicasHandedOver" && /takes over at the current 3/.test(e.note)),
  );
  // later reconciles (resync) leave it alone, and the HPA's own writes stick
  await reconcile("chat/demo");
  api.hpaScale("chat", "demo", 5);
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 5);
});

test("a new autoscaled cluster starts at minReplicas, not at 1", async () => {
  const { api, reconcile } = setup({ autoscaling: { enabled: true, minReplicas: 3 } });
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 3);
  assert.deepEqual(
    [...(api.replicaOwners.get("Deployment/chat/demo") ?? [])],
    ["vibetalk-operator-handover"],
  );
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 3);
});

test("turning autoscaling off keeps the HPA's current count and writes it into spec.replicas", async () => {
  const { api, events, reconcile } = setup({ autoscaling: { enabled: true, minReplicas: 2 } });
  await reconcile("chat/demo");
  api.hpaScale("chat", "demo", 5);
  await reconcile("chat/demo");
  change(api, (s) => (s.autoscaling = { ...s.autoscaling, enabled: false }));
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 5, "the HPA's 5 pods stay");
  assert.deepEqual(api.clusterReplicaWrites, [5]);
  assert.equal(api.clusters.get("chat/demo")?.spec.replicas, 5);
  assert.ok(!api.objects.has("HorizontalPodAutoscaler/chat/demo"));
  assert.ok(events.some((e) => e.reason === "ReplicasHandedOver" && /keeping the HPA's 5/.test(e.note)));
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 5);
  assert.deepEqual(api.clusterReplicaWrites, [5], "written once");
});

test("turning autoscaling off together with a new spec.replicas takes that count", async () => {
  const { api, reconcile } = setup({ autoscaling: { enabled: true, minReplicas: 2 } });
  await reconcile("chat/demo");
  api.hpaScale("chat", "demo", 5);
  await reconcile("chat/demo");
  change(api, (s) => {
    s.autoscaling = { ...s.autoscaling, enabled: false };
    s.replicas = 3;
  });
  await reconcile("chat/demo");
  assert.equal(await replicasOf(api), 3);
  assert.deepEqual(api.clusterReplicaWrites, []);
});
