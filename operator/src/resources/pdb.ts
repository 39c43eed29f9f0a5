/** The chat-nodes' PodDisruptionBudget (pure); absent when disabled. */
import type { V1PodDisruptionBudget } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames, selectorLabels } from "./meta.js";

export function buildPdb(cluster: ChatCluster): V1PodDisruptionBudget | undefined {
  const pdb = cluster.spec.podDisruptionBudget;
  if (!pdb.enabled) return undefined;
  const bound =
    pdb.minAvailable !== undefined
      ? { minAvailable: pdb.minAvailable }
      : { maxUnavailable: pdb.maxUnavailable ?? 1 };
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).pdb, "chat-node"),
    spec: {
      ...bound,
      selector: { matchLabels: selectorLabels(cluster.metadata.name) },
      // A pod that is not Ready serves nobody: let evictions take it even when the budget is spent.
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}
