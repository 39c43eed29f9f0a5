import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { io } from "socket.io-client";
import { startVibeTalkCluster, type VibeTalkCluster } from "../src/index.js";

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
