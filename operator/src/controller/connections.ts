/**
 * Connection counts from the `vibetalk.io/connections` pod annotation, which every chat-node
 * patches on its own pod (a decimal integer, rewritten when the count changes, at most every few
 * seconds). The operator never dials pods: this works for kwok's fake pods and needs no network path
 * from the operator to the chat-nodes.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION_CONNECTIONS } from "../resources/meta.js";
import type { ConnectionSource } from "./ports.js";

/** A pod's reported count; 0 when absent, malformed, or the pod is not running. */
export function podConnections(pod: V1Pod): number {
  if (pod.metadata?.deletionTimestamp || pod.status?.phase !== "Running") return 0;
  const raw = pod.metadata?.annotations?.[ANNOTATION_CONNECTIONS];
  if (raw === undefined || !/^\d{1,12}$/.test(raw.trim())) return 0;
  return Number(raw.trim());
}

export function sumConnections(pods: readonly V1Pod[]): number {
  return pods.reduce((s, p) => s + podConnections(p), 0);
}

export function createPodAnnotationConnectionSource(): ConnectionSource {
  return { total: async (_cluster, pods) => sumConnections(pods) };
}
