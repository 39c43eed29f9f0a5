/**
 * What the ChatCluster says when something a person must fix goes wrong, on the real node: a Secret key
 * that does not exist, Redis unreachable from the pods, an image that cannot be pulled, a crash loop.
 * Each failure is made for real (the kubelet's own CreateContainerConfigError, ErrImagePull and
 * CrashLoopBackOff; a REJECT rule between the pod network and Redis), its Degraded reason and message
 * and Warning event are asserted, `kubectl get cc` and `kubectl describe cc` are printed, and the cluster
 * is brought back to Ready with Degraded False before the next. The ChatCluster has no spec.image: the
 * operator runs the chat-node of its own version (issue 16, item 3).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { waitFor } from "@vibetalk/testkit";
import { CHAT_NODE_IMAGE, startVibeTalkCluster, type VibeTalkCluster } from "../src/index.js";

const run = promisify(execFile);
let cluster: VibeTalkCluster;
const SECRET = "chat-backends";

type Json = Record<string, unknown>;
interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
const conditions = async () =>
  ((await cluster.chatCluster()).status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
const condition = async (type: string) => (await conditions()).find((c) => c.type === type);

before(async () => {
  cluster = await startVibeTalkCluster({
    replicas: 2,
    partitions: 8,
    drainSeconds: 3,
    spec: { image: undefined }, // dropped from the JSON: the ChatCluster names no image
    log: (m) => console.log(`[cluster] ${m}`),
  });
});
after(() => cluster?.stop());

/** Prints what a person sees; returns `kubectl get cc` for assertions. */
async function show(what: string): Promise<string> {
  const ns = cluster.namespace;
  const get = await cluster.cp.kubectl(["get", "cc", cluster.name, "-n", ns]);
  const describe = await cluster.cp.kubectl(["describe", "cc", cluster.name, "-n", ns]);
  console.log(`----- ${what}: kubectl get cc\n${get}----- ${what}: kubectl describe cc\n${describe}-----`);
  return get;
}

async function degraded(reason: string, timeoutMs = 120_000, message?: RegExp): Promise<Condition> {
  return waitFor(
    `Degraded=True ${reason}${message ? ` ${String(message)}` : ""}`,
    async () => {
      const d = await condition("Degraded");
      return d?.status === "True" && d.reason === reason && (!message || message.test(d.message))
        ? d
        : undefined;
    },
    timeoutMs,
    500,
    async () => JSON.stringify(await conditions()),
  );
}

async function healthy(): Promise<void> {
  await waitFor(
    "Ready=True, Degraded=False, every pod on the wanted template",
    async () => {
      const [r, d, p] = [
        await condition("Ready"),
        await condition("Degraded"),
        await condition("Progressing"),
      ];
      return r?.status === "True" && d?.status === "False" && p?.status === "False";
    },
    180_000,
    500,
    async () => JSON.stringify(await conditions()),
  );
}

async function warningEvent(reason: string): Promise<string> {
  return waitFor(`a Warning event ${reason}`, async () => {
    const list = JSON.parse(
      await cluster.cp.kubectl(["get", "events.events.k8s.io", "-n", cluster.namespace, "-o", "json"]),
    ) as { items: { type: string; reason: string; note?: string; regarding: { name: string } }[] };
    return list.items.find(
      (e) => e.type === "Warning" && e.reason === reason && e.regarding.name === cluster.name,
    )?.note;
  });
}

const patchSecret = (data: Record<string, string>) =>
  cluster.cp.kubectl([
    "patch",
    "secret",
    SECRET,
    "-n",
    cluster.namespace,
    "--type=merge",
    "-p",
    JSON.stringify({ stringData: data }),
  ]);

test("a ChatCluster without spec.image runs the chat-node of the operator's version", async () => {
  const d = JSON.parse(
    await cluster.cp.kubectl(["get", "deployment", cluster.name, "-n", cluster.namespace, "-o", "json"]),
  ) as { spec: { template: { spec: { containers: { image: string }[] } } } };
  assert.equal(d.spec.template.spec.containers[0]?.image, CHAT_NODE_IMAGE);
  assert.equal(((await cluster.chatCluster()).spec as Json).image, undefined);
  const table = await show("healthy");
  assert.match(table, /READY\s+REPLICAS\s+READY-PODS\s+CONNECTIONS\s+PARTITIONS\s+DEGRADED/);
  assert.match(table, /chat\s+True\s+2\s+2\s+\d+\s+8\s+AsExpected/);
  // the chat-nodes keep their pod's deletion cost at their connection count (scale-in removes the emptiest)
  for (const n of await cluster.readyChatNodes()) {
    const a = await waitFor(`${n.name}'s annotations`, async () => {
      const p = await cluster.core.readNamespacedPod({ name: n.name, namespace: cluster.namespace });
      const ann = p.metadata?.annotations ?? {};
      return ann["controller.kubernetes.io/pod-deletion-cost"] !== undefined && ann;
    });
    assert.equal(a["controller.kubernetes.io/pod-deletion-cost"], a["vibetalk.io/connections"]);
    assert.equal(a["vibetalk.io/readiness"], "");
  }
});

test("a Secret key that does not exist: SecretKeyMissing names the Secret, the key and the field", async () => {
  await cluster.patchSpec({ redis: { secretRef: { name: SECRET, key: "redis-address" } } });
  try {
    await secretKeyMissing();
  } finally {
    await cluster.patchSpec({ redis: { secretRef: { name: SECRET, key: "redis-url" } } });
  }
  await healthy();
});

async function secretKeyMissing(): Promise<void> {
  const d = await degraded("SecretKeyMissing");
  assert.match(d.message, /Secret "chat-backends" has no key "redis-address" \(spec.redis.secretRef.key\)/);
  // the kubelet agrees: the new pod waits in CreateContainerConfigError, the old ones keep serving
  await waitFor("a pod in CreateContainerConfigError", async () => {
    const pods = await cluster.core.listNamespacedPod({
      namespace: cluster.namespace,
      labelSelector: "app.kubernetes.io/instance=chat",
    });
    return pods.items.some((p) =>
      p.status?.containerStatuses?.some((s) => s.state?.waiting?.reason === "CreateContainerConfigError"),
    );
  });
  assert.match(await warningEvent("SecretKeyMissing"), /redis-address/);
  const table = await show("SecretKeyMissing");
  // the old pods keep serving beside the surge pod that cannot start
  assert.match(table, /chat\s+True\s+3\s+2\s+\d+\s+8\s+SecretKeyMissing/);
}

test("Redis unreachable from the pods: BackendUnavailable from the chat-nodes' readiness annotation", async () => {
  const port = new URL(cluster.redis.url).port;
  const rule = [
    "INPUT",
    "-s",
    "10.244.0.0/24",
    "-p",
    "tcp",
    "--dport",
    port,
    "-j",
    "REJECT",
    "--reject-with",
    "tcp-reset",
  ];
  await run("iptables", ["-I", ...rule]);
  try {
    // each pod reports on its own 2 s tick: the first names one pod, then both
    const d = await degraded("BackendUnavailable", 60_000, /2 chat-node pods/);
    assert.match(
      d.message,
      /2 chat-node pods \(.+\) cannot reach Redis; check the URL in spec.redis.secretRef/,
    );
    const pods = await cluster.readyChatNodes();
    assert.equal(pods.length, 2, "the pods stay Ready: messages do not need Redis");
    const pod = await cluster.core.readNamespacedPod({ name: pods[0]!.name, namespace: cluster.namespace });
    assert.match(pod.metadata?.annotations?.["vibetalk.io/readiness"] ?? "", /redis/);
    assert.match(await warningEvent("BackendUnavailable"), /cannot reach Redis/);
    const table = await show("BackendUnavailable");
    assert.match(table, /chat\s+True\s+2\s+2\s+\d+\s+8\s+BackendUnavailable/);
  } finally {
    await run("iptables", ["-D", ...rule]);
  }
  await healthy();
  const pod = await cluster.core.readNamespacedPod({
    name: (await cluster.readyChatNodes())[0]!.name,
    namespace: cluster.namespace,
  });
  assert.equal(pod.metadata?.annotations?.["vibetalk.io/readiness"], "");
});

test("an image that cannot be pulled: ImagePullFailed names the image", async () => {
  const missing = "localhost/vibetalk/chat-node:0.0.0-missing";
  await cluster.patchSpec({ image: missing });
  try {
    const d = await degraded("ImagePullFailed");
    assert.match(d.message, new RegExp(`cannot get its image "${missing}"`));
    assert.match(await warningEvent("ImagePullFailed"), /0\.0\.0-missing/);
    await show("ImagePullFailed");
  } finally {
    await cluster.patchSpec({ image: null }); // back to the operator's default
  }
  await healthy();
});

test("a crash loop: CrashLooping says how often and where to look", async () => {
  // chat-node refuses a JWT secret shorter than 32 characters and exits at start-up
  await patchSecret({ "jwt-short": "too-short" });
  await cluster.patchSpec({ jwtSecretRef: { name: SECRET, key: "jwt-short" } });
  try {
    const d = await degraded("CrashLooping", 150_000);
    assert.match(d.message, /is crash-looping: CrashLoopBackOff: restarted \d+ times, last exit code \d+/);
    assert.match(d.message, /kubectl logs chat-.* --previous/);
    await show("CrashLooping");
  } finally {
    await cluster.patchSpec({ jwtSecretRef: { name: SECRET, key: "jwt-secret" } });
  }
  await healthy();
});
