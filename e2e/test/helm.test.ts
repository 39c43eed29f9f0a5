/**
 * `helm install`, `helm upgrade` and `helm uninstall` of charts/vibetalk on the real node: the operator and
 * the chat-node pods run from the images scripts/images built (the chart's localhost/vibetalk/* defaults),
 * against the Redis, RabbitMQ and FerretDB the test started on the bridge's gateway (the dependencies off,
 * their URLs in chatCluster.external). The chart copy without its `dependencies` block is installed
 * (charts/test/support/chart.ts says why).
 *
 * Install → the ChatCluster Ready → two users chat through two pods → an upgrade that rolls the chat-node
 * pods under steady traffic loses no acked message → uninstall leaves exactly what docs/install.md says.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { io } from "socket.io-client";
import { waitFor } from "@vibetalk/testkit";
import { renderableChart, type Values } from "../../charts/test/support/chart.js";
import { CHAT_NODE_IMAGE, startLocalKubernetes, type LocalKubernetes } from "../src/index.js";
import {
  createGroup,
  register,
  RoamingClient,
  SteadySender,
  verifyDelivery,
  type Member,
} from "../src/traffic.js";

const RELEASE = "vibetalk";
const NS = "chat";
/** chatCluster.name's default. */
const CLUSTER = "chat";
const OPERATOR = `${RELEASE}-operator`;
const PARTITIONS = 16;
const CHAT_NODE_SELECTOR = `app.kubernetes.io/instance=${CLUSTER},app.kubernetes.io/component=chat-node`;

let k: LocalKubernetes;
let chart: Awaited<ReturnType<typeof renderableChart>>;
/** Every object in the cluster before the install, by kind/namespace/name, and the resources listed. */
let baseline: Set<string>;
let listable: string[];
const timings: string[] = [];

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface ChatClusterJson {
  metadata: { generation: number };
  spec: { image: string };
  status?: {
    observedGeneration?: number;
    readyReplicas?: number;
    conditions?: Condition[];
    partitionAssignment?: { owners: Record<string, string> };
  };
}
interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  spec: {
    nodeName?: string;
    containers: {
      image: string;
      imagePullPolicy?: string;
      resources?: { requests?: Record<string, string> };
    }[];
  };
  status: { podIP?: string; conditions?: Condition[]; containerStatuses?: { imageID?: string }[] };
}
interface DeploymentJson {
  metadata: { generation: number };
  spec: { replicas: number; template: { metadata: { annotations?: Record<string, string> } } };
  status: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
  };
}

const kubectlJson = async <T>(args: string[]): Promise<T> =>
  JSON.parse(await k.cp.kubectl([...args, "-o", "json"])) as T;
const chatCluster = () => kubectlJson<ChatClusterJson>(["-n", NS, "get", "chatcluster", CLUSTER]);
const condition = (cc: ChatClusterJson, type: string) => cc.status?.conditions?.find((c) => c.type === type);
const chatNodePods = async () =>
  (await kubectlJson<{ items: PodJson[] }>(["-n", NS, "get", "pods", "-l", CHAT_NODE_SELECTOR])).items;
const isReady = (p: PodJson) =>
  !p.metadata.deletionTimestamp &&
  (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** Ready, not terminating chat-node pods with their URLs on the pod network, by name. */
async function readyChatNodes(): Promise<{ name: string; url: string }[]> {
  return (await chatNodePods())
    .filter(isReady)
    .map((p) => ({ name: p.metadata.name, url: `http://${p.status.podIP}:8080` }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const describeCluster = async (): Promise<string> => {
  const cc = await chatCluster().catch(() => undefined);
  const pods = await k.cp.kubectl(["get", "pods", "-A", "-o", "wide"]).catch((e: unknown) => String(e));
  return `ChatCluster status: ${JSON.stringify(cc?.status)}\n${pods}`;
};

/** Values for the node: the test's own services, small replicas and partitions, no autoscaling. */
function releaseValues(cpuRequest: string): Values {
  return {
    rabbitmq: { enabled: false },
    mongodb: { enabled: false },
    redis: { enabled: false },
    operator: { replicas: 2 },
    chatCluster: {
      external: { rabbitmqUrl: k.rabbit.url, redisUrl: k.redis.url, mongodbUrl: k.mongo.url },
      spec: {
        replicas: 2,
        autoscaling: { enabled: false },
        partitions: PARTITIONS,
        userExchanges: 8,
        drainSeconds: 5,
        resources: { requests: { cpu: cpuRequest, memory: "128Mi" } },
      },
    },
  };
}

const helm = (args: string[]) => chart.helm(args, { kubeconfig: k.cp.kubeconfigPath });

/**
 * kind/namespace/name of every object of the listed resources. Events are left out (they come and go), and
 * so is kube-node-lease, where the kubelet's heartbeat Lease may appear after the baseline.
 */
async function snapshot(resources: string[]): Promise<Set<string>> {
  const list = await kubectlJson<{
    items: { kind: string; metadata: { namespace?: string; name: string } }[];
  }>(["get", resources.join(","), "--all-namespaces"]);
  return new Set(
    list.items
      .filter((o) => o.metadata.namespace !== "kube-node-lease")
      .map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`),
  );
}
const minus = (a: Set<string>, b: Set<string>): string[] => [...a].filter((x) => !b.has(x)).sort();

before(async () => {
  const t0 = Date.now();
  k = await startLocalKubernetes({ log: (m) => console.log(`[node] ${m}`) });
  chart = await renderableChart();
  console.log(`[node] up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // The namespace is not the release's (docs/install.md creates it with --create-namespace): make it first,
  // with what the control plane puts in every namespace, so the baseline holds those.
  await k.cp.kubectl(["create", "namespace", NS]);
  await waitFor("the namespace's default ServiceAccount and kube-root-ca.crt", async () => {
    const names = await k.cp.kubectl(["-n", NS, "get", "serviceaccounts,configmaps", "-o", "name"]);
    return names.includes("serviceaccount/default") && names.includes("configmap/kube-root-ca.crt");
  });
  listable = (await k.cp.kubectl(["api-resources", "--verbs=list", "-o", "name"]))
    .split("\n")
    .map((r) => r.trim())
    .filter((r) => r && r !== "events" && r !== "events.events.k8s.io");
  baseline = await snapshot(listable);
});
after(async () => {
  if (timings.length > 0) console.log(timings.join("\n"));
  await k?.stop();
  await chart?.remove();
});

test("helm install --wait: the operator runs from the chart's images and the ChatCluster becomes Ready", async () => {
  const file = await chart.writeValues(releaseValues("100m"));
  const t0 = Date.now();
  const output = await helm([
    "install",
    RELEASE,
    chart.dir,
    "-n",
    NS,
    "--create-namespace",
    "-f",
    file,
    "--wait",
    "--timeout",
    "3m",
  ]);
  const helmDone = Date.now();
  assert.match(
    output,
    /It runs localhost\/vibetalk\/operator:0\.1\.0, the chat-nodes localhost\/vibetalk\/chat-node:0\.1\.0\./,
    "the NOTES name the images",
  );
  const cc = await waitFor(
    "ChatCluster Ready=True",
    async () => {
      const c = await chatCluster();
      return condition(c, "Ready")?.status === "True" ? c : undefined;
    },
    180_000,
    250,
    describeCluster,
  );
  const ready = Date.now();
  timings.push(
    `install: helm install --wait returned after ${((helmDone - t0) / 1000).toFixed(1)} s, ChatCluster Ready ${((ready - t0) / 1000).toFixed(1)} s after the install started`,
  );

  assert.equal(
    cc.spec.image,
    CHAT_NODE_IMAGE,
    "chatCluster.image's default: localhost/vibetalk/chat-node:<appVersion>",
  );
  assert.equal(cc.status?.readyReplicas, 2);
  const owners = cc.status?.partitionAssignment?.owners ?? {};
  assert.equal(Object.keys(owners).length, PARTITIONS, "every partition has an owner");
  const nodes = await readyChatNodes();
  assert.deepEqual(
    [...new Set(Object.values(owners))].sort(),
    nodes.map((n) => n.name),
  );

  const operatorPods = (
    await kubectlJson<{ items: PodJson[] }>([
      "-n",
      NS,
      "get",
      "pods",
      "-l",
      "app.kubernetes.io/component=operator",
    ])
  ).items;
  assert.equal(operatorPods.filter(isReady).length, 2, "operator.replicas, both Ready (--wait)");
  for (const p of [...operatorPods, ...(await chatNodePods())]) {
    assert.equal(p.spec.nodeName, k.node.name);
    assert.match(p.status.podIP ?? "", /^10\.244\.0\./);
    assert.ok(p.status.containerStatuses?.[0]?.imageID, `${p.metadata.name} runs an imported image`);
  }
  const operatorContainer = operatorPods[0]?.spec.containers[0];
  assert.equal(operatorContainer?.image, "localhost/vibetalk/operator:0.1.0");
  assert.equal(operatorContainer?.imagePullPolicy, "IfNotPresent");
  assert.deepEqual(
    [...new Set((await chatNodePods()).map((p) => p.spec.containers[0]?.image))],
    [CHAT_NODE_IMAGE],
  );
});

test("two users chat through two chat-node pods of the chart's cluster (HTTP register/login, Socket.IO over WebSocket)", async () => {
  const [a, b] = await readyChatNodes();
  assert.ok(a && b);
  const alice = await register(a.url, "alice");
  await register(b.url, "bob");
  // Log bob in on the other pod: both verify the JWT secret the chart put in <release>-backends.
  const login = await fetch(`${a.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bob", password: "password-123" }),
  });
  assert.equal(login.status, 200, await login.clone().text());
  const { token, user } = (await login.json()) as { token: string; user: { id: string } };
  const bob: Member = { id: user.id, token };
  const channel = await createGroup(a.url, alice, "alice and bob", [bob]);

  const sa = io(a.url, { auth: { token: alice.token }, transports: ["websocket"], reconnection: false });
  const sb = io(b.url, { auth: { token: bob.token }, transports: ["websocket"], reconnection: false });
  try {
    await Promise.all(
      [sa, sb].map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            s.once("connect", () => resolve());
            s.once("connect_error", reject);
          }),
      ),
    );
    /** Sends from one socket and resolves with the message as the other socket receives it. */
    const send = async (from: typeof sa, to: typeof sb, clientMsgId: string, body: string) => {
      // The sender's own socket gets the message too: wait for this one on the other side.
      const got = new Promise<{ body: string; seq: number }>((resolve) => {
        const onMessage = (m: { clientMsgId: string; body: string; seq: number }) => {
          if (m.clientMsgId !== clientMsgId) return;
          to.off("message", onMessage);
          resolve(m);
        };
        to.on("message", onMessage);
      });
      const ack = (await from.timeout(10_000).emitWithAck("message:send", {
        channelId: channel,
        clientMsgId,
        body,
      })) as { ok: boolean };
      assert.equal(ack.ok, true, JSON.stringify(ack));
      return got;
    };
    const m1 = await send(sa, sb, "m1", "hello from pod a");
    assert.deepEqual([m1.body, m1.seq], ["hello from pod a", 1]);
    const m2 = await send(sb, sa, "m2", "hello back from pod b");
    assert.deepEqual([m2.body, m2.seq], ["hello back from pod b", 2]);
  } finally {
    sa.disconnect();
    sb.disconnect();
  }
});

test("helm upgrade with new chat-node resources rolls the pods under steady traffic: every acked message stored once, gap-free", async () => {
  const [first] = await readyChatNodes();
  assert.ok(first);
  const sender = await register(first.url, "steady_sender");
  const reader = await register(first.url, "steady_reader");
  const channels: string[] = [];
  for (let i = 0; i < 4; i++) channels.push(await createGroup(first.url, sender, `steady ${i}`, [reader]));
  const senderClient = new RoamingClient(sender, readyChatNodes);
  const readerClient = new RoamingClient(reader, readyChatNodes, channels);
  await Promise.all([senderClient.connect(), readerClient.connect()]);
  const steady = new SteadySender(senderClient, channels, 15);
  steady.start();
  await sleep(3000);

  const oldPods = new Set((await chatNodePods()).map((p) => p.metadata.name));
  const deployment = () => kubectlJson<DeploymentJson>(["-n", NS, "get", "deployment", CLUSTER]);
  const specHash = (d: DeploymentJson) => d.spec.template.metadata.annotations?.["vibetalk.io/spec-hash"];
  const hashBefore = specHash(await deployment());
  const generationBefore = (await chatCluster()).metadata.generation;

  // spec.resources is among the inputs of the pods' spec hash (operator/src/resources/deployment.ts).
  const file = await chart.writeValues(releaseValues("150m"));
  const t0 = Date.now();
  await helm(["upgrade", RELEASE, chart.dir, "-n", NS, "-f", file, "--wait", "--timeout", "3m"]);
  const helmDone = Date.now();
  await waitFor(
    "the chat-node Deployment rolled: 2 new pods Ready, none of the old left, the ChatCluster Ready again",
    async () => {
      const cc = await chatCluster();
      if (cc.metadata.generation === generationBefore) return false;
      if (cc.status?.observedGeneration !== cc.metadata.generation) return false;
      if (condition(cc, "Ready")?.status !== "True") return false;
      const d = await deployment();
      if (specHash(d) === hashBefore || d.status.observedGeneration !== d.metadata.generation) return false;
      if (d.status.updatedReplicas !== 2 || d.status.readyReplicas !== 2 || d.status.replicas !== 2)
        return false;
      const pods = await chatNodePods();
      if (pods.length !== 2 || pods.some((p) => oldPods.has(p.metadata.name) || !isReady(p))) return false;
      const owners = new Set(Object.values(cc.status?.partitionAssignment?.owners ?? {}));
      return (
        [...owners].sort().join() ===
        pods
          .map((p) => p.metadata.name)
          .sort()
          .join()
      );
    },
    240_000,
    250,
    describeCluster,
  );
  const rolled = Date.now();
  for (const p of await chatNodePods())
    assert.equal(
      p.spec.containers[0]?.resources?.requests?.cpu,
      "150m",
      `${p.metadata.name}: the new resources`,
    );
  await sleep(3000); // traffic on the new pods
  await steady.stop();
  await sleep(2000); // the last messages reach the reader

  const [anyNode] = await readyChatNodes();
  const { acked, stored, retried, lost } = await verifyDelivery(
    anyNode!.url,
    reader,
    readerClient,
    steady,
    channels,
  );
  timings.push(
    `upgrade: helm upgrade --wait returned after ${((helmDone - t0) / 1000).toFixed(1)} s, chat-node pods rolled (2 new Ready, old gone, partitions reassigned) ${((rolled - t0) / 1000).toFixed(1)} s after it started`,
    `upgrade traffic: ${acked} messages acked, ${stored} stored, ${lost} lost, ${retried} sends retried, reader reconnects ${readerClient.reconnects}, sender reconnects ${senderClient.reconnects}`,
  );
  assert.equal(lost, 0);
  senderClient.close();
  readerClient.close();
});

test("helm uninstall removes every object the release made; the CRD, the backends Secret, the leader Lease and the RabbitMQ topology stay", async () => {
  const resources = [...listable, "chatclusters.vibetalk.io"];
  const during = minus(await snapshot(resources), baseline);
  // What the release made: helm's objects and, through the ChatCluster, the operator's.
  for (const id of [
    `CustomResourceDefinition//chatclusters.vibetalk.io`,
    `Deployment/${NS}/${OPERATOR}`,
    `ServiceAccount/${NS}/${OPERATOR}`,
    `Service/${NS}/${OPERATOR}`,
    `ClusterRole//${OPERATOR}`,
    `ClusterRoleBinding//${OPERATOR}`,
    `Role/${NS}/${OPERATOR}-leader-election`,
    `RoleBinding/${NS}/${OPERATOR}-leader-election`,
    `RoleBinding/kube-system/${OPERATOR}-auth-reader`,
    `APIService//v1beta1.external.metrics.k8s.io`,
    `Secret/${NS}/${RELEASE}-backends`,
    `ChatCluster/${NS}/${CLUSTER}`,
    `Deployment/${NS}/${CLUSTER}`,
    `Service/${NS}/${CLUSTER}`,
    `Service/${NS}/${CLUSTER}-headless`,
    `ConfigMap/${NS}/${CLUSTER}-partitions`,
    `ConfigMap/${NS}/${CLUSTER}-releases`,
    `ServiceAccount/${NS}/${CLUSTER}-chat-node`,
    `Role/${NS}/${CLUSTER}-chat-node`,
    `RoleBinding/${NS}/${CLUSTER}-chat-node`,
    `Lease/${NS}/${OPERATOR}`,
  ])
    assert.ok(during.includes(id), `the release made ${id}; made: ${during.join(", ")}`);

  const t0 = Date.now();
  await helm(["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "3m"]);
  const helmDone = Date.now();
  // Documented in docs/install.md, "Upgrades and uninstall".
  const kept = [
    `CustomResourceDefinition//chatclusters.vibetalk.io`, // helm never deletes crds/
    `APIService//v1alpha1.vibetalk.io`, // the API server's own, for the CRD's group: goes with the CRD
    `Lease/${NS}/${OPERATOR}`, // the operator's leader election, made at run time, owned by nothing
    `Secret/${NS}/${RELEASE}-backends`, // helm.sh/resource-policy: keep
  ].sort();
  let left: string[] = [];
  await waitFor(
    "everything else the release made gone (the chat-node pods drain first)",
    async () => {
      left = minus(await snapshot(resources), baseline);
      return left.join() === kept.join();
    },
    120_000,
    1000,
    async () => `left: ${left.join(", ")}`,
  );
  timings.push(
    `uninstall: helm uninstall --wait returned after ${((helmDone - t0) / 1000).toFixed(1)} s, everything but what it keeps gone after ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  assert.deepEqual(left, kept);
  const gone = during.filter((id) => !kept.includes(id));
  console.log(`uninstall removed ${gone.length} objects; kept ${kept.join(", ")}`);

  // deletionPolicy Retain (the chart's default): the ChatCluster's RabbitMQ topology outlives it.
  const u = new URL(k.rabbit.managementUrl!);
  const res = await fetch(`${u.origin}/api/queues`, {
    headers: { authorization: `Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}` },
  });
  assert.equal(res.status, 200);
  const queues = ((await res.json()) as { name: string }[]).filter((q) =>
    q.name.startsWith("vibetalk.partition."),
  );
  assert.equal(queues.length, PARTITIONS, "the partition queues stay (deletionPolicy: Retain)");
});
