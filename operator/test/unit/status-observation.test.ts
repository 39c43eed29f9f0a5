/**
 * Status from one observation, and the Degraded reasons a person can act on: a missing Secret or key,
 * a backing service the chat-nodes report unreachable.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { createReconciler } from "../../src/controller/reconcile.js";
import { conditionOf } from "../../src/status.js";
import { FakeApi, fakeDeps, pod } from "../support/fake-api.js";
import { makeCluster } from "../support/fixtures.js";

function setup(spec: Parameters<typeof makeCluster>[0] = {}) {
  const api = new FakeApi();
  api.clusters.set("chat/demo", makeCluster({ partitions: 4, ...spec }));
  const { deps, events } = fakeDeps(api);
  return { api, events, reconcile: createReconciler(deps) };
}
const status = (api: FakeApi) => api.clusters.get("chat/demo")?.status;
const withReadiness = (p: V1Pod, failing: string): V1Pod => ({
  ...p,
  metadata: { ...p.metadata, annotations: { ...p.metadata?.annotations, "vibetalk.io/readiness": failing } },
});

test("Ready and readyReplicas come from the same pod list, whatever the Deployment's status says", async () => {
  const { api, reconcile } = setup({ replicas: 2 });
  await reconcile("chat/demo");
  // the Deployment's status lags: it still says 0 ready while both pods are Ready
  api.pods = [pod("demo-a"), pod("demo-b")];
  await reconcile("chat/demo");
  assert.equal(conditionOf(status(api), "Ready")?.status, "True");
  assert.equal(status(api)?.readyReplicas, 2, "readyReplicas agrees with Ready=True");
  assert.equal(status(api)?.replicas, 2);
  // and the other way round: the Deployment says 2 ready, the pods have gone unready
  api.rollOut("chat", "demo");
  api.pods = [pod("demo-a", { ready: false }), pod("demo-b", { ready: false })];
  await reconcile("chat/demo");
  assert.equal(conditionOf(status(api), "Ready")?.status, "False");
  assert.equal(status(api)?.readyReplicas, 0);
  // a terminating pod is not a replica
  api.pods = [pod("demo-a"), pod("demo-b"), pod("demo-c", { terminating: true })];
  await reconcile("chat/demo");
  assert.equal(status(api)?.replicas, 2);
  assert.equal(status(api)?.readyReplicas, 2);
});

test("a Secret key that does not exist: Degraded SecretKeyMissing naming the Secret, the key and the field", async () => {
  const { api, events, reconcile } = setup({ redis: { secretRef: { name: "redis", key: "redis-url" } } });
  await reconcile("chat/demo");
  const d = conditionOf(status(api), "Degraded");
  assert.equal(d?.status, "True");
  assert.equal(d?.reason, "SecretKeyMissing");
  assert.match(d?.message ?? "", /Secret "redis" has no key "redis-url" \(spec.redis.secretRef.key\)/);
  assert.match(d?.message ?? "", /kubectl -n chat edit secret redis/);
  assert.ok(events.some((e) => e.type === "Warning" && e.reason === "SecretKeyMissing"));
  api.secrets.set("chat/redis", { "redis-url": "redis://x" });
  await reconcile("chat/demo");
  assert.equal(conditionOf(status(api), "Degraded")?.status, "False");
});

test("a Secret that does not exist: Degraded SecretNotFound; it wins over the pods' CreateContainerConfigError", async () => {
  const { api, reconcile } = setup();
  api.secrets.delete("chat/jwt");
  const waiting: V1Pod = {
    ...pod("demo-a", { ready: false }),
    status: {
      phase: "Pending",
      containerStatuses: [
        {
          name: "chat-node",
          image: "x",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "jwt" not found' } },
        },
      ],
    },
  };
  api.pods = [waiting];
  await reconcile("chat/demo");
  const d = conditionOf(status(api), "Degraded");
  assert.equal(d?.reason, "SecretNotFound");
  assert.match(
    d?.message ?? "",
    /Secret "jwt" \(spec.jwtSecretRef\) does not exist: create it in namespace chat/,
  );
});

test("chat-nodes reporting Redis unreachable: Degraded BackendUnavailable naming the pods and the Secret field", async () => {
  const { api, events, reconcile } = setup({ replicas: 2 });
  await reconcile("chat/demo");
  api.pods = [withReadiness(pod("demo-a"), "redis"), withReadiness(pod("demo-b"), "redis,store")];
  await reconcile("chat/demo");
  const d = conditionOf(status(api), "Degraded");
  assert.equal(d?.reason, "BackendUnavailable");
  assert.match(
    d?.message ?? "",
    /1 chat-node pod \(demo-b\) cannot reach MongoDB; check the URL in spec.mongodb.secretRef/,
  );
  assert.match(
    d?.message ?? "",
    /2 chat-node pods \(demo-a, demo-b\) cannot reach Redis; check the URL in spec.redis.secretRef/,
  );
  assert.ok(events.some((e) => e.type === "Warning" && e.reason === "BackendUnavailable"));
  assert.equal(conditionOf(status(api), "Ready")?.status, "True", "the pods still take messages");
  // draining is a pod's own shutdown, an empty annotation all checks passing
  api.pods = [withReadiness(pod("demo-a"), "draining"), withReadiness(pod("demo-b"), "")];
  await reconcile("chat/demo");
  assert.equal(conditionOf(status(api), "Degraded")?.status, "False");
});
