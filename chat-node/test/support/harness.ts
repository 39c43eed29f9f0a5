import { randomBytes, randomUUID } from "node:crypto";
import {
  startMongo,
  startRabbitMQ,
  startRedis,
  type MongoService,
  type RabbitMQService,
  type RedisService,
} from "@vibetalk/testkit";
import type { AuthReply, Channel, Message, MessageSendReply } from "@vibetalk/protocol";
import { connect as connectAmqp } from "amqplib";
import { io as connectSocket, type Socket } from "socket.io-client";
import { loadConfig, type ChatNodeConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { connectBackends, type Backends } from "../../src/node/backends.js";
import { servicePorts } from "../../src/node/front.js";
import { createChatNode, type ChatNode } from "../../src/node.js";
import { buildServiceLayer } from "../../src/services/layer.js";

export interface Services {
  redis: RedisService;
  rabbit: RabbitMQService;
  mongo: MongoService;
  stop(): Promise<void>;
}

/** Real Redis, RabbitMQ (with management) and FerretDB; a test fails when one cannot start. */
export async function startServices(): Promise<Services> {
  const started = await Promise.allSettled([startRedis(), startRabbitMQ({ management: true }), startMongo()]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    // Stop the ones that did start, so a failed start leaves nothing running behind the test.
    await Promise.allSettled(started.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
    throw failed.reason;
  }
  const [redis, rabbit, mongo] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    RedisService,
    RabbitMQService,
    MongoService,
  ];
  return {
    redis,
    rabbit,
    mongo,
    stop: async () => {
      await Promise.allSettled([redis.stop(), rabbit.stop(), mongo.stop()]);
    },
  };
}

/** GET on RabbitMQ's management API (its URL carries the credentials, which fetch refuses). */
export async function management<T = unknown>(services: Services, path: string): Promise<T> {
  const u = new URL(services.rabbit.managementUrl ?? "");
  const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString(
    "base64",
  );
  const r = await fetch(`${u.protocol}//${u.host}${path}`, { headers: { authorization: `Basic ${auth}` } });
  if (!r.ok) throw new Error(`management ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** Publishes straight to a partition, bypassing the chat-node's checks (a message the edge would refuse). */
export async function publishToPartitionDirectly(
  services: Services,
  partition: number,
  message: unknown,
  opts: { messageId?: string; url?: string } = {},
): Promise<void> {
  const conn = await connectAmqp(opts.url ?? services.rabbit.url);
  try {
    const ch = await conn.createConfirmChannel();
    ch.publish("vibetalk.partitions", String(partition), Buffer.from(JSON.stringify(message)), {
      persistent: true,
      contentType: "application/json",
      ...(opts.messageId ? { messageId: opts.messageId } : {}),
    });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

export const JWT_SECRET = "integration-test-secret-0123456789";

/** Environment for a chat-node on these services. */
export function nodeEnv(services: Services, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: "0",
    OPS_PORT: "0",
    HOST: "127.0.0.1",
    NODE_ID: `node-${randomBytes(3).toString("hex")}`,
    REDIS_URL: services.redis.url,
    RABBITMQ_URL: services.rabbit.url,
    MONGODB_URL: services.mongo.url,
    JWT_SECRET,
    PARTITIONS: "8",
    USER_EXCHANGES: "4",
    OWNED_PARTITIONS: "none",
    LOG_LEVEL: process.env["TEST_LOG_LEVEL"] ?? "warn",
    DRAIN_SECONDS: "5",
    // The official group makes every account a member of one channel; official.test.ts turns it on.
    OFFICIAL_GROUP: "false",
    ...overrides,
  };
}

export function nodeConfig(services: Services, overrides: Record<string, string> = {}): ChatNodeConfig {
  return loadConfig(nodeEnv(services, overrides));
}

export async function startNode(
  services: Services,
  overrides: Record<string, string> = {},
): Promise<ChatNode> {
  const node = createChatNode(nodeConfig(services, overrides), { defaultMetrics: false });
  await node.start();
  return node;
}

/**
 * A node's service layer on its own backends, without a server in front (a script or a side process):
 * database `db` of the run's FerretDB, the same Redis and RabbitMQ. Close with closeBackends(b).
 */
export async function serviceLayerOn(
  services: Services,
  db: string,
  overrides: Record<string, string> = {},
): Promise<{ b: Backends; layer: ReturnType<typeof buildServiceLayer> }> {
  const u = new URL(services.mongo.url);
  u.pathname = `/${db}`;
  const config = nodeConfig(services, { ...overrides, MONGODB_URL: u.toString() });
  const log = createLogger("silent", config.nodeId);
  const metrics = createMetrics(config.nodeId, { defaultMetrics: false });
  const b = await connectBackends(config, metrics, log);
  const layer = buildServiceLayer(config, servicePorts(b), metrics, log);
  return { b, layer };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Resolves on the socket's next `connect`, rejects on `connect_error` or after `timeoutMs`. */
export function connected(s: Socket, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("not connected in time")), timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve();
    });
    s.once("connect_error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export interface HttpResult<T = unknown> {
  status: number;
  body: T;
}

export async function http<T = unknown>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: BodyInit; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed as T };
}

let userCounter = 0;

/** A user with REST access and any number of socket connections (devices / tabs). */
export class TestUser {
  readonly sockets: TestSocket[] = [];
  private constructor(
    readonly id: string,
    readonly username: string,
    readonly token: string,
  ) {}

  static async register(node: { url: string }, prefix = "user"): Promise<TestUser> {
    const username = `${prefix}${++userCounter}_${randomBytes(3).toString("hex")}`.toLowerCase().slice(0, 32);
    const r = await http<AuthReply>(node.url, "POST", "/api/v1/auth/register", {
      body: { username, password: "correct horse battery", displayName: username },
    });
    if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
    return new TestUser(r.body.user.id, username, r.body.token);
  }

  api<T = unknown>(
    node: { url: string },
    method: string,
    path: string,
    body?: unknown,
  ): Promise<HttpResult<T>> {
    return http<T>(node.url, method, `/api/v1${path}`, {
      token: this.token,
      ...(body !== undefined ? { body } : {}),
    });
  }

  async direct(node: { url: string }, other: TestUser): Promise<Channel> {
    const r = await this.api<{ channel: Channel }>(node, "POST", "/channels", {
      type: "direct",
      userId: other.id,
    });
    if (r.status >= 300) throw new Error(`direct failed ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.channel;
  }

  async group(node: { url: string }, name: string, members: TestUser[]): Promise<Channel> {
    const r = await this.api<{ channel: Channel }>(node, "POST", "/channels", {
      type: "group",
      name,
      memberIds: members.map((m) => m.id),
    });
    if (r.status !== 201) throw new Error(`group failed ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.channel;
  }

  async connect(node: { url: string }): Promise<TestSocket> {
    const s = await TestSocket.open(node.url, this.token);
    this.sockets.push(s);
    return s;
  }

  closeAll(): void {
    for (const s of this.sockets) s.close();
  }
}

/** A socket.io-client connection that records every event it receives. */
export class TestSocket {
  readonly events: Array<{ event: string; data: unknown }> = [];
  private constructor(readonly socket: Socket) {
    socket.onAny((event: string, data: unknown) => this.events.push({ event, data }));
  }

  static open(url: string, token: string, opts: { transports?: string[] } = {}): Promise<TestSocket> {
    const socket = connectSocket(url, {
      auth: { token },
      transports: opts.transports ?? ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    const ts = new TestSocket(socket);
    return new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(ts));
      socket.once("connect_error", (err: Error & { data?: unknown }) => {
        socket.close();
        reject(Object.assign(err, { data: err.data }));
      });
    });
  }

  emit<T = unknown>(event: string, payload: unknown, timeoutMs = 10_000): Promise<T> {
    return this.socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<T>;
  }

  send(channelId: string, body: string, clientMsgId: string = randomUUID()): Promise<MessageSendReply> {
    return this.emit<MessageSendReply>("message:send", { channelId, clientMsgId, body });
  }

  messages(channelId?: string): Message[] {
    return this.events
      .filter((e) => e.event === "message")
      .map((e) => e.data as Message)
      .filter((m) => !channelId || m.channelId === channelId);
  }

  of<T>(event: string): T[] {
    return this.events.filter((e) => e.event === event).map((e) => e.data as T);
  }

  waitMessages(channelId: string, n: number, timeoutMs = 15_000): Promise<Message[]> {
    return waitFor(
      `${n} messages on ${channelId}`,
      () => {
        const m = this.messages(channelId);
        return m.length >= n ? m : undefined;
      },
      timeoutMs,
    );
  }

  waitEvent<T>(event: string, pred: (d: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return waitFor(`event ${event}`, () => this.of<T>(event).find(pred), timeoutMs);
  }

  close(): void {
    this.socket.close();
  }
}
