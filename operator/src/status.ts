/**
 * Status as data (pure): conditions Ready, Progressing, Degraded and PartitionsBalanced, each with a
 * reason and a message a person can act on, computed from what the reconciler observed.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import type {
  ChatCluster,
  ChatClusterStatus,
  Condition,
  ConditionStatus,
  PartitionAssignment,
} from "./api/v1alpha1.js";
import { partitionCounts } from "./assignment.js";
import { stableStringify } from "./resources/hash.js";
import type { BackendProblem, PodProblem, SecretProblem } from "./controller/pods.js";
import { podSelector } from "./resources/meta.js";

export type ConditionType = "Ready" | "Progressing" | "Degraded" | "PartitionsBalanced";

/** Something that stopped the reconcile before the cluster could converge. */
export interface Problem {
  reason: "InvalidSpec" | "ApplyFailed" | "AssignmentFailed";
  message: string;
}

export interface Observed {
  deployment: V1Deployment | undefined;
  /** Names of Ready chat-node pods (Ready condition True, not terminating). */
  readyPods: readonly string[];
  /**
   * chat-node pods that exist and are not terminating, from the same pod list as readyPods: status
   * replicas and readyReplicas both come from that one snapshot, so they always agree with Ready (the
   * Deployment's status lags the pods). Absent: the Deployment's status.replicas.
   */
  pods?: number;
  /** Secrets or keys the spec names that do not exist (read by the operator). */
  secretProblems?: readonly SecretProblem[];
  /** Backing services the chat-nodes report unreachable (their `vibetalk.io/readiness` annotation). */
  backendProblems?: readonly BackendProblem[];
  /** The assignment in force (undefined when none was computed, e.g. invalid spec on creation). */
  assignment: PartitionAssignment | undefined;
  connections: number;
  problem?: Problem;
  /** chat-node containers that cannot run (image, crash loop, configuration). */
  podProblems?: readonly PodProblem[];
  now: Date;
}

type Draft = Pick<Condition, "status" | "reason" | "message">;
const cond = (status: ConditionStatus, reason: string, message: string): Draft => ({
  status,
  reason,
  message,
});

/** Replicas the cluster should run: the Deployment's (HPA-managed) or the spec's. */
export function desiredReplicas(cluster: ChatCluster, deployment: V1Deployment | undefined): number {
  if (cluster.spec.autoscaling.enabled)
    return deployment?.spec?.replicas ?? cluster.spec.autoscaling.minReplicas;
  return cluster.spec.replicas;
}

const deploymentCondition = (d: V1Deployment | undefined, type: string) =>
  d?.status?.conditions?.find((c) => c.type === type);

const PROBLEM_SUMMARY: Record<PodProblem["kind"], [one: string, many: string]> = {
  ImagePullFailed: ["cannot get its image", "cannot get their image"],
  CrashLooping: ["is crash-looping", "are crash-looping"],
  CannotStart: ["cannot start its container", "cannot start their containers"],
};

/** One reason for the most pressing kind of pod problem, and a message naming the pods and the cause. */
function podProblemCondition(problems: readonly PodProblem[]): Draft | undefined {
  const kinds: PodProblem["kind"][] = ["ImagePullFailed", "CannotStart", "CrashLooping"];
  const kind = kinds.find((k) => problems.some((p) => p.kind === k));
  if (!kind) return undefined;
  const these = problems.filter((p) => p.kind === kind);
  const first = these[0]!;
  const pods = these.map((p) => p.pod);
  const shown =
    pods.length > 3 ? `${pods.slice(0, 3).join(", ")} and ${pods.length - 3} more` : pods.join(", ");
  const image = kind === "ImagePullFailed" && first.image ? ` ${JSON.stringify(first.image)}` : "";
  return cond(
    "True",
    kind,
    `${these.length} chat-node pod${these.length === 1 ? "" : "s"} (${shown}) ${PROBLEM_SUMMARY[kind][these.length === 1 ? 0 : 1]}${image}: ${first.reason}: ${first.message}`,
  );
}

function secretCondition(problems: readonly SecretProblem[]): Draft | undefined {
  const first = problems[0];
  if (!first) return undefined;
  const what = (p: SecretProblem) =>
    p.missing === "secret"
      ? `Secret ${JSON.stringify(p.secret)} (${p.field}) does not exist`
      : `Secret ${JSON.stringify(p.secret)} has no key ${JSON.stringify(p.key)} (${p.field}.key)`;
  const fix =
    first.missing === "secret"
      ? `create it in namespace ${first.namespace} with the key ${JSON.stringify(first.key)}`
      : `add the key (kubectl -n ${first.namespace} edit secret ${first.secret}) or set ${first.field}.key to a key it has`;
  return cond(
    "True",
    first.missing === "secret" ? "SecretNotFound" : "SecretKeyMissing",
    `${problems.map(what).join("; ")}: ${fix}. chat-node pods cannot start until then (CreateContainerConfigError).`,
  );
}

const BACKENDS: Record<BackendProblem["check"], [service: string, field: string, what: string]> = {
  broker: ["RabbitMQ", "spec.rabbitmq.secretRef", "cannot reach RabbitMQ"],
  redis: ["Redis", "spec.redis.secretRef", "cannot reach Redis"],
  store: ["MongoDB", "spec.mongodb.secretRef", "cannot reach MongoDB"],
  publishing: [
    "RabbitMQ",
    "spec.rabbitmq.secretRef",
    "are refused publishes by RabbitMQ (a memory or disk alarm: see rabbitmqctl status)",
  ],
};

function backendCondition(problems: readonly BackendProblem[]): Draft | undefined {
  const first = problems[0];
  if (!first) return undefined;
  const parts = (["broker", "publishing", "store", "redis"] as const).flatMap((check) => {
    const pods = problems.filter((p) => p.check === check).map((p) => p.pod);
    if (pods.length === 0) return [];
    const [, field, what] = BACKENDS[check];
    const shown =
      pods.length > 3 ? `${pods.slice(0, 3).join(", ")} and ${pods.length - 3} more` : pods.join(", ");
    return [
      `${pods.length} chat-node pod${pods.length === 1 ? "" : "s"} (${shown}) ${what}; check the URL in ${field} and the network path to it`,
    ];
  });
  return cond("True", "BackendUnavailable", `${parts.join(". ")}.`);
}

export function degradedCondition(o: Observed): Draft {
  if (o.problem) return cond("True", o.problem.reason, o.problem.message);
  const secrets = secretCondition(o.secretProblems ?? []);
  if (secrets) return secrets;
  const pods = podProblemCondition(o.podProblems ?? []);
  if (pods) return pods;
  const failure = deploymentCondition(o.deployment, "ReplicaFailure");
  if (failure?.status === "True") {
    return cond(
      "True",
      "ReplicaFailure",
      `chat-node pods cannot be created: ${failure.message ?? failure.reason ?? ""}`,
    );
  }
  const progressing = deploymentCondition(o.deployment, "Progressing");
  if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded") {
    return cond(
      "True",
      "RolloutStuck",
      `the chat-node rollout made no progress: ${progressing.message ?? ""}`,
    );
  }
  const backends = backendCondition(o.backendProblems ?? []);
  if (backends) return backends;
  return cond("False", "AsExpected", "No problem observed.");
}

export function progressingCondition(cluster: ChatCluster, o: Observed): Draft {
  if (o.problem?.reason === "InvalidSpec")
    return cond("False", "InvalidSpec", "Nothing is applied until the spec is fixed.");
  const d = o.deployment;
  if (!d) return cond("True", "Creating", "Creating the chat-node Deployment.");
  const want = desiredReplicas(cluster, d);
  const st = d.status ?? {};
  if ((st.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) {
    return cond(
      "True",
      "RolloutPending",
      "The Deployment controller has not yet seen the latest chat-node template.",
    );
  }
  if ((st.updatedReplicas ?? 0) < want) {
    return cond(
      "True",
      "RollingOut",
      `${st.updatedReplicas ?? 0} of ${want} chat-node pods run the latest template.`,
    );
  }
  if ((st.replicas ?? 0) > want) {
    return cond(
      "True",
      "ScalingDown",
      `${st.replicas ?? 0} chat-node pods, ${want} wanted: old pods are draining.`,
    );
  }
  if ((st.availableReplicas ?? 0) < want) {
    return cond(
      "True",
      "WaitingForPods",
      `${st.availableReplicas ?? 0} of ${want} chat-node pods are available.`,
    );
  }
  return cond("False", "Stable", `All ${want} chat-node pods are updated and available.`);
}

function unownedPartitions(cluster: ChatCluster, a: PartitionAssignment | undefined): number {
  return cluster.spec.partitions - Object.keys(a?.owners ?? {}).length;
}

export function readyCondition(cluster: ChatCluster, o: Observed): Draft {
  if (o.problem?.reason === "InvalidSpec" && !o.deployment) {
    return cond("False", "InvalidSpec", "The spec is invalid; see the Degraded condition.");
  }
  if (!o.deployment) return cond("False", "NoDeployment", "The chat-node Deployment does not exist yet.");
  const want = desiredReplicas(cluster, o.deployment);
  const ready = o.readyPods.length;
  if (want === 0) return cond("False", "ScaledToZero", "The cluster is scaled to 0 chat-node pods.");
  if (ready === 0) return cond("False", "NoReadyPods", `0 of ${want} chat-node pods are Ready.`);
  if (ready < want) return cond("False", "ReplicasNotReady", `${ready} of ${want} chat-node pods are Ready.`);
  const unowned = unownedPartitions(cluster, o.assignment);
  if (unowned > 0) return cond("False", "PartitionsUnassigned", `${unowned} partitions have no owner yet.`);
  return cond(
    "True",
    "AllReplicasReady",
    `${ready} of ${want} chat-node pods are Ready; ${cluster.spec.partitions} partitions assigned.`,
  );
}

export function partitionsBalancedCondition(cluster: ChatCluster, o: Observed): Draft {
  const P = cluster.spec.partitions;
  if (o.readyPods.length === 0)
    return cond("False", "NoReadyPods", `No Ready chat-node pod to own the ${P} partitions.`);
  const a = o.assignment;
  const unowned = unownedPartitions(cluster, a);
  if (!a || unowned > 0) return cond("False", "Unassigned", `${unowned} of ${P} partitions have no owner.`);
  const ready = new Set(o.readyPods);
  const stale = Object.values(a.owners).filter((p) => !ready.has(p));
  if (stale.length > 0) {
    return cond(
      "False",
      "OwnerNotReady",
      `${stale.length} partitions are assigned to pods that are not Ready.`,
    );
  }
  const counts = [...partitionCounts(a, o.readyPods).values()];
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  if (hi - lo > 1) return cond("False", "Unbalanced", `Pods own between ${lo} and ${hi} partitions.`);
  const each = lo === hi ? `${lo}` : `${lo}–${hi}`;
  return cond(
    "True",
    "Balanced",
    `${P} partitions over ${o.readyPods.length} pods (${each} each), epoch ${a.epoch}.`,
  );
}

/** Keeps lastTransitionTime when a condition's status did not change. */
function withTransition(
  type: ConditionType,
  draft: Draft,
  previous: readonly Condition[] | undefined,
  generation: number | undefined,
  now: Date,
): Condition {
  const prev = previous?.find((c) => c.type === type);
  const lastTransitionTime =
    prev && prev.status === draft.status
      ? prev.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    type,
    ...draft,
    lastTransitionTime,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

export function computeConditions(cluster: ChatCluster, o: Observed): Condition[] {
  const gen = cluster.metadata.generation;
  const prev = cluster.status?.conditions;
  return [
    withTransition("Ready", readyCondition(cluster, o), prev, gen, o.now),
    withTransition("Progressing", progressingCondition(cluster, o), prev, gen, o.now),
    withTransition("Degraded", degradedCondition(o), prev, gen, o.now),
    withTransition("PartitionsBalanced", partitionsBalancedCondition(cluster, o), prev, gen, o.now),
  ];
}

/**
 * The whole status. observedGeneration moves to the current generation only when the reconcile
 * succeeded (no problem); the conditions carry their own observedGeneration either way.
 */
export function computeStatus(cluster: ChatCluster, o: Observed): ChatClusterStatus {
  const prevGen = cluster.status?.observedGeneration;
  const observedGeneration = o.problem ? prevGen : cluster.metadata.generation;
  const assignment = o.assignment ?? cluster.status?.partitionAssignment;
  return {
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
    replicas: o.pods ?? o.deployment?.status?.replicas ?? 0,
    readyReplicas: o.readyPods.length,
    selector: podSelector(cluster.metadata.name),
    connections: o.connections,
    ...(assignment ? { partitionAssignment: assignment } : {}),
    conditions: computeConditions(cluster, o),
  };
}

/** Whether writing `next` would change anything (key order and undefined fields ignored). */
export function statusChanged(previous: ChatClusterStatus | undefined, next: ChatClusterStatus): boolean {
  return stableStringify(previous ?? {}) !== stableStringify(next);
}

export function conditionOf(
  status: ChatClusterStatus | undefined,
  type: ConditionType,
): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}
