/**
 * The replicas hand-over between the operator and the real HPA controller on a real API server (kwok
 * pods): turning autoscaling on keeps the running pods (server-side apply without `replicas` used to
 * reset the Deployment to 1), and turning it off keeps the HPA's count. A sampler reads the Deployment
 * and the pods every 100 ms throughout: the lowest spec.replicas seen and every pod deleted are asserted.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
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
  sleep,
  waitFor,
  type ChatClusterJson,
} from "../support/k8s.js";

const NS = "default";
const NAME = "hand";
let cp: ControlPlane;
let op: OperatorProcess;

/** spec.replicas of the Deployment and the chat-node pods, sampled every 100 ms. */
class Sampler {
  minReplicas = Number.POSITIVE_INFINITY;
  replicasSeen: number[] = [];
  readonly deleted = new Set<string>();
  private known = new Set<string>();
  private running = true;
  private readonly loop: Promise<void>;
  constructor(
    private readonly apps: k8s.AppsV1Api,
    private readonly core: k8s.CoreV1Api,
  ) {
    this.loop = this.run();
  }
  private async run() {
    while (this.running) {
      try {
        const d = await this.apps.readNamespacedDeployment({ namespace: NS, name: NAME });
        const n = d.spec?.replicas ?? 1;
        this.minReplicas = Math.min(this.minReplicas, n);
        if (this.replicasSeen.at(-1) !== n) this.replicasSeen.push(n);
        const pods = await this.core.listNamespacedPod({
          namespace: NS,
          labelSelector: `app.kubernetes.io/instance=${NAME}`,
        });
        const names = new Set(pods.items.map((p) => p.metadata?.name ?? ""));
        for (const p of pods.items)
          if (p.metadata?.deletionTimestamp) this.deleted.add(p.metadata.name ?? "");
        for (const k of this.known) if (!names.has(k)) this.deleted.add(k);
        this.known = names;
      } catch {
        /* the next sample */
      }
      await sleep(100);
    }
  }
  reset() {
    this.minReplicas = Number.POSITIVE_INFINITY;
    this.replicasSeen = [];
    this.deleted.clear();
  }
  async stop() {
    this.running = false;
    await this.loop;
  }
}

describe("replicas hand-over to and from the HPA on a real control plane", { timeout: 300_000 }, () => {
  let sampler: Sampler | undefined;
  before(async () => {
    cp = await startControlPlane({ nodes: 2, hpaSyncSeconds: 2 });
    await installCrd(cp);
    op = await startOperator({ kubeconfigPath: await operatorKubeconfig(cp), identity: "operator-0" });
  });
  after(async () => {
    await sampler?.stop();
    await op?.stop();
    await cp?.stop();
  });

  const deployment = () =>
    getJson<{ spec: { replicas: number }; status?: { readyReplicas?: number } }>(cp, [
      "-n",
      NS,
      "get",
      "deployment",
      NAME,
    ]);
  const patch = (spec: object) =>
    cp.kubectl(["-n", NS, "patch", "cc", NAME, "--type=merge", "-p", JSON.stringify({ spec })]);
  const hpa = () =>
    getOrUndefined<{ status?: { currentReplicas?: number; desiredReplicas?: number } }>(cp, [
      "-n",
      NS,
      "get",
      "hpa",
      NAME,
    ]);

  test("autoscaling on keeps the 3 running pods; off keeps the HPA's 4", async () => {
    await applyYaml(cp, chatClusterYaml(NAME, NS, ["replicas: 3", "partitions: 6"]));
    await waitFor(
      "3 Ready replicas",
      async () => {
        const cc = await getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "cc", NAME]);
        return conditionOf(cc, "Ready")?.status === "True" && cc?.status?.readyReplicas === 3;
      },
      90_000,
    );
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    sampler = new Sampler(kc.makeApiClient(k8s.AppsV1Api), kc.makeApiClient(k8s.CoreV1Api));
    await sleep(500);

    // on: minReplicas 2 below the 3 running, so nothing but the apply could change the count
    await patch({
      autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 10, targetConnectionsPerPod: 1000 },
    });
    await waitFor(
      "the HPA has seen the Deployment",
      async () => (await hpa())?.status?.currentReplicas,
      60_000,
    );
    await sleep(8000); // four HPA syncs
    console.log(`on: spec.replicas seen ${sampler.replicasSeen.join(" → ")}`);
    assert.equal(
      sampler.minReplicas,
      3,
      `spec.replicas never below 3 (seen ${sampler.replicasSeen.join(" → ")})`,
    );
    assert.deepEqual([...sampler.deleted], [], "no pod deleted");
    assert.equal((await deployment()).spec.replicas, 3);

    // the HPA takes the count to 4 (its minimum)
    await patch({ autoscaling: { minReplicas: 4 } });
    await waitFor(
      "the HPA scales to 4",
      async () => {
        const d = await deployment();
        return d.spec.replicas === 4 && d.status?.readyReplicas === 4;
      },
      60_000,
    );
    sampler.reset();

    // off, spec.replicas untouched (still 3): the HPA's 4 stay and become spec.replicas
    await patch({ autoscaling: { enabled: false } });
    await waitFor("the HPA removed", async () => (await hpa()) === undefined, 30_000);
    const cc = await waitFor(
      "spec.replicas 4",
      async () => {
        const c = await getJson<ChatClusterJson & { spec: { replicas: number } }>(cp, [
          "-n",
          NS,
          "get",
          "cc",
          NAME,
        ]);
        return c.spec.replicas === 4 && c;
      },
      30_000,
    );
    await sleep(5000);
    console.log(`off: spec.replicas seen ${sampler.replicasSeen.join(" → ")}`);
    assert.equal(
      sampler.minReplicas,
      4,
      `spec.replicas never below 4 (seen ${sampler.replicasSeen.join(" → ")})`,
    );
    assert.deepEqual([...sampler.deleted], [], "no pod deleted");
    assert.equal((await deployment()).spec.replicas, 4);
    assert.equal(cc.spec.replicas, 4);
    const events = await getJson<{ items: { reason: string; note?: string; regarding: { name: string } }[] }>(
      cp,
      ["-n", NS, "get", "events.events.k8s.io"],
    );
    const notes = events.items.filter((e) => e.reason === "ReplicasHandedOver").map((e) => e.note ?? "");
    assert.ok(
      notes.some((n) => /takes over at the current 3/.test(n)),
      notes.join("\n"),
    );
    assert.ok(
      notes.some((n) => /keeping the HPA's 4 .*was 3/.test(n)),
      notes.join("\n"),
    );
  });
});
