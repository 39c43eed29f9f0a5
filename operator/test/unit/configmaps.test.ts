import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildPartitionsConfigMap,
  decodeAssignment,
  encodeAssignment,
} from "../../src/resources/partitions-configmap.js";
import { decodeReleaseRecord, releasesOfGonePods } from "../../src/resources/releases-configmap.js";
import { makeCluster } from "../support/fixtures.js";

test("partitions ConfigMap holds assignment.json with owners in partition order", () => {
  const cm = buildPartitionsConfigMap(makeCluster(), { epoch: 3, owners: { "10": "b", "2": "a", "0": "a" } });
  assert.equal(cm.metadata?.name, "demo-partitions");
  assert.equal(cm.data?.["assignment.json"], '{"epoch":3,"owners":{"0":"a","2":"a","10":"b"}}');
});

test("assignment encode/decode round-trips and rejects malformed text", () => {
  const a = { epoch: 7, owners: { "0": "pod-a", "1": "pod-b" } };
  assert.deepEqual(decodeAssignment(encodeAssignment(a)), a);
  assert.deepEqual(decodeAssignment('{"epoch":0,"owners":{}}'), { epoch: 0, owners: {} });
  for (const bad of [
    undefined,
    "",
    "{",
    "[]",
    '{"epoch":-1,"owners":{}}',
    '{"epoch":1,"owners":{"x":"a"}}',
    '{"epoch":1,"owners":{"0":""}}',
  ]) {
    assert.equal(decodeAssignment(bad), undefined, String(bad));
  }
});

test("release records of gone pods are released by the operator; live and terminating holders are kept", () => {
  const now = new Date("2026-11-23T12:00:00.000Z");
  const data = {
    "0": JSON.stringify({ holder: "gone", epoch: 2, at: "x" }),
    "1": JSON.stringify({ holder: "alive", epoch: 2, at: "x" }),
    "2": JSON.stringify({ holder: "", epoch: 2, releasedBy: "alive", at: "x" }),
    "3": "garbage",
  };
  const out = releasesOfGonePods(data, new Set(["alive"]), 5, now);
  assert.deepEqual(Object.keys(out), ["0"]);
  assert.deepEqual(decodeReleaseRecord(out["0"]), {
    holder: "",
    epoch: 5,
    releasedBy: "operator",
    at: "2026-11-23T12:00:00.000Z",
  });
});
