// A chat cluster's services in memory (store, broker, Redis) and the service layer of as many nodes
// as a test needs on them: ChatService, MembersCache, receipts, tokens and UserSessions wired by the
// same buildServiceLayer as node.ts, with the fakes in place of the servers
// (docs/chat-node.md#ports-and-fakes).
import { loadConfig, type ChatNodeConfig } from "../../../src/config.js";
import type { UserSessions, UserSessionsOptions } from "../../../src/gateway/sessions.js";
import { buildServiceLayer, type ServiceLayer } from "../../../src/services/layer.js";
import { createLogger } from "../../../src/logger.js";
import { createMetrics, type Metrics } from "../../../src/metrics.js";
import type { NodeDelivery } from "../../../src/ports.js";
import { MemoryRevocations } from "../revocations.js";
import type { MemoryBroker } from "./memory-broker.js";
import { MemoryBrokerServer } from "./memory-broker.js";
import { MemoryMembershipVersions } from "./memory-membership-versions.js";
import { MemoryPushThrottle } from "./memory-push-throttle.js";
import type { MemoryPresence } from "./memory-presence.js";
import { MemoryPresenceServer } from "./memory-presence.js";
import { MemoryStore } from "./memory-store.js";

export const TEST_ENV = {
  REDIS_URL: "redis://127.0.0.1:6379",
  RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:5672",
  MONGODB_URL: "mongodb://127.0.0.1:27017/vibetalk",
  JWT_SECRET: "a-unit-test-secret-of-32-bytes-or-more",
  // As in the integration harness: official.test.ts turns the official group on.
  OFFICIAL_GROUP: "false",
};

export interface FakeNode extends Omit<ServiceLayer, "sessions"> {
  config: ChatNodeConfig;
  broker: MemoryBroker;
  presence: MemoryPresence;
  metrics: Metrics;
  /** Builds this node's UserSessions (not started). */
  sessions(opts?: Partial<UserSessionsOptions>): UserSessions;
  /** Node events this node received (its broker's node queue). */
  events: NodeDelivery[];
}

export class FakeCluster {
  readonly store = new MemoryStore();
  readonly brokerServer: MemoryBrokerServer;
  readonly redis = new MemoryPresenceServer();
  readonly versions = new MemoryMembershipVersions();
  readonly revocations = new MemoryRevocations();
  private n = 0;

  constructor(readonly env: Record<string, string> = {}) {
    const c = loadConfig({ ...TEST_ENV, ...env });
    this.brokerServer = new MemoryBrokerServer(c.partitions, c.fanoutMaxRecipients);
  }

  async node(env: Record<string, string> = {}): Promise<FakeNode> {
    const nodeId = `node-${this.n++}`;
    const config = loadConfig({ ...TEST_ENV, ...this.env, ...env, NODE_ID: nodeId });
    const log = createLogger("silent", nodeId);
    const metrics = createMetrics(nodeId, { defaultMetrics: false });
    const broker = await this.brokerServer.connect(nodeId);
    const presence = this.redis.node(nodeId, config.presenceTtlSeconds * 1000);
    const layer = buildServiceLayer(
      config,
      {
        store: this.store,
        broker,
        presence,
        versions: this.versions,
        revocations: this.revocations,
        intervals: new MemoryPushThrottle(),
      },
      metrics,
      log,
    );
    const { service, members, receipts, flusher, receiptCounts, tokens, official } = layer;
    const events: NodeDelivery[] = [];
    broker.onNodeEvent((d) => events.push(d));
    broker.onControlEvent((e) => {
      if (e.t === "members") members.invalidateFor(e);
    });
    const sessions = (opts: Partial<UserSessionsOptions> = {}) => layer.sessions(opts);
    return {
      config,
      service,
      members,
      receipts,
      flusher,
      receiptCounts,
      tokens,
      official,
      broker,
      presence,
      metrics,
      sessions,
      events,
    };
  }
}
