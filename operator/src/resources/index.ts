/**
 * The desired owned objects of a ChatCluster (pure). `apply` is written with server-side apply;
 * `remove` names optional objects that the spec does not want (deleted when present; a kind the
 * cluster does not serve, like ServiceMonitor without the Prometheus operator, counts as absent).
 * The `<name>-partitions` ConfigMap is not here: it is written with the assignment, after the pods
 * have been read back.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { buildDeployment } from "./deployment.js";
import { buildHeadlessService } from "./headless-service.js";
import { buildHpa } from "./hpa.js";
import { ownedNames } from "./meta.js";
import { buildNetworkPolicy } from "./network-policy.js";
import { buildPdb } from "./pdb.js";
import { buildReleasesConfigMap } from "./releases-configmap.js";
import { buildRoleBinding } from "./role-binding.js";
import { buildRole } from "./role.js";
import { buildServiceAccount } from "./service-account.js";
import { buildServiceMonitor } from "./service-monitor.js";
import { buildClientService } from "./service.js";

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

export interface DesiredObjects {
  apply: KubernetesObject[];
  remove: ObjectRef[];
}

export function desiredObjects(cluster: ChatCluster, o: { initialReplicas?: number } = {}): DesiredObjects {
  const names = ownedNames(cluster.metadata.name);
  const namespace = cluster.metadata.namespace;
  const apply: KubernetesObject[] = [
    buildServiceAccount(cluster),
    buildRole(cluster),
    buildRoleBinding(cluster),
    buildReleasesConfigMap(cluster),
    buildHeadlessService(cluster),
    buildClientService(cluster),
    buildDeployment(cluster, o),
  ];
  const remove: ObjectRef[] = [];
  const optional: [KubernetesObject | undefined, ObjectRef][] = [
    [
      buildHpa(cluster),
      { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", name: names.hpa, namespace },
    ],
    [buildPdb(cluster), { apiVersion: "policy/v1", kind: "PodDisruptionBudget", name: names.pdb, namespace }],
    [
      buildNetworkPolicy(cluster),
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        name: names.networkPolicy,
        namespace,
      },
    ],
    [
      buildServiceMonitor(cluster),
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        name: names.serviceMonitor,
        namespace,
      },
    ],
  ];
  for (const [obj, ref] of optional) {
    if (obj) apply.push(obj);
    else remove.push(ref);
  }
  return { apply, remove };
}

export {
  buildDeployment,
  buildHeadlessService,
  buildHpa,
  buildNetworkPolicy,
  buildPdb,
  buildReleasesConfigMap,
  buildRole,
  buildRoleBinding,
  buildServiceAccount,
  buildServiceMonitor,
  buildClientService,
};
export { buildPartitionsConfigMap, decodeAssignment, encodeAssignment } from "./partitions-configmap.js";
