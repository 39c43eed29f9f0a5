import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { io } from "socket.io-client";
import { waitFor } from "@vibetalk/testkit";
import { CHAT_NODE_IMAGE, startVibeTalkCluster, type VibeTalkCluster } from "../src/index.js";

let cluster: VibeTalkCluster;

before(async () => {
  cluster = await startVibeTalkCluster({
    replicas: 2,
    partitions: 16,
    log: (m) => console.log(`[cluster] ${m}`),
  });
});
after(() => cluster?.stop());

test("the operator installed from manifests/ brings a ChatCluster to Ready with its chat-node pods", async () => {
  const cc = await cluster.chatCluster();
  const status = cc.status as {
    readyReplicas?: number;
    partitionAssignment?: { owners: Record<string, string> };
  };
  assert.equal(status.readyReplicas, 2);
  const owners = Object.values(status.partitionAssignment?.owners ?? {});
  assert.equal(owners.length, 16, "every partition has an owner");
  const nodes = await cluster.readyChatNodes();
  assert.deepEqual(
    [...new Set(owners)].sort(),
    nodes.map((n) => n.name),
  );
});

test("two users on different chat-node pods chat through the cluster", async () => {
  const [a, b] = await cluster.readyChatNodes();
  assert.ok(a && b);
  const register = async (url: string, username: string) => {
    const res = await fetch(`${url}/api/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "password-123" }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as { token: string; user: { id: string } };
  };
  const alice = await register(a.url, "alice");
  const bob = await register(b.url, "bob");
  const res = await fetch(`${a.url}/api/v1/channels`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
    body: JSON.stringify({ type: "direct", userId: bob.user.id }),
  });
  const { channel } = (await res.json()) as { channel: { id: string } };
  const sa = io(a.url, { auth: { token: alice.token }, transports: ["websocket"] });
  const sb = io(b.url, { auth: { token: bob.token }, transports: ["websocket"] });
  try {
    await Promise.all([sa, sb].map((s) => new Promise<void>((r) => s.once("connect", () => r()))));
    const got = new Promise<{ body: string; seq: number }>((r) => sb.once("message", r));
    const ack = (await sa.timeout(10_000).emitWithAck("message:send", {
      channelId: channel.id,
      clientMsgId: "m1",
      body: "hello from pod a",
    })) as { ok: boolean };
    assert.equal(ack.ok, true);
    const m = await got;
    assert.equal(m.body, "hello from pod a");
    assert.equal(m.seq, 1);
  } finally {
    sa.disconnect();
    sb.disconnect();
  }
});

test("the operator and the chat-nodes run as containers on the real node, from the images built here", async () => {
  const pods = JSON.parse(await cluster.cp.kubectl(["get", "pods", "-A", "-o", "json"])) as {
    items: {
      metadata: { name: string; namespace: string };
      spec: { nodeName: string; containers: { image: string }[] };
      status: { podIP: string; containerStatuses: { containerID: string; ready: boolean }[] };
    }[];
  };
  const operator = pods.items.filter((p) => p.metadata.namespace === "vibetalk-system");
  const chat = pods.items.filter((p) => p.metadata.name.startsWith(`${cluster.name}-`));
  assert.equal(operator.length, 2, "the operator Deployment's two replicas");
  assert.equal(chat.length, 2);
  for (const p of [...operator, ...chat]) {
    assert.equal(p.spec.nodeName, cluster.node.name);
    assert.match(p.status.podIP, /^10\.244\.0\./);
    assert.match(p.status.containerStatuses[0]?.containerID ?? "", /^containerd:\/\//);
  }
  assert.deepEqual(
    [...new Set(operator.map((p) => p.spec.containers[0]?.image))],
    ["localhost/vibetalk/operator:0.1.0"],
  );
  assert.deepEqual([...new Set(chat.map((p) => p.spec.containers[0]?.image))], [CHAT_NODE_IMAGE]);
  // The chat Service's EndpointSlices list the Ready pods: what nginx follows.
  const endpoints = await cluster.chatEndpoints();
  assert.deepEqual(endpoints.map((e) => e.split(":")[0]).sort(), chat.map((p) => p.status.podIP).sort());
  assert.match(
    await cluster.podLogs(chat[0]!.metadata.name),
    /"msg"/,
    "kubectl logs shows the JSON log lines",
  );
});

/** A second ChatCluster in its own namespace, with the first one's Secret copied in and `edit` applied. */
async function brokenCluster(ns: string, edit: { image?: string; mongodbUrl?: string }): Promise<void> {
  const secret = JSON.parse(
    await cluster.cp.kubectl([
      "get",
      "secret",
      `${cluster.name}-backends`,
      "-n",
      cluster.namespace,
      "-o",
      "json",
    ]),
  ) as { data: Record<string, string> };
  const data = { ...secret.data };
  if (edit.mongodbUrl) data["mongodb-url"] = Buffer.from(edit.mongodbUrl).toString("base64");
  const cc = await cluster.chatCluster();
  const spec = {
    ...(cc.spec as Record<string, unknown>),
    replicas: 1,
    ...(edit.image ? { image: edit.image } : {}),
  };
  await cluster.cp.kubectl(["create", "namespace", ns]);
  await cluster.cp.kubectl(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: `${cluster.name}-backends`, namespace: ns },
          data,
        },
        {
          apiVersion: "vibetalk.io/v1alpha1",
          kind: "ChatCluster",
          metadata: { name: "broken", namespace: ns },
          spec,
        },
      ],
    }),
  });
}

async function degradedOf(
  ns: string,
): Promise<{ status: string; reason: string; message: string } | undefined> {
  const cc = JSON.parse(
    await cluster.cp.kubectl(["get", "chatcluster", "broken", "-n", ns, "-o", "json"]),
  ) as {
    status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
  };
  return cc.status?.conditions?.find((c) => c.type === "Degraded");
}

test("a ChatCluster naming an image that does not exist says so in its Degraded condition", async () => {
  const ns = "broken-image";
  await brokenCluster(ns, { image: "localhost/vibetalk/chat-node:does-not-exist" });
  const degraded = await waitFor(
    "Degraded=True ImagePullFailed",
    async () => {
      const d = await degradedOf(ns);
      return d?.status === "True" && d.reason === "ImagePullFailed" ? d : undefined;
    },
    90_000,
  );
  assert.match(degraded.message, /localhost\/vibetalk\/chat-node:does-not-exist/);
  assert.match(degraded.message, /ErrImagePull|ImagePullBackOff/);
  const events = await cluster.cp.kubectl([
    "get",
    "events",
    "-n",
    ns,
    "--field-selector",
    "reason=ImagePullFailed",
  ]);
  assert.match(events, /ImagePullFailed/, "a Warning event too");
  await cluster.cp.kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("a chat-node that cannot start (a bad MongoDB URL) shows the crash loop in the Degraded condition", async () => {
  const ns = "broken-start";
  await brokenCluster(ns, { mongodbUrl: "not-a-mongodb-url" });
  const degraded = await waitFor(
    "Degraded=True CrashLooping",
    async () => {
      const d = await degradedOf(ns);
      return d?.status === "True" && d.reason === "CrashLooping" ? d : undefined;
    },
    120_000,
  );
  assert.match(degraded.message, /exit code 1/);
  assert.match(degraded.message, /kubectl logs broken-[a-z0-9-]+ --previous/);
  await cluster.cp.kubectl(["delete", "namespace", ns, "--wait=false"]);
});
