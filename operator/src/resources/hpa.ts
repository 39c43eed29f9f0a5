/** The HorizontalPodAutoscaler on live connections (pure); absent when autoscaling is off. */
import type { V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import type { ChatCluster } from "../api/v1alpha1.js";
import { objectMeta, ownedNames } from "./meta.js";

export const CONNECTIONS_METRIC = "vibetalk_connections";
/** The label the HPA selects the external metric by; its value is the ChatCluster's name. */
export const METRIC_CLUSTER_LABEL = "cluster";

export function buildHpa(cluster: ChatCluster): V2HorizontalPodAutoscaler | undefined {
  const { autoscaling } = cluster.spec;
  if (!autoscaling.enabled) return undefined;
  const names = ownedNames(cluster.metadata.name);
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: objectMeta(cluster, names.hpa, "chat-node"),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: names.deployment },
      minReplicas: autoscaling.minReplicas,
      maxReplicas: autoscaling.maxReplicas,
      metrics: [
        {
          type: "External",
          external: {
            metric: {
              name: CONNECTIONS_METRIC,
              selector: { matchLabels: { [METRIC_CLUSTER_LABEL]: cluster.metadata.name } },
            },
            target: { type: "AverageValue", averageValue: String(autoscaling.targetConnectionsPerPod) },
          },
        },
      ],
    },
  };
}
