// Safe rollouts on the real node (issue 16, item 4): a spec change (environment and resources, then the
// image through an operator upgrade) rolls the chat-node pods one at a time — a new pod Ready before an
// old one goes, never fewer Ready pods than replicas — and every old pod drains and releases its
// partitions itself before it exits (I6: no release by the operator, never two consumers on a partition),
// under steady traffic with nothing lost (I1–I3). The operator upgrade goes from the previous release's
// CRD (without `spec.networkPolicy`) and operator to new ones, and the cluster serves throughout.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "@vibetalk/testkit";
import { decodeReleaseRecord } from "@vibetalk/protocol/cluster";
import * as k8s from "@kubernetes/client-node";
import { load } from "js-yaml";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { startVibeTalkCluster, CHAT_NODE_IMAGE, type VibeTalkCluster } from "../src/index.js";
import { PartitionMonitor } from "../src/monitor.js";
import { createGroup, register, RoamingClient, SteadySender, verifyDelivery } from "../src/traffic.js";

const REPLICAS = 2;
const PARTITIONS = 16;
const SELECTOR = "app.kubernetes.io/instance=chat,app.kubernetes.io/component=chat-node";
const CRD_FILE = fileURLToPath(new URL("../../crds/chatcluster.yaml", import.meta.url));
/** What the next release's images would be: the same bytes under the next version's tag. */
const NEXT = "0.1.1-rollout-test";

let cluster: VibeTalkCluster;

before(async () => {
  cluster = await startVibeTalkCluster({
    replicas: REPLICAS,
    partitions: PARTITIONS,
    drainSeconds: 5,
    // No spec.image: the cluster runs the chat-node of the operator's version (and follows an upgrade).
    spec: { image: undefined },
    log: (m) => console.log(`[cluster] ${m}`),
  });
});
after(() => cluster?.stop());

interface PodSample {
  at: number;
  /** Ready and not terminating. */
  ready: number;
  /** Not terminating. */
  live: number;
  /** Of the newest ReplicaSet's pods (by pod-template-hash), those not yet Ready. */
  newNotReady: number;
  /** Terminating pods. */
  terminating: number;
}

/**
 * Samples the chat-node pods and the partitions' release records every 200 ms: the rollout's shape, and
 * any partition the operator had to release for a pod that exited still holding it.
 */
class RolloutWatch {
  readonly samples: PodSample[] = [];
  readonly releasedByOperator: string[] = [];
  /** Records the operator released before the watch began. */
  private baseline: Set<string> | undefined;
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly newHash: () => string | undefined) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const pods = (
          await cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: SELECTOR })
        ).items;
        const isReady = (p: (typeof pods)[number]) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
        const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
        const hash = this.newHash();
        this.samples.push({
          at: Date.now(),
          ready: live.filter(isReady).length,
          live: live.length,
          newNotReady: live.filter(
            (p) => hash && p.metadata?.labels?.["pod-template-hash"] === hash && !isReady(p),
          ).length,
          terminating: pods.length - live.length,
        });
        const cm = await cluster.core.readNamespacedConfigMap({
          name: `${cluster.name}-releases`,
          namespace: cluster.namespace,
        });
        const first = this.baseline === undefined;
        this.baseline ??= new Set();
        for (const [k, v] of Object.entries(cm.data ?? {})) {
          const r = decodeReleaseRecord(v) as { releasedBy?: string; epoch: number } | undefined;
          const what = `partition ${k} at epoch ${r?.epoch}`;
          if (r?.releasedBy !== "operator") continue;
          if (first) this.baseline.add(what);
          else if (!this.baseline.has(what) && !this.releasedByOperator.includes(what))
            this.releasedByOperator.push(what);
        }
      } catch {
        /* API busy: next sample */
      }
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

async function chatPods(): Promise<{ name: string; hash: string; image: string; spec: unknown }[]> {
  const pods = (
    await cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: SELECTOR })
  ).items;
  return pods
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => ({
      name: p.metadata?.name ?? "",
      hash: p.metadata?.labels?.["pod-template-hash"] ?? "",
      image: p.spec?.containers[0]?.image ?? "",
      spec: p.spec?.containers[0],
    }));
}

/** The chat-node Deployment's newest ReplicaSet's pod-template-hash once it differs from `old`. */
async function newestHash(old: string): Promise<string | undefined> {
  const rs = await cluster.kubeConfig
    .makeApiClient(k8s.AppsV1Api)
    .listNamespacedReplicaSet({ namespace: cluster.namespace, labelSelector: SELECTOR });
  const newest = rs.items.sort(
    (a, b) =>
      Number(b.metadata?.annotations?.["deployment.kubernetes.io/revision"] ?? 0) -
      Number(a.metadata?.annotations?.["deployment.kubernetes.io/revision"] ?? 0),
  )[0];
  const hash = newest?.metadata?.labels?.["pod-template-hash"];
  return hash && hash !== old ? hash : undefined;
}

/**
 * Runs `change` under steady traffic and waits until the rollout is done: REPLICAS pods of a new template,
 * all Ready, the old ones gone, the partitions assigned to the new pods and consumed. Asserts the rollout's
 * shape, the hand-over and that nothing was lost; returns printable figures.
 */
async function rolloutUnderTraffic(label: string, change: () => Promise<void>): Promise<string[]> {
  const nodes = () => cluster.readyChatNodes();
  const [first] = await nodes();
  const tag = `${label.replace(/\W+/g, "")}${Date.now() % 100000}`;
  const sender = await register(first!.url, `s${tag}`);
  const reader = await register(first!.url, `r${tag}`);
  const channels: string[] = [];
  for (let i = 0; i < 6; i++) channels.push(await createGroup(first!.url, sender, `${label} ${i}`, [reader]));
  const senderClient = new RoamingClient(sender, nodes);
  const readerClient = new RoamingClient(reader, nodes, channels);
  await Promise.all([senderClient.connect(), readerClient.connect()]);
  const monitor = new PartitionMonitor(cluster);
  monitor.phase = label;
  const steady = new SteadySender(senderClient, channels, 15);
  steady.start();
  await sleep(3000);

  const oldPods = await chatPods();
  const oldHash = oldPods[0]!.hash;
  let hash: string | undefined;
  const watch = new RolloutWatch(() => hash);
  const t0 = Date.now();
  await change();
  const deadline = Date.now() + 300_000;
  for (;;) {
    hash ??= await newestHash(oldHash).catch(() => undefined);
    const pods = await chatPods();
    const ready = (await nodes()).map((n) => n.name).sort();
    const a = await cluster.chatCluster();
    const owners = Object.values(
      ((a.status as { partitionAssignment?: { owners?: Record<string, string> } })?.partitionAssignment
        ?.owners ?? {}) as Record<string, string>,
    );
    if (
      hash &&
      pods.length === REPLICAS &&
      pods.every((p) => p.hash === hash) &&
      ready.length === REPLICAS &&
      [...new Set(owners)].sort().join() === ready.join() &&
      watch.samples.at(-1)?.terminating === 0
    )
      break;
    if (Date.now() > deadline)
      throw new Error(
        `${label}: not rolled after 300 s: pods ${JSON.stringify(pods.map((p) => [p.name, p.hash]))}`,
      );
    await sleep(250);
  }
  const rolled = Date.now() - t0;
  await sleep(3000); // traffic on the new pods
  await steady.stop();
  await watch.stop();
  await monitor.stop();
  await sleep(2000); // the last messages reach the reader

  const during = watch.samples.filter((s) => s.at >= t0);
  const minReady = Math.min(...during.map((s) => s.ready));
  const maxLive = Math.max(...during.map((s) => s.live));
  const maxNewNotReady = Math.max(...during.map((s) => s.newNotReady));
  assert.ok(during.length > 20, `${label}: only ${during.length} pod samples`);
  assert.ok(minReady >= REPLICAS, `${label}: Ready pods fell to ${minReady} (maxUnavailable 0)`);
  assert.ok(maxLive <= REPLICAS + 1, `${label}: ${maxLive} pods at once (maxSurge 1)`);
  assert.ok(maxNewNotReady <= 1, `${label}: ${maxNewNotReady} new pods starting at once (one at a time)`);
  assert.deepEqual(watch.releasedByOperator, [], `${label}: every old pod released its partitions itself`);
  assert.ok(monitor.samples > 20, `${label}: only ${monitor.samples} consumer samples`);
  assert.deepEqual(monitor.violations, [], `${label}: at most one active consumer per partition`);
  assert.deepEqual(monitor.overlaps, [], `${label}: never two consumers registered on a partition`);
  const [anyNode] = await nodes();
  const r = await verifyDelivery(anyNode!.url, reader, readerClient, steady, channels);
  assert.equal(r.lost, 0);
  senderClient.close();
  readerClient.close();
  return [
    `${label}: rolled ${REPLICAS} pods in ${(rolled / 1000).toFixed(1)} s; Ready pods never below ${minReady}, at most ${maxLive} pods and ${maxNewNotReady} starting at once; ${during.length} samples`,
    `${label}: ${r.acked} messages acked, ${r.stored} stored, ${r.lost} lost, ${r.retried} sends retried, reader reconnects ${readerClient.reconnects}`,
  ];
}

test("a change of environment and resources rolls the pods one at a time under traffic: each drains and hands over its partitions, nothing lost", async () => {
  const figures = await rolloutUnderTraffic("env+resources", () =>
    cluster.patchSpec({
      trustedProxies: ["10.244.0.1"], // TRUST_PROXY in the chat-node's environment
      resources: { requests: { cpu: "60m", memory: "96Mi" } },
    }),
  );
  console.log(figures.join("\n"));
  for (const p of await chatPods()) {
    const c = p.spec as {
      env?: { name: string; value?: string }[];
      resources?: { requests?: Record<string, string> };
    };
    assert.equal(
      c.env?.find((e) => e.name === "TRUST_PROXY")?.value,
      "10.244.0.1",
      `${p.name}: the new environment`,
    );
    assert.equal(c.resources?.requests?.cpu, "60m", `${p.name}: the new resources`);
  }
});

test("an operator upgrade with a CRD change keeps the cluster serving and rolls the chat-nodes to the new version's image", async () => {
  // The previous release as the cluster has it: its CRD lacked spec.networkPolicy (the API server prunes
  // the field and serves no default for it) and its operator runs.
  const current = load(await readFile(CRD_FILE, "utf8")) as {
    spec: {
      versions: {
        schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } };
      }[];
    };
  };
  const previous = structuredClone(current);
  delete previous.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties.networkPolicy;
  const apply = (crd: unknown) =>
    cluster.cp.kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: JSON.stringify(crd),
    });
  await apply(previous);
  const specOf = async () => (await cluster.chatCluster()).spec as Record<string, unknown>;
  await waitFor("the previous CRD served", async () => !("networkPolicy" in (await specOf())));
  await cluster.waitForCondition("Ready", "True");
  for (const image of ["operator", "chat-node"])
    await cluster.node.ctr([
      "images",
      "tag",
      `localhost/vibetalk/${image}:0.1.0`,
      `localhost/vibetalk/${image}:${NEXT}`,
    ]);
  assert.deepEqual([...new Set((await chatPods()).map((p) => p.image))], [CHAT_NODE_IMAGE]);
  const operatorPodsBefore = (await operatorPods()).map((p) => p.name);

  const figures = await rolloutUnderTraffic("operator upgrade", async () => {
    // The upgrade path of docs/install.md: the new CRD first, then the new operator (whose default
    // chat-node image is its own version's).
    await apply(current);
    const container = {
      name: "operator",
      image: `localhost/vibetalk/operator:${NEXT}`,
      env: [{ name: "CHAT_NODE_IMAGE", value: `localhost/vibetalk/chat-node:${NEXT}` }],
    };
    await cluster.cp.kubectl([
      "-n",
      "vibetalk-system",
      "patch",
      "deployment",
      "vibetalk-operator",
      "-p",
      JSON.stringify({ spec: { template: { spec: { containers: [container] } } } }),
    ]);
  });
  console.log(figures.join("\n"));
  assert.deepEqual(
    [...new Set((await chatPods()).map((p) => p.image))],
    [`localhost/vibetalk/chat-node:${NEXT}`],
  );
  await waitFor(
    "only the new operator's pods",
    async () => {
      const now = await operatorPods();
      return (
        now.length === 2 && now.every((p) => !operatorPodsBefore.includes(p.name) && p.image.endsWith(NEXT))
      );
    },
    120_000,
  );
  // The new CRD serves the new field, with its default, for the ChatCluster stored before it existed.
  assert.ok((await specOf()).networkPolicy !== undefined, "spec.networkPolicy served with its default");
  await cluster.waitForCondition("Ready", "True");
  const cc = await cluster.chatCluster();
  const status = cc.status as { observedGeneration?: number; readyReplicas?: number };
  assert.equal(status.observedGeneration, (cc.metadata as { generation: number }).generation);
  assert.equal(status.readyReplicas, REPLICAS);
});

async function operatorPods(): Promise<{ name: string; image: string }[]> {
  const pods = (
    await cluster.core.listNamespacedPod({
      namespace: "vibetalk-system",
      labelSelector: "app.kubernetes.io/component=operator",
    })
  ).items;
  return pods
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => ({ name: p.metadata?.name ?? "", image: p.spec?.containers[0]?.image ?? "" }));
}
