/**
 * What the operator may do, as data: the RBAC of manifests/operator.yaml (and of the chart) is generated
 * from these rules, and the integration suite runs the operator under exactly them, so a missing verb
 * fails a test instead of a production rollout.
 *
 * Every rule is about namespaced objects: watching all namespaces, they are a ClusterRole bound by a
 * ClusterRoleBinding; watching one namespace (WATCH_NAMESPACE), the same rules are a Role and a
 * RoleBinding in that namespace, and the operator holds nothing cluster-wide (the APIService, the
 * admission policy and the CRD are installed by whoever installs the operator, not by the operator).
 *
 * Why each rule:
 * - chatclusters: watch them, server-side apply finalizers; status: write status; finalizers: needed
 *   to set blockOwnerDeletion on owned objects where OwnerReferencesPermissionEnforcement is on.
 * - owned kinds: server-side apply creates or updates (create + patch), get reads back, delete
 *   removes the HPA / PDB / ServiceMonitor / NetworkPolicy the spec stopped asking for; deployments
 *   and pods are watched. No update, no deletecollection.
 * - configmaps list/watch/update and pods patch: the chat-node Role grants them, and RBAC lets a
 *   subject create a Role only with permissions it holds itself (no `escalate`, no `bind`).
 * - secrets get: read the RabbitMQ URL to remove the topology of a ChatCluster with
 *   deletionPolicy Delete; drop this rule if no cluster uses Delete.
 * - events: one per decision.
 */
import type { V1PolicyRule } from "@kubernetes/client-node";
import { GROUP, PLURAL } from "../api/v1alpha1.js";

export function operatorRules(): V1PolicyRule[] {
  const owned = ["get", "create", "patch"];
  return [
    { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch", "patch"] },
    { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ["get", "patch", "update"] },
    { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ["update"] },
    { apiGroups: ["apps"], resources: ["deployments"], verbs: [...owned, "list", "watch"] },
    { apiGroups: [""], resources: ["services", "serviceaccounts"], verbs: owned },
    { apiGroups: [""], resources: ["configmaps"], verbs: [...owned, "list", "watch", "update"] },
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "patch"] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
    { apiGroups: ["rbac.authorization.k8s.io"], resources: ["roles", "rolebindings"], verbs: owned },
    { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: [...owned, "delete"] },
    { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: [...owned, "delete"] },
    { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: [...owned, "delete"] },
    { apiGroups: ["monitoring.coreos.com"], resources: ["servicemonitors"], verbs: [...owned, "delete"] },
    { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  ];
}

/** In the operator's own namespace only: the leader Lease. */
export function operatorLeaseRules(leaseName: string): V1PolicyRule[] {
  return [
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      resourceNames: [leaseName],
      verbs: ["get", "update"],
    },
  ];
}
