/**
 * The seams of the reconciler. Domain logic (validation, builders, assignment, status) is pure; these
 * ports are the only way it touches the world, so the reconcile can run against the real API server
 * (kube.ts) or, in unit tests of its control flow, against an in-memory double.
 */
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { ChatCluster, ChatClusterStatus } from "../api/v1alpha1.js";
import type { ObjectRef } from "../resources/index.js";

export interface ClusterApi {
  getCluster(namespace: string, name: string): Promise<ChatCluster | undefined>;
  /**
   * Server-side apply under the operator's field manager (force: the operator owns these fields), or
   * under `fieldManager` (the replicas hand-over, controller/replicas.ts).
   */
  apply(obj: KubernetesObject, options?: { fieldManager?: string }): Promise<void>;
  /** Deletes when present; a missing object or an unserved kind counts as done. Returns true if deleted. */
  remove(ref: ObjectRef): Promise<boolean>;
  getDeployment(namespace: string, name: string): Promise<V1Deployment | undefined>;
  /** Pods by label selector; from a cache when one is synced, unless `fresh` asks for a LIST. */
  listPods(namespace: string, labelSelector: string, options?: { fresh?: boolean }): Promise<V1Pod[]>;
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** Merge-patches `data` keys, conditional on `resourceVersion` (409 when it moved). */
  patchConfigMapData(
    namespace: string,
    name: string,
    data: Record<string, string>,
    resourceVersion: string,
  ): Promise<void>;
  /** Server-side apply of the status subresource. */
  applyStatus(cluster: ChatCluster, status: ChatClusterStatus): Promise<void>;
  /**
   * Sets `spec.replicas` of the ChatCluster (merge patch conditional on its resourceVersion: 409 when
   * the spec moved meanwhile). Only the hand-over from the HPA writes the spec.
   */
  setClusterReplicas(cluster: ChatCluster, replicas: number): Promise<void>;
  /** The keys of a Secret (never its values), undefined when it does not exist. */
  secretKeys(namespace: string, name: string): Promise<string[] | undefined>;
  /** Sets the operator's finalizers on the ChatCluster (server-side apply, uid-guarded). */
  setFinalizers(cluster: ChatCluster, finalizers: string[]): Promise<void>;
}

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  record(cluster: ChatCluster, type: EventType, reason: string, action: string, note: string): void;
}

/** Removes a cluster's RabbitMQ topology (queues and exchanges); see topology.ts. */
export interface TopologyCleaner {
  clean(cluster: ChatCluster): Promise<void>;
}

/** Live connection counts of a cluster's chat-nodes; see connections.ts. */
export interface ConnectionSource {
  total(cluster: ChatCluster, pods: readonly V1Pod[]): Promise<number>;
}

export interface Clock {
  now(): Date;
}
