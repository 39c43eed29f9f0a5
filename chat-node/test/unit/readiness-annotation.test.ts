import assert from "node:assert/strict";
import { test } from "node:test";
import { failingChecks, reportAnnotations } from "../../src/kubernetes/annotations.js";

test("the readiness annotation lists the failing /readyz checks, sorted; draining counts when true", () => {
  const ok = { broker: true, redis: true, store: true, draining: false, publishing: true };
  assert.equal(failingChecks(ok), "");
  assert.equal(failingChecks({ ...ok, store: false, redis: false }), "redis,store");
  assert.equal(failingChecks({ ...ok, broker: false, publishing: false }), "broker,publishing");
  assert.equal(failingChecks({ ...ok, draining: true }), "draining");
  // what the pod admission policy accepts: ^((broker|draining|publishing|redis|store)(,…)*)?$
  const all = failingChecks({ broker: false, redis: false, store: false, draining: true, publishing: false });
  assert.match(
    all,
    /^((broker|draining|publishing|redis|store)(,(broker|draining|publishing|redis|store))*)?$/,
  );
  assert.ok(all.length <= 64);
});

test("one patch carries the count, the same count as the pod's deletion cost, and the failing checks", () => {
  assert.deepEqual(reportAnnotations(12, "redis"), {
    "vibetalk.io/connections": "12",
    "controller.kubernetes.io/pod-deletion-cost": "12",
    "vibetalk.io/readiness": "redis",
  });
  // /readyz did not answer: the readiness annotation is left as it is
  assert.deepEqual(Object.keys(reportAnnotations(0, undefined)).sort(), [
    "controller.kubernetes.io/pod-deletion-cost",
    "vibetalk.io/connections",
  ]);
});
