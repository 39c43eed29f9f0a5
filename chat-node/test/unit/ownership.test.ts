import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeReleaseRecord } from "@vibetalk/protocol/cluster";
import { planOwnership } from "../../src/kubernetes/ownership.js";

const at = "2026-11-23T00:00:00Z";
const held = (holder: string) => encodeReleaseRecord({ holder, epoch: 1, at });
const assignment = { epoch: 2, owners: { "0": "a", "1": "a", "2": "b", "3": "b" } };

test("fresh partitions (no record) are claimed; nothing to stop", () => {
  assert.deepEqual(planOwnership("a", new Set(), assignment, {}), {
    stop: [],
    claim: [0, 1],
    waiting: [],
    release: [],
  });
});

test("a partition still held by its previous owner waits for the release", () => {
  const releases = { "0": held("old"), "1": held("") };
  assert.deepEqual(planOwnership("a", new Set(), assignment, releases), {
    stop: [],
    claim: [1],
    waiting: [0],
    release: [],
  });
});

test("a partition no longer assigned here is stopped (then released)", () => {
  const releases = { "0": held("a"), "1": held("a"), "2": held("a") };
  assert.deepEqual(planOwnership("a", new Set([0, 1, 2]), assignment, releases), {
    stop: [2],
    claim: [],
    waiting: [],
    release: [],
  });
});

test("a partition whose record names another holder is stopped at once, even if assigned here", () => {
  const releases = { "0": held("intruder") };
  assert.deepEqual(planOwnership("a", new Set([0]), assignment, releases).stop, [0]);
});

test("our own record is reclaimed after a restart under the same name", () => {
  assert.deepEqual(planOwnership("a", new Set(), assignment, { "0": held("a") }).claim, [0, 1]);
});

test("no assignment at all: stop everything, claim nothing", () => {
  assert.deepEqual(planOwnership("a", new Set([0, 5]), undefined, {}), {
    stop: [0, 5],
    claim: [],
    waiting: [],
    release: [],
  });
});

test("records a restarted pod still holds for partitions now assigned elsewhere are released", () => {
  const releases = { "0": held("a"), "2": held("a"), "3": held("b") };
  assert.deepEqual(planOwnership("a", new Set(), assignment, releases), {
    stop: [],
    claim: [0, 1],
    waiting: [],
    release: [2],
  });
});
