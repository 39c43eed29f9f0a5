/**
 * Scale-in removes the emptiest chat-nodes: with each pod's `controller.kubernetes.io/pod-deletion-cost`
 * at its connection count (as chat-nodes keep it), scaling the ChatCluster down makes the real
 * ReplicaSet controller delete the pods with the fewest connections first (real API server and
 * controller manager, kwok pods).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startControlPlane, type ControlPlane } from "@vibetalk/testkit";
import { startOperator, type OperatorProcess } from "../support/operator-process.js";
import {
  applyYaml,
  chatClusterYaml,
  conditionOf,
  getJson,
  getOrUndefined,
  installCrd,
  operatorKubeconfig,
  waitFor,
  type ChatClusterJson,
} from "../support/k8s.js";

const NS = "default";
let cp: ControlPlane;
let op: OperatorProcess;

interface PodList {
  items: { metadata: { name: string; deletionTimestamp?: string } }[];
}

describe("pod deletion cost on a real control plane", { timeout: 240_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ nodes: 2 });
    await installCrd(cp);
    op = await startOperator({ kubeconfigPath: await operatorKubeconfig(cp), identity: "operator-0" });
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  const live = async () =>
    (await getJson<PodList>(cp, ["-n", NS, "get", "pods", "-l", "app.kubernetes.io/instance=cost"])).items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name)
      .sort();

  test("scaling 4 → 2 removes the two pods with the fewest connections", async () => {
    await applyYaml(cp, chatClusterYaml("cost", NS, ["replicas: 4", "partitions: 8"]));
    await waitFor(
      "4 Ready replicas",
      async () => {
        const cc = await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "cost"]);
        return conditionOf(cc, "Ready")?.status === "True" && cc?.status?.readyReplicas === 4;
      },
      90_000,
    );
    const pods = await live();
    assert.equal(pods.length, 4);
    const counts = [900, 3, 1200, 40];
    for (const [i, name] of pods.entries()) {
      const n = String(counts[i]);
      await cp.kubectl([
        "-n",
        NS,
        "annotate",
        "--overwrite",
        "pod",
        name,
        `vibetalk.io/connections=${n}`,
        `controller.kubernetes.io/pod-deletion-cost=${n}`,
      ]);
    }
    await cp.kubectl(["-n", NS, "scale", "cc", "cost", "--replicas=2"]);
    const left = await waitFor("2 pods left", async () => {
      const names = await live();
      return names.length === 2 && names;
    });
    assert.deepEqual(left, [pods[0], pods[2]].sort(), "the pods with 900 and 1200 connections stay");
    await waitFor(
      "status.connections 2100",
      async () =>
        (await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", "cost"]))?.status?.connections ===
        2100,
    );
  });
});
