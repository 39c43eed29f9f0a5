/** The chat-nodes' ServiceAccount (pure). */
import type { V1ServiceAccount } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export function buildServiceAccount(cluster: ChatCluster): V1ServiceAccount {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).serviceAccount, "rbac"),
  };
}
