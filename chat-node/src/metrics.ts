import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The node's Prometheus metrics, in a registry of its own (several nodes may share a process). */
export function createMetrics(nodeId: string, options: { defaultMetrics: boolean }) {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "vibetalk_process_" });
  const r = [registry];
  const metrics = {
    registry,
    ...socketMetrics(r),
    ...messageMetrics(r),
    ...partitionMetrics(r),
    ...pushMetrics(r),
  };
  // Every label value from the start, so rates begin at 0 and dashboards show the series before the first event.
  for (const reason of ["refused", "attempts", "deliveries", "malformed"])
    metrics.messagesParked.inc({ reason }, 0);
  for (const step of ["store", "fanout", "park", "notify"]) metrics.transientRetries.inc({ step }, 0);
  for (const kind of ["gateway", "webpush"]) {
    metrics.pushSent.inc({ kind }, 0);
    metrics.pushFailed.inc({ kind }, 0);
  }
  metrics.pushDropped.inc(0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Sockets and users on this node (the autoscaler and the balance read these). */
function socketMetrics(r: Registry[]) {
  return {
    connections: new Gauge({
      name: "vibetalk_connections",
      help: "Open Socket.IO connections on this node",
      registers: r,
    }),
    connectedUsers: new Gauge({
      name: "vibetalk_connected_users",
      help: "Distinct users with a socket on this node",
      registers: r,
    }),
    socketsPerUser: new Gauge({
      name: "vibetalk_sockets_per_user",
      help: "Sockets per connected user on this node (avg and max)",
      labelNames: ["stat"],
      registers: r,
    }),
    boundUsers: new Gauge({
      name: "vibetalk_bound_users",
      help: "Users bound to this node's queue (grace period included)",
      registers: r,
    }),
    boundChannels: new Gauge({
      name: "vibetalk_bound_channels",
      help: "Large channels bound to this node's queue (it holds at least one of their members)",
      registers: r,
    }),
    socketsShed: new Counter({
      name: "vibetalk_sockets_shed_total",
      help: "Sockets asked to reconnect elsewhere by a connection balance round (docs/operator.md)",
      registers: r,
    }),
    loginFailures: new Counter({
      name: "vibetalk_login_failures_total",
      help: "Logins refused: wrong username or password, or throttled (per account or per address)",
      labelNames: ["reason"],
      registers: r,
    }),
    errors: new Counter({
      name: "vibetalk_errors_total",
      help: "Errors answered to clients, by code",
      labelNames: ["code"],
      registers: r,
    }),
  };
}

/** The message path: accepted, stored, delivered, and their latencies (I1, I4). */
function messageMetrics(r: Registry[]) {
  return {
    messagesAccepted: new Counter({
      name: "vibetalk_messages_accepted_total",
      help: "message:send accepted (broker-confirmed, acked to the client)",
      registers: r,
    }),
    messagesStored: new Counter({
      name: "vibetalk_messages_stored_total",
      help: "Messages processed by partition consumers; result=new|duplicate",
      labelNames: ["result"],
      registers: r,
    }),
    messagesDelivered: new Counter({
      name: "vibetalk_messages_delivered_total",
      help: "message events emitted to local sockets",
      registers: r,
    }),
    sendAck: new Histogram({
      name: "vibetalk_send_ack_seconds",
      help: "message:send received → client ack",
      buckets: latencyBuckets,
      registers: r,
    }),
    sendDeliver: new Histogram({
      name: "vibetalk_send_deliver_seconds",
      help: "message accepted → emitted to a recipient socket",
      buckets: latencyBuckets,
      registers: r,
    }),
    receiptFlushes: new Counter({
      name: "vibetalk_receipt_marks_flushed_total",
      help: "Receipt marks written to the store",
      registers: r,
    }),
  };
}

/** The partition consumers: ownership, lag, batches, fan-out, and what they could not store (I1, I5, I6). */
function partitionMetrics(r: Registry[]) {
  return {
    ownedPartitions: new Gauge({
      name: "vibetalk_owned_partitions",
      help: "Partitions this node consumes",
      registers: r,
    }),
    partitionLag: new Gauge({
      name: "vibetalk_partition_lag",
      help: "Ready messages in an owned partition queue",
      labelNames: ["partition"],
      registers: r,
    }),
    batchSize: new Histogram({
      name: "vibetalk_batch_messages",
      help: "Messages per stored batch",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: r,
    }),
    batchStoreSeconds: new Histogram({
      name: "vibetalk_batch_store_seconds",
      help: "Time to sequence and insert a batch",
      buckets: latencyBuckets,
      registers: r,
    }),
    batchSeconds: new Histogram({
      name: "vibetalk_batch_seconds",
      help: "Time to store, fan out and ack a batch",
      buckets: latencyBuckets,
      registers: r,
    }),
    fanoutPublishes: new Histogram({
      name: "vibetalk_fanout_publishes_per_message",
      help: "Broker publishes per fanned-out message",
      buckets: [0, 1, 2, 3, 5, 10],
      registers: r,
    }),
    brokerDeliveries: new Counter({
      name: "vibetalk_broker_deliveries_total",
      help: "Events this node received from its queue, by kind",
      labelNames: ["kind"],
      registers: r,
    }),
    messagesParked: new Counter({
      name: "vibetalk_messages_parked_total",
      help: "Messages set aside in the parked queue instead of stored; reason=refused|attempts|deliveries|malformed",
      labelNames: ["reason"],
      registers: r,
    }),
    parkedMessages: new Gauge({
      name: "vibetalk_parked_messages",
      help: "Messages waiting in the cluster's parked queue (sampled every 5 s; the same on every node)",
      registers: r,
    }),
    transientRetries: new Counter({
      name: "vibetalk_partition_retries_total",
      help: "In-process retries of partition work after a transient failure; step=store|fanout|park|notify",
      labelNames: ["step"],
      registers: r,
    }),
    legacyPartitionQueues: new Gauge({
      name: "vibetalk_legacy_partition_queues",
      help: "Partition queues declared without a delivery limit and dead-letter target (an older VibeTalk's)",
      registers: r,
    }),
    consumerRestarts: new Counter({
      name: "vibetalk_partition_consumer_restarts_total",
      help: "Partition consumers restarted after a failure",
      registers: r,
    }),
  };
}

/** Push notifications to offline users (docs/chat-node.md, "Push notifications"). */
function pushMetrics(r: Registry[]) {
  return {
    pushSent: new Counter({
      name: "vibetalk_push_sent_total",
      help: "Push notifications accepted by the gateway or the Web Push service; kind=gateway|webpush",
      labelNames: ["kind"],
      registers: r,
    }),
    pushFailed: new Counter({
      name: "vibetalk_push_failed_total",
      help: "Push notifications given up after their attempts or refused for good (the dead-letter); kind=gateway|webpush",
      labelNames: ["kind"],
      registers: r,
    }),
    pushDropped: new Counter({
      name: "vibetalk_push_dropped_total",
      help: "Stored batches not considered for push notifications because the node's push queue was full",
      registers: r,
    }),
  };
}
