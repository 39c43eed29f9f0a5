/**
 * The operator against a real control plane (etcd, kube-apiserver, controller manager, scheduler,
 * kwok): a ChatCluster becomes owned objects, pods turn Ready on kwok, the status reaches Ready, spec
 * changes roll, the API server rejects bad specs, connections reach status and the external metrics
 * API, the HPA scales on them, and deletion garbage-collects everything.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startControlPlane, type ControlPlane } from "@vibetalk/testkit";
import { DEFAULT_CHAT_NODE_IMAGE } from "../../src/version.js";
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

interface Owned {
  metadata: {
    name: string;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
  };
}
interface Deployment extends Owned {
  spec: { replicas?: number; template: { metadata: { annotations?: Record<string, string> } } };
  status?: { readyReplicas?: number };
}
interface PodList {
  items: { metadata: { name: string; annotations?: Record<string, string> }; status?: { phase?: string } }[];
}

const NS = "default";
let cp: ControlPlane;
let opKubeconfig: string;
let op: OperatorProcess;

const getCc = (name: string) => getOrUndefined<ChatClusterJson>(cp, ["-n", NS, "get", "chatcluster", name]);
const readyCc = (name: string) =>
  waitFor(
    `ChatCluster ${name} Ready`,
    async () => {
      const cc = await getCc(name);
      return (
        conditionOf(cc, "Ready")?.status === "True" &&
        cc?.status?.observedGeneration === cc?.metadata.generation &&
        cc
      );
    },
    90_000,
  );

describe("ChatCluster on a real control plane", { timeout: 600_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ nodes: 2, hpaSyncSeconds: 3 });
    await installCrd(cp);
    opKubeconfig = await operatorKubeconfig(cp);
    op = await startOperator({
      kubeconfigPath: opKubeconfig,
      identity: "operator-0",
      env: {
        LEASE_DURATION_SECONDS: "4",
        LEASE_RENEW_DEADLINE_SECONDS: "3",
        LEASE_RETRY_PERIOD_SECONDS: "0.5",
      },
    });
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  test("a ChatCluster becomes owned objects with owner references, Ready pods and a Ready status", async () => {
    await applyYaml(cp, chatClusterYaml("alpha", NS, ["replicas: 3", "partitions: 12"]));
    const cc = await readyCc("alpha");
    const uid = cc.metadata.uid;
    const owned: [string, string][] = [
      ["deployment", "alpha"],
      ["service", "alpha"],
      ["service", "alpha-headless"],
      ["serviceaccount", "alpha-chat-node"],
      ["role", "alpha-chat-node"],
      ["rolebinding", "alpha-chat-node"],
      ["configmap", "alpha-partitions"],
      ["configmap", "alpha-releases"],
      ["poddisruptionbudget", "alpha"],
    ];
    for (const [kind, name] of owned) {
      const obj = await getJson<Owned>(cp, ["-n", NS, "get", kind, name]);
      const ref = obj.metadata.ownerReferences?.[0];
      assert.deepEqual(
        [ref?.kind, ref?.name, ref?.uid, ref?.controller],
        ["ChatCluster", "alpha", uid, true],
        `${kind}/${name} is owned by the ChatCluster`,
      );
    }
    assert.equal(cc.status?.readyReplicas, 3);
    assert.equal(conditionOf(cc, "PartitionsBalanced")?.status, "True");
    const owners = Object.values(cc.status?.partitionAssignment?.owners ?? {});
    assert.equal(owners.length, 12);
    const counts = [
      ...owners.reduce((m, p) => m.set(p, (m.get(p) ?? 0) + 1), new Map<string, number>()).values(),
    ];
    assert.deepEqual(counts, [4, 4, 4]);
    const cm = await getJson<{ data: Record<string, string> }>(cp, [
      "-n",
      NS,
      "get",
      "configmap",
      "alpha-partitions",
    ]);
    const published = JSON.parse(cm.data["assignment.json"] ?? "{}") as {
      epoch: number;
      owners: Record<string, string>;
    };
    assert.deepEqual(published, cc.status?.partitionAssignment);
    const events = await waitFor("Applied and Rebalanced events", async () => {
      const list = await getJson<{ items: { reason: string; regarding: { name: string } }[] }>(cp, [
        "-n",
        NS,
        "get",
        "events.events.k8s.io",
      ]);
      const reasons = list.items.filter((e) => e.regarding.name === "alpha").map((e) => e.reason);
      return reasons.includes("Applied") && reasons.includes("Rebalanced") && reasons;
    });
    assert.ok(events.includes("Ready"));
    const table = await cp.kubectl(["-n", NS, "get", "cc", "alpha"]);
    assert.match(table, /NAME\s+READY\s+REPLICAS\s+READY-PODS\s+CONNECTIONS\s+PARTITIONS\s+DEGRADED\s+AGE/);
    assert.match(table, /alpha\s+True\s+3\s+3\s+0\s+12\s+\S+/);
  });

  test("a spec change rolls the Deployment (pod-template spec hash changes)", async () => {
    const hashOf = async () =>
      (await getJson<Deployment>(cp, ["-n", NS, "get", "deployment", "alpha"])).spec.template.metadata
        .annotations?.["vibetalk.io/spec-hash"];
    const before = await hashOf();
    assert.ok(before);
    await cp.kubectl([
      "-n",
      NS,
      "patch",
      "chatcluster",
      "alpha",
      "--type=merge",
      "-p",
      '{"spec":{"image":"vibetalk/chat-node:v2"}}',
    ]);
    const after = await waitFor("a new spec hash", async () => {
      const h = await hashOf();
      return h !== before && h;
    });
    assert.notEqual(after, before);
    await cp.kubectl(["-n", NS, "rollout", "status", "deployment/alpha", "--timeout=90s"]);
    const cc = await readyCc("alpha");
    assert.equal(cc.metadata.generation, 2);
  });

  test("the API server rejects invalid specs with clear messages", async () => {
    const reject = async (lines: string[], pattern: RegExp) => {
      await assert.rejects(applyYaml(cp, chatClusterYaml("bad", NS, lines)), pattern);
    };
    await reject(
      ["autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 3}"],
      /minReplicas must not exceed autoscaling.maxReplicas/,
    );
    await reject(
      ["partitions: 0"],
      /spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1/,
    );
    await reject(["deletionPolicy: Purge"], /spec.deletionPolicy: Unsupported value: "Purge"/);
    await reject(["podDisruptionBudget: {maxUnavailable: 1, minAvailable: 1}"], /set at most one of/);
    await reject(
      ["push: {vapidPublicKeyRef: {name: vapid}, vapidSubject: 'mailto:ops@example.test'}"],
      /vapidPublicKeyRef, vapidPrivateKeyRef and vapidSubject are set together, or none/,
    );
    await reject(
      ["push: {gatewayUrl: 'ftp://push.example.test/notify'}"],
      /spec.push.gatewayUrl in body should match/,
    );
    await assert.rejects(
      applyYaml(cp, chatClusterYaml("bad", NS).replace("  jwtSecretRef: {name: jwt}\n", "")),
      /spec.jwtSecretRef: Required value/,
    );
    assert.equal(await getCc("bad"), undefined);
  });

  test("a ChatCluster with only its secret references runs the chat-node image of the operator's version", async () => {
    await applyYaml(
      cp,
      chatClusterYaml("minimal", NS, ["partitions: 4"]).replace("  image: vibetalk/chat-node:test\n", ""),
    );
    await readyCc("minimal");
    const d = await getJson<{ spec: { template: { spec: { containers: { image: string }[] } } } }>(cp, [
      "-n",
      NS,
      "get",
      "deployment",
      "minimal",
    ]);
    assert.equal(d.spec.template.spec.containers[0]?.image, DEFAULT_CHAT_NODE_IMAGE);
    await cp.kubectl(["-n", NS, "delete", "cc", "minimal", "--wait=true", "--timeout=60s"]);
  });

  test("partitions and userExchanges are immutable", async () => {
    await assert.rejects(
      cp.kubectl([
        "-n",
        NS,
        "patch",
        "chatcluster",
        "alpha",
        "--type=merge",
        "-p",
        '{"spec":{"partitions":16}}',
      ]),
      /partitions is immutable/,
    );
    await assert.rejects(
      cp.kubectl([
        "-n",
        NS,
        "patch",
        "chatcluster",
        "alpha",
        "--type=merge",
        "-p",
        '{"spec":{"userExchanges":4}}',
      ]),
      /userExchanges is immutable/,
    );
  });

  test("the scale subresource drives replicas and the partitions rebalance", async () => {
    await cp.kubectl(["-n", NS, "scale", "chatcluster", "alpha", "--replicas=4"]);
    const cc = await waitFor(
      "4 Ready replicas",
      async () => {
        const c = await getCc("alpha");
        return c?.status?.readyReplicas === 4 && conditionOf(c, "PartitionsBalanced")?.status === "True" && c;
      },
      90_000,
    );
    const owners = Object.values(cc.status?.partitionAssignment?.owners ?? {});
    assert.equal(new Set(owners).size, 4);
    const scale = await getJson<{ spec: { replicas: number }; status: { selector: string } }>(cp, [
      "-n",
      NS,
      "get",
      "--subresource=scale",
      "chatcluster",
      "alpha",
    ]);
    assert.equal(scale.spec.replicas, 4);
    assert.match(scale.status.selector, /app.kubernetes.io\/instance=alpha/);
  });

  test("pod connection annotations reach status.connections and the external metrics API", async () => {
    if (op.externalMetricsPort === undefined) throw new Error("external metrics server not started");
    await applyYaml(
      cp,
      [
        "apiVersion: v1",
        "kind: Service",
        "metadata: {name: vibetalk-operator, namespace: vibetalk-system}",
        "spec: {type: ExternalName, externalName: localhost, ports: [{name: https, port: " +
          op.externalMetricsPort +
          "}]}",
        "---",
        "apiVersion: apiregistration.k8s.io/v1",
        "kind: APIService",
        "metadata: {name: v1beta1.external.metrics.k8s.io}",
        "spec:",
        "  group: external.metrics.k8s.io",
        "  version: v1beta1",
        "  insecureSkipTLSVerify: true",
        "  groupPriorityMinimum: 100",
        "  versionPriority: 100",
        `  service: {name: vibetalk-operator, namespace: vibetalk-system, port: ${op.externalMetricsPort}}`,
        "",
      ].join("\n"),
    );
    const pods = await getJson<PodList>(cp, [
      "-n",
      NS,
      "get",
      "pods",
      "-l",
      "app.kubernetes.io/instance=alpha",
    ]);
    const running = pods.items.filter((p) => p.status?.phase === "Running");
    assert.ok(running.length >= 2);
    for (const [i, p] of running.entries()) {
      await cp.kubectl([
        "-n",
        NS,
        "annotate",
        "--overwrite",
        "pod",
        p.metadata.name,
        `vibetalk.io/connections=${100 + i}`,
      ]);
    }
    const expected = running.reduce((s, _p, i) => s + 100 + i, 0);
    await waitFor("status.connections", async () => (await getCc("alpha"))?.status?.connections === expected);
    const raw = await waitFor("the external metric through the aggregator", async () =>
      cp.kubectl([
        "get",
        "--raw",
        `/apis/external.metrics.k8s.io/v1beta1/namespaces/${NS}/vibetalk_connections?labelSelector=cluster%3Dalpha`,
      ]),
    );
    const list = JSON.parse(raw) as {
      kind: string;
      items: { value: string; metricLabels: Record<string, string> }[];
    };
    assert.equal(list.kind, "ExternalMetricValueList");
    assert.deepEqual(
      list.items.map((i) => [i.metricLabels.cluster, i.value]),
      [["alpha", String(expected)]],
    );
  });

  test("the HPA scales the Deployment up and down on reported connections", async () => {
    await applyYaml(
      cp,
      chatClusterYaml("beta", NS, [
        "replicas: 1",
        "partitions: 8",
        "autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4, targetConnectionsPerPod: 100,",
        // the default scale-down waits 600 s and removes a pod a minute: quick here
        "  behavior: {scaleDown: {stabilizationWindowSeconds: 0, policies: [{type: Percent, value: 100, periodSeconds: 5}]}}}",
      ]),
    );
    const hpa = await waitFor("the HPA", () =>
      getOrUndefined<{ spec: { behavior: unknown } }>(cp, ["-n", NS, "get", "hpa", "beta"]),
    );
    assert.deepEqual(hpa.spec.behavior, {
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: "Max",
        policies: [
          { type: "Percent", value: 100, periodSeconds: 15 },
          { type: "Pods", value: 4, periodSeconds: 15 },
        ],
      },
      scaleDown: {
        stabilizationWindowSeconds: 0,
        selectPolicy: "Max",
        policies: [{ type: "Percent", value: 100, periodSeconds: 5 }],
      },
    });
    const podsOf = async () =>
      (
        await getJson<PodList>(cp, ["-n", NS, "get", "pods", "-l", "app.kubernetes.io/instance=beta"])
      ).items.filter((p) => p.status?.phase === "Running");
    const first = await waitFor("a running beta pod", async () => (await podsOf())[0]);
    await cp.kubectl([
      "-n",
      NS,
      "annotate",
      "--overwrite",
      "pod",
      first.metadata.name,
      "vibetalk.io/connections=350",
    ]);
    await waitFor(
      "scale up to 4",
      async () =>
        (await getJson<Deployment>(cp, ["-n", NS, "get", "deployment", "beta"])).spec.replicas === 4,
      120_000,
      1000,
    );
    await cp.kubectl([
      "-n",
      NS,
      "annotate",
      "--overwrite",
      "pod",
      first.metadata.name,
      "vibetalk.io/connections=0",
    ]);
    await waitFor(
      "scale down to 1",
      async () =>
        (await getJson<Deployment>(cp, ["-n", NS, "get", "deployment", "beta"])).spec.replicas === 1,
      180_000,
      1000,
    );
  });

  test("autoscaling off removes the HPA; replicas come back from the spec", async () => {
    await cp.kubectl([
      "-n",
      NS,
      "patch",
      "chatcluster",
      "beta",
      "--type=merge",
      "-p",
      '{"spec":{"replicas":2,"autoscaling":{"enabled":false}}}',
    ]);
    await waitFor(
      "HPA removed",
      async () => (await getOrUndefined(cp, ["-n", NS, "get", "hpa", "beta"])) === undefined,
    );
    await waitFor(
      "2 replicas",
      async () =>
        (await getJson<Deployment>(cp, ["-n", NS, "get", "deployment", "beta"])).spec.replicas === 2,
    );
  });

  test("scaled to zero: no owners, PartitionsBalanced False, Ready False with ScaledToZero", async () => {
    await cp.kubectl(["-n", NS, "scale", "chatcluster", "alpha", "--replicas=0"]);
    const cc = await waitFor(
      "no owners",
      async () => {
        const c = await getCc("alpha");
        return (
          c?.status?.readyReplicas === 0 &&
          Object.keys(c.status.partitionAssignment?.owners ?? { x: 1 }).length === 0 &&
          // Converged: while the last pod terminates, Ready may say NoReadyPods for one status write.
          conditionOf(c, "Ready")?.reason === "ScaledToZero" &&
          c
        );
      },
      60_000,
    );
    assert.equal(conditionOf(cc, "PartitionsBalanced")?.reason, "NoReadyPods");
    assert.equal(conditionOf(cc, "Ready")?.reason, "ScaledToZero");
    const cm = await getJson<{ data: Record<string, string> }>(cp, [
      "-n",
      NS,
      "get",
      "configmap",
      "alpha-partitions",
    ]);
    assert.deepEqual((JSON.parse(cm.data["assignment.json"] ?? "{}") as { owners: object }).owners, {});
    assert.doesNotMatch(op.logs(), /reconcile failed/);
  });

  test("deleting a ChatCluster garbage-collects everything it owns", async () => {
    await cp.kubectl(["-n", NS, "delete", "chatcluster", "alpha", "--wait=true", "--timeout=60s"]);
    for (const [kind, name] of [
      ["deployment", "alpha"],
      ["service", "alpha"],
      ["service", "alpha-headless"],
      ["configmap", "alpha-partitions"],
      ["configmap", "alpha-releases"],
      ["role", "alpha-chat-node"],
      ["poddisruptionbudget", "alpha"],
    ] as const) {
      await waitFor(
        `${kind}/${name} collected`,
        async () => (await getOrUndefined(cp, ["-n", NS, "get", kind, name])) === undefined,
        60_000,
      );
    }
  });
});
