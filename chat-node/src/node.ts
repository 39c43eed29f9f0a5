import type { AddressInfo } from "node:net";
import { protocolSchemas } from "@vibetalk/protocol";
import type { BalanceRound } from "@vibetalk/protocol/cluster";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { MongoStore } from "./adapters/mongo-store.js";
import { PARTITION_DELIVERY_LIMIT, RabbitBroker } from "./adapters/rabbit-broker.js";
import { RedisMembershipVersions } from "./adapters/redis-membership-versions.js";
import { RedisPresence } from "./adapters/redis-presence.js";
import { RedisRevocations } from "./adapters/redis-revocations.js";
import type { ChatNodeConfig } from "./config.js";
import type { UserSessions } from "./gateway/sessions.js";
import { SocketShedder } from "./gateway/shedding.js";
import { SocketGateway } from "./gateway/socket-gateway.js";
import { createHttpApp } from "./http/api.js";
import { createOpsApp } from "./http/ops.js";
import { createLogger, type Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { ChannelHeadsWriter } from "./partitions/channel-heads.js";
import { PartitionManager } from "./partitions/manager.js";
import { StaticAssignmentSource } from "./partitions/static-assignment.js";
import type { AssignmentSource } from "./ports.js";
import { buildServiceLayer } from "./services/layer.js";
import type { ReceiptFlusher } from "./services/receipt-flusher.js";

export interface ChatNodeOptions {
  /** Partition ownership; defaults to the static assignment of the config. */
  assignment?: AssignmentSource;
  logger?: Logger;
  /** Process-level default metrics (off when several nodes share a process). Default true. */
  defaultMetrics?: boolean;
}

export interface ChatNode {
  readonly config: ChatNodeConfig;
  readonly metrics: Metrics;
  /** `http://host:port` once started: the API, Socket.IO and the web client. */
  readonly url: string;
  readonly address: { host: string; port: number };
  /** `http://host:opsPort` once started: /healthz, /readyz, /metrics, /internal/connections. */
  readonly opsUrl: string;
  start(): Promise<void>;
  /** Graceful drain: stop accepting, release partitions, send sockets elsewhere, close. */
  stop(): Promise<void>;
  /** Owned partitions right now. */
  ownedPartitions(): number[];
  connections(): number;
  /** A connection balance round from the operator: shed what it asks of this pod (gateway/shedding.ts). */
  balance(round: BalanceRound | undefined): void;
}

interface Parts {
  store: MongoStore;
  redis: Redis;
  broker: RabbitBroker;
  app: FastifyInstance;
  ops: FastifyInstance;
  gateway: SocketGateway;
  sessions: UserSessions;
  flusher: ReceiptFlusher;
  manager: PartitionManager;
  heads: ChannelHeadsWriter;
  assignment: AssignmentSource;
  shedder: SocketShedder;
}

/** `p`, or false after `ms` (a ping that hangs is a failed ping). */
function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(false);
      },
    );
  });
}

/** Builds a chat-node from its config; several may run in one process (tests). */
export function createChatNode(config: ChatNodeConfig, options: ChatNodeOptions = {}): ChatNode {
  const log = options.logger ?? createLogger(config.logLevel, config.nodeId, config.pod);
  const metrics = createMetrics(config.nodeId, { defaultMetrics: options.defaultMetrics ?? true });
  let parts: Parts | null = null;
  let address = { host: config.host, port: config.port };
  let opsAddress = { host: config.opsHost, port: config.opsPort };
  let draining = false;
  let stopping: Promise<void> | null = null;

  async function start(): Promise<void> {
    const t0 = Date.now();
    const schemas = protocolSchemas(config.limits);
    const store = await MongoStore.connect(config.mongodbUrl, config.storeTimeoutMs);
    const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    redis.on("error", (err: Error) => log.debug({ err: err.message }, "redis error"));
    await redis.connect();
    const broker = await RabbitBroker.connect({
      url: config.rabbitmqUrl,
      nodeId: config.nodeId,
      partitions: config.partitions,
      userExchanges: config.userExchanges,
      bindChannels: config.bindChannels,
      nodeQueueExpiresMs: config.nodeQueueExpiresSeconds * 1000,
      nodePrefetch: 1000,
      fanoutMaxRecipients: config.fanoutMaxRecipients,
      publishTimeoutMs: config.publishTimeoutMs,
      log,
    });
    metrics.legacyPartitionQueues.set(broker.legacyPartitionQueues.length);
    const presence = new RedisPresence(redis, config.nodeId, config.presenceTtlSeconds * 1000);
    const { service, members, flusher, tokens, ...layer } = buildServiceLayer(
      config,
      {
        store,
        broker,
        presence,
        versions: new RedisMembershipVersions(redis),
        revocations: new RedisRevocations(redis),
      },
      metrics,
      log,
    );
    const sessions = layer.sessions();
    const app = await createHttpApp({ config, schemas, service, store, tokens, metrics, log });
    const gateway = new SocketGateway(app.server, {
      config,
      schemas,
      redis,
      service,
      members,
      sessions,
      tokens,
      metrics,
      log,
    });
    sessions.onPresence((state) => gateway.publishPresence(state));
    const ops = createOpsApp({
      metrics,
      log,
      connections: () => gateway.connections,
      // Ready = this node can take messages: RabbitMQ connected, not draining. A store or Redis
      // outage is shared by every node (readiness there would empty the Service and take the
      // partitions away from all of them while sends still work); it shows in `checks`.
      readiness: async () => {
        const [redisOk, storeOk] = await Promise.all([
          withTimeout(presence.ping(), 1000),
          withTimeout(store.ping(), 1000),
        ]);
        const connected = broker.isConnected();
        const checks = {
          broker: connected,
          redis: redisOk,
          store: storeOk,
          draining,
          publishing: connected && !broker.isBlocked(),
        };
        return { ready: connected && !draining, checks };
      },
    });
    const shedder = new SocketShedder({
      io: gateway.io,
      podName: config.kubernetes?.podName ?? config.pod ?? config.nodeId,
      shedTotal: metrics.socketsShed,
      log,
      draining: () => draining,
    });
    gateway.shedding = () => shedder.refusing(gateway.connections);
    // The Socket.IO admin view, on the operations port, only when its credentials are configured.
    if (config.adminUi) gateway.attachAdmin(ops.server, config.adminUi);
    broker.onNodeEvent((d) => gateway.deliver(d));
    broker.onControlEvent((e) => {
      if (e.t === "members") members.invalidate(e.channelId);
      else if (e.t === "sessions") gateway.endSessions(e);
    });
    broker.onReconnect(() => members.clear());
    sessions.startHeartbeat();
    flusher.start();
    await app.listen({ port: config.port, host: config.host });
    await ops.listen({ port: config.opsPort, host: config.opsHost });
    const local = (h: string) => (h === "0.0.0.0" ? "127.0.0.1" : h);
    address = { host: local(config.host), port: (app.server.address() as AddressInfo).port };
    opsAddress = { host: local(config.opsHost), port: (ops.server.address() as AddressInfo).port };

    const heads = new ChannelHeadsWriter(store, log, 250);
    const manager = new PartitionManager(
      { broker, store, members, heads, metrics, log },
      {
        prefetch: config.consumerPrefetch,
        batchSize: config.batchSize,
        flushIntervalMs: config.flushIntervalMs,
        retryDelayMs: 1000,
        retryMaxDelayMs: config.retryMaxDelayMs,
        maxStoreAttempts: config.maxStoreAttempts,
        maxDeliveries: PARTITION_DELIVERY_LIMIT,
      },
    );
    const assignment = options.assignment ?? new StaticAssignmentSource(config.ownedPartitions);
    await assignment.start((owned) => manager.apply(owned));
    manager.startLagSampling(5000);
    parts = {
      store,
      redis,
      broker,
      app,
      ops,
      gateway,
      sessions,
      flusher,
      manager,
      heads,
      assignment,
      shedder,
    };
    log.info(
      {
        event: "node.started",
        port: address.port,
        opsPort: opsAddress.port,
        partitions: manager.owned().length,
        ms: Date.now() - t0,
      },
      "chat-node started",
    );
  }

  async function shutdown(): Promise<void> {
    const p = parts;
    if (!p) return;
    draining = true;
    p.shedder.stop();
    const deadline = Date.now() + config.drainSeconds * 1000;
    const left = () => Math.max(0, deadline - Date.now());
    log.info({ event: "node.draining" }, "draining");
    await p.assignment.stop().catch(() => undefined);
    await p.manager.stopAll();
    await p.heads.stop();
    await p.gateway.drain(Math.min(left() / 2, 10_000));
    await p.sessions.shutdown();
    await p.flusher.stop();
    await p.gateway.close();
    await p.app.close().catch(() => undefined);
    await p.ops.close().catch(() => undefined);
    await p.broker.close();
    p.redis.disconnect();
    await p.store.close();
    parts = null;
    log.info({ event: "node.stopped", msLeft: left() }, "chat-node stopped");
  }

  return {
    config,
    metrics,
    get url() {
      return `http://${address.host}:${address.port}`;
    },
    get address() {
      return address;
    },
    get opsUrl() {
      return `http://${opsAddress.host}:${opsAddress.port}`;
    },
    start,
    stop: () => (stopping ??= shutdown()),
    ownedPartitions: () => parts?.manager.owned() ?? [],
    connections: () => parts?.gateway.connections ?? 0,
    balance: (round) => void parts?.shedder.apply(round),
  };
}
