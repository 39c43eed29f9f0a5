import type { Server as HttpServer } from "node:http";
import { instrument } from "@socket.io/admin-ui";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { Server as EngineServer, type Socket as EngineSocket } from "engine.io";
import {
  ProtocolError,
  type ClientToServerEvents,
  type ProtocolSchemas,
  type ServerToClientEvents,
} from "@vibetalk/protocol";
import type { Redis } from "ioredis";
import { Server, type Socket } from "socket.io";
import type { z } from "zod";
import type { AdminUiConfig, ChatNodeConfig } from "../config.js";
import { TokenBucket } from "../domain/rate-limiter.js";
import { parseOrThrow } from "../domain/validation.js";
import { newTraceId, traceIdOf, type Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { NodeDelivery, PresenceState, SessionsEndedEvent } from "../ports.js";
import type { Session, TokenService } from "../services/auth.js";
import type { ChatService } from "../services/chat-service.js";
import type { MembersCache } from "../services/members-cache.js";
import { endSpan, startSpan } from "../tracing.js";
import { toErrorInfo } from "../transport/errors.js";
import type { UserSessions } from "./sessions.js";

interface SocketData {
  userId: string;
  /** The session's token id and issue time (ms): which logout or password change ends this socket. */
  tokenId: string;
  issuedAtMs: number;
  presence: string[];
}

/** The namespace of the admin view (@socket.io/admin-ui), served on the operations port only. */
export const ADMIN_NAMESPACE = "/admin";
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, {}, SocketData>;
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, {}, SocketData>;

export interface GatewayDeps {
  config: ChatNodeConfig;
  schemas: ProtocolSchemas;
  redis: Redis;
  service: ChatService;
  members: MembersCache;
  sessions: UserSessions;
  tokens: TokenService;
  metrics: Metrics;
  log: Logger;
}

const userRoom = (u: string) => `user:${u}`;
const presenceRoom = (u: string) => `presence:${u}`;

/**
 * Any event on a socket: 100/s, burst 200, or twice the send limits if higher (receipts follow
 * incoming messages); a separate, stricter bucket guards message:send.
 */
const EVENT_RATE = 100;
const EVENT_BURST = 200;

/** A listener that can be shared by every socket: the emitter (`this`) is passed on as the socket. */
function shared<A extends unknown[]>(
  fn: (socket: ChatSocket, ...args: A) => void,
): (this: ChatSocket, ...args: A) => void {
  return function (this: ChatSocket, ...args: A) {
    fn(this, ...args);
  };
}

function connectError(code: string, message: string): Error {
  const e = new Error(message) as Error & { data: { code: string } };
  e.data = { code };
  return e;
}

/**
 * The Socket.IO gateway: authentication at the handshake, a schema and a rate limit on every
 * event, acks with `{ok, …}`. Live events from the broker go to local sockets only
 * (`io.local`); typing and presence go through Socket.IO rooms over the Redis streams adapter.
 */
export class SocketGateway {
  readonly io: ChatServer;
  private draining = false;
  /** True while a connection balance round has this node refuse new sockets (./shedding.ts). */
  shedding: (() => boolean) | null = null;
  /** The engine on the operations port when the admin view is on (see attachAdmin). */
  private adminEngine: EngineServer | null = null;
  private readonly socketLogs = new Map<string, Logger>();
  /** Each socket's rate limits, made at its first event (a bucket starts full: the same as at connect). */
  private readonly limits = new Map<string, { send: TokenBucket; any: TokenBucket }>();
  /** The event listeners, one function per event shared by every socket (`this` is the socket). */
  private readonly listeners: ReadonlyArray<[string, (this: ChatSocket, ...args: unknown[]) => void]>;
  private readonly onDisconnect: (this: ChatSocket, reason: string) => void;

  constructor(
    httpServer: HttpServer,
    private readonly d: GatewayDeps,
  ) {
    const { config } = d;
    this.io = new Server(httpServer, {
      path: "/socket.io/",
      serveClient: true,
      // WebSocket and HTTP long polling (SOCKET_TRANSPORTS): a client starts on polling and upgrades
      // when a WebSocket gets through, or stays on polling behind proxies that refuse it.
      transports: config.transports,
      allowUpgrades: config.transports.includes("websocket") && config.transports.includes("polling"),
      // A proxy must keep an idle request or WebSocket open longer than pingInterval + pingTimeout
      // (docs/nginx.md): a polling GET is answered at the latest at the next ping.
      pingInterval: config.pingIntervalMs,
      pingTimeout: config.pingTimeoutMs,
      maxHttpBufferSize: Math.max(64 * 1024, config.limits.maxBodyBytes * 8),
      // Recovery runs the middleware too: a recovered socket re-presents a valid, unrevoked token of
      // the same user (docs/security.md), never just the session id.
      connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: false },
      adapter: createAdapter(d.redis, {
        streamName: "vibetalk:socket.io",
        maxLen: 10_000,
        onlyPlaintext: true,
      }),
    });
    this.listeners = this.sharedListeners();
    this.onDisconnect = shared<[reason: string]>((socket, reason) => this.disconnected(socket, reason));
    this.io.use((socket, next) => void this.authenticate(socket, next));
    this.io.on("connection", (socket) => void this.onConnection(socket));
  }

  /** The per-socket logger: socketId and the connection's trace id (its traceparent, else new). */
  private socketLog(socket: ChatSocket): Logger {
    let l = this.socketLogs.get(socket.id);
    if (!l) {
      const traceId = traceIdOf(socket.handshake.headers["traceparent"]) ?? newTraceId();
      l = this.d.log.child({ component: "socket", socketId: socket.id, traceId });
      // Not kept for a socket gone (a reply after its disconnect): nothing would delete it.
      if (socket.connected) this.socketLogs.set(socket.id, l);
    }
    return l;
  }

  /** A debug line on the socket's logger; the logger is made only when debug lines are written. */
  private debug(socket: ChatSocket, obj: object, msg: string): void {
    if (this.d.log.isLevelEnabled("debug")) this.socketLog(socket).debug(obj, msg);
  }

  /** A socket's rate limits, made at its first event. */
  private limitsOf(socket: ChatSocket): { send: TokenBucket; any: TokenBucket } {
    let l = this.limits.get(socket.id);
    if (!l) {
      const now = Date.now();
      const { limits } = this.d.config;
      l = {
        send: new TokenBucket(limits.sendRatePerSecond, limits.sendBurst, now),
        any: new TokenBucket(
          Math.max(EVENT_RATE, 2 * limits.sendRatePerSecond),
          Math.max(EVENT_BURST, 2 * limits.sendBurst),
          now,
        ),
      };
      if (socket.connected) this.limits.set(socket.id, l);
    }
    return l;
  }

  private async authenticate(socket: ChatSocket, next: (err?: Error) => void): Promise<void> {
    if (this.adminEngine && (socket.conn as unknown as { server: unknown }).server === this.adminEngine) {
      // The operations port serves the admin namespace only.
      return next(connectError("NOT_FOUND", "no chat namespace on the operations port"));
    }
    if (this.draining) return next(connectError("UNAVAILABLE", "this node is draining; reconnect"));
    if (this.shedding?.())
      return next(connectError("UNAVAILABLE", "this node sheds sockets to less-loaded nodes; reconnect"));
    let session: Session;
    try {
      const auth: unknown = socket.handshake.auth;
      const token = auth && typeof auth === "object" ? (auth as { token?: unknown }).token : undefined;
      session = await this.d.tokens.verify(token);
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : "UNAUTHENTICATED";
      this.d.metrics.errors.inc({ code });
      this.debug(socket, { event: "socket.refused", code }, "handshake refused");
      this.socketLogs.delete(socket.id);
      return next(connectError(code, (err as Error).message));
    }
    const userId = session.userId;
    if (socket.recovered && socket.data.userId !== userId) {
      this.d.metrics.errors.inc({ code: "UNAUTHENTICATED" });
      return next(connectError("UNAUTHENTICATED", "this session belongs to another user"));
    }
    socket.data.userId = userId;
    socket.data.tokenId = session.tokenId;
    socket.data.issuedAtMs = session.issuedAtMs;
    if (!socket.recovered) socket.data.presence = [];
    // Neither the token nor the engine's first HTTP request is read again (socket.handshake keeps the
    // headers): freed, they are not held for the socket's life.
    delete (socket.handshake.auth as { token?: unknown }).token;
    (socket.conn as unknown as { request: unknown }).request = null;
    await this.d.sessions.prepare(userId).catch(() => undefined);
    next();
  }

  private async onConnection(socket: ChatSocket): Promise<void> {
    const userId = socket.data.userId;
    if (this.draining) {
      // Local, so it is written before the disconnect (socket.emit goes round through Redis).
      this.io.local.to(socket.id).emit("reconnect", { reason: "draining" });
      socket.disconnect();
      return;
    }
    void socket.join(userRoom(userId));
    for (const [event, listener] of this.listeners) socket.on(event as "sync", listener);
    this.debug(
      socket,
      {
        event: "socket.connected",
        userId,
        transport: socket.conn.transport.name,
        recovered: socket.recovered,
      },
      "socket connected",
    );
    if (this.d.log.isLevelEnabled("debug"))
      socket.conn.once("upgrade", () =>
        this.debug(
          socket,
          { event: "socket.upgraded", transport: socket.conn.transport.name },
          "transport upgraded",
        ),
      );
    socket.on("disconnect", this.onDisconnect);
    await this.d.sessions.add(userId, socket.id);
  }

  private disconnected(socket: ChatSocket, reason: string): void {
    this.debug(socket, { event: "socket.disconnected", reason }, "socket disconnected");
    this.socketLogs.delete(socket.id);
    this.limits.delete(socket.id);
    void this.d.sessions.remove(socket.data.userId, socket.id);
  }

  /**
   * The listener of each client event, made once: a listener gets its socket as `this` and the user from
   * socket.data (a closure per socket and event would be kept as long as the socket).
   */
  private sharedListeners(): Array<[string, (this: ChatSocket, ...args: unknown[]) => void]> {
    const s = this.d.schemas;
    const svc = this.d.service;
    return [
      // Sends, edits, deletes and reactions are events of the partition path: one rate, acked once durable.
      this.handleEvent("message:send", s.MessageSend, (userId, p) => svc.send(userId, p)),
      this.handleEvent("message:edit", s.MessageEdit, (userId, p) => svc.edit(userId, p)),
      this.handleEvent("message:delete", s.MessageDelete, (userId, p) => svc.delete(userId, p)),
      this.handleEvent("message:react", s.MessageReact, (userId, p) => svc.react(userId, p)),
      this.handle("receipt", s.ReceiptSend, async (socket, p) => {
        await this.d.service.receipt(socket.data.userId, p);
        return {};
      }),
      this.handle("typing", s.TypingSend, async (socket, p) => {
        const userId = socket.data.userId;
        const { entry } = await this.d.members.requireMember(p.channelId, userId);
        // Typing in a large channel (the official group included) is not shown to every member.
        if (entry.large) return {};
        const rooms = [...entry.members.keys()].filter((u) => u !== userId).map(userRoom);
        if (rooms.length > 0)
          this.io.to(rooms).emit("typing", { channelId: p.channelId, userId, typing: p.typing });
        return {};
      }),
      this.handle("presence:subscribe", s.PresenceSubscribe, async (socket, p) => {
        const next = [...new Set(p.userIds)];
        await this.d.service.requireContacts(socket.data.userId, next);
        for (const u of socket.data.presence) if (!next.includes(u)) void socket.leave(presenceRoom(u));
        for (const u of next) void socket.join(presenceRoom(u));
        socket.data.presence = next;
        return { presence: await this.d.service.presenceOf(next) };
      }),
      this.handle("sync", s.SyncRequest, async (socket, p) => this.d.service.sync(socket.data.userId, p)),
    ];
  }

  /** A channel event on the partition path: the send rate, then `fn`, acked `{ok, clientMsgId}`. */
  private handleEvent<S extends z.ZodType<{ clientMsgId: string }>>(
    event: keyof ClientToServerEvents,
    schema: S,
    fn: (userId: string, payload: z.output<S>) => Promise<void>,
  ): [string, (this: ChatSocket, ...args: unknown[]) => void] {
    return this.handle(
      event,
      schema,
      async (socket, p) => {
        if (!this.limitsOf(socket).send.tryTake(Date.now())) {
          throw new ProtocolError(
            "RATE_LIMITED",
            `at most ${this.d.config.limits.sendRatePerSecond} messages per second`,
          );
        }
        const t0 = process.hrtime.bigint();
        await fn(socket.data.userId, p);
        this.d.metrics.sendAck.observe(Number(process.hrtime.bigint() - t0) / 1e9);
        return { clientMsgId: p.clientMsgId };
      },
      { requireAck: true },
    );
  }

  private handle<S extends z.ZodType>(
    event: keyof ClientToServerEvents,
    schema: S,
    fn: (socket: ChatSocket, payload: z.output<S>) => Promise<object>,
    opts: { requireAck?: boolean } = {},
  ): [string, (this: ChatSocket, ...args: unknown[]) => void] {
    return [
      event,
      shared((socket, ...args) => {
        const last = args[args.length - 1];
        const ack = typeof last === "function" ? (last as (reply: unknown) => void) : undefined;
        if (ack) args.pop();
        void this.run(socket, event, schema, (p) => fn(socket, p), args[0], ack, opts);
      }),
    ];
  }

  private async run<S extends z.ZodType>(
    socket: ChatSocket,
    event: string,
    schema: S,
    fn: (payload: z.output<S>) => Promise<object>,
    raw: unknown,
    ack: ((reply: unknown) => void) | undefined,
    opts: { requireAck?: boolean },
  ): Promise<void> {
    const t0 = Date.now();
    try {
      if (!ack && opts.requireAck)
        throw new ProtocolError("INVALID_ARGUMENT", `${event} needs an ack callback`);
      if (!this.limitsOf(socket).any.tryTake(Date.now()))
        throw new ProtocolError("RATE_LIMITED", "too many events");
      const payload = parseOrThrow(schema, raw);
      const reply = await fn(payload);
      ack?.({ ok: true, ...reply });
      this.debug(
        socket,
        { event: "socket.event", socketEvent: event, ok: true, ms: Date.now() - t0 },
        "event",
      );
    } catch (err) {
      const { info, internal } = toErrorInfo(err);
      this.d.metrics.errors.inc({ code: info.code });
      this.debug(
        socket,
        { event: "socket.event", socketEvent: event, ok: false, code: info.code, ms: Date.now() - t0 },
        "event refused",
      );
      if (internal)
        this.socketLog(socket).error(
          { event: "socket.internal_error", socketEvent: event, err },
          "socket handler failed",
        );
      ack?.({ ok: false, error: info });
    }
  }

  /** Sessions ended on some node: tell this node's sockets of them and disconnect them. */
  endSessions(e: SessionsEndedEvent): void {
    const reason = e.tokenId ? "logout" : "password_changed";
    for (const socket of this.io.of("/").sockets.values()) {
      const data = socket.data;
      if (data.userId !== e.userId) continue;
      const ended =
        (e.tokenId !== undefined && data.tokenId === e.tokenId) ||
        (e.before !== undefined && data.issuedAtMs < e.before);
      if (!ended) continue;
      // socket.emit would go round through the Redis stream (connection state recovery) and arrive
      // after the disconnect; a local emit is written at once, and the namespace disconnect after it.
      this.io.local.to(socket.id).emit("session:ended", { reason });
      socket.disconnect();
    }
  }

  /** A block between `a` and `b`: this node's sockets of each stop following the other's presence. */
  dropPresenceBetween(a: string, b: string): void {
    for (const socket of this.io.of("/").sockets.values()) {
      const data = socket.data;
      const other = data.userId === a ? b : data.userId === b ? a : null;
      if (other === null || !data.presence.includes(other)) continue;
      data.presence = data.presence.filter((u) => u !== other);
      void socket.leave(presenceRoom(other));
    }
  }

  /**
   * An event from this node's queue: emit it to the local sockets of its recipients — those it names,
   * or, for a large channel's delivery, the channel's members this node holds.
   */
  deliver(d: NodeDelivery): void {
    const { metrics, sessions } = this.d;
    metrics.brokerDeliveries.inc({ kind: d.event.t });
    const recipients = d.channel !== undefined ? sessions.channels.recipients(d.channel) : d.recipients;
    const local = recipients.filter((u) => sessions.holds(u));
    if (local.length === 0) return;
    const target = this.io.local.to(local.map(userRoom));
    switch (d.event.t) {
      case "message": {
        const span = startSpan("message.deliver", d.trace, { "vibetalk.recipients": local.length });
        target.emit("message", d.event.message);
        let sockets = 0;
        for (const u of local) sockets += sessions.socketCount(u);
        metrics.messagesDelivered.inc(sockets);
        metrics.sendDeliver.observe(Math.max(0, Date.now() - d.event.sentAt) / 1000);
        endSpan(span);
        break;
      }
      case "receipt":
        target.emit("receipt", d.event.receipt);
        break;
      case "receiptCounts":
        target.emit("receipt:counts", d.event.counts);
        break;
      case "channel":
        target.emit("channel", d.event.event);
        break;
      case "failed":
        target.emit("message:failed", d.event.failed);
        break;
    }
  }

  /** A presence change, to subscribers on every node. */
  publishPresence(state: PresenceState): void {
    this.io.to(presenceRoom(state.userId)).emit("presence", {
      userId: state.userId,
      online: state.online,
      lastSeenAt: state.lastSeenAt ? state.lastSeenAt.toISOString() : null,
    });
  }

  get connections(): number {
    return this.io.of("/").sockets.size;
  }

  /** Drain: refuse new sockets, tell the connected ones to go elsewhere, wait for them (bounded). */
  async drain(waitMs: number): Promise<void> {
    this.draining = true;
    this.io.local.emit("reconnect", { reason: "draining" });
    const deadline = Date.now() + waitMs;
    while (this.connections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    this.io.local.disconnectSockets(true);
  }

  /**
   * The admin view (@socket.io/admin-ui) on the operations port's HTTP server: a second Engine.IO
   * server there hands its connections to this same Socket.IO server, whose `/admin` namespace
   * admin-ui instruments (bcrypt basic auth, read-only unless configured). The client port refuses
   * `/admin` and the operations port refuses the chat namespace. Every node instruments its own
   * server; admin-ui gathers the other nodes' sockets with fetchSockets and their events through the
   * adapter, so one node's admin view shows the whole cluster.
   */
  attachAdmin(opsServer: HttpServer, admin: AdminUiConfig): void {
    const engine = new EngineServer({
      pingInterval: this.d.config.pingIntervalMs,
      pingTimeout: this.d.config.pingTimeoutMs,
      cors: { origin: admin.origins, credentials: true },
    });
    engine.attach(opsServer, { path: "/socket.io/" });
    this.adminEngine = engine;
    const nsp = this.io.of(ADMIN_NAMESPACE);
    nsp.use((socket, next) => {
      if ((socket.conn as unknown as { server: unknown }).server === engine) return next();
      next(connectError("NOT_FOUND", "the admin namespace is on the operations port only"));
    });
    instrument(this.io, {
      namespaceName: ADMIN_NAMESPACE,
      auth: { type: "basic", username: admin.username, password: admin.passwordHash },
      readonly: admin.readonly,
      serverId: this.d.config.nodeId,
      mode: "development",
    });
    engine.on("connection", (conn: EngineSocket) =>
      (this.io as unknown as { onconnection(c: EngineSocket): void }).onconnection(conn),
    );
  }

  async close(): Promise<void> {
    this.draining = true;
    this.adminEngine?.close();
    this.io.local.disconnectSockets(true);
    // The engine and the adapter (its Redis stream reader); the HTTP server is closed by fastify.
    this.io.engine.close();
    // Every namespace's adapter (its heartbeat timer and its share of the stream reader): "/" and,
    // with the admin view, "/admin".
    const namespaces = this.adminEngine ? ["/", ADMIN_NAMESPACE] : ["/"];
    for (const name of namespaces)
      await Promise.resolve(this.io.of(name).adapter.close()).catch(() => undefined);
  }
}
