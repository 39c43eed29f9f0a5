/** The operator's Prometheus metrics (one registry per operator instance). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type ReconcileResult = "success" | "invalid" | "error" | "gone" | "deleted";

export interface OperatorMetrics {
  registry: Registry;
  reconciles: Counter<"result">;
  reconcileDuration: Histogram<"result">;
  queueDepth: Gauge;
  rebalances: Counter<"cluster">;
  partitionsMoved: Counter<"cluster">;
  balanceRounds: Counter<"cluster">;
  socketsShedRequested: Counter<"cluster">;
  assignmentEpoch: Gauge<"cluster">;
  informerHealthy: Gauge<"resource">;
  isLeader: Gauge;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): OperatorMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: "vibetalk_operator_" });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: "vibetalk_operator_reconciles_total",
      help: "Reconciles by result.",
      labelNames: ["result"],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: "vibetalk_operator_reconcile_duration_seconds",
      help: "Duration of one reconcile.",
      labelNames: ["result"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueDepth: new Gauge({
      name: "vibetalk_operator_queue_depth",
      help: "Keys waiting in the work queue.",
      registers,
    }),
    rebalances: new Counter({
      name: "vibetalk_operator_rebalances_total",
      help: "Partition assignments published with changed owners.",
      labelNames: ["cluster"],
      registers,
    }),
    partitionsMoved: new Counter({
      name: "vibetalk_operator_partitions_moved_total",
      help: "Partitions whose owner changed.",
      labelNames: ["cluster"],
      registers,
    }),
    balanceRounds: new Counter({
      name: "vibetalk_operator_balance_rounds_total",
      help: "Connection balance rounds published (pods above the band asked to shed sockets).",
      labelNames: ["cluster"],
      registers,
    }),
    socketsShedRequested: new Counter({
      name: "vibetalk_operator_sockets_shed_requested_total",
      help: "Sockets the balance rounds asked chat-nodes to shed (each chat-node counts what it shed in vibetalk_sockets_shed_total).",
      labelNames: ["cluster"],
      registers,
    }),
    assignmentEpoch: new Gauge({
      name: "vibetalk_operator_assignment_epoch",
      help: "Epoch of the published partition assignment.",
      labelNames: ["cluster"],
      registers,
    }),
    informerHealthy: new Gauge({
      name: "vibetalk_operator_informer_healthy",
      help: "1 when the informer's list-watch is running.",
      labelNames: ["resource"],
      registers,
    }),
    isLeader: new Gauge({
      name: "vibetalk_operator_leader",
      help: "1 while this instance holds the leader Lease.",
      registers,
    }),
  };
}
