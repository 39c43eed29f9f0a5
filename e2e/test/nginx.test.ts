// Through nginx on the local cluster (issue 19): the chat-node pods on the real node, nginx in front
// following the chat Service's EndpointSlices as `npm run up` runs it (e2e/src/front.ts, docs/nginx.md).
// Without affinity a long-polling session breaks; with the cookie affinity a polling client and a
// WebSocket client on different pods chat (1:1 and group, receipts, typing, presence, sync after a
// disconnect), and polling sessions are kept while a chat-node starts and while another drains.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { followDrains, freePort, pollingSessionAnswers, waitFor } from "@vibetalk/testkit";
import { io, type Socket } from "socket.io-client";
import {
  startFrontProxy,
  startVibeTalkCluster,
  type FrontProxy,
  type VibeTalkCluster,
} from "../src/index.js";
import { createGroup, register, type ChatMessage, type Member } from "../src/traffic.js";

let cluster: VibeTalkCluster;
let front: FrontProxy;
const sockets: Socket[] = [];
let finished = false;

before(async () => {
  cluster = await startVibeTalkCluster({
    replicas: 2,
    partitions: 16,
    drainSeconds: 6,
    log: (m) => console.log(`[cluster] ${m}`),
  });
  front = await startFrontProxy(cluster, {
    port: await freePort(),
    intervalMs: 500,
    log: (m) => console.log(`[front] ${m}`),
  });
  await front.waitFor("two ready chat-nodes", (u) => u.ready.length === 2);
});
after(async () => {
  finished = true; // no handler reconnects from here on
  for (const s of sockets) s.close();
  await front?.stop();
  await cluster?.stop();
});

function client(
  token: string,
  transports: ("polling" | "websocket")[],
  opts: { reconnection?: boolean; url?: string } = {},
): Socket {
  const s = io(opts.url ?? front.url, {
    auth: { token },
    transports,
    withCredentials: true, // a cookie jar, as a browser has: the affinity cookie is kept
    forceNew: true,
    reconnection: opts.reconnection ?? false,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  sockets.push(s);
  return s;
}

function connected(s: Socket, timeoutMs = 10_000): Promise<void> {
  if (s.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no connection")), timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    s.once("connect_error", (e: Error) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** Sockets per chat-node pod, from each pod's operations port (nothing else connects meanwhile). */
async function connectionsByPod(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of await cluster.readyChatNodes()) {
    const ops = n.url.replace(/:8080$/, ":9090");
    const r = (await (await fetch(`${ops}/internal/connections`)).json()) as { connections: number };
    out.set(n.name, r.connections);
  }
  return out;
}

async function directChannel(a: Member, b: Member): Promise<string> {
  const r = await fetch(`${front.url}/api/v1/channels`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${a.token}` },
    body: JSON.stringify({ type: "direct", userId: b.id }),
  });
  assert.ok(r.ok, `direct channel: ${r.status}`);
  return ((await r.json()) as { channel: { id: string } }).channel.id;
}

async function send(s: Socket, channelId: string, clientMsgId: string, body: string): Promise<void> {
  const r = (await s.timeout(10_000).emitWithAck("message:send", { channelId, clientMsgId, body })) as {
    ok: boolean;
  };
  assert.equal(r.ok, true, `send ${clientMsgId}: ${JSON.stringify(r)}`);
}

/** Events of one kind a socket receives, kept from the moment of the call. */
function record<T>(s: Socket, event: string): T[] {
  const got: T[] = [];
  s.on(event, (e: T) => got.push(e));
  return got;
}

test("without affinity a long-polling session breaks on the second pod (400 Session ID unknown)", async () => {
  const rr = await startFrontProxy(cluster, { port: await freePort(), affinity: "none" });
  try {
    await rr.waitFor("two upstreams", (u) => u.ready.length === 2);
    const answers = await pollingSessionAnswers(rr.url);
    const unknown = answers.filter(([st, body]) => st === 400 && body.includes("Session ID unknown"));
    assert.ok(unknown.length >= 1, `expected a 400 Session ID unknown, got ${JSON.stringify(answers)}`);
    // A real client forced to polling: it cannot hold a session for long.
    const u = await register(rr.url, `rr${Date.now() % 100000}`);
    let failures = 0;
    for (let i = 0; i < 3; i++) {
      const s = client(u.token, ["polling"], { url: rr.url });
      await connected(s, 5000).then(
        () => waitFor("a disconnect", async () => !s.connected, 5000).then(() => failures++),
        () => failures++,
      );
      s.close();
    }
    assert.equal(failures, 3, "every polling session failed without affinity");
  } finally {
    await rr.stop();
  }
});

test("with the cookie affinity, a polling and a WebSocket client on different pods chat: 1:1 and group, receipts, typing, presence, sync", async () => {
  const tag = Date.now() % 100000;
  const [P, W, Q] = await Promise.all(["p", "w", "q"].map((n) => register(front.url, `ng${n}${tag}`)));
  const p = client(P!.token, ["polling"]);
  await connected(p);
  const before = await connectionsByPod();
  const podOfP = [...before].find(([, c]) => c === 1)?.[0];
  assert.ok(podOfP, `the polling client's pod: ${JSON.stringify([...before])}`);
  // A WebSocket client on the other pod (a new client's first request goes round-robin).
  let w: Socket | undefined;
  for (let i = 0; i < 10 && !w; i++) {
    const s = client(W!.token, ["websocket"]);
    await connected(s);
    const counts = await connectionsByPod();
    if ([...counts].some(([pod, c]) => pod !== podOfP && c === 1)) w = s;
    else s.close();
    await sleep(200);
  }
  assert.ok(w, "a WebSocket client landed on the other pod within 10 tries");
  const q = client(Q!.token, ["polling"]);
  await connected(q);
  assert.equal(p.io.engine.transport.name, "polling", "the polling client never upgraded");

  // 1:1 both ways, with receipts and typing.
  const direct = await directChannel(P!, W!);
  const wMessages = record<ChatMessage>(w, "message");
  const pMessages = record<ChatMessage>(p, "message");
  const pReceipts = record<{ channelId: string; userId: string; kind: string; seq: number }>(p, "receipt");
  const pTyping = record<{ channelId: string; userId: string; typing: boolean }>(p, "typing");
  await send(p, direct, "d1", "over polling");
  await waitFor("the WebSocket client receives", async () =>
    wMessages.some((m) => m.body === "over polling"),
  );
  const seq = wMessages.find((m) => m.body === "over polling")!.seq;
  await w.timeout(5000).emitWithAck("receipt", { channelId: direct, seq, kind: "read" });
  await waitFor("the read receipt over polling", async () =>
    pReceipts.some((r) => r.userId === W!.id && r.kind === "read" && r.seq === seq),
  );
  w.emit("typing", { channelId: direct, typing: true });
  await waitFor("typing over polling", async () => pTyping.some((t) => t.userId === W!.id && t.typing));
  await send(w, direct, "d2", "over websocket");
  await waitFor("the polling client receives", async () =>
    pMessages.some((m) => m.body === "over websocket"),
  );

  // Presence across the pods.
  const pres = (await p.timeout(5000).emitWithAck("presence:subscribe", { userIds: [W!.id] })) as {
    ok: boolean;
    presence: { userId: string; online: boolean }[];
  };
  assert.equal(pres.ok, true);
  assert.deepEqual(
    pres.presence.map((x) => [x.userId, x.online]),
    [[W!.id, true]],
  );

  // A group of the three.
  const group = await createGroup(front.url, P!, `nginx ${tag}`, [W!, Q!]);
  const qMessages = record<ChatMessage>(q, "message");
  await send(p, group, "g1", "to the group");
  await waitFor("both members receive", async () =>
    [wMessages, qMessages].every((l) => l.some((m) => m.channelId === group && m.body === "to the group")),
  );

  // The polling client goes away, misses three messages, comes back through nginx and syncs them.
  const last = Math.max(...pMessages.filter((m) => m.channelId === direct).map((m) => m.seq));
  p.close();
  for (let i = 0; i < 3; i++) await send(w, direct, `missed${i}`, `missed ${i}`);
  const p2 = client(P!.token, ["polling"]);
  await connected(p2);
  const reply = (await p2.timeout(10_000).emitWithAck("sync", {
    channels: [{ channelId: direct, afterSeq: last }],
  })) as { ok: boolean; messages: ChatMessage[] };
  assert.equal(reply.ok, true);
  assert.deepEqual(
    reply.messages.map((m) => m.body),
    ["missed 0", "missed 1", "missed 2"],
  );
  for (const s of [p2, q, w]) s.close();
});

test("polling sessions are kept while a chat-node starts and while another drains; no request reaches another pod", async () => {
  await waitFor("the earlier sessions gone", async () =>
    [...(await connectionsByPod()).values()].every((c) => c === 0),
  );
  const tag = Date.now() % 100000;
  const peer = await register(front.url, `nsw${tag}`);
  const users = await Promise.all(Array.from({ length: 6 }, (_, i) => register(front.url, `nsp${i}x${tag}`)));
  const chans = await Promise.all(users.map((u) => directChannel(peer, u)));
  const sw = client(peer.token, ["websocket"]);
  await connected(sw);
  // The peer's pod is not the one drained below (its sends would be cut off mid-ack).
  const podOfPeer = [...(await connectionsByPod())].find(([, c]) => c === 1)![0];
  const clients = users.map((u) => client(u.token, ["polling"], { reconnection: true }));
  const { disconnects, reconnectAsked, refusals } = followDrains(clients, () => finished);
  await Promise.all(clients.map((c) => connected(c)));
  const ids = clients.map((c) => c.id);
  const sids = clients.map((c) => c.io.engine.id);

  // Scale out 2 → 3: nginx gains the new pod; nobody moves; new sessions may land there.
  const oldPods = (await cluster.readyChatNodes()).map((n) => n.name);
  await cluster.patchSpec({ replicas: 3 });
  await front.waitFor("three ready upstreams", (u) => u.ready.length === 3, 180_000);
  await sleep(1500);
  assert.deepEqual(
    disconnects,
    clients.map(() => 0),
    "no session lost when a chat-node started",
  );
  assert.deepEqual(
    clients.map((c) => c.id),
    ids,
  );
  const newPod = (await cluster.readyChatNodes()).find((n) => !oldPods.includes(n.name))!.name;
  const late = await Promise.all(Array.from({ length: 4 }, (_, i) => register(front.url, `nsl${i}x${tag}`)));
  const lateClients = late.map((u) => client(u.token, ["polling"]));
  await Promise.all(lateClients.map((c) => connected(c)));
  assert.ok(((await connectionsByPod()).get(newPod) ?? 0) >= 1, "new sessions reach the new chat-node");
  for (const c of lateClients) c.close();

  // A pod holding polling sessions drains (deleted, as a rollout or a node drain does): its clients are
  // asked to reconnect and land elsewhere; everyone else keeps their session.
  const counts = await connectionsByPod();
  const victim = [...counts]
    .filter(([pod]) => pod !== newPod && pod !== podOfPeer)
    .sort((a, b) => b[1] - a[1])[0]!;
  const onVictim = victim[1];
  const victimAddress = (await cluster.readyChatNodes())
    .find((n) => n.name === victim[0])!
    .url.replace(/^http:\/\//, "");
  console.log(`# connections before the drain: ${JSON.stringify([...counts])}; draining ${victim[0]}`);
  await cluster.cp.kubectl(["delete", "pod", victim[0], "-n", cluster.namespace, "--wait=false"]);
  await waitFor(
    "every polling client connected again",
    async () => reconnectAsked.filter(Boolean).length >= 1 && clients.every((c) => c.connected),
    60_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}: connected ${clients.map((c) => c.connected)}, refusals ${refusals}`);
  });
  await sleep(2000);
  const moved = reconnectAsked.filter(Boolean).length;
  console.log(`# refused handshakes during the drain (retried): ${refusals.length}`);
  console.log(`# ${moved} of ${clients.length} polling clients were on the drained pod and moved`);
  assert.ok(
    onVictim >= 1 && moved >= 1 && moved <= onVictim,
    `moved ${moved}, on the drained pod ${onVictim}`,
  );
  clients.forEach((c, i) => {
    if (!reconnectAsked[i]) {
      assert.equal(disconnects[i], 0, `client ${i} (not on the drained pod) kept its session`);
      assert.equal(c.id, ids[i]);
      assert.equal(c.io.engine.id, sids[i]);
    }
  });
  // Everyone still chats over polling, through nginx.
  for (const [i, c] of clients.entries()) {
    const got = record<ChatMessage>(c, "message");
    await send(sw, chans[i]!, `after${i}`, `after the drain ${i}`);
    await waitFor(`client ${i} receives`, async () => got.some((m) => m.body === `after the drain ${i}`));
  }
  // Stickiness from nginx's own log: every request of a kept session went to one upstream, and no live
  // pod answered 400 (a request routed away from its session).
  const log = await front.nginx.accessLog();
  for (const [i, sid] of sids.entries()) {
    if (reconnectAsked[i]) continue;
    const upstreams = new Set(log.filter((l) => l.includes(`sid=${sid}`)).map((l) => l.split(" ")[3]));
    assert.equal(upstreams.size, 1, `session ${sid} reached ${[...upstreams].join(", ")}`);
  }
  const refused = log.filter((l) => l.startsWith("400 "));
  console.log(`# requests through nginx: ${log.length}, 400 answers: ${refused.length}`);
  // The drained pod may answer 400 to a session's last POST (a pong or close packet) racing its close.
  assert.deepEqual(
    refused.filter((l) => l.split(" ")[3] !== victimAddress),
    [],
    "no request of a live session reached another pod",
  );
  sw.close();
});
