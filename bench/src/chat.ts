import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { io, type Socket } from "socket.io-client";
import { ManagedProcess, freePort, repoRoot, tempDir, waitUntil } from "@vibetalk/testkit";
import { summarize, type Summary } from "./stats.js";

export interface ChatBenchOptions {
  redisUrl: string;
  rabbitUrl: string;
  mongoUrl: string;
  nodes: number;
  users: number;
  groupSize: number;
  messages: number;
  /** Sends in flight per user. */
  window: number;
}

export interface ChatBenchResult {
  messages: number;
  deliveries: number;
  seconds: number;
  messagesPerSecond: number;
  deliveriesPerSecond: number;
  sendToAck: Summary;
  sendToDeliver: Summary;
}

interface User {
  id: string;
  token: string;
  node: number;
  socket?: Socket;
}

async function post<T>(base: string, path: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Starts `nodes` chat-node processes splitting the partitions; returns their base URLs and a stop function. */
export async function startChatNodes(
  o: ChatBenchOptions,
): Promise<{ urls: string[]; stop(): Promise<void> }> {
  const dir = await tempDir("bench-nodes");
  const secret = randomBytes(24).toString("hex");
  const procs: ManagedProcess[] = [];
  const urls: string[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const port = await freePort();
    const from = Math.floor((i * 64) / o.nodes);
    const to = Math.floor(((i + 1) * 64) / o.nodes) - 1;
    const p = new ManagedProcess({
      name: `chat-node-${i}`,
      command: process.execPath,
      args: ["--import", "tsx", join(repoRoot, "chat-node/src/main.ts")],
      cwd: repoRoot,
      logFile: join(dir.path, `chat-node-${i}.log`),
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        NODE_ID: `bench-${i}`,
        REDIS_URL: o.redisUrl,
        RABBITMQ_URL: o.rabbitUrl,
        MONGODB_URL: o.mongoUrl,
        JWT_SECRET: secret,
        OWNED_PARTITIONS: `${from}-${to}`,
        LIMIT_SEND_RATE: "100000",
        LIMIT_SEND_BURST: "100000",
        LOG_LEVEL: "warn",
      },
    });
    procs.push(p);
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(`chat-node-${i}`, p, async () => (await fetch(`${url}/readyz`)).ok, 60_000, 200);
    urls.push(url);
  }
  return {
    urls,
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop(30_000)));
      await dir.remove();
    },
  };
}

/**
 * Users spread over the nodes, groups of `groupSize` consecutive users (so every group has members on
 * every node), each user sending with `window` messages in flight; latencies measured in this process.
 */
export async function runChatBench(o: ChatBenchOptions, urls: string[]): Promise<ChatBenchResult> {
  const run = randomBytes(3).toString("hex");
  const users: User[] = [];
  for (let i = 0; i < o.users; i++) {
    const node = i % urls.length;
    const r = await post<{ token: string; user: { id: string } }>(urls[node]!, "/auth/register", {
      username: `b${run}_${i}`,
      password: "bench-password-1",
    });
    users.push({ id: r.user.id, token: r.token, node });
  }
  const groups: { id: string; members: User[] }[] = [];
  for (let g = 0; g < o.users; g += o.groupSize) {
    const members = users.slice(g, g + o.groupSize);
    if (members.length < 2) break;
    const owner = members[0]!;
    const r = await post<{ channel: { id: string } }>(
      urls[owner.node]!,
      "/channels",
      {
        type: "group",
        name: `bench ${g}`,
        memberIds: members.slice(1).map((m) => m.id),
      },
      owner.token,
    );
    groups.push({ id: r.channel.id, members });
  }
  const sentAt = new Map<string, number>();
  const ackLatencies: number[] = [];
  const deliverLatencies: number[] = [];
  let expectedDeliveries = 0;
  let deliveries = 0;
  let allDelivered: () => void = () => undefined;
  const delivered = new Promise<void>((resolve) => (allDelivered = resolve));
  await Promise.all(
    users.map(
      (u) =>
        new Promise<void>((resolve, reject) => {
          const s = io(urls[u.node]!, { auth: { token: u.token }, transports: ["websocket"] });
          s.on("message", (m: { clientMsgId: string; senderId: string }) => {
            const t = sentAt.get(m.clientMsgId);
            if (t === undefined) return;
            deliverLatencies.push(performance.now() - t);
            deliveries += 1;
            if (deliveries === expectedDeliveries) allDelivered();
          });
          s.once("connect", () => resolve());
          s.once("connect_error", reject);
          u.socket = s;
        }),
    ),
  );
  // Each message goes to every member of its group, the sender's own socket included (multi-device echo).
  const perGroup = Math.ceil(o.messages / groups.length);
  const plan: { user: User; channelId: string; clientMsgId: string }[][] = users.map(() => []);
  let total = 0;
  for (const [gi, g] of groups.entries()) {
    for (let k = 0; k < perGroup && total < o.messages; k++, total++) {
      const sender = g.members[k % g.members.length]!;
      plan[users.indexOf(sender)]!.push({ user: sender, channelId: g.id, clientMsgId: `${run}-${gi}-${k}` });
      expectedDeliveries += g.members.length;
    }
  }
  const t0 = performance.now();
  await Promise.all(
    plan.map(async (queue) => {
      const inFlight = new Set<Promise<void>>();
      for (const item of queue) {
        const p = (async () => {
          const t = performance.now();
          sentAt.set(item.clientMsgId, t);
          const reply = (await item.user.socket!.timeout(30_000).emitWithAck("message:send", {
            channelId: item.channelId,
            clientMsgId: item.clientMsgId,
            body: `bench message ${item.clientMsgId}`,
          })) as { ok: boolean; error?: unknown };
          if (!reply.ok) throw new Error(`send refused: ${JSON.stringify(reply.error)}`);
          ackLatencies.push(performance.now() - t);
        })();
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= o.window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }),
  );
  const timeout = setTimeout(allDelivered, 60_000);
  await delivered;
  clearTimeout(timeout);
  const seconds = (performance.now() - t0) / 1000;
  for (const u of users) u.socket?.disconnect();
  return {
    messages: total,
    deliveries,
    seconds,
    messagesPerSecond: total / seconds,
    deliveriesPerSecond: deliveries / seconds,
    sendToAck: summarize(ackLatencies),
    sendToDeliver: summarize(deliverLatencies),
  };
}
