/** Binds the chat-node Role to the chat-node ServiceAccount (pure). */
import type { V1RoleBinding } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export function buildRoleBinding(cluster: ChatCluster): V1RoleBinding {
  const names = ownedNames(cluster.metadata.name);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: objectMeta(cluster, names.roleBinding, "rbac"),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: names.role },
    subjects: [{ kind: "ServiceAccount", name: names.serviceAccount, namespace: cluster.metadata.namespace }],
  };
}
