import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { assignPartitions } from "../../src/assignment.js";
import { podProblems } from "../../src/controller/pods.js";
import { computeStatus, conditionOf } from "../../src/status.js";
import { deployment } from "../support/deployments.js";
import { makeCluster } from "../support/fixtures.js";

const pod = (name: string, status: Partial<V1ContainerStatus>, deleting = false): V1Pod => ({
  metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  status: {
    phase: "Pending",
    containerStatuses: [
      {
        name: "chat-node",
        image: "localhost/vibetalk/chat-node:nope",
        imageID: "",
        ready: false,
        restartCount: 0,
        ...status,
      },
    ],
  },
});
const waiting = (reason: string, message?: string): Partial<V1ContainerStatus> => ({
  state: { waiting: { reason, ...(message ? { message } : {}) } },
});

test("image pull failures, start failures and crash loops are told apart; terminating pods are ignored", () => {
  const problems = podProblems([
    pod("b", waiting("ImagePullBackOff", 'Back-off pulling image "localhost/vibetalk/chat-node:nope"')),
    pod("a", waiting("ErrImageNeverPull", "Container image is not present with pull policy of Never")),
    pod("c", waiting("CreateContainerConfigError", "couldn't find key jwt in Secret default/x")),
    pod("d", {
      ...waiting("CrashLoopBackOff", "back-off 40s"),
      restartCount: 4,
      lastState: { terminated: { exitCode: 1, reason: "Error" } },
    }),
    pod("e", waiting("ContainerCreating")),
    pod("f", waiting("ImagePullBackOff"), true),
  ]);
  assert.deepEqual(
    problems.map((p) => [p.pod, p.kind, p.reason]),
    [
      ["a", "ImagePullFailed", "ErrImageNeverPull"],
      ["b", "ImagePullFailed", "ImagePullBackOff"],
      ["c", "CannotStart", "CreateContainerConfigError"],
      ["d", "CrashLooping", "CrashLoopBackOff"],
    ],
  );
  assert.match(
    problems[3]!.message,
    /restarted 4 times, last exit code 1 \(Error\); see kubectl logs d --previous/,
  );
});

test("Degraded names the pods, the image and the kubelet's reason; a pull failure outranks a crash loop", () => {
  const c = makeCluster();
  const observed = (pods: V1Pod[]) => ({
    deployment: deployment(),
    readyPods: [],
    assignment: assignPartitions(undefined, [], 64),
    connections: 0,
    podProblems: podProblems(pods),
    now: new Date(),
  });
  const pulled = conditionOf(
    computeStatus(
      c,
      observed([pod("x-1", waiting("ErrImagePull", "not found")), pod("x-2", waiting("CrashLoopBackOff"))]),
    ),
    "Degraded",
  );
  assert.equal(pulled?.status, "True");
  assert.equal(pulled?.reason, "ImagePullFailed");
  assert.equal(
    pulled?.message,
    '1 chat-node pod (x-1) cannot get its image "localhost/vibetalk/chat-node:nope": ErrImagePull: not found',
  );
  const looping = conditionOf(
    computeStatus(c, observed([pod("y", { ...waiting("CrashLoopBackOff"), restartCount: 2 })])),
    "Degraded",
  );
  assert.equal(looping?.reason, "CrashLooping");
  assert.match(
    looping?.message ?? "",
    /^1 chat-node pod \(y\) is crash-looping: CrashLoopBackOff: restarted 2 times/,
  );
  const fine = conditionOf(computeStatus(c, observed([])), "Degraded");
  assert.equal(fine?.status, "False");
});
