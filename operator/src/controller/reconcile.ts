/**
 * One reconcile of one ChatCluster, top to bottom with early returns:
 *   get → (deleting? finalize) → finalizer per policy → validate → hand replicas to/from the HPA
 *   → apply owned objects → read back Deployment and pods → publish the partition assignment
 *   → free gone pods' holds → compute status → write it when it changed → connection balance.
 * Each step is a function of its own file (./reconcile-*.ts, ./balance.ts) over the same StepDeps.
 * Idempotent: safe to run again at any moment; the work queue runs one per key at a time.
 */
import type { Logger } from "pino";
import type { ChatCluster } from "../api/v1alpha1.js";
import type { OperatorMetrics, ReconcileResult } from "../metrics.js";
import { ownedNames, podSelector } from "../resources/meta.js";
import { conditionOf } from "../status.js";
import { DEFAULT_CHAT_NODE_IMAGE } from "../version.js";
import { balanceConnections } from "./balance.js";
import { errorMessage } from "./errors.js";
import { readyPodNames } from "./pods.js";
import type { ClusterApi, Clock, ConnectionSource, EventRecorder, TopologyCleaner } from "./ports.js";
import { AppliedCache, applyOwned } from "./reconcile-apply.js";
import { freeGoneHolders, publishAssignment } from "./reconcile-assignment.js";
import { ensureFinalizer, finalize } from "./reconcile-finalizer.js";
import { handOver } from "./reconcile-handover.js";
import { missingSecrets, reportProblem, writeStatus } from "./reconcile-status.js";
import { StepError, type StepDeps } from "./step.js";
import { validateCluster } from "./validate.js";

export { TOPOLOGY_FINALIZER } from "./reconcile-finalizer.js";
export { StepError } from "./step.js";

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

export function createReconciler(deps: ReconcilerDeps): Reconcile {
  const d: StepDeps = {
    api: deps.api,
    events: deps.events,
    metrics: deps.metrics,
    log: deps.log,
    clock: deps.clock ?? { now: () => new Date() },
  };
  const { api, events } = d;
  const convergingRequeueMs = deps.convergingRequeueMs ?? 10_000;
  const applied = new AppliedCache(deps.resyncMs ?? 60_000);
  const defaultImage = deps.defaultImage ?? DEFAULT_CHAT_NODE_IMAGE;

  async function converge(k: string, cluster: ChatCluster): Promise<ReconcileOutcome> {
    const { namespace, name } = cluster.metadata;
    const current = await api.getDeployment(namespace, ownedNames(name).deployment);
    const problems = validateCluster(cluster, current);
    if (problems.length > 0) {
      const message = problems.join("; ");
      events.record(cluster, "Warning", "InvalidSpec", "Validate", `Nothing applied: ${message}`);
      await reportProblem(d, deps.connections, cluster, current, { reason: "InvalidSpec", message });
      return { result: "invalid" };
    }
    let target = await handOver(d, applied, k, cluster, current);
    const creatingAutoscaled = !current && cluster.spec.autoscaling.enabled;
    await applyOwned(
      d,
      applied,
      k,
      target,
      creatingAutoscaled ? { initialReplicas: cluster.spec.autoscaling.minReplicas } : {},
    );
    let deployment = await api.getDeployment(namespace, ownedNames(name).deployment);
    if (creatingAutoscaled && deployment) {
      // created at minReplicas under the operator's apply: hand the field to the HPA at once
      target = await handOver(d, applied, k, target, deployment);
      await applyOwned(d, applied, k, target);
      deployment = await api.getDeployment(namespace, ownedNames(name).deployment);
    }
    const pods = await api.listPods(namespace, podSelector(name));
    const assignment = await publishAssignment(d, cluster, readyPodNames(pods));
    await freeGoneHolders(d, cluster, pods, assignment.epoch);
    const secretProblems = await missingSecrets(d, target);
    const status = await writeStatus(d, deps.connections, target, {
      deployment,
      pods,
      assignment,
      secretProblems,
    });
    const converged =
      conditionOf(status, "Ready")?.status === "True" &&
      conditionOf(status, "Progressing")?.status === "False";
    // connection balance after a scale-out (./balance.ts): when a round is due, the time to look again
    const balanceAfterMs = await balanceConnections(d, target, deployment, pods);
    const requeueAfterMs = Math.min(converged ? Infinity : convergingRequeueMs, balanceAfterMs ?? Infinity);
    return Number.isFinite(requeueAfterMs) ? { result: "success", requeueAfterMs } : { result: "success" };
  }

  return async function reconcile(k: string): Promise<ReconcileOutcome> {
    const { namespace, name } = splitKey(k);
    const found = await api.getCluster(namespace, name);
    const cluster = found && { ...found, spec: { ...found.spec, image: found.spec.image ?? defaultImage } };
    if (!cluster) {
      applied.forget(k);
      d.metrics.assignmentEpoch.remove({ cluster: k });
      return { result: "gone" };
    }
    if (cluster.metadata.deletionTimestamp) return finalize(d, deps.topology, cluster);
    await ensureFinalizer(d, cluster);
    try {
      return await converge(k, cluster);
    } catch (err) {
      if (!(err instanceof StepError)) throw err;
      applied.forget(k);
      events.record(cluster, "Warning", err.problem.reason, "Apply", err.problem.message);
      await reportProblem(
        d,
        deps.connections,
        cluster,
        await api.getDeployment(namespace, ownedNames(name).deployment).catch(() => undefined),
        err.problem,
      ).catch((e: unknown) =>
        d.log.warn({ cluster: k, err: errorMessage(e) }, "could not report the problem in status"),
      );
      throw err;
    }
  };
}
