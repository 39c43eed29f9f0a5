import assert from "node:assert/strict";
import { test } from "node:test";
import { applyDefaults, validateAgainst } from "../../src/api/schema.js";
import { chatClusterSpecSchema, type ChatClusterSpec } from "../../src/api/v1alpha1.js";

const minimal = {
  image: "vibetalk/chat-node:1",
  rabbitmq: { secretRef: { name: "rmq" } },
  redis: { secretRef: { name: "redis" } },
  mongodb: { secretRef: { name: "mongo" } },
  jwtSecretRef: { name: "jwt" },
};

test("defaults apply as the API server applies them, nested under defaulted objects", () => {
  const spec = applyDefaults(chatClusterSpecSchema.json, minimal) as ChatClusterSpec;
  assert.equal(spec.replicas, 2);
  assert.equal(spec.partitions, 64);
  assert.equal(spec.userExchanges, 16);
  assert.equal(spec.deletionPolicy, "Retain");
  assert.equal(spec.drainSeconds, 25);
  assert.deepEqual(spec.autoscaling, {
    enabled: false,
    minReplicas: 2,
    maxReplicas: 10,
    targetConnectionsPerPod: 5000,
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: "Max" },
      scaleDown: { stabilizationWindowSeconds: 600, selectPolicy: "Max" },
    },
  });
  assert.deepEqual(spec.service, { type: "ClusterIP", port: 80 });
  assert.deepEqual(spec.podDisruptionBudget, { enabled: true });
  assert.deepEqual(spec.metrics, { serviceMonitor: { enabled: false, interval: "30s" } });
  assert.equal(spec.rabbitmq.secretRef.key, "url");
  assert.equal(spec.jwtSecretRef.key, "secret");
  assert.equal(spec.resources, undefined);
});

test("given values are kept; defaults fill only what is missing", () => {
  const spec = applyDefaults(chatClusterSpecSchema.json, {
    ...minimal,
    autoscaling: { enabled: true, maxReplicas: 4 },
  }) as ChatClusterSpec;
  assert.deepEqual(spec.autoscaling, {
    enabled: true,
    minReplicas: 2,
    maxReplicas: 4,
    targetConnectionsPerPod: 5000,
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: "Max" },
      scaleDown: { stabilizationWindowSeconds: 600, selectPolicy: "Max" },
    },
  });
});

test("a defaulted minimal spec validates", () => {
  assert.deepEqual(
    validateAgainst(chatClusterSpecSchema.json, applyDefaults(chatClusterSpecSchema.json, minimal)),
    [],
  );
});

test("validation names each bad field", () => {
  const bad = applyDefaults(chatClusterSpecSchema.json, {
    ...minimal,
    image: "",
    partitions: 0,
    deletionPolicy: "Purge",
    resources: { limits: { cpu: "lots" } },
    service: { port: 70000 },
  });
  const problems = validateAgainst(chatClusterSpecSchema.json, bad);
  assert.ok(
    problems.some((p) => p.startsWith("image: must be at least 1")),
    problems.join("\n"),
  );
  assert.ok(problems.some((p) => p.startsWith("partitions: must be at least 1")));
  assert.ok(problems.some((p) => p.startsWith("deletionPolicy: must be one of Retain, Delete")));
  assert.ok(problems.some((p) => p.startsWith("resources.limits.cpu: must match")));
  assert.ok(problems.some((p) => p.startsWith("service.port: must be at most 65535")));
});

test("missing required fields and wrong types are reported", () => {
  const problems = validateAgainst(chatClusterSpecSchema.json, { replicas: "two" });
  assert.ok(!problems.includes("image: is required"), "image defaults to the operator's own version");
  assert.ok(problems.includes("jwtSecretRef: is required"));
  assert.ok(problems.includes("replicas: must be an integer"));
});
