/**
 * The chat-nodes' Role, least privilege (pure): read the partitions and release-record ConfigMaps
 * (by name), write the release records (by name), and patch pods for the connection-count annotation.
 * RBAC cannot narrow that to a chat-node's own pod: the ValidatingAdmissionPolicy of
 * ../manifests/admission.ts does (its own pod, that one annotation, nothing else).
 */
import type { V1PolicyRule, V1Role } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export function chatNodeRules(clusterName: string): V1PolicyRule[] {
  const names = ownedNames(clusterName);
  return [
    {
      apiGroups: [""],
      resources: ["configmaps"],
      resourceNames: [names.partitionsConfigMap, names.releasesConfigMap],
      verbs: ["get", "list", "watch"],
    },
    {
      apiGroups: [""],
      resources: ["configmaps"],
      resourceNames: [names.releasesConfigMap],
      verbs: ["update", "patch"],
    },
    { apiGroups: [""], resources: ["pods"], verbs: ["patch"] },
  ];
}

export function buildRole(cluster: ChatCluster): V1Role {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: objectMeta(cluster, ownedNames(cluster.metadata.name).role, "rbac"),
    rules: chatNodeRules(cluster.metadata.name),
  };
}
