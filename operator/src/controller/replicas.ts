/**
 * The hand-over of the Deployment's `spec.replicas` between the operator and the HPA (pure).
 *
 * Server-side apply resets a field to its default when the last manager that owned it stops sending
 * it: applying the Deployment without `replicas` right after the operator owned it sets it to 1 until
 * the HPA's next sync (measured: a 2 → 1 → 2 dip that drained a pod with its users). So, turning
 * autoscaling on, the live count is first applied under a manager of its own (`HANDOVER_MANAGER`, the
 * "transferring ownership" recipe of the Kubernetes documentation); the operator's own apply then leaves
 * `replicas` out and the field keeps its value until the HPA writes it.
 *
 * Turning autoscaling off, the HPA's current count is kept: the operator writes it into the
 * ChatCluster's `spec.replicas` and applies that, unless the same change set `spec.replicas` itself
 * (the Deployment's `vibetalk.io/spec-replicas` annotation records the spec's value while autoscaling is
 * on; a different value now means the user asked for that count).
 */
import type { V1Deployment, V1ManagedFieldsEntry } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { ANNOTATION_SPEC_REPLICAS, FIELD_MANAGER, ownedNames } from "../resources/meta.js";

export const HANDOVER_MANAGER = "vibetalk-operator-handover";

const ownsReplicasField = (m: V1ManagedFieldsEntry): boolean => {
  const spec = (m.fieldsV1 as Record<string, Record<string, unknown> | undefined> | undefined)?.["f:spec"];
  return spec !== undefined && "f:replicas" in spec;
};

/** Whether `manager`'s apply owns the Deployment's spec.replicas. */
export function appliesReplicas(deployment: V1Deployment, manager: string = FIELD_MANAGER): boolean {
  return (deployment.metadata?.managedFields ?? []).some(
    (m) => m.manager === manager && m.operation === "Apply" && ownsReplicasField(m),
  );
}

/** The apply that holds `replicas` at the live count while the operator lets go of it. */
export function replicasHold(cluster: ChatCluster, replicas: number): V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: ownedNames(cluster.metadata.name).deployment, namespace: cluster.metadata.namespace },
    spec: { replicas } as V1Deployment["spec"],
  };
}

export type Handover =
  | { kind: "none" }
  /** Autoscaling on while the operator's apply still owns replicas: hold the live count first. */
  | { kind: "toHpa"; replicas: number }
  /** Autoscaling off after the HPA ran: keep its count by writing it into spec.replicas. */
  | { kind: "fromHpa"; replicas: number; was: number };

export function planHandover(cluster: ChatCluster, current: V1Deployment | undefined): Handover {
  if (!current) return { kind: "none" };
  const live = current.spec?.replicas ?? 1;
  if (cluster.spec.autoscaling.enabled) {
    return appliesReplicas(current) ? { kind: "toHpa", replicas: live } : { kind: "none" };
  }
  const recorded = current.metadata?.annotations?.[ANNOTATION_SPEC_REPLICAS];
  if (recorded === undefined || appliesReplicas(current)) return { kind: "none" };
  if (recorded !== String(cluster.spec.replicas)) return { kind: "none" }; // the user named a count
  if (live === cluster.spec.replicas) return { kind: "none" };
  return { kind: "fromHpa", replicas: live, was: cluster.spec.replicas };
}
