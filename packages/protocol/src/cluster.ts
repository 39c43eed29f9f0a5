/**
 * The cluster-internal contract between the operator and chat-nodes (not part of the client protocol):
 * the partition assignment the operator publishes, the release records chat-nodes write when they hand a
 * partition over, and the pod annotation carrying a chat-node's live connection count. See docs/operator.md.
 */

/**
 * RabbitMQ names of a cluster (docs/architecture.md#the-message-path): chat-nodes declare them, the
 * operator removes the durable ones when a ChatCluster with `deletionPolicy: Delete` goes.
 */
export const RABBITMQ = {
  partitionExchange: "vibetalk.partitions",
  partitionQueue: (k: number) => `vibetalk.partition.${k}`,
  /** Fanout exchange bound (exchange-to-exchange) to every user exchange: one publish per message. */
  usersRouter: "vibetalk.users",
  userExchange: (u: number) => `vibetalk.users.${u}`,
  /** One per chat-node, with `x-expires`: it goes by itself, so no list names it. */
  nodeQueue: (nodeId: string) => `vibetalk.node.${nodeId}`,
  /** Fanout exchange bound to every node queue: cluster-wide control events (cache invalidation). */
  controlExchange: "vibetalk.control",
  /**
   * Quorum queue of messages set aside instead of stored (poison messages): the partition queues'
   * dead-letter target, and where partition consumers park what the store refuses. Published to
   * through the default exchange (routing key = queue name).
   */
  parkedQueue: "vibetalk.parked",
} as const;

/** The durable queues and exchanges a cluster with P partitions and U user exchanges declares. */
export function durableTopology(spec: { partitions: number; userExchanges: number }): {
  queues: string[];
  exchanges: string[];
} {
  return {
    queues: [
      ...Array.from({ length: spec.partitions }, (_, k) => RABBITMQ.partitionQueue(k)),
      RABBITMQ.parkedQueue,
    ],
    exchanges: [
      RABBITMQ.partitionExchange,
      RABBITMQ.usersRouter,
      ...Array.from({ length: spec.userExchanges }, (_, u) => RABBITMQ.userExchange(u)),
      RABBITMQ.controlExchange,
    ],
  };
}

/** Key of `<cluster>-partitions` ConfigMap's data holding the assignment JSON. */
export const ASSIGNMENT_KEY = "assignment.json";
/** Pod annotation each chat-node keeps at its live connection count (decimal). */
export const ANNOTATION_CONNECTIONS = "vibetalk.io/connections";
/**
 * Pod annotation each chat-node keeps at the names of its failing readiness checks (its /readyz
 * `checks`), comma-separated and sorted; empty while every check passes.
 */
export const ANNOTATION_READINESS = "vibetalk.io/readiness";
/**
 * Kubernetes' own pod annotation that ReplicaSets read on scale-in (lower cost goes first): each chat-node
 * keeps it at its connection count, so the emptiest pods are removed.
 */
export const ANNOTATION_POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";
/** The readiness checks a chat-node reports; `draining` is its own shutdown, not a fault. */
export const READINESS_CHECKS = ["broker", "draining", "publishing", "redis", "store"] as const;
export type ReadinessCheck = (typeof READINESS_CHECKS)[number];

/** Which pod owns each partition, at which epoch (raised whenever an owner changes). */
export interface PartitionAssignment {
  epoch: number;
  /** Partition number (decimal string) → pod name. */
  owners: Record<string, string>;
}

/** Who may consume a partition. `holder: ""` means released: the assigned owner may claim it. */
export interface ReleaseRecord {
  /** The pod consuming (or allowed to consume) the partition; "" once released. */
  holder: string;
  /** Assignment epoch the writer acted on. */
  epoch: number;
  /** Pod (or "operator") that last released it; absent on a claim. */
  releasedBy?: string;
  /** RFC 3339 time of the write. */
  at: string;
}

/** Owners in ascending partition order, so equal assignments encode to equal text. */
export function encodeAssignment(a: PartitionAssignment): string {
  const owners: Record<string, string> = {};
  for (const k of Object.keys(a.owners).sort((x, y) => Number(x) - Number(y))) {
    const pod = a.owners[k];
    if (pod !== undefined) owners[k] = pod;
  }
  return JSON.stringify({ epoch: a.epoch, owners });
}

/** Parses assignment.json; undefined when absent or malformed. */
export function decodeAssignment(text: string | undefined): PartitionAssignment | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const { epoch, owners } = v as { epoch?: unknown; owners?: unknown };
  if (!Number.isInteger(epoch) || (epoch as number) < 0) return undefined;
  if (typeof owners !== "object" || owners === null || Array.isArray(owners)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, pod] of Object.entries(owners)) {
    if (!/^\d+$/.test(k) || typeof pod !== "string" || pod === "") return undefined;
    out[k] = pod;
  }
  return { epoch: epoch as number, owners: out };
}

export function decodeReleaseRecord(text: string | undefined): ReleaseRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<ReleaseRecord>;
    if (typeof v.holder !== "string" || !Number.isInteger(v.epoch) || typeof v.at !== "string")
      return undefined;
    return {
      holder: v.holder,
      epoch: v.epoch as number,
      at: v.at,
      ...(typeof v.releasedBy === "string" ? { releasedBy: v.releasedBy } : {}),
    };
  } catch {
    return undefined;
  }
}

export function encodeReleaseRecord(r: ReleaseRecord): string {
  return JSON.stringify(r);
}
