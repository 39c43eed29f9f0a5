/** The topology finalizer: added or removed per `deletionPolicy`, and run when the ChatCluster goes. */
import type { ChatCluster } from "../api/v1alpha1.js";
import { errorMessage } from "./errors.js";
import type { TopologyCleaner } from "./ports.js";
import type { StepDeps } from "./step.js";

export const TOPOLOGY_FINALIZER = "vibetalk.io/rabbitmq-topology";

/** A deleted ChatCluster: with `deletionPolicy: Delete`, removes its RabbitMQ topology, then the finalizer. */
export async function finalize(
  { api, events }: StepDeps,
  topology: TopologyCleaner,
  cluster: ChatCluster,
): Promise<{ result: "deleted" }> {
  const finalizers = cluster.metadata.finalizers ?? [];
  if (!finalizers.includes(TOPOLOGY_FINALIZER)) return { result: "deleted" };
  if (cluster.spec.deletionPolicy === "Delete") {
    try {
      await topology.clean(cluster);
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

export async function ensureFinalizer({ api, events }: StepDeps, cluster: ChatCluster): Promise<void> {
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
