import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { join } from "node:path";
import amqp from "amqplib";
import { io, type Socket } from "socket.io-client";
import { ManagedProcess, freePort, repoRoot, tempDir, waitUntil } from "@vibetalk/testkit";
import { cpuPerMessage, cpuSample, type CpuClass, type CpuPerMessage } from "./cpu.js";
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
  /**
   * What ends a send for the window: the ack (default: the client only waits for `{ok}`, so the
   * partition consumer may fall behind) or the delivery of the message to every member of its group.
   */
  pace?: "ack" | "delivery";
  /** Members of each group that send (default: all of them, round robin). */
  sendersPerGroup?: number;
  /** Extra environment for the chat-node processes (e.g. BATCH_SIZE). */
  env?: Record<string, string>;
  /** Keep the chat-node logs in this folder (default: a temporary folder removed at stop). */
  logDir?: string;
  /**
   * How messages enter: through the senders' sockets (default), or all at once straight into the
   * partition queues over AMQP (as chat-node would have published them), which makes a backlog: what
   * an owner finds after a restart or a rebalance. `partitionOf` is then required.
   */
  via?: "socket" | "broker";
  partitionOf?: (channelId: string) => number;
  /** The chat-node folder to run (default: the working tree's chat-node). */
  chatNodeDir?: string;
  /** Modules the chat-node processes load first (`node --import`), e.g. the probe's instrumentation. */
  preload?: string[];
  /** Record a per-message trace (wall-clock times) in the result. */
  trace?: boolean;
  /** The servers' accounts and groups (default: chat-node's HTTP API). */
  backend?: ChatBackend;
  /**
   * Process classes (cpu.ts) whose CPU is sampled over the send window only: from the first send to
   * the last delivery, after registrations, groups and connections. Gives the result's `cpu`.
   */
  cpu?: CpuClass[];
  /** Wait this long after the groups are made and the sockets connected, before the first send. */
  settleMs?: number;
}

/** How a run gets its users, groups and socket handshakes from the servers it drives. */
export interface ChatBackend {
  register(username: string, node: number): Promise<{ id: string; token: string }>;
  /** A group of `members` (the owner first); resolves with its channel id. */
  createGroup(members: User[], name: string): Promise<string>;
  /** The Socket.IO handshake's `auth` of a user who is a member of `groupIds`. */
  auth(user: User, groupIds: string[]): Record<string, unknown>;
}

/** chat-node's: registration and group creation over its HTTP API, the session token in the handshake. */
export function chatNodeBackend(urls: string[]): ChatBackend {
  return {
    register: (username, node) =>
      register(urls[node]!, username, nextSourceAddress()).then((r) => ({ id: r.user.id, token: r.token })),
    async createGroup(members, name) {
      const owner = members[0]!;
      const r = await post<{ channel: { id: string } }>(
        urls[owner.node]!,
        "/channels",
        { type: "group", name, memberIds: members.slice(1).map((m) => m.id) },
        owner.token,
      );
      return r.channel.id;
    },
    auth: (u) => ({ token: u.token }),
  };
}

let registrations = 0;
/**
 * A loopback source address for the next registration: chat-node limits register/login to 10/s (burst 50)
 * per client address, so registrations rotate over 127.0.0.2–127.0.0.201.
 */
const nextSourceAddress = (): string => `127.0.0.${2 + (registrations++ % 200)}`;

/** POST /auth/register from `localAddress`; resolves with the token and the user. */
export function register(
  base: string,
  username: string,
  localAddress: string,
): Promise<{ token: string; user: { id: string } }> {
  const body = JSON.stringify({ username, password: "bench-password-1" });
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/api/v1/auth/register`,
      { method: "POST", localAddress, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          if (res.statusCode && res.statusCode < 300)
            resolve(JSON.parse(text) as { token: string; user: { id: string } });
          else reject(new Error(`POST /auth/register: ${res.statusCode} ${text}`));
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One message's life, in wall-clock milliseconds since the epoch (fractional), as seen by the clients. */
export interface MessageTrace {
  clientMsgId: string;
  channelId: string;
  sentAt: number;
  ackedAt: number;
  /** The chat-node's accept time (`createdAt` of the delivered message; millisecond resolution). */
  acceptedAt: number;
  seq: number;
  deliveredAt: number[];
  /** The node of the socket each delivery came through (index into the node URLs). */
  deliveredNode: number[];
}

export interface ChatBenchResult {
  messages: number;
  deliveries: number;
  seconds: number;
  messagesPerSecond: number;
  deliveriesPerSecond: number;
  sendToAck: Summary;
  sendToDeliver: Summary;
  trace: MessageTrace[];
  /** CPU per message by process class over the send window (with `cpu` in the options). */
  cpu?: CpuPerMessage;
}

export interface User {
  id: string;
  token: string;
  node: number;
  socket?: Socket;
}

export interface ChatNodes {
  urls: string[];
  /** Each node's operations port: /readyz, /metrics, /internal/connections. */
  opsUrls: string[];
  logFiles: string[];
  stop(): Promise<void>;
}

/** Wall-clock now with sub-millisecond resolution. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** POST to the HTTP API (`/api/v1`), JSON in and out; throws on a non-2xx answer. */
export async function post<T>(base: string, path: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** `f(0)` … `f(n − 1)`, at most `batch` at a time; the results in order. */
export async function inBatches<T>(n: number, batch: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += batch)
    out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => f(i + j)))));
  return out;
}

/** Starts `nodes` chat-node processes (in parallel) splitting the partitions; returns their base URLs. */
export async function startChatNodes(o: ChatBenchOptions): Promise<ChatNodes> {
  const dir = o.logDir ? { path: o.logDir, remove: async () => undefined } : await tempDir("bench-nodes");
  const secret = randomBytes(24).toString("hex");
  const procs: ManagedProcess[] = [];
  const started = Array.from({ length: o.nodes }, async (_, i) => {
    const [port, opsPort] = [await freePort(), await freePort()];
    const from = Math.floor((i * 64) / o.nodes);
    const to = Math.floor(((i + 1) * 64) / o.nodes) - 1;
    const logFile = join(dir.path, `chat-node-${i}.log`);
    const p = new ManagedProcess({
      name: `chat-node-${i}`,
      command: process.execPath,
      args: [
        "--import",
        "tsx",
        ...(o.preload ?? []).flatMap((m) => ["--import", m]),
        join(o.chatNodeDir ?? join(repoRoot, "chat-node"), "src/main.ts"),
      ],
      cwd: repoRoot,
      logFile,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        OPS_PORT: String(opsPort),
        OPS_HOST: "127.0.0.1",
        NODE_ID: `bench-${i}`,
        REDIS_URL: o.redisUrl,
        RABBITMQ_URL: o.rabbitUrl,
        MONGODB_URL: o.mongoUrl,
        JWT_SECRET: secret,
        OWNED_PARTITIONS: `${from}-${to}`,
        LIMIT_SEND_RATE: "100000",
        LIMIT_SEND_BURST: "100000",
        LOG_LEVEL: "warn",
        ...o.env,
      },
    });
    procs.push(p);
    const url = `http://127.0.0.1:${port}`;
    const opsUrl = `http://127.0.0.1:${opsPort}`;
    // readiness is on the operations port (docs/chat-node.md); several nodes each need their own
    await waitUntil(`chat-node-${i}`, p, async () => (await fetch(`${opsUrl}/readyz`)).ok, 90_000, 200);
    return { url, opsUrl, logFile };
  });
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop(30_000)));
    await dir.remove();
  };
  try {
    const nodes = await Promise.all(started);
    return {
      urls: nodes.map((n) => n.url),
      opsUrls: nodes.map((n) => n.opsUrl),
      logFiles: nodes.map((n) => n.logFile),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Users spread over the nodes, groups of `groupSize` consecutive users (so every group has members on
 * every node), each sender with `window` messages in flight; latencies measured in this process.
 */
export async function runChatBench(o: ChatBenchOptions, urls: string[]): Promise<ChatBenchResult> {
  const run = randomBytes(3).toString("hex");
  const backend = o.backend ?? chatNodeBackend(urls);
  const users = await inBatches(o.users, 50, async (i): Promise<User> => {
    const node = i % urls.length;
    return { ...(await backend.register(`b${run}_${i}`, node)), node };
  });
  const groups: { id: string; members: User[] }[] = [];
  for (let g = 0; g < o.users; g += o.groupSize) {
    const members = users.slice(g, g + o.groupSize);
    if (members.length < 2) break;
    groups.push({ id: await backend.createGroup(members, `bench ${g}`), members });
  }
  const traces = new Map<string, MessageTrace>();
  const waiting = new Map<string, { left: number; done: () => void }>();
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
          const auth = backend.auth(
            u,
            groups.filter((g) => g.members.includes(u)).map((g) => g.id),
          );
          const s = io(urls[u.node]!, { auth, transports: ["websocket"] });
          s.on("message", (m: { clientMsgId: string; createdAt: string; seq: number }) => {
            const now = wallNow();
            const t = traces.get(m.clientMsgId);
            if (t === undefined) return;
            deliverLatencies.push(now - t.sentAt);
            t.deliveredAt.push(now);
            t.deliveredNode.push(u.node);
            t.acceptedAt = Date.parse(m.createdAt);
            t.seq = m.seq;
            deliveries += 1;
            const w = waiting.get(m.clientMsgId);
            if (w && --w.left === 0) {
              waiting.delete(m.clientMsgId);
              w.done();
            }
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
  const plan: PlanItem[][] = users.map(() => []);
  let total = 0;
  for (const [gi, g] of groups.entries()) {
    const senders = Math.min(g.members.length, o.sendersPerGroup ?? g.members.length);
    for (let k = 0; k < perGroup && total < o.messages; k++, total++) {
      const sender = g.members[k % senders]!;
      plan[users.indexOf(sender)]!.push({
        user: sender,
        channelId: g.id,
        clientMsgId: `${run}-${gi}-${k}`,
        recipients: g.members.length,
        k,
      });
      expectedDeliveries += g.members.length;
    }
  }
  if (o.settleMs) await new Promise((r) => setTimeout(r, o.settleMs));
  const cpuBefore = o.cpu ? await cpuSample(o.cpu) : null;
  const t0 = performance.now();
  if (o.via === "broker")
    await injectBacklog(
      o,
      plan.flat().sort((a, b) => a.k - b.k),
      traces,
    );
  else await sendAll(o, plan, traces, waiting, ackLatencies);
  const timeout = setTimeout(allDelivered, 60_000);
  await delivered;
  clearTimeout(timeout);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = o.cpu && cpuBefore ? cpuPerMessage(cpuBefore, await cpuSample(o.cpu), total) : undefined;
  for (const u of users) u.socket?.disconnect();
  return {
    messages: total,
    deliveries,
    seconds,
    messagesPerSecond: total / seconds,
    deliveriesPerSecond: deliveries / seconds,
    sendToAck: summarize(ackLatencies),
    sendToDeliver: summarize(deliverLatencies),
    trace: o.trace ? [...traces.values()] : [],
    ...(cpu ? { cpu } : {}),
  };
}

interface PlanItem {
  user: User;
  channelId: string;
  clientMsgId: string;
  recipients: number;
  /** Position of the message in its group's sequence. */
  k: number;
}

const newTrace = (item: PlanItem): MessageTrace => ({
  clientMsgId: item.clientMsgId,
  channelId: item.channelId,
  sentAt: wallNow(),
  ackedAt: NaN,
  acceptedAt: NaN,
  seq: 0,
  deliveredAt: [],
  deliveredNode: [],
});

/** Publishes every message of the plan straight to its partition queue, confirms pipelined. */
async function injectBacklog(o: ChatBenchOptions, items: PlanItem[], traces: Map<string, MessageTrace>) {
  if (!o.partitionOf) throw new Error("via broker needs partitionOf");
  const conn = await amqp.connect(o.rabbitUrl, { noDelay: true });
  try {
    const ch = await conn.createConfirmChannel();
    for (const [i, item] of items.entries()) {
      const trace = newTrace(item);
      traces.set(item.clientMsgId, trace);
      const message = {
        channelId: item.channelId,
        senderId: item.user.id,
        clientMsgId: item.clientMsgId,
        body: `bench message ${item.clientMsgId}`,
        fileIds: [],
        sentAt: Date.now(),
      };
      ch.publish(
        "vibetalk.partitions",
        String(o.partitionOf(item.channelId)),
        Buffer.from(JSON.stringify(message)),
        {
          persistent: true,
          contentType: "application/json",
        },
      );
      if (i % 500 === 499) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

async function sendAll(
  o: ChatBenchOptions,
  plan: PlanItem[][],
  traces: Map<string, MessageTrace>,
  waiting: Map<string, { left: number; done: () => void }>,
  ackLatencies: number[],
): Promise<void> {
  await Promise.all(
    plan.map(async (queue) => {
      const inFlight = new Set<Promise<void>>();
      for (const item of queue) {
        const p = (async () => {
          const trace = newTrace(item);
          const allHere =
            o.pace === "delivery"
              ? new Promise<void>((done) => waiting.set(item.clientMsgId, { left: item.recipients, done }))
              : undefined;
          traces.set(item.clientMsgId, trace);
          const reply = (await item.user.socket!.timeout(30_000).emitWithAck("message:send", {
            channelId: item.channelId,
            clientMsgId: item.clientMsgId,
            body: `bench message ${item.clientMsgId}`,
          })) as { ok: boolean; error?: unknown };
          if (!reply.ok) throw new Error(`send refused: ${JSON.stringify(reply.error)}`);
          trace.ackedAt = wallNow();
          ackLatencies.push(trace.ackedAt - trace.sentAt);
          if (allHere) await withTimeout(allHere, 30_000, `deliveries of ${item.clientMsgId}`);
        })();
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= o.window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }),
  );
}
