/** Facts about chat-node pods (pure). */
import type { V1Pod } from "@kubernetes/client-node";

/** Running, not terminating, and its Ready condition True: the pods that may own partitions. */
export function isPodReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (pod.status?.phase !== "Running") return false;
  return pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

export function readyPodNames(pods: readonly V1Pod[]): string[] {
  return pods
    .filter(isPodReady)
    .map((p) => p.metadata?.name ?? "")
    .filter((n) => n !== "")
    .sort();
}

/** Every pod object that still exists (terminating ones included): a holder that is not gone. */
export function existingPodNames(pods: readonly V1Pod[]): Set<string> {
  return new Set(pods.map((p) => p.metadata?.name ?? "").filter((n) => n !== ""));
}
