import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { containerEnv, expand, EnvResolutionError } from "../../src/index.js";

const pod: V1Pod = {
  metadata: { name: "p1", namespace: "ns", uid: "u1", labels: { app: "x" } },
  spec: {
    nodeName: "runner-0",
    containers: [
      {
        name: "c",
        envFrom: [{ configMapRef: { name: "cm" }, prefix: "CM_" }],
        env: [
          { name: "A", value: "1" },
          { name: "B", value: "$(A)-$(MISSING)-$$(A)" },
          { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: "S", valueFrom: { secretKeyRef: { name: "sec", key: "k" } } },
          { name: "OPT", valueFrom: { secretKeyRef: { name: "sec", key: "nope", optional: true } } },
        ],
      },
    ],
  },
};
const sources = {
  secret: async (_ns: string, name: string) => (name === "sec" ? { k: "secret-value" } : undefined),
  configMap: async (_ns: string, name: string) => (name === "cm" ? { X: "y" } : undefined),
};

test("env: values, $(VAR) expansion, fieldRefs, secret and configmap refs, envFrom prefix", async () => {
  const env = await containerEnv(pod, pod.spec!.containers[0]!, "127.1.0.2", sources);
  assert.deepEqual(env, {
    CM_X: "y",
    A: "1",
    B: "1-$(MISSING)-$(A)",
    POD: "p1",
    IP: "127.1.0.2",
    APP: "x",
    S: "secret-value",
  });
});

test("env: a missing required key is an error naming it", async () => {
  const c = { name: "c", env: [{ name: "S", valueFrom: { secretKeyRef: { name: "sec", key: "absent" } } }] };
  await assert.rejects(
    containerEnv(pod, c, "127.1.0.2", sources),
    (e: Error) => e instanceof EnvResolutionError && /no key absent/.test(e.message),
  );
});

test("expand leaves unknown references as they are", () => {
  assert.equal(expand("$(A)/$(B)", { A: "a" }), "a/$(B)");
});
