import type { AddressInfo } from "node:net";
import { protocolSchemas } from "@vibetalk/protocol";
import type { FastifyInstance } from "fastify";
import { RedisMembershipVersions } from "../adapters/redis-membership-versions.js";
import { RedisPushThrottle } from "../adapters/redis-push-throttle.js";
import { RedisRevocations } from "../adapters/redis-revocations.js";
import type { ChatNodeConfig } from "../config.js";
import type { UserSessions } from "../gateway/sessions.js";
import { SocketShedder } from "../gateway/shedding.js";
import { SocketGateway } from "../gateway/socket-gateway.js";
import { createHttpApp } from "../http/api.js";
import { createOpsApp } from "../http/ops.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { buildServiceLayer, type ServicePorts } from "../services/layer.js";
import type { MembersCache } from "../services/members-cache.js";
import type { OfficialGroup } from "../services/official.js";
import type { ReceiptCounts } from "../services/receipt-counts.js";
import type { ReceiptFlusher } from "../services/receipt-flusher.js";
import type { Backends } from "./backends.js";
import { readinessOf } from "./readiness.js";

/** What faces clients and operators: the HTTP API with Socket.IO, the ops port, sessions, shedding. */
export interface Front {
  app: FastifyInstance;
  ops: FastifyInstance;
  gateway: SocketGateway;
  sessions: UserSessions;
  members: MembersCache;
  flusher: ReceiptFlusher;
  receiptCounts: ReceiptCounts;
  shedder: SocketShedder;
  official: OfficialGroup | null;
}

/** The service layer's ports on a node's backends (the Redis-backed ones made here). */
export function servicePorts(b: Backends): ServicePorts {
  return {
    store: b.store,
    broker: b.broker,
    presence: b.presence,
    versions: new RedisMembershipVersions(b.redis),
    revocations: new RedisRevocations(b.redis),
    intervals: new RedisPushThrottle(b.redis),
  };
}

export interface Listening {
  address: { host: string; port: number };
  opsAddress: { host: string; port: number };
}

/**
 * Builds the services on the backends and the servers in front of them, and wires the broker's node
 * and control events to the gateway (docs/chat-node.md, "The message path as built"). Nothing listens yet.
 */
export async function buildFront(
  config: ChatNodeConfig,
  b: Backends,
  metrics: Metrics,
  log: Logger,
  draining: () => boolean,
): Promise<Front> {
  const schemas = protocolSchemas(config.limits);
  const ports = servicePorts(b);
  const { service, members, flusher, receiptCounts, tokens, official, ...layer } = buildServiceLayer(
    config,
    ports,
    metrics,
    log,
  );
  const sessions = layer.sessions();
  const app = await createHttpApp({ config, schemas, service, store: b.store, tokens, metrics, log });
  const gateway = new SocketGateway(app.server, {
    config,
    schemas,
    redis: b.redis,
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
    readiness: readinessOf(b, draining),
  });
  const shedder = new SocketShedder({
    io: gateway.io,
    podName: config.kubernetes?.podName ?? config.pod ?? config.nodeId,
    shedTotal: metrics.socketsShed,
    log,
    draining,
  });
  gateway.shedding = () => shedder.refusing(gateway.connections);
  // The Socket.IO admin view, on the operations port, only when its credentials are configured.
  if (config.adminUi) gateway.attachAdmin(ops.server, config.adminUi);
  b.broker.onNodeEvent((d) => gateway.deliver(d));
  b.broker.onControlEvent((e) => {
    if (e.t === "members") {
      members.invalidateFor(e);
      void sessions
        .channelMembersChanged(e)
        .catch((err: unknown) =>
          log.warn(
            { event: "channels.members_failed", channelId: e.channelId, err: (err as Error).message },
            "large channel bindings not updated for a membership change",
          ),
        );
    } else if (e.t === "sessions") gateway.endSessions(e);
    else if (e.t === "blocked") gateway.dropPresenceBetween(e.a, e.b);
  });
  b.broker.onReconnect(() => {
    members.clear();
    // Control events sent while disconnected are lost: the large groups (and their members here) are read again.
    void sessions
      .refreshLargeChannels({ all: true })
      .catch((err: unknown) =>
        log.warn(
          { event: "channels.refresh_failed", err: (err as Error).message },
          "large channels not reread",
        ),
      );
  });
  return { app, ops, gateway, sessions, members, flusher, receiptCounts, shedder, official };
}

/**
 * Creates the official group if it does not exist yet (before any registration can join it), starts
 * the heartbeats and the receipt flusher, listens on the client and the ops port, then starts the
 * official group's backfill in the background.
 */
export async function listen(config: ChatNodeConfig, f: Front): Promise<Listening> {
  await f.official?.ensure();
  await f.sessions.refreshLargeChannels();
  f.sessions.startHeartbeat();
  f.flusher.start();
  f.receiptCounts.start();
  await f.app.listen({ port: config.port, host: config.host });
  await f.ops.listen({ port: config.opsPort, host: config.opsHost });
  f.official?.start();
  const local = (h: string) => (h === "0.0.0.0" ? "127.0.0.1" : h);
  return {
    address: { host: local(config.host), port: (f.app.server.address() as AddressInfo).port },
    opsAddress: { host: local(config.opsHost), port: (f.ops.server.address() as AddressInfo).port },
  };
}
