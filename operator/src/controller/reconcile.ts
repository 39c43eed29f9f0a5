/**
 * One reconcile of one ChatCluster, top to bottom with early returns:
 *   get → (deleting? finalize) → finalizer per policy → validate → apply owned objects
 *   → read back Deployment and pods → publish the partition assignment → free gone pods' holds
 *   → compute status → write it when it changed.
 * Idempotent: safe to run again at any moment; the work queue runs one per key at a time.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ChatCluster, PartitionAssignment, SecretKeySelector } from "../api/v1alpha1.js";
import { assignPartitions, movedPartitions } from "../assignment.js";
import type { OperatorMetrics, ReconcileResult } from "../metrics.js";
import { hashOf } from "../resources/hash.js";
import { desiredObjects } from "../resources/index.js";
import { ASSIGNMENT_KEY, ownedNames, podSelector } from "../resources/meta.js";
import {
  buildPartitionsConfigMap,
  decodeAssignment,
  encodeAssignment,
} from "../resources/partitions-configmap.js";
import { releasesOfGonePods } from "../resources/releases-configmap.js";
import { computeStatus, conditionOf, statusChanged, type Problem } from "../status.js";
import { errorMessage, isConflict } from "./errors.js";
import {
  backendProblems,
  existingPodNames,
  livePodCount,
  podProblems,
  readyPodNames,
  type SecretProblem,
} from "./pods.js";
import type { ClusterApi, Clock, ConnectionSource, EventRecorder, TopologyCleaner } from "./ports.js";
import { balanceConnections } from "./balance.js";
import { HANDOVER_MANAGER, planHandover, replicasHold } from "./replicas.js";
import { validateCluster } from "./validate.js";
import { DEFAULT_CHAT_NODE_IMAGE } from "../version.js";

export const TOPOLOGY_FINALIZER = "vibetalk.io/rabbitmq-topology";

export interface ReconcilerDeps {
  api: ClusterApi;
  events: EventRecorder;
  connections: ConnectionSource;
  topology: TopologyCleaner;
  metrics: OperatorMetrics;
  log: Logger;
  clock?: Clock;
  /** Unchanged desired objects are re-applied at least this often, to repair drift (default 60 s). */
  resyncMs?: number;
  /** Requeue delay while the cluster converges (default 10 s). */
  convergingRequeueMs?: number;
  /** The chat-node image of a ChatCluster without spec.image (default: the operator's own version's). */
  defaultImage?: string;
}

export interface ReconcileOutcome {
  result: ReconcileResult;
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileOutcome>;

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** A failed step: the status shows it, then the error propagates so the queue backs off. */
export class StepError extends Error {
  constructor(
    readonly problem: Problem,
    override readonly cause: unknown,
  ) {
    super(problem.message);
  }
}

export function createReconciler(deps: ReconcilerDeps): Reconcile {
  const { api, events, metrics, log } = deps;
  const clock = deps.clock ?? { now: () => new Date() };
  const resyncMs = deps.resyncMs ?? 60_000;
  const convergingRequeueMs = deps.convergingRequeueMs ?? 10_000;
  /** Last successful apply per key: skip identical re-applies between resyncs. */
  const applied = new Map<string, { hash: string; at: number }>();

  async function finalize(cluster: ChatCluster): Promise<ReconcileOutcome> {
    const finalizers = cluster.metadata.finalizers ?? [];
    if (!finalizers.includes(TOPOLOGY_FINALIZER)) return { result: "deleted" };
    if (cluster.spec.deletionPolicy === "Delete") {
      try {
        await deps.topology.clean(cluster);
      } catch (err) {
        events.record(
          cluster,
          "Warning",
          "TopologyCleanupFailed",
          "Delete",
          `RabbitMQ topology not removed: ${errorMessage(err)}`,
        );
        throw err;
      }
      events.record(
        cluster,
        "Normal",
        "TopologyDeleted",
        "Delete",
        "Removed the cluster's RabbitMQ queues and exchanges.",
      );
    }
    await api.setFinalizers(cluster, []);
    return { result: "deleted" };
  }

  async function ensureFinalizer(cluster: ChatCluster): Promise<void> {
    const want = cluster.spec.deletionPolicy === "Delete";
    const has = (cluster.metadata.finalizers ?? []).includes(TOPOLOGY_FINALIZER);
    if (want === has) return;
    await api.setFinalizers(cluster, want ? [TOPOLOGY_FINALIZER] : []);
    events.record(
      cluster,
      "Normal",
      want ? "FinalizerAdded" : "FinalizerRemoved",
      "Update",
      want
        ? "deletionPolicy Delete: the RabbitMQ topology will be removed when this ChatCluster is deleted."
        : "deletionPolicy Retain: the RabbitMQ topology will be kept when this ChatCluster is deleted.",
    );
  }

  async function applyOwned(
    key: string,
    cluster: ChatCluster,
    o: { initialReplicas?: number } = {},
  ): Promise<void> {
    const desired = desiredObjects(cluster, o);
    const hash = hashOf(desired);
    const last = applied.get(key);
    const now = clock.now().getTime();
    if (last && last.hash === hash && now - last.at < resyncMs) return;
    applied.delete(key);
    for (const obj of desired.apply) {
      try {
        await api.apply(obj);
      } catch (err) {
        const message = `applying ${obj.kind} ${obj.metadata?.name ?? ""} failed: ${errorMessage(err)}`;
        throw new StepError({ reason: "ApplyFailed", message }, err);
      }
    }
    for (const ref of desired.remove) {
      try {
        if (await api.remove(ref))
          events.record(
            cluster,
            "Normal",
            "Deleted",
            "Delete",
            `Deleted ${ref.kind} ${ref.name}: the spec no longer asks for it.`,
          );
      } catch (err) {
        throw new StepError(
          { reason: "ApplyFailed", message: `deleting ${ref.kind} ${ref.name} failed: ${errorMessage(err)}` },
          err,
        );
      }
    }
    applied.set(key, { hash, at: now });
    if (cluster.status?.observedGeneration !== cluster.metadata.generation) {
      events.record(
        cluster,
        "Normal",
        "Applied",
        "Apply",
        `Applied ${desired.apply.length} objects for generation ${cluster.metadata.generation ?? "?"}.`,
      );
    }
  }

  /** The newer of the published (ConfigMap) and recorded (status) assignments. */
  function previousAssignment(cluster: ChatCluster, published: PartitionAssignment | undefined) {
    const recorded = cluster.status?.partitionAssignment;
    if (!published) return recorded;
    if (!recorded) return published;
    return recorded.epoch > published.epoch ? recorded : published;
  }

  async function publishAssignment(cluster: ChatCluster, ready: string[]): Promise<PartitionAssignment> {
    const { namespace, name } = cluster.metadata;
    const cm = await api.getConfigMap(namespace, ownedNames(name).partitionsConfigMap);
    const publishedText = cm?.data?.[ASSIGNMENT_KEY];
    const previous = previousAssignment(cluster, decodeAssignment(publishedText));
    const next = assignPartitions(previous, ready, cluster.spec.partitions);
    if (publishedText !== encodeAssignment(next)) {
      try {
        await api.apply(buildPartitionsConfigMap(cluster, next));
      } catch (err) {
        throw new StepError(
          {
            reason: "AssignmentFailed",
            message: `publishing the partition assignment failed: ${errorMessage(err)}`,
          },
          err,
        );
      }
    }
    if (next.epoch !== (previous?.epoch ?? 0)) {
      const moved = movedPartitions(previous, next).length;
      metrics.rebalances.inc({ cluster: key(cluster) });
      metrics.partitionsMoved.inc({ cluster: key(cluster) }, moved);
      events.record(
        cluster,
        "Normal",
        "Rebalanced",
        "Rebalance",
        `Epoch ${next.epoch}: ${cluster.spec.partitions} partitions over ${ready.length} Ready pods, ${moved} moved.`,
      );
      log.info(
        { cluster: key(cluster), epoch: next.epoch, moved, readyPods: ready.length },
        "partitions rebalanced",
      );
    }
    metrics.assignmentEpoch.set({ cluster: key(cluster) }, next.epoch);
    return next;
  }

  /** Release records held by pods that no longer exist (checked against a fresh LIST). */
  async function freeGoneHolders(cluster: ChatCluster, cachedPods: V1Pod[], epoch: number): Promise<void> {
    const { namespace, name } = cluster.metadata;
    const cm = await api.getConfigMap(namespace, ownedNames(name).releasesConfigMap);
    const rv = cm?.metadata?.resourceVersion;
    if (!cm?.data || !rv) return;
    if (
      Object.keys(releasesOfGonePods(cm.data, existingPodNames(cachedPods), epoch, clock.now())).length === 0
    )
      return;
    const fresh = await api.listPods(namespace, podSelector(name), { fresh: true });
    const patch = releasesOfGonePods(cm.data, existingPodNames(fresh), epoch, clock.now());
    const partitions = Object.keys(patch);
    if (partitions.length === 0) return;
    try {
      await api.patchConfigMapData(namespace, ownedNames(name).releasesConfigMap, patch, rv);
    } catch (err) {
      if (isConflict(err)) return; // a chat-node wrote meanwhile: the next reconcile looks again
      throw err;
    }
    events.record(
      cluster,
      "Normal",
      "PartitionsReleased",
      "Release",
      `Released partitions ${partitions.join(",")} held by pods that no longer exist.`,
    );
  }

  async function writeStatus(
    cluster: ChatCluster,
    observed: {
      deployment: V1Deployment | undefined;
      pods: V1Pod[];
      assignment: PartitionAssignment | undefined;
      problem?: Problem;
      secretProblems?: SecretProblem[];
    },
  ): Promise<ReturnType<typeof computeStatus>> {
    const connections = await deps.connections.total(cluster, observed.pods);
    const status = computeStatus(cluster, {
      deployment: observed.deployment,
      readyPods: readyPodNames(observed.pods),
      pods: livePodCount(observed.pods),
      podProblems: podProblems(observed.pods),
      backendProblems: backendProblems(observed.pods),
      secretProblems: observed.secretProblems ?? [],
      assignment: observed.assignment,
      connections,
      ...(observed.problem ? { problem: observed.problem } : {}),
      now: clock.now(),
    });
    if (statusChanged(cluster.status, status)) await api.applyStatus(cluster, status);
    const wasDegraded = conditionOf(cluster.status, "Degraded");
    const degraded = conditionOf(status, "Degraded");
    if (
      !observed.problem &&
      degraded?.status === "True" &&
      (wasDegraded?.status !== "True" || wasDegraded.reason !== degraded.reason)
    ) {
      events.record(cluster, "Warning", degraded.reason, "Observe", degraded.message);
    }
    const before = conditionOf(cluster.status, "Ready");
    const after = conditionOf(status, "Ready");
    if (after && before?.status !== after.status) {
      events.record(
        cluster,
        after.status === "True" ? "Normal" : "Warning",
        after.status === "True" ? "Ready" : "NotReady",
        "Observe",
        after.message,
      );
    }
    return status;
  }

  async function reportProblem(
    cluster: ChatCluster,
    deployment: V1Deployment | undefined,
    problem: Problem,
  ): Promise<void> {
    const { namespace, name } = cluster.metadata;
    const pods = await api.listPods(namespace, podSelector(name));
    await writeStatus(cluster, {
      deployment,
      pods,
      assignment: cluster.status?.partitionAssignment,
      problem,
    });
  }

  /** The Secrets and keys the spec names that do not exist (only their keys are read). */
  async function missingSecrets(cluster: ChatCluster): Promise<SecretProblem[]> {
    const { spec } = cluster;
    const { namespace } = cluster.metadata;
    const refs: [string, SecretKeySelector | undefined][] = [
      ["spec.rabbitmq.secretRef", spec.rabbitmq.secretRef],
      ["spec.redis.secretRef", spec.redis.secretRef],
      ["spec.mongodb.secretRef", spec.mongodb.secretRef],
      ["spec.jwtSecretRef", spec.jwtSecretRef],
      ["spec.jwtPreviousSecretRef", spec.jwtPreviousSecretRef],
    ];
    const keys = new Map<string, Promise<string[] | undefined>>();
    const out: SecretProblem[] = [];
    try {
      for (const [field, ref] of refs) {
        if (!ref) continue;
        if (!keys.has(ref.name)) keys.set(ref.name, api.secretKeys(namespace, ref.name));
        const have = await keys.get(ref.name);
        if (have === undefined)
          out.push({ field, namespace, secret: ref.name, key: ref.key, missing: "secret" });
        else if (!have.includes(ref.key))
          out.push({ field, namespace, secret: ref.name, key: ref.key, missing: "key" });
      }
    } catch (err) {
      // no right to read Secrets there: the pods' CreateContainerConfigError still says it
      log.debug({ cluster: key(cluster), err: errorMessage(err) }, "could not read the referenced Secrets");
      return [];
    }
    return out;
  }

  /** The replicas hand-over to and from the HPA (./replicas.ts); returns the cluster to apply. */
  async function handOver(k: string, cluster: ChatCluster, current: V1Deployment | undefined) {
    const plan = planHandover(cluster, current);
    if (plan.kind === "none") return cluster;
    applied.delete(k);
    try {
      if (plan.kind === "toHpa") {
        await api.apply(replicasHold(cluster, plan.replicas), { fieldManager: HANDOVER_MANAGER });
      } else {
        await api.setClusterReplicas(cluster, plan.replicas);
      }
    } catch (err) {
      const message = `handing spec.replicas ${plan.kind === "toHpa" ? "to" : "back from"} the HPA failed: ${errorMessage(err)}`;
      throw new StepError({ reason: "ApplyFailed", message }, err);
    }
    if (plan.kind === "toHpa") {
      events.record(
        cluster,
        "Normal",
        "ReplicasHandedOver",
        "Scale",
        `Autoscaling on: the HPA takes over at the current ${plan.replicas} chat-node pods.`,
      );
      return cluster;
    }
    events.record(
      cluster,
      "Normal",
      "ReplicasHandedOver",
      "Scale",
      `Autoscaling off: keeping the HPA's ${plan.replicas} chat-node pods; spec.replicas set to ${plan.replicas} (was ${plan.was}).`,
    );
    return { ...cluster, spec: { ...cluster.spec, replicas: plan.replicas } };
  }

  const key = (c: ChatCluster) => `${c.metadata.namespace}/${c.metadata.name}`;

  async function converge(k: string, cluster: ChatCluster): Promise<ReconcileOutcome> {
    const { namespace, name } = cluster.metadata;
    const current = await api.getDeployment(namespace, ownedNames(name).deployment);
    const problems = validateCluster(cluster, current);
    if (problems.length > 0) {
      const message = problems.join("; ");
      events.record(cluster, "Warning", "InvalidSpec", "Validate", `Nothing applied: ${message}`);
      await reportProblem(cluster, current, { reason: "InvalidSpec", message });
      return { result: "invalid" };
    }
    let target = await handOver(k, cluster, current);
    const creatingAutoscaled = !current && cluster.spec.autoscaling.enabled;
    await applyOwned(
      k,
      target,
      creatingAutoscaled ? { initialReplicas: cluster.spec.autoscaling.minReplicas } : {},
    );
    let deployment = await api.getDeployment(namespace, ownedNames(name).deployment);
    if (creatingAutoscaled && deployment) {
      // created at minReplicas under the operator's apply: hand the field to the HPA at once
      target = await handOver(k, target, deployment);
      await applyOwned(k, target);
      deployment = await api.getDeployment(namespace, ownedNames(name).deployment);
    }
    const pods = await api.listPods(namespace, podSelector(name));
    const assignment = await publishAssignment(cluster, readyPodNames(pods));
    await freeGoneHolders(cluster, pods, assignment.epoch);
    const secretProblems = await missingSecrets(target);
    const status = await writeStatus(target, { deployment, pods, assignment, secretProblems });
    const converged =
      conditionOf(status, "Ready")?.status === "True" &&
      conditionOf(status, "Progressing")?.status === "False";
    // connection balance after a scale-out (./balance.ts): when a round is due, the time to look again
    const balanceAfterMs = await balanceConnections(
      { api, events, metrics, log, clock },
      target,
      deployment,
      pods,
    );
    const requeueAfterMs = Math.min(converged ? Infinity : convergingRequeueMs, balanceAfterMs ?? Infinity);
    return Number.isFinite(requeueAfterMs) ? { result: "success", requeueAfterMs } : { result: "success" };
  }

  const defaultImage = deps.defaultImage ?? DEFAULT_CHAT_NODE_IMAGE;
  return async function reconcile(k: string): Promise<ReconcileOutcome> {
    const { namespace, name } = splitKey(k);
    const found = await api.getCluster(namespace, name);
    const cluster = found && { ...found, spec: { ...found.spec, image: found.spec.image ?? defaultImage } };
    if (!cluster) {
      applied.delete(k);
      metrics.assignmentEpoch.remove({ cluster: k });
      return { result: "gone" };
    }
    if (cluster.metadata.deletionTimestamp) return finalize(cluster);
    await ensureFinalizer(cluster);
    try {
      return await converge(k, cluster);
    } catch (err) {
      if (!(err instanceof StepError)) throw err;
      applied.delete(k);
      events.record(cluster, "Warning", err.problem.reason, "Apply", err.problem.message);
      await reportProblem(
        cluster,
        await api.getDeployment(namespace, name).catch(() => undefined),
        err.problem,
      ).catch((e: unknown) =>
        log.warn({ cluster: k, err: errorMessage(e) }, "could not report the problem in status"),
      );
      throw err;
    }
  };
}
