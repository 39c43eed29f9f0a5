import { Redis } from "ioredis";
import { MongoStore } from "../adapters/mongo-store.js";
import { RabbitBroker } from "../adapters/rabbit-broker.js";
import { RedisPresence } from "../adapters/redis-presence.js";
import type { ChatNodeConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";

/** The chat-node's connections to its backing services (docs/chat-node.md, "Layout"). */
export interface Backends {
  store: MongoStore;
  redis: Redis;
  broker: RabbitBroker;
  presence: RedisPresence;
}

/** Connects to MongoDB, Redis and RabbitMQ, in that order; fails with the first that cannot be reached. */
export async function connectBackends(
  config: ChatNodeConfig,
  metrics: Metrics,
  log: Logger,
): Promise<Backends> {
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
  return { store, redis, broker, presence };
}

/** Closes what `connectBackends` opened, the broker first (its consumers are stopped by then). */
export async function closeBackends(b: Backends): Promise<void> {
  await b.broker.close();
  b.redis.disconnect();
  await b.store.close();
}
