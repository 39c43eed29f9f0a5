// The pod annotations a chat-node reports (pure; connections-reporter.ts sends them). Apart from the
// reporter so that its tests need not load @kubernetes/client-node (two seconds of CPU per process).
import {
  ANNOTATION_CONNECTIONS,
  ANNOTATION_POD_DELETION_COST,
  ANNOTATION_READINESS,
  READINESS_CHECKS,
} from "@vibetalk/protocol/cluster";

/** The /readyz body's `checks`: true means the check passes, except `draining` (true while shutting down). */
export type Checks = Partial<Record<(typeof READINESS_CHECKS)[number], boolean>>;

/** The failing checks, sorted and comma-separated ("" when all pass): the readiness annotation's value. */
export function failingChecks(checks: Checks): string {
  return READINESS_CHECKS.filter((c) => (c === "draining" ? checks[c] === true : checks[c] === false)).join(
    ",",
  );
}

/** The one merge patch's annotations: the count (also as the pod's deletion cost) and the failing checks. */
export function reportAnnotations(
  connections: number,
  readiness: string | undefined,
): Record<string, string> {
  return {
    [ANNOTATION_CONNECTIONS]: String(connections),
    // scale-in removes the pods with the fewest users first (ReplicaSet pod-deletion-cost)
    [ANNOTATION_POD_DELETION_COST]: String(Math.min(connections, 999_999_999)),
    ...(readiness === undefined ? {} : { [ANNOTATION_READINESS]: readiness }),
  };
}
