import { test } from "node:test";
import assert from "node:assert/strict";
import { kneeOf, pastKnee } from "../../src/knee.js";

const limits = { p99LimitMs: 250, acceptedShare: 0.9 };
const step = (offeredRate: number, p99: number, acceptedRate = offeredRate) => ({
  offeredRate,
  acceptedRate,
  sendToDeliver: { p99 },
});

test("the knee is the step before the first p99 past the limit", () => {
  const steps = [step(100, 20), step(140, 60), step(196, 251), step(274, 900)];
  assert.deepEqual(kneeOf(steps, limits), { kneeIndex: 2, kneeRate: 140 });
});

test("a step accepting under 90 % of the offered rate is past the knee, whatever its p99", () => {
  assert.equal(pastKnee(step(1000, 10, 899), limits), true);
  assert.equal(pastKnee(step(1000, 10, 900), limits), false);
  assert.deepEqual(kneeOf([step(100, 10), step(140, 10, 100)], limits), { kneeIndex: 1, kneeRate: 100 });
});

test("missing deliveries (p99 Infinity or NaN) are past the knee", () => {
  assert.equal(pastKnee(step(100, Infinity), limits), true);
  assert.equal(pastKnee(step(100, NaN), limits), true);
  assert.equal(pastKnee(step(100, 250), limits), false);
});

test("no knee reached: the last rate is a lower bound; first step past: 0", () => {
  assert.deepEqual(kneeOf([step(100, 10), step(140, 20)], limits), { kneeIndex: -1, kneeRate: 140 });
  assert.deepEqual(kneeOf([step(100, 300)], limits), { kneeIndex: 0, kneeRate: 0 });
  assert.deepEqual(kneeOf([], limits), { kneeIndex: -1, kneeRate: 0 });
});
