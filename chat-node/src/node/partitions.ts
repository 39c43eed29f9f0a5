import { PARTITION_DELIVERY_LIMIT } from "../adapters/rabbit-broker.js";
import type { ChatNodeConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { ChannelHeadsWriter } from "../partitions/channel-heads.js";
import { PartitionManager } from "../partitions/manager.js";
import { StaticAssignmentSource } from "../partitions/static-assignment.js";
import type { AssignmentSource } from "../ports.js";
import { RedisPushThrottle } from "../adapters/redis-push-throttle.js";
import type { MembersCache } from "../services/members-cache.js";
import { PushNotifier } from "../services/push-notifier.js";
import type { Backends } from "./backends.js";

/** The partition side: the consumers of the partitions this node owns and who tells it which (I6). */
export interface PartitionSide {
  manager: PartitionManager;
  heads: ChannelHeadsWriter;
  assignment: AssignmentSource;
  push: PushNotifier;
}

/** Starts consuming the partitions the assignment gives this node (docs/chat-node.md, "Partition ownership"). */
export async function startPartitions(
  config: ChatNodeConfig,
  b: Backends,
  members: MembersCache,
  metrics: Metrics,
  log: Logger,
  assignment: AssignmentSource = new StaticAssignmentSource(config.ownedPartitions),
): Promise<PartitionSide> {
  const heads = new ChannelHeadsWriter(b.store, log, 250);
  const push = new PushNotifier({
    config: config.push,
    store: b.store,
    members,
    presence: b.presence,
    throttle: new RedisPushThrottle(b.redis),
    metrics,
    log: log.child({ component: "push" }),
  });
  const manager = new PartitionManager(
    { broker: b.broker, store: b.store, members, heads, metrics, log, push },
    {
      prefetch: config.consumerPrefetch,
      batchSize: config.batchSize,
      pipeline: config.consumerPipeline,
      flushIntervalMs: config.flushIntervalMs,
      retryDelayMs: 1000,
      retryMaxDelayMs: config.retryMaxDelayMs,
      maxStoreAttempts: config.maxStoreAttempts,
      maxDeliveries: PARTITION_DELIVERY_LIMIT,
      largeChannelSwitchMs: config.largeChannelSwitchMs,
    },
  );
  await assignment.start((owned) => manager.apply(owned));
  manager.startLagSampling(5000);
  return { manager, heads, assignment, push };
}

/** Gives the partitions back: the assignment first (no new ones), then the consumers, then the heads. */
export async function stopPartitions(p: PartitionSide): Promise<void> {
  await p.assignment.stop().catch(() => undefined);
  await p.manager.stopAll();
  await p.push.stop();
  await p.heads.stop();
}
