/** The partition assignment over the Ready pods (I6), and the holds of pods that are gone. */
import type { V1Pod } from "@kubernetes/client-node";
import type { ChatCluster, PartitionAssignment } from "../api/v1alpha1.js";
import { assignPartitions, movedPartitions } from "../assignment.js";
import { ASSIGNMENT_KEY, ownedNames, podSelector } from "../resources/meta.js";
import {
  buildPartitionsConfigMap,
  decodeAssignment,
  encodeAssignment,
} from "../resources/partitions-configmap.js";
import { releasesOfGonePods } from "../resources/releases-configmap.js";
import { errorMessage, isConflict } from "./errors.js";
import { existingPodNames } from "./pods.js";
import { clusterKey, StepError, type StepDeps } from "./step.js";

/** The newer of the published (ConfigMap) and recorded (status) assignments. */
function previousAssignment(cluster: ChatCluster, published: PartitionAssignment | undefined) {
  const recorded = cluster.status?.partitionAssignment;
  if (!published) return recorded;
  if (!recorded) return published;
  return recorded.epoch > published.epoch ? recorded : published;
}

export async function publishAssignment(
  { api, events, metrics, log }: StepDeps,
  cluster: ChatCluster,
  ready: string[],
): Promise<PartitionAssignment> {
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
  const key = clusterKey(cluster);
  if (next.epoch !== (previous?.epoch ?? 0)) {
    const moved = movedPartitions(previous, next).length;
    metrics.rebalances.inc({ cluster: key });
    metrics.partitionsMoved.inc({ cluster: key }, moved);
    events.record(
      cluster,
      "Normal",
      "Rebalanced",
      "Rebalance",
      `Epoch ${next.epoch}: ${cluster.spec.partitions} partitions over ${ready.length} Ready pods, ${moved} moved.`,
    );
    log.info({ cluster: key, epoch: next.epoch, moved, readyPods: ready.length }, "partitions rebalanced");
  }
  metrics.assignmentEpoch.set({ cluster: key }, next.epoch);
  return next;
}

/** Release records held by pods that no longer exist (checked against a fresh LIST). */
export async function freeGoneHolders(
  { api, events, clock }: StepDeps,
  cluster: ChatCluster,
  cachedPods: V1Pod[],
  epoch: number,
): Promise<void> {
  const { namespace, name } = cluster.metadata;
  const cm = await api.getConfigMap(namespace, ownedNames(name).releasesConfigMap);
  const rv = cm?.metadata?.resourceVersion;
  if (!cm?.data || !rv) return;
  if (Object.keys(releasesOfGonePods(cm.data, existingPodNames(cachedPods), epoch, clock.now())).length === 0)
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
