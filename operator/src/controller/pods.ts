/** Facts about chat-node pods (pure). */
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { ANNOTATION_READINESS } from "../resources/meta.js";

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

/** Why a chat-node pod's container cannot run: what a person must fix, from the kubelet's own words. */
export interface PodProblem {
  pod: string;
  kind: "ImagePullFailed" | "CrashLooping" | "CannotStart";
  /** The kubelet's reason (ErrImagePull, CrashLoopBackOff, CreateContainerConfigError, …). */
  reason: string;
  message: string;
  image?: string;
}

const IMAGE_REASONS = new Set(["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"]);
const START_REASONS = new Set([
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "PreCreateHookError",
  "PostStartHookError",
]);

function containerProblem(pod: string, s: V1ContainerStatus): PodProblem | undefined {
  const waiting = s.state?.waiting;
  const reason = waiting?.reason ?? "";
  const base = { pod, reason, image: s.image, message: waiting?.message ?? reason };
  if (IMAGE_REASONS.has(reason)) return { ...base, kind: "ImagePullFailed" };
  if (START_REASONS.has(reason)) return { ...base, kind: "CannotStart" };
  if (reason !== "CrashLoopBackOff") return undefined;
  const last = s.lastState?.terminated;
  const exit = last
    ? `exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ""}`
    : "no exit recorded";
  return {
    ...base,
    kind: "CrashLooping",
    message: `restarted ${s.restartCount} times, last ${exit}; see kubectl logs ${pod} --previous`,
  };
}

/** The containers of non-terminating pods waiting for a reason that does not go away by itself. */
export function podProblems(pods: readonly V1Pod[]): PodProblem[] {
  const out: PodProblem[] = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    for (const s of statuses) {
      const problem = containerProblem(pod.metadata?.name ?? "", s);
      if (problem) out.push(problem);
    }
  }
  return out.sort((a, b) => a.pod.localeCompare(b.pod));
}

/** A Secret or key the spec names that does not exist (checked by reading the Secret's keys). */
export interface SecretProblem {
  /** The spec field naming it, e.g. spec.redis.secretRef. */
  field: string;
  namespace: string;
  secret: string;
  key: string;
  missing: "secret" | "key";
}

/** A backing service a Running chat-node reports failing in its readiness annotation. */
export interface BackendProblem {
  pod: string;
  check: "broker" | "publishing" | "redis" | "store";
}

const BACKEND_CHECKS = new Set<string>(["broker", "publishing", "redis", "store"]);

/**
 * From the `vibetalk.io/readiness` annotations of Running, non-terminating pods: the failing checks
 * that name a backing service (`draining` is a pod's own shutdown; unknown names are ignored).
 */
export function backendProblems(pods: readonly V1Pod[]): BackendProblem[] {
  const out: BackendProblem[] = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== "Running") continue;
    const raw = pod.metadata?.annotations?.[ANNOTATION_READINESS];
    if (!raw) continue;
    for (const check of raw.split(",")) {
      if (BACKEND_CHECKS.has(check))
        out.push({ pod: pod.metadata?.name ?? "", check: check as BackendProblem["check"] });
    }
  }
  return out.sort((a, b) => a.pod.localeCompare(b.pod));
}

/** Non-terminating pods: what status.replicas counts, from the same list as the Ready ones. */
export function livePodCount(pods: readonly V1Pod[]): number {
  return pods.filter((p) => !p.metadata?.deletionTimestamp).length;
}
