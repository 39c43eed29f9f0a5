import assert from "node:assert/strict";
import { test } from "node:test";
import { podConnections, sumConnections } from "../../src/controller/connections.js";
import { errorMessage } from "../../src/controller/errors.js";
import { clusterKeyOf } from "../../src/controller/operator.js";
import { isPodReady, readyPodNames } from "../../src/controller/pods.js";
import { runningFixedValues } from "../../src/controller/validate.js";
import { buildDeployment } from "../../src/resources/deployment.js";
import { makeCluster } from "../support/fixtures.js";
import { pod } from "../support/fake-api.js";

test("Ready = Running, Ready condition True, not terminating", () => {
  assert.equal(isPodReady(pod("a")), true);
  assert.equal(isPodReady(pod("a", { ready: false })), false);
  assert.equal(isPodReady(pod("a", { terminating: true })), false);
  assert.equal(isPodReady({ metadata: { name: "p" }, status: { phase: "Pending" } }), false);
  assert.deepEqual(readyPodNames([pod("c"), pod("a"), pod("b", { ready: false })]), ["a", "c"]);
});

test("connections come from the pod annotation; bad or missing values count 0", () => {
  assert.equal(podConnections(pod("a", { connections: 42 })), 42);
  assert.equal(podConnections(pod("a")), 0);
  assert.equal(podConnections(pod("a", { connections: 42, terminating: true })), 0);
  const bad = pod("a");
  bad.metadata = { ...bad.metadata, annotations: { "vibetalk.io/connections": "-3" } };
  assert.equal(podConnections(bad), 0);
  assert.equal(sumConnections([pod("a", { connections: 1 }), pod("b", { connections: 2 }), bad]), 3);
});

test("events map to their ChatCluster", () => {
  assert.equal(
    clusterKeyOf({
      apiVersion: "vibetalk.io/v1alpha1",
      kind: "ChatCluster",
      metadata: { name: "x", namespace: "n" },
    }),
    "n/x",
  );
  assert.equal(
    clusterKeyOf({
      kind: "Deployment",
      metadata: {
        name: "d",
        namespace: "n",
        ownerReferences: [{ apiVersion: "vibetalk.io/v1alpha1", kind: "ChatCluster", name: "x", uid: "u" }],
      },
    }),
    "n/x",
  );
  assert.equal(
    clusterKeyOf({
      kind: "Pod",
      metadata: { name: "p", namespace: "n", labels: { "app.kubernetes.io/instance": "y" } },
    }),
    "n/y",
  );
  assert.equal(clusterKeyOf({ kind: "Pod", metadata: { name: "p" } }), undefined);
});

test("the running partition count is read from the Deployment's env", () => {
  assert.deepEqual(runningFixedValues(buildDeployment(makeCluster({ partitions: 32, userExchanges: 4 }))), {
    partitions: 32,
    userExchanges: 4,
  });
  assert.deepEqual(runningFixedValues(undefined), {});
});

test("API error messages are dug out of client-node's wrapped bodies", () => {
  const wrapped =
    'HTTP-Code: 422\nMessage: x\nBody: "{\\"kind\\":\\"Status\\",\\"message\\":\\"spec.x: \\\\\\"y\\\\\\" bad\\"}"\nHeaders: {}';
  assert.equal(errorMessage({ code: 422, body: wrapped }), 'spec.x: "y" bad');
  assert.equal(errorMessage({ code: 404, body: { message: "nope" } }), "nope");
  assert.equal(errorMessage(new Error("plain")), "plain");
});
