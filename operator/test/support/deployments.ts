import type { V1Deployment, V1DeploymentCondition } from "@kubernetes/client-node";

/** A Deployment as read back, with the status fields the status functions use. */
export function deployment(
  o: {
    replicas?: number;
    generation?: number;
    observedGeneration?: number;
    statusReplicas?: number;
    updated?: number;
    ready?: number;
    available?: number;
    conditions?: V1DeploymentCondition[];
  } = {},
): V1Deployment {
  const replicas = o.replicas ?? 2;
  return {
    metadata: { name: "demo", namespace: "chat", generation: o.generation ?? 1 },
    spec: { replicas, selector: {}, template: {} },
    status: {
      observedGeneration: o.observedGeneration ?? o.generation ?? 1,
      replicas: o.statusReplicas ?? replicas,
      updatedReplicas: o.updated ?? replicas,
      readyReplicas: o.ready ?? replicas,
      availableReplicas: o.available ?? o.ready ?? replicas,
      conditions: o.conditions ?? [],
    },
  };
}
