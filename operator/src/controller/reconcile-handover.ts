/** The replicas hand-over to and from the HPA (./replicas.ts says how); returns the cluster to apply. */
import type { V1Deployment } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import type { AppliedCache } from "./reconcile-apply.js";
import { errorMessage } from "./errors.js";
import { HANDOVER_MANAGER, planHandover, replicasHold } from "./replicas.js";
import { StepError, type StepDeps } from "./step.js";

export async function handOver(
  { api, events }: StepDeps,
  applied: AppliedCache,
  key: string,
  cluster: ChatCluster,
  current: V1Deployment | undefined,
): Promise<ChatCluster> {
  const plan = planHandover(cluster, current);
  if (plan.kind === "none") return cluster;
  applied.forget(key);
  try {
    if (plan.kind === "toHpa") {
      await api.apply(replicasHold(cluster, plan.replicas), { fieldManager: HANDOVER_MANAGER });
    } else {
      await api.setClusterReplicas(cluster, plan.replicas);
    }
  } catch (err) {
    const message = `handing spec.replicas ${plan.kind === "toHpa" ? "to" : "back from"} the HPA failed: ${errorMessage(err)}`;
    throw new StepError({ reason: "ApplyFailed", message }, err);
  }
  if (plan.kind === "toHpa") {
    events.record(
      cluster,
      "Normal",
      "ReplicasHandedOver",
      "Scale",
      `Autoscaling on: the HPA takes over at the current ${plan.replicas} chat-node pods.`,
    );
    return cluster;
  }
  events.record(
    cluster,
    "Normal",
    "ReplicasHandedOver",
    "Scale",
    `Autoscaling off: keeping the HPA's ${plan.replicas} chat-node pods; spec.replicas set to ${plan.replicas} (was ${plan.was}).`,
  );
  return { ...cluster, spec: { ...cluster.spec, replicas: plan.replicas } };
}
