/** Status from one observation (the Deployment and one pod list), and the Events of its changes. */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { ChatCluster, PartitionAssignment, SecretKeySelector } from "../api/v1alpha1.js";
import { podSelector } from "../resources/meta.js";
import { computeStatus, conditionOf, statusChanged, type Problem } from "../status.js";
import { errorMessage } from "./errors.js";
import { backendProblems, livePodCount, podProblems, readyPodNames, type SecretProblem } from "./pods.js";
import type { ConnectionSource } from "./ports.js";
import { clusterKey, type StepDeps } from "./step.js";

export interface Observation {
  deployment: V1Deployment | undefined;
  pods: V1Pod[];
  assignment: PartitionAssignment | undefined;
  problem?: Problem;
  secretProblems?: SecretProblem[];
}

export async function writeStatus(
  { api, events, clock }: StepDeps,
  connectionSource: ConnectionSource,
  cluster: ChatCluster,
  observed: Observation,
): Promise<ReturnType<typeof computeStatus>> {
  const connections = await connectionSource.total(cluster, observed.pods);
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

/** A step that failed: the status says why, from a pod list of its own. */
export async function reportProblem(
  d: StepDeps,
  connectionSource: ConnectionSource,
  cluster: ChatCluster,
  deployment: V1Deployment | undefined,
  problem: Problem,
): Promise<void> {
  const { namespace, name } = cluster.metadata;
  const pods = await d.api.listPods(namespace, podSelector(name));
  await writeStatus(d, connectionSource, cluster, {
    deployment,
    pods,
    assignment: cluster.status?.partitionAssignment,
    problem,
  });
}

/** The Secrets and keys the spec names that do not exist (only their keys are read). */
export async function missingSecrets({ api, log }: StepDeps, cluster: ChatCluster): Promise<SecretProblem[]> {
  const { spec } = cluster;
  const { namespace } = cluster.metadata;
  const refs: [string, SecretKeySelector | undefined][] = [
    ["spec.rabbitmq.secretRef", spec.rabbitmq.secretRef],
    ["spec.redis.secretRef", spec.redis.secretRef],
    ["spec.mongodb.secretRef", spec.mongodb.secretRef],
    ["spec.jwtSecretRef", spec.jwtSecretRef],
    ["spec.jwtPreviousSecretRef", spec.jwtPreviousSecretRef],
    ["spec.officialGroup.serviceTokenRef", spec.officialGroup?.serviceTokenRef],
    ["spec.push.vapidPublicKeyRef", spec.push?.vapidPublicKeyRef],
    ["spec.push.vapidPrivateKeyRef", spec.push?.vapidPrivateKeyRef],
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
    log.debug(
      { cluster: clusterKey(cluster), err: errorMessage(err) },
      "could not read the referenced Secrets",
    );
    return [];
  }
  return out;
}
