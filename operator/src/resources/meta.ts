/** Names, labels and owner references shared by every object a ChatCluster owns (pure). */
import type { V1ObjectMeta, V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ChatCluster } from "../api/v1alpha1.js";

export const FIELD_MANAGER = "vibetalk-operator";
export const MANAGED_BY = "vibetalk-operator";
/** The chat-node container's client port, named `http` (the HTTP API, Socket.IO, the web client). */
export const CHAT_NODE_PORT = 8080;
/**
 * The chat-node container's operations port, named `ops` (OPS_PORT: /healthz, /readyz, /metrics,
 * /internal/*): on the headless Service only, never on the client Service.
 */
export const CHAT_NODE_OPS_PORT = 9090;
/** The chat-nodes run as this user (the images' USER); runAsNonRoot needs no more than a numeric one. */
export const CHAT_NODE_UID = 10001;
export const CHAT_NODE_CONTAINER = "chat-node";

/** Annotations and keys that form the contract with chat-nodes (docs/operator.md). */
export const ANNOTATION_SPEC_HASH = "vibetalk.io/spec-hash";
/** On the Deployment while autoscaling is on: the ChatCluster's spec.replicas (controller/replicas.ts). */
export const ANNOTATION_SPEC_REPLICAS = "vibetalk.io/spec-replicas";
export {
  ANNOTATION_CONNECTIONS,
  ANNOTATION_POD_DELETION_COST,
  ANNOTATION_READINESS,
  ASSIGNMENT_KEY,
} from "@vibetalk/protocol/cluster";

export type Component = "chat-node" | "partitions" | "rbac" | "network";

export interface OwnedNames {
  deployment: string;
  service: string;
  headlessService: string;
  serviceAccount: string;
  role: string;
  roleBinding: string;
  partitionsConfigMap: string;
  releasesConfigMap: string;
  hpa: string;
  pdb: string;
  serviceMonitor: string;
  networkPolicy: string;
}

export function ownedNames(clusterName: string): OwnedNames {
  return {
    deployment: clusterName,
    service: clusterName,
    headlessService: `${clusterName}-headless`,
    serviceAccount: `${clusterName}-chat-node`,
    role: `${clusterName}-chat-node`,
    roleBinding: `${clusterName}-chat-node`,
    partitionsConfigMap: `${clusterName}-partitions`,
    releasesConfigMap: `${clusterName}-releases`,
    hpa: clusterName,
    pdb: clusterName,
    serviceMonitor: clusterName,
    networkPolicy: `${clusterName}-chat-node`,
  };
}

/** Labels every chat-node pod carries; the Deployment's selector and the Services' selectors. */
export function selectorLabels(clusterName: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vibetalk",
    "app.kubernetes.io/instance": clusterName,
    "app.kubernetes.io/component": "chat-node",
  };
}

/** `status.selector` (scale subresource) and the operator's pod list selector. */
export function podSelector(clusterName: string): string {
  return Object.entries(selectorLabels(clusterName))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

export function commonLabels(clusterName: string, component: Component): Record<string, string> {
  return {
    "app.kubernetes.io/name": "vibetalk",
    "app.kubernetes.io/instance": clusterName,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/managed-by": MANAGED_BY,
    "app.kubernetes.io/part-of": "vibetalk",
  };
}

export function ownerReference(cluster: ChatCluster): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cluster.metadata.name,
    uid: cluster.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function objectMeta(
  cluster: ChatCluster,
  name: string,
  component: Component,
  extraLabels: Record<string, string> = {},
): V1ObjectMeta {
  return {
    name,
    namespace: cluster.metadata.namespace,
    labels: { ...commonLabels(cluster.metadata.name, component), ...extraLabels },
    ownerReferences: [ownerReference(cluster)],
  };
}
