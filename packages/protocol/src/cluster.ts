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
  /**
   * Direct exchange for large channels (docs/chat-node.md, "Large channels"): a node binds its queue with
   * the channel id while it holds a member of it, so one publish reaches each such node once.
   */
  channelsExchange: "vibetalk.channels",
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
      RABBITMQ.channelsExchange,
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

/**
 * Key of `<cluster>-partitions` ConfigMap's data holding the latest balance round (docs/operator.md,
 * "Connection balance"): which pods shed how many sockets, written by the operator at most once per
 * `spec.rebalance.intervalSeconds`; the chat-nodes already read that ConfigMap.
 */
export const BALANCE_KEY = "balance.json";

/** One balance round: pods well above the average shed a bounded number of sockets. */
export interface BalanceRound {
  /** Grows by one with every round; a chat-node acts on a round once. */
  round: number;
  /** RFC 3339 time the operator wrote it; rounds are at least the interval apart. */
  at: string;
  /**
   * After this time (RFC 3339) the round is void: a chat-node neither sheds for it nor refuses new sockets
   * for it (three intervals after `at`: the shed sockets land meanwhile).
   */
  expiresAt: string;
  /** The sockets are asked to reconnect at random moments spread over this many milliseconds (jitter). */
  windowMs: number;
  /** Average connections per pod the round was computed from; a shedding pod takes no new socket above it. */
  average: number;
  /** Pod name → sockets to shed this round (pods within the band are absent). */
  shed: Record<string, number>;
  /**
   * Connections over the Ready pods the round was computed from: the next round waits until the count is
   * back near it (the shed sockets have landed), so it is not computed from an average missing them.
   */
  total?: number;
}

export function encodeBalanceRound(r: BalanceRound): string {
  const shed: Record<string, number> = {};
  for (const pod of Object.keys(r.shed).sort()) shed[pod] = r.shed[pod]!;
  return JSON.stringify({ ...r, shed });
}

/** Parses balance.json; undefined when absent or malformed. */
export function decodeBalanceRound(text: string | undefined): BalanceRound | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Partial<Record<keyof BalanceRound, unknown>>;
  const count = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
  const time = (x: unknown): x is string => typeof x === "string" && !Number.isNaN(Date.parse(x));
  const amount = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0;
  if (!count(r.round) || !count(r.windowMs) || !amount(r.average)) return undefined;
  if (!time(r.at) || !time(r.expiresAt)) return undefined;
  if (typeof r.shed !== "object" || r.shed === null || Array.isArray(r.shed)) return undefined;
  const shed: Record<string, number> = {};
  for (const [pod, n] of Object.entries(r.shed)) {
    if (pod === "" || !count(n)) return undefined;
    shed[pod] = n;
  }
  return {
    round: r.round,
    at: r.at,
    expiresAt: r.expiresAt,
    windowMs: r.windowMs,
    average: r.average,
    shed,
    ...(count(r.total) ? { total: r.total } : {}),
  };
}
